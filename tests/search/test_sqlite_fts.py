"""SqliteSearchIndex beyond the contract: its tables, backfill, plan, FTS5 checks, the twin."""

from __future__ import annotations

import random
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import contextfs.store.sqlite as sqlite_module
from contextfs.backends import search_index_for
from contextfs.errors import StoreError
from contextfs.model.objects import atom_body, atom_digest, decode_atom
from contextfs.model.types import T_INT, T_STRING
from contextfs.search import MemorySearchIndex, SqliteSearchIndex, atom_texts
from contextfs.search.query import Mode
from contextfs.search.sqlite_fts import BACKFILL_KEY, SEARCH_SQL
from contextfs.store import MemoryStore, SqliteStore
from contextfs.store.sqlite import MIGRATIONS, fts5_available
from contextfs.testing.search_contract import text_id
from contextfs.testing.store_contract import abandoned, make_objects


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


def atoms(*contents: str) -> list[tuple[bytes, str, bytes]]:
    """Real atom objects, as the repository stores them."""
    return [(atom_digest(T_STRING, c), "atom", atom_body(T_STRING, c)) for c in contents]


def table_rows(store: SqliteStore) -> tuple[int, int]:
    """Rows in the id map and in FTS5's per-document shadow table."""
    with store.connection() as conn:
        (ids,) = conn.execute("SELECT count(*) FROM search_ids").fetchone()
        (docs,) = conn.execute("SELECT count(*) FROM search_fts_docsize").fetchone()
    return ids, docs


def meta(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as raw:
        rows = dict(raw.execute("SELECT key, value FROM meta").fetchall())
    raw.close()
    return rows


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore.open(tmp_path / "store.db", create=True) as opened:
        yield opened


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    """A database made by a ContextFS without the search step, holding atoms."""
    path = tmp_path / "old.db"
    step, name, statements = MIGRATIONS[0]
    with sqlite3.connect(path) as raw:  # the schema that version made
        raw.execute(
            "CREATE TABLE schema_migrations (step INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at TEXT NOT NULL)"
        )
        for sql in statements:
            raw.execute(sql)
        raw.execute("INSERT INTO schema_migrations VALUES (?, ?, 'then')", (step, name))
    raw.close()
    rows = [
        *atoms("alpha memory", "beta memory", "Café gamma"),
        (atom_digest(T_INT, "42"), "atom", atom_body(T_INT, "42")),
        (text_id("corrupt"), "atom", b"not msgpack"),
        *make_objects(3, kind="commit"),
    ]
    with sqlite3.connect(path) as raw:  # as that version wrote them: raw bytes
        raw.executemany("INSERT INTO objects (id, kind, data) VALUES (?, ?, ?)", rows)
    raw.close()
    return path


# -- schema ---------------------------------------------------------------------


def test_the_search_step_is_recorded_and_a_fresh_store_needs_no_backfill(
    store: SqliteStore,
) -> None:
    assert MIGRATIONS[1][:2] == (2, "create the full-text search index")
    store.close()
    assert meta(store.path) == {"format": "1"}
    with sqlite3.connect(store.path) as raw:
        steps = raw.execute("SELECT step FROM schema_migrations ORDER BY step").fetchall()
        sql = raw.execute("SELECT sql FROM sqlite_master WHERE name = 'search_fts'").fetchone()
    raw.close()
    assert steps == [(step,) for step, _, _ in MIGRATIONS]  # every step, the search one too
    assert "content=''" in sql[0]
    assert "tokenize='unicode61 remove_diacritics 2'" in sql[0]


def test_a_match_query_uses_the_fts_index(store: SqliteStore) -> None:
    with store.connection() as conn:
        plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {SEARCH_SQL}", ('"x"', 10))]
    assert re.fullmatch(r"SCAN search_fts VIRTUAL TABLE INDEX \d+:M.*", plan[0]), plan
    assert plan[1] == "SEARCH search_ids USING INTEGER PRIMARY KEY (rowid=?)", plan


def test_fts5_is_available_here(store: SqliteStore) -> None:
    with store.connection() as conn:
        assert fts5_available(conn)


def test_missing_fts5_is_a_clear_store_error(
    tmp_path: Path, store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "fts5_available", lambda conn: False)
    path = tmp_path / "new.db"
    message = (
        f"store {str(path)!r}: SQLite {sqlite3.sqlite_version} was built without FTS5,"
        " which ContextFS needs for full-text search; use a Python whose sqlite3 has FTS5"
    )
    with pytest.raises(StoreError, match=exactly(message)):
        SqliteStore.open(path, create=True)
    with pytest.raises(StoreError, match="was built without FTS5"):
        SqliteSearchIndex(store)


# -- transactions -----------------------------------------------------------------


def test_a_rolled_back_transaction_removes_the_indexed_rows(store: SqliteStore) -> None:
    index = SqliteSearchIndex(store)
    index.index_texts([(text_id("kept"), "kept text")])
    with abandoned(store):
        store.put_objects(atoms("lost"))
        index.index_texts([(text_id(f"lost{n}"), f"lost text {n}") for n in range(50)])
        assert table_rows(store) == (51, 51)
    assert table_rows(store) == (1, 1)
    assert index.search("lost", limit=10) == []
    assert store.count_objects() == 0


def test_index_and_objects_commit_together_and_survive_reopening(store: SqliteStore) -> None:
    with store.transaction():
        store.put_objects(atoms("durable fact"))
        search_index_for(store).index_texts(
            [(atom_digest(T_STRING, "durable fact"), "durable fact")]
        )
    store.close()
    with SqliteStore.open(store.path) as again:
        hits = search_index_for(again).search("durable", limit=5)
        assert [oid for oid, _ in hits] == [atom_digest(T_STRING, "durable fact")]


def test_another_handle_sees_only_committed_text(store: SqliteStore) -> None:
    other = SqliteStore.open(store.path)
    try:
        with store.transaction():
            SqliteSearchIndex(store).index_texts([(text_id("x"), "pending words")])
            assert SqliteSearchIndex(other).search("pending", limit=5) == []
        assert len(SqliteSearchIndex(other).search("pending", limit=5)) == 1
    finally:
        other.close()


# -- backfill ---------------------------------------------------------------------


def test_a_store_from_before_the_search_step_is_backfilled_on_first_use(old_store: Path) -> None:
    assert meta(old_store) == {"format": "1"}
    with SqliteStore.open(old_store) as store:  # applies step 2
        assert meta(old_store) == {"format": "1", BACKFILL_KEY: "pending"}
        assert table_rows(store) == (0, 0)
        index = SqliteSearchIndex(store)
        hits = index.search("memory", limit=10)
        assert sorted(oid for oid, _ in hits) == sorted(
            atom_digest(T_STRING, c) for c in ("alpha memory", "beta memory")
        )
        assert [oid for oid, _ in index.search("cafe", limit=10)] == [
            atom_digest(T_STRING, "Café gamma")
        ]
        assert [oid for oid, _ in index.search("42", limit=10)] == [atom_digest(T_INT, "42")]
        assert index.count() == 4  # the corrupt atom is skipped; commits are not atoms
        assert meta(old_store) == {"format": "1"}


def test_every_entry_point_backfills(old_store: Path) -> None:
    with SqliteStore.open(old_store) as store:
        assert SqliteSearchIndex(store).count() == 4
    with SqliteStore.open(old_store) as store:
        SqliteSearchIndex(store).index_texts([(text_id("new"), "new text")])
        assert SqliteSearchIndex(store).count() == 5


def test_a_backfill_rolled_back_with_its_transaction_runs_again(old_store: Path) -> None:
    with SqliteStore.open(old_store) as store:
        index = SqliteSearchIndex(store)
        with abandoned(store):
            assert len(index.search("memory", limit=10)) == 2
            assert index.count() == 4
        assert meta(old_store)[BACKFILL_KEY] == "pending"
        assert len(index.search("memory", limit=10)) == 2
        assert BACKFILL_KEY not in meta(old_store)


def test_two_handles_backfill_once(old_store: Path) -> None:
    first, second = SqliteStore.open(old_store), SqliteStore.open(old_store)
    try:
        one, two = SqliteSearchIndex(first), SqliteSearchIndex(second)
        assert one.count() == 4
        assert two.count() == 4
        assert table_rows(second) == (4, 4)
    finally:
        first.close()
        second.close()


def test_reindex_rebuilds_from_the_store_and_settles_a_pending_backfill(old_store: Path) -> None:
    with SqliteStore.open(old_store) as store:
        index = SqliteSearchIndex(store)
        texts = ((oid, decode_atom(data)[1]) for oid, _, data in atoms("only this one"))
        assert index.reindex(texts) == 1
        assert BACKFILL_KEY not in meta(old_store)
        assert index.search("memory", limit=10) == []
        assert len(index.search("only", limit=10)) == 1
        assert table_rows(store) == (1, 1)
        assert index.reindex(atom_texts(store)) == 4  # the corrupt atom is skipped
        assert len(index.search("memory", limit=10)) == 2


# -- scale ------------------------------------------------------------------------


def test_two_thousand_matches_return_limit_results_best_first(store: SqliteStore) -> None:
    rng = random.Random(2000)
    texts = {}
    for n in range(2000):
        words = ["needle"] * rng.randint(1, 3) + [f"hay{rng.randint(0, 50)}" for _ in range(n % 40)]
        rng.shuffle(words)
        texts[text_id(n)] = " ".join(words)
    texts.update({text_id(f"filler{n}"): f"other words {n}" for n in range(2000)})
    index = SqliteSearchIndex(store)
    index.index_texts(texts.items())
    everything = index.search("needle", limit=10_000)
    assert len(everything) == 2000
    assert everything == sorted(everything, key=lambda hit: (-hit[1], hit[0]))
    best = index.search("needle", limit=25)
    assert best == everything[:25]
    assert texts[best[0][0]] == "needle needle needle"


# -- the memory twin ----------------------------------------------------------------

VOCABULARY = [
    "memory", "agent", "context", "token", "budget", "commit", "branch", "merge", "café",
    "naïve", "Straße", "東京", "snapshot", "atom", "search", "rank", "query", "alpha", "beta",
    "gamma", "delta", "the", "a", "of", "and", "to", "in", "graph", "relevance", "recency",
]  # fmt: skip


def corpus(seed: int, size: int) -> dict[bytes, str]:
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(VOCABULARY))]  # Zipf-like
    texts = {}
    for n in range(size):
        words = rng.choices(VOCABULARY, weights, k=rng.randint(0, 30))
        texts[text_id(f"{seed}:{n}")] = " ".join(
            w.upper() if rng.random() < 0.1 else w for w in words
        )
    return texts


QUERIES: list[tuple[str, Mode]] = [
    ("memory", "any"),
    ("the", "any"),
    ("cafe naive", "any"),
    ("cafe naive", "all"),
    ("memory agent context", "any"),
    ("memory agent context", "all"),
    ('"memory agent"', "any"),
    ('"the memory" token', "any"),
    ("gr*", "any"),
    ("a*", "any"),
    ('"of a*"', "any"),
    ("strasse straße", "any"),
    ("東京 delta*", "all"),
    ("absent words", "any"),
]


@pytest.mark.parametrize("seed", [1, 2])
def test_the_memory_twin_ranks_and_scores_like_fts5(store: SqliteStore, seed: int) -> None:
    texts = corpus(seed, 400)
    sqlite_index, memory_index = SqliteSearchIndex(store), MemorySearchIndex(MemoryStore())
    for index in (sqlite_index, memory_index):
        index.index_texts(texts.items())
    for query, mode in QUERIES:
        expected = sqlite_index.search(query, limit=50, mode=mode)
        got = memory_index.search(query, limit=50, mode=mode)
        assert [oid for oid, _ in got] == [oid for oid, _ in expected], (query, mode)
        assert [score for _, score in got] == pytest.approx(
            [score for _, score in expected], rel=1e-12
        )
