"""The kernel-resident runtime: one thread, its own asyncio loop, every agent, typed errors, quota.

The names below are imported from their modules on first use (see agy_jupyter/_lazy.py)."""
from typing import TYPE_CHECKING

from .._lazy import homes_of, lazy_exports

if TYPE_CHECKING:  # for type checkers and IDEs
    from .config import RuntimeConfig, chat_timeout_from_env  # noqa: F401
    from .core import AsyncRuntime, Runtime, get_runtime  # noqa: F401
    from .errors import (AgentBusy, AgyError, BackendError, ConfigError, InboxFull, MaxTokens,  # noqa: F401
                         PolicyDenied, QuotaExhausted, RuntimeClosed, SafetyBlocked, Timeout, ToolError,
                         TurnRefused, UnknownAgent)
    from .quota import GLOBAL_QUOTA, QuotaRegistry, QuotaState  # noqa: F401
    from .session import AgentSession, AgentSpec, RuntimeServices  # noqa: F401
    from .stream import ChatStream  # noqa: F401

HOMES = homes_of({
    ".config": ["RuntimeConfig", "chat_timeout_from_env"],
    ".core": ["AsyncRuntime", "Runtime", "get_runtime"],
    ".errors": ["AgentBusy", "AgyError", "BackendError", "ConfigError", "InboxFull", "MaxTokens", "PolicyDenied",
                "QuotaExhausted", "RuntimeClosed", "SafetyBlocked", "Timeout", "ToolError", "TurnRefused",
                "UnknownAgent"],
    ".quota": ["GLOBAL_QUOTA", "QuotaRegistry", "QuotaState"],
    ".session": ["AgentSession", "AgentSpec", "RuntimeServices"],
    ".stream": ["ChatStream"],
})
if not TYPE_CHECKING:  # a type checker reads the imports above; a module __getattr__ would hide them
    __all__ = sorted(HOMES)
    __getattr__, __dir__ = lazy_exports(globals(), HOMES)
