"""One running turn's state, the merging of streamed parts into one model message, and the response
of a turn read back from a saved history."""
from __future__ import annotations

from typing import Any

from google.genai import types

from ..runtime.stream import ChatStream
from .events import CodeExecuted, CodeExecutionStarted, StatusChanged
from .history import ChatResponse, Message, ToolCallRecord, Usage
from .server_tools import GroundingCollector, code_runs, grounding_sources, language_name, outcome_name


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


class Turn:
    """Mutable state of one running turn."""

    def __init__(self, index: int, stream: ChatStream, approval_handler: Any, *, raise_on_deny: bool = False):
        self.index = index
        self.stream = stream
        self.approval_handler = approval_handler
        self.raise_on_deny = raise_on_deny  # a denied call ends the turn with PolicyDenied
        self.text: list[str] = []
        self.thoughts: list[str] = []
        self.tool_calls: list[ToolCallRecord] = []
        self.usage = Usage()
        self.finish_reason: str | None = None
        self.ratings: list[types.SafetyRating] | None = None
        self.merger: PartMerger | None = None  # the model message being streamed, if any
        self.grounding = GroundingCollector()  # the grounding of the model call being streamed
        self.citations: list[dict[str, str]] = []  # every source of the turn, once
        self.code_runs: list[dict[str, str]] = []  # [{code, language, outcome, output}] of code_execution
        self._code: CodeExecutionStarted | None = None  # the server's code awaiting its result
        self.status = ""
        self.stop_reason = "STOP"

    @property
    def partial_text(self) -> str:
        return "".join(self.text)

    def reply_text(self, replies: list[Message]) -> str:
        """The turn's text; when one part of its model messages holds all of it, that part's own string.

        A finished turn's text then lives once, in the history, and its response (kept as the agent's
        last turn) shares it: a second copy of every reply would stay for the agent's lifetime.
        """
        text = self.partial_text
        parts = [part for message in replies for part in message.parts if part.text and not part.thought]
        return parts[0].text if len(parts) == 1 and parts[0].text == text else text

    def set_status(self, status: str, detail: str = "") -> None:
        self.status = status
        self.stream.emit(StatusChanged(status, detail))

    def begin_call(self) -> PartMerger:
        """A model call (or its retry) starts: fresh parts and grounding."""
        self.merger = PartMerger()
        self.grounding = GroundingCollector()
        return self.merger

    def end_call(self) -> types.GroundingMetadata | None:
        """The call's reply is complete: emit its citations; return its grounding for the history."""
        event = self.grounding.event()
        if event is not None:
            known = {c["uri"] for c in self.citations}
            self.citations += [s for s in event.sources if s["uri"] not in known]
            self.stream.emit(event)
        return self.grounding.metadata

    def server_part(self, part: types.Part) -> bool:
        """Emit the events of a code_execution part (True), or leave the part to others (False)."""
        if part.executable_code is not None:
            code = part.executable_code
            self._code = CodeExecutionStarted(code.code or "", language_name(code.language) or "python", code.id)
            self.stream.emit(self._code)
            return True
        if part.code_execution_result is not None:
            result, started = part.code_execution_result, self._code
            self._code = None
            event = CodeExecuted(started.code if started else "", started.language if started else "python",
                                 outcome_name(result.outcome), result.output or "", result.id)
            self.code_runs.append({"code": event.code, "language": event.language, "outcome": event.outcome,
                                   "output": event.output})
            self.stream.emit(event)
            return True
        return False


def response_from_history(agent: str, messages: list[Message]) -> ChatResponse | None:
    """The last turn's response as far as saved messages tell it (text, thoughts, calls, usage)."""
    last = max((m.turn for m in messages if m.kind != "summary"), default=None)
    if last is None:
        return None
    turn = [m for m in messages if m.turn == last and m.kind != "summary"]
    replies = [m for m in turn if m.role == "model"]
    results = {r.id or r.name: r.response for m in turn for r in m.function_responses}
    calls = []
    for call in (c for m in replies for c in m.function_calls):
        result = results.get(call.id or call.name)
        status = "cancelled" if result is None else ("error" if "error" in (result or {}) else "ok")
        calls.append(ToolCallRecord(id=call.id, name=call.name or "", args=dict(call.args or {}),
                                    status=status, result=result))
    usage = sum((m.usage for m in turn if m.usage), Usage())
    cancelled = any(m.status == "cancelled" for m in turn)
    citations: list[dict[str, str]] = []
    for message in replies:
        citations += [s for s in grounding_sources(message.grounding)[0] if s not in citations]
    runs = [run for m in replies for run in code_runs(m.parts) if run["outcome"] is not None]
    return ChatResponse(agent=agent, turn=last, text="".join(m.text for m in replies),
                        thoughts="".join(m.thoughts for m in replies), tool_calls=calls, usage=usage,
                        citations=citations, code_runs=runs,
                        stop_reason="cancelled" if cancelled else "STOP", cancelled=cancelled)
