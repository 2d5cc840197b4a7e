"""Malformed arguments to every tool: a tool error with a clear line, nothing changed, no crash."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

from contextfs.repo import Repository

from .conftest import Agent, command, connect

KEPT = "Project targets Python 3.11"


def bad_arguments(kept: str) -> dict[str, list[tuple[dict[str, Any], str]]]:
    """For each tool: arguments it must refuse, and a piece of the message expected."""
    return {
        "remember": [
            ({}, "memories: required"),
            ({"memories": []}, "memories: List should have at least 1 item"),
            ({"memories": "nope"}, "memories: Input should be a valid list"),
            ({"memories": [{"content": ""}]}, "memories.0.content: String should have at least"),
            ({"memories": [{"content": 5}]}, "memories.0.content: Input should be a valid string"),
            ({"memories": [{"content": "x", "relevance": 2}]}, "memories.0.relevance"),
            ({"memories": [{"content": "x", "colour": "red"}]}, "memories.0.colour: unknown"),
            ({"memories": [{"content": "x", "type": "List[["}]}, "type"),
            ({"memories": [{"content": "x"}], "commit": "yes"}, "commit: Input should be a valid"),
            ({"memories": [{"content": "x"}], "commit": False, "message": "m"}, "message is for"),
            ({"memories": [{"content": "x"}], "colour": "red"}, "colour: unknown argument"),
        ],
        "commit": [
            ({"message": ""}, "message: String should have at least 1 character"),
            ({"message": 3}, "message: Input should be a valid string"),
            ({}, "no ops since its last checkpoint"),
        ],
        "recall": [
            ({}, "query: required"),
            ({"query": ""}, "query: String should have at least 1 character"),
            ({"query": "python", "limit": 0}, "limit: Input should be greater than or equal to 1"),
            ({"query": "python", "limit": True}, "limit: Input should be a valid integer"),
            ({"query": "python", "revision": "nosuch"}, "nosuch"),
            ({"query": "python", "match": "some"}, "match: Input should be 'any' or 'all'"),
            ({"query": "python", "type": "Bad[["}, "Bad[["),
            ({"query": "python", "min_relevance": 1.5}, "min_relevance"),
            ({"query": "python", "half_life_seconds": 0}, "half_life_seconds"),
            ({"query": "python", "tags": "project"}, "tags: Input should be a valid list"),
        ],
        "context": [
            ({"budget": -1}, "budget: Input should be greater than or equal to 0"),
            ({"budget": "100"}, "budget: Input should be a valid integer"),
            ({"budget": 10**9}, "budget: Input should be less than or equal to 1000000"),
            ({"format": "html"}, "format: Input should be 'lines', 'markdown', 'json' or 'xml'"),
            ({"revision": "HEAD~99"}, "HEAD~99"),
            ({"query": ""}, "query: String should have at least 1 character"),
        ],
        "session": [
            ({"budget": -5}, "budget: Input should be greater than or equal to 0"),
            ({"hashes": "abc"}, "hashes: Input should be a valid dictionary"),
            ({"hashes": {"l0": 3}}, "hashes.l0: Input should be a valid string"),
            ({"granularity": "word"}, "granularity: Input should be 'component' or 'item'"),
            ({"revision": "nosuch"}, "nosuch"),
        ],
        "forget": [
            ({}, "id: required"),
            ({"id": "zz"}, "id: String should have at least 4 characters"),
            ({"id": "ffffffff"}, "ffffffff"),
            ({"id": "not-hex!"}, "not-hex!"),
            ({"id": kept, "purge": True}, "pass confirm with its id"),
            ({"id": kept, "purge": True, "confirm": "wrong"}, "pass confirm with its id"),
            ({"id": kept, "confirm": kept}, "confirm and reason are for purge"),
            ({"id": kept, "reason": "asked"}, "confirm and reason are for purge"),
            ({"id": kept, "purge": "yes"}, "purge: Input should be a valid boolean"),
        ],
        "history": [
            ({"limit": 0}, "limit: Input should be greater than or equal to 1"),
            ({"limit": "ten"}, "limit: Input should be a valid integer"),
            ({"revision": "nosuch"}, "nosuch"),
        ],
        "diff": [
            ({}, "old: required"),
            ({"old": "nosuch"}, "nosuch"),
            ({"old": "HEAD", "new": 3}, "new: Input should be a valid string"),
        ],
        "branch": [
            ({"name": "bad..name"}, "bad..name"),
            ({"name": "main"}, "already exists"),
            ({"delete": True}, "delete needs the name"),
            ({"name": "nosuch", "delete": True}, "no branch named 'nosuch'"),
            ({"name": "main", "delete": True}, "cannot delete the checked-out branch"),
            ({"name": "fresh", "start": "nosuch"}, "nosuch"),
        ],
        "switch": [
            ({}, "branch: required"),
            ({"branch": "nosuch"}, "no branch named 'nosuch'"),
            ({"branch": "bad..name", "create": True}, "bad..name"),
        ],
        "merge": [
            ({}, "revision: required"),
            ({"revision": "nosuch"}, "nosuch"),
            ({"revision": "main", "strategy": "mine"}, "strategy: Input should be 'ours' or"),
        ],
        "revert": [
            ({}, "actor: required"),
            ({"actor": ""}, "actor: String should have at least 1 character"),
            ({"actor": "nobody"}, "actor nobody changed nothing to undo"),
            ({"actor": "alice", "since": "nosuch"}, "nosuch"),
        ],
        "verify": [({"deep": True}, "deep: unknown argument")],
        "prove": [
            ({}, "id: required"),
            ({"id": "ffffffff"}, "ffffffff"),
            ({"id": kept, "revision": "nosuch"}, "nosuch"),
        ],
    }


def test_malformed_arguments_are_tool_errors(repo_path: Path, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    asyncio.run(_send_malformed(repo_path, log))
    assert "Traceback" not in log.read_text(), log.read_text()


async def _send_malformed(repo_path: Path, log: Path) -> None:
    async with connect(repo_path, log) as agent:
        done = await agent.call("remember", {"memories": [{"content": KEPT, "type": "Fact"}]})
        kept = done["ids"][0]
        with Repository.open(repo_path) as repo:
            head, ops = repo.head(), repo.oplog("mcp").end().ops
            cases = bad_arguments(kept)
            assert set(cases) == {t.name for t in (await agent.client.list_tools()).tools}
            for tool, bad in cases.items():
                for arguments, expected in bad:
                    message = await agent.fail(tool, arguments)
                    assert message.startswith(f"Error executing tool {tool}: "), message
                    assert expected in message, (tool, arguments, message)
            assert "Unknown tool: nosuch" in await agent.fail("nosuch", {})
            assert (repo.head(), repo.oplog("mcp").end().ops) == (head, ops)  # nothing changed
            await _still_serving(agent, kept)


async def _still_serving(agent: Agent, kept: str) -> None:
    found = await agent.call("recall", {"query": "python"})
    assert [h["id"] for h in found["hits"]] == [kept]


def test_a_non_loopback_host_needs_a_token(repo_path: Path) -> None:
    result = _run("--repo", str(repo_path), "mcp", "--http", "--host", "0.0.0.0")
    assert result.returncode == 5
    assert result.stderr == (
        "error: serving MCP on '0.0.0.0' (beyond this machine) needs a token: pass --token"
        " or create one with `contextfs token create`\n"
    )


def test_http_options_need_http(repo_path: Path) -> None:
    result = _run("--repo", str(repo_path), "mcp", "--token", "t", "--port", "9")
    assert result.returncode == 2
    assert "--port, --token only apply with --http" in result.stderr


def test_without_the_extra_the_command_says_what_to_install(repo_path: Path) -> None:
    hide = "import sys; sys.modules['mcp'] = None; from contextfs.cli.main import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", hide, "--repo", str(repo_path), "mcp"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "error: contextfs mcp needs the mcp extra (mcp is missing):"
        " pip install 'contextfs-vcs[mcp]'\n"
    )


def test_the_cli_does_not_import_the_sdk() -> None:
    probe = "import sys, contextfs.cli.main; print('mcp' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout == "False\n"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(*args), capture_output=True, text=True, timeout=60, check=False)
