"""AgentConfig: everything that defines an agent, validated by pydantic with errors that say what to fix."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Sequence

from google.genai import types
from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError, field_validator,
                      model_validator)

from ..runtime.errors import ConfigError
from . import builtin_tools, server_tools
from .hooks import Hooks
from .mcp.servers import McpServer, parse_server
from .policies import ApprovalHandler, Decision, PolicyRule
from .tools import Tool, as_tool

DEFAULT_MODEL = "gemini-2.5-flash"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


class AgentConfig(BaseModel):
    """An agent's definition. `to_json()` never includes credentials, callables or hooks."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, validate_assignment=True)

    name: str = "agent"
    model: str = DEFAULT_MODEL
    system_instruction: str | None = None
    # generation settings
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_output_tokens: int | None = Field(None, gt=0)
    stop_sequences: list[str] = Field(default_factory=list)
    thinking_budget: int | None = Field(None, ge=-1)
    include_thoughts: bool = True
    # tools and who may run them
    tools: list[Tool] = Field(default_factory=list, exclude=True)
    enabled_tools: list[str] | None = Field(None, description="builtin tools or groups to offer (see BuiltinTools)")
    disabled_tools: list[str] | None = Field(None, description="offer every builtin tool but these")
    workspace: str | None = Field(None, description="root the file and shell tools are confined to "
                                                    "(default: the current directory)")
    gemini_tools: list[server_tools.GeminiTool] = Field(
        default_factory=list, description="Gemini's server-side tools: search (google_search grounding), "
                                          "url (url_context), code (code_execution)")
    mcp_servers: list[McpServer] = Field(default_factory=list, description="MCP servers whose tools the agent "
                                         "gets, as `server/tool` (McpServer or 'name=command' / 'name=url')")
    policies: list[PolicyRule] = Field(default_factory=list)
    default_policy: Decision = Decision.ASK
    approval_handler: ApprovalHandler | None = Field(None, exclude=True)
    max_tool_calls: int = Field(16, ge=0, description="tool calls allowed in one turn")
    tool_timeout: float = Field(60.0, gt=0)
    hooks: Hooks = Field(default_factory=Hooks, exclude=True)
    # context
    compaction_threshold: int | None = Field(None, gt=0, description="compact when a call's tokens exceed this")
    compaction_keep_turns: int = Field(2, ge=1)
    response_schema: type[BaseModel] | None = Field(None, exclude=True)
    api_key: SecretStr | None = Field(None, exclude=True, repr=False)
    base_url: str | None = Field(None, description="an OpenAI-compatible server for model='openai:NAME', "
                                                   "e.g. http://127.0.0.1:11434/v1")
    _builtins: tuple[tuple, list[Tool]] | None = PrivateAttr(None)  # (what they were built for, the tools)

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError("use letters, digits, '_', '.' or '-' (starting with a letter), at most 64")
        return name

    @field_validator("tools", mode="before")
    @classmethod
    def _to_tools(cls, tools: Any) -> list[Tool]:
        tools = [tools] if callable(tools) else list(tools or [])
        return [as_tool(t) for t in tools]

    @field_validator("mcp_servers", mode="before")
    @classmethod
    def _to_servers(cls, servers: Any) -> list[McpServer]:
        servers = [servers] if isinstance(servers, (str, McpServer)) else list(servers or [])
        try:
            parsed = [parse_server(s) for s in servers]
        except ConfigError as exc:
            raise ValueError(exc.message) from None
        names = [s.name for s in parsed]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"two MCP servers share the name(s) {', '.join(twice)}")
        return parsed

    @model_validator(mode="after")
    def _check_builtins(self) -> "AgentConfig":
        if self.enabled_tools is not None and self.disabled_tools is not None:
            raise ValueError("give enabled_tools or disabled_tools, not both")
        try:
            names = [t.name for t in self.all_tools()]
        except ConfigError as exc:  # pydantic reports ValueErrors with the field they belong to
            raise ValueError(f"{exc.message}{f' ({exc.hint})' if exc.hint else ''}") from None
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"two tools share the name(s) {', '.join(duplicates)}")
        if self.gemini_tools and names and server_tools.mixing_refused(self.model):
            functions = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
            raise ValueError(f"{self.model} cannot use Gemini's server tools ({', '.join(self.gemini_tools)}) "
                             f"together with function tools ({functions}): the API refuses the mix before "
                             "Gemini 3; use a gemini-3 model, or one kind of tool")
        return self

    @field_validator("gemini_tools", mode="before")
    @classmethod
    def _to_gemini_tools(cls, names: Any) -> Any:
        if isinstance(names, str):  # "search,url,code" as the magic and a config file give it
            return server_tools.parse_names(names)
        return list(dict.fromkeys(names or []))

    def builtin_context(self) -> builtin_tools.BuiltinContext:
        return builtin_tools.BuiltinContext(workspace=Path(self.workspace or ".").resolve())

    def all_tools(self) -> list[Tool]:
        """Custom tools plus the builtins this config enables (built once per selection and workspace)."""
        names = builtin_tools.selected(self.enabled_tools, self.disabled_tools)
        context = self.builtin_context() if names else None
        key = (tuple(names), context)
        if self._builtins is None or self._builtins[0] != key:
            self._builtins = (key, builtin_tools.build(names, context) if names else [])
        return [*self.tools, *self._builtins[1]]

    def generate_config(self, *, with_tools: bool = True, allow_calls: bool = True,
                        extra_tools: Sequence[Tool] = ()) -> types.GenerateContentConfig:
        """The google-genai request config; automatic function calling is always off. `extra_tools` are
        the live session's own (its MCP servers' tools, known once they are connected)."""
        tools = [*self.all_tools(), *extra_tools] if with_tools else []
        thinking = None
        if self.thinking_budget is not None or self.include_thoughts:
            thinking = types.ThinkingConfig(thinking_budget=self.thinking_budget,
                                            include_thoughts=self.include_thoughts or None)
        request_tools = [types.Tool(function_declarations=[t.declaration() for t in tools])] if tools else []
        server = server_tools.request_tools(self.gemini_tools) if with_tools else []
        calling = None if allow_calls or not tools else types.FunctionCallingConfig(
            mode=types.FunctionCallingConfigMode.NONE)
        mixed = bool(server and tools)  # Gemini 3 takes server tools next to functions only when asked to
        return types.GenerateContentConfig(
            system_instruction=self.system_instruction,
            temperature=self.temperature,
            top_p=self.top_p,
            max_output_tokens=self.max_output_tokens,
            stop_sequences=self.stop_sequences or None,
            thinking_config=thinking,
            tools=[*server, *request_tools] or None,
            tool_config=types.ToolConfig(function_calling_config=calling,
                                         include_server_side_tool_invocations=mixed or None)
            if calling or mixed else None,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            response_mime_type="application/json" if self.response_schema else None,
            response_schema=self.response_schema,
        )

    def to_json(self) -> str:
        """JSON for saving: no key, no callables (tools are listed by name)."""
        data = self.model_dump(mode="json")
        data["tool_names"] = [t.name for t in self.tools]
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str, tools: list[Callable] | None = None) -> "AgentConfig":
        """Rebuild from to_json(); pass the callables back as `tools` (matched by name)."""
        data = json.loads(text)
        wanted = data.pop("tool_names", [])
        given = {as_tool(t).name: t for t in tools or []}
        missing = [n for n in wanted if n not in given]
        if missing:
            raise ConfigError(f"the saved agent uses tools {', '.join(missing)} which were not passed",
                              hint="pass them as tools=[...] when loading")
        return build_config(tools=[given[n] for n in wanted], **data)

    def create_session(self, services: Any, agent_id: int) -> Any:
        """Build the live agent on the runtime loop (the runtime's AgentSpec contract); a coroutine, which
        also runs the on_session_start hooks."""
        from .session import GeminiSession  # the session module imports this one
        return GeminiSession.start(self, services, agent_id)


def build_config(**fields: Any) -> AgentConfig:
    """AgentConfig(**fields), turning a pydantic ValidationError into one ConfigError that says what to fix."""
    try:
        return AgentConfig(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
                             for err in exc.errors())
        raise ConfigError(f"invalid agent config: {problems}") from None

