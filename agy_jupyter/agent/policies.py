"""Tool-call policies: allow, deny or ask the user, per tool; and the approval a user gives."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Awaitable, Callable, Union

from pydantic import BaseModel, ConfigDict


class Decision(str, Enum):
    ALLOW = "allow"
    DENY = "deny"
    ASK = "ask"


ANY_TOOL = "*"


class PolicyRule(BaseModel):
    """One rule: what to do when the model calls `tool` ("*" matches every tool)."""

    model_config = ConfigDict(frozen=True)

    tool: str
    decision: Decision
    reason: str | None = None

    def matches(self, tool: str) -> bool:
        return self.tool == ANY_TOOL or self.tool == tool


def allow(tool: str) -> PolicyRule:
    return PolicyRule(tool=tool, decision=Decision.ALLOW)


def deny(tool: str, reason: str | None = None) -> PolicyRule:
    return PolicyRule(tool=tool, decision=Decision.DENY, reason=reason)


def ask_user(tool: str) -> PolicyRule:
    return PolicyRule(tool=tool, decision=Decision.ASK)


def allow_all() -> PolicyRule:
    return allow(ANY_TOOL)


def deny_all(reason: str | None = None) -> PolicyRule:
    return deny(ANY_TOOL, reason)


class PolicySet:
    """Rules checked in order; the first match decides, else the default."""

    def __init__(self, rules: list[PolicyRule], default: Decision = Decision.ASK):
        self.rules = list(rules)
        self.default = default

    def decide(self, tool: str) -> PolicyRule:
        for rule in self.rules:
            if rule.matches(tool):
                return rule
        return PolicyRule(tool=tool, decision=self.default)

    def always_allow(self, tool: str) -> None:
        """"Always allow TOOL for this agent": put an allow rule first."""
        self.rules.insert(0, allow(tool))


@dataclass(frozen=True)
class ApprovalRequest:
    """What the user is asked to approve. Built by the agent from the model's call, never by the model."""

    agent: str
    tool: str
    args: dict[str, Any]
    call_id: str | None
    turn: int
    preview: dict[str, Any] | None = None  # what will run (code, command or diff): Tool.preview of the args


@dataclass(frozen=True)
class Approval:
    """The user's answer. `reason` goes back to the model on a deny.

    `always` only widens an approval: approved and always adds an allow rule for this agent's later
    calls of the tool; on a deny it is ignored (the next call asks again).
    """

    approved: bool
    reason: str | None = None
    always: bool = False


ApprovalHandler = Callable[[ApprovalRequest], Union[Approval, bool, Awaitable[Union[Approval, bool]]]]


async def ask(handler: ApprovalHandler, request: ApprovalRequest,
              offload: Callable[..., Awaitable[Any]]) -> Approval:
    """Call a sync or async approval handler through `offload` (a sync one on a worker thread) and
    normalise its answer."""
    answer = await offload(handler, request)
    if isinstance(answer, Approval):
        return answer
    if isinstance(answer, bool):
        return Approval(approved=answer)
    raise TypeError(f"approval handler returned {type(answer).__name__}; return an Approval or a bool")
