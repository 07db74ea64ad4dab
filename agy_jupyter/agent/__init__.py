"""The agent loop on google-genai: config, tools, policies, hooks, history, usage."""
from .api import Agent
from .config import DEFAULT_MODEL, AgentConfig, build_config
from .content import Blob, dataframe_summary, file, image
from .directory import agents
from .events import (ApprovalRequested, QuotaWait, StatusChanged, TextDelta, ThoughtDelta, ToolCallStarted,
                     ToolFinished, TurnFinished)
from .history import ChatResponse, Message, ToolCallRecord, Usage, history_is_valid
from .hooks import Hooks
from .mcp import McpServer
from .persistence import SavedConversation, forget_conversation, saved_conversations
from .policies import (Approval, ApprovalRequest, CallInfo, Decision, PolicyRule, allow, allow_all, ask_user,
                       deny, deny_all, safe_defaults, workspace_only)
from .tools import Tool, ToolResult, tool
from . import workspace_tools as _workspace_tools  # noqa: F401  registers view_file, write_file, run_command, ...

__all__ = [
    "Agent", "AgentConfig", "Approval", "ApprovalRequest", "ApprovalRequested", "Blob", "CallInfo", "ChatResponse",
    "DEFAULT_MODEL", "Decision", "Hooks", "McpServer", "Message", "PolicyRule", "QuotaWait", "StatusChanged", "TextDelta",
    "ThoughtDelta", "Tool", "ToolCallRecord", "ToolResult", "ToolCallStarted", "ToolFinished", "TurnFinished", "Usage",
    "allow", "allow_all", "ask_user", "build_config", "dataframe_summary", "deny", "deny_all", "file",
    "history_is_valid", "image", "safe_defaults", "tool", "workspace_only",
    "SavedConversation", "forget_conversation", "saved_conversations", "agents",
]
