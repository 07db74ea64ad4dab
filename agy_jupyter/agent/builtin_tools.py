"""The builtin tools by name: which exist, how they group, and how an agent gets them.

Each tool is built by a factory that its own module registers (the workspace tools in the agent layer,
the notebook tools in the notebook layer, which needs IPython), so this module holds names only and
imports none of them. An agent asks for tools by name or by group (`enabled_tools=["notebook",
"view_file"]`), or for every builtin but some (`disabled_tools=[...]`); with neither it has none.

A tool's `effect` ("read", "write" or "execute") is what the default policies look at: read-only tools
are allowed, the rest ask.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from ..runtime.errors import ConfigError

if TYPE_CHECKING:
    from .tools import Tool


class BuiltinTools(str, Enum):
    """Every builtin tool, by the name the model sees."""

    # the notebook (agy_jupyter.notebook registers them: they need the IPython shell)
    LIST_VARIABLES = "list_variables"
    INSPECT_VARIABLE = "inspect_variable"
    NOTEBOOK_HISTORY = "notebook_history"
    RUN_PYTHON = "run_python"
    # the workspace's files
    VIEW_FILE = "view_file"
    LIST_DIR = "list_dir"
    FIND_FILES = "find_files"
    GREP_SEARCH = "grep_search"
    WRITE_FILE = "write_file"
    EDIT_FILE = "edit_file"
    # the shell
    RUN_COMMAND = "run_command"


GROUPS: dict[str, tuple[BuiltinTools, ...]] = {
    "notebook": (BuiltinTools.LIST_VARIABLES, BuiltinTools.INSPECT_VARIABLE, BuiltinTools.NOTEBOOK_HISTORY,
                 BuiltinTools.RUN_PYTHON),
    "files": (BuiltinTools.VIEW_FILE, BuiltinTools.LIST_DIR, BuiltinTools.FIND_FILES, BuiltinTools.GREP_SEARCH,
              BuiltinTools.WRITE_FILE, BuiltinTools.EDIT_FILE),
    "shell": (BuiltinTools.RUN_COMMAND,),
}
# what a module that provides a group says when it is not loaded
_PROVIDER_HINT = {"notebook": "the notebook tools need IPython: run `%load_ext agy_jupyter` (or import "
                              "agy_jupyter.notebook) in the kernel first"}


@dataclass(frozen=True)
class BuiltinContext:
    """What a builtin tool is built for: one agent's workspace root."""

    workspace: Path


ToolFactory = Callable[[BuiltinContext], "Tool"]
_factories: dict[BuiltinTools, ToolFactory] = {}
_providers: list[str] = []  # modules that register factories when imported, not imported yet


def register(name: BuiltinTools, factory: ToolFactory) -> None:
    """Provide builtin `name`: `factory(context)` returns its Tool (called once per agent config)."""
    _factories[BuiltinTools(name)] = factory


def provide_from(*modules: str) -> None:
    """Name modules whose import registers builtins; they are imported when an agent first needs a
    builtin. `%load_ext` names the notebook tools' modules this way instead of importing them (and
    google-genai with them) before any agent exists."""
    _providers.extend(m for m in modules if m not in _providers)


def _load_providers() -> None:
    import importlib

    for module in list(_providers):  # a copy: two threads may build configs at once
        importlib.import_module(module)  # the import lock makes the second wait for the first
        if module in _providers:
            _providers.remove(module)


def expand(names: Iterable[str]) -> list[BuiltinTools]:
    """Tool and group names -> the tools, in order, once each; ConfigError names what is unknown."""
    tools: list[BuiltinTools] = []
    for raw in names:
        name = str(raw).strip()
        if name in GROUPS:
            members = GROUPS[name]
        else:
            try:
                members = (BuiltinTools(name),)
            except ValueError:
                raise ConfigError(f"unknown builtin tool or group {name!r}",
                                  hint=f"groups: {', '.join(GROUPS)}; tools: "
                                       f"{', '.join(t.value for t in BuiltinTools)}") from None
        tools += [t for t in members if t not in tools]
    return tools


def selected(enabled: Iterable[str] | None, disabled: Iterable[str] | None) -> list[BuiltinTools]:
    """The builtins an agent gets: `enabled` ones, or all but `disabled`, or none when neither is given."""
    if enabled is not None:
        return expand(enabled)
    if disabled is not None:
        _load_providers()
        skip = set(expand(disabled))
        return [t for t in BuiltinTools if t not in skip and t in _factories]
    return []


def build(names: Iterable[BuiltinTools], context: BuiltinContext) -> list[Tool]:
    """The Tool of each name; ConfigError when its provider is not loaded."""
    _load_providers()
    tools = []
    for name in names:
        factory = _factories.get(name)
        if factory is None:
            group = next((g for g, members in GROUPS.items() if name in members), "")
            raise ConfigError(f"the builtin tool {name.value!r} is not available here",
                              hint=_PROVIDER_HINT.get(group, "this build of agy_jupyter does not provide it"))
        tools.append(factory(context))
    return tools
