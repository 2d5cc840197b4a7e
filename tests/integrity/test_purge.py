"""``purge_atom``: an atom's text leaves every byte of the store while every hash still verifies."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from contextfs import (
    CompressedContext,
    MemoryAtom,
    ObjectContextStore,
    Repository,
    TypeSignature,
)
from contextfs.backends import search_index_for
from contextfs.errors import CorruptObjectError, InvalidInputError, StoreError
from contextfs.history.commits import decode_commit
from contextfs.integrity.fsck import Problem, verify_store
from contextfs.integrity.purge import (
    AlreadyPurgedError,
    NotAnAtomError,
    PurgeBlockedError,
    PurgeError,
    PurgeRecord,
    UnknownAtomError,
    compact_store,
    decode_purge_record,
    purge_atom,
    purged_atoms,
    read_purge_record,
)
from contextfs.model.ids import ObjectId, object_digest
from contextfs.model.objects import decode_atom
from contextfs.store import SqliteStore, Store
from contextfs.store.base import StoredObject
from contextfs.store.postgres import PostgresStore

from ..conftest import RepoBackend

SECRET = "zebra-secret-7319"
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds
WHEN = T0 + 42
OTHERS = ("User prefers concise answers", "Paris is the capital of France", "Tea at four")


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


def build(repo: Repository) -> tuple[bytes, list[bytes], list[ObjectId]]:
    """Put the secret in three commits on two branches; return its id, the others', the commits."""
    secret = bytes.fromhex(repo.add(f"The door code is {SECRET}", relevance=0.8, timestamp=T0))
    others = [bytes.fromhex(repo.add(text, timestamp=T0)) for text in OTHERS[:2]]
    commits = [repo.commit("remember the code", author="agent-1")]
    repo.create_branch("side")
    repo.update_entry(secret.hex(), relevance=0.9)
    commits.append(repo.commit("the code matters more", author="agent-1"))
    repo.switch("side")
    others.append(bytes.fromhex(repo.add(OTHERS[2], timestamp=T0)))
    commits.append(repo.commit("side work", author="agent-2"))
    repo.switch("main")
    return secret, others, commits


def traces(files: list[tuple[str, bytes]]) -> list[str]:
    """What of the secret survives in these files: the text or a token, in any case."""
    found = []
    for name, data in files:
        folded = data.lower()
        for word in (SECRET, "zebra", "secret"):
            if word.encode() in folded:
                found.append(f"{name}: {word}")
        # The digits may occur inside an id spelled in hex (refs hold those), never elsewhere.
        for hit in re.finditer(rb"7319", folded):
            run = re.search(
                rb"[0-9a-f]*7319[0-9a-f]*",
                folded[max(0, hit.start() - 64) : hit.end() + 64],
            )
            if run is None or len(run.group()) < 64:
                found.append(f"{name}: 7319")
    return found


def files_of(store: Store) -> list[tuple[str, bytes]]:
    """The names and bytes of the files a database store keeps its data in.

    SQLite: the database, its write-ahead log and shared-memory index. PostgreSQL:
    every relation of the store's schema (tables, their TOAST tables, indexes),
    read after a ``CHECKPOINT`` wrote every dirty page out. The server's own
    write-ahead log is not among them: :meth:`PostgresStore.compact` rewrites
    the store's tables, and WAL segments keep the text until the server
    recycles them.
    """
    if isinstance(store, SqliteStore):
        paths = [store.path, Path(f"{store.path}-wal"), Path(f"{store.path}-shm")]
        return [(path.name, path.read_bytes()) for path in paths if path.exists()]
    assert isinstance(store, PostgresStore)
    with psycopg.connect(store.url, autocommit=True) as pg:
        try:
            pg.execute("CHECKPOINT")
            rows = pg.execute(RELATION_FILES).fetchall()
        except (
            psycopg.errors.InsufficientPrivilege
        ) as exc:  # a server of CONTEXTFS_TEST_POSTGRES_URL
            pytest.skip(f"reading PostgreSQL's files needs a superuser: {exc}")
    return [(name, bytes(data)) for name, data in rows]


#: Each relation of the current schema, with its TOAST table and the TOAST
#: table's index, and the bytes of its main file.
RELATION_FILES = """
WITH mine AS (
    SELECT oid, reltoastrelid FROM pg_class WHERE relnamespace = current_schema()::regnamespace
), relations AS (
    SELECT oid FROM mine
    UNION SELECT reltoastrelid FROM mine WHERE reltoastrelid <> 0
    UNION SELECT indexrelid FROM pg_index
        WHERE indrelid IN (SELECT reltoastrelid FROM mine WHERE reltoastrelid <> 0)
)
SELECT oid::regclass::text, pg_read_binary_file(pg_relation_filepath(oid))
FROM relations WHERE pg_relation_filepath(oid) IS NOT NULL ORDER BY 1
"""


def fts_terms(path: Path) -> set[str]:
    """Every term FTS5's inverted index still holds, read through fts5vocab."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, search_fts, row)")
        return {row[0] for row in conn.execute("SELECT term FROM temp.vocab")}
    finally:
        conn.close()


@pytest.fixture
def repo(repo_backend: RepoBackend) -> Iterator[Repository]:
    with repo_backend.repository() as opened:
        yield opened


@pytest.fixture
def db_repo(db_backend: RepoBackend) -> Iterator[Repository]:
    """A repository in SQLite or PostgreSQL: stores that compact, with rows SQL can reach."""
    with db_backend.repository() as opened:
        yield opened


# -- the text is gone, the history still verifies --------------------------------------------


def test_purge_leaves_no_trace_of_the_text_in_the_store_files(db_repo: Repository) -> None:
    repo = db_repo
    store = repo.store
    secret, others, commits = build(repo)
    assert [hit.atom.digest for hit in repo.search("zebra", retrieval="lexical")] == [secret]
    searches = {
        query: [h.atom.digest for h in repo.search(query, retrieval="lexical")]
        for query in ("concise", "paris")
    }
    assert traces(files_of(store))  # the text is there before the purge
    head, before = repo.head(), verify_store(store)
    roots = {c: repo.load_commit(bytes.fromhex(c)).tree for c in commits}
    assert before.ok

    record = purge_atom(
        store,
        secret,
        index=search_index_for(store),
        author="dpo@example.com",
        reason="user request",
        when=WHEN,
    )

    assert traces(files_of(store)) == []
    if isinstance(store, SqliteStore):
        # FTS5 packs its inverted index, so a term need not show as plain bytes;
        # PostgreSQL's search tables hold terms as text, which traces() reads.
        assert {"zebra", "secret", "7319"} & fts_terms(store.path) == set()
    report = verify_store(store)
    assert report.problems == ()
    assert report.purged == (secret.hex(),)
    assert report.counts == {**before.counts, "purge": 1}
    assert repo.head() == head
    for commit_id in commits:  # every commit and its root are the same bytes as before
        stored_commit = store.get_object(bytes.fromhex(commit_id))
        assert stored_commit is not None
        assert object_digest("commit", stored_commit.data).hex() == commit_id
        assert decode_commit(stored_commit.data).tree == roots[commit_id]
    assert repo.search("zebra", retrieval="lexical") == []
    assert {
        q: [h.atom.digest for h in repo.search(q, retrieval="lexical")] for q in searches
    } == searches
    for oid, text in zip(others, OTHERS, strict=True):
        stored = store.get_object(oid)
        assert stored is not None
        assert decode_atom(stored.data)[1] == text
    assert record == PurgeRecord(
        atom_id=secret, author="dpo@example.com", reason="user request", when=WHEN
    )
    repo.close()
    assert traces(files_of(store)) == []


def test_the_purge_is_recorded_who_when_which(repo: Repository) -> None:
    secret, _, _ = build(repo)
    store = repo.store
    assert read_purge_record(store, secret) is None
    record = purge_atom(
        store, secret, index=search_index_for(store), author="dpo", reason="GDPR art. 17", when=WHEN
    )
    assert read_purge_record(store, secret) == record
    assert purged_atoms(store) == {secret: record}
    assert store.read_ref(f"refs/purges/{secret.hex()}") == record.id
    assert store.get_object(record.digest) == StoredObject("purge", record.encode())
    assert decode_purge_record(record.encode()) == record
    assert store.get_object(secret) == StoredObject("atom", b"")


def test_a_purge_record_id_is_sha256_of_its_canonical_body() -> None:
    record = PurgeRecord(atom_id=bytes(range(32)), author="a", reason="", when=1)
    body = bytes.fromhex("94c420" + bytes(range(32)).hex() + "a161a001")
    assert record.encode() == body
    assert record.digest == hashlib.sha256(b"purge\x00" + body).digest()


def test_an_atom_not_yet_indexed_is_purged_from_the_pending_queue(repo: Repository) -> None:
    secret, others, _ = build(repo)  # deferred for indexing, never searched
    purge_atom(
        repo.store,
        secret,
        index=search_index_for(repo.store),
        author="dpo",
        reason="asked",
        when=WHEN,
    )
    assert repo.search("zebra", retrieval="lexical") == []
    assert [h.atom.digest for h in repo.search("tea", revision="side", retrieval="lexical")] == [
        others[2]
    ]
    assert verify_store(repo.store).ok


# -- what cannot be purged -------------------------------------------------------------------


def test_purging_again_raises_and_changes_nothing(repo: Repository) -> None:
    secret, _, _ = build(repo)
    record = purge_atom(
        repo.store,
        secret,
        index=search_index_for(repo.store),
        author="dpo",
        reason="asked",
        when=WHEN,
    )
    with pytest.raises(AlreadyPurgedError, match=exactly(f"atom {secret.hex()} is already purged")):
        purge_atom(
            repo.store,
            secret,
            index=search_index_for(repo.store),
            author="someone",
            reason="again",
            when=WHEN + 1,
        )
    assert purged_atoms(repo.store) == {secret: record}
    assert AlreadyPurgedError.exit_code == 7


def test_purging_an_unknown_id_or_a_non_atom_raises(repo: Repository) -> None:
    _, _, commits = build(repo)
    missing = bytes(32)
    with pytest.raises(UnknownAtomError, match=exactly(f"no atom {missing.hex()} to purge")):
        purge_atom(
            repo.store,
            missing,
            index=search_index_for(repo.store),
            author="dpo",
            reason="",
            when=WHEN,
        )
    commit = bytes.fromhex(commits[0])
    with pytest.raises(NotAnAtomError, match=exactly(f"{commits[0]} is a commit, not an atom")):
        purge_atom(
            repo.store,
            commit,
            index=search_index_for(repo.store),
            author="dpo",
            reason="",
            when=WHEN,
        )
    assert purged_atoms(repo.store) == {}
    assert issubclass(UnknownAtomError, PurgeError)


@pytest.mark.parametrize(
    ("author", "when", "message"),
    [
        ("", WHEN, "author must be non-empty single-line text, got ''"),
        ("two\nlines", WHEN, "author must be non-empty single-line text, got 'two\\nlines'"),
        ("dpo", True, "purge time must be an integer of microseconds, got True"),
        ("dpo", 2**63, f"purge time must be an integer of microseconds, got {2**63}"),
    ],
)
def test_bad_purge_arguments_are_refused(
    repo: Repository, author: str, when: int, message: str
) -> None:
    secret, _, _ = build(repo)
    with pytest.raises(InvalidInputError, match=exactly(message)):
        purge_atom(
            repo.store,
            secret,
            index=search_index_for(repo.store),
            author=author,
            reason="",
            when=when,
        )
    assert purged_atoms(repo.store) == {}


def test_purge_with_compaction_inside_a_transaction_is_refused(db_repo: Repository) -> None:
    repo = db_repo
    secret, _, _ = build(repo)
    store = repo.store
    with store.transaction(), pytest.raises(PurgeError, match="inside a transaction"):
        purge_atom(store, secret, index=search_index_for(store), author="dpo", reason="", when=WHEN)
    with store.transaction():
        purge_atom(
            store,
            secret,
            index=search_index_for(store),
            author="dpo",
            reason="",
            when=WHEN,
            compact=False,
        )
    compact_store(store)
    assert verify_store(store).purged == (secret.hex(),)
    assert traces(files_of(store)) == []


def test_compacting_inside_a_transaction_is_refused(db_repo: Repository) -> None:
    store = db_repo.store
    assert isinstance(store, SqliteStore | PostgresStore)
    with (
        store.transaction(),
        pytest.raises(StoreError, match="cannot compact inside a transaction"),
    ):
        store.compact()


# -- verify sees a purge that was tampered with ------------------------------------------------


def overwrite_object(store: Store, oid: bytes, data: bytes) -> None:
    """Set an object's bytes behind the store's back, through its own connection."""
    if isinstance(store, SqliteStore):
        with store.connection(write=True) as conn:
            conn.execute("UPDATE objects SET data = ? WHERE id = ?", (data, oid))
        return
    assert isinstance(store, PostgresStore)
    with store.connection(write=True) as pg:
        pg.execute("UPDATE objects SET data = %s WHERE id = %s", (data, oid))


def test_verify_names_a_missing_purge_ref_and_content_that_came_back(db_repo: Repository) -> None:
    secret, _, _ = build(db_repo)
    store = db_repo.store
    original = store.get_object(secret)
    assert original is not None
    record = purge_atom(
        store, secret, index=search_index_for(store), author="dpo", reason="", when=WHEN
    )
    name = f"refs/purges/{secret.hex()}"
    assert store.set_ref_if_equals(name, record.id, None)
    assert verify_store(store).problems == (
        Problem(
            "ref",
            record.id,
            name,
            f"ref {name} is missing (purge {record.id} records atom {secret.hex()})",
        ),
    )
    overwrite_object(store, secret, original.data)
    assert verify_store(store).problems == (
        Problem(
            "purge",
            record.id,
            None,
            f"purge {record.id} records the purge of atom {secret.hex()},"
            " which still holds its content",
        ),
    )
    with pytest.raises(CorruptObjectError):
        decode_atom(b"")


# -- per backend ---------------------------------------------------------------------------------


def test_purge_in_memory_forgets_the_text_and_rolls_back_with_the_store() -> None:
    with Repository.memory() as repo:
        secret, _, _ = build(repo)
        store = repo.store
        assert [h.atom.digest for h in repo.search("zebra", retrieval="lexical")] == [secret]

        def purge_then_fail() -> None:
            with store.transaction():
                purge_atom(
                    store, secret, index=search_index_for(store), author="dpo", reason="", when=WHEN
                )
                assert store.get_object(secret) == StoredObject("atom", b"")
                assert repo.search("zebra", retrieval="lexical") == []
                raise RuntimeError("roll back")

        with pytest.raises(RuntimeError, match="roll back"):
            purge_then_fail()
        assert [h.atom.digest for h in repo.search("zebra", retrieval="lexical")] == [secret]
        assert purged_atoms(store) == {}
        record = purge_atom(
            store, secret, index=search_index_for(store), author="dpo", reason="", when=WHEN
        )
        assert repo.search("zebra", retrieval="lexical") == []
        assert search_index_for(store).count() == 3
        report = verify_store(store)
        assert report.ok
        assert report.purged == (secret.hex(),)
        assert read_purge_record(store, secret) == record


def test_erase_object_empties_the_bytes_and_keeps_the_kind(repo_backend: RepoBackend) -> None:
    store = repo_backend.store()
    oid = bytes(range(32))
    store.put_objects([(oid, "tree", b"node bytes")])

    def erase_then_fail() -> None:
        with store.transaction():
            assert store.erase_object(oid)
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError, match="roll back"):
        erase_then_fail()
    assert store.get_object(oid) == StoredObject("tree", b"node bytes")
    assert store.erase_object(oid)
    assert store.get_object(oid) == StoredObject("tree", b"")
    assert not store.erase_object(bytes(32))
    store.close()


def test_purge_is_refused_while_a_context_object_holds_a_copy(repo: Repository) -> None:
    text = f"The door code is {SECRET}"
    atom = MemoryAtom(text, TypeSignature("String"))
    context_id = ObjectContextStore(repo.store).put(CompressedContext(None, [atom]))
    message = (
        f"atom {atom.digest.hex()} cannot be purged: its content is also held by"
        f" context object(s) {context_id}"
    )
    with pytest.raises(PurgeBlockedError, match=exactly(message)):
        purge_atom(
            repo.store,
            atom.digest,
            index=search_index_for(repo.store),
            author="dpo",
            reason="",
            when=WHEN,
        )
    assert purged_atoms(repo.store) == {}
    stored = repo.store.get_object(atom.digest)
    assert stored is not None
    assert decode_atom(stored.data)[1] == text
