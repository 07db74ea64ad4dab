"""Agent: the public handle scripts and the magics use. Every method is one runtime command.

The methods are not written here: they are the runtime's agent commands (runtime/commands.py) bound
to this agent, so `agent.X(…)` and `await agent.aio.X(…)` have the same names, parameters, docstrings
and result types as `runtime.X(agent, …)`. This module only adds what an agent handle says differently:
`chat` waits for the reply, `stream` returns the turn's stream, `send` signs a message with this agent's
name, and the short names `usage`, `clear` and `shutdown`.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Iterable, Mapping

from ..runtime.commands import (AgentCommands, AsyncAgentFace, RuntimeCommands, SyncAgentFace,
                                agent_command)
from ..runtime.core import AsyncRuntime, Runtime, get_runtime
from ..runtime.stream import ChatStream
from .config import AgentConfig, build_config
from .history import ChatResponse, Message, Usage

_Commands = AgentCommands[Message, Usage, ChatResponse]  # the runtime's agent commands, with our types


def _signed(agent: "Agent", to: "Agent | str | int", message: Any) -> tuple:
    """Agent.send's arguments for the runtime's send: (recipient, message, sender name)."""
    return (to.id if isinstance(to, Agent) else to, message, agent.name)


class AgentCommandTable(_Commands):
    """Every command of an agent handle; `Agent` and `AsyncAgent` are its sync and async faces."""

    stream = RuntimeCommands.chat
    chat = RuntimeCommands.chat.waiting_for_reply(
        ChatResponse, doc="Ask and wait for the whole reply. Cancelling (Ctrl-C, or the awaiting task) "
                          "cancels the turn.")
    usage = _Commands.total_usage
    clear = _Commands.clear_history
    shutdown = _Commands.shutdown_agent

    @agent_command(runtime_name="send", route=_signed)
    def send(self, to: "Agent | str | int", message: Any) -> None:
        """Send `message` to another agent's inbox, signed with this agent's name."""


class Agent(SyncAgentFace, AgentCommandTable):
    """A named Gemini agent living on a runtime (the process's default one unless given).

    Every command has an async twin on `agent.aio` (same name, same result):

    >>> agent = Agent("analyst", model="gemini-2.5-flash", tools=[load_csv])
    >>> agent.chat("Summarise sales.csv").text
    >>> (await agent.aio.chat("And by region?")).text
    """

    def __init__(self, name: str = "agent", *, runtime: Runtime | None = None,
                 config: AgentConfig | None = None, **settings: Any):
        if config is not None and settings:
            raise TypeError("pass either config= or settings, not both")
        self.config = config if config is not None else build_config(name=name, **settings)
        self.runtime = runtime if runtime is not None else get_runtime()
        self.id = self.runtime.create_agent(self.config)
        self.aio = AsyncAgent(self)

    @property
    def name(self) -> str:
        return self.config.name

    def __repr__(self) -> str:
        return f"<Agent {self.name!r} id={self.id} model={self.config.model}>"

    def _command_target(self) -> tuple[Runtime, Agent]:
        return self.runtime, self

    @classmethod
    def restore(cls, name: str, *, tools: Iterable[Callable] | Mapping[str, Any] | None = None,
                notebook: str | None = None, conversation: int | None = None, as_name: str | None = None,
                runtime: Runtime | None = None) -> "Agent":
        """Bring back a saved conversation after a kernel restart: the agent's config and history, so the
        next chat goes on from there (see agy_jupyter.saved_conversations()).

        Its tools are found by name in `tools` (callables, or a namespace dict; default: the globals of
        `__main__`, a notebook's namespace); the ones not found are left out and named in a warning.
        """
        import sys
        from .persistence import restore_agent  # the store (sqlite3) loads on first use
        namespace = tools if tools is not None else vars(sys.modules["__main__"])
        restored = restore_agent(name, tools=namespace, notebook=notebook, conversation=conversation,
                                 as_name=as_name, runtime=runtime)
        if restored.missing_tools:
            warnings.warn(restored.summary(), stacklevel=2)
        return restored.agent

    def map(self, rows: Any, template: str, **options: Any) -> Any:
        """Ask `template` once per row, each row its own stateless turn: returns the rows with an `answer`
        (or the `output=` model's fields) and an `error` column, in their order (see agent/map.py).

        Options: output=PydanticModel, concurrency=8, column="answer", progress=True (or a callable
        taking MapProgress), resume=True (skip rows finished by an earlier run of the same map).

        >>> result = agent.map(tickets, "Classify this ticket as bug, question or praise: {text}")
        >>> result = result.retry_failed()  # only the rows whose `error` is set are asked again
        """
        from .map import run_map  # the map engine loads with the first map
        return run_map(self, rows, template, **options)

    async def amap(self, rows: Any, template: str, **options: Any) -> Any:
        """Same as `agent.map(...)`, awaited (cancelling the await stops the map; finished rows are kept)."""
        from .map import arun_map
        return await arun_map(self, rows, template, **options)

    # -- earlier names for the async forms, kept working ---------------------------------------------

    async def achat(self, prompt: Any, **options: Any) -> ChatResponse:
        """Same as `await agent.aio.chat(prompt, ...)`."""
        return await self.aio.chat(prompt, **options)

    async def astream(self, prompt: Any, **options: Any) -> ChatStream:
        """Same as `await agent.aio.stream(prompt, ...)`: the turn's ChatStream."""
        return await self.aio.stream(prompt, **options)


class AsyncAgent(AsyncAgentFace, AgentCommandTable):
    """`await agent.aio.X(…)`: the agent's commands as coroutines, awaitable from any event loop."""

    def __init__(self, agent: Agent):
        self._agent = agent

    def __repr__(self) -> str:
        return f"<AsyncAgent of {self._agent!r}>"

    def _command_target(self) -> tuple[AsyncRuntime, Agent]:
        return self._agent.runtime.aio, self._agent

    async def map(self, rows: Any, template: str, **options: Any) -> Any:
        """Same as `agent.map(...)`, awaited (cancelling the await stops the map; finished rows are kept)."""
        return await self._agent.amap(rows, template, **options)
