"""A real MCP server for the tests, written with the mcp SDK's own server API (MCPServer, mcp 2.x's FastMCP).

    python tests/mcp_servers/toolbox.py stdio
    python tests/mcp_servers/toolbox.py stdio --once MARKER   (starts once; a second start fails)
    python tests/mcp_servers/toolbox.py http PORT      (streamable HTTP on 127.0.0.1:PORT/mcp)
"""
from __future__ import annotations

import os
import sys
import time

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.types import Image
from mcp_types import ToolListChangedNotification

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


def image_bytes(size: int, n: int) -> bytes:
    """`size` bytes that start like a PNG, different for each n (the tests compare them)."""
    head = b"\x89PNG\r\n\x1a\n" + n.to_bytes(4, "big")
    return (head + bytes(range(256)) * (size // 256 + 1))[:max(size, len(head))]


@server.tool(structured_output=False)
def picture(count: int = 1, size: int = 64, format: str = "png") -> list:
    """A caption and `count` images of `size` bytes each."""
    return [f"{count} picture(s)", *(Image(data=image_bytes(size, n), format=format) for n in range(count))]


async def tools_changed(ctx: Context, scoped: bool) -> None:
    """Tell the client the tool list changed: `scoped`, as part of this call (over HTTP on the call's own
    stream, so before its result), or not (over HTTP on the session's standalone stream: it races the result)."""
    if scoped:
        await ctx.session.send_notification(ToolListChangedNotification(),
                                            related_request_id=ctx.request_context.request_id)
    else:
        await ctx.session.send_tool_list_changed()


@server.tool()
async def grow(name: str, ctx: Context, scoped: bool = True) -> str:
    """Add a tool called `name` (it says its name back), then tell the client the tool list changed."""
    def added() -> str:
        return f"I am {name}"
    server.add_tool(added, name=name, description=f"the grown tool {name}")
    await tools_changed(ctx, scoped)
    return f"grew {name}"


@server.tool()
async def shrink(name: str, ctx: Context, scoped: bool = True) -> str:
    """Remove the tool called `name`, then tell the client the tool list changed."""
    server.remove_tool(name)
    await tools_changed(ctx, scoped)
    return f"removed {name}"


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[2] == "--once":  # stdio --once MARKER: a second start fails
        marker = sys.argv[3]
        if os.path.exists(marker):
            sys.exit("toolbox: refusing a second start")
        open(marker, "w").close()
    if sys.argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
