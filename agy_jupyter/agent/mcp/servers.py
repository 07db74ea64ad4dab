"""McpServer: where one MCP server is (a command to run over stdio, or a streamable HTTP URL).

The same spec is written three ways: `McpServer("fs", command=["python", "-m", "srv"])`,
`McpServer("web", url="http://127.0.0.1:8000/mcp")`, or the string `"name=python -m srv"` /
`"name=http://…"` that `--mcp` takes. Server names become the `server/` prefix of tool names, so they
are short and plain. `restarts` (1 by default) is how often a server that died is started again, at
the next call of one of its tools (connection.py).
"""
from __future__ import annotations

import re
import shlex
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ...runtime.errors import ConfigError

# no "/" (the policy-name separator) and no "__" (the declared-name separator): the split stays unambiguous
_SERVER_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9-]|_(?!_)){0,31}$")
_URL = re.compile(r"^https?://", re.IGNORECASE)
SPEC_FORMS = '"name=python -m module" (stdio) or "name=http://127.0.0.1:PORT/mcp" (streamable HTTP)'


class McpServer(BaseModel):
    """One MCP server an agent takes tools from: `command` (stdio) or `url` (streamable HTTP)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    command: list[str] | None = None
    url: str | None = None
    # secrets live here (tokens): never saved with the agent's config, never shown in its repr
    env: dict[str, str] | None = Field(None, exclude=True, repr=False,
                                       description="extra environment variables for a stdio server")
    headers: dict[str, str] | None = Field(None, exclude=True, repr=False,
                                           description="HTTP headers for an HTTP server (e.g. Authorization)")
    cwd: str | None = None
    startup_timeout: float = Field(30.0, gt=0, description="seconds to connect and list the tools")
    max_output_chars: int = Field(20_000, gt=0, description="a tool result longer than this is cut")
    restarts: int = Field(1, ge=0, description="how often a server that died is started again (at the next "
                                               "call of one of its tools)")

    def __init__(self, name: str | None = None, /, **fields: Any):
        super().__init__(**({"name": name} if name is not None else {}), **fields)

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if not _SERVER_NAME.match(name):
            raise ValueError(f"MCP server name {name!r}: use a letter, then letters, digits, '-' or single "
                             "'_' (at most 32)")
        return name

    @field_validator("command", mode="before")
    @classmethod
    def _split_command(cls, command: Any) -> Any:
        return shlex.split(command) if isinstance(command, str) else command

    @model_validator(mode="after")
    def _one_transport(self) -> McpServer:
        if (self.command is None) == (self.url is None):
            raise ValueError(f"MCP server {self.name!r}: give command=[...] (stdio) or url=... (HTTP), one of them")
        if self.command is not None and not self.command:
            raise ValueError(f"MCP server {self.name!r}: the command is empty")
        if self.url is not None and not _URL.match(self.url):
            raise ValueError(f"MCP server {self.name!r}: the url must start with http:// or https://")
        return self

    @property
    def transport(self) -> str:
        return "stdio" if self.command is not None else "http"

    def __str__(self) -> str:
        return f"{self.name}={self.url or shlex.join(self.command or [])}"


def parse_server(spec: Any) -> McpServer:
    """An McpServer from an McpServer, a dict of its fields, or a "name=command" / "name=url" string."""
    if isinstance(spec, McpServer):
        return spec
    try:
        if isinstance(spec, dict):
            return McpServer(**spec)
        if not isinstance(spec, str):
            raise ConfigError(f"an MCP server is an McpServer or a string, not {type(spec).__name__}",
                              hint=f"write {SPEC_FORMS}")
        name, sep, target = spec.partition("=")
        name, target = name.strip(), target.strip()
        if not sep or not name or not target:
            raise ConfigError(f"MCP server {spec!r} is not NAME=COMMAND or NAME=URL", hint=f"write {SPEC_FORMS}")
        if _URL.match(target):
            return McpServer(name, url=target)
        try:
            command = shlex.split(target)
        except ValueError as exc:  # unbalanced quotes
            raise ConfigError(f"MCP server {name!r}: cannot split its command ({exc})") from None
        return McpServer(name, command=command)
    except ValidationError as exc:
        raise ConfigError("; ".join(_message(err) for err in exc.errors())) from None


def _message(err: dict) -> str:
    text = str(err["msg"]).removeprefix("Value error, ")
    where = ".".join(str(p) for p in err["loc"])
    return text if not where or where in text else f"{where}: {text}"
