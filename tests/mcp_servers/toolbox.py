"""A real MCP server for the tests, written with the mcp SDK's own server API (MCPServer, mcp 2.x's FastMCP).

    python tests/mcp_servers/toolbox.py stdio
    python tests/mcp_servers/toolbox.py http PORT      (streamable HTTP on 127.0.0.1:PORT/mcp)
"""
from __future__ import annotations

import os
import sys
import time

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("toolbox")


@server.tool()
def echo(text: str) -> str:
    """Say the text back."""
    return f"echo: {text}"


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def big(chars: int) -> str:
    """Return `chars` characters."""
    return "x" * chars


@server.tool()
def fail(why: str) -> str:
    """Fail with the given message (a ToolError: the SDK sends its message to the client)."""
    raise ToolError(why)


@server.tool()
def crash() -> str:
    """Kill the server process in the middle of the call."""
    print("toolbox: crashing on purpose", file=sys.stderr, flush=True)
    os._exit(3)


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
def nap(seconds: float) -> str:
    """Sleep, then answer."""
    time.sleep(seconds)
    return "rested"


if __name__ == "__main__":
    if sys.argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
