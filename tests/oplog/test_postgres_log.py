"""The PostgreSQL op log: many machines on one live session, crystallising, crashes.

Each "machine" is a process or a store of its own (one connection each).
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from contextfs.errors import NothingToDoError, StoreError
from contextfs.history.tree import EMPTY_TREE_ID
from contextfs.model.ids import from_hex
from contextfs.model.objects import MemoryAtom
from contextfs.model.types import TypeSignature
from contextfs.oplog import (
    Cut,
    OpEntry,
    add_atom_op,
    make_op_entry,
    merge_key,
    remove_atom_op,
    set_fields_op,
)
from contextfs.oplog.base import OpLogBackend
from contextfs.oplog.context_ops import collapse
from contextfs.oplog.crystallise import OplogCommit, oplog_ref
from contextfs.oplog.entry import check_entry, decode_json, encode_line
from contextfs.oplog.postgres_log import PostgresOpLog
from contextfs.repo import Repository
from contextfs.store.postgres import PostgresStore

T0 = 1_760_000_000_000_000


@pytest.fixture
def url(postgres_url: str) -> str:
    return postgres_url


@pytest.fixture
def repo(url: str) -> Iterator[Repository]:
    repo = Repository.create(PostgresStore.open(url, create=True))
    yield repo
    repo.close()


def open_repo(url: str) -> Repository:
    """Another machine's view of the repository: a store (connection) of its own."""
    return Repository(PostgresStore.open(url))


def key(text: str) -> str:
    return MemoryAtom(text, TypeSignature("Fact")).digest.hex()


def contents(repo: Repository) -> set[str]:
    return {m.content for m in repo.snapshot() if isinstance(m, MemoryAtom)}


def say(log: OpLogBackend, actor: str, operation: dict[str, object]) -> OpEntry:
    return log.append(make_op_entry(actor, "context", operation, log.next_lamport_ts()))


def fact(text: str) -> dict[str, object]:
    return add_atom_op(text, "Fact", timestamp=T0)


def spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def commit_lock_is_free(url: str, session: str) -> bool:
    """Whether another machine takes the session's commit lock within seconds."""
    with PostgresStore.open(url) as store:
        log = PostgresOpLog(store, session)

        def take() -> None:
            with log.commit_lock():
                pass

        thread = threading.Thread(target=take)
        thread.start()
        thread.join(5)
        return not thread.is_alive()


def stored_rows(url: str, session: str) -> list[tuple[int, bytes, int, int, bytes]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT seq, op_id, lamport_ts, end_bytes, line FROM oplog_ops"
            " WHERE session = %s ORDER BY seq",
            (session,),
        ).fetchall()
    return [(s, bytes(i), t, e, bytes(line)) for s, i, t, e, line in rows]


# -- many machines appending to one session ---------------------------------------------

WRITERS = 4
APPENDS = 300

WRITER = textwrap.dedent(
    """
    import sys
    from contextfs.oplog import add_atom_op, make_op_entry
    from contextfs.oplog.postgres_log import PostgresOpLog
    from contextfs.store.postgres import PostgresStore
    url, actor, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with PostgresStore.open(url) as store:
        log = PostgresOpLog(store, "shared")
        for i in range(count):
            op = add_atom_op(f"{actor} note {i}", timestamp=1_700_000_000_000_000 + i)
            log.append(make_op_entry(actor, "context", op, log.next_lamport_ts()))
    """
)


def test_four_processes_append_to_one_session(url: str) -> None:
    PostgresStore.open(url, create=True).close()
    writers = [spawn(WRITER, url, f"w{n}", str(APPENDS)) for n in range(WRITERS)]
    for writer in writers:
        _, err = writer.communicate(timeout=600)
        assert writer.returncode == 0, err
    rows = stored_rows(url, "shared")
    assert [row[0] for row in rows] == list(range(1, WRITERS * APPENDS + 1))
    entries = [check_entry(decode_json(row[4]), verify_id=True) for row in rows]
    assert len({e["op_id"] for e in entries}) == len(entries)
    assert [row[1].hex() for row in rows] == [e["op_id"] for e in entries]
    stamps = [e["lamport_ts"] for e in entries]
    assert all(a < b for a, b in itertools.pairwise(stamps)), "stamps not increasing"
    assert [row[2] for row in rows] == stamps
    assert [row[3] for row in rows] == list(
        itertools.accumulate(len(encode_line(e)) for e in entries)
    )
    for n in range(WRITERS):
        texts = [e["domain_op"]["content"] for e in entries if e["actor_id"] == f"w{n}"]
        assert texts == [f"w{n} note {i}" for i in range(APPENDS)]
    with PostgresStore.open(url) as store:
        report = PostgresOpLog(store, "shared").verify()
    assert report.ok, report.problems
    assert report.ops == WRITERS * APPENDS


ACKING_WRITER = textwrap.dedent(
    """
    import sys
    from contextfs.oplog import add_atom_op, make_op_entry
    from contextfs.oplog.postgres_log import PostgresOpLog
    from contextfs.store.postgres import PostgresStore
    log = PostgresOpLog(PostgresStore.open(sys.argv[1]), "crash")
    i = 0
    while True:
        batch = []
        for _ in range(200):  # big transactions, so a kill can land inside one
            text = f"note {i} " + "padding " * 60
            batch.append(make_op_entry("w", "context", add_atom_op(text), 1))
            i += 1
        for entry in log.append_many(batch):
            print(entry["op_id"], flush=True)
    """
)


def test_sigkill_mid_append_loses_no_acknowledged_op(url: str) -> None:
    PostgresStore.open(url, create=True).close()
    acknowledged: set[str] = set()
    for round_number in range(3):
        writer = spawn(ACKING_WRITER, url)
        assert writer.stdout is not None
        wanted = 400 * (round_number + 1)
        while len(acknowledged) < wanted:
            line = writer.stdout.readline()
            assert line, writer.stderr.read() if writer.stderr else ""
            acknowledged.add(line.strip())
        os.kill(writer.pid, signal.SIGKILL)
        rest, _ = writer.communicate()
        acknowledged.update(rest.split())  # printed before the kill landed
        with PostgresStore.open(url) as store:
            log = PostgresOpLog(store, "crash")
            stored = [e["op_id"] for e in log.read_all()]
            assert acknowledged <= set(stored)
            assert len(stored) % 200 == 0  # whole transactions only
            report = log.verify()
            assert report.ok, report.problems
            assert log.repairs == []


def test_held_ops_wait_in_the_database_for_every_machine(url: str) -> None:
    with PostgresStore.open(url, create=True) as one, PostgresStore.open(url) as two:
        elsewhere = PostgresOpLog(one, "elsewhere")
        parent = say(elsewhere, "bob", fact("parent"))
        child = elsewhere.append(
            make_op_entry(
                "bob",
                "context",
                fact("child"),
                elsewhere.next_lamport_ts(),
                parent_op_ids=[parent["op_id"]],
            )
        )
        here, there = PostgresOpLog(one, "s"), PostgresOpLog(two, "s")
        assert here.receive([child]).held == (child,)
        assert there.receive([]).held == (child,)  # another machine sees it held
        result = there.receive([parent])
        assert result.added == (parent, child)
        assert result.held == ()
        assert here.read_all() == [parent, child]
        assert here.receive([]).held == ()


def test_commit_lock_excludes_threads_sharing_one_store(url: str) -> None:
    with PostgresStore.open(url, create=True) as store:
        one, two = PostgresOpLog(store, "s"), PostgresOpLog(store, "s")
        inside: list[int] = []
        overlap: list[bool] = []

        def work(log: PostgresOpLog) -> None:
            for _ in range(20):
                with log.commit_lock():
                    inside.append(1)
                    overlap.append(len(inside) > 1)
                    inside.pop()

        threads = [threading.Thread(target=work, args=(log,)) for log in (one, two)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(overlap) == 40
        assert not any(overlap)
        with one.commit_lock(), two.commit_lock():  # re-entrant in one thread
            pass


# -- a repository in PostgreSQL ---------------------------------------------------------


def test_a_repository_in_postgres_crystallises_its_sessions(repo: Repository) -> None:
    log = repo.oplog("s")
    assert isinstance(log, PostgresOpLog)
    rng = random.Random(5)
    texts: list[str] = []
    commits: list[OplogCommit] = []
    for round_number in range(4):
        for i in range(12):
            choice = rng.random()
            if texts and choice < 0.2:
                say(log, "b", remove_atom_op(key(texts.pop(rng.randrange(len(texts))))))
            elif texts and choice < 0.5:
                target = key(rng.choice(texts))
                say(log, "c", set_fields_op(target, relevance=round(rng.random(), 3)))
            else:
                texts.append(f"round {round_number} fact {i}")
                say(log, rng.choice(["a", "b"]), fact(texts[-1]))
        commits.append(repo.commit_oplog("s"))
        assert contents(repo) == set(texts)
    assert repo.oplog_sessions() == ["s"]
    assert repo.store.read_ref(oplog_ref("s")) == commits[-1].commit
    assert not any(c.recovered for c in commits)
    info, _ = repo.show()
    assert info.id == commits[-1].commit
    assert info.commit.metadata["oplog"]["session"] == "s"
    checkpoints = log.checkpoints()
    assert [c["commit"] for c in checkpoints] == [c.commit for c in commits]
    previous_tree, start = EMPTY_TREE_ID, Cut(0, 0)
    for checkpoint in checkpoints:
        end = Cut(checkpoint["op_count"], checkpoint["log_bytes"])
        ops = sorted(log.read_range(start, end), key=merge_key)

        def current(keys: list[bytes], tree: bytes = previous_tree) -> dict[bytes, bytes]:
            return repo.trees.get_many(tree, keys)

        tree = repo.trees.update(previous_tree, collapse(ops, current).changes)
        assert tree.hex() == checkpoint["snapshot_id"]
        assert checkpoint["commit"] is not None
        assert repo.load_commit(from_hex(checkpoint["commit"])).tree == tree
        previous_tree, start = tree, end
    with pytest.raises(NothingToDoError):
        repo.commit_oplog("s")
    assert repo.verify().ok
    assert log.verify().ok


def test_a_checkpoint_that_cannot_be_written_takes_its_commit_with_it(
    repo: Repository, url: str
) -> None:
    """The commit, the refs and the checkpoint are one transaction on PostgreSQL."""
    log = repo.oplog("s")
    say(log, "a", fact("kept"))
    first = repo.commit_oplog("s")
    say(log, "a", fact("pending"))
    store = repo.store
    assert isinstance(store, PostgresStore)
    with psycopg.connect(url) as blocker:  # holds the session's row lock
        blocker.execute("SELECT 1 FROM oplog_sessions WHERE session = 's' FOR UPDATE")
        with store.connection() as conn:
            conn.execute("SET lock_timeout = '300ms'")
        with pytest.raises(StoreError, match="lock timeout"):
            repo.commit_oplog("s")
        blocker.rollback()
    with store.connection() as conn:
        conn.execute("RESET lock_timeout")
    assert commit_lock_is_free(url, "s")  # the failed crystalliser let go
    assert repo.head() == first.commit
    assert repo.store.read_ref(oplog_ref("s")) == first.commit
    assert [c["commit"] for c in log.checkpoints()] == [first.commit]
    second = repo.commit_oplog("s")
    assert not second.recovered
    assert second.ops == 1
    assert contents(repo) == {"kept", "pending"}


def test_two_machines_crystallising_at_once_commit_each_op_once(repo: Repository, url: str) -> None:
    total = 120
    written = threading.Event()
    results: list[OplogCommit] = []
    errors: list[BaseException] = []

    def writer() -> None:
        with PostgresStore.open(url) as store:
            log = PostgresOpLog(store, "live")
            for i in range(0, total, 3):
                log.append_many(
                    [
                        make_op_entry("w", "context", fact(f"fact {n}"), log.next_lamport_ts())
                        for n in range(i, i + 3)
                    ]
                )
        written.set()

    def crystalliser() -> None:
        machine = open_repo(url)
        try:
            while True:
                done = written.is_set()
                try:
                    results.append(machine.commit_oplog("live"))
                except NothingToDoError:
                    if done:
                        return
                    time.sleep(0.005)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            machine.close()

    threads = [threading.Thread(target=writer)]
    threads += [threading.Thread(target=crystalliser) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert errors == []
    assert sum(r.ops for r in results) == total
    assert len({r.commit for r in results}) == len(results)
    log = repo.oplog("live")
    checkpoints = log.checkpoints()
    assert [c["commit"] for c in checkpoints] == [r.commit for r in results]
    counts = [c["op_count"] for c in checkpoints]
    assert all(a < b for a, b in itertools.pairwise(counts))
    assert counts[-1] == total
    assert commit_lock_is_free(url, "live")
    history = [info.id for info in repo.log(limit=len(results) + 1)]
    assert history[: len(results)] == [r.commit for r in reversed(results)]
    assert contents(repo) == {f"fact {n}" for n in range(total)}
    assert repo.verify().ok
    assert log.verify().ok


def test_revert_actor_on_postgres(repo: Repository) -> None:
    repo.add("The user lives in Lisbon", "Fact")
    repo.add("The user prefers tea", "Fact")
    repo.commit("what we knew", author="human")
    log = repo.oplog("run-1")
    say(log, "good-agent", fact("The user has a cat"))
    say(log, "bad-agent", fact("The user hates everything"))
    say(log, "bad-agent", remove_atom_op(key("The user lives in Lisbon")))
    repo.commit_oplog("run-1")
    say(log, "good-agent", fact("The user plays chess"))
    repo.commit_oplog("run-1")
    result = repo.revert_actor("bad-agent", author="operator")
    assert result.commit is not None
    assert not result.conflicts
    assert set(result.reverted) == {
        key("The user hates everything"),
        key("The user lives in Lisbon"),
    }
    assert contents(repo) == {
        "The user lives in Lisbon",
        "The user prefers tea",
        "The user has a cat",
        "The user plays chess",
    }
    assert repo.verify().ok


def test_the_core_imports_and_runs_without_psycopg() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["psycopg"] = None  # as if the optional extra were not installed
        from contextfs import Repository
        repo = Repository.memory()
        assert repo.oplog_sessions() == []
        assert "contextfs.store.postgres" not in sys.modules
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
