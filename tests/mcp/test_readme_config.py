"""The README's MCP client configuration starts a working server, as written."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import TextIO

from mcp import Client
from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client

from contextfs.repo import Repository

README = Path(__file__).resolve().parents[2] / "README.md"
PLACEHOLDER = "/home/you/agent-memory"
#: The README's stand-in for the full path `which contextfs` prints.
COMMAND_PLACEHOLDER = "/home/you/.venv/bin/contextfs"


def test_the_readme_mcp_servers_entry_works(repo_path: Path, tmp_path: Path) -> None:
    blocks = re.findall(r"```json\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    configs = [json.loads(block) for block in blocks if '"mcpServers"' in block]
    assert len(configs) == 1
    entry = configs[0]["mcpServers"]["contextfs"]
    assert PLACEHOLDER in entry["args"]
    args = [str(repo_path) if arg == PLACEHOLDER else arg for arg in entry["args"]]
    assert entry["command"] == COMMAND_PLACEHOLDER
    # The full path of `contextfs` as the README asks: the script beside this interpreter.
    command = str(Path(sys.executable).parent / "contextfs")
    params = StdioServerParameters(command=command, args=args, env=get_default_environment())
    with (tmp_path / "server.log").open("w", encoding="utf-8") as errlog:
        asyncio.run(_remember_once(params, errlog))
    with Repository.open(repo_path) as repo:
        assert next(repo.log()).commit.author == "assistant"
        assert repo.count() == 1


async def _remember_once(params: StdioServerParameters, errlog: TextIO) -> None:
    async with Client(stdio_client(params, errlog=errlog)) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"remember", "recall", "context", "session", "forget"} <= names
        done = await client.call_tool("remember", {"memories": [{"content": "Configured"}]})
        assert not done.is_error
