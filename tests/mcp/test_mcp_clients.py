"""Several MCP clients at once on one repository: every write lands, attributed to its actor."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from contextfs.repo import Repository

from .conftest import Agent, connect

PER_CLIENT = 20


def test_two_clients_remembering_at_once_lose_nothing(repo_path: Path, tmp_path: Path) -> None:
    log = tmp_path / "servers.log"
    results = asyncio.run(_remember_at_once(repo_path, log))
    ids = {actor: {i for r in done for i in r["ids"]} for actor, done in results.items()}
    assert [len(found) for found in ids.values()] == [PER_CLIENT, PER_CLIENT]
    with Repository.open(repo_path) as repo:
        assert {m.digest.hex() for m in repo.snapshot()} == ids["alice"] | ids["bob"]
        for done in [*results["alice"], *results["bob"]]:
            assert done["committed"]
            repo.get(done["ids"][0], done["commit"])  # the commit reported holds the memory
        session = repo.oplog("mcp")
        assert session.end().ops == 2 * PER_CLIENT
        assert session.pending()[0] == []
        crystallised = [info.commit.metadata["oplog"] for info in repo.log()]
        assert sum(record["ops"] for record in crystallised) == 2 * PER_CLIENT
        assert set().union(*(record["actors"] for record in crystallised)) == {"alice", "bob"}
    assert "Traceback" not in log.read_text(), log.read_text()


async def _remember_at_once(repo_path: Path, log: Path) -> dict[str, list[Any]]:
    async with (
        connect(repo_path, log, actor="alice") as alice,
        connect(repo_path, log, actor="bob") as bob,
    ):
        # Every call of both clients in flight at once: 40 appends racing 40 crystallisations.
        calls = [
            _remember(agent, f"{name} note {n}")
            for n in range(PER_CLIENT)
            for name, agent in (("alice", alice), ("bob", bob))
        ]
        done = await asyncio.gather(*calls)
        # Each actor's memories are attributed to it: undoing bob keeps alice's.
        planned = await alice.call("revert", {"actor": "bob", "dry_run": True})
        bob_ids = {i for r in done[1::2] for i in r["ids"]}
        assert set(planned["reverted"]) == bob_ids
        assert planned["conflicts"] == []
        assert planned["commit"] is None
    return {"alice": list(done[0::2]), "bob": list(done[1::2])}


async def _remember(agent: Agent, text: str) -> Any:
    return await agent.call("remember", {"memories": [{"content": text}]})
