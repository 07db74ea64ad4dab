"""Live MCP connections on the runtime loop: one owner task per server, and an agent's set of them.

The SDK's transports (stdio_client, streamable_http_client) and ClientSession are anyio context
managers whose task groups must be entered and left by the same task. So each server gets an owner
task on the runtime loop that enters them in an AsyncExitStack, reports the tools, and waits to be
told to stop; tool calls from turn tasks only send requests through the session. Leaving the stack
stops a stdio server the way the SDK does it (close stdin, wait, then kill its process group).

A server that dies never takes the runtime with it: the owner task catches whatever its transport
raises, and the call in flight fails with a ToolError that says the server is gone (the model reads
it); the server's stderr goes to a temporary file so its last lines can say why. The next call of
one of its tools starts it again (`McpServer.restarts` times, once by default) and then runs; if it
cannot be started, that call gets a ToolError saying so, and so do later ones. The call that was in
flight is never repeated: it may have done half its work. A stdio server's death is seen as soon as
its stdout ends (the read stream is watched), so a server that died between calls is started again
before the next call is sent; over HTTP a dead server shows as a failed request (the SDK's
CONNECTION_CLOSED, measured: 25 ms after the server process exits). A restart costs what a start
does (tests/mcp_servers/toolbox.py over stdio: 1.3-2.9 s on 2 busy cores, against 5 ms for a call).

Changed tools. The connection initializes through the handshake (protocol 2025-11-25 with mcp 2.3),
where a server announces a new tool set with `notifications/tools/list_changed` (2026-07-28
connections use `subscriptions/listen` instead). The session's message handler marks the connection
stale; `McpServers.refresh()`, run before each model call, lists the tools again, so the first model
call after the notification arrives declares the new set. A tool that announces the change as part
of its call (`related_request_id`) is seen by the very next model call, over stdio and HTTP (50 of 50
times measured, also under load). Over HTTP, a notification sent outside any request travels on the
session's standalone stream and races the call's result: the next model call had it 50 of 50 times
on an idle machine, 33-44 of 50 under load (4 processes on 2 cores); the one after that has it.
A restarted server's tools are listed again the same way.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import json
import logging
import tempfile
from typing import Any

from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import CONNECTION_CLOSED, PaginatedRequestParams, ToolListChangedNotification

from ...runtime.errors import ConfigError, ToolError
from .servers import McpServer
from ..tools import ToolResult
from .tools import McpTool, declared_name, input_schema, policy_name, result_payload

log = logging.getLogger(__name__)

STOP_TIMEOUT = 8.0  # the SDK's stdio shutdown: 2 s after stdin closes, 2 s after SIGTERM, then SIGKILL
STDERR_TAIL = 400
CLOSED = "it closed the connection (did it crash?)"


class McpConnection:
    """One running server: its session, its tools, and the task that owns them."""

    def __init__(self, server: McpServer):
        self.server = server
        self.session: ClientSession | None = None
        self.tools: list[McpTool] = []
        self.gone: str | None = None  # why the server can no longer be called
        self.restarts_left = server.restarts
        self.stale = False  # the server said its tools changed: list them again before the next model call
        self.changed = False  # `tools` was replaced since McpServers last collected them
        self._task: asyncio.Task | None = None
        self._ready: asyncio.Future | None = None
        self._stop = asyncio.Event()
        self._restarting = asyncio.Lock()
        self._closed = False
        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")

    def __repr__(self) -> str:
        return f"<McpConnection {self.server} {'gone: ' + self.gone if self.gone else 'up'}>"

    async def start(self) -> list[McpTool]:
        """Connect, initialize and list the tools; ConfigError says why the server did not start."""
        loop = asyncio.get_running_loop()
        self._ready, self._stop, self.gone = loop.create_future(), asyncio.Event(), None
        self._task = loop.create_task(self._own(self._ready, self._stop), name=f"agy-mcp-{self.server.name}")
        limit = self.server.startup_timeout
        try:
            async with asyncio.timeout(limit):
                tools = await asyncio.shield(self._ready)
        except TimeoutError:
            await self._halt()
            raise ConfigError(f"MCP server {self.server.name!r} did not start within {limit:g} s"
                              f"{self._stderr_tail()}", hint="check its command or URL") from None
        except ConfigError:
            await self._halt()
            raise
        self._set_tools(tools)
        return self.tools

    async def _own(self, ready: asyncio.Future, stop: asyncio.Event) -> None:
        """The owner task: enter the transport and session, serve until stopped (or the server's
        stream ends), leave them. `ready` and `stop` are this run's: a restart makes new ones."""
        task = asyncio.current_task()

        def ended() -> None:  # the server's output ended: it exited, or its transport gave up
            if self._task is task:
                self.gone = self.gone or CLOSED
            stop.set()

        try:
            async with contextlib.AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(self._transport())
                session = await stack.enter_async_context(
                    ClientSession(_EndWatch(read, ended), write, message_handler=self._on_message))
                await session.initialize()
                tools = await self._list_tools(session)
                self.session = session
                ready.set_result(tools)
                await stop.wait()
        except Exception as exc:  # a transport's task group raises its children's errors as a group
            reason = _describe(exc)
            if not ready.done():
                ready.set_exception(ConfigError(
                    f"MCP server {self.server.name!r} could not be started: {reason}{self._stderr_tail()}",
                    hint=f"check `{self.server}`"))
            elif self._task is task:
                log.warning("agy: MCP server %r failed: %s", self.server.name, reason)
                self.gone = self.gone or f"it failed ({reason})"
        finally:
            if self._task is task:
                self.session = None
                self.gone = self.gone or "it was stopped"
            if not ready.done():
                ready.set_exception(ConfigError(f"MCP server {self.server.name!r} was stopped while starting"))

    async def _on_message(self, message: Any) -> None:
        """The session's handler for server notifications (and transport faults, which calls report)."""
        if isinstance(message, ToolListChangedNotification):
            self.stale = True

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

    def _set_tools(self, tools: list[McpTool]) -> None:
        if _shape(tools) != _shape(self.tools):
            self.tools = tools
            self.changed = True

    async def refresh(self) -> None:
        """List the tools again if the server said they changed; on failure keep the ones we had."""
        if not self.stale or self.session is None or self.gone:
            return
        self.stale = False  # a notification during the listing marks it stale again
        try:
            async with asyncio.timeout(self.server.startup_timeout):
                tools = await self._list_tools(self.session)
        except Exception as exc:
            log.warning("agy: MCP server %r said its tools changed, but listing them failed: %s",
                        self.server.name, _describe(exc))
            return
        self._set_tools(tools)

    async def call(self, remote_name: str, name: str, /, **arguments: Any) -> dict | ToolResult:
        """Call a tool on the server (starting it again first if it died); the functionResponse, or ToolError.
        Positional-only: a server's tool may well have arguments called `name` (it did, in a test)."""
        if self.session is None or self.gone:
            await self._restart(name)
        try:
            result = await self.session.call_tool(remote_name, arguments)
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                self.gone = self.gone or CLOSED
                raise ToolError(name, self._gone_message()) from None
            raise ToolError(name, f"the MCP server answered with an error: {exc.message}") from None
        except (OSError, RuntimeError) as exc:  # a transport that broke under the call
            raise ToolError(name, f"the call to MCP server {self.server.name!r} failed: {_describe(exc)}") from None
        return result_payload(name, result, self.server.max_output_chars)

    async def _restart(self, name: str) -> None:
        """Start a server that died again, if it has restarts left; ToolError when it cannot run."""
        async with self._restarting:  # calls waiting here find it restarted by the first one
            if self.session is not None and not self.gone:
                return
            if self._closed or self.restarts_left <= 0:
                raise ToolError(name, self._gone_message())
            self.restarts_left -= 1
            log.warning("agy: MCP server %r is not running (%s); starting it again", self.server.name, self.gone)
            await self._halt()
            self._stderr.seek(0)
            self._stderr.truncate()  # the tail should speak of this start, not of the death before it
            try:
                await self.start()
            except ConfigError as exc:
                self.gone = "it died and could not be started again"
                raise ToolError(name, f"MCP server {self.server.name!r} died and could not be started again: "
                                      f"{exc.message}. {self._next_step()}") from None

    def _gone_message(self) -> str:
        return (f"MCP server {self.server.name!r} is not running: {self.gone or 'it has not started'}"
                f"{self._stderr_tail()}. {self._next_step()}")

    def _next_step(self) -> str:
        if self.restarts_left > 0 and not self._closed:
            return "It will be started again at the next call of one of its tools."
        return "Its tools cannot be used in this session; carry on without them."

    def _stderr_tail(self) -> str:
        try:
            self._stderr.flush()
            self._stderr.seek(0)
            text = self._stderr.read()[-4000:].strip()
        except (OSError, ValueError):
            return ""
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return f" (its last error output: {lines[-1][-STDERR_TAIL:]})" if lines else ""

    async def _halt(self) -> None:
        """Stop the owner task (leaving its stack stops the server); a stuck one is cancelled."""
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

    async def aclose(self) -> None:
        """Stop the server for good."""
        self._closed = True
        await self._halt()
        self._stderr.close()


class _EndWatch:
    """The transport's read stream, calling `on_end` when it ends (a stdio server that exited).

    The session's dispatcher only enters it, iterates it and reads `last_context`."""

    def __init__(self, stream: Any, on_end: Any):
        self._stream = stream
        self._on_end = on_end

    async def __aenter__(self) -> "_EndWatch":
        await self._stream.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self._stream.__aexit__(*exc_info)

    def __aiter__(self) -> "_EndWatch":
        return self

    async def __anext__(self) -> Any:
        try:
            return await self._stream.__anext__()
        except StopAsyncIteration:
            self._on_end()
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _shape(tools: list[McpTool]) -> list[tuple]:
    """What the model is told of these tools (two listings with the same shape need no new offer)."""
    return [(t.name, t.description, json.dumps(t.parameters_json_schema, sort_keys=True, default=str)) for t in tools]


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

    def __init__(self, servers: list[McpServer], reserved: Any = ()):
        self.connections = [McpConnection(s) for s in servers]
        self.reserved = frozenset(reserved)  # the agent's own tool names, which MCP tools may not take
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
        clash = sorted(t.declared_name for c in self.connections for t in c.tools if t.declared_name in self.reserved)
        if clash:
            await self.aclose()
            raise ConfigError(f"MCP tools clash with the agent's own tools: {', '.join(clash)}",
                              hint="rename the MCP server")
        self._collect()
        return self.tools

    async def refresh(self) -> bool:
        """List again the tools of servers that said theirs changed; True when the set of tools changed
        (so, or by a restart) since the last look: the caller offers the new set."""
        stale = [c for c in self.connections if c.stale]
        if stale:
            await asyncio.gather(*(c.refresh() for c in stale))
        if not any(c.changed for c in self.connections):
            return False
        self._collect()
        return True

    def _collect(self) -> None:
        tools = []
        for connection in self.connections:
            connection.changed = False
            for tool in connection.tools:
                if tool.declared_name in self.reserved:  # a server's new tool cannot shadow the agent's own
                    log.warning("agy: MCP tool %s is not offered: the agent has its own tool %r",
                                tool.name, tool.declared_name)
                else:
                    tools.append(tool)
        self.tools = tools

    def describe(self) -> list[dict[str, Any]]:
        """Each server's state for listings: its tools (policy names), and why it is gone if it is."""
        return [{"server": c.server.name, "transport": c.server.transport, "tools": [t.name for t in c.tools],
                 "running": c.session is not None and c.gone is None, "gone": c.gone,
                 "restarts_left": c.restarts_left} for c in self.connections]

    async def aclose(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self.connections), return_exceptions=True)
