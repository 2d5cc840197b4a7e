"""gc repacks: old tree versions become deltas of the new, text gets a dictionary, reads agree."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from contextfs import MemoryAtom, Repository, TypeSignature
from contextfs.history.commits import decode_commit
from contextfs.history.tree import decode_node
from contextfs.integrity.repack import DEPTH, plan_deltas
from contextfs.store.codec import DELTA, RAW

FACT = TypeSignature("Fact")
WHEN = datetime(2025, 3, 1, tzinfo=UTC)


def grow(repo: Repository, commits: int, per_commit: int, tag: str = "") -> list[str]:
    heads = []
    for n in range(commits):
        texts = [
            f"{tag}Decision {n}.{k}: the team agreed to keep the {k}th cache warm for agent {n}."
            for k in range(per_commit)
        ]
        repo.add_atoms([MemoryAtom(text, FACT, WHEN, "review", 0.5) for text in texts])
        heads.append(str(repo.commit(f"{tag}round {n}")))
    return heads


def encodings(folder: Path) -> dict[bytes, tuple[str, int, bytes | None]]:
    with sqlite3.connect(folder / ".contextfs" / "store.db") as conn:
        rows = conn.execute("SELECT id, kind, codec, base FROM objects").fetchall()
    return {oid: (kind, codec, base) for oid, kind, codec, base in rows}


def every_snapshot(repo: Repository, heads: list[str]) -> list[list[str]]:
    return [sorted(a.content for a in repo.expand(head).atoms) for head in heads]


def test_gc_turns_old_tree_versions_into_deltas_and_every_version_still_reads(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "r"
    with Repository.init(folder, embedder="none") as repo:
        heads = grow(repo, 70, 12)
        snapshots = every_snapshot(repo, heads)
        objects = {oid: data for oid, _, data in repo.store.iter_objects()}
        report = repo.gc()
        assert report.repacked > 0
        assert report.bytes_after < report.bytes_before / 2
        assert "atom" in report.dictionaries
        assert {oid: data for oid, _, data in repo.store.iter_objects()} == objects
        assert repo.verify().ok
    stored = encodings(folder)
    deltas = {oid: base for oid, (kind, codec, base) in stored.items() if codec == DELTA}
    assert deltas
    assert all(stored[oid][0] == "tree" for oid in deltas)  # only tree nodes become deltas
    assert all(base in stored for base in deltas.values())
    for oid in deltas:  # no chain loops or runs past the limit
        steps, at = 0, oid
        while at in deltas:
            at, steps = deltas[at], steps + 1
            assert steps <= DEPTH
    with Repository.open(folder) as repo:  # a new process decodes every version
        head = decode_commit(repo.store.get_object(bytes.fromhex(heads[-1])).data)  # type: ignore[union-attr]
        assert stored[head.tree][1] != DELTA  # the newest snapshot reads without a delta
        assert every_snapshot(repo, heads) == snapshots
        again = repo.gc()
        assert again.repacked == 0  # already packed
        assert again.dictionaries == ()


def test_dropping_the_branch_whose_nodes_are_bases_keeps_main_readable(tmp_path: Path) -> None:
    folder = tmp_path / "r"
    with Repository.init(folder, embedder="none") as repo:
        main = grow(repo, 8, 10)
        repo.create_branch("topic")
        repo.switch("topic")
        topic = grow(repo, 8, 10, tag="topic ")
        repo.switch("main")
        repo.gc(grace_seconds=0)  # main's nodes may now be deltas against topic's
        snapshots = every_snapshot(repo, main)
        repo.delete_branch("topic", force=True)
        report = repo.gc(grace_seconds=0)
        assert report.removed.get("commit") == len(topic)
        assert every_snapshot(repo, main) == snapshots
        assert repo.verify().ok


def test_the_plan_lists_bases_before_their_deltas_and_every_node_once(tmp_path: Path) -> None:
    with Repository.init(tmp_path / "r", embedder="none") as repo:
        heads = grow(repo, 30, 6)
        commits = [bytes.fromhex(head) for head in heads]
        trees = [oid for oid, kind, _ in repo.store.iter_objects("tree")]
        plan = plan_deltas(repo.store, commits, trees)
        nodes = [oid for oid, _ in plan]
        assert sorted(nodes) == sorted(trees)
        position = {oid: n for n, (oid, _) in enumerate(plan)}
        assert all(position[base] < position[oid] for oid, base in plan if base is not None)
        newest = decode_commit(repo.store.get_object(commits[-1]).data).tree  # type: ignore[union-attr]
        level, tip = [newest], set()
        while level:  # every node of the newest snapshot is planned whole
            tip.update(level)
            found = repo.store.get_objects(level)
            level = [c.id for oid in level for c in decode_node(found[oid].data).children]
        assert all(base is None for oid, base in plan if oid in tip)


def test_an_erased_atom_stays_erased_through_a_repack(tmp_path: Path) -> None:
    folder = tmp_path / "r"
    with Repository.init(folder, embedder="none") as repo:
        grow(repo, 3, 300)
        secret = bytes.fromhex(repo.add("the door code is 4471", "Fact"))
        repo.commit("secret")
        repo.purge(secret.hex(), author="dpo", reason="leaked")
        repo.gc()
        stored = repo.store.get_object(secret)
        assert stored is not None
        assert stored.data == b""
    assert encodings(folder)[secret][1] == RAW
    assert b"4471" not in (folder / ".contextfs" / "store.db").read_bytes()


def test_one_process_reads_every_version_through_many_gcs(tmp_path: Path) -> None:
    """Caches of decoded bases outlive re-encodings: a long-lived process must not trip."""
    with Repository.init(tmp_path / "r", embedder="none") as repo:
        heads: list[str] = []
        for round_ in range(6):
            heads += grow(repo, 6, 5, tag=f"round {round_} ")
            if round_ % 2:
                repo.create_branch(f"side{round_}")
                repo.switch(f"side{round_}")
                grow(repo, 2, 3, tag=f"side {round_} ")
                repo.switch("main")
                repo.delete_branch(f"side{round_}", force=True)
            snapshots = every_snapshot(repo, heads)  # decodes (and caches) every chain
            repo.gc(grace_seconds=0)  # re-encodes what was cached
            assert every_snapshot(repo, heads) == snapshots
            assert repo.verify().ok
