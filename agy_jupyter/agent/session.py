"""GeminiSession: one live agent on the runtime loop, running turns on google-genai.

A turn is its own asyncio Task: cancelling it closes the HTTP stream at once (a `break` would leave
the socket open until the server finished). Whatever stops a turn (cancel, timeout, error), the
history is repaired before the stream reports the end: partial model output is kept and marked, and
every function call gets a response, so the next turn is always valid.
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from typing import Any

from google.genai import types

from ..runtime.errors import AgentBusy, AgyError, QuotaExhausted, RuntimeClosed, Timeout, ToolError
from ..runtime.quota import backoff_delay, classify_quota_error
from ..runtime.session import RuntimeServices
from ..runtime.stream import ChatStream
from .backend import GeminiBackend, resolve_credentials
from .classify import (check_finish, check_prompt_feedback, classify_exception, enum_name, is_rate_limit,
                       is_retryable_server_error, response_headers)
from .config import AgentConfig
from .content import to_parts
from .events import (ApprovalRequested, QuotaWait, StatusChanged, TextDelta, ThoughtDelta, ToolCallStarted,
                     ToolFinished, TurnFinished)
from .history import (ChatResponse, Message, ToolCallRecord, Usage, contents_for_model, merge_same_role,
                      unanswered_calls)
from .policies import ApprovalRequest, Decision, PolicySet, ask
from .tools import Tool, result_to_response

log = logging.getLogger(__name__)

MAX_RATE_LIMIT_RETRIES = 5
MAX_SERVER_RETRIES = 3
SERVER_BACKOFF_BASE = 0.5
SERVER_BACKOFF_MAX = 8.0
CANCELLED_RESULT = {"error": "the call was cancelled before it finished"}
SUMMARY_REQUEST = ("Summarise the conversation so far for your own later use: keep facts, decisions, "
                   "numbers, names, open questions and tool results that matter. Be concise.")


class PartMerger:
    """Merges streamed parts into one model turn, keeping signatures and calls exactly as received.

    Text pieces of the open part are kept in a list and joined once when `parts` is read: copying the
    text so far on every chunk would make a long reply quadratic.
    """

    def __init__(self) -> None:
        self._closed: list[types.Part] = []
        self._open: types.Part | None = None  # the first piece of the text part being merged
        self._pieces: list[str] = []
        self._signature: bytes | None = None

    def add(self, part: types.Part) -> None:
        if (self._open is not None and self._signature is None and _plain_text(part)
                and bool(self._open.thought) == bool(part.thought)):
            # a signature arriving on a later piece stays on the merged part that holds its text
            self._pieces.append(part.text)
            self._signature = part.thought_signature
            return
        self._close()
        if _plain_text(part):
            self._open, self._pieces, self._signature = part, [part.text], part.thought_signature
        else:
            self._closed.append(part)

    def _close(self) -> None:
        if self._open is not None:
            self._closed.append(self._merged())
            self._open = None

    def _merged(self) -> types.Part:
        if len(self._pieces) == 1 and self._signature == self._open.thought_signature:
            return self._open
        return self._open.model_copy(update={"text": "".join(self._pieces), "thought_signature": self._signature})

    @property
    def parts(self) -> list[types.Part]:
        return [*self._closed, self._merged()] if self._open is not None else list(self._closed)


_TEXT_FIELDS = frozenset({"text", "thought", "thought_signature"})


def _plain_text(part: types.Part) -> bool:
    """A text (or thought) part and nothing else: only those may be merged."""
    return part.text is not None and all(
        name in _TEXT_FIELDS or getattr(part, name) is None for name in part.model_fields_set)


class _Turn:
    """Mutable state of one running turn."""

    def __init__(self, index: int, stream: ChatStream, approval_handler: Any):
        self.index = index
        self.stream = stream
        self.approval_handler = approval_handler
        self.text: list[str] = []
        self.thoughts: list[str] = []
        self.tool_calls: list[ToolCallRecord] = []
        self.usage = Usage()
        self.finish_reason: str | None = None
        self.ratings: list[types.SafetyRating] | None = None
        self.merger: PartMerger | None = None  # the model message being streamed, if any
        self.status = ""
        self.stop_reason = "STOP"

    @property
    def partial_text(self) -> str:
        return "".join(self.text)


class GeminiSession:
    """The agent loop: stream, ask policies, run tools, answer the model, until a final answer."""

    def __init__(self, config: AgentConfig, services: RuntimeServices, agent_id: int):
        self.config = config
        self.name = config.name
        self.agent_id = agent_id
        self.services = services
        self.loop = services.loop
        api_key = config.api_key.get_secret_value() if config.api_key else None
        self.credentials = resolve_credentials(api_key=api_key)  # ConfigError now, not at the first chat
        self.quota = services.quota.state_for_key(self.credentials.quota_key)
        self.tools: dict[str, Tool] = {t.name: t for t in config.all_tools()}
        self.policies = PolicySet(config.policies, config.default_policy)
        self.messages: list[Message] = []
        self.state = "idle"
        self._backend: GeminiBackend | None = None
        self._turns = 0
        self._total_usage = Usage()
        self._last_turn_usage = Usage()
        self._compactions: list[int] = []
        self._last_response: str | None = None
        self._last_turn: ChatResponse | None = None
        self._turn_task: asyncio.Task | None = None
        self._inbox: collections.deque[tuple[Any, str | None]] = collections.deque()
        self._inbox_task: asyncio.Task | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._wakeup = asyncio.Event()
        self._closed = False
        self._last_error: str | None = None

    def __repr__(self) -> str:
        return f"<GeminiSession {self.name} ({self.config.model}) {self.state}, {self._turns} turns>"

    @property
    def backend(self) -> GeminiBackend:
        if self._backend is None:  # one client per runtime and credential, shared by its agents
            self._backend = self.services.resources.get(self.credentials.cache_key,
                                                        lambda: GeminiBackend(self.credentials))
        return self._backend

    # -- turns -----------------------------------------------------------------------------------

    def start_turn(self, prompt: Any, *, approval_handler: Any = None) -> ChatStream:
        if self._closed:
            error = RuntimeClosed(f"agent {self.name!r} was shut down", cause="shutdown_agent")
            error.hint = "its history is still readable; create a new agent to go on talking"
            raise error
        if self._turn_task is not None:
            raise AgentBusy(f"agent {self.name!r} is already answering")
        parts = to_parts(prompt)
        self._turns += 1
        stream = ChatStream(self.loop, label=f"chat with {self.name}")
        turn = _Turn(self._turns, stream, approval_handler)
        self._turn_task = self.loop.create_task(self._run_turn(parts, turn), name=f"agy-turn-{self.name}")
        stream.attach_task(self._turn_task)
        self._idle.clear()
        return stream

    async def _run_turn(self, parts: list[types.Part], turn: _Turn) -> None:
        stream = turn.stream
        self.messages.append(Message(role="user", parts=parts, kind="prompt", turn=turn.index))
        limit = self.services.config.chat_timeout
        try:
            try:
                async with asyncio.timeout(limit):
                    await self.config.hooks.run("pre_turn", parts)
                    await self._converse(turn)
                    await self._maybe_compact(turn)
            except TimeoutError:
                raise Timeout("chat", limit) from None
        except asyncio.CancelledError:
            response = self._end_turn(turn, "cancelled")
            self._set_status(turn, "cancelled")
            stream.emit(TurnFinished(response))
            stream.finish(response)
        except Exception as exc:
            error = classify_exception(exc, partial_text=turn.partial_text)
            self._last_error = f"{type(error).__name__}: {error}"
            self._end_turn(turn, "error")
            self._set_status(turn, "error", str(error))
            stream.fail(error)
        else:
            response = self._end_turn(turn, "complete")
            self._set_status(turn, "done")
            stream.emit(TurnFinished(response))
            stream.finish(response)
        finally:
            self._turn_task = None
            self._settle_idle()
        if stream.done() and stream.error() is None:
            await self.config.hooks.run("post_turn", stream.result(timeout=0))

    async def _converse(self, turn: _Turn) -> None:
        calls_left = self.config.max_tool_calls
        allow_calls = True
        while True:
            reply = await self._call_model(turn, allow_calls)
            check_finish(turn.finish_reason, turn.ratings, turn.partial_text)
            calls = reply.function_calls
            if not calls:
                return
            results = Message(role="user", parts=[], kind="tool_results", turn=turn.index)
            self.messages.append(results)
            for call in calls:
                if calls_left > 0 and allow_calls:
                    calls_left -= 1
                    results.parts.append(await self._run_tool(call, turn))
                else:
                    results.parts.append(self._refuse_call(turn, call))
            if not allow_calls:  # the model called tools even when told not to: stop here
                turn.stop_reason = "tool_limit"
                return
            if calls_left == 0:
                allow_calls = False  # one last call, tools off, so the model answers with what it has

    def _refuse_call(self, turn: _Turn, call: types.FunctionCall) -> types.Part:
        record = ToolCallRecord(id=call.id, name=call.name or "", args=dict(call.args or {}), status="error",
                                decided_by="limit")
        turn.tool_calls.append(record)
        limit = self.config.max_tool_calls
        return self._finish_tool(turn, record, "error", {
            "error": f"tool-call limit of {limit} per turn reached; answer with what you have"})

    # -- one model call, with quota waits and bounded retries ------------------------------------

    async def _call_model(self, turn: _Turn, allow_calls: bool) -> Message:
        config = self.config.generate_config(allow_calls=allow_calls)
        contents = contents_for_model(self.messages)
        rate_limited = server_errors = 0
        while True:
            await self._wait_for_quota(turn)
            turn.merger = merger = PartMerger()
            usage_metadata = None
            self._set_status(turn, "thinking")
            try:
                chunks = await self.backend.stream(self.config.model, contents, config)
                async for chunk in chunks:
                    check_prompt_feedback(chunk)
                    if chunk.usage_metadata is not None:
                        usage_metadata = chunk.usage_metadata
                    candidate = chunk.candidates[0] if chunk.candidates else None
                    if candidate is None:
                        continue
                    if candidate.finish_reason is not None:
                        turn.finish_reason = enum_name(candidate.finish_reason)
                        turn.ratings = candidate.safety_ratings
                    for part in (candidate.content.parts or []) if candidate.content else []:
                        merger.add(part)
                        self._emit_part(turn, part)
            except Exception as exc:
                if merger.parts:
                    raise  # mid-stream: the turn keeps the partial reply and reports the error
                if is_rate_limit(exc):
                    verdict = classify_quota_error(exc.details, response_headers(exc))
                    if verdict.exhausted:
                        raise QuotaExhausted(f"quota exhausted ({verdict.reason}); waiting will not help "
                                             "until it resets", violations=verdict.violations) from None
                    rate_limited += 1
                    if rate_limited > MAX_RATE_LIMIT_RETRIES:
                        raise QuotaExhausted(f"still rate limited after {MAX_RATE_LIMIT_RETRIES} retries",
                                             violations=verdict.violations) from None
                    turn.stream.emit(QuotaWait(self.quota.record_quota_hit(verdict.retry_after)))
                    continue
                if is_retryable_server_error(exc) and server_errors < MAX_SERVER_RETRIES:
                    server_errors += 1
                    await asyncio.sleep(backoff_delay(server_errors, SERVER_BACKOFF_BASE, SERVER_BACKOFF_MAX))
                    continue
                raise
            self.quota.record_success()
            usage = Usage.from_metadata(usage_metadata)
            turn.usage += usage
            turn.merger = None
            reply = Message(role="model", parts=merger.parts, kind="reply", turn=turn.index, usage=usage)
            self.messages.append(reply)
            return reply

    async def _wait_for_quota(self, turn: _Turn) -> None:
        remaining = self.quota.remaining()
        if remaining > 0:
            self._set_status(turn, "waiting for quota", f"{remaining:.1f}s")
            await self.quota.wait_for_quota()

    def _emit_part(self, turn: _Turn, part: types.Part) -> None:
        if not part.text:
            return
        if part.thought:
            turn.thoughts.append(part.text)
            turn.stream.emit(ThoughtDelta(part.text))
        else:
            turn.text.append(part.text)
            if turn.status != "streaming":
                self._set_status(turn, "streaming")
            turn.stream.emit(TextDelta(part.text))

    def _set_status(self, turn: _Turn, status: str, detail: str = "") -> None:
        turn.status = status
        self.state = status if status in ("streaming", "thinking", "calling tool", "awaiting approval",
                                          "waiting for quota") else "idle"
        turn.stream.emit(StatusChanged(status, detail))

    # -- tools -----------------------------------------------------------------------------------

    async def _run_tool(self, call: types.FunctionCall, turn: _Turn) -> types.Part:
        record = ToolCallRecord(id=call.id, name=call.name or "", args=dict(call.args or {}))
        turn.tool_calls.append(record)
        turn.stream.emit(ToolCallStarted(record.id, record.name, record.args))
        tool = self.tools.get(record.name)
        if tool is None:
            known = ", ".join(sorted(self.tools)) or "none"
            return self._finish_tool(turn, record, "error",
                                     {"error": f"unknown tool {record.name!r}; available tools: {known}"})
        decision, reason = await self._decide(tool, record, turn)
        if decision is not Decision.ALLOW:
            return self._finish_tool(turn, record, "denied", {"error": f"the call was denied: {reason}"})
        try:
            kwargs = tool.validate(record.args)
        except ToolError as exc:
            return self._finish_tool(turn, record, "error", {"error": f"invalid arguments: {exc.message}"})
        self._set_status(turn, "calling tool", tool.name)
        limit = tool.timeout or self.config.tool_timeout
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
        part = self._finish_tool(turn, record, "ok", result_to_response(value))
        await self.config.hooks.run("post_tool", record)
        return part

    async def _tool_failed(self, turn: _Turn, record: ToolCallRecord, exc: BaseException) -> types.Part:
        message = exc.message if isinstance(exc, ToolError) else f"{type(exc).__name__}: {exc}"
        part = self._finish_tool(turn, record, "error", {"error": message})
        await self.config.hooks.run("on_tool_error", record, exc)
        return part

    def _finish_tool(self, turn: _Turn, record: ToolCallRecord, status: str, result: dict) -> types.Part:
        record.status = status
        record.result = result
        turn.stream.emit(ToolFinished(record.id, record.name, status, result))
        return types.Part(function_response=types.FunctionResponse(id=record.id, name=record.name,
                                                                   response=result))

    async def _decide(self, tool: Tool, record: ToolCallRecord, turn: _Turn) -> tuple[Decision, str]:
        request = ApprovalRequest(agent=self.name, tool=tool.name, args=record.args, call_id=record.id,
                                  turn=turn.index)
        hooked = await self.config.hooks.decide_tool(request)
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
        handler = turn.approval_handler or self.config.approval_handler
        if handler is None:
            record.decided_by = "no handler"
            return Decision.DENY, (f"{tool.name!r} needs the user's approval and nobody can answer here; "
                                   f"allow it with policies=[allow({tool.name!r})] or `--policy allow`")
        self._set_status(turn, "awaiting approval", tool.name)
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

    # -- ending a turn ---------------------------------------------------------------------------

    def _end_turn(self, turn: _Turn, status: str) -> ChatResponse:
        """Repair the history for whatever stopped the turn, then account for it."""
        if turn.merger is not None and turn.merger.parts:
            self.messages.append(Message(role="model", parts=turn.merger.parts, kind="reply", turn=turn.index,
                                         status=status, usage=Usage()))
        turn.merger = None
        missing = unanswered_calls(self.messages)
        if missing:
            results = self.messages[-1] if self.messages[-1].kind == "tool_results" else None
            if results is None:
                results = Message(role="user", parts=[], kind="tool_results", turn=turn.index)
                self.messages.append(results)
            for call in missing:
                record = next((r for r in turn.tool_calls if r.id == call.id and r.status == "pending"), None)
                if record is None:
                    record = ToolCallRecord(id=call.id, name=call.name or "", args=dict(call.args or {}))
                    turn.tool_calls.append(record)
                results.parts.append(self._finish_tool(turn, record, "cancelled", CANCELLED_RESULT))
            results.status = status
        this_turn = [m for m in self.messages if m.turn == turn.index and m.kind != "summary"]
        if status != "complete":
            model_output = any(m.role == "model" for m in this_turn)
            for message in this_turn:
                if message.role == "model" or message.kind == "tool_results":
                    message.status = status
            if not model_output:  # nothing was answered: keep the prompt in the transcript only
                this_turn[0].status = status
                this_turn[0].excluded = True
        self._last_turn_usage = turn.usage
        self._total_usage += turn.usage
        response = ChatResponse(agent=self.name, turn=turn.index, text=turn.partial_text,
                                thoughts="".join(turn.thoughts), tool_calls=turn.tool_calls, usage=turn.usage,
                                stop_reason="cancelled" if status == "cancelled" else (
                                    turn.finish_reason if turn.stop_reason == "STOP" and turn.finish_reason
                                    else turn.stop_reason),
                                cancelled=status == "cancelled")
        if status == "complete" and self.config.response_schema is not None:
            try:
                response.parsed = self.config.response_schema.model_validate_json(response.text)
            except ValueError as exc:
                response.parse_error = str(exc)
        if response.text:
            self._last_response = response.text
        self._last_turn = response
        return response

    # -- compaction ------------------------------------------------------------------------------

    async def _maybe_compact(self, turn: _Turn) -> None:
        threshold = self.config.compaction_threshold
        last = next((m.usage for m in reversed(self.messages) if m.role == "model" and m.usage), None)
        if not threshold or last is None or last.total_tokens <= threshold:
            return
        keep_from = turn.index - self.config.compaction_keep_turns + 1
        boundary = next((i for i, m in enumerate(self.messages) if m.turn >= keep_from and not m.excluded),
                        len(self.messages))
        older = [m for m in self.messages[:boundary] if not m.excluded]
        if not older:
            return
        self._set_status(turn, "thinking", "compacting the history")
        request = [*contents_for_model(older), types.Content(role="user", parts=[types.Part(text=SUMMARY_REQUEST)])]
        try:
            await self._wait_for_quota(turn)
            reply = await self.backend.generate(self.config.model, merge_same_role(request),
                                                self.config.generate_config(with_tools=False))
        except Exception as exc:  # a failed summary leaves the history as it was; the turn succeeded
            log.warning("agy: compacting %r failed: %s", self.name, classify_exception(exc))
            return
        usage = Usage.from_metadata(reply.usage_metadata)
        turn.usage += usage
        for message in older:
            message.excluded = True
        summary = Message(role="user", kind="summary", turn=older[-1].turn, usage=usage,
                          parts=[types.Part(text=f"Summary of the earlier conversation:\n{reply.text or ''}")])
        self.messages.insert(boundary, summary)
        self._compactions.append(boundary)
        await self.config.hooks.run("on_compaction", {"index": boundary, "messages_summarised": len(older),
                                                      "tokens_before": last.total_tokens})

    # -- inbox and idleness ----------------------------------------------------------------------

    async def deliver(self, message: Any, sender: str | None) -> None:
        if self._closed:
            log.info("agy: dropped a message to %r: the agent was shut down", self.name)
            return
        self._inbox.append((message, sender))
        self._idle.clear()
        self._wakeup.set()
        if self._inbox_task is None or self._inbox_task.done():
            self._inbox_task = self.loop.create_task(self._drain_inbox(), name=f"agy-inbox-{self.name}")

    async def _drain_inbox(self) -> None:
        while self._inbox and not self._closed:
            if self._turn_task is not None:
                await asyncio.wait({self._turn_task})
                continue
            message, sender = self._inbox.popleft()
            prompt = message if sender is None else [f"[message from agent {sender}]", *_as_list(message)]
            try:
                stream = self.start_turn(prompt)
            except AgyError as exc:
                log.warning("agy: message to %r could not start a turn: %s", self.name, exc)
                continue
            await asyncio.wait({self._turn_task}) if self._turn_task else None
            if stream.error() is not None:
                log.warning("agy: turn for a message to %r failed: %s", self.name, stream.error())
        self._settle_idle()

    def _settle_idle(self) -> None:
        if self._turn_task is None and not self._inbox:
            self.state = "idle"
            self._idle.set()

    async def wait_for_idle(self) -> None:
        await self._idle.wait()

    def signal_idle(self) -> None:
        self._idle.set()

    async def wait_for_wakeup(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self._wakeup.wait()
        except TimeoutError:
            return False
        self._wakeup.clear()
        return True

    def is_idle(self) -> bool:
        return self._turn_task is None and not self._inbox

    # -- queries ---------------------------------------------------------------------------------

    def history(self) -> list[Message]:
        return list(self.messages)

    def turn_count(self) -> int:
        return self._turns

    def total_usage(self) -> Usage:
        return self._total_usage

    def last_turn_usage(self) -> Usage:
        return self._last_turn_usage

    def clear_history(self) -> None:
        if self._turn_task is not None:
            raise AgentBusy(f"agent {self.name!r} is answering; cancel the turn before clearing")
        self.messages.clear()
        self._compactions.clear()
        self._turns = 0
        self._last_response = None
        self._last_turn = None

    def describe(self) -> dict[str, Any]:
        """State for listings: what it is doing, turns, tokens, the context size, the last error."""
        last = next((m.usage for m in reversed(self.messages) if m.role == "model" and m.usage), None)
        return {"name": self.name, "model": self.config.model, "state": self.state, "turns": self._turns,
                "tokens": self._total_usage.total_tokens, "context_tokens": last.total_tokens if last else 0,
                "last_error": self._last_error, "backend": self.credentials.describe()}

    def import_history(self, messages: list[dict[str, Any]]) -> None:
        """Replace the history with saved messages (from %agent save); they are validated first."""
        if self._turn_task is not None:
            raise AgentBusy(f"agent {self.name!r} is answering; load its history when it is idle")
        # through JSON, so bytes (thought signatures) are read back from base64 as they were saved
        loaded = [Message.model_validate_json(json.dumps(m)) for m in messages]
        self.messages = loaded
        self._turns = max((m.turn for m in loaded), default=0)
        self._last_response = next((m.text for m in reversed(loaded) if m.role == "model" and m.text), None)

    def compaction_indices(self) -> list[int]:
        return list(self._compactions)

    def last_response(self) -> str | None:
        return self._last_response

    def last_turn(self) -> ChatResponse | None:
        return self._last_turn

    # -- lifecycle -------------------------------------------------------------------------------

    async def cancel(self) -> None:
        task = self._turn_task
        if task is not None:
            task.cancel()
            await asyncio.wait({task})  # returns once the history is repaired

    async def disconnect(self) -> None:
        await self.cancel()
        self._backend = None  # the runtime keeps the shared client; the next call picks it up again

    async def shutdown(self) -> None:
        self._closed = True
        self._inbox.clear()
        if self._inbox_task is not None:
            self._inbox_task.cancel()
        await self.cancel()
        self._settle_idle()

    def snapshot(self) -> dict[str, Any]:
        return {"messages": list(self.messages), "turns": self._turns, "total": self._total_usage,
                "last": self._last_turn_usage, "compactions": list(self._compactions),
                "last_response": self._last_response, "rules": list(self.policies.rules)}

    def restore(self, state: dict[str, Any]) -> None:
        self.messages = list(state["messages"])
        self._turns = state["turns"]
        self._total_usage = state["total"]
        self._last_turn_usage = state["last"]
        self._compactions = list(state["compactions"])
        self._last_response = state["last_response"]
        self.policies.rules = list(state["rules"])


def _as_list(message: Any) -> list[Any]:
    return list(message) if isinstance(message, (list, tuple)) else [message]
