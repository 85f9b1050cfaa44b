"""A tiny FastMCP server (the reference Python MCP SDK) on stdio, for the
pdp mcp-proxy tests: the same file tools as the Go test server."""

import os

from mcp.server.fastmcp import FastMCP

server = FastMCP("files-py")

FILES = {"notes.txt": "Meeting with the design team at noon on Thursday."}


def _log(line: str) -> None:
    """Append to the call log, so the tests see which tools really ran."""
    path = os.environ.get("AGENTPDP_MCP_TEST_CALL_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


@server.tool()
def read(path: str) -> str:
    """Read a file."""
    _log(f"read {path}")
    return FILES.get(path, f"no such file: {path}")


@server.tool()
def delete(path: str) -> str:
    """Delete a file."""
    _log(f"delete {path}")
    return f"deleted {path}"


@server.tool()
def write(path: str, content: str) -> str:
    """Write a file."""
    _log(f"write {path}")
    return f"wrote {len(content)} bytes to {path}"


@server.tool()
def admin() -> str:
    """No policy rule names this tool."""
    _log("admin")
    return "admin done"


@server.resource("files://readme")
def readme() -> str:
    """The readme."""
    return "read me first"


@server.prompt()
def greet(name: str) -> str:
    """Greet someone."""
    return f"Say hello to {name}"


if __name__ == "__main__":
    pid_file = os.environ.get("AGENTPDP_MCP_TEST_PIDFILE")
    if pid_file:
        with open(pid_file, "w", encoding="utf-8") as f:
            f.write(str(os.getpid()))
    server.run()
