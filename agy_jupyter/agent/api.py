"""Agent: the public handle scripts and the magics use. Every method is one runtime command."""
from __future__ import annotations

import functools
from typing import Any, Callable

from ..runtime.core import Runtime, get_runtime
from ..runtime.stream import ChatStream
from .config import AgentConfig, build_config
from .history import ChatResponse, Message, Usage


class Agent:
    """A named Gemini agent living on a runtime (the process's default one unless given).

    >>> agent = Agent("analyst", model="gemini-2.5-flash", tools=[load_csv])
    >>> agent.chat("Summarise sales.csv").text
    """

    def __init__(self, name: str = "agent", *, runtime: Runtime | None = None,
                 config: AgentConfig | None = None, **settings: Any):
        if config is not None and settings:
            raise TypeError("pass either config= or settings, not both")
        self.config = config if config is not None else build_config(name=name, **settings)
        self.runtime = runtime if runtime is not None else get_runtime()
        self.id = self.runtime.create_agent(self.config)
        self.aio = _AsyncAgent(self)

    @property
    def name(self) -> str:
        return self.config.name

    def __repr__(self) -> str:
        return f"<Agent {self.name!r} id={self.id} model={self.config.model}>"

    # -- talking ---------------------------------------------------------------------------------

    def stream(self, prompt: Any, **options: Any) -> ChatStream:
        """Start a turn and return its event stream (iterate it, or call .result())."""
        return self.runtime.chat(self.id, prompt, **options)

    def chat(self, prompt: Any, **options: Any) -> ChatResponse:
        """Ask and wait for the whole reply. Ctrl-C cancels the turn."""
        return self.stream(prompt, **options).result()

    async def astream(self, prompt: Any, **options: Any) -> ChatStream:
        return await self.runtime.aio.chat(self.id, prompt, **options)

    async def achat(self, prompt: Any, **options: Any) -> ChatResponse:
        """Ask and await the whole reply from any event loop; cancelling the await cancels the turn."""
        return await (await self.astream(prompt, **options))

    def send(self, to: "Agent | str | int", message: Any) -> None:
        """Send `message` to another agent's inbox, signed with this agent's name."""
        target = to.id if isinstance(to, Agent) else to
        self.runtime.send(target, message, self.name)

    # -- state -----------------------------------------------------------------------------------

    def history(self) -> list[Message]:
        return self.runtime.history(self.id)

    def turn_count(self) -> int:
        return self.runtime.turn_count(self.id)

    def usage(self) -> Usage:
        """Tokens used by every turn of this agent."""
        return self.runtime.total_usage(self.id)

    def last_turn_usage(self) -> Usage:
        return self.runtime.last_turn_usage(self.id)

    def last_response(self) -> str | None:
        return self.runtime.last_response(self.id)

    def last_turn(self) -> ChatResponse | None:
        """The last finished turn's whole response: text, thoughts, tool calls, usage, stop reason."""
        return self.runtime.last_turn(self.id)

    def compaction_indices(self) -> list[int]:
        return self.runtime.compaction_indices(self.id)

    def is_idle(self) -> bool:
        return self.runtime.is_idle(self.id)

    def clear(self) -> None:
        """Forget the conversation (the agent's settings stay)."""
        self.runtime.clear_history(self.id)

    def cancel(self) -> None:
        """Cancel the running turn; partial output is kept and marked cancelled."""
        self.runtime.cancel(self.id)

    def wait_for_idle(self) -> None:
        self.runtime.wait_for_idle(self.id)

    def wait_for_wakeup(self, timeout: float) -> bool:
        return self.runtime.wait_for_wakeup(self.id, timeout)

    def shutdown(self) -> None:
        self.runtime.shutdown_agent(self.id)

    def delete(self) -> None:
        self.runtime.delete(self.id)


class _AsyncAgent:
    """`await agent.aio.history()` and friends: the runtime's async commands bound to this agent."""

    def __init__(self, agent: Agent):
        self._agent = agent

    def __getattr__(self, name: str) -> Callable[..., Any]:
        command = getattr(self._agent.runtime.aio, name)
        return functools.partial(command, self._agent.id)
