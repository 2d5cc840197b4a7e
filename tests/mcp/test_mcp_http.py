"""``contextfs mcp --http``: streamable HTTP on loopback, behind a bearer token."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from contextfs.repo import Repository

from .conftest import command

TOKEN = "s3cret-token"


def test_http_serves_clients_with_the_token_only(repo_path: Path) -> None:
    argv = command("--repo", str(repo_path), "mcp", "--http", "--port", "0", "--actor", "web")
    server = subprocess.Popen(
        [*argv, "--token", TOKEN],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        announced = server.stderr.readline()
        found = re.fullmatch(
            r"serving MCP on (http://127\.0\.0\.1:\d+/mcp) \(actor web, session mcp\)\n",
            announced,
        )
        assert found, announced
        url = found.group(1)
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            assert _post_status(url, headers) == 401
        asyncio.run(_one_call(url))
        with pytest.raises(BaseExceptionGroup) as refused:
            asyncio.run(_one_call(url, token="wrong"))
        assert refused.group_contains(MCPError)
    finally:
        server.send_signal(signal.SIGTERM)
        _, rest = server.communicate(timeout=20)
    assert server.returncode == 0, rest
    assert rest == ""  # nothing logged: no tracebacks, no access lines
    with Repository.open(repo_path) as repo:
        assert [m.content for m in repo.snapshot()] == ["Served over HTTP"]  # type: ignore[union-attr]
        assert next(repo.log()).commit.author == "web"


async def _one_call(url: str, token: str = TOKEN) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        done = await client.call_tool("remember", {"memories": [{"content": "Served over HTTP"}]})
        assert not done.is_error
        assert done.structured_content is not None
        assert done.structured_content["committed"]


def _post_status(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        url,
        data=b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}',
        headers={"Content-Type": "application/json", "Accept": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code
