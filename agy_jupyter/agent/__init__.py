"""The agent loop on google-genai: config, tools, policies, hooks, history, usage.

The public names are imported from their modules on first use (see agy_jupyter/_lazy.py), so importing
this package, or one light module of it (builtin_tools at `%load_ext`), does not import google-genai.
"""
from typing import TYPE_CHECKING

from .._lazy import homes_of, lazy_exports
from . import builtin_tools as _builtin_tools

if TYPE_CHECKING:  # for type checkers and IDEs
    from .api import Agent  # noqa: F401
    from .batch import Batch, BatchRow  # noqa: F401
    from .config import DEFAULT_MODEL, AgentConfig, build_config  # noqa: F401
    from .content import Blob, dataframe_summary, file, image  # noqa: F401
    from .directory import agents  # noqa: F401
    from .events import (ApprovalRequested, QuotaWait, StatusChanged, TextDelta, ThoughtDelta,  # noqa: F401
                         ToolCallStarted, ToolFinished, TurnFinished)
    from .history import ChatResponse, Message, ToolCallRecord, Usage, history_is_valid  # noqa: F401
    from .hooks import Hooks  # noqa: F401
    from .mcp import McpServer  # noqa: F401
    from .persistence import SavedConversation, forget_conversation, saved_conversations  # noqa: F401
    from .policies import (Approval, ApprovalRequest, CallInfo, Decision, PolicyRule, allow,  # noqa: F401
                           allow_all, ask_user, deny, deny_all, safe_defaults, workspace_only)
    from .tools import Tool, ToolResult, tool  # noqa: F401

# each public name -> the module that defines it
HOMES = homes_of({
    ".api": ["Agent"],
    ".batch": ["Batch", "BatchRow"],
    ".config": ["DEFAULT_MODEL", "AgentConfig", "build_config"],
    ".content": ["Blob", "dataframe_summary", "file", "image"],
    ".directory": ["agents"],
    ".events": ["ApprovalRequested", "QuotaWait", "StatusChanged", "TextDelta", "ThoughtDelta", "ToolCallStarted",
                "ToolFinished", "TurnFinished"],
    ".history": ["ChatResponse", "Message", "ToolCallRecord", "Usage", "history_is_valid"],
    ".hooks": ["Hooks"],
    ".mcp": ["McpServer"],
    ".persistence": ["SavedConversation", "forget_conversation", "saved_conversations"],
    ".policies": ["Approval", "ApprovalRequest", "CallInfo", "Decision", "PolicyRule", "allow", "allow_all",
                  "ask_user", "deny", "deny_all", "safe_defaults", "workspace_only"],
    ".tools": ["Tool", "ToolResult", "tool"],
})

# the workspace tools (view_file, write_file, run_command, ...) register when an agent first needs a builtin
_builtin_tools.provide_from(f"{__name__}.workspace_tools")

if not TYPE_CHECKING:  # a type checker reads the imports above; a module __getattr__ would hide them
    __all__ = sorted(HOMES)
    __getattr__, __dir__ = lazy_exports(globals(), HOMES)
