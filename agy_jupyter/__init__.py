"""agy_jupyter: Gemini agents in Jupyter notebooks.

Scripts use the Python API (`Agent`, `Runtime`); notebooks load the magics with `%load_ext agy_jupyter`.
"""
from .agent import *  # noqa: F403  (the public API is listed in agent.__all__)
from .agent import __all__ as _agent_all
from .runtime import (AgentBusy, AgyError, BackendError, ChatStream, ConfigError, MaxTokens, PolicyDenied,
                      QuotaExhausted, Runtime, RuntimeClosed, RuntimeConfig, SafetyBlocked, Timeout, ToolError,
                      UnknownAgent, get_runtime)

__version__ = "0.1.0"
__all__ = [*_agent_all, "AgentBusy", "AgyError", "BackendError", "ChatStream", "ConfigError", "MaxTokens",
           "PolicyDenied", "QuotaExhausted", "Runtime", "RuntimeClosed", "RuntimeConfig", "SafetyBlocked",
           "Timeout", "ToolError", "UnknownAgent", "get_runtime"]


def load_ipython_extension(shell):  # `%load_ext agy_jupyter`
    from .notebook import load_ipython_extension as load
    load(shell)


def unload_ipython_extension(shell):
    from .notebook import unload_ipython_extension as unload
    unload(shell)
