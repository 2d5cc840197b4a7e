"""SqliteStore behaviour beyond the shared contract: processes, crashes, files, SQL plans."""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import sqlite3
import time
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from contextfs.errors import InvalidInputError, StoreError
from contextfs.store import SqliteStore
from contextfs.store.sqlite import MIGRATIONS, id_range
from contextfs.testing.store_contract import (
    COUNTER,
    counter_value,
    increment,
    make_id,
    make_objects,
)

SPAWN = multiprocessing.get_context("spawn")


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "store.db"
    SqliteStore.open(path, create=True).close()
    return path


# -- worker processes (module level so that spawn can import them) -------------


def increment_in_process(path: str, times: int) -> None:
    with SqliteStore.open(path) as store:
        increment(store, times)


def die_inside_a_transaction(path: str, ready: Connection) -> None:
    store = SqliteStore.open(path)
    store.put_objects(make_objects(3, tag="committed"))
    assert store.set_ref_if_equals("refs/heads/main", None, counter_value(1))
    with store.transaction():
        # Big enough to overflow the page cache, so uncommitted pages reach the WAL
        # (and random, so compression cannot shrink it).
        store.put_objects((make_id(f"lost{i}"), "atom", os.urandom(200)) for i in range(20_000))
        assert store.set_ref_if_equals("refs/heads/main", counter_value(1), counter_value(2))
        assert store.set_ref_if_equals("refs/heads/new", None, counter_value(3))
        ready.send("in transaction")
        time.sleep(120)  # the parent kills us here


# -- processes and crashes -------------------------------------------------------


def test_compare_and_swap_across_processes_loses_no_update(db: Path) -> None:
    with SqliteStore.open(db) as store:
        assert store.set_ref_if_equals(COUNTER, None, counter_value(0))
    workers = [SPAWN.Process(target=increment_in_process, args=(str(db), 25)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    with SqliteStore.open(db) as store:
        assert store.read_ref(COUNTER) == counter_value(100)


def test_sigkill_inside_a_transaction_keeps_only_committed_writes(db: Path) -> None:
    receiver, sender = SPAWN.Pipe(duplex=False)
    worker = SPAWN.Process(target=die_inside_a_transaction, args=(str(db), sender))
    worker.start()
    try:
        assert receiver.poll(timeout=120), "the worker never reached its transaction"
        assert receiver.recv() == "in transaction"
        assert Path(f"{db}-wal").stat().st_size > 1_000_000  # uncommitted pages spilled
    finally:
        os.kill(worker.pid or 0, signal.SIGKILL)
        worker.join(timeout=60)
    assert worker.exitcode == -signal.SIGKILL
    with SqliteStore.open(db) as store:
        assert list(store.iter_objects()) == sorted(make_objects(3, tag="committed"))
        assert store.list_refs() == {"refs/heads/main": counter_value(1)}
        store.put_objects(make_objects(1, tag="after"))  # and it still takes writes
        assert store.count_objects() == 4
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    raw.close()


# -- opening files ---------------------------------------------------------------


def test_opening_a_missing_path_without_create_fails_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(StoreError, match=exactly(f"no ContextFS store at {str(path)!r}")):
        SqliteStore.open(path)
    assert not path.exists()


def test_opening_in_a_missing_directory_fails(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "store.db"
    message = f"store {str(path)!r}: unable to open database file"
    with pytest.raises(StoreError, match=exactly(message)):
        SqliteStore.open(path, create=True)


def test_opening_a_file_that_is_not_a_database_fails(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are not the pages you are looking for\n" * 200)
    for create in (False, True):
        message = f"store {str(path)!r}: file is not a database"
        with pytest.raises(StoreError, match=exactly(message)):
            SqliteStore.open(path, create=create)


def test_opening_another_programs_database_fails(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE people (name TEXT)")
    raw.close()
    message = f"{str(path)!r} is not a ContextFS store"
    with pytest.raises(StoreError, match=exactly(message)):
        SqliteStore.open(path, create=True)
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(StoreError, match=exactly(f"{str(empty)!r} is not a ContextFS store")):
        SqliteStore.open(empty)


def test_a_store_from_a_newer_contextfs_is_refused(db: Path) -> None:
    with sqlite3.connect(db) as raw:
        raw.execute("INSERT INTO schema_migrations VALUES (999, 'future', '2100-01-01T00:00:00Z')")
    raw.close()
    message = (
        f"store {str(db)!r} has schema step 999, but this version of ContextFS"
        f" knows steps up to {MIGRATIONS[-1][0]}; upgrade ContextFS"
    )
    with pytest.raises(StoreError, match=exactly(message)):
        SqliteStore.open(db)


def test_schema_steps_and_settings_are_recorded(db: Path) -> None:
    SqliteStore.open(db).close()  # reopening applies nothing twice
    with sqlite3.connect(db) as raw:
        steps = raw.execute("SELECT step, name, applied_at FROM schema_migrations").fetchall()
        meta = raw.execute("SELECT key, value FROM meta").fetchall()
        mode = raw.execute("PRAGMA journal_mode").fetchone()
    raw.close()
    assert [(step, name) for step, name, _ in steps] == [(s, n) for s, n, _ in MIGRATIONS]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", at) for _, _, at in steps)
    assert meta == [("format", "1")]
    assert mode == ("wal",)


def test_a_damaged_file_gives_store_error(db: Path) -> None:
    with SqliteStore.open(db) as store:
        store.put_objects(make_objects(5000))
    with db.open("r+b") as f:
        f.seek(4096 * 3)
        f.write(os.urandom(4096 * 5))

    def read_everything() -> None:
        with SqliteStore.open(db) as store:
            list(store.iter_objects())

    message = f"store {str(db)!r}: database disk image is malformed"
    with pytest.raises(StoreError, match=exactly(message)):
        read_everything()


def test_a_lock_held_past_the_timeout_gives_store_error(db: Path) -> None:
    raw = sqlite3.connect(db, isolation_level=None)
    store = SqliteStore.open(db, busy_timeout=0.05)
    try:
        raw.execute("BEGIN IMMEDIATE")
        message = f"store {str(db)!r}: database is locked"
        with pytest.raises(StoreError, match=exactly(message)):
            store.put_objects(make_objects(1))
        with pytest.raises(StoreError, match=exactly(message)):
            store.set_ref_if_equals("HEAD", None, "ref: refs/heads/main")
        with pytest.raises(StoreError, match=exactly(message)), store.transaction():
            pass
        assert store.count_objects() == 0  # readers are not blocked in WAL mode
        raw.execute("ROLLBACK")
        store.put_objects(make_objects(1))
        assert store.count_objects() == 1
    finally:
        store.close()
        raw.close()


def test_text_sqlite_cannot_encode_is_invalid_input(db: Path) -> None:
    with SqliteStore.open(db) as store, pytest.raises(InvalidInputError):
        store.set_ref_if_equals("refs/heads/\udc80", None, counter_value(1))


def test_an_aborted_transaction_refuses_further_writes(db: Path) -> None:
    with SqliteStore.open(db) as store:
        conn = store._conn
        assert conn is not None

        def write_after_sqlite_rolled_back() -> None:
            with store.transaction():
                store.put_objects(make_objects(1, tag="lost"))
                conn.execute("ROLLBACK")  # what SQLite does itself on a full disk
                store.put_objects(make_objects(1, tag="also-lost"))

        message = f"store {str(db)!r}: the transaction was aborted"
        with pytest.raises(StoreError, match=exactly(message)):
            write_after_sqlite_rolled_back()
        assert store.count_objects() == 0


def test_path_and_repr(db: Path) -> None:
    with SqliteStore.open(str(db)) as store:
        assert store.path == db
        assert repr(store) == f"SqliteStore({str(db)!r})"


# -- queries ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "bounds"),
    [
        ("", (b"", None)),
        ("a", (b"\xa0", b"\xb0")),
        ("ab", (b"\xab", b"\xac")),
        ("abc", (b"\xab\xc0", b"\xab\xd0")),
        ("1ff", (b"\x1f\xf0", b"\x20")),
        ("f", (b"\xf0", None)),
        ("ff", (b"\xff", None)),
        ("f" * 64, (b"\xff" * 32, None)),
    ],
)
def test_id_range(prefix: str, bounds: tuple[bytes, bytes | None]) -> None:
    assert id_range(prefix) == bounds


@pytest.mark.parametrize("prefix", ["", "a", "ab", "abc", "f", "ffff", "0" * 64])
def test_find_ids_searches_the_primary_key_instead_of_scanning(db: Path, prefix: str) -> None:
    with SqliteStore.open(db) as store:
        store.put_objects(make_objects(100))
        conn = store._conn
        assert conn is not None
        executed: list[str] = []
        conn.set_trace_callback(executed.append)  # the statement as run, values inlined
        store.find_ids(prefix, 10)
        conn.set_trace_callback(None)
    (statement,) = executed
    with sqlite3.connect(db) as raw:
        plan = [row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {statement}")]
    raw.close()
    assert len(plan) == 1
    assert plan[0].startswith("SEARCH objects USING PRIMARY KEY (id>?")


def test_putting_100k_objects_in_one_call_is_fast(db: Path) -> None:
    objects = [(make_id(i), "atom", os.urandom(200)) for i in range(100_000)]
    with SqliteStore.open(db) as store:
        started = time.perf_counter()
        store.put_objects(objects)
        elapsed = time.perf_counter() - started
        assert store.count_objects() == 100_000
    assert elapsed < 3.0, f"put_objects took {elapsed:.2f}s"  # about 0.5 s on a dev VM
