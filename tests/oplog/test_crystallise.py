"""Op logs into history: commit_oplog, determinism across replicas, replay, recovery."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contextfs import Repository
from contextfs.errors import (
    InvalidInputError,
    NothingToDoError,
    StoreError,
    UncommittedChangesError,
    UnknownRevisionError,
)
from contextfs.history.attribution import decode_attribution
from contextfs.history.tree import EMPTY_TREE_ID
from contextfs.model.ids import from_hex
from contextfs.model.objects import MemoryAtom, MemoryMolecule
from contextfs.model.types import TypeSignature
from contextfs.oplog import (
    Cut,
    OpEntry,
    OpLog,
    add_atom_op,
    add_molecule_op,
    make_op_entry,
    merge_key,
    remove_atom_op,
    set_fields_op,
)
from contextfs.oplog.base import OpLogBackend
from contextfs.oplog.context_ops import collapse

from ..conftest import RepoBackend

T0 = 1_760_000_000_000_000


def add(log: OpLogBackend, actor: str, text: str, **fields: object) -> OpEntry:
    operation = add_atom_op(text, "Fact", timestamp=T0, **fields)  # type: ignore[arg-type]
    return log.append(make_op_entry(actor, "context", operation, log.next_lamport_ts()))


def edit(log: OpLogBackend, actor: str, operation: dict[str, object]) -> OpEntry:
    return log.append(make_op_entry(actor, "context", operation, log.next_lamport_ts()))


def atom_id(text: str) -> str:
    return MemoryAtom(text, TypeSignature("Fact")).digest.hex()


@pytest.fixture
def repo(db_backend: RepoBackend) -> Iterator[Repository]:
    """A repository on SQLite (sessions in files) or PostgreSQL (sessions in the database)."""
    with db_backend.repository() as repository:
        yield repository


@pytest.fixture
def file_repo(tmp_path: Path) -> Iterator[Repository]:
    """A repository whose sessions are files, for tests that edit the files."""
    with Repository.init(tmp_path) as repository:
        yield repository


def test_context_ops_become_one_commit_with_every_actor(repo: Repository) -> None:
    log = repo.oplog("s")
    add(log, "alice", "User prefers tea", relevance=0.5)
    add(log, "bob", "Deploys happen on Fridays")
    edit(log, "carol", set_fields_op(atom_id("User prefers tea"), relevance=0.9, tags=["drink"]))
    log.append(make_op_entry("bob", "midi", {"op": "note"}, log.next_lamport_ts()))
    result = repo.commit_oplog("s")
    assert result.actors == ("alice", "bob", "carol")
    assert (result.ops, result.applied, result.changed) == (4, 3, 2)
    assert result.other_domains == {"midi": 1}
    info, changes = repo.show()
    assert info.id == result.commit
    assert info.commit.author == "alice, bob, carol"
    meta = info.commit.metadata["oplog"]
    assert meta["session"] == "s"
    assert meta["domains"] == {"midi": 1}
    tea = repo.get(atom_id("User prefers tea"), "HEAD")
    assert isinstance(tea, MemoryAtom)
    assert tea.relevance_score == 0.9
    assert tea.tags == ("drink",)
    assert {c.status for c in changes} == {"added"}
    attribution = dict(
        decode_attribution(item) for item in repo.trees.items(from_hex(meta["attribution"]))
    )
    assert attribution[bytes.fromhex(atom_id("User prefers tea"))] == ("alice", "carol")
    assert attribution[bytes.fromhex(atom_id("Deploys happen on Fridays"))] == ("bob",)
    assert log.read_checkpoint() == result.checkpoint
    assert result.checkpoint["commit"] == result.commit
    assert repo.store.read_ref("refs/oplog/s") == result.commit
    assert repo.verify().ok
    # Other domains' ops are still in the log for their own readers.
    assert [e["domain"] for e in log.read_all()].count("midi") == 1
    with pytest.raises(NothingToDoError):
        repo.commit_oplog("s")


def test_remove_molecule_and_skipped_ops(repo: Repository) -> None:
    log = repo.oplog("s")
    add(log, "a", "gone soon")
    atoms = (
        MemoryAtom("cause", TypeSignature("Fact")),
        MemoryAtom("effect", TypeSignature("Fact")),
    )
    molecule = MemoryMolecule(atoms, {"causes": [(0, 1)]})
    edit(log, "a", add_molecule_op(molecule))
    repo.commit_oplog("s", message="first")
    assert len(repo.molecules()) == 1
    assert repo.count() == 4
    edit(log, "b", remove_atom_op(atom_id("gone soon")))
    edit(log, "c", remove_atom_op(atom_id("gone soon")))  # already removed by b
    edit(log, "c", set_fields_op("0" * 64, relevance=0.1))  # never existed
    edit(log, "c", set_fields_op(molecule.molecule_hash, relevance=0.1))  # a molecule
    result = repo.commit_oplog("s")
    assert result.changed == 1
    assert result.applied == 1
    assert [why.split(":")[0] for _, why in result.skipped] == [
        "remove_atom",
        "set_fields",
        "set_fields",
    ]
    assert repo.count() == 3


def test_commit_to_another_branch_and_refusals(repo: Repository) -> None:
    repo.add("base memory")
    repo.commit("base")
    repo.create_branch("agents")
    log = repo.oplog("s")
    add(log, "a", "agent memory")
    with pytest.raises(UnknownRevisionError):
        repo.commit_oplog("s", branch="nope")
    with pytest.raises(InvalidInputError):
        repo.commit_oplog("s", message="")
    result = repo.commit_oplog("s", branch="agents")
    assert result.branch == "agents"
    assert repo.count("agents") == 2
    assert repo.count("main") == 1
    assert repo.current_branch == "main"


def test_staged_changes_are_carried_over_or_protected(repo: Repository) -> None:
    committed = repo.add("committed")
    repo.commit("base")
    repo.add("staged by hand")
    log = repo.oplog("s")
    add(log, "a", "from the session")
    repo.commit_oplog("s")
    status = repo.status()
    assert [c.new.content for c in status.changes if c.new is not None] == ["staged by hand"]
    assert repo.count() == 2
    assert repo.count(None) == 3
    # A session op that conflicts with a staged change is refused; nothing moves.
    repo.update_entry(committed, relevance=0.3)
    edit(log, "a", set_fields_op(committed, relevance=0.8))
    head = repo.head()
    with pytest.raises(UncommittedChangesError, match="conflict"):
        repo.commit_oplog("s")
    assert repo.head() == head
    assert len(log.replay_since_checkpoint()) == 1


def test_replaying_from_each_checkpoint_reproduces_each_snapshot(repo: Repository) -> None:
    log = repo.oplog("s")
    rng = random.Random(5)
    texts: list[str] = []
    commits = []
    for round_number in range(4):
        for i in range(15):
            choice = rng.random()
            if texts and choice < 0.2:
                edit(log, "b", remove_atom_op(atom_id(texts.pop(rng.randrange(len(texts))))))
            elif texts and choice < 0.5:
                target = atom_id(rng.choice(texts))
                edit(log, "c", set_fields_op(target, relevance=round(rng.random(), 3)))
            else:
                texts.append(f"round {round_number} fact {i}")
                add(log, rng.choice(["a", "b"]), texts[-1])
        commits.append(repo.commit_oplog("s").commit)
    checkpoints = log.checkpoints()
    assert [c["commit"] for c in checkpoints] == commits
    previous_tree, start = EMPTY_TREE_ID, Cut(0, 0)
    for checkpoint in checkpoints:
        end = Cut(checkpoint["op_count"], checkpoint["log_bytes"])
        ops = sorted(log.read_range(start, end), key=merge_key)
        change = collapse(ops, lambda keys, tree=previous_tree: repo.trees.get_many(tree, keys))
        tree = repo.trees.update(previous_tree, change.changes)
        assert tree.hex() == checkpoint["snapshot_id"]
        assert repo.load_commit(from_hex(checkpoint["commit"])).tree == tree
        previous_tree, start = tree, end


def test_a_crash_between_commit_and_checkpoint_is_recovered(file_repo: Repository) -> None:
    repo = file_repo
    log = repo.oplog("s")
    assert isinstance(log, OpLog)
    add(log, "a", "one")
    first = repo.commit_oplog("s")
    add(log, "a", "two")
    add(log, "b", "three")
    second = repo.commit_oplog("s")
    # Put the checkpoint files back as they were before the second checkpoint:
    # the state a crash right after the store transaction leaves.
    history = log.folder / "checkpoints.jsonl"
    history.write_bytes(history.read_bytes().splitlines(keepends=True)[0])
    (log.folder / "checkpoint.json").write_text(json.dumps(first.checkpoint))
    add(log, "c", "four")
    third = repo.commit_oplog(repo.oplog("s"))
    assert third.recovered
    assert third.ops == 1
    assert [c["commit"] for c in log.checkpoints()] == [first.commit, second.commit, third.commit]
    assert repo.count() == 4
    assert log.verify().ok


def test_recovery_refuses_a_log_that_does_not_match_the_commit(file_repo: Repository) -> None:
    repo = file_repo
    log = repo.oplog("s")
    assert isinstance(log, OpLog)
    add(log, "a", "one")
    repo.commit_oplog("s")
    for name in ("checkpoint.json", "checkpoints.jsonl", "ops.jsonl", "ops.state"):
        (log.folder / name).unlink()
    add(log, "a", "two")  # the log was replaced: its ops are not the commit's
    with pytest.raises(StoreError, match="does not match"):
        repo.commit_oplog("s")


def test_in_memory_repositories_take_an_oplog(tmp_path: Path) -> None:
    repo = Repository.memory()
    with pytest.raises(InvalidInputError, match="in-memory"):
        repo.oplog("s")
    log = OpLog(tmp_path, "s")
    add(log, "a", "remembered")
    assert repo.commit_oplog(log).changed == 1
    assert repo.oplog_sessions() == []


# -- the same ops give the same commit, whatever order they arrived in ---------------


def replica_ops(tmp_path: Path) -> list[OpEntry]:
    """Ops from three actors with causal links, some touching the same memories."""
    logs = {name: OpLog(tmp_path / name, "s") for name in ("a", "b", "c")}
    made: list[OpEntry] = []
    rng = random.Random(11)
    for step in range(24):
        actor = "abc"[step % 3]
        log = logs[actor]
        if step % 4 == 3 and made:
            target = rng.choice([e for e in made if e["domain_op"]["op"] == "add_atom"])
            operation = set_fields_op(
                MemoryAtom(target["domain_op"]["content"], TypeSignature("Fact")).digest.hex(),
                relevance=round(rng.random(), 2),
            )
            entry = make_op_entry(
                actor, "context", operation, log.next_lamport_ts(), parent_op_ids=[target["op_id"]]
            )
            log.receive([target])
            made.append(log.append(entry))
        else:
            operation = add_atom_op(f"fact {step % 9}", "Fact", timestamp=T0 + step)
            made.append(
                log.append(make_op_entry(actor, "context", operation, log.next_lamport_ts()))
            )
    return made


@settings(max_examples=25)
@given(seed=st.integers(0, 2**32 - 1), batches=st.integers(1, 6))
def test_any_arrival_order_gives_the_same_order_and_commit(
    tmp_path_factory: pytest.TempPathFactory, seed: int, batches: int
) -> None:
    base = tmp_path_factory.mktemp("replicas")
    ops = replica_ops(base / "made")
    results = []
    for name, order_seed in (("x", seed), ("y", seed + 1)):
        arrival = list(ops)
        random.Random(order_seed).shuffle(arrival)
        repo = Repository.memory()
        log = OpLog(base / name, "s")
        size = max(1, len(arrival) // batches)
        for start in range(0, len(arrival), size):
            log.receive(arrival[start : start + size])
        log.receive([])  # retries anything still held
        assert len(log.read_all()) == len(ops)
        replay = log.replay_since_checkpoint()
        results.append(([e["op_id"] for e in replay], repo.commit_oplog(log).commit))
    assert results[0] == results[1]
