"""agy_jupyter: Gemini agents in Jupyter notebooks.

Scripts use the Python API (`Agent`, `Runtime`); notebooks load the magics with `%load_ext agy_jupyter`,
or show a reply in a cell with `await display_chat(agent, prompt)` (what `%%chat` does).

Every public name is imported on first use, not with `import agy_jupyter`: the agent layer brings
google-genai (~300 ms of imports, measured in benchmarks/bench_load.py) and the notebook layer
ipywidgets, and `%load_ext` should not wait for either. The first agent created pays for them.
"""
from typing import TYPE_CHECKING

from . import agent as _agent  # light: its names are imported on first use too
from ._lazy import lazy_exports

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ below imports them on first use
    from .agent import *  # noqa: F403
    from .notebook.chat import display_chat, display_chat_blocking  # noqa: F401
    from .notebook.usage import session_usage, usage_report  # noqa: F401
    from .runtime import (AgentBusy, AgyError, BackendError, ChatStream, ConfigError, InboxFull,  # noqa: F401
                          MaxTokens, PolicyDenied, QuotaExhausted, Runtime, RuntimeClosed, RuntimeConfig,
                          SafetyBlocked, Timeout, ToolError, TurnRefused, UnknownAgent, get_runtime)

__version__ = "0.1.0"

_NOTEBOOK_NAMES = {"display_chat": ".notebook.chat", "display_chat_blocking": ".notebook.chat",
                   "session_usage": ".notebook.usage", "usage_report": ".notebook.usage"}
_RUNTIME_NAMES = ["AgentBusy", "AgyError", "BackendError", "ChatStream", "ConfigError", "InboxFull", "MaxTokens",
                  "PolicyDenied", "QuotaExhausted", "Runtime", "RuntimeClosed", "RuntimeConfig", "SafetyBlocked",
                  "Timeout", "ToolError", "TurnRefused", "UnknownAgent", "get_runtime"]
# each public name -> where it lives, relative to this package
_HOMES = {**{name: ".agent" for name in _agent.HOMES}, **{name: ".runtime" for name in _RUNTIME_NAMES},
          **_NOTEBOOK_NAMES}
if not TYPE_CHECKING:  # a type checker reads the imports above; a module __getattr__ would hide them
    __all__ = list(_HOMES)
    __getattr__, __dir__ = lazy_exports(globals(), _HOMES)


def load_ipython_extension(shell):  # `%load_ext agy_jupyter`
    from .notebook import load_ipython_extension as load
    load(shell)


def unload_ipython_extension(shell):
    from .notebook import unload_ipython_extension as unload
    unload(shell)


def _jupyter_labextension_paths():  # `jupyter labextension develop --overwrite .` links the built extension
    return [{"src": "labextension", "dest": "agy-jupyter"}]
