"""McpTool: one MCP server's tool as the agent sees it, its two names, and its results for the model.

Names. Policies, approvals and the user say `server/tool`. Gemini's function names allow only
letters, digits, `_ . : -` (google-genai's FunctionDeclaration.name: "must start with a letter or an
underscore … underscores, dots, colons and dashes", 64 characters in older docs, 128 in google-genai
3.4), so a `/` would be refused: the model is offered `server__tool` instead (other characters become
`_`; a name over 64 characters is cut and given a hash so it stays unique). The model calls that name,
the history keeps it, and the ToolCaller finds the tool by it; `Tool.name` stays `server/tool`.

Effect. A server's tools can do anything, and its own `readOnlyHint` is the server's claim, not ours:
every MCP tool has effect "execute", so the default policies ask before each call.

Results. Text blocks are joined, images/audio/resources are named (not sent), structured content is
returned as is when it fits; the whole is cut at the server's `max_output_chars` and the model is told.
`isError` results become ToolErrors, like a Python tool that raised.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from google.genai import types

from ...runtime.errors import ConfigError, ToolError
from ..tools import TOOL_EFFECTS, Tool, _check_name

MAX_DECLARED = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")


def policy_name(server: str, tool: str) -> str:
    """The name policies and approvals use: `server/tool`."""
    return f"{server}/{tool}"


def declared_name(server: str, tool: str) -> str:
    """The function name offered to Gemini: `server__tool`, only characters the API accepts."""
    name = f"{server}__{_UNSAFE.sub('_', tool)}"
    if len(name) > MAX_DECLARED:
        digest = hashlib.sha1(tool.encode()).hexdigest()[:8]
        name = f"{name[:MAX_DECLARED - 9]}_{digest}"
    return name


@dataclass
class McpTool(Tool):
    """A Tool whose `name` is `server/tool` and whose declaration says `declared_name`."""

    server: str = ""
    remote_name: str = ""  # the tool's name on its server
    declared_name: str = ""

    def __post_init__(self) -> None:  # Tool's check would refuse the "/" in `name`
        _check_name(self.declared_name)
        if self.effect not in TOOL_EFFECTS:
            raise ConfigError(f"tool {self.name!r}: effect must be one of read, write, execute (or None)")

    def declaration(self) -> types.FunctionDeclaration:
        return types.FunctionDeclaration(name=self.declared_name, description=self.description or None,
                                         parameters_json_schema=self.parameters_json_schema)


def input_schema(schema: dict | None) -> dict:
    """The server's JSON schema for the arguments, minus keys Gemini does not take."""
    schema = {k: v for k, v in (schema or {}).items() if k not in ("$schema", "$id")}
    schema.setdefault("type", "object")
    if schema["type"] == "object":
        schema.setdefault("properties", {})
    return schema


def cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[output cut: {len(text)} characters, the first {limit} shown]"


def _block_text(block: Any) -> str:
    kind = getattr(block, "type", None)
    if kind == "text":
        return block.text
    if kind in ("image", "audio"):
        size = len(block.data or "") * 3 // 4
        return f"[{kind} ({block.mime_type}, about {size} bytes) not shown]"
    if kind == "resource":
        resource = block.resource
        text = getattr(resource, "text", None)
        return text if text is not None else f"[binary resource {resource.uri} not shown]"
    if kind == "resource_link":
        return f"[resource link: {block.uri}]"
    return f"[{kind} content not shown]"


def result_payload(tool: str, result: Any, limit: int) -> dict:
    """The functionResponse for an MCP CallToolResult; ToolError when the server says the call failed."""
    text = "\n".join(_block_text(b) for b in result.content or [])
    if result.is_error:
        raise ToolError(tool, cut(text or "the server reported an error without a message", limit))
    structured = result.structured_content
    if structured is not None:
        encoded = json.dumps(structured, default=str)
        if len(encoded) <= limit:  # an object is the response itself (MCPServer wraps a str in {"result": …})
            return structured if isinstance(structured, dict) else {"result": structured}
        text = text or encoded
    return {"result": cut(text, limit)}
