"""Conversations that survive a kernel restart: each agent's messages are saved as they end, and
`Agent.restore(name)` (`%agent restore NAME`) brings an agent back with its config and history.

- Where: the store (runtime/store.py), one SQLite file in jupyter_core's data directory. A conversation
  belongs to an agent name and a notebook (the kernel learns its notebook's path from jupyter_server's
  JPY_SESSION_NAME; elsewhere it is "(no notebook)").
- When: the session calls `Recorder.save(messages)` where a message ends (the prompt accepted, a model
  reply merged, a round of tool results complete, the turn ended with its statuses). Only what changed
  since the last save is written, in one transaction, so a process killed mid-reply loses at most the
  message in flight. A turn the kernel died in is repaired when it is restored: its calls get an error
  result and an unanswered prompt is left out of the context, as after a cancel.
- What: the message JSON `%agent save` writes (history.saved_form) and AgentConfig.to_json(); neither
  holds the key, and every remembered key is redacted from the JSON before it is written.
- Off: AGY_PERSIST=0 (also false/no/off) in the kernel's environment, or `%env AGY_PERSIST=0` in the
  notebook: nothing is written from then on (turned on again, the whole history is saved, the part from
  while it was off included). `forget_conversation` deletes saved conversations.
"""
from __future__ import annotations

import json
import logging
import os
import weakref
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from google.genai import types

from ..runtime import secrets
from ..runtime.errors import ConfigError
from .config import AgentConfig
from .history import Message, mark_unfinished_turn, saved_form, unanswered_calls
from .tools import Tool, _find_meta, as_tool

if TYPE_CHECKING:
    from ..runtime.core import Runtime
    from ..runtime.store import ConversationRow, Store
    from .api import Agent

log = logging.getLogger(__name__)

PERSIST_ENV = "AGY_PERSIST"
OFF_VALUES = frozenset({"0", "false", "no", "off"})
NO_NOTEBOOK = "(no notebook)"
INTERRUPTED_RESULT = {"error": "the kernel stopped before this call finished"}

# conversation id -> the Recorder writing it in this process: restore never picks a conversation in use
_live: "weakref.WeakValueDictionary[int, Recorder]" = weakref.WeakValueDictionary()


def enabled() -> bool:
    """False when AGY_PERSIST is 0, false, no or off (read at every save, so `%env` works at once)."""
    return os.environ.get(PERSIST_ENV, "").strip().lower() not in OFF_VALUES


def current_notebook() -> str:
    """The notebook this kernel runs for (jupyter_server tells its kernels in JPY_SESSION_NAME)."""
    return os.environ.get("JPY_SESSION_NAME") or NO_NOTEBOOK


def _store() -> "Store":
    from ..runtime.store import open_store  # sqlite3 and jupyter_core load when the first message is saved
    return open_store()


def _fingerprint(message: Message) -> tuple:
    """What can change in a message after it was saved: its status, exclusion and (tool results) parts."""
    return message.status, message.excluded, len(message.parts)


def _message_json(message: Message) -> str:
    return secrets.redact(json.dumps(saved_form(message)))


class Recorder:
    """Saves one agent's history to the store as its messages end: only what changed since the last save."""

    def __init__(self, agent: str, config: AgentConfig):
        self.agent = agent
        self.config = config
        self.conversation: int | None = None  # created with the first saved message
        self.forgotten = False  # its conversation was forgotten while the agent lives: save nothing more
        self._store: Store | None = None
        self._saved: list[tuple[Message, tuple]] = []  # the history as saved: (message, fingerprint)
        self._list: list[Message] | None = None  # the history list last saved
        self._settled = 0  # messages saved when the last turn ended: within a turn they do not change
        self._warned = False

    def save(self, messages: list[Message], *, finished_turn: int | None = None) -> None:
        """Write what changed; `finished_turn`: that turn ended (its statuses are final). Never raises: a
        store that cannot be written is logged once and the conversation goes on unsaved."""
        if self.forgotten or not enabled():
            return
        try:
            self._save(messages, finished_turn)
        except Exception as exc:
            if not self._warned:
                self._warned = True
                log.warning("agy: the conversation of %r is not being saved: %s", self.agent, exc)

    def _save(self, messages: list[Message], finished_turn: int | None) -> None:
        saved = self._saved
        # Within a turn the history only grows and only its own turn's messages change, so only they are
        # compared; at a turn's end (statuses final, a compaction's summary inserted and older messages
        # excluded) and on a new list (an import, a runtime restart) the whole history is.
        start = 0 if finished_turn is not None or messages is not self._list else min(self._settled, len(saved))
        # the first position where the history is no longer what was saved (a summary inserted, a clear, …)
        cut = next((i for i in range(start, len(saved)) if i >= len(messages) or messages[i] is not saved[i][0]),
                   len(saved))
        if not messages:
            self.discard()
            return
        changed = [i for i in range(start, cut) if _fingerprint(messages[i]) != saved[i][1]]
        positions = [*changed, *range(cut, len(messages))]
        if not positions and finished_turn is None and cut == len(saved):
            return
        if self.conversation is None:
            self._store = _store()
            self.conversation = self._store.create_conversation(current_notebook(), self.agent,
                                                                self.config.to_json())
            _live[self.conversation] = self
        assert self._store is not None
        rows = [(i, messages[i].turn, _message_json(messages[i])) for i in positions]
        self._store.save_messages(self.conversation, rows, cut_from=cut if cut < len(saved) else None,
                                  config=self.config.to_json() if finished_turn is not None else None,
                                  finished_turn=finished_turn)
        del saved[cut:]
        for i in changed:
            saved[i] = (messages[i], _fingerprint(messages[i]))
        saved.extend((m, _fingerprint(m)) for m in messages[cut:])
        self._list = messages
        self._settled = len(saved) if finished_turn is not None else min(self._settled, cut)

    def discard(self) -> None:
        """Delete this agent's saved conversation (a cleared history); later messages start a new one."""
        if self.conversation is not None and self._store is not None:
            _live.pop(self.conversation, None)
            self._store.delete_conversations([self.conversation])
        self.conversation = None
        self._saved = []
        self._settled = 0


# -- listing, restoring, forgetting ------------------------------------------------------------------

@dataclass(frozen=True)
class SavedConversation:
    """A conversation in the store, as `%agent list --saved` shows it."""

    id: int
    agent: str
    notebook: str
    model: str
    messages: int
    turns: int
    updated: datetime
    in_use: bool  # an agent of this process is writing it

    @classmethod
    def from_row(cls, row: "ConversationRow") -> "SavedConversation":
        model = json.loads(row.config).get("model", "?")
        return cls(row.id, row.agent, row.notebook, model, row.messages, row.turns,
                   datetime.fromtimestamp(row.updated, timezone.utc), row.id in _live)


def saved_conversations(*, agent: str | None = None, notebook: str | None = None) -> list[SavedConversation]:
    """Saved conversations, newest first (all notebooks unless `notebook` is given)."""
    return [SavedConversation.from_row(r) for r in _store().conversations(agent=agent, notebook=notebook)]


def _find(name: str, notebook: str | None, conversation: int | None) -> "ConversationRow":
    """The conversation `restore` means: by id, else the newest one named `name` that no agent of this
    process is writing, in `notebook` (default: this notebook, else the only notebook that has one)."""
    rows = _store().conversations(agent=name)
    if conversation is not None:
        rows = [r for r in rows if r.id == conversation]
    elif notebook is not None:
        rows = [r for r in rows if r.notebook == notebook]
    idle = [r for r in rows if r.id not in _live]
    if rows and not idle:
        raise ConfigError(f"the saved conversation of {name!r} is in use: an agent of this kernel is writing it",
                          hint="it is here already: see %agent list")
    if conversation is None and notebook is None:
        here = [r for r in idle if r.notebook == current_notebook()]
        notebooks = sorted({r.notebook for r in idle})
        if not here and len(notebooks) > 1:
            raise ConfigError(f"conversations named {name!r} were saved in several notebooks: {', '.join(notebooks)}",
                              hint="pick one with --notebook PATH (Python: notebook=PATH)")
        idle = here or idle
    if not idle:
        where = f" (id {conversation})" if conversation is not None else (f" in {notebook}" if notebook else "")
        raise ConfigError(f"no saved conversation named {name!r}{where} to restore",
                          hint="see %agent list --saved (Python: agy_jupyter.saved_conversations())")
    return idle[0]


def _bind_tools(wanted: list[str], tools: Iterable[Callable] | Mapping[str, Any]) -> dict[str, Callable]:
    """The saved tool names found among `tools`: callables, or a namespace looked up by name."""
    if isinstance(tools, Mapping):
        found = {}
        for name in wanted:
            value = tools.get(name)
            if callable(value) and as_tool(value).name == name:
                found[name] = value
        rest = [n for n in wanted if n not in found]
        if rest:  # a Tool, or a callable given a name by @tool(name=...), under another variable name
            for value in tools.values():
                named = value.name if isinstance(value, Tool) else callable(value) and _find_meta(value).name
                if named in rest:
                    found.setdefault(named, value)
        return found
    given = {as_tool(t).name: t for t in tools}
    return {n: given[n] for n in wanted if n in given}


def repaired(messages: list[Message], finished_turn: int) -> list[Message]:
    """The history with the turn the kernel died in closed like a failed turn: every call answered with
    an error, its messages marked "error", a prompt nothing answered left out of the context."""
    cut_off = sorted({m.turn for m in messages if m.turn > finished_turn and m.kind != "summary"})
    if not cut_off:
        return messages
    missing = unanswered_calls(messages)
    if missing:
        if messages[-1].kind != "tool_results":
            messages.append(Message(role="user", parts=[], kind="tool_results", turn=cut_off[-1]))
        messages[-1].parts.extend(
            types.Part(function_response=types.FunctionResponse(id=c.id, name=c.name, response=INTERRUPTED_RESULT))
            for c in missing)
    for turn in cut_off:
        mark_unfinished_turn(messages, turn, "error")
    return messages


@dataclass
class Restored:
    """What `restore` brought back, and which of the agent's tools it could not find."""

    agent: "Agent"
    conversation: SavedConversation
    missing_tools: list[str]

    def summary(self) -> str:
        saved = self.conversation
        text = (f"Restored {self.agent.name!r} ({saved.messages} messages, {saved.turns} turns, "
                f"{saved.model}) saved {saved.updated:%Y-%m-%d %H:%M} UTC in {saved.notebook}.")
        if self.missing_tools:
            text += (f" Tools not found, left out: {', '.join(self.missing_tools)}; define them and restore again "
                     f"(%agent delete {self.agent.name} first) to offer them.")
        return text


def restore_agent(name: str, *, tools: Iterable[Callable] | Mapping[str, Any], notebook: str | None = None,
                  conversation: int | None = None, as_name: str | None = None,
                  runtime: "Runtime | None" = None) -> Restored:
    """Recreate a saved agent with its history; it goes on saving in this notebook (a conversation of
    this notebook that it now holds is deleted: the agent's own copy replaces it)."""
    from .api import Agent  # api imports the runtime faces; this module is imported by the session
    row = _find(name, notebook, conversation)
    config_data = json.loads(row.config)
    wanted = list(config_data.pop("tool_names", []))
    bound = _bind_tools(wanted, tools)
    config_data["tool_names"] = [n for n in wanted if n in bound]
    if as_name is not None:
        config_data["name"] = as_name
    config = AgentConfig.from_json(json.dumps(config_data), tools=list(bound.values()))
    history = repaired([Message.model_validate_json(data) for data in _store().messages(row.id)], row.finished_turn)
    agent = Agent(config=config, runtime=runtime)
    try:
        agent.import_history([saved_form(m) for m in history])
    except Exception:
        agent.delete()
        raise
    if row.notebook == current_notebook() and agent.describe().get("conversation") is not None:
        _store().delete_conversations([row.id])
    return Restored(agent, SavedConversation.from_row(row), [n for n in wanted if n not in bound])


def forget_conversation(name: str | None = None, *, notebook: str | None = None, all_notebooks: bool = False,
                        conversation: int | None = None) -> int:
    """Delete saved conversations named `name` in this notebook (or `notebook`, or every notebook), or the
    one with id `conversation`; return how many. An agent of this process writing one stops saving."""
    if name is None and conversation is None:
        raise ConfigError("say which conversation to forget", hint="give its agent name or its id")
    where = None if all_notebooks or conversation is not None else (notebook or current_notebook())
    rows = [r for r in _store().conversations(agent=name, notebook=where)
            if conversation is None or r.id == conversation]
    for row in rows:
        recorder = _live.pop(row.id, None)
        if recorder is not None:
            recorder.forgotten = True
    return _store().delete_conversations(r.id for r in rows)
