"""Events a turn emits on its ChatStream, in order. Widgets and scripts both read these.

Slotted: a stream keeps every event it emitted (late consumers replay them), one TextDelta per streamed
chunk, so their size is per-chunk memory. Measured (Python 3.11): 56 bytes a TextDelta with slots, 97 with
an instance dict; 100 agents streaming 1,000 chunks each hold 100,000 of them at once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["thinking", "streaming", "calling tool", "awaiting approval", "waiting for quota",
                 "done", "cancelled", "error"]


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str
    kind: str = "text"


@dataclass(frozen=True, slots=True)
class ThoughtDelta:
    text: str
    kind: str = "thought"


@dataclass(frozen=True, slots=True)
class StatusChanged:
    status: Status
    detail: str = ""
    kind: str = "status"


@dataclass(frozen=True, slots=True)
class QuotaWait:
    seconds: float
    kind: str = "quota_wait"


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    call_id: str | None
    name: str
    args: dict[str, Any]
    kind: str = "tool_call"


@dataclass(frozen=True, slots=True)
class ApprovalRequested:
    call_id: str | None
    name: str
    args: dict[str, Any]
    kind: str = "approval"


@dataclass(frozen=True, slots=True)
class ToolFinished:
    call_id: str | None
    name: str
    status: str  # ok / error / denied
    result: dict[str, Any] = field(default_factory=dict)
    kind: str = "tool_result"


@dataclass(frozen=True, slots=True)
class CodeExecutionStarted:
    """Gemini's code_execution tool is running this code on Google's servers."""
    code: str
    language: str = "python"
    id: str | None = None
    kind: str = "code_execution"


@dataclass(frozen=True, slots=True)
class CodeExecuted:
    """The server's result of a code execution: outcome "ok", "failed" or "deadline_exceeded"."""
    code: str
    language: str
    outcome: str
    output: str
    id: str | None = None
    kind: str = "code_result"


@dataclass(frozen=True, slots=True)
class Citations:
    """Web sources a model call was grounded in (google_search / url_context).

    sources: [{"title", "uri"}]; supports: [{"text": a segment of the reply, "sources": [indices]}];
    queries: the web searches the model ran.
    """
    sources: list[dict[str, str]]
    supports: list[dict[str, Any]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    kind: str = "citations"


@dataclass(frozen=True, slots=True)
class TurnFinished:
    response: Any  # ChatResponse
    kind: str = "finished"
