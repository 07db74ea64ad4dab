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
from typing import Any

from google.genai import types

from ..runtime.errors import ToolError
from .events import ApprovalRequested, ToolCallStarted, ToolFinished
from .history import ToolCallRecord
from .hooks import Hooks
from .policies import ApprovalRequest, Decision, PolicySet, ask
from .content import is_dataframe
from .tools import Tool, response_parts, result_to_response
from .turn import Turn
from .worker_threads import WorkerThreads

log = logging.getLogger(__name__)

DENIED_PREFIX = "the call was denied: "


class ToolCaller:
    """Runs one agent's tool calls under its policies, hooks and approval handler."""

    def __init__(self, agent: str, tools: dict[str, Tool], policies: PolicySet, hooks: Hooks,
                 tool_timeout: float, approval_handler: Any, threads: WorkerThreads):
        self.agent = agent
        self.tools = tools
        self.policies = policies
        self.hooks = hooks
        self.tool_timeout = tool_timeout
        self.approval_handler = approval_handler
        self.threads = threads

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

    async def _call_tool(self, tool: Tool, kwargs: dict[str, Any], limit: float) -> tuple[dict, Any]:
        """The tool's result as a functionResponse dict and its media parts; ToolError when it times out."""
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
        part = self.answer(turn, record, "error", {"error": message})
        await self.hooks.run("on_tool_error", record, exc, offload=self.threads.call)
        return part

    def answer(self, turn: Turn, record: ToolCallRecord, status: str, result: dict,
               media: list[types.FunctionResponsePart] | None = None) -> types.Part:
        record.status = status
        record.result = result
        turn.stream.emit(ToolFinished(record.id, record.name, status, result))
        return types.Part(function_response=types.FunctionResponse(id=record.id, name=record.name,
                                                                   response=result, parts=media))

    async def _decide(self, tool: Tool, record: ToolCallRecord, turn: Turn) -> tuple[Decision, str]:
        request = ApprovalRequest(agent=self.agent, tool=tool.name, args=record.args, call_id=record.id,
                                  turn=turn.index, preview=_preview(tool, record.args))
        hooked = await self.hooks.decide_tool(request, offload=self.threads.call)
        if hooked in (Decision.ALLOW, Decision.DENY):
            record.decided_by = "hook"
            return hooked, "a pre_tool hook refused it"
        rule = self.policies.decide(tool.name)
        decision = hooked or rule.decision
        record.decided_by = "policy"
        if decision is Decision.ALLOW:
            return decision, ""
        if decision is Decision.DENY:
            return decision, rule.reason or f"the agent's policy denies {tool.name!r}"
        handler = turn.approval_handler or self.approval_handler
        if handler is None:
            record.decided_by = "no handler"
            return Decision.DENY, (f"{tool.name!r} needs the user's approval and nobody can answer here; "
                                   f"allow it with policies=[allow({tool.name!r})] or `--policy allow`")
        turn.set_status("awaiting approval", tool.name)
        turn.stream.emit(ApprovalRequested(record.id, tool.name, record.args))
        record.decided_by = "user"
        try:
            answer = await ask(handler, request, self.threads.call)
        except Exception as exc:  # a broken handler denies; it must not end the turn
            log.warning("agy approval handler failed: %r", exc)
            return Decision.DENY, f"the approval could not be obtained ({type(exc).__name__}: {exc})"
        if not answer.approved:  # "always" never turns a deny into a standing allow
            return Decision.DENY, answer.reason or "the user denied it"
        if answer.always:
            self.policies.always_allow(tool.name)
        return Decision.ALLOW, ""

    def refuse(self, turn: Turn, call: types.FunctionCall, reason: str) -> types.Part:
        record = ToolCallRecord(id=call.id, name=call.name or "", args=dict(call.args or {}), status="error",
                                decided_by="limit")
        turn.tool_calls.append(record)
        return self.answer(turn, record, "error", {"error": reason})


def _convert(value: Any) -> tuple[dict, list[types.FunctionResponsePart] | None]:
    """A tool's result as the functionResponse dict and its media parts (a ToolResult's images)."""
    return result_to_response(value), response_parts(value)


def _call_and_convert(func: Any, kwargs: dict[str, Any]) -> tuple[dict, Any]:
    """On a tool thread: call the sync tool and turn its result into a functionResponse dict and parts."""
    return _convert(func(**kwargs))


def _preview(tool: Tool, args: dict[str, Any]) -> dict[str, Any] | None:
    """What the approval shows of this call; a preview that fails falls back to the arguments."""
    if tool.preview is None:
        return None
    try:
        return tool.preview(args)
    except Exception as exc:  # the user still sees the raw arguments: nothing is hidden
        log.warning("agy: preview of %s failed: %r", tool.name, exc)
        return None
