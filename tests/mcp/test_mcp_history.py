"""Branches, merges and purges over MCP, checked against the repository."""

from __future__ import annotations

import asyncio
from pathlib import Path

from contextfs.model.ids import to_hex
from contextfs.model.objects import atom_digest
from contextfs.model.types import T_STRING
from contextfs.repo import Repository

from .conftest import Agent, connect


def test_branch_switch_and_merge(repo_path: Path, tmp_path: Path) -> None:
    asyncio.run(_branches(repo_path, tmp_path / "server.log"))


async def _branches(repo_path: Path, log: Path) -> None:
    async with connect(repo_path, log) as agent:
        shared = await _remember(agent, "The launch is in May", 0.5)
        created = await agent.call("branch", {"name": "research"})
        assert created["created"] == "research"
        assert [(b["name"], b["current"]) for b in created["branches"]] == [
            ("main", True),
            ("research", False),
        ]
        assert (await agent.call("switch", {"branch": "research"}))["branch"] == "research"
        found = await _remember(agent, "Benchmarks favour the radix tree", 0.8)
        await _remember(agent, "The launch is in May", 0.9)  # research re-ranks it
        await agent.call("switch", {"branch": "main"})
        await _remember(agent, "The launch is in May", 0.1)  # and so does main: a conflict

        stopped = await agent.call("merge", {"revision": "research"})
        assert stopped["status"] == "conflicts"
        assert stopped["commit"] is None
        assert [c["id"] for c in stopped["conflicts"]] == [shared]
        with Repository.open(repo_path) as repo:
            before = repo.head()
            assert repo.status().clean  # the stopped merge was abandoned: nothing changed
            merged = await agent.call("merge", {"revision": "research", "strategy": "theirs"})
            assert merged["status"] == "merged"
            assert merged["commit"] == repo.head() != before
            assert len(next(repo.log()).parents) == 2
            assert repo.get(found, "HEAD").content == "Benchmarks favour the radix tree"  # type: ignore[union-attr]
            assert repo.get(shared, "HEAD").relevance_score == 0.9  # type: ignore[union-attr]
        deleted = await agent.call("branch", {"name": "research", "delete": True})
        assert deleted["deleted"] == "research"
        assert [b["name"] for b in deleted["branches"]] == ["main"]


def test_a_failed_commit_keeps_the_write(repo_path: Path, tmp_path: Path) -> None:
    with Repository.open(repo_path) as repo:  # a merge stopped on a conflict, from the CLI
        repo.add("The launch is in May", relevance=0.5)
        repo.commit("base")
        repo.switch("other", create=True)
        repo.add("The launch is in May", relevance=0.9)
        repo.commit("other side")
        repo.switch("main")
        repo.add("The launch is in May", relevance=0.1)
        repo.commit("our side")
        assert repo.merge("other").status == "conflicts"
    asyncio.run(_commit_after_the_merge(repo_path, tmp_path / "server.log"))


async def _commit_after_the_merge(repo_path: Path, log: Path) -> None:
    async with connect(repo_path, log) as agent:
        refused = await agent.fail("remember", {"memories": [{"content": "Kept all along"}]})
        assert refused == (
            "Error executing tool remember: a merge is in progress on the branch; commit or"
            " abort it first; the change is saved in session 'mcp' and its next commit takes it"
        )
        with Repository.open(repo_path) as repo:
            repo.abort_merge()
            done = await agent.call("commit", {})
            assert done["ops"] == 1
            assert repo.get(_id("Kept all along"), "HEAD").content == "Kept all along"  # type: ignore[union-attr]


def _id(text: str) -> str:
    return to_hex(atom_digest(T_STRING, text))


def test_forget_with_purge(repo_path: Path, tmp_path: Path) -> None:
    asyncio.run(_purge(repo_path, tmp_path / "server.log"))


async def _purge(repo_path: Path, log: Path) -> None:
    async with connect(repo_path, log) as agent:
        secret = await _remember(agent, "The user's door code is 4711", 1.0)
        kept = await _remember(agent, "The user likes tea", 1.0)
        done = await agent.call(
            "forget", {"id": secret, "purge": True, "confirm": secret, "reason": "user asked"}
        )
        assert done["purged"]
        assert done["removed"]
        assert done["committed"]
        # The text went through this session's op log: the purge redacted it there too.
        assert done["oplog_copies"] == ["mcp"]
        ops = (repo_path / ".contextfs" / "oplog" / "mcp" / "ops.jsonl").read_bytes()
        assert b"4711" not in ops
        report = await agent.call("verify", {})
        assert report["ok"]
        assert report["purged"] == [secret]
        found = await agent.call("recall", {"query": "door code"})  # words and meaning
        assert [hit["id"] for hit in found["hits"]] == [kept]  # the nearest left is not it
    with Repository.open(repo_path) as repo:
        assert repo.is_purged(secret)
        stored = repo.store.get_object(bytes.fromhex(secret))
        assert stored is not None
        assert stored.data == b""
        assert [m.digest.hex() for m in repo.snapshot()] == [kept]
        assert repo.verify().ok


async def _remember(agent: Agent, text: str, relevance: float) -> str:
    done = await agent.call("remember", {"memories": [{"content": text, "relevance": relevance}]})
    ids: list[str] = done["ids"]
    return ids[0]
