"""The kernel-resident runtime: one thread, its own asyncio loop, every agent, typed errors, quota."""
from .config import RuntimeConfig, chat_timeout_from_env
from .core import AsyncRuntime, Runtime, get_runtime
from .errors import (AgentBusy, AgyError, BackendError, ConfigError, InboxFull, MaxTokens, PolicyDenied, TurnRefused,
                     QuotaExhausted, RuntimeClosed, SafetyBlocked, Timeout, ToolError, UnknownAgent)
from .quota import GLOBAL_QUOTA, QuotaRegistry, QuotaState
from .session import AgentSession, AgentSpec, RuntimeServices
from .stream import ChatStream

__all__ = [
    "AgentBusy", "AgentSession", "AgentSpec", "AgyError", "AsyncRuntime", "BackendError", "ChatStream", "ConfigError",
    "GLOBAL_QUOTA", "InboxFull", "MaxTokens", "PolicyDenied", "TurnRefused", "QuotaExhausted", "QuotaRegistry", "QuotaState",
    "Runtime", "RuntimeClosed", "RuntimeConfig", "RuntimeServices", "SafetyBlocked", "Timeout",
    "ToolError", "UnknownAgent", "chat_timeout_from_env", "get_runtime",
]
