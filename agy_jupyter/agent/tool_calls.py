"""Running the model's function calls: policies and approval, argument validation, the tool itself.

Whatever happens (unknown tool, denial, bad arguments, an exception, a timeout) the call gets a
functionResponse with its id, which goes back to the model.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from google.genai import types

from ..runtime.errors import ToolError
from .events import ApprovalRequested, ToolCallStarted, ToolFinished
from .history import ToolCallRecord
from .hooks import Hooks
from .policies import ApprovalRequest, Decision, PolicySet, ask
from .tools import Tool, result_to_response
from .turn import Turn

log = logging.getLogger(__name__)


class ToolCaller:
    """Runs one agent's tool calls under its policies, hooks and approval handler."""

    def __init__(self, agent: str, tools: dict[str, Tool], policies: PolicySet, hooks: Hooks,
                 tool_timeout: float, approval_handler: Any):
        self.agent = agent
        self.tools = tools
        self.policies = policies
        self.hooks = hooks
        self.tool_timeout = tool_timeout
        self.approval_handler = approval_handler

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
            return self.answer(turn, record, "denied", {"error": f"the call was denied: {reason}"})
        try:
            kwargs = tool.validate(record.args)
        except ToolError as exc:
            return self.answer(turn, record, "error", {"error": f"invalid arguments: {exc.message}"})
        turn.set_status("calling tool", tool.name)
        limit = tool.timeout or self.tool_timeout
        started = time.perf_counter()
        try:
            async with asyncio.timeout(limit):
                if tool.is_async:
                    value = await tool.func(**kwargs)
                else:  # a worker thread, with this context copied, keeps the loop free
                    value = await asyncio.to_thread(tool.func, **kwargs)
        except TimeoutError:
            return await self._tool_failed(turn, record, ToolError(tool.name, f"timed out after {limit:g} s"))
        except Exception as exc:
            return await self._tool_failed(turn, record, exc)
        finally:
            record.duration = time.perf_counter() - started
        part = self.answer(turn, record, "ok", result_to_response(value))
        await self.hooks.run("post_tool", record)
        return part

    async def _tool_failed(self, turn: Turn, record: ToolCallRecord, exc: BaseException) -> types.Part:
        message = exc.message if isinstance(exc, ToolError) else f"{type(exc).__name__}: {exc}"
        part = self.answer(turn, record, "error", {"error": message})
        await self.hooks.run("on_tool_error", record, exc)
        return part

    def answer(self, turn: Turn, record: ToolCallRecord, status: str, result: dict) -> types.Part:
        record.status = status
        record.result = result
        turn.stream.emit(ToolFinished(record.id, record.name, status, result))
        return types.Part(function_response=types.FunctionResponse(id=record.id, name=record.name,
                                                                   response=result))

    async def _decide(self, tool: Tool, record: ToolCallRecord, turn: Turn) -> tuple[Decision, str]:
        request = ApprovalRequest(agent=self.agent, tool=tool.name, args=record.args, call_id=record.id,
                                  turn=turn.index)
        hooked = await self.hooks.decide_tool(request)
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
            answer = await ask(handler, request)
        except Exception as exc:  # a broken handler denies; it must not end the turn
            log.warning("agy approval handler failed: %r", exc)
            return Decision.DENY, f"the approval could not be obtained ({type(exc).__name__}: {exc})"
        if answer.always:
            self.policies.always_allow(tool.name)
        if answer.approved:
            return Decision.ALLOW, ""
        return Decision.DENY, answer.reason or "the user denied it"

    def refuse(self, turn: Turn, call: types.FunctionCall, reason: str) -> types.Part:
        record = ToolCallRecord(id=call.id, name=call.name or "", args=dict(call.args or {}), status="error",
                                decided_by="limit")
        turn.tool_calls.append(record)
        return self.answer(turn, record, "error", {"error": reason})
