"""Named agents of one runtime, and which one is the default: what `%agent` manages, usable from scripts.

>>> from agy_jupyter.agent.directory import agents
>>> agents.create("analyst", model="gemini-2.5-flash")
>>> agents.get().chat("hi")          # the default agent
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ..runtime.core import Runtime, get_runtime
from ..runtime.errors import ConfigError, UnknownAgent
from .api import Agent
from .config import AgentConfig
from . import persistence
from .history import saved_form

SAVE_FORMAT = "agy-agent/1"


@dataclass(frozen=True)
class AgentInfo:
    """One row of `%agent list`, and what `%agent info` / `usage` add to it."""

    name: str
    model: str
    turns: int
    tokens: int
    state: str
    default: bool
    context_tokens: int = 0
    last_error: str | None = None
    stuck_calls: list = field(default_factory=list)  # tool calls that timed out and still hold a thread


class AgentDirectory:
    """Agents by name on one runtime (the default runtime unless given), with a default agent."""

    def __init__(self, runtime: Runtime | None = None):
        self._runtime = runtime
        self._agents: dict[str, Agent] = {}
        self.default_name: str | None = None

    @property
    def runtime(self) -> Runtime:
        return self._runtime if self._runtime is not None else get_runtime()

    def __contains__(self, name: str) -> bool:
        return name in self._agents

    def names(self) -> list[str]:
        return list(self._agents)

    def create(self, name: str, *, use: bool = False, **settings: Any) -> Agent:
        """Create an agent; the first one (or use=True) becomes the default."""
        if name in self._agents:
            raise ConfigError(f"an agent named {name!r} already exists",
                              hint=f"pick another name, or `%agent delete {name}` first")
        agent = Agent(name, runtime=self.runtime, **settings)
        self._agents[name] = agent
        if use or self.default_name is None:
            self.default_name = name
        return agent

    def add(self, agent: Agent, *, use: bool = False) -> Agent:
        """Adopt an Agent made elsewhere (e.g. `Agent(...)` in a script)."""
        self._agents[agent.name] = agent
        if use or self.default_name is None:
            self.default_name = agent.name
        return agent

    def get(self, name: str | None = None) -> Agent:
        """The named agent, or the default one."""
        if name is None:
            if self.default_name is None:
                raise ConfigError("no agent yet", hint="create one with `%agent create NAME` or agents.create(NAME)")
            name = self.default_name
        if name not in self._agents:
            error = UnknownAgent(name)
            error.hint = f"known agents: {', '.join(self._agents) or 'none yet'}; see %agent list"
            raise error
        return self._agents[name]

    def use(self, name: str) -> Agent:
        agent = self.get(name)
        self.default_name = name
        return agent

    def delete(self, name: str) -> None:
        """Stop the agent and forget it, its saved conversation included."""
        agent = self.get(name)
        try:
            conversation = agent.describe().get("conversation")
            agent.delete()
            if conversation is not None:
                persistence.forget_conversation(conversation=conversation)
        finally:
            del self._agents[name]
            if self.default_name == name:
                self.default_name = next(iter(self._agents), None)

    def info(self, name: str | None = None) -> AgentInfo:
        """The named (or default) agent's state, from one command on the agent's own runtime."""
        agent = self.get(name)
        state = agent.describe()  # not self.runtime: the default runtime may be another one by now
        return AgentInfo(agent.name, agent.config.model, state["turns"], state["tokens"], state["state"],
                         agent.name == self.default_name, state["context_tokens"], state["last_error"],
                         list(state.get("stuck_calls", [])))

    def list(self) -> list[AgentInfo]:
        return [self.info(name) for name in self._agents]

    def cancel_all(self) -> int:
        """Cancel every running turn; return how many agents were busy."""
        busy = [a for a in self._agents.values() if not a.is_idle()]
        for agent in busy:
            agent.cancel()
        return len(busy)

    def save(self, name: str, path: str | os.PathLike) -> Path:
        """Write the agent's config and history as JSON. No key or credential is ever written."""
        agent = self.get(name)
        data = {"format": SAVE_FORMAT, "config": json.loads(agent.config.to_json()),
                "history": [saved_form(m) for m in agent.history()]}
        target = Path(path)
        target.write_text(json.dumps(data, indent=2))
        return target

    def load(self, path: str | os.PathLike, *, tools: Iterable[Callable] = (), name: str | None = None,
             use: bool = False) -> Agent:
        """Recreate a saved agent (tools are matched by name among `tools`), history included."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read agent file {path}: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != SAVE_FORMAT:
            raise ConfigError(f"{path} is not an agy agent file (expected format {SAVE_FORMAT!r})")
        config = AgentConfig.from_json(json.dumps(data["config"]), tools=list(tools))
        if name is not None:
            config = config.model_copy(update={"name": name})
        if config.name in self._agents:
            raise ConfigError(f"an agent named {config.name!r} already exists", hint="load it under another name")
        agent = self.add(Agent(config=config, runtime=self.runtime), use=use)
        agent.import_history(data.get("history", []))
        return agent

    def restore(self, name: str, *, namespace: Mapping[str, Any], notebook: str | None = None,
                conversation: int | None = None, as_name: str | None = None,
                use: bool = False) -> persistence.Restored:
        """Bring back a saved conversation as an agent here (tools by name from `namespace`)."""
        wanted = as_name or name
        if wanted in self._agents:
            raise ConfigError(f"an agent named {wanted!r} already exists",
                              hint="restore it under another name (--name), or `%agent delete` the live one first")
        restored = persistence.restore_agent(name, tools=namespace, notebook=notebook, conversation=conversation,
                                             as_name=as_name, runtime=self.runtime)
        self.add(restored.agent, use=use)
        return restored


agents = AgentDirectory()  # the notebook's agents on the default runtime
