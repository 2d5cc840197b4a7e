"""Garbage collection: what no ref, recent reflog entry or context reaches goes; nothing else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contextfs import (
    CompressedContext,
    InvalidInputError,
    MemoryAtom,
    MissingObjectError,
    Repository,
    TypeSignature,
)
from contextfs.history.commits import COMMIT, decode_commit
from contextfs.history.links import attribution_root, item_targets
from contextfs.history.tree import EMPTY_TREE_ID, TREE, decode_node
from contextfs.integrity.purge import decode_purge_record
from contextfs.model.objects import MOLECULE, decode_molecule
from contextfs.model.refs import symbolic_target
from contextfs.oplog import add_atom_op, make_op_entry
from contextfs.remote.objects import RefUpdate, receive
from contextfs.store.base import Store

FACT = TypeSignature("Fact")
WHEN = datetime(2025, 3, 1, tzinfo=UTC)
DAY = 86_400


def remember(repo: Repository, *texts: str, message: str = "remember") -> str:
    repo.add_atoms([MemoryAtom(text, FACT, WHEN, "", 1.0) for text in texts])
    return str(repo.commit(message))


def reachable(store: Store, since: int) -> set[bytes]:
    """The reference walk, written apart from the collector: refs, recent reflog, contexts."""
    roots = [v for v in store.list_refs().values() if not symbolic_target(v)]
    roots += [
        value
        for entry in store.reflog_since(since)  # type: ignore[attr-defined]
        for value in (entry.old, entry.new)
        if value
    ]
    todo = [bytes.fromhex(v) for v in roots]
    todo += [oid for oid, kind, _ in store.iter_objects() if kind == "context"]
    seen = {EMPTY_TREE_ID}
    while todo:
        oid = todo.pop()
        if oid in seen:
            continue
        seen.add(oid)
        stored = store.get_object(oid)
        assert stored is not None, oid.hex()
        if stored.kind == COMMIT:
            commit = decode_commit(stored.data)
            root = attribution_root(commit)
            todo += [commit.tree, *commit.parents, *([root] if root else [])]
        elif stored.kind == TREE:
            node = decode_node(stored.data)
            todo += [child.id for child in node.children]
            todo += [target for item in node.items for target, _ in item_targets(item)]
        elif stored.kind == MOLECULE:
            todo += decode_molecule(stored.data).atom_ids
        elif stored.kind == "purge":
            todo.append(decode_purge_record(stored.data).atom_id)
    return seen


def stored_ids(store: Store) -> set[bytes]:
    return {oid for oid, _, _ in store.iter_objects()}


def test_an_abandoned_stage_and_a_reset_away_commit_go_after_the_grace(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "r", embedder="none")
    kept = remember(repo, "kept fact", message="kept")
    lost = remember(repo, "a fact only the lost commit holds", message="lost")
    repo.reset("HEAD~1", mode="hard")
    repo.add_atoms([MemoryAtom("staged, then thrown away", FACT, WHEN, "", 1.0)])
    repo.reset("HEAD", mode="hard")
    assert repo.search("fact", retrieval="lexical")  # every atom indexed now

    recent = repo.gc()  # within the grace period: the reflog still names the lost commit
    assert bytes.fromhex(lost) in stored_ids(repo.store)
    assert recent.removed.get("atom") == 1  # the staged-and-dropped atom only
    assert repo.resolve("HEAD@{2}") == lost  # before "reset: moving to HEAD" and the reset

    before = stored_ids(repo.store)
    dry = repo.gc(grace_seconds=0, dry_run=True)
    assert dry.dry_run
    assert dry.removed["commit"] == 1
    assert stored_ids(repo.store) == before  # a dry run changes nothing
    assert repo.resolve("HEAD@{2}") == lost  # before "reset: moving to HEAD" and the reset
    later = int(time.time() * 1_000_000) + 31 * DAY * 1_000_000
    report = repo.gc(now=later)
    assert report.removed == dry.removed
    assert report.removed_bytes == dry.removed_bytes > 0
    assert report.expired >= 3
    assert bytes.fromhex(lost) not in stored_ids(repo.store)
    assert repo.head() == kept
    assert [a.content for a in repo.expand("HEAD").atoms] == ["kept fact"]
    assert repo.verify().ok
    assert repo.search("fact", retrieval="lexical")[0].atom.content == "kept fact"
    atoms = {oid for oid, kind, _ in repo.store.iter_objects() if kind == "atom"}
    assert repo.search_index.count() == len(atoms)  # removed atoms left the index too
    again = repo.gc(now=later)
    assert again.removed == {}
    assert again.removed_bytes == 0


def test_branches_tags_merges_purges_and_contexts_are_kept(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "r", embedder="none")
    remember(repo, "on main", message="main")
    repo.create_branch("topic")
    repo.switch("topic")
    remember(repo, "on topic", "secret to purge", message="topic")
    repo.create_tag("v1")
    repo.purge(repo.memory_id(MemoryAtom("secret to purge", FACT).content_hash[:12]), author="t")
    repo.switch("main")
    context = CompressedContext(None, [MemoryAtom("kept by its id", FACT)])
    repo.store.put_objects([(context.digest, "context", context.encode())])
    report = repo.gc(grace_seconds=0)
    assert report.removed == {}
    assert repo.verify().ok
    assert stored_ids(repo.store) >= {context.digest}


def test_a_workspace_and_a_negative_grace_are_refused(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "r", embedder="none")
    with pytest.raises(InvalidInputError, match="grace"):
        repo.gc(grace_seconds=-1)


OPERATIONS = st.lists(
    st.sampled_from(["commit", "stage", "drop", "branch", "switch", "reset", "merge"]),
    min_size=1,
    max_size=14,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=OPERATIONS, grace=st.sampled_from([0, DAY]))
def test_gc_removes_exactly_what_the_reference_walk_cannot_reach(
    tmp_path_factory: pytest.TempPathFactory, operations: list[str], grace: int
) -> None:
    repo = Repository.init(tmp_path_factory.mktemp("gc") / "r", embedder="none")
    remember(repo, "root fact", message="root")
    for n, operation in enumerate(operations):
        if operation == "commit":
            remember(repo, f"fact {n}", message=f"commit {n}")
        elif operation == "stage":
            repo.add_atoms([MemoryAtom(f"staged {n}", FACT, WHEN, "", 0.5)])
        elif operation == "drop":
            repo.reset("HEAD", mode="hard")
        elif operation == "branch" and f"b{n % 3}" not in repo.branches():
            repo.create_branch(f"b{n % 3}")
        elif operation in ("switch", "merge") and repo.branches():
            name = sorted(repo.branches())[n % len(repo.branches())]
            try:
                repo.switch(name) if operation == "switch" else repo.merge(name, strategy="ours")
            except Exception:
                repo.reset("HEAD", mode="hard")
        elif operation == "reset" and len(list(repo.log(["HEAD"]))) > 1:
            repo.reset("HEAD~1", mode="hard")
    now = int(time.time() * 1_000_000) + 2 * grace * 1_000_000  # entries older than grace
    cutoff = now - grace * 1_000_000
    expected = reachable(repo.store, cutoff)
    before = {oid: (kind, data) for oid, kind, data in repo.store.iter_objects()}
    report = repo.gc(grace_seconds=grace, now=now)
    after = {oid: (kind, data) for oid, kind, data in repo.store.iter_objects()}
    left = set(after)
    assert left == expected - {EMPTY_TREE_ID} | ({EMPTY_TREE_ID} & left)
    assert report.kept == len(expected)
    assert after == {oid: before[oid] for oid in left}  # repacked, every object reads the same
    assert repo.verify().ok
    for name in repo.branches():
        repo.expand(name)  # every branch still reads
    repo.close()


GC_CHILD = """
import sys, time
from contextfs import Repository
repo = Repository.open(sys.argv[1])
if sys.argv[2] == "pause":  # stop inside the transaction, after the deletes
    delete = repo.store.delete_objects
    def deleting(oids):
        count = delete(oids)
        print("deleted", flush=True)
        time.sleep(60)
        return count
    repo.store.delete_objects = deleting
print("ready", flush=True)
repo.gc(grace_seconds=0)
print("done", flush=True)
"""


def test_a_gc_killed_at_any_point_leaves_a_store_that_verifies(tmp_path: Path) -> None:
    folder = tmp_path / "r"
    with Repository.init(folder, embedder="none") as repo:
        for round_ in range(30):
            remember(repo, *(f"round {round_} fact {n}" for n in range(40)), message=f"r{round_}")
        repo.reset("HEAD~25", mode="hard")
        total = len(stored_ids(repo.store))
        after = len(reachable(repo.store, int(time.time() * 1_000_000) + 1))

    def killed(mode: str, wait_for: str, delay: float) -> int:
        with subprocess.Popen(
            [sys.executable, "-c", GC_CHILD, str(folder), mode], stdout=subprocess.PIPE, text=True
        ) as child:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
            if wait_for:
                assert child.stdout.readline().strip() == wait_for
            time.sleep(delay)
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        with Repository.open(folder) as repo:
            assert repo.verify().ok
            assert [a.content for a in repo.expand("HEAD").atoms]  # HEAD reads
            return len(stored_ids(repo.store))

    # Killed after deleting, before the commit: the deletes roll back whole.
    assert killed("pause", "deleted", 0.0) == total
    for delay in (0.0, 0.05, 0.15, 0.4):  # anywhere: before, or after, never between
        assert killed("run", "", delay) in (total, after)
    with Repository.open(folder) as repo:
        repo.gc(grace_seconds=0)
        assert len(stored_ids(repo.store)) == after
        assert repo.verify().ok


def test_a_writer_waits_for_gc_and_loses_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "r"
    with Repository.init(folder, embedder="none") as repo:
        for round_ in range(20):
            remember(repo, *(f"old {round_} fact {n}" for n in range(50)), message=f"o{round_}")
        repo.reset("HEAD~15", mode="hard")
    writer = (
        "import sys\n"
        "from contextfs import Repository\n"
        "with Repository.open(sys.argv[1]) as repo:\n"
        "    for n in range(15):\n"
        "        repo.add(f'written during gc {n}')\n"
        "        repo.commit(f'w{n}')\n"
    )
    child = subprocess.Popen([sys.executable, "-c", writer, str(folder)])
    with Repository.open(folder) as repo:
        repo.gc(grace_seconds=0)
    assert child.wait(timeout=120) == 0
    with Repository.open(folder) as repo:
        assert repo.verify().ok
        contents = {a.content for a in repo.expand("HEAD").atoms}
        assert {f"written during gc {n}" for n in range(15)} <= contents


def test_commits_op_log_checkpoints_name_are_kept(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "r", embedder="none")
    remember(repo, "before the session", message="base")
    log = repo.oplog("s")
    operation = add_atom_op("written by the session", "Fact", timestamp=1_760_000_000_000_000)
    log.append(make_op_entry("alice", "context", operation, log.next_lamport_ts()))
    crystal = repo.commit_oplog("s").commit
    session_ref = next(ref for ref in repo.store.list_refs() if ref.endswith("/s"))
    assert repo.store.set_ref_if_equals(session_ref, crystal, None)
    repo.reset("HEAD~1", mode="hard")  # only the checkpoint names the crystallised commit now
    later = int(time.time() * 1_000_000) + 31 * DAY * 1_000_000
    repo.gc(now=later)
    assert bytes.fromhex(crystal) in stored_ids(repo.store)
    assert repo.verify().ok


def test_gc_inside_a_transaction_joins_it(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "r", embedder="none")
    remember(repo, "kept", message="kept")
    lost = remember(repo, "lost", message="lost")
    repo.reset("HEAD~1", mode="hard")
    with pytest.raises(RuntimeError), repo.transaction():  # noqa: PT012
        assert repo.gc(grace_seconds=0).removed["commit"] == 1
        raise RuntimeError("roll it back")
    assert bytes.fromhex(lost) in stored_ids(repo.store)  # rolled back with the caller's
    with repo.transaction():
        repo.gc(grace_seconds=0)
    assert bytes.fromhex(lost) not in stored_ids(repo.store)
    assert repo.verify().ok


def test_search_by_meaning_survives_the_snapshot_it_embedded_being_collected(
    tmp_path: Path,
) -> None:
    repo = Repository.init(tmp_path / "r", embedder="wordllama")
    remember(repo, "quarterly revenue grew", message="one")
    remember(repo, "the cat sleeps on the sofa", message="two")
    assert repo.search("revenue")  # vectors made up to this snapshot
    repo.reset("HEAD~1", mode="hard")
    repo.gc(grace_seconds=0)  # the snapshot the vectors were made through is gone
    repo.close()
    with Repository.open(tmp_path / "r") as fresh:  # no tree nodes cached
        hits = fresh.search("money earned", retrieval="hybrid")
        assert [hit.atom.content for hit in hits] == ["quarterly revenue grew"]
        assert fresh.verify().ok


def test_a_ref_cannot_name_what_gc_collected_meanwhile(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "r", embedder="none")
    remember(repo, "kept", message="kept")
    lost = remember(repo, "lost", message="lost")
    repo.reset("HEAD~1", mode="hard")
    repo.gc(grace_seconds=0)  # as if it ran between a writer's read and its write
    with pytest.raises(MissingObjectError, match="no longer stored"):
        repo.refs.move("refs/heads/revived", None, lost)
    assert "revived" not in repo.branches()
    with pytest.raises(InvalidInputError, match="no such commit here"):
        receive(repo.store, [], [RefUpdate("refs/heads/pushed", None, lost)], force=True)
    assert "pushed" not in repo.branches()
    assert repo.verify().ok
    for bad in (float("inf"), float("nan")):
        with pytest.raises(InvalidInputError, match="finite"):
            repo.gc(grace_seconds=bad)
