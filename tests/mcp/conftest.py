"""Helpers for the MCP tests: ``contextfs mcp`` as a real subprocess, driven by the SDK's client."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client
from mcp_types import CallToolResult, TextContent

from contextfs.repo import Repository


def command(*args: str) -> list[str]:
    """``contextfs ARGS`` as this interpreter runs it."""
    return [sys.executable, "-m", "contextfs.cli.main", *args]


@dataclass
class Agent:
    """One MCP client connected to one ``contextfs mcp`` process."""

    client: Client
    log: Path

    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        """Call a tool that must succeed; return its structured result."""
        result = await self.client.call_tool(tool, arguments)
        assert not result.is_error, (tool, arguments, text_of(result))
        assert result.structured_content is not None, tool
        return result.structured_content

    async def fail(self, tool: str, arguments: dict[str, Any]) -> str:
        """Call a tool that must fail with a tool error; return its one line."""
        result = await self.client.call_tool(tool, arguments)
        assert result.is_error, (tool, arguments, result.structured_content)
        message = text_of(result)
        assert "\n" not in message, message
        return message

    def server_log(self) -> str:
        """What the server wrote on stderr so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")


def text_of(result: CallToolResult) -> str:
    """The text of a tool result's content blocks."""
    return "".join(block.text for block in result.content if isinstance(block, TextContent))


@contextlib.asynccontextmanager
async def connect(
    repo: Path, log: Path, *args: str, actor: str = "alice", cwd: Path | None = None
) -> AsyncIterator[Agent]:
    """Start ``contextfs [--repo REPO] mcp --actor ACTOR ARGS`` and connect the SDK client.

    With ``cwd`` the repository is found from that folder instead of ``--repo``.
    The server's stderr goes to ``log``.
    """
    where = [] if cwd is not None else ["--repo", str(repo)]
    argv = command(*where, "mcp", "--actor", actor, *args)
    params = StdioServerParameters(
        command=argv[0], args=argv[1:], env=get_default_environment(), cwd=cwd
    )
    with log.open("a", encoding="utf-8") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            yield Agent(client, log)


@pytest.fixture
def repo_path(tmp_path: Path) -> Path:
    """A fresh, empty repository folder."""
    Repository.init(tmp_path / "memory").close()
    return tmp_path / "memory"
