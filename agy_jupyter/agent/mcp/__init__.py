"""Tools from MCP servers: `mcp_servers=[McpServer(...)]` or `--mcp "name=..."`.

Importing this package does not import the `mcp` SDK: only an agent with servers loads it
(`connection.py`), so `import agy_jupyter` stays as light as before.
"""
from .servers import McpServer, parse_server

__all__ = ["McpServer", "parse_server"]
