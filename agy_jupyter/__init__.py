"""agy_jupyter: Gemini agents in Jupyter notebooks.

Scripts use the Python API (`Agent`, `Runtime`); notebooks load the magics with `%load_ext agy_jupyter`,
or show a reply in a cell with `await display_chat(agent, prompt)` (what `%%chat` does).
"""
from typing import TYPE_CHECKING

from .agent import *  # noqa: F403  (the public API is listed in agent.__all__)
from .agent import __all__ as _agent_all
from .agent.batch import Batch, BatchRow
from .runtime import (AgentBusy, AgyError, BackendError, ChatStream, ConfigError, InboxFull, MaxTokens,
                      PolicyDenied, QuotaExhausted, Runtime, RuntimeClosed, RuntimeConfig, SafetyBlocked, Timeout,
                      ToolError, TurnRefused, UnknownAgent, get_runtime)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ below imports them on first use
    from .notebook.chat import display_chat, display_chat_blocking  # noqa: F401
    from .notebook.usage import session_usage, usage_report  # noqa: F401

__version__ = "0.1.0"
# The notebook layer imports ipywidgets: these names load it on first use, not with `import agy_jupyter`.
_NOTEBOOK_NAMES = {"display_chat": "chat", "display_chat_blocking": "chat", "session_usage": "usage",
                   "usage_report": "usage"}
__all__ = [*_agent_all, "AgentBusy", "AgyError", "BackendError", "ChatStream", "ConfigError", "InboxFull",
           "MaxTokens", "PolicyDenied", "QuotaExhausted", "Runtime", "RuntimeClosed", "RuntimeConfig", "SafetyBlocked",
           "Timeout", "ToolError", "TurnRefused", "UnknownAgent", "get_runtime", *_NOTEBOOK_NAMES]
__all__ += ["Batch", "BatchRow"]


def __getattr__(name: str):
    if name in _NOTEBOOK_NAMES:
        import importlib
        value = getattr(importlib.import_module(f".notebook.{_NOTEBOOK_NAMES[name]}", __name__), name)
        globals()[name] = value  # once: later lookups do not come here
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_NOTEBOOK_NAMES})


def load_ipython_extension(shell):  # `%load_ext agy_jupyter`
    from .notebook import load_ipython_extension as load
    load(shell)


def unload_ipython_extension(shell):
    from .notebook import unload_ipython_extension as unload
    unload(shell)


def _jupyter_labextension_paths():  # `jupyter labextension develop --overwrite .` links the built extension
    return [{"src": "labextension", "dest": "agy-jupyter"}]
