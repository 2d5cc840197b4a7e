"""``contextfs mcp --http``: streamable HTTP on loopback, behind a bearer token."""

from __future__ import annotations

import asyncio
import re
import signal
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import httpx2
import pytest
import trustme
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from contextfs.repo import Repository
from contextfs.tokens import Scope, TokenStore, mint

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


def test_https_with_a_certificate_made_here(repo_path: Path, tmp_path: Path) -> None:
    ca = trustme.CA()
    pair = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pair))
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    argv = command("--repo", str(repo_path), "mcp", "--http", "--port", "0", "--token", TOKEN)
    server = subprocess.Popen(
        [*argv, "--tls-cert", str(pair)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        found = re.match(
            r"serving MCP on (https://127\.0\.0\.1:\d+/mcp) ", server.stderr.readline()
        )
        assert found
        asyncio.run(_one_call(found.group(1), verify=trusted))
        with pytest.raises(BaseExceptionGroup) as untrusted:  # the system does not know our CA
            asyncio.run(_one_call(found.group(1)))
        assert untrusted.group_contains(httpx2.ConnectError)
    finally:
        server.send_signal(signal.SIGTERM)
        _, rest = server.communicate(timeout=20)
    assert server.returncode == 0, rest


def test_http_beyond_this_machine_needs_tls_or_insecure(repo_path: Path) -> None:
    argv = command("--repo", str(repo_path), "mcp", "--http", "--host", "0.0.0.0", "--port", "0")
    done = subprocess.run([*argv, "--token", TOKEN], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert done.stderr.startswith("error: serving MCP on '0.0.0.0' (beyond this machine) without")
    assert len(done.stderr.splitlines()) == 1


def test_each_token_is_its_own_actor_within_its_scope(repo_path: Path) -> None:
    secrets: dict[str, str] = {}
    with Repository.open(repo_path) as repo:
        store = repo.store
        assert isinstance(store, TokenStore)
        for name, scope in (
            ("claude", Scope.WRITE),
            ("cursor", Scope.WRITE),
            ("viewer", Scope.READ),
        ):
            secrets[name], record = mint(name, scope, created_by="ops")
            store.add_token(record)
    argv = command("--repo", str(repo_path), "mcp", "--http", "--port", "0", "--actor", "server")
    server = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        assert server.stderr is not None
        url = server.stderr.readline().split()[3]
        assert _post_status(url, {}) == 401  # the store's tokens close the server
        asyncio.run(_remember(url, secrets["claude"], "Written by Claude"))
        asyncio.run(_remember(url, secrets["cursor"], "Written by Cursor"))
        refused = asyncio.run(_remember(url, secrets["viewer"], "Not by the viewer", ok=False))
        assert "token 'viewer' is read-only: it cannot use remember" in refused
    finally:
        server.send_signal(signal.SIGTERM)
        _, rest = server.communicate(timeout=20)
    assert server.returncode == 0, rest
    with Repository.open(repo_path) as repo:
        authors = [info.commit.author for info in repo.log()]
        assert authors == ["cursor", "claude"]
        actors = [op["actor_id"] for op in repo.oplog("mcp").read_all()]
        assert actors == ["claude", "cursor"]
        assert sorted(m.content for m in repo.snapshot()) == [  # type: ignore[union-attr]
            "Written by Claude",
            "Written by Cursor",
        ]


async def _remember(url: str, token: str, text: str, *, ok: bool = True) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        done = await client.call_tool("remember", {"memories": [{"content": text}]})
        assert done.is_error is not ok
        return " ".join(getattr(part, "text", "") for part in done.content)


async def _one_call(url: str, token: str = TOKEN, verify: ssl.SSLContext | bool = True) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, verify=verify) as http,
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
