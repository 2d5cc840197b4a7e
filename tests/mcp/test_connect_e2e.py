"""End to end: ``contextfs connect cursor`` writes an entry that Cursor could start as written.

The real ``contextfs`` script (beside this interpreter) connects a real
repository; the entry's command and arguments are then run as a subprocess
by the MCP SDK's stdio client, from another folder, and the write it makes
is recorded as Cursor's.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TextIO

from mcp import Client
from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client

from contextfs.repo import Repository

SCRIPT = Path(sys.executable).parent / "contextfs"


def test_the_entry_connect_writes_starts_a_working_server(repo_path: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "CONTEXTFS_DIR"}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    done = subprocess.run(
        [str(SCRIPT), "connect", "cursor", "--json"],
        cwd=repo_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)
    config = repo_path.resolve() / ".cursor" / "mcp.json"
    assert result["path"] == str(config)
    entry = json.loads(config.read_text(encoding="utf-8"))["mcpServers"]["contextfs"]
    assert entry == {
        "command": os.path.abspath(SCRIPT),
        "args": ["--repo", str(repo_path.resolve()), "mcp", "--actor", "cursor"],
    }
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    params = StdioServerParameters(
        command=entry["command"], args=entry["args"], env=get_default_environment(), cwd=elsewhere
    )
    with (tmp_path / "server.log").open("w", encoding="utf-8") as errlog:
        asyncio.run(_remember(params, errlog))
    with Repository.open(repo_path) as repo:
        head = next(repo.log()).commit
        assert head.author == "cursor"
        assert [m.content for m in repo.snapshot("HEAD")] == ["Cursor was here"]


async def _remember(params: StdioServerParameters, errlog: TextIO) -> None:
    async with Client(stdio_client(params, errlog=errlog)) as client:
        done = await client.call_tool("remember", {"memories": [{"content": "Cursor was here"}]})
        assert not done.is_error
        assert done.structured_content is not None
        assert done.structured_content["actor"] == "cursor"
