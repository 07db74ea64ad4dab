"""Hooks: user callables (sync or async) the agent calls at fixed points, with the SDK's semantics.

- on_session_start(info) / on_session_end(info): the agent was created / is shut down;
  info = {"agent": name, "model": model}
- pre_turn(prompt_parts): return False, or a str (the reason), to refuse the turn; it then ends with
  TurnRefused and the prompt stays in the history marked as not answered. None or True lets it run.
- post_turn(response)
- pre_tool(request: ApprovalRequest), in order, before the policies:
  - a dict: new arguments for the call (validated again); later hooks and the approval see them;
  - Decision.DENY, False, or a str (the reason): deny the call; Decision.ALLOW or True: run it
    without asking; Decision.ASK: ask the user even if a policy would allow it;
  - None: no opinion. The first hook that decides ends the chain.
- post_tool(record)
- on_tool_error(record, error): return a str to replace the error message the model sees
  (the first str wins).
- on_compaction(info)
A hook that raises is skipped and reported once (a warning the first time that hook fails, debug lines
after): a broken hook must not break the conversation, nor flood the log.
post_turn is part of the turn: it runs for a turn that completed, before the reply is delivered and
the agent is idle, so it never overlaps the next turn and cancelling the turn stops it.
Sync hooks run on a worker thread (`offload`), so a slow one never stalls the runtime loop; a thread
cannot be stopped, so a sync hook cut short by a cancel finishes on its thread unobserved.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, Awaitable, Callable

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from .policies import ApprovalRequest, Decision
from .worker_threads import call_inline

log = logging.getLogger(__name__)

Hook = Callable[..., Any]
Offload = Callable[..., Awaitable[Any]]  # WorkerThreads.call: sync callables on a thread, async on the loop
_FAILED = object()  # the answer of a hook that raised


def callable_name(func: Any) -> str:
    return getattr(func, "__name__", None) or repr(func)


def report_failure(reported: set[int], func: Any, what: str, outcome: str, exc: BaseException,
                   logger: logging.Logger = log) -> None:
    """Log that a user callable raised: a warning the first time, debug lines after (no flood).
    `reported` holds the id() of the callables already reported."""
    if id(func) in reported:
        logger.debug("agy %s failed again: %r", what, exc)
        return
    reported.add(id(func))
    logger.warning("agy %s failed: %r (%s; later failures of it are not reported)", what, exc, outcome)


@dataclass(frozen=True)
class ToolVerdict:
    """What the pre_tool hooks said: a decision (or None), why, and the arguments to use."""

    decision: Decision | None
    reason: str
    request: ApprovalRequest  # with the arguments the hooks rewrote, if any
    rewritten: bool = False


class Hooks(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    on_session_start: list[Hook] = Field(default_factory=list)
    on_session_end: list[Hook] = Field(default_factory=list)
    pre_turn: list[Hook] = Field(default_factory=list)
    post_turn: list[Hook] = Field(default_factory=list)
    pre_tool: list[Hook] = Field(default_factory=list)
    post_tool: list[Hook] = Field(default_factory=list)
    on_tool_error: list[Hook] = Field(default_factory=list)
    on_compaction: list[Hook] = Field(default_factory=list)
    _reported: set[int] = PrivateAttr(default_factory=set)  # id() of hooks whose failure was logged

    async def _call(self, point: str, hook: Hook, *args: Any, offload: Offload) -> Any:
        try:
            return await offload(hook, *args)
        except Exception as exc:
            report_failure(self._reported, hook, f"hook {point} {callable_name(hook)}", "it is skipped", exc)
            return _FAILED

    async def run(self, point: str, *args: Any, offload: Offload = call_inline) -> list[Any]:
        """Call every hook of `point` in order; return their answers (None for one that failed)."""
        answers = []
        for hook in getattr(self, point):
            answer = await self._call(point, hook, *args, offload=offload)
            answers.append(None if answer is _FAILED else answer)
        return answers

    async def refuse_turn(self, parts: Any, offload: Offload = call_inline) -> str | None:
        """The reason the first refusing pre_turn hook gave, or None when every hook lets the turn run."""
        for hook in self.pre_turn:
            answer = await self._call("pre_turn", hook, parts, offload=offload)
            if answer is False:
                return f"the pre_turn hook {getattr(hook, '__name__', 'hook')} refused the turn"
            if isinstance(answer, str):
                return answer or "a pre_turn hook refused the turn"
        return None

    async def decide_tool(self, request: ApprovalRequest, offload: Offload = call_inline) -> ToolVerdict:
        """Run the pre_tool hooks in order (see the module doc); the verdict carries rewritten arguments."""
        rewritten = False
        for hook in self.pre_tool:
            answer = await self._call("pre_tool", hook, request, offload=offload)
            if answer is None or answer is _FAILED:
                continue
            if isinstance(answer, dict):
                request = replace(request, args=dict(answer))
                rewritten = True
                continue
            if isinstance(answer, str):
                return ToolVerdict(Decision.DENY, answer or "a pre_tool hook refused it", request, rewritten)
            if isinstance(answer, bool):
                answer = Decision.ALLOW if answer else Decision.DENY
            try:
                decision = Decision(answer)
            except ValueError:
                self._report_bad_answer(hook, answer)
                continue
            return ToolVerdict(decision, "a pre_tool hook refused it", request, rewritten)
        return ToolVerdict(None, "", request, rewritten)

    async def tool_error_message(self, record: Any, error: BaseException, offload: Offload = call_inline) -> str | None:
        """The replacement error message from the first on_tool_error hook that returns a str."""
        replacement = None
        for answer in await self.run("on_tool_error", record, error, offload=offload):
            if replacement is None and isinstance(answer, str):
                replacement = answer
        return replacement

    def _report_bad_answer(self, hook: Hook, answer: Any) -> None:
        if id(hook) not in self._reported:
            self._reported.add(id(hook))
            log.warning("agy hook pre_tool %s returned %r; return a Decision, a bool, a str reason, a dict "
                        "of arguments or None (the answer is ignored)", getattr(hook, "__name__", hook), answer)
