"""McpTool: one MCP server's tool as the agent sees it, its two names, and its results for the model.

Names. Policies, approvals and the user say `server/tool`. Gemini's function names allow only
letters, digits, `_ . : -` (google-genai's FunctionDeclaration.name: "must start with a letter or an
underscore … underscores, dots, colons and dashes", 64 characters in older docs, 128 in google-genai
3.4), so a `/` would be refused: the model is offered `server__tool` instead (other characters become
`_`; a name over 64 characters is cut and given a hash so it stays unique). The model calls that name,
the history keeps it, and the ToolCaller finds the tool by it; `Tool.name` stays `server/tool`.

Effect. A server's tools can do anything, and its own `readOnlyHint` is the server's claim, not ours:
every MCP tool has effect "execute", so the default policies ask before each call.

Results. Text blocks are joined, structured content is returned as is when it fits; the text is cut
at the server's `max_output_chars` and the model is told. Images (ImageContent, or an embedded blob
resource with an image type) go to the model as media, the way a builtin tool's Blobs do
(`functionResponse.parts`; history.py leaves them out for models before Gemini 3): up to MAX_IMAGES
per result, each up to MAX_IMAGE_BYTES, in the types Gemini reads (IMAGE_TYPES). The text says which
were attached and why any other was not. Audio and other binary resources are named, not sent.
`isError` results become ToolErrors, like a Python tool that raised (their images are dropped).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from google.genai import types

from ...runtime.errors import ConfigError, ToolError
from ..content import Blob
from ..tools import TOOL_EFFECTS, Tool, ToolResult, _check_name
from ..workspace_tools import MAX_MEDIA_BYTES

MAX_DECLARED = 64
MAX_IMAGES = 4  # per tool result; later images are named, not sent
MAX_IMAGE_BYTES = MAX_MEDIA_BYTES  # the same cap as view_file's images (5 MB)
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif")  # Gemini's image inputs
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


class Attachments:
    """The images of one result that go to the model as media, within the caps."""

    def __init__(self) -> None:
        self.blobs: list[Blob] = []

    def add(self, encoded: str | None, mime_type: str | None) -> str:
        """Attach one base64 image if it fits the caps; the note the text shows in its place."""
        size = len(encoded or "") * 3 // 4
        what = f"image ({mime_type}, about {size:,} bytes)"
        if mime_type not in IMAGE_TYPES:
            return f"[{what} not sent: the model reads {', '.join(IMAGE_TYPES)}]"
        if size > MAX_IMAGE_BYTES:
            return f"[{what} not sent: more than {MAX_IMAGE_BYTES:,} bytes]"
        if len(self.blobs) >= MAX_IMAGES:
            return f"[{what} not sent: at most {MAX_IMAGES} images per result]"
        try:
            data = base64.b64decode(encoded or "", validate=True)
        except (binascii.Error, ValueError):
            return f"[{what} not sent: its data is not base64]"
        self.blobs.append(Blob(data=data, mime_type=mime_type))
        return f"[image {len(self.blobs)} ({mime_type}, {len(data):,} bytes) attached]"


def _block_text(block: Any, attachments: Attachments) -> str:
    kind = getattr(block, "type", None)
    if kind == "text":
        return block.text
    if kind == "image":
        return attachments.add(block.data, block.mime_type)
    if kind == "audio":
        size = len(block.data or "") * 3 // 4
        return f"[audio ({block.mime_type}, about {size:,} bytes) not sent]"
    if kind == "resource":
        resource = block.resource
        text = getattr(resource, "text", None)
        if text is not None:
            return text
        if (resource.mime_type or "").startswith("image/"):
            return attachments.add(getattr(resource, "blob", None), resource.mime_type)
        return f"[binary resource {resource.uri} not shown]"
    if kind == "resource_link":
        return f"[resource link: {block.uri}]"
    return f"[{kind} content not shown]"


def result_payload(tool: str, result: Any, limit: int) -> dict | ToolResult:
    """The functionResponse for an MCP CallToolResult (a ToolResult when images go with it);
    ToolError when the server says the call failed."""
    attachments = Attachments()
    text = "\n".join(_block_text(b, attachments) for b in result.content or [])
    if result.is_error:
        raise ToolError(tool, cut(text or "the server reported an error without a message", limit))
    payload = None
    structured = result.structured_content
    if structured is not None:
        encoded = json.dumps(structured, default=str)
        if len(encoded) <= limit:  # an object is the response itself (MCPServer wraps a str in {"result": …})
            payload = structured if isinstance(structured, dict) else {"result": structured}
        text = text or encoded
    if payload is None:
        payload = {"result": cut(text, limit)}
    return ToolResult(payload, media=attachments.blobs) if attachments.blobs else payload
