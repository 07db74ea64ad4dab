"""Live MCP connections on the runtime loop: one owner task per server, and an agent's set of them.

The SDK's transports (stdio_client, streamable_http_client) and ClientSession are anyio context
managers whose task groups must be entered and left by the same task. So each server gets an owner
task on the runtime loop that enters them in an AsyncExitStack, reports the tools, and waits to be
told to stop; tool calls from turn tasks only send requests through the session. Leaving the stack
stops a stdio server the way the SDK does it (close stdin, wait, then kill its process group).

A server that dies never takes the runtime with it: the owner task catches whatever its transport
raises, pending and later calls fail with a ToolError that says the server is gone (the model reads
it), and the agent keeps running. The server's stderr goes to a temporary file so its last lines
can say why.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
import tempfile
from typing import Any

from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import CONNECTION_CLOSED, PaginatedRequestParams

from ...runtime.errors import ConfigError, ToolError
from .servers import McpServer
from .tools import McpTool, declared_name, input_schema, policy_name, result_payload

log = logging.getLogger(__name__)

STOP_TIMEOUT = 8.0  # the SDK's stdio shutdown: 2 s after stdin closes, 2 s after SIGTERM, then SIGKILL
STDERR_TAIL = 400


class McpConnection:
    """One running server: its session, its tools, and the task that owns them."""

    def __init__(self, server: McpServer):
        self.server = server
        self.session: ClientSession | None = None
        self.tools: list[McpTool] = []
        self.gone: str | None = None  # why the server can no longer be called
        self._task: asyncio.Task | None = None
        self._ready: asyncio.Future | None = None
        self._stop = asyncio.Event()
        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")

    def __repr__(self) -> str:
        return f"<McpConnection {self.server} {'gone: ' + self.gone if self.gone else 'up'}>"

    async def start(self) -> list[McpTool]:
        """Connect, initialize and list the tools; ConfigError says why the server did not start."""
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        self._task = loop.create_task(self._own(), name=f"agy-mcp-{self.server.name}")
        limit = self.server.startup_timeout
        try:
            async with asyncio.timeout(limit):
                self.tools = await asyncio.shield(self._ready)
        except TimeoutError:
            await self.aclose()
            raise ConfigError(f"MCP server {self.server.name!r} did not start within {limit:g} s"
                              f"{self._stderr_tail()}", hint="check its command or URL") from None
        except ConfigError:
            await self.aclose()
            raise
        return self.tools

    async def _own(self) -> None:
        """The owner task: enter the transport and session, serve until stopped, leave them."""
        try:
            async with contextlib.AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(self._transport())
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                tools = await self._list_tools(session)
                self.session = session
                self._ready.set_result(tools)
                await self._stop.wait()
        except Exception as exc:  # a transport's task group raises its children's errors as a group
            reason = _describe(exc)
            if not self._ready.done():
                self._ready.set_exception(ConfigError(
                    f"MCP server {self.server.name!r} could not be started: {reason}{self._stderr_tail()}",
                    hint=f"check `{self.server}`"))
            else:
                log.warning("agy: MCP server %r failed: %s", self.server.name, reason)
                self.gone = self.gone or f"it failed ({reason})"
        finally:
            self.gone = self.gone or "it was stopped"
            if self._ready is not None and not self._ready.done():
                self._ready.set_exception(ConfigError(f"MCP server {self.server.name!r} was stopped while starting"))

    def _transport(self) -> Any:
        server = self.server
        if server.command is not None:
            params = StdioServerParameters(command=server.command[0], args=server.command[1:], env=server.env,
                                           cwd=server.cwd)
            return stdio_client(params, errlog=self._stderr)
        if server.headers:
            # headers (tokens) go on the HTTP client the transport is given
            return _http_with_client(server.url, create_mcp_http_client(headers=server.headers))
        return streamable_http_client(server.url)

    async def _list_tools(self, session: ClientSession) -> list[McpTool]:
        tools, cursor = [], None
        while True:
            listed = await session.list_tools(params=PaginatedRequestParams(cursor=cursor) if cursor else None)
            tools += [self._tool(t) for t in listed.tools]
            cursor = listed.next_cursor
            if not cursor:
                return tools

    def _tool(self, listed: Any) -> McpTool:
        name = policy_name(self.server.name, listed.name)
        return McpTool(name=name, description=listed.description or listed.title or "",
                       parameters_json_schema=input_schema(listed.input_schema),
                       func=functools.partial(self.call, listed.name, name), is_async=True, effect="execute",
                       server=self.server.name, remote_name=listed.name,
                       declared_name=declared_name(self.server.name, listed.name))

    async def call(self, remote_name: str, name: str, **arguments: Any) -> dict:
        """Call a tool on the server; the functionResponse dict, or ToolError."""
        if self.session is None or self.gone:
            raise ToolError(name, self._gone_message())
        try:
            result = await self.session.call_tool(remote_name, arguments)
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                self.gone = self.gone or "it closed the connection (did it crash?)"
                raise ToolError(name, self._gone_message()) from None
            raise ToolError(name, f"the MCP server answered with an error: {exc.message}") from None
        except (OSError, RuntimeError) as exc:  # a transport that broke under the call
            raise ToolError(name, f"the call to MCP server {self.server.name!r} failed: {_describe(exc)}") from None
        return result_payload(name, result, self.server.max_output_chars)

    def _gone_message(self) -> str:
        return (f"MCP server {self.server.name!r} is not running: {self.gone or 'it has not started'}"
                f"{self._stderr_tail()}. Its tools cannot be used in this session; carry on without them.")

    def _stderr_tail(self) -> str:
        try:
            self._stderr.flush()
            self._stderr.seek(0)
            text = self._stderr.read()[-4000:].strip()
        except (OSError, ValueError):
            return ""
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return f" (its last error output: {lines[-1][-STDERR_TAIL:]})" if lines else ""

    async def aclose(self) -> None:
        """Stop the server (the owner task leaves its stack); a stuck one is cancelled."""
        self._stop.set()
        task = self._task
        if task is not None and not task.done():
            if self.session is None:  # still starting (no answer yet): nothing to wind down politely
                task.cancel()
            done, _ = await asyncio.wait({task}, timeout=STOP_TIMEOUT)
            if not done:
                log.warning("agy: MCP server %r did not stop within %g s; cancelling", self.server.name, STOP_TIMEOUT)
                task.cancel()
                await asyncio.wait({task}, timeout=STOP_TIMEOUT)
        if self._ready is not None and self._ready.done() and not self._ready.cancelled():
            self._ready.exception()  # retrieved: a start that was given up on is not an unhandled error
        self._stderr.close()


@contextlib.asynccontextmanager
async def _http_with_client(url: str, client: Any):
    async with client, streamable_http_client(url, http_client=client) as streams:
        yield streams


def _describe(exc: BaseException) -> str:
    """The innermost useful message of an exception or exception group."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text


def _import_validators() -> None:
    importlib.import_module("jsonschema.validators")
    importlib.import_module("referencing")


class McpServers:
    """An agent's MCP servers: started together, their tools, stopped together."""

    def __init__(self, servers: list[McpServer]):
        self.connections = [McpConnection(s) for s in servers]
        self.tools: list[McpTool] = []

    async def start(self) -> list[McpTool]:
        # The SDK imports jsonschema at the first call of a tool with an output schema: ~1 s that would
        # stall the runtime loop (every agent's stream) in the middle of a turn. Import it on a thread now.
        warm = asyncio.to_thread(_import_validators)
        *results, _ = await asyncio.gather(*(c.start() for c in self.connections), warm, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await self.aclose()
            raise failures[0]
        self.tools = [t for c in self.connections for t in c.tools]
        return self.tools

    def describe(self) -> list[dict[str, Any]]:
        """Each server's state for listings: its tools (policy names), and why it is gone if it is."""
        return [{"server": c.server.name, "transport": c.server.transport, "tools": [t.name for t in c.tools],
                 "running": c.session is not None and c.gone is None, "gone": c.gone} for c in self.connections]

    async def aclose(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self.connections), return_exceptions=True)
