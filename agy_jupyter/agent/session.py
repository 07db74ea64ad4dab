"""GeminiSession: one live agent on the runtime loop, running turns on google-genai.

A turn is its own asyncio Task: cancelling it closes the HTTP stream at once (a `break` would leave
the socket open until the server finished). Whatever stops a turn (cancel, timeout, error), the
history is repaired before the stream reports the end: partial model output is kept and marked, and
every function call gets a response, so the next turn is always valid. post_turn hooks run inside the
turn, before its reply is delivered: the agent is idle only after them.
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
from typing import Any

from google.genai import types

from ..runtime.errors import (AgentBusy, AgyError, ConfigError, InboxFull, PolicyDenied, QuotaExhausted,
                               RuntimeClosed, TurnRefused)
from ..runtime.quota import backoff_delay, classify_quota_error
from ..runtime import secrets
from ..runtime.session import RuntimeServices
from ..runtime.stream import ChatStream
from . import server_tools
from .backend import GeminiBackend
from .classify import (check_finish, check_prompt_feedback, classify_exception, enum_name, is_connection_failure,
                       is_rate_limit, is_retryable_server_error, response_headers)
from .local import credentials_for, open_backend
from .config import AgentConfig
from .content import quick_parts, to_parts
from .events import QuotaWait, TextDelta, ThoughtDelta, TurnFinished
from .history import (ChatResponse, Message, ToolCallRecord, Usage, contents_for_model, mark_unfinished_turn,
                      merge_same_role, unanswered_calls)
from .persistence import Recorder
from .policies import PolicySet, warn_wholesale_allow
from .stream_close import close_stream
from .tool_calls import DENIED_PREFIX, ToolCaller
from .turn import Turn, response_from_history
from .worker_threads import RESOURCE_KEY as WORKER_THREADS, WorkerThreads

log = logging.getLogger(__name__)

MAX_RATE_LIMIT_RETRIES = 5
MAX_SERVER_RETRIES = 3
SERVER_BACKOFF_BASE = 0.5
SERVER_BACKOFF_MAX = 8.0
CANCELLED_RESULT = {"error": "the call was cancelled before it finished"}
ACTIVE_STATES = frozenset({"thinking", "streaming", "calling tool", "awaiting approval", "waiting for quota"})
SUMMARY_REQUEST = ("Summarise the conversation so far for your own later use: keep facts, decisions, "
                   "numbers, names, open questions and tool results that matter. Be concise.")


class GeminiSession:
    """The agent loop: stream, ask policies, run tools, answer the model, until a final answer."""

    def __init__(self, config: AgentConfig, services: RuntimeServices, agent_id: int):
        self.config = config
        self.name = config.name
        self.agent_id = agent_id
        self.services = services
        self.loop = services.loop
        self.credentials = credentials_for(config)  # ConfigError now, not at the first chat; or a local model
        secrets.remember(self.credentials.api_key)  # redacted from errors and logs from now on
        server_tools.check_backend(config.gemini_tools, config.all_tools(), self.credentials.kind)
        self.quota = services.quota.state_for_key(self.credentials.quota_key)
        self.policies = PolicySet(config.policies, config.default_policy)  # this agent's own copy
        # one set of worker threads per runtime, shared by its agents, closed with the runtime
        self.threads: WorkerThreads = services.resources.get(
            WORKER_THREADS, lambda: WorkerThreads(services.config.tool_threads))
        self._own_tools = {t.name: t for t in config.all_tools()}
        self.tool_caller = ToolCaller(self.name, dict(self._own_tools), self.policies, config.hooks,
                                      config.tool_timeout, config.approval_handler, self.threads,
                                      workspace=config.builtin_context().workspace)
        self.mcp: Any = None  # McpServers once start_mcp_servers() connected them
        self.messages: list[Message] = []
        self.recorder = Recorder(self.name, config)  # saves each message as it ends (agent/persistence.py)
        self._turn: Turn | None = None  # the running turn
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
        self._next_message_at = 0.0  # loop time before which the next message may not start a turn
        self._idle = asyncio.Event()
        self._idle.set()
        self._wakeup = asyncio.Event()
        self._closed = False
        self._last_error: str | None = None
        self._ended = False  # on_session_end ran

    @classmethod
    async def start(cls, config: AgentConfig, services: RuntimeServices, agent_id: int) -> "GeminiSession":
        """Build the session on the runtime loop and run its on_session_start hooks."""
        session = cls(config, services, agent_id)
        if config.mcp_servers:  # their tools join the agent's before the wholesale-allow check below
            await session.start_mcp_servers()
        warn_wholesale_allow(session.name, session.policies, list(session.tool_caller.tools.values()))
        await session._run_hooks("on_session_start", session._session_info())
        return session

    def _session_info(self) -> dict[str, Any]:
        return {"agent": self.name, "model": self.config.model}

    @property
    def state(self) -> str:
        """What the agent is doing: idle, or the running turn's status (thinking, streaming, …)."""
        status = self._turn.status if self._turn is not None else ""
        return status if status in ACTIVE_STATES else "idle"

    def __repr__(self) -> str:
        return f"<GeminiSession {self.name} ({self.config.model}) {self.state}, {self._turns} turns>"

    @property
    def backend(self) -> GeminiBackend:
        if self._backend is None:  # one client per runtime and credential, shared by its agents
            self._backend = self.services.resources.get(self.credentials.cache_key,
                                                        lambda: open_backend(self.credentials))
        return self._backend

    async def start_mcp_servers(self) -> "GeminiSession":
        """Connect the config's MCP servers and offer their tools (at creation, on the runtime loop)."""
        try:  # imports the mcp SDK: only agents with servers pay for it
            from .mcp.connection import McpServers
        except ImportError as exc:
            raise ConfigError(f"MCP servers need the mcp package, version 2 ({exc})",
                              hint="pip install 'agy_jupyter[mcp]'") from None
        servers = McpServers(self.config.mcp_servers, reserved=self._own_tools)
        await servers.start()  # ConfigError if a server fails, or its tools clash with the agent's
        self.mcp = servers
        self._offer_mcp_tools()
        return self

    def _offer_mcp_tools(self) -> None:
        """The tool caller finds MCP tools by the names the model calls (declared names); the set
        changes when a server says its tools changed, or comes back after a restart."""
        tools = self.tool_caller.tools
        tools.clear()
        tools.update(self._own_tools)
        tools.update({t.declared_name: t for t in self.mcp.tools})

    # -- turns -----------------------------------------------------------------------------------

    def start_turn(self, prompt: Any, *, approval_handler: Any = None, raise_on_deny: bool = False) -> ChatStream:
        """Start a turn. `raise_on_deny`: a denied tool call ends the turn with PolicyDenied instead of
        telling the model."""
        if self._closed:
            error = RuntimeClosed(f"agent {self.name!r} was shut down", cause="shutdown_agent")
            error.hint = "its history is still readable; create a new agent to go on talking"
            raise error
        if self._turn_task is not None:
            raise AgentBusy(f"agent {self.name!r} is already answering")
        parts = quick_parts(prompt)  # a bad prompt raises here; a heavy one is converted off the loop
        self._turns += 1
        stream = ChatStream(self.loop, label=f"chat with {self.name}")
        turn = self._turn = Turn(self._turns, stream, approval_handler, raise_on_deny=raise_on_deny)
        self._turn_task = self.loop.create_task(self._run_turn(prompt, parts, turn), name=f"agy-turn-{self.name}")
        stream.attach_task(self._turn_task)
        self._idle.clear()
        return stream

    async def _run_turn(self, prompt: Any, parts: list[types.Part] | None, turn: Turn) -> None:
        stream = turn.stream
        limit = self.services.config.chat_timeout
        scope = asyncio.timeout(limit)
        response: ChatResponse | None = None  # set once the reply is complete; post_turn runs after
        try:
            async with scope:
                if parts is None:
                    parts = await self.threads.call(to_parts, prompt)
                self.messages.append(Message(role="user", parts=parts, kind="prompt", turn=turn.index))
                self.recorder.save(self.messages)
                refusal = await self.config.hooks.refuse_turn(parts, offload=self.threads.call)
                if refusal is not None:  # the prompt stays, marked unanswered: the history is valid
                    raise TurnRefused(refusal)
                await self._converse(turn)
                await self._maybe_compact(turn)
                response = self._end_turn(turn, "complete")
                await self._run_hooks("post_turn", response)
        except asyncio.CancelledError:
            if response is None:
                response = self._end_turn(turn, "cancelled")
                turn.set_status("cancelled")
            else:  # the reply was complete: only its post_turn hooks were cut short
                log.info("agy: %r was cancelled during its post_turn hooks", self.name)
                turn.set_status("done")
            stream.emit(TurnFinished(response))
            stream.finish(response)
        except Exception as exc:
            if response is not None and scope.expired():  # the hooks ran out the chat time, not the reply
                log.warning("agy: post_turn hooks of %r were stopped by the chat timeout (%g s)", self.name, limit)
                turn.set_status("done")
                stream.emit(TurnFinished(response))
                stream.finish(response)
            else:
                ours = scope.expired()  # else a TimeoutError from inside, whose limit we do not know
                error = classify_exception(exc, operation="chat" if ours else "model call",
                                           partial_text=turn.partial_text, timeout=limit if ours else None)
                self._last_error = f"{type(error).__name__}: {error}"
                if response is None:
                    self._end_turn(turn, "error")
                turn.set_status("error", str(error))
                stream.fail(error)
        else:
            turn.set_status("done")
            stream.emit(TurnFinished(response))
            stream.finish(response)
        finally:
            self._turn_task = self._turn = None
            self._settle_idle()

    async def _run_hooks(self, point: str, *args: Any) -> list[Any]:
        return await self.config.hooks.run(point, *args, offload=self.threads.call)

    async def _converse(self, turn: Turn) -> None:
        calls_left = self.config.max_tool_calls
        allow_calls = True
        while True:
            reply = await self._call_model(turn, allow_calls)
            self.recorder.save(self.messages)
            check_finish(turn.finish_reason, turn.ratings, turn.partial_text)
            calls = reply.function_calls
            if not calls:
                return
            results = Message(role="user", parts=[], kind="tool_results", turn=turn.index)
            self.messages.append(results)
            for call in calls:
                if calls_left > 0 and allow_calls:
                    calls_left -= 1
                    results.parts.append(await self.tool_caller.run(call, turn))
                    record = turn.tool_calls[-1]
                    if turn.raise_on_deny and record.status == "denied":  # the caller asked to hear of it
                        reason = (record.result or {}).get("error", "").removeprefix(DENIED_PREFIX)
                        error = PolicyDenied(record.name, reason or "denied")
                        error.hint = f"allow it with policies=[allow({record.name!r})] or an approval handler"
                        raise error
                else:
                    results.parts.append(self.tool_caller.refuse(turn, call, (
                        f"tool-call limit of {self.config.max_tool_calls} per turn reached; answer with what you have")))
            self.recorder.save(self.messages)
            if not allow_calls:  # the model called tools even when told not to: stop here
                turn.stop_reason = "tool_limit"
                return
            if calls_left == 0:
                allow_calls = False  # one last call, tools off, so the model answers with what it has

    # -- one model call, with quota waits and bounded retries ------------------------------------

    async def _call_model(self, turn: Turn, allow_calls: bool) -> Message:
        if self.mcp is not None and await self.mcp.refresh():  # a server's tools changed: offer the new set
            self._offer_mcp_tools()
        config = self.config.generate_config(allow_calls=allow_calls,
                                             extra_tools=self.mcp.tools if self.mcp else [])
        contents = contents_for_model(self.messages, tool_media=not server_tools.before_gemini_3(self.config.model))
        rate_limited = server_errors = 0
        while True:
            await self._wait_for_quota(turn)
            merger = turn.begin_call()
            usage_metadata = None
            turn.set_status("thinking")
            try:
                chunks = await self.backend.stream(self.config.model, contents, config)
                try:
                    async for chunk in chunks:
                        if chunk.usage_metadata is not None:  # first: a chunk that raises below was billed too
                            usage_metadata = chunk.usage_metadata
                        check_prompt_feedback(chunk)
                        self._read_chunk(turn, merger, chunk)
                except Exception:  # we stopped reading early (a blocked prompt, an error of ours): close it
                    await close_stream(chunks)
                    raise
            except BaseException as exc:
                turn.usage += Usage.from_metadata(usage_metadata)  # what the failed call was billed
                if not isinstance(exc, Exception):
                    raise  # a cancel
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
                # a 5xx, or a connection refused / reset before any answer (the request had no effect)
                retryable = is_retryable_server_error(exc) or (usage_metadata is None and is_connection_failure(exc))
                if retryable and server_errors < MAX_SERVER_RETRIES:
                    server_errors += 1
                    await asyncio.sleep(backoff_delay(server_errors, SERVER_BACKOFF_BASE, SERVER_BACKOFF_MAX))
                    continue
                raise
            self.quota.record_success()
            usage = Usage.from_metadata(usage_metadata)
            turn.usage += usage
            turn.merger = None
            reply = Message(role="model", parts=merger.parts, kind="reply", turn=turn.index, usage=usage,
                            grounding=turn.end_call())
            self.messages.append(reply)
            return reply

    def _read_chunk(self, turn: Turn, merger: Any, chunk: types.GenerateContentResponse) -> None:
        candidate = chunk.candidates[0] if chunk.candidates else None
        if candidate is None:
            return
        if candidate.finish_reason is not None:
            turn.finish_reason = enum_name(candidate.finish_reason)
            turn.ratings = candidate.safety_ratings
        turn.grounding.add(candidate)
        for part in (candidate.content.parts or []) if candidate.content else []:
            merger.add(part)
            self._emit_part(turn, part)

    async def _wait_for_quota(self, turn: Turn) -> None:
        remaining = self.quota.remaining()
        if remaining > 0:
            turn.set_status("waiting for quota", f"{remaining:.1f}s")
            await self.quota.wait_for_quota()

    def _emit_part(self, turn: Turn, part: types.Part) -> None:
        if turn.server_part(part) or not part.text:
            return
        if part.thought:
            turn.thoughts.append(part.text)
            turn.stream.emit(ThoughtDelta(part.text))
        else:
            turn.text.append(part.text)
            if turn.status != "streaming":
                turn.set_status("streaming")
            turn.stream.emit(TextDelta(part.text))

    # -- ending a turn ---------------------------------------------------------------------------

    def _end_turn(self, turn: Turn, status: str) -> ChatResponse:
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
                results.parts.append(self.tool_caller.answer(turn, record, "cancelled", CANCELLED_RESULT))
            results.status = status
        if status != "complete":
            mark_unfinished_turn(self.messages, turn.index, status)
        self._last_turn_usage = turn.usage
        self._total_usage += turn.usage
        replies = [m for m in self.messages if m.turn == turn.index and m.role == "model"]
        response = ChatResponse(agent=self.name, turn=turn.index, text=turn.reply_text(replies),
                                thoughts="".join(turn.thoughts), tool_calls=turn.tool_calls, usage=turn.usage,
                                citations=turn.citations, code_runs=turn.code_runs,
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
        self.recorder.save(self.messages, finished_turn=turn.index)  # statuses final, a compaction included
        return response

    # -- compaction ------------------------------------------------------------------------------

    async def _maybe_compact(self, turn: Turn) -> None:
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
        turn.set_status("thinking", "compacting the history")
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
        await self._run_hooks("on_compaction", {"index": boundary, "messages_summarised": len(older),
                                                "tokens_before": last.total_tokens})

    # -- inbox and idleness ----------------------------------------------------------------------

    async def deliver(self, message: Any, sender: str | None) -> None:
        """Queue a message; it becomes a turn once the agent is free (turns from messages are spaced)."""
        if self._closed:
            raise RuntimeClosed(f"agent {self.name!r} was shut down; the message was not delivered",
                                cause="shutdown_agent")
        if len(self._inbox) >= self.services.config.inbox_capacity:
            raise InboxFull(self.name, len(self._inbox))
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
            # Space this agent's message turns only: other agents' inboxes run on their own schedule.
            wait = self._next_message_at - self.loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue  # a user turn may have started meanwhile
            self._next_message_at = self.loop.time() + self.services.config.inter_agent_delay
            message, sender = self._inbox.popleft()
            prompt = message if sender is None else [f"[message from agent {sender}]\n", *_as_list(message)]
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
        self.recorder.save(self.messages)  # an empty history: its saved conversation is deleted

    def describe(self) -> dict[str, Any]:
        """State for listings: what it is doing, turns, tokens, the context size, the last error, and
        its sync tool calls that timed out but still hold a thread ("stuck_calls": [{tool, seconds}]), and
        its MCP servers ("mcp_servers": [{server, transport, tools, running, gone}])."""
        last = next((m.usage for m in reversed(self.messages) if m.role == "model" and m.usage), None)
        return {"name": self.name, "model": self.config.model, "state": self.state, "turns": self._turns,
                "tokens": self._total_usage.total_tokens, "context_tokens": last.total_tokens if last else 0,
                "last_error": self._last_error, "backend": self.credentials.describe(),
                "stuck_calls": self.tool_caller.stuck_calls(),
                "mcp_servers": self.mcp.describe() if self.mcp else [],
                "conversation": self.recorder.conversation}

    def import_history(self, messages: list[dict[str, Any]]) -> None:
        """Replace the history with saved messages (from %agent save); they are validated first."""
        if self._turn_task is not None:
            raise AgentBusy(f"agent {self.name!r} is answering; load its history when it is idle")
        # through JSON, so bytes (thought signatures) are read back from base64 as they were saved
        loaded = [Message.model_validate_json(json.dumps(m)) for m in messages]
        # everything derived from the old history is derived again from the loaded one
        self.messages = loaded
        self._turns = max((m.turn for m in loaded), default=0)
        self._last_response = next((m.text for m in reversed(loaded) if m.role == "model" and m.text), None)
        self._compactions = [i for i, m in enumerate(loaded) if m.kind == "summary"]
        self._total_usage = sum((m.usage for m in loaded if m.usage), Usage())
        self._last_turn = response_from_history(self.name, loaded)
        self._last_turn_usage = self._last_turn.usage if self._last_turn else Usage()
        self._last_error = None
        self.recorder.save(self.messages, finished_turn=self._turns)

    def compaction_indices(self) -> list[int]:
        return list(self._compactions)

    def last_response(self) -> str | None:
        return self._last_response

    def last_turn(self) -> ChatResponse | None:
        return self._last_turn

    async def start_rows(self, job: Any) -> ChatStream:
        """Start agent.map's rows (agent/map.py's MapRun) beside this agent; they never touch its history.
        A coroutine, so the runtime hands back the stream itself rather than awaiting it (a stream is awaitable)."""
        if self._closed:
            raise RuntimeClosed(f"agent {self.name!r} was shut down", cause="shutdown_agent")
        return job.start(self)

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
        if self.mcp is not None:  # after the turn: a call in flight was cancelled with it
            servers, self.mcp = self.mcp, None
            await servers.aclose()
        self._settle_idle()
        if not self._ended:
            self._ended = True
            await self._run_hooks("on_session_end", self._session_info())

    def snapshot(self) -> dict[str, Any]:
        """Everything a restarted runtime needs to bring this agent back as it was."""
        return {"messages": list(self.messages), "turns": self._turns, "total": self._total_usage,
                "last": self._last_turn_usage, "compactions": list(self._compactions),
                "last_response": self._last_response, "last_turn": self._last_turn,
                "last_error": self._last_error, "rules": list(self.policies.rules),
                "grants": list(self.policies.grants), "recorder": self.recorder}

    def restore(self, state: dict[str, Any]) -> None:
        self.messages = list(state["messages"])
        self._turns = state["turns"]
        self._total_usage = state["total"]
        self._last_turn_usage = state["last"]
        self._compactions = list(state["compactions"])
        self._last_response = state["last_response"]
        self._last_turn = state["last_turn"]
        self._last_error = state["last_error"]
        self.policies.rules = list(state["rules"])
        self.policies.grants = list(state.get("grants", []))
        self.recorder = state.get("recorder", self.recorder)  # the same saved conversation goes on


def _as_list(message: Any) -> list[Any]:
    return list(message) if isinstance(message, (list, tuple)) else [message]
