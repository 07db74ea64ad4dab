"""Tool-call policies: allow, deny or ask the user, per tool and per call; and the approval a user gives.

Ranking (the Antigravity SDK's): among the rules that match a call, the most specific wins, and among
equally specific ones the strictest. Order of definition never matters.

    rank  rule                                   example
    1     a rule naming the tool, deny           deny("run_command")
    2     a rule naming the tool, ask            ask_user("write_file", when=...)
    3     a rule naming the tool, allow          allow("run_python")
    4     a wildcard rule, deny                  deny("*"), workspace_only(), deny("files/*")
    5     a wildcard rule, ask                   ask_user("*")
    6     a wildcard rule, allow                 allow_all()
    7     no rule matches: the default           read tools allow; write, execute and MCP tools ask;
                                                 user tools follow `default_policy` (ask unless set)

A rule with `when=` matches only the calls its predicate accepts. A predicate takes the call's
arguments, `when(args)`, or the arguments and a `CallInfo` (tool name, effect, workspace),
`when(args, call)`. `default_policy=ALLOW` or `DENY` decides every call no rule matches, of any tool.

"Always allow" from an approval is not a rule in this ranking: it is a standing answer to the question
(`PolicySet.grants`), consulted only when a call would ask. So it never overrides a deny.

Per-rule handlers. Every rule takes `handler=`, a sync or async callable given the call's
ApprovalRequest when that rule decides the call (not when another rule wins, nor when a pre_tool hook
decided first). A handler can make its rule's outcome stricter, never wider:

    allow(tool, handler=h)     h may veto: False or Approval(approved=False, reason=...) denies the call
                               (the reason goes to the model); None, True or an approval lets it run.
                               Use it to audit what runs, or for checks a `when=` cannot express.
    ask_user(tool, handler=h)  h answers the question instead of the agent's approval handler:
                               an Approval or a bool, as approval handlers do.
    deny(tool, handler=h)      h is told (to audit or alert); its answer is ignored: nothing undoes a deny.

A handler that raises (or answers something else than the above) denies the call: it fails closed.
The model gets a tool error, the turn goes on, and the failure is logged once per handler (a warning
the first time, debug lines after), as hooks are. The Antigravity SDK's pre_tool_call_decide hooks
can deny a call or rewrite its arguments; here rewriting belongs to pre_tool hooks (hooks.py), which
run before the policies, so a handler always sees the arguments that will run.
"""
from __future__ import annotations

import inspect
import logging
from fnmatch import fnmatchcase
import shlex
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Union

from pydantic import BaseModel, ConfigDict, model_serializer

log = logging.getLogger(__name__)


class Decision(str, Enum):
    ALLOW = "allow"
    DENY = "deny"
    ASK = "ask"


ANY_TOOL = "*"
_GLOB_CHARS = frozenset("*?[")
_STRICTNESS = {Decision.ALLOW: 0, Decision.ASK: 1, Decision.DENY: 2}
RISKY_EFFECTS = frozenset({"write", "execute"})  # what a default policy never runs without asking


@dataclass(frozen=True)
class CallInfo:
    """What a two-argument `when(args, call)` predicate knows besides the arguments."""

    tool: str
    effect: str | None = None  # the Tool's effect: "read", "write", "execute" or None (a user tool)
    workspace: Path | None = None  # the agent's workspace root


def is_mcp_tool(name: str) -> bool:
    """MCP tools are named `server/tool`."""
    return "/" in name


def _takes_call_info(predicate: Callable) -> bool:
    try:
        params = [p for p in inspect.signature(predicate).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    except (TypeError, ValueError):
        return False
    return len(params) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)


class PolicyRule(BaseModel):
    """One rule: what to do when the model calls `tool` ("*" or a glob such as "files/*" is a wildcard).

    `when`: a predicate on the call; `handler`: called when this rule decides a call (see the module
    doc). Neither can be saved: a saved rule with either comes back without it and never wider than it
    was (a conditional allow, or an allow with a handler that could veto, comes back as ask).
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    tool: str
    decision: Decision
    reason: str | None = None
    when: Callable[..., Any] | None = None
    handler: Callable[..., Any] | None = None

    @model_serializer
    def _saved(self) -> dict[str, Any]:
        narrowed = self.when is not None or self.handler is not None
        decision = Decision.ASK if narrowed and self.decision is Decision.ALLOW else self.decision
        return {"tool": self.tool, "decision": decision.value, "reason": self.reason}

    @property
    def specific(self) -> bool:
        """True when the rule names one tool; a wildcard matches several."""
        return not (_GLOB_CHARS & set(self.tool))

    @property
    def rank(self) -> tuple[int, int]:
        """Higher wins: specific before wildcard, then deny before ask before allow."""
        return (1 if self.specific else 0, _STRICTNESS[self.decision])

    def names(self, tool: str) -> bool:
        if self.specific:
            return self.tool == tool
        return fnmatchcase(tool, self.tool)

    def matches(self, tool: str, args: dict[str, Any] | None = None, call: CallInfo | None = None) -> bool:
        if not self.names(tool):
            return False
        if self.when is None:
            return True
        call = call or CallInfo(tool=tool)
        args = dict(args or {})
        return bool(self.when(args, call) if _takes_call_info(self.when) else self.when(args))


def allow(tool: str, when: Callable[..., Any] | None = None,
          handler: "RuleHandler | None" = None) -> PolicyRule:
    """Run calls of `tool` (that `when` accepts) without asking; `handler` sees each and may veto it."""
    return PolicyRule(tool=tool, decision=Decision.ALLOW, when=when, handler=handler)


def deny(tool: str, reason: str | None = None, when: Callable[..., Any] | None = None,
         handler: "RuleHandler | None" = None) -> PolicyRule:
    """Refuse calls of `tool` (that `when` accepts); `reason` goes back to the model; `handler` is told."""
    return PolicyRule(tool=tool, decision=Decision.DENY, reason=reason, when=when, handler=handler)


def ask_user(tool: str, when: Callable[..., Any] | None = None,
             handler: "ApprovalHandler | None" = None) -> PolicyRule:
    """Ask before calls of `tool` (that `when` accepts); `handler` answers instead of the agent's handler."""
    return PolicyRule(tool=tool, decision=Decision.ASK, when=when, handler=handler)


def allow_all() -> PolicyRule:
    return allow(ANY_TOOL)


def deny_all(reason: str | None = None) -> PolicyRule:
    return deny(ANY_TOOL, reason)


# --- ready-made rule sets ---------------------------------------------------------------------------

# argument names that hold a path, for workspace_only()
PATH_ARGUMENTS = frozenset({"path", "file", "file_path", "filename", "directory", "dir", "cwd", "root",
                            "target", "source", "destination", "dest", "src", "dst"})


def _path_values(args: dict[str, Any], effect: str | None) -> Iterable[str]:
    for key, value in args.items():
        if not isinstance(value, str):
            continue
        if key in PATH_ARGUMENTS or key.endswith(("_path", "_dir", "_file")):
            yield value
        elif effect == "execute" and key == "command":  # a shell command's path-like words
            try:
                words = shlex.split(value)
            except ValueError:
                words = value.split()
            yield from (w for w in words if w.startswith(("/", "~")) or ".." in Path(w).parts)


def leaves_workspace(args: dict[str, Any], call: CallInfo) -> bool:
    """True when a path argument (or an execute tool's path-like command word) resolves outside the
    workspace (symlinks followed). Relative paths start at the workspace root."""
    root = (call.workspace or Path(".")).resolve()
    for raw in _path_values(args, call.effect):
        path = Path(raw).expanduser()
        resolved = (path if path.is_absolute() else root / path).resolve()
        if not resolved.is_relative_to(root):
            return True
    return False


def workspace_only() -> PolicyRule:
    """Deny any call whose path arguments leave the agent's workspace (a wildcard deny).

    Path arguments are those named in PATH_ARGUMENTS or ending in _path/_dir/_file, and for execute
    tools the absolute, `~` or `..` words of `command`. It is a guard, not a sandbox: the builtin file
    tools confine themselves anyway, and a shell command can reach anything; like every wildcard rule,
    a rule naming the tool beats it.
    """
    return deny(ANY_TOOL, "a path argument leaves the workspace", when=leaves_workspace)


def _reads(args: dict[str, Any], call: CallInfo) -> bool:
    return call.effect == "read" and not is_mcp_tool(call.tool)


def _not_reads(args: dict[str, Any], call: CallInfo) -> bool:
    return not _reads(args, call)


def safe_defaults() -> list[PolicyRule]:
    """Read tools run; everything else (write, execute, MCP and user tools) asks, whatever default_policy says."""
    return [allow(ANY_TOOL, when=_reads), ask_user(ANY_TOOL, when=_not_reads)]


# --- deciding ---------------------------------------------------------------------------------------


def stricter(a: Decision, b: Decision) -> Decision:
    """The stricter of two decisions (deny > ask > allow)."""
    return max(a, b, key=_STRICTNESS.__getitem__)


class PolicySet:
    """One agent's rules, its default and its "always allow" grants."""

    def __init__(self, rules: list[PolicyRule], default: Decision = Decision.ASK):
        self.rules = list(rules)
        self.default = default
        self.grants: list[PolicyRule] = []  # allow rules from "always allow" answers

    def decide(self, tool: str, args: dict[str, Any] | None = None, call: CallInfo | None = None) -> PolicyRule:
        """The winning rule for this call, or the default as a rule (see the module doc for the ranking)."""
        call = call or CallInfo(tool=tool)
        matching = [r for r in self.rules if r.matches(tool, args, call)]
        if matching:
            return max(matching, key=lambda r: r.rank)  # ties are equal rules: any of them
        return PolicyRule(tool=tool, decision=self.default_for(tool, call.effect))

    def default_for(self, tool: str, effect: str | None) -> Decision:
        if self.default is not Decision.ASK:
            return self.default
        return Decision.ALLOW if effect == "read" and not is_mcp_tool(tool) else Decision.ASK

    def granted(self, tool: str, args: dict[str, Any] | None = None) -> bool:
        """Whether an earlier "always allow" answers this call's question."""
        return any(g.matches(tool, args) for g in self.grants)

    def always_allow(self, tool: str, args: dict[str, Any] | None = None) -> None:
        """"Always allow TOOL for this agent" (only with these `args` when given)."""
        self.grants.append(allow(tool, when=None if args is None else SameArguments(args)))

    def allowed_wholesale(self, tools: Iterable[Any]) -> list[str]:
        """Write, execute and MCP tools that would run without asking because of a wildcard allow or an
        allow default (not because a rule names them)."""
        unconditional = [r for r in self.rules if r.when is None]
        found = []
        for tool in tools:
            if not (getattr(tool, "effect", None) in RISKY_EFFECTS or is_mcp_tool(tool.name)):
                continue
            matching = [r for r in unconditional if r.names(tool.name)]
            if matching:
                winner = max(matching, key=lambda r: r.rank)
                wholesale = winner.decision is Decision.ALLOW and not winner.specific
            else:
                wholesale = self.default is Decision.ALLOW
            if wholesale:
                found.append(tool.name)
        return found


class SameArguments:
    """A `when=` predicate true for calls with exactly these arguments (an "always for these arguments")."""

    def __init__(self, args: dict[str, Any]):
        self.args = dict(args)

    def __call__(self, args: dict[str, Any]) -> bool:
        return dict(args) == self.args

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SameArguments) and other.args == self.args

    def __repr__(self) -> str:
        return f"SameArguments({self.args!r})"


def warn_wholesale_allow(agent: str, policies: PolicySet, tools: Iterable[Any]) -> list[str]:
    """One warning line naming the write/execute/MCP tools this agent runs without asking."""
    names = policies.allowed_wholesale(tools)
    if names:
        log.warning("agy: agent %r runs these tools without asking: %s (allowed wholesale); name them in "
                    "allow(...) rules or use ask_user(...) to review each call", agent, ", ".join(names))
    return names


# --- asking -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalRequest:
    """What the user is asked to approve. Built by the agent from the model's call, never by the model."""

    agent: str
    tool: str
    args: dict[str, Any]
    call_id: str | None
    turn: int
    preview: dict[str, Any] | None = None  # what will run (code, command or diff): Tool.preview of the args


ALWAYS_SCOPES = ("tool", "args")


@dataclass(frozen=True)
class Approval:
    """The user's answer. `reason` goes back to the model on a deny.

    `always` only widens an approval: approved and always lets this agent's later calls of the tool
    run without asking, or only its later calls with the same arguments when `always_scope="args"`.
    On a deny it is ignored (the next call asks again).
    """

    approved: bool
    reason: str | None = None
    always: bool = False
    always_scope: str = "tool"  # "tool": any arguments; "args": exactly these arguments
    decided_by: str | None = None  # who answered when it was not a person (a setting, a timeout): the record says

    def __post_init__(self) -> None:
        if self.always_scope not in ALWAYS_SCOPES:
            raise ValueError(f"always_scope must be 'tool' or 'args', not {self.always_scope!r}")


ApprovalHandler = Callable[[ApprovalRequest], Union[Approval, bool, Awaitable[Union[Approval, bool]]]]
# an allow or deny rule's handler may also return None ("no objection")
RuleHandler = Callable[[ApprovalRequest], Union[Approval, bool, None, Awaitable[Union[Approval, bool, None]]]]
NO_OBJECTION = Approval(approved=True)


async def ask(handler: ApprovalHandler, request: ApprovalRequest,
              offload: Callable[..., Awaitable[Any]], *, none_approves: bool = False) -> Approval:
    """Call a sync or async approval (or rule) handler through `offload` (a sync one on a worker thread)
    and normalise its answer; `none_approves`: None is no objection (allow and deny rules' handlers)."""
    answer = await offload(handler, request)
    if isinstance(answer, Approval):
        return answer
    if isinstance(answer, bool):
        return Approval(approved=answer)
    if answer is None and none_approves:
        return NO_OBJECTION
    raise TypeError(f"the handler returned {type(answer).__name__}; return an Approval or a bool")
