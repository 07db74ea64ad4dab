"""The contract between the runtime and the agents it holds.

The runtime knows nothing about Gemini: it stores objects that follow `AgentSession`, built from
specs that follow `AgentSpec`. The agent layer (agy_jupyter.agent) provides both.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Protocol, runtime_checkable

from .config import RuntimeConfig
from .quota import QuotaRegistry
from .stream import ChatStream


class ResourceCache:
    """Long-lived objects (model clients) shared by the agents of one runtime, closed at shutdown."""

    def __init__(self) -> None:
        self._items: dict[Any, Any] = {}

    def get(self, key: Any, factory: Callable[[], Any]) -> Any:
        if key not in self._items:
            self._items[key] = factory()
        return self._items[key]

    def __len__(self) -> int:
        return len(self._items)

    async def aclose(self) -> list[BaseException]:
        """Close every resource (async `aclose`, then sync `close`); return the failures."""
        failures: list[BaseException] = []
        items, self._items = list(self._items.values()), {}
        for item in items:
            try:
                closer = getattr(item, "aclose", None)
                if closer is not None:
                    await closer()
                elif callable(getattr(item, "close", None)):
                    item.close()
            except Exception as exc:  # keep closing the rest; the caller logs these
                failures.append(exc)
        return failures


@dataclass
class RuntimeServices:
    """What an agent session may use from the runtime that holds it."""

    config: RuntimeConfig
    loop: asyncio.AbstractEventLoop
    quota: QuotaRegistry
    resources: ResourceCache


@runtime_checkable
class AgentSession(Protocol):
    """One live agent on the runtime loop. Methods run on that loop only.

    The runtime's agent commands with `runs_on="session"` (commands.py) call the method of the same
    name here, with the command's arguments after `agent`; a test checks that the two agree.
    """

    name: str

    def start_turn(self, prompt: Any, **options: Any) -> ChatStream: ...
    async def deliver(self, message: Any, sender: str | None) -> None:
        """Queue a message in the agent's bounded inbox; raise InboxFull (at once) when it is full."""
    async def cancel(self) -> None: ...
    async def wait_for_idle(self) -> None: ...
    def signal_idle(self) -> None: ...
    async def wait_for_wakeup(self, timeout: float) -> bool: ...
    def is_idle(self) -> bool: ...
    def history(self) -> list: ...
    def turn_count(self) -> int: ...
    def total_usage(self) -> Any: ...
    def last_turn_usage(self) -> Any: ...
    def clear_history(self) -> None: ...
    def compaction_indices(self) -> list[int]: ...
    def last_response(self) -> str | None: ...
    def last_turn(self) -> Any: ...
    def describe(self) -> dict[str, Any]: ...
    def import_history(self, messages: list[dict[str, Any]]) -> None: ...
    async def start_rows(self, job: Any) -> ChatStream:
        """Start `job` (agent.map's rows) on this loop beside the agent: `job.start(self)`."""
    async def disconnect(self) -> None: ...
    async def shutdown(self) -> None: ...
    def snapshot(self) -> Any: ...
    def restore(self, state: Any) -> None: ...


class AgentSpec(Protocol):
    """Anything that can build a session (agy_jupyter.agent.AgentConfig does)."""

    name: str

    def create_session(self, services: RuntimeServices, agent_id: int) -> AgentSession | Awaitable[AgentSession]: ...
