"""Word matches ranked over a snapshot's columns equal ranking every match at once.

The reference below is the straightforward ranking the columns replace for
heavy queries, kept here to hold them to the same ids, order and scores: look
every match up in the snapshot tree, weigh phrases by their counts there,
sort by ``(-score, -timestamp, id)``.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contextfs import MemoryAtom, Repository, TypeSignature
from contextfs.errors import StoreError
from contextfs.expand.ranking import match_scores, phrase_text
from contextfs.history import columns as snapshot_columns
from contextfs.history.tree import by_relevance, recency_scorer
from contextfs.model.objects import entry_rank
from contextfs.search.query import content_phrases, parse_query
from contextfs.services import lexical
from contextfs.store.base import DerivedStore
from contextfs.store.sqlite import MIGRATIONS, SqliteStore

WORDS = ["river", "stone", "lamp", "garden", "harbour", "violin", "ember", "meadow"]
FACT = TypeSignature("Fact")
START = datetime(2025, 1, 1, tzinfo=UTC)
NOW = int((START + timedelta(days=400)).timestamp()) * 1_000_000


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Repository, list[str]]]:
    """A store with several snapshots: atoms added, removed, re-weighed, one purged."""
    rng = random.Random(7)
    repo = Repository.init(tmp_path_factory.mktemp("columns") / "r", embedder="none")
    commits = []
    added: list[str] = []
    for round_ in range(4):
        atoms = []
        for n in range(120):
            words = rng.sample(WORDS, rng.randint(1, 4))
            when = START + timedelta(days=rng.choice([0, 30, 60, 90]))
            relevance = rng.choice([0.25, 0.5, 0.5, 1.0])  # ties on purpose
            atoms.append(
                MemoryAtom(f"{' '.join(words)} note {round_}-{n}", FACT, when, "", relevance)
            )
        added += [str(oid) for oid in repo.add_atoms(atoms)]
        if round_ >= 1:
            gone = rng.sample(added[:-120], 15)
            repo.remove(*gone)
            added = [ref for ref in added if ref not in gone]
            for ref in rng.sample(added[-120:], 10):
                repo.update_entry(ref, relevance=rng.choice([0.1, 0.75]))
        commits.append(str(repo.commit(f"round {round_}")))
    repo.purge(added[-1], author="test", reason="a purge keeps the snapshot")
    yield repo, commits
    repo.close()


def reference(
    repo: Repository, tree: bytes, query: str, mode: str, half_life: float | None
) -> list[tuple[str, float, float]]:
    """Every match ranked at once: ``(id, score, match)`` best first."""
    phrases = content_phrases(parse_query(query))
    index = repo.search_index
    found = [index.match_ids(phrase_text(p)) for p in phrases]
    present = repo.trees.get_many(tree, set().union(*found))
    members = [f & present.keys() for f in found]
    matches = match_scores(members, repo.trees.count(tree))
    if mode == "all":
        matches = {oid: matches[oid] for oid in set.intersection(*members)}
    rank = recency_scorer(half_life, NOW) if half_life else by_relevance
    heap = []
    for oid, match in matches.items():
        relevance, timestamp = entry_rank(present[oid])
        heap.append((-rank(relevance, timestamp) * match, -timestamp, oid, match))
    return [(oid.hex(), -score, match) for score, _, oid, match in sorted(heap)]


def ranked(
    repo: Repository, tree: bytes, query: str, mode: str, half_life: float | None
) -> list[tuple[str, float, float]]:
    scorer = recency_scorer(half_life, NOW) if half_life else None
    ranked = repo.assembler._query_ranked(tree, query, mode, scorer, "lexical")  # type: ignore[arg-type]
    return [(atom.content_hash, score, match) for atom, score, match in ranked]


@settings(max_examples=150)
@given(
    words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=4, unique=True),
    mode=st.sampled_from(["any", "all"]),
    which=st.integers(min_value=0, max_value=3),
    half_life=st.sampled_from([None, 86_400.0 * 30]),
    factor=st.sampled_from([0, 1000]),
    first=st.sampled_from([128, 1024]),
)
def test_columns_rank_exactly_as_ranking_every_match(
    history: tuple[Repository, list[str]],
    words: list[str],
    mode: str,
    which: int,
    half_life: float | None,
    factor: int,
    first: int,
) -> None:
    repo, commits = history
    tree = repo.load_commit(bytes.fromhex(commits[which])).tree
    query = " ".join(words)
    original = lexical.HEAVY_FACTOR, lexical.FIRST_SORTED
    try:
        # 0: every query heavy (columns built, then derived between snapshots); 1000: none.
        lexical.HEAVY_FACTOR, lexical.FIRST_SORTED = factor, first
        answers = [ranked(repo, tree, query, mode, half_life) for _ in range(3)]
    finally:
        lexical.HEAVY_FACTOR, lexical.FIRST_SORTED = original
    expected = reference(repo, tree, query, mode, half_life)
    assert answers == [expected] * 3


def test_derived_columns_equal_built_ones(history: tuple[Repository, list[str]]) -> None:
    repo, commits = history
    trees = [repo.load_commit(bytes.fromhex(c)).tree for c in commits]
    for old, new in itertools.pairwise(trees):
        base = snapshot_columns.build(repo.trees, old)
        built = snapshot_columns.build(repo.trees, new)
        assert base is not None
        assert built is not None
        derived = base.derive(repo.trees, old, new, most=10_000)
        assert derived is not None
        assert derived.lanes.tobytes() == built.lanes.tobytes()
        assert derived.relevance.tolist() == built.relevance.tolist()
        assert derived.timestamps.tolist() == built.timestamps.tolist()
        assert [built.key(i) for i in range(len(built))] == sorted(
            key for key in (item[3:35] for item in repo.trees.items(new))
        )
        assert base.derive(repo.trees, old, new, most=1) is None  # more changed than allowed


def test_positions_find_exactly_the_held_keys(history: tuple[Repository, list[str]]) -> None:
    repo, commits = history
    tree = repo.load_commit(bytes.fromhex(commits[-1])).tree
    columns = snapshot_columns.build(repo.trees, tree)
    assert columns is not None
    held = [columns.key(i) for i in range(0, len(columns), 7)]
    near = [key[:8] + bytes(24) for key in held]  # same first lane, another key
    absent = [bytes([255]) * 32, bytes(32)]
    positions = columns.positions(set(held + near + absent))
    assert [columns.key(i) for i in positions.tolist()] == sorted(held)
    assert columns.positions(set()).tolist() == []


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> tuple[list[bytes], list[bytes]]:
    """The snapshots whose columns are built, and those derived, from here on."""
    built: list[bytes] = []
    derived: list[bytes] = []
    build = snapshot_columns.build
    derive = snapshot_columns.SnapshotColumns.derive

    def counting_build(trees: object, root: bytes) -> object:
        built.append(root)
        return build(trees, root)  # type: ignore[arg-type]

    def counting_derive(
        self: snapshot_columns.SnapshotColumns, trees: object, old: bytes, new: bytes, most: int
    ) -> object:
        derived.append(new)
        return derive(self, trees, old, new, most)  # type: ignore[arg-type]

    monkeypatch.setattr(snapshot_columns, "build", counting_build)
    monkeypatch.setattr(snapshot_columns.SnapshotColumns, "derive", counting_derive)
    return built, derived


def river_notes(repo: Repository, count: int) -> None:
    repo.add_atoms(
        MemoryAtom(f"river note {n}", FACT, START, "", (n % 97) / 97) for n in range(count)
    )
    repo.commit(f"{count} notes")


def head_tree(repo: Repository) -> bytes:
    head = repo.head()
    assert head is not None
    return repo.load_commit(bytes.fromhex(head)).tree


def test_in_memory_the_second_heavy_query_builds_then_commits_derive(
    counted: tuple[list[bytes], list[bytes]],
) -> None:
    built, derived = counted
    repo = Repository.memory()
    river_notes(repo, 3000)
    first = repo.search("river", limit=10, retrieval="lexical")  # looked up in the tree
    assert built == []
    assert repo.search("river", limit=10, retrieval="lexical") == first  # builds them
    assert built == [head_tree(repo)]
    assert repo.search("river note", limit=10, retrieval="lexical")[0] == first[0]
    repo.add_atoms([MemoryAtom("river note new", FACT, START, "", 1.0)])
    repo.commit("one more")
    top = repo.search("river", limit=10, retrieval="lexical")
    assert top[0].atom.content == "river note new"
    assert len(built) == 1  # derived through the diff, not built again
    assert derived == [head_tree(repo)]


def test_on_disk_columns_are_kept_for_fresh_processes(
    tmp_path: Path, counted: tuple[list[bytes], list[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    built, derived = counted
    monkeypatch.setattr(lexical, "PERSIST_FROM", 0)
    with Repository.init(tmp_path / "r", embedder="none") as repo:
        river_notes(repo, 3000)
        first = repo.search("river", limit=10, retrieval="lexical")  # the first heavy: builds
        assert built == [head_tree(repo)]
    with Repository.open(tmp_path / "r") as repo:  # a fresh process reads them
        rare = repo.search('"note 7"', limit=10, retrieval="lexical")  # 1 match in 3,000
        assert [hit.atom.content for hit in rare] == ["river note 7"]
        assert not repo.assembler._columns._loaded  # too few matches to read them for
        assert repo.search("river", limit=10, retrieval="lexical") == first
        assert repo.search("note", limit=10, retrieval="lexical")  # light: served too
        assert len(built) == 1
        repo.add_atoms([MemoryAtom("river note new", FACT, START, "", 1.0)])
        repo.commit("one more")
    with Repository.open(tmp_path / "r") as repo:  # derives the new snapshot's
        top = repo.search("river", limit=10, retrieval="lexical")
        assert top[0].atom.content == "river note new"
        assert len(built) == 1
        assert derived == [head_tree(repo)]


def test_damaged_kept_columns_are_ignored_and_rebuilt(
    tmp_path: Path, counted: tuple[list[bytes], list[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    built, _ = counted
    monkeypatch.setattr(lexical, "PERSIST_FROM", 0)
    with Repository.init(tmp_path / "r", embedder="none") as repo:
        river_notes(repo, 3000)
        first = repo.search("river", limit=10, retrieval="lexical")
        store = repo.store
        assert isinstance(store, DerivedStore)
        data = bytearray(store.read_derived(lexical.DERIVED_NAME) or b"")
        assert data
        data[-3] ^= 0x40  # one bit of one timestamp
        store.write_derived(lexical.DERIVED_NAME, bytes(data))
    assert snapshot_columns.decode(bytes(data)) is None
    with Repository.open(tmp_path / "r") as repo:
        assert repo.search("river", limit=10, retrieval="lexical") == first
        assert len(built) == 2  # not trusted: built again
        fresh = repo.store.read_derived(lexical.DERIVED_NAME)  # type: ignore[attr-defined]
        assert fresh is not None
        assert snapshot_columns.decode(fresh) is not None


def test_columns_round_trip_through_bytes(history: tuple[Repository, list[str]]) -> None:
    repo, commits = history
    tree = repo.load_commit(bytes.fromhex(commits[-1])).tree
    columns = snapshot_columns.build(repo.trees, tree)
    assert columns is not None
    data = snapshot_columns.encode(tree, columns)
    decoded = snapshot_columns.decode(data)
    assert decoded is not None
    assert decoded[0] == tree
    assert decoded[1].lanes.tobytes() == columns.lanes.tobytes()
    assert decoded[1].prefixes.tolist() == columns.prefixes.tolist()
    assert decoded[1].relevance.tolist() == columns.relevance.tolist()
    assert decoded[1].timestamps.tolist() == columns.timestamps.tolist()
    assert snapshot_columns.decode(data[:-8]) is None  # cut short
    assert snapshot_columns.decode(b"not columns" + data[11:]) is None


def test_receipts_made_looking_matches_up_verify_over_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(11)
    with Repository.init(tmp_path / "r", embedder="none") as repo:
        repo.add_atoms(
            MemoryAtom(
                f"{' '.join(rng.sample(WORDS, rng.randint(1, 3)))} entry {n}",
                FACT,
                START + timedelta(days=rng.randint(0, 90)),
                "",
                rng.choice([0.25, 0.5, 1.0]),
            )
            for n in range(2000)
        )
        repo.commit("two thousand")
        monkeypatch.setattr(lexical, "HEAVY_FACTOR", 10**9)  # no columns: as before them
        asks = [
            {"query": "river", "mode": "any", "half_life_seconds": None},
            {"query": "stone lamp", "mode": "any", "half_life_seconds": 86_400.0 * 20},
            {"query": "garden ember", "mode": "all", "half_life_seconds": None},
        ]
        made = [
            repo.context(budget=600, retrieval="lexical", now=NOW, **ask)  # type: ignore[arg-type]
            for ask in asks
        ]
    monkeypatch.setattr(lexical, "HEAVY_FACTOR", 0)  # every query heavy: columns serve
    with Repository.open(tmp_path / "r") as repo:
        for context in made:
            assert repo.verify_receipt(context.receipt).ok
        again = [
            repo.context(budget=600, retrieval="lexical", now=NOW, **ask)  # type: ignore[arg-type]
            for ask in asks
        ]
        assert repo.assembler._columns._columns  # the columns were used
    assert [c.text for c in again] == [c.text for c in made]


def test_small_snapshots_on_disk_build_on_the_second_heavy_query_and_keep_nothing(
    tmp_path: Path, counted: tuple[list[bytes], list[bytes]]
) -> None:
    built, _ = counted
    assert lexical.PERSIST_FROM > 3000
    with Repository.init(tmp_path / "r", embedder="none") as repo:
        river_notes(repo, 3000)
        repo.search("river", limit=10, retrieval="lexical")
        assert built == []  # building costs more than looking up, unless it is kept
        repo.search("river", limit=10, retrieval="lexical")
        assert built == [head_tree(repo)]
        store = repo.store
        assert isinstance(store, DerivedStore)
        assert store.read_derived(lexical.DERIVED_NAME) is None


def test_revisions_queried_in_turn_derive_from_the_anchor_not_rebuild(
    counted: tuple[list[bytes], list[bytes]],
) -> None:
    built, _ = counted
    repo = Repository.memory()
    river_notes(repo, 3000)
    for n in range(3):
        repo.add_atoms([MemoryAtom(f"river note extra {n}", FACT, START, "", 0.5)])
        repo.commit(f"extra {n}")
    revisions = ["HEAD", "HEAD~1", "HEAD~2", "HEAD~3"]
    answers = {}
    for _ in range(3):  # more snapshots than the cache keeps, in turn
        for revision in revisions:
            hits = repo.search("river", revision=revision, limit=5, retrieval="lexical")
            assert answers.setdefault(revision, hits) == hits
    assert len(built) == 1  # the second heavy query built; every other was derived


def test_keeping_columns_never_waits_for_another_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lexical, "PERSIST_FROM", 0)
    with Repository.init(tmp_path / "r", embedder="none") as repo:
        river_notes(repo, 3000)
        repo.search("absent", limit=1, retrieval="lexical")  # the index caught up, light
        store = repo.store
        assert isinstance(store, SqliteStore)
        writer = sqlite3.connect(store.path, isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            with pytest.raises(StoreError, match="locked"):
                store.write_derived("probe", b"x")
            hits = repo.search("river", limit=10, retrieval="lexical")  # builds, cannot keep
            assert len(hits) == 10
            writer.execute("ROLLBACK")
        finally:
            writer.close()
        assert store.read_derived(lexical.DERIVED_NAME) is None
        with store.connection() as conn:
            assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000  # restored


def test_derived_data_adds_no_schema_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexical, "PERSIST_FROM", 0)
    with Repository.init(tmp_path / "r", embedder="none") as repo:
        store = repo.store
        assert isinstance(store, SqliteStore)
        assert store.read_derived(lexical.DERIVED_NAME) is None  # no table yet: nothing kept
        river_notes(repo, 3000)
        repo.search("river", limit=10, retrieval="lexical")
        assert store.read_derived(lexical.DERIVED_NAME) is not None
        with store.connection() as conn:
            steps = conn.execute("SELECT max(step) FROM schema_migrations").fetchone()[0]
    assert steps == MIGRATIONS[-1][0]  # an older ContextFS still opens the store
