"""Events a turn emits on its ChatStream, in order. Widgets and scripts both read these."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["thinking", "streaming", "calling tool", "awaiting approval", "waiting for quota",
                 "done", "cancelled", "error"]


@dataclass(frozen=True)
class TextDelta:
    text: str
    kind: str = "text"


@dataclass(frozen=True)
class ThoughtDelta:
    text: str
    kind: str = "thought"


@dataclass(frozen=True)
class StatusChanged:
    status: Status
    detail: str = ""
    kind: str = "status"


@dataclass(frozen=True)
class QuotaWait:
    seconds: float
    kind: str = "quota_wait"


@dataclass(frozen=True)
class ToolCallStarted:
    call_id: str | None
    name: str
    args: dict[str, Any]
    kind: str = "tool_call"


@dataclass(frozen=True)
class ApprovalRequested:
    call_id: str | None
    name: str
    args: dict[str, Any]
    kind: str = "approval"


@dataclass(frozen=True)
class ToolFinished:
    call_id: str | None
    name: str
    status: str  # ok / error / denied
    result: dict[str, Any] = field(default_factory=dict)
    kind: str = "tool_result"


@dataclass(frozen=True)
class TurnFinished:
    response: Any  # ChatResponse
    kind: str = "finished"
