"""``contextfs mcp`` end to end: a real server process over stdio, the SDK's own client.

Every answer is checked against the repository opened directly in the test.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from mcp.shared.exceptions import MCPError
from mcp_types import TextResourceContents

from contextfs.errors import UnknownRevisionError
from contextfs.expand.receipt import Receipt
from contextfs.integrity.proofs import proof_from_json
from contextfs.integrity.proofs import verify as verify_proof
from contextfs.model.ids import to_hex
from contextfs.model.objects import atom_digest
from contextfs.model.types import TypeSignature
from contextfs.repo import Repository
from contextfs.session.delta import apply_delta

from .conftest import Agent, connect

TOOLS = {
    "remember",
    "commit",
    "recall",
    "context",
    "session",
    "forget",
    "history",
    "diff",
    "branch",
    "switch",
    "merge",
    "revert",
    "verify",
    "prove",
}
MEMORIES: list[dict[str, Any]] = [
    {"content": "User prefers concise answers", "type": "Preference", "relevance": 0.9},
    {"content": "Project targets Python 3.11", "type": "Fact", "tags": ["project"]},
    {"content": "Deploys happen on Tuesdays", "type": "Fact", "source": "wiki"},
]


KEPT_TEXT = "Project targets Python 3.11"
GONE_TEXT = "Deploys happen on Tuesdays"


def atom_id(content: str, type_string: str = "String") -> str:
    return to_hex(atom_digest(TypeSignature.parse(type_string), content))


def test_an_agent_session_over_stdio(repo_path: Path, tmp_path: Path) -> None:
    asyncio.run(_agent_session(repo_path, tmp_path / "server.log"))


async def _agent_session(repo_path: Path, log: Path) -> None:
    # Found from the current directory, as `contextfs mcp` is configured in a client.
    async with connect(repo_path, log, cwd=repo_path) as agent:
        listed = (await agent.client.list_tools()).tools
        assert {tool.name for tool in listed} == TOOLS
        for tool in listed:
            assert tool.description, tool.name
            assert tool.input_schema.get("additionalProperties") is False, tool.name
            assert tool.output_schema is not None, tool.name

        await _empty_memory(agent)
        with Repository.open(repo_path) as repo:
            await _remember_and_commit(agent, repo)
            await _recall_and_context(agent, repo)
            await _session_turns(agent, repo)
            await _forget_history_and_diff(agent, repo)
            await _verify_and_prove(agent, repo)
            await _resources(agent, repo)
    assert "Traceback" not in log.read_text(), log.read_text()


async def _empty_memory(agent: Agent) -> None:
    """A repository without commits is an empty memory, not an error."""
    assert (await agent.call("recall", {"query": "anything"}))["hits"] == []
    context = await agent.call("context", {"budget": 100})
    assert (context["text"], context["commit"], context["receipt"]) == ("", None, None)
    session = await agent.call("session", {"budget": 600})
    empty = Repository.memory()
    empty.commit("nothing yet", allow_empty=True)
    assert apply_delta({}, session["delta"]) == empty.session_payload(budget=600)
    assert (await agent.call("history", {}))["commits"] == []
    resource = await agent.client.read_resource("contextfs://context")
    assert _text(resource.contents) == ""


async def _remember_and_commit(agent: Agent, repo: Repository) -> None:
    done = await agent.call("remember", {"memories": MEMORIES})
    assert done["ids"] == [atom_id(m["content"], m["type"]) for m in MEMORIES]
    assert (done["committed"], done["actor"], done["session"]) == (True, "alice", "mcp")
    assert (done["commit"], done["branch"]) == (repo.head(), "main")
    assert repo.count() == 3
    commit = repo.load_commit(bytes.fromhex(done["commit"]))
    assert commit.author == "alice"
    assert commit.metadata["oplog"]["actors"] == ["alice"]
    assert repo.get(done["ids"][1], "HEAD").tags == ("project",)  # type: ignore[union-attr]

    staged = await agent.call(
        "remember", {"memories": [{"content": "Staged, not yet committed"}], "commit": False}
    )
    assert (staged["committed"], staged["commit"]) == (False, None)
    assert repo.count() == 3  # pending in the op log, not in HEAD
    assert len(repo.oplog("mcp").pending()[0]) == 1
    committed = await agent.call("commit", {"message": "Commit what was staged"})
    assert (committed["commit"], committed["ops"]) == (repo.head(), 1)
    assert committed["actors"] == ["alice"]
    assert repo.count() == 4
    assert next(repo.log()).commit.message == "Commit what was staged"
    assert "no ops since its last checkpoint" in await agent.fail("commit", {})


async def _recall_and_context(agent: Agent, repo: Repository) -> None:
    found = await agent.call("recall", {"query": "python"})
    assert [h["id"] for h in found["hits"]] == [h.atom.content_hash for h in repo.search("python")]
    assert found["hits"][0]["content"] == "Project targets Python 3.11"
    facts = await agent.call("recall", {"query": "python tuesdays", "type": "Fact"})
    assert {h["type"] for h in facts["hits"]} == {"Fact"}
    tagged = await agent.call("recall", {"query": "project python", "tags": ["project"]})
    assert [h["content"] for h in tagged["hits"]] == ["Project targets Python 3.11"]

    prompt = await agent.call("context", {"budget": 12, "query": "answers python"})
    direct = repo.context(budget=12, query="answers python")
    assert prompt["text"] == direct.text
    assert prompt["tokens"] == direct.tokens <= 12
    assert prompt["receipt"]["memory_ids"] == list(direct.receipt.memory_ids)
    receipt = Receipt.from_json(json.dumps(prompt["receipt"]))
    assert receipt.commit == prompt["commit"] == repo.head()
    assert repo.verify_receipt(receipt).ok
    markdown = await agent.call("context", {"budget": 4000, "format": "markdown"})
    assert markdown["text"] == repo.context(budget=4000, format="markdown").text

    # One agent turn after another: the stable block kept, the volatile one for the query.
    turned = await agent.call("context", {"budget": 40, "query": "answers python", "turn": True})
    assert turned["text"] == repo.turn_context("answers python", budget=40).text
    assert [(b["name"], b["cacheable"]) for b in turned["blocks"]] == [
        ("stable", True),
        ("volatile", False),
    ]
    again = await agent.call(
        "context", {"budget": 40, "query": "tuesdays", "previous": turned["state"]}
    )
    assert again["rebuild"] is None
    assert again["blocks"][0]["text"].startswith(turned["blocks"][0]["text"])
    assert repo.verify_receipt(Receipt.from_json(json.dumps(again["receipt"]))).ok

    # By meaning: the same answers as the repository's own, with its embedder.
    meant = await agent.call("recall", {"query": "programming language", "retrieval": "hybrid"})
    direct_meant = repo.search("programming language", retrieval="hybrid")
    assert [h["id"] for h in meant["hits"]] == [h.atom.content_hash for h in direct_meant]
    assert meant["hits"]
    by_meaning = await agent.call(
        "context", {"budget": 40, "query": "programming language", "retrieval": "semantic"}
    )
    assert (
        by_meaning["text"]
        == repo.context(budget=40, query="programming language", retrieval="semantic").text
    )
    assert by_meaning["receipt"]["params"]["retrieval"] == "semantic"
    refused = await agent.fail("recall", {"query": "x", "retrieval": "vectors"})
    assert "retrieval: Input should be 'lexical', 'semantic' or 'hybrid' (got 'vectors')" in refused


async def _session_turns(agent: Agent, repo: Repository) -> None:
    first = await agent.call("session", {"budget": 600})
    assert first["full"]
    payload = apply_delta({}, first["delta"])
    assert payload == repo.session_payload(budget=600)

    await agent.call("remember", {"memories": [{"content": "Tests run before every deploy"}]})
    second = await agent.call("session", {"budget": 600, "hashes": first["hashes"]})
    assert not second["full"]
    rebuilt = apply_delta(payload, second["delta"])
    assert rebuilt == repo.session_payload(budget=600)
    assert second["tokens"]["delta"] < first["tokens"]["delta"]
    third = await agent.call("session", {"budget": 600, "hashes": second["hashes"]})
    assert third["delta"] == {}  # nothing changed since the last turn


async def _forget_history_and_diff(agent: Agent, repo: Repository) -> None:
    gone = atom_id("Deploys happen on Tuesdays", "Fact")
    done = await agent.call("forget", {"id": gone[:12]})
    assert done == {
        "id": gone,
        "removed": True,
        "committed": True,
        "commit": repo.head(),
        "purged": False,
        "purge_record": None,
        "oplog_copies": [],
    }
    try:
        repo.get(gone, "HEAD")
        raise AssertionError("the memory is still in HEAD")
    except UnknownRevisionError:
        pass
    assert repo.get(gone, "HEAD~1").content == "Deploys happen on Tuesdays"  # type: ignore[union-attr]
    assert "is not in main" in await agent.fail("forget", {"id": gone})

    history = await agent.call("history", {"limit": 3})
    expected = list(repo.log(limit=3))
    assert [c["id"] for c in history["commits"]] == [info.id for info in expected]
    assert [c["message"] for c in history["commits"]] == [i.commit.message for i in expected]
    assert all(c["actors"] == ["alice"] and c["session"] == "mcp" for c in history["commits"])

    diff = await agent.call("diff", {"old": "HEAD~1"})
    assert diff["total"] == 1
    assert diff["changes"] == [
        {
            "status": "removed",
            "id": gone,
            "kind": "atom",
            "type": "Fact",
            "old": "Deploys happen on Tuesdays",
            "new": None,
            "fields": [],
        }
    ]


async def _verify_and_prove(agent: Agent, repo: Repository) -> None:
    report = await agent.call("verify", {})
    direct = repo.verify()
    assert report["ok"]
    assert report["problems"] == []
    assert report["counts"] == dict(direct.counts)

    kept = atom_id("Project targets Python 3.11", "Fact")
    proof = await agent.call("prove", {"id": kept})
    assert (proof["kind"], proof["commit"], proof["verified"]) == ("membership", repo.head(), True)
    assert verify_proof(proof_from_json(json.dumps(proof["proof"])), repo.head() or "")
    gone = atom_id("Deploys happen on Tuesdays", "Fact")
    absent = await agent.call("prove", {"id": gone})
    assert absent["kind"] == "non-membership"
    assert verify_proof(proof_from_json(json.dumps(absent["proof"])), repo.head() or "")


async def _resources(agent: Agent, repo: Repository) -> None:
    listed = await agent.client.list_resources()
    assert [str(r.uri) for r in listed.resources] == ["contextfs://context"]
    templates = await agent.client.list_resource_templates()
    assert [t.uri_template for t in templates.resource_templates] == ["contextfs://atom/{id}"]

    context = await agent.client.read_resource("contextfs://context")
    assert _text(context.contents) == repo.context(budget=4000).text
    kept = atom_id("Project targets Python 3.11", "Fact")
    atom = await _read_json(agent, f"contextfs://atom/{kept}")
    assert (atom["content"], atom["tags"], atom["in_head"]) == (KEPT_TEXT, ["project"], True)
    gone = atom_id("Deploys happen on Tuesdays", "Fact")
    old = await _read_json(agent, f"contextfs://atom/{gone[:10]}")
    assert old == {"id": gone, "type": "Fact", "content": GONE_TEXT, "in_head": False}
    with pytest.raises(MCPError, match="unknown memory '0000000000'"):
        await agent.client.read_resource("contextfs://atom/0000000000")


async def _read_json(agent: Agent, uri: str) -> Any:
    return json.loads(_text((await agent.client.read_resource(uri)).contents))


def _text(contents: list[Any]) -> str:
    assert len(contents) == 1
    assert isinstance(contents[0], TextResourceContents)
    return contents[0].text
