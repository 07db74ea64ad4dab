"""Typed errors: one hierarchy under AgyError, each saying what happened and what to do."""
from __future__ import annotations

from typing import Any

from .secrets import redact


class AgyError(Exception):
    """Base of every agy_jupyter error. `hint` says what the user can do about it."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None, operation: str | None = None):
        message = redact(str(message))  # an API error may quote the request, key included
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = redact(hint)
        self.operation = operation

    def with_operation(self, operation: str) -> "AgyError":
        """Name the operation that failed, once, at the outermost boundary that knows it."""
        if self.operation is None:
            self.operation = operation
        return self

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback: a user's mistake or a service's refusal is one
        # clear line, not a wall of frames.
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {self}"]

    def __str__(self) -> str:
        text = self.message
        if self.operation:
            text = f"{self.operation}: {text}"
        if self.hint:
            text = f"{text} ({self.hint})"
        return text


class SafetyBlocked(AgyError):
    """The prompt was blocked, or the reply stopped with finish reason SAFETY."""

    hint = "rephrase the prompt; the safety ratings say which category fired"

    def __init__(self, message: str, *, reason: str | None = None,
                 ratings: list[dict[str, Any]] | None = None, partial_text: str = ""):
        super().__init__(message)
        self.reason = reason
        self.ratings = ratings or []
        self.partial_text = partial_text


class MaxTokens(AgyError):
    """The reply hit the output token limit; `partial_text` holds what arrived."""

    hint = "raise max_output_tokens or ask for a shorter answer"

    def __init__(self, message: str, *, partial_text: str = ""):
        super().__init__(message)
        self.partial_text = partial_text


class Timeout(AgyError):
    """An operation did not finish within its time limit."""

    hint = "raise the timeout (AGY_CHAT_TIMEOUT_SECS or RuntimeConfig) or retry"

    def __init__(self, operation: str, duration: float, message: str | None = None):
        super().__init__(message or f"{operation} timed out after {duration:g} s", operation=None)
        self.timed_out_operation = operation
        self.duration = duration


class RuntimeClosed(AgyError):
    """The runtime thread is gone (shut down or crashed); `cause` says why."""

    hint = "call restart() on the runtime, or restart the kernel"

    def __init__(self, message: str, *, cause: BaseException | str | None = None):
        super().__init__(message)
        self.cause = cause


class QuotaExhausted(AgyError):
    """A daily or free-tier quota is used up; waiting a minute will not help."""

    hint = "wait for the quota to reset, use another model, or enable billing for the key"

    def __init__(self, message: str, *, violations: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.violations = violations or []


class BackendError(AgyError):
    """The model backend failed: an HTTP error, a dropped stream, a malformed reply."""

    hint = "check the model name and the network; retrying may help for 5xx errors"

    def __init__(self, status: int | str | None, message: str, *, partial_text: str = ""):
        super().__init__(message)
        self.status = status
        self.partial_text = partial_text

    def __str__(self) -> str:
        base = super().__str__()
        return f"[{self.status}] {base}" if self.status is not None else base


class ToolError(AgyError):
    """A tool failed: bad arguments, an exception inside it, or a timeout."""

    hint = "the error was reported to the model; fix the tool or its arguments"

    def __init__(self, tool: str, message: str):
        super().__init__(f"tool {tool!r}: {message}")
        self.tool = tool


class PolicyDenied(AgyError):
    """A policy (or the user) refused a tool call."""

    def __init__(self, tool: str, reason: str):
        super().__init__(f"tool {tool!r} denied: {reason}")
        self.tool = tool
        self.reason = reason


class TurnRefused(AgyError):
    """A pre_turn hook refused the turn; the prompt stays in the history, marked as not answered."""

    hint = "the agent's pre_turn hook decides which prompts it answers"

    def __init__(self, reason: str):
        super().__init__(f"turn refused: {reason}")
        self.reason = reason


class ConfigError(AgyError, ValueError):
    """Bad configuration, a bad argument, or missing credentials."""


class UnknownAgent(ConfigError):
    """No agent with that id or name exists in this runtime."""

    hint = "list the agents with %agent list or Runtime.agent_ids()"

    def __init__(self, agent_id: object):
        super().__init__(f"no agent {agent_id!r}")
        self.agent_id = agent_id


class AgentBusy(AgyError):
    """The agent is already running a turn."""

    hint = "wait for the reply, or cancel it first (%agent cancel / agent.cancel())"


class InboxFull(AgentBusy):
    """Too many messages wait in one agent's inbox (RuntimeConfig.inbox_capacity)."""

    hint = "wait until the agent is idle, e.g. agent.wait_for_idle(), then send more"

    def __init__(self, agent: str, waiting: int):
        super().__init__(f"agent {agent!r} has {waiting} undelivered messages; its inbox is full")
        self.agent = agent
        self.waiting = waiting
