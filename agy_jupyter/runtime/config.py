"""RuntimeConfig: channel capacity, the timeouts every runtime command runs under, and tool threads."""
from __future__ import annotations

import logging
import os

from pydantic import BaseModel, ConfigDict, Field, model_validator

log = logging.getLogger(__name__)

CHAT_TIMEOUT_ENV = "AGY_CHAT_TIMEOUT_SECS"
SEED_CHAT_TIMEOUT_ENV = "AGI_CHAT_TIMEOUT_SECS"  # the seed's name, still honoured
DEFAULT_CHAT_TIMEOUT = 120.0
OPERATION_MARGIN = 120.0  # operation timeout = chat timeout + 2 min
DEFAULT_CHANNEL_CAPACITY = 64
DEFAULT_SHUTDOWN_TIMEOUT = 10.0
DEFAULT_INTER_AGENT_DELAY = 0.5
DEFAULT_INBOX_CAPACITY = 32
DEFAULT_TOOL_THREADS = 8
MAX_TOOL_THREADS = 256


def chat_timeout_from_env(environ: dict[str, str] | None = None) -> float:
    """The chat timeout from the environment; an invalid value warns and falls back."""
    environ = os.environ if environ is None else environ
    for name in (CHAT_TIMEOUT_ENV, SEED_CHAT_TIMEOUT_ENV):
        raw = environ.get(name)
        if raw is None or raw.strip() == "":
            continue
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if value > 0 and value != float("inf"):
            return value
        log.warning("Invalid %s=%r (want a positive number of seconds), using default %gs",
                    name, raw, DEFAULT_CHAT_TIMEOUT)
        return DEFAULT_CHAT_TIMEOUT
    return DEFAULT_CHAT_TIMEOUT


class RuntimeConfig(BaseModel):
    """Settings of one runtime. Durations are seconds; JSON round-trips exactly."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=True)

    channel_capacity: int = Field(DEFAULT_CHANNEL_CAPACITY, gt=0, description="commands in flight at once")
    chat_timeout: float = Field(default_factory=chat_timeout_from_env, gt=0, allow_inf_nan=False,
                                description="longest a whole chat turn may take")
    operation_timeout: float | None = Field(None, gt=0, allow_inf_nan=False,
                                            description="longest any command may take; "
                                            "default chat_timeout + 120 s")
    shutdown_timeout: float = Field(DEFAULT_SHUTDOWN_TIMEOUT, gt=0, allow_inf_nan=False,
                                    description="thread join limit")
    inter_agent_delay: float = Field(DEFAULT_INTER_AGENT_DELAY, ge=0, allow_inf_nan=False,
                                     description="spacing between inter-agent deliveries")
    inbox_capacity: int = Field(DEFAULT_INBOX_CAPACITY, gt=0,
                                description="messages that may wait in one agent's inbox; send() refuses more")
    tool_threads: int = Field(DEFAULT_TOOL_THREADS, gt=0, le=MAX_TOOL_THREADS,
                              description="threads for sync tools, shared by every agent of the runtime; a "
                              "call that timed out keeps its thread until the function returns")

    @model_validator(mode="after")
    def _derive_operation_timeout(self) -> "RuntimeConfig":
        if self.operation_timeout is None:
            object.__setattr__(self, "operation_timeout", self.chat_timeout + OPERATION_MARGIN)
        return self
