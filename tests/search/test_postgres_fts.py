"""PostgresSearchIndex beyond the contract: parity with FTS5, its plan, long documents, tables.

Every test runs against a real server (the ``postgres_url`` fixture). The
parity tests index the same real text (this project's documentation, Python's
own docstrings, and one sentence in several languages) in SQLite and PostgreSQL
and require the same ids, in the same order, with the same scores.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import datetime as dt
import heapq
import inspect
import itertools
import json
import logging
import pathlib
import re
import sqlite3
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from contextfs.backends import search_index_for
from contextfs.errors import StoreError
from contextfs.model.objects import MemoryAtom, atom_body, atom_digest
from contextfs.model.types import T_INT, T_STRING, TypeSignature
from contextfs.repo import Repository
from contextfs.search import SqliteSearchIndex, tokenize
from contextfs.search.postgres_fts import (
    MATCH_SQL,
    MAX_LEXEME_BYTES,
    MAX_POSITION,
    MAX_POSITIONS,
    MIGRATIONS,
    SEARCH_SQL,
    PostgresSearchIndex,
    quote_lexeme,
)
from contextfs.search.query import Mode
from contextfs.store import SqliteStore
from contextfs.store.postgres import PostgresStore
from contextfs.testing.search_contract import text_id
from contextfs.testing.store_contract import abandoned, make_objects

ROOT = Path(__file__).resolve().parents[2]

#: One sentence (Article 1 of the Universal Declaration of Human Rights) in several scripts.
TRANSLATIONS = (
    "Tous les êtres humains naissent libres et égaux en dignité et en droits.",
    "Alle Menschen sind frei und gleich an Würde und Rechten geboren.",
    "Όλοι οι άνθρωποι γεννιούνται ελεύθεροι και ίσοι στην αξιοπρέπεια και τα δικαιώματα.",
    "Все люди рождаются свободными и равными в своем достоинстве и правах.",
    "Todos los seres humanos nacen libres e iguales en dignidad y derechos.",
    "Bütün insanlar hür, haysiyet ve haklar bakımından eşit doğarlar.",
    "すべての人間は、生まれながらにして自由であり、かつ、尊厳と権利とについて平等である。",
)

#: Modules whose docstrings (and their public members') are real English prose.
DOC_MODULES: tuple[ModuleType, ...] = (
    collections,
    csv,
    dataclasses,
    dt,
    heapq,
    inspect,
    json,
    logging,
    pathlib,
    re,
    sqlite3,
    textwrap,
    threading,
)

PARITY_QUERIES: list[tuple[str, Mode]] = [
    ("search", "any"),
    ("the", "any"),
    ("commit branch merge", "any"),
    ("commit branch merge", "all"),
    ("return the value", "all"),
    ('"the store"', "any"),
    ('"full text search"', "any"),
    ('"return the" object', "any"),
    ('"if the" "is not"', "all"),
    ("sear*", "any"),
    ("re*", "any"),
    ('"in the*"', "any"),
    ("json decod*", "all"),
    ("2", "any"),
    ("python 3", "all"),
    ("égaux", "any"),
    ("WÜRDE rechten", "all"),
    ("ΆΝΘΡΩΠΟΙ", "any"),
    ("свободными", "any"),
    ('"naissent libres"', "any"),
    ("すべての人間は", "any"),
    ("hür* libres", "any"),
    ("contextfs", "any"),
    ("nonexistentword", "any"),
]


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


def sentences(text: str) -> list[str]:
    """Split prose into sentences and paragraphs of at least three words."""
    parts = re.split(r"(?<=[.!?])\s+|\n\s*\n", text)
    return [" ".join(part.split()) for part in parts if len(tokenize(part)) >= 3]


def docstrings(module: ModuleType) -> Iterator[str]:
    yield inspect.getdoc(module) or ""
    for name, member in sorted(vars(module).items()):
        if not name.startswith("_") and (inspect.isclass(member) or inspect.isfunction(member)):
            yield inspect.getdoc(member) or ""


def real_corpus() -> dict[bytes, str]:
    """Real text: sentences, plus whole documentation files (over the tsvector limits)."""
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    pages = [path.read_text(encoding="utf-8") for path in files]
    texts = [text for page in pages for text in sentences(page)]
    texts += [
        text for module in DOC_MODULES for doc in docstrings(module) for text in sentences(doc)
    ]
    texts += [*TRANSLATIONS, *pages, "\n".join(pages)]
    return {text_id(text): text for text in texts}


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresStore]:
    with PostgresStore.open(postgres_url, create=True) as opened:
        yield opened


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore.open(tmp_path / "store.db", create=True) as opened:
        yield opened


def rows(store: PostgresStore, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with store.connection() as conn:
        return [tuple(row) for row in conn.execute(sql, params or None).fetchall()]


def atoms(*contents: str) -> list[tuple[bytes, str, bytes]]:
    """Real atom objects, as the repository stores them."""
    return [(atom_digest(T_STRING, c), "atom", atom_body(T_STRING, c)) for c in contents]


def assert_same_results(
    expected: list[tuple[bytes, float]], got: list[tuple[bytes, float]], context: object
) -> None:
    assert [oid for oid, _ in got] == [oid for oid, _ in expected], context
    assert [score for _, score in got] == pytest.approx(
        [score for _, score in expected], rel=1e-9
    ), context


# -- schema and plan -----------------------------------------------------------------


def test_the_search_step_is_recorded_and_the_gin_indexes_exist(store: PostgresStore) -> None:
    PostgresSearchIndex(store)
    PostgresSearchIndex(store)  # an up-to-date schema is left alone
    assert rows(store, "SELECT step, name FROM schema_migrations WHERE component = 'search'") == [
        (step, name) for step, name, _ in MIGRATIONS
    ]
    indexes = dict(
        rows(
            store, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
        )
    )
    assert "USING gin (tokens)" in str(indexes["search_docs_tokens"])
    assert "USING gin (lexemes)" in str(indexes["search_overflow_lexemes"])


def test_a_match_uses_the_gin_index(store: PostgresStore) -> None:
    index = PostgresSearchIndex(store)
    texts = {text_id(f"row {n}"): f"row number {n} of the plan test" for n in range(3000)}
    texts[text_id("rare")] = "a rare needle"
    index.index_texts(texts.items())
    cases: list[tuple[str, dict[str, Any] | tuple[str]]] = [
        (SEARCH_SQL, {"query": "needle", "words": ["needle"], "prefixes": []}),
        (SEARCH_SQL, {"query": "needle:*", "words": [], "prefixes": ["needle"]}),
        (MATCH_SQL, ("needle",)),
    ]
    with store.connection() as conn:
        conn.execute("ANALYZE search_docs")
        plans = [
            "\n".join(row[0] for row in conn.execute(f"EXPLAIN {sql}", params))
            for sql, params in cases
        ]
    for plan in plans:
        assert "Bitmap Index Scan on search_docs_tokens" in plan, plan
        assert "Seq Scan on search_docs" not in plan, plan
    assert index.search("needle", limit=5)[0][0] == text_id("rare")


@pytest.mark.parametrize(
    "lexeme", ["plain", "it's", "back\\slash", "''", "\\'", "two words", "a:1", "x & !y | (z)", "é"]
)
def test_lexemes_are_quoted_so_postgres_reads_them_back_unchanged(
    store: PostgresStore, lexeme: str
) -> None:
    quoted = quote_lexeme(lexeme)
    assert rows(store, "SELECT lexeme FROM unnest(%s::tsvector)", quoted + ":1") == [(lexeme,)]
    assert rows(store, "SELECT %s::tsvector @@ %s::tsquery", quoted + ":1", quoted) == [(True,)]
    assert rows(store, "SELECT %s::tsvector @@ %s::tsquery", "'other':1", quoted) == [(False,)]


def test_postgres_never_tokenizes_stems_or_drops_stop_words(store: PostgresStore) -> None:
    text = "The user@example.com wrote 3.14 don't-panic at http://x.org/a_b running"
    index = PostgresSearchIndex(store)
    index.index_texts([(text_id(text), text)])
    (vector,) = rows(store, "SELECT tokens FROM search_docs")
    lexemes = rows(store, "SELECT lexeme FROM unnest(%s::tsvector)", vector[0])
    assert sorted(lexeme for (lexeme,) in lexemes) == sorted(set(tokenize(text)))
    assert len(index.search("the", limit=5)) == 1  # no stop words
    assert index.search("run", limit=5) == []  # no stemming
    assert len(index.search('"example com wrote 3 14"', limit=5)) == 1


# -- parity with SQLite FTS5 ------------------------------------------------------------


@pytest.fixture
def parity(
    store: PostgresStore, sqlite_store: SqliteStore
) -> tuple[PostgresSearchIndex, SqliteSearchIndex]:
    texts = real_corpus()
    postgres, sqlite = PostgresSearchIndex(store), SqliteSearchIndex(sqlite_store)
    for index in (postgres, sqlite):
        index.index_texts(texts.items())
    return postgres, sqlite


def test_real_text_ranks_and_scores_like_sqlite(
    store: PostgresStore, parity: tuple[PostgresSearchIndex, SqliteSearchIndex]
) -> None:
    postgres, sqlite = parity
    assert postgres.count() == sqlite.count() > 1000
    # All the pages in one text exceed the tsvector limits, so both kinds of row take part.
    assert rows(store, "SELECT count(*) FROM search_docs WHERE tokens IS NULL")[0][0] >= 1
    for query, mode in PARITY_QUERIES:
        expected = sqlite.search(query, limit=1000, mode=mode)
        assert_same_results(expected, postgres.search(query, limit=1000, mode=mode), query)
        assert (
            postgres.search(query, limit=7, mode=mode)
            == postgres.search(query, limit=1000, mode=mode)[:7]
        )
    assert len(sqlite.search("the", limit=1000)) > 100


def test_match_ids_agree_with_sqlite(parity: tuple[PostgresSearchIndex, SqliteSearchIndex]) -> None:
    postgres, sqlite = parity
    for query, _ in PARITY_QUERIES:
        assert postgres.match_ids(query) == sqlite.match_ids(query), query


# -- documents over the tsvector limits --------------------------------------------------

LONG_TOKEN = "x" * 3000
WIDE_TOKEN = "\U00020000" * 750  # 3000 bytes; a cut at 2046 bytes splits a character
LONG_TEXTS = (
    # Over 16383 positions, with a phrase only after the clamp.
    " ".join(f"w{n % 700}" for n in range(MAX_POSITION + 500)) + " closing words here",
    # One word more often than a lexeme keeps positions.
    "echo " * (MAX_POSITIONS + 44) + "done",
    # Tokens longer than a lexeme may be, and one just short enough.
    f"long {LONG_TOKEN} tail",
    f"wide {WIDE_TOKEN} tail",
    f"edge {LONG_TOKEN[:MAX_LEXEME_BYTES]} tail",
    # A vocabulary too big for one tsvector: 70,000 distinct 16-byte tokens.
    " ".join(f"vocabulary{n:06d}" for n in range(70_000)) + " echo",
    "echo closing words",
    "short echo",
)

LONG_QUERIES: list[tuple[str, Mode]] = [
    ("closing", "any"),
    ('"closing words here"', "any"),
    ('"w699 w0 w1"', "any"),
    ('"w698 w699"', "any"),
    ("w699 here", "all"),
    ("echo", "any"),
    ('"echo echo echo"', "any"),
    ('"echo done"', "any"),
    (LONG_TOKEN, "any"),
    (LONG_TOKEN[:2500] + "*", "any"),
    (LONG_TOKEN[:MAX_LEXEME_BYTES], "any"),
    (LONG_TOKEN[:MAX_LEXEME_BYTES] + "*", "any"),
    (LONG_TOKEN + "x", "any"),
    (WIDE_TOKEN, "any"),
    ("\U00020000" * 3 + "*", "any"),
    (WIDE_TOKEN[:600] + "*", "any"),
    (f'"{WIDE_TOKEN} tail"', "any"),
    ("tail long", "all"),
    ("vocabulary069999 echo", "all"),
    ('"vocabulary000001 vocabulary000002"', "any"),
    ("vocabulary0699*", "any"),
]


def test_documents_over_the_tsvector_limits_rank_like_sqlite(
    store: PostgresStore, sqlite_store: SqliteStore
) -> None:
    texts = [*LONG_TEXTS, *(f"filler text number {n}" for n in range(20))]
    postgres, sqlite = PostgresSearchIndex(store), SqliteSearchIndex(sqlite_store)
    for index in (postgres, sqlite):
        index.index_texts((text_id(text), text) for text in texts)
    overflow = rows(
        store,
        "SELECT d.id, count(o.part) FROM search_docs d JOIN search_overflow o ON o.id = d.id"
        " WHERE d.tokens IS NULL GROUP BY d.id",
    )
    assert dict(overflow) == {
        text_id(LONG_TEXTS[0]): 1,
        text_id(LONG_TEXTS[1]): 1,
        text_id(LONG_TEXTS[2]): 1,
        text_id(LONG_TEXTS[3]): 1,
        text_id(LONG_TEXTS[5]): 2,
    }
    for query, mode in LONG_QUERIES:
        expected = sqlite.search(query, limit=100, mode=mode)
        assert expected or query == LONG_TOKEN + "x", query[:40]
        assert_same_results(expected, postgres.search(query, limit=100, mode=mode), query[:40])
        assert postgres.match_ids(query) == sqlite.match_ids(query), query[:40]


def test_a_cut_lexeme_does_not_match_the_long_token_it_came_from(store: PostgresStore) -> None:
    index = PostgresSearchIndex(store)
    index.index_texts((text_id(text), text) for text in LONG_TEXTS[2:5])
    cut = LONG_TOKEN[:MAX_LEXEME_BYTES]
    assert index.match_ids(LONG_TOKEN) == {text_id(LONG_TEXTS[2])}
    assert index.match_ids(cut) == {text_id(LONG_TEXTS[4])}
    assert index.match_ids(cut + "*") == {text_id(LONG_TEXTS[2]), text_id(LONG_TEXTS[4])}
    assert index.match_ids(LONG_TOKEN + "x") == set()


# -- tables: deferral, backfill, forget, reindex, totals ------------------------------------


def totals(store: PostgresStore) -> list[tuple[Any, ...]]:
    return rows(store, "SELECT docs, tokens FROM search_totals")


def table_totals(store: PostgresStore) -> tuple[Any, ...]:
    return rows(store, "SELECT count(*), coalesce(sum(length), 0) FROM search_docs")[0]


def test_deferred_ids_wait_in_the_pending_table_until_a_query(store: PostgresStore) -> None:
    index = PostgresSearchIndex(store)
    store.put_objects(atoms("deferred fact", "other fact"))
    oids = [atom_digest(T_STRING, "deferred fact"), text_id("never stored")]
    index.defer(oids + oids)
    assert sorted(row[0] for row in rows(store, "SELECT id FROM search_pending")) == sorted(oids)
    assert table_totals(store) == (0, 0)
    assert index.match_ids("fact") == {oids[0]}
    assert rows(store, "SELECT id FROM search_pending") == []
    assert table_totals(store) == (1, 2)
    assert totals(store) == [(1, 2)]


def test_a_store_filled_before_search_existed_is_backfilled(store: PostgresStore) -> None:
    store.put_objects(atoms("alpha memory", "beta memory", "Café gamma"))
    store.put_objects([(atom_digest(T_INT, "42"), "atom", atom_body(T_INT, "42"))])
    store.put_objects([(text_id("corrupt"), "atom", b"not msgpack")])
    store.put_objects(make_objects(3, kind="commit"))
    index = search_index_for(store)  # makes the tables and queues the atoms
    assert len(rows(store, "SELECT id FROM search_pending")) == 5
    hits = index.search("memory", limit=10)
    assert sorted(oid for oid, _ in hits) == sorted(
        atom_digest(T_STRING, c) for c in ("alpha memory", "beta memory")
    )
    assert [oid for oid, _ in index.search("42", limit=10)] == [atom_digest(T_INT, "42")]
    assert index.count() == 4  # the corrupt atom is skipped; commits are not atoms


def test_tables_made_inside_a_rolled_back_transaction_stay_and_backfill(
    store: PostgresStore,
) -> None:
    store.put_objects(atoms("alpha memory", "beta memory"))
    with abandoned(store):
        index = PostgresSearchIndex(store)
        assert index.count() == 2
    assert rows(store, "SELECT to_regclass('search_docs')") == [("search_docs",)]
    assert PostgresSearchIndex(store).count() == 2


def test_forget_removes_the_row_its_overflow_parts_and_its_share_of_the_totals(
    store: PostgresStore,
) -> None:
    index = PostgresSearchIndex(store)
    long, short = LONG_TEXTS[1], "short echo"
    index.index_texts([(text_id(long), long), (text_id(short), short)])
    assert rows(store, "SELECT count(*) FROM search_overflow") == [(1,)]
    assert index.forget(text_id(long), long)
    assert rows(store, "SELECT count(*) FROM search_overflow") == [(0,)]
    assert totals(store) == [(1, 2)]
    assert [oid for oid, _ in index.search("echo", limit=5)] == [text_id(short)]
    assert not index.forget(text_id(long), long)
    store.put_objects(atoms("only deferred"))
    index.defer([atom_digest(T_STRING, "only deferred")])
    assert not index.forget(atom_digest(T_STRING, "only deferred"), "only deferred")
    assert rows(store, "SELECT count(*) FROM search_pending") == [(0,)]
    assert index.count() == 1


def test_a_rolled_back_forget_restores_the_row(store: PostgresStore) -> None:
    index = PostgresSearchIndex(store)
    index.index_texts([(text_id("kept"), "kept words")])
    with abandoned(store):
        assert index.forget(text_id("kept"), "kept words")
        assert index.count() == 0
    assert index.count() == 1
    assert totals(store) == [(1, 2)]


def test_reindex_clears_every_table_but_the_deferred_atoms(store: PostgresStore) -> None:
    index = PostgresSearchIndex(store)
    index.index_texts((text_id(text), text) for text in LONG_TEXTS[:2])
    store.put_objects(atoms("deferred words"))
    index.defer([atom_digest(T_STRING, "deferred words")])
    assert index.reindex([(text_id("fresh"), "fresh words")]) == 1
    assert rows(store, "SELECT count(*) FROM search_overflow") == [(0,)]
    assert totals(store) == [(1, 2)]
    assert sorted(oid for oid, _ in index.search("words", limit=5)) == sorted(
        [text_id("fresh"), atom_digest(T_STRING, "deferred words")]
    )


def test_the_totals_stay_one_row_equal_to_the_table(store: PostgresStore) -> None:
    index = PostgresSearchIndex(store)
    for n in range(20):
        index.index_texts([(text_id(f"doc {n}"), f"doc number {n} " * (n % 4))])
    with abandoned(store):
        index.index_texts([(text_id("lost"), "lost words")])
    index.forget(text_id("doc 3"), "")
    assert totals(store) == [table_totals(store)]
    assert index.count() == 19


def test_two_handles_index_the_same_texts_once(store: PostgresStore) -> None:
    other = PostgresStore.open(store.url)
    try:
        texts = [(text_id(f"t{n}"), f"shared text {n}") for n in range(300)]
        barrier = threading.Barrier(2)

        def work(handle: PostgresStore) -> None:
            index = PostgresSearchIndex(handle)
            barrier.wait()
            index.index_texts(texts)

        threads = [threading.Thread(target=work, args=(s,)) for s in (store, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert PostgresSearchIndex(other).count() == 300
        assert sum(int(str(docs)) for docs, _ in totals(store)) == 300
        assert len(totals(store)) <= 2
    finally:
        other.close()


def wait_until_blocked(store: PostgresStore, backend: int) -> None:
    """Return once ``backend`` waits for a lock (polling; no fixed sleep decides anything)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = rows(store, "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", backend)
        if found == [("Lock",)]:
            return
        time.sleep(0.01)
    raise AssertionError(f"backend {backend} never waited for a lock")


def test_a_reindex_waits_for_open_writers_so_the_totals_stay_exact(store: PostgresStore) -> None:
    index = PostgresSearchIndex(store)
    index.index_texts([(text_id(f"old {n}"), f"old text {n}") for n in range(5)])
    other = PostgresStore.open(store.url)
    watcher = PostgresStore.open(store.url)
    try:
        with other.connection() as conn:
            backend = conn.info.backend_pid
        rebuilt: list[int] = []
        with store.transaction():
            index.index_texts([(text_id("new"), "new text")])
            worker = threading.Thread(
                target=lambda: rebuilt.append(
                    PostgresSearchIndex(other).reindex([(text_id("fresh"), "fresh text")])
                )
            )
            worker.start()
            wait_until_blocked(watcher, backend)
        worker.join()
        assert rebuilt == [1]
        assert totals(store) == [table_totals(store)] == [(1, 2)]
        assert [oid for oid, _ in index.search("text", limit=5)] == [text_id("fresh")]
    finally:
        other.close()
        watcher.close()


def test_another_handle_sees_only_committed_text(store: PostgresStore) -> None:
    other = PostgresStore.open(store.url)
    try:
        index = PostgresSearchIndex(store)
        with store.transaction():
            index.index_texts([(text_id("x"), "pending words")])
            assert PostgresSearchIndex(other).search("pending", limit=5) == []
        assert len(PostgresSearchIndex(other).search("pending", limit=5)) == 1
    finally:
        other.close()


def test_a_closed_store_refuses_use(store: PostgresStore) -> None:
    index = PostgresSearchIndex(store)
    store.close()
    message = f"store {store.where!r} is closed"
    calls: list[Callable[[], object]] = [
        lambda: PostgresSearchIndex(store),
        lambda: index.search("x", limit=1),
        lambda: index.match_ids("x"),
        lambda: index.count(),
        lambda: index.index_texts([(text_id("x"), "x")]),
        lambda: index.defer([text_id("x")]),
        lambda: index.forget(text_id("x"), "x"),
        lambda: index.reindex([]),
    ]
    for call in calls:
        with pytest.raises(StoreError, match=exactly(message)):
            call()


# -- a repository on PostgreSQL ----------------------------------------------------------


def test_a_repository_on_postgres_searches_like_one_in_memory(postgres_url: str) -> None:
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    texts = [text for doc in docstrings(json) for text in sentences(doc)][:60]
    texts += [*TRANSLATIONS, LONG_TEXTS[1]]
    memories = [
        MemoryAtom(
            text,
            TypeSignature("String"),
            timestamp=start + dt.timedelta(minutes=n),
            relevance_score=0.5 + (n % 5) / 10,
        )
        for n, text in enumerate(texts)
    ]
    postgres = Repository.create(PostgresStore.open(postgres_url, create=True))
    memory = Repository.memory()
    try:
        for repo in (postgres, memory):
            repo.add_atoms(memories[:40])
            repo.commit("first half", author="tester")
            repo.add_atoms(memories[40:])
            repo.commit("second half", author="tester")
        queries: list[tuple[str, Mode]] = [
            ("json", "any"),
            ("object decode", "all"),
            ('"python object"', "any"),
            ("ser*", "any"),
            ("libres égaux", "any"),
            ("echo", "any"),
        ]
        for (query, mode), revision in itertools.product(queries, ["HEAD", "HEAD~1"]):
            got = postgres.search(query, limit=20, mode=mode, revision=revision)
            expected = memory.search(query, limit=20, mode=mode, revision=revision)
            context = (query, revision)
            assert [h.atom for h in got] == [h.atom for h in expected], context
            assert [h.score for h in got] == pytest.approx([h.score for h in expected]), context
            assert [h.match for h in got] == pytest.approx([h.match for h in expected]), context
        words = "lexical"
        assert len(postgres.search("json", limit=20, retrieval=words)) > 5
        assert postgres.search("würde", limit=20, revision="HEAD~1", retrieval=words) == []
        assert len(postgres.search("würde", limit=20, retrieval=words)) == 1
    finally:
        postgres.store.close()
