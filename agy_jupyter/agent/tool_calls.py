"""Running the model's function calls: policies and approval, argument validation, the tool itself.

Whatever happens (unknown tool, denial, bad arguments, an exception, a timeout) the call gets a
functionResponse with its id, which goes back to the model. User code that blocks (sync tools, sync
hooks and approval handlers, DataFrame results) runs on the runtime's worker threads, never on the loop.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from google.genai import types

from ..runtime.errors import ToolError
from .events import ApprovalRequested, ToolCallStarted, ToolFinished
from .history import ToolCallRecord
from .hooks import Hooks, callable_name, report_failure
from .policies import Approval, ApprovalRequest, CallInfo, Decision, PolicyRule, PolicySet, ask, stricter
from .content import is_dataframe
from .tools import Tool, result_to_response, split_media
from .turn import Turn
from .worker_threads import WorkerThreads

log = logging.getLogger(__name__)

DENIED_PREFIX = "the call was denied: "


class ToolCaller:
    """Runs one agent's tool calls under its policies, hooks and approval handler."""

    def __init__(self, agent: str, tools: dict[str, Tool], policies: PolicySet, hooks: Hooks,
                 tool_timeout: float, approval_handler: Any, threads: WorkerThreads,
                 workspace: Path | None = None):
        self.agent = agent
        self.tools = tools
        self.policies = policies
        self.hooks = hooks
        self.tool_timeout = tool_timeout
        self.approval_handler = approval_handler
        self.threads = threads
        self.workspace = workspace  # for when(args, call) predicates such as workspace_only()
        self._reported: set[int] = set()  # id() of handlers whose failure was logged

    def stuck_calls(self) -> list[dict[str, Any]]:
        """This agent's sync tool calls that timed out (or were cancelled) and still hold a thread."""
        return self.threads.stuck_calls(owner=self)

    async def run(self, call: types.FunctionCall, turn: Turn) -> types.Part:
        record = ToolCallRecord(id=call.id, name=call.name or "", args=dict(call.args or {}))
        turn.tool_calls.append(record)
        turn.stream.emit(ToolCallStarted(record.id, record.name, record.args))
        tool = self.tools.get(record.name)
        if tool is None:
            known = ", ".join(sorted(self.tools)) or "none"
            return self.answer(turn, record, "error",
                                     {"error": f"unknown tool {record.name!r}; available tools: {known}"})
        decision, reason = await self._decide(tool, record, turn)
        if decision is not Decision.ALLOW:
            return self.answer(turn, record, "denied", {"error": DENIED_PREFIX + reason})
        try:
            kwargs = tool.validate(record.args)
        except ToolError as exc:
            return self.answer(turn, record, "error", {"error": f"invalid arguments: {exc.message}"})
        turn.set_status("calling tool", tool.name)
        limit = tool.timeout or self.tool_timeout
        started = time.perf_counter()
        try:
            response, media = await self._call_tool(tool, kwargs, limit)
        except Exception as exc:
            return await self._tool_failed(turn, record, exc)
        finally:
            record.duration = time.perf_counter() - started
        part = self.answer(turn, record, "ok", response, media)
        await self.hooks.run("post_tool", record, offload=self.threads.call)
        return part

    async def _call_tool(self, tool: Tool, kwargs: dict[str, Any],
                         limit: float) -> tuple[dict, list[types.FunctionResponsePart]]:
        """The tool's result as a functionResponse dict and media parts; ToolError when it times out."""
        if not tool.is_async:  # its own thread, which also converts the result
            return await self.threads.run_tool(self, tool.name, functools.partial(
                _call_and_convert, tool.func, kwargs), limit)
        scope = asyncio.timeout(limit)
        try:
            async with scope:
                value = await tool.func(**kwargs)
        except TimeoutError:
            if scope.expired():  # ours; a TimeoutError the tool raised itself is its own error
                raise ToolError(tool.name, f"timed out after {limit:g} s") from None
            raise
        # a DataFrame's summary is real work: off the loop, like a sync tool's result
        return await self.threads.call(_convert, value) if is_dataframe(value) else _convert(value)

    async def _tool_failed(self, turn: Turn, record: ToolCallRecord, exc: BaseException) -> types.Part:
        message = exc.message if isinstance(exc, ToolError) else f"{type(exc).__name__}: {exc}"
        replacement = await self.hooks.tool_error_message(record, exc, offload=self.threads.call)
        return self.answer(turn, record, "error", {"error": replacement if replacement is not None else message})

    def answer(self, turn: Turn, record: ToolCallRecord, status: str, result: dict,
               media: list[types.FunctionResponsePart] | None = None) -> types.Part:
        record.status = status
        record.result = result
        turn.stream.emit(ToolFinished(record.id, record.name, status, result))
        return types.Part(function_response=types.FunctionResponse(id=record.id, name=record.name,
                                                                   response=result, parts=media or None))

    async def _decide(self, tool: Tool, record: ToolCallRecord, turn: Turn) -> tuple[Decision, str]:
        """Hooks, then policies, then (for an ask) a standing grant or the approval handler.

        A pre_tool hook may rewrite the arguments: `record.args` then holds what will run."""
        request = ApprovalRequest(agent=self.agent, tool=tool.name, args=record.args, call_id=record.id,
                                  turn=turn.index)
        verdict = await self.hooks.decide_tool(request, offload=self.threads.call)
        if verdict.rewritten:
            record.args = dict(verdict.request.args)
        request = replace(verdict.request, preview=_preview(tool, record.args))
        if verdict.decision in (Decision.ALLOW, Decision.DENY):
            record.decided_by = "hook"
            return verdict.decision, verdict.reason
        call = CallInfo(tool=tool.name, effect=tool.effect, workspace=self.workspace)
        try:
            rule = self.policies.decide(tool.name, record.args, call)
        except Exception as exc:  # a broken when= predicate must not run the call unchecked
            log.warning("agy: a policy predicate for %s failed: %r", tool.name, exc)
            record.decided_by = "policy"
            return Decision.DENY, f"a policy rule could not be checked ({type(exc).__name__}: {exc})"
        # a hook's ASK asks even where a rule would allow, but never undoes a deny
        decision = stricter(verdict.decision, rule.decision) if verdict.decision else rule.decision
        record.decided_by = "policy"
        if decision is Decision.DENY:
            if rule.handler is not None:  # told, for audit; nothing undoes a deny
                await self._ask_handler(rule.handler, request, rule)
            return decision, rule.reason or f"the agent's policy denies {tool.name!r}"
        if decision is Decision.ALLOW:
            if rule.handler is None:
                return decision, ""
            answer = await self._ask_handler(rule.handler, request, rule)
            return (Decision.ALLOW, "") if answer.approved else (Decision.DENY, answer.reason or (
                f"the handler of the agent's allow rule for {rule.tool!r} vetoed it"))
        if verdict.decision is None and self.policies.granted(tool.name, record.args):
            return Decision.ALLOW, ""  # a standing grant from an earlier "always allow"
        own = rule.handler if rule.decision is Decision.ASK else None  # an allow rule's handler only vetoes
        handler = own or turn.approval_handler or self.approval_handler
        if handler is None:
            record.decided_by = "no handler"
            return Decision.DENY, (f"{tool.name!r} needs the user's approval and nobody can answer here; "
                                   f"allow it with policies=[allow({tool.name!r})] or `--policy allow`")
        turn.set_status("awaiting approval", tool.name)
        turn.stream.emit(ApprovalRequested(record.id, tool.name, record.args))
        record.decided_by = "user"
        answer = await self._ask_handler(handler, request, rule if own else None)
        record.decided_by = answer.decided_by or "user"
        if not answer.approved:  # "always" never turns a deny into a standing allow
            return Decision.DENY, answer.reason or "the user denied it"
        if answer.always:
            self.policies.always_allow(tool.name, record.args if answer.always_scope == "args" else None)
        return Decision.ALLOW, ""

    async def _ask_handler(self, handler: Any, request: ApprovalRequest, rule: PolicyRule | None = None) -> Approval:
        """One path for every handler: the approval handler that answers an ask, and a rule's handler
        (see policies.py). One that raises or answers nonsense denies the call, reported once."""
        try:
            return await ask(handler, request, self.threads.call,
                             none_approves=rule is not None and rule.decision is not Decision.ASK)
        except Exception as exc:  # a broken handler must not end the turn, nor let the call run unchecked
            what = (f"handler of the {rule.decision.value} rule for {rule.tool!r}" if rule is not None
                    else "approval handler") + f" {callable_name(handler)}"
            report_failure(self._reported, handler, what, "the call is denied", exc, logger=log)
            return Approval(approved=False, reason=f"the {what} failed ({type(exc).__name__}: {exc})")

    def refuse(self, turn: Turn, call: types.FunctionCall, reason: str) -> types.Part:
        record = ToolCallRecord(id=call.id, name=call.name or "", args=dict(call.args or {}), status="error",
                                decided_by="limit")
        turn.tool_calls.append(record)
        return self.answer(turn, record, "error", {"error": reason})


def _call_and_convert(func: Any, kwargs: dict[str, Any]) -> tuple[dict, list[types.FunctionResponsePart]]:
    """On a tool thread: call the sync tool and turn its result into a functionResponse dict and media."""
    return _convert(func(**kwargs))


def _convert(value: Any) -> tuple[dict, list[types.FunctionResponsePart]]:
    rest, media = split_media(value)
    return result_to_response(rest), media


def _preview(tool: Tool, args: dict[str, Any]) -> dict[str, Any] | None:
    """What the approval shows of this call; a preview that fails falls back to the arguments."""
    if tool.preview is None:
        return None
    try:
        return tool.preview(args)
    except Exception as exc:  # the user still sees the raw arguments: nothing is hidden
        log.warning("agy: preview of %s failed: %r", tool.name, exc)
        return None
