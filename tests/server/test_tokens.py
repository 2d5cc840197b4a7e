"""Scoped tokens on a live server: who gets in, what each scope may do, who writes are by."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from contextfs import MemoryAtom, Repository
from contextfs.client import Client
from contextfs.errors import InvalidInputError, PermissionDeniedError
from contextfs.integrity.purge import PurgeRecord, purge_ref
from contextfs.model.types import TypeSignature
from contextfs.oplog import add_atom_op, make_op_entry
from contextfs.remote import sync
from contextfs.server import Server
from contextfs.tokens import Gate, Scope, TokenStore, mint, revoke
from contextfs.wire import RemoteError

from .test_fuzz import Running

FACT = TypeSignature("Fact")


def make_token(repo: Repository, name: str, scope: Scope, **options: object) -> str:
    store = repo.store
    assert isinstance(store, TokenStore)
    secret, record = mint(name, scope, created_by="ops", **options)  # type: ignore[arg-type]
    store.add_token(record)
    return secret


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Repository]:
    repo = Repository.init(tmp_path / "served")
    repo.add("Deployments happen on Fridays", "Fact")
    repo.commit("first")
    yield repo
    repo.close()


@pytest.fixture
def server(served: Repository) -> Iterator[Server]:
    running = Running(served)
    yield running.server
    running.stop()


def test_once_the_store_has_a_token_nobody_gets_in_without_one(
    served: Repository, server: Server
) -> None:
    with Client(server.url) as client:
        client.ping()  # open: no token anywhere yet, and on loopback
    secret = make_token(served, "reader", Scope.READ)
    for presented in (None, "cfs_not-a-token", secret[:-1], "wrong"):
        with Client(server.url, token=presented) as client, pytest.raises(RemoteError) as caught:
            client.ping()
        assert "bad or missing token" in str(caught.value)
    with Client(server.url, token=secret) as client:
        client.ping()
        assert [e.message for e in client.log()] == ["first"]


def test_revoking_the_last_token_does_not_open_the_server(
    served: Repository, server: Server
) -> None:
    secret = make_token(served, "only", Scope.ADMIN)
    with Client(server.url, token=secret) as client:
        client.ping()
    store = served.store
    assert isinstance(store, TokenStore)
    revoke(store, "only")
    for presented in (secret, None):
        with Client(server.url, token=presented) as client, pytest.raises(RemoteError):
            client.ping()


def test_an_expired_token_is_refused(served: Repository, server: Server) -> None:
    make_token(served, "live", Scope.READ)
    expired = make_token(served, "old", Scope.READ, now=1, expires=2)
    with Client(server.url, token=expired) as client, pytest.raises(RemoteError):
        client.ping()


def test_the_shared_token_still_admits_with_full_rights(served: Repository) -> None:
    make_token(served, "reader", Scope.READ)
    running = Running(served, token="shared-secret")
    try:
        with Client(running.server.url, token="shared-secret") as client:
            commit = client.push([MemoryAtom("via the shared token", FACT)], author="alice")
        assert served.store.read_ref("refs/heads/main") == commit
        assert next(served.log()).commit.author == "alice"  # the client names itself
    finally:
        running.stop()


def test_a_read_token_reads_but_cannot_push_commit_or_append(
    served: Repository, server: Server, tmp_path: Path
) -> None:
    secret = make_token(served, "reader", Scope.READ)
    clone = sync.clone(server.url, tmp_path / "copy", token=secret)
    try:
        clone.add("A change the reader wants to push", "Fact")
        clone.commit("second")
        with pytest.raises(PermissionDeniedError, match="'reader' is read-only: it cannot push"):
            sync.push(clone, token=secret)
    finally:
        clone.close()
    with Client(server.url, token=secret) as client:
        with pytest.raises(PermissionDeniedError, match="cannot commit"):
            client.push([MemoryAtom("nope", FACT)])
        op = make_op_entry("reader", "context", add_atom_op("nope", "Fact"), 1)
        with pytest.raises(PermissionDeniedError, match="cannot append ops"):
            client.oplog_append("s1", [op])
        assert [e.message for e in client.log()] == ["first"]  # reads go on
    assert [c.commit.message for c in served.log()] == ["first"]


def test_a_branch_limited_token_moves_its_branches_only(
    served: Repository, server: Server, tmp_path: Path
) -> None:
    secret = make_token(served, "agent-7", Scope.WRITE, branches="agents/*")
    clone = sync.clone(server.url, tmp_path / "copy", token=secret)
    try:
        clone.add("Learnt by agent 7", "Fact")
        clone.commit("agent work")
        with pytest.raises(PermissionDeniedError, match="matching 'agents/\\*', not 'main'"):
            sync.push(clone, token=secret)
        clone.create_branch("agents/seven")
        pushed = sync.push(clone, branch="agents/seven", token=secret)
        assert [u.name for u in pushed.updated] == ["refs/heads/agents/seven"]
    finally:
        clone.close()
    assert served.store.read_ref("refs/heads/agents/seven") is not None
    assert [c.commit.message for c in served.log()] == ["first"]
    with (  # the served HEAD is on main
        Client(server.url, token=secret) as client,
        pytest.raises(PermissionDeniedError, match="not 'main'"),
    ):
        client.push([MemoryAtom("straight onto main", FACT)])


def test_forcing_and_deleting_need_admin(
    served: Repository, server: Server, tmp_path: Path
) -> None:
    writer = make_token(served, "writer", Scope.WRITE)
    admin = make_token(served, "admin", Scope.ADMIN)
    clone = sync.clone(server.url, tmp_path / "copy", token=writer)
    try:
        served.add("Moved on meanwhile", "Fact")
        served.commit("server side")
        clone.add("Diverged", "Fact")
        clone.commit("clone side")
        with pytest.raises(PermissionDeniedError, match="write-only: it cannot force a push"):
            sync.push(clone, force=True, token=writer)
        forced = sync.push(clone, force=True, token=admin)
        assert forced.updated
    finally:
        clone.close()
    assert [c.commit.message for c in served.log()] == ["clone side", "first"]


def test_writes_are_recorded_as_the_token_name(served: Repository, server: Server) -> None:
    secret = make_token(served, "ci-bot", Scope.WRITE)
    with Client(server.url, token=secret) as client:
        client.push([MemoryAtom("Pushed by the bot", FACT)], author="someone-else")
        first = make_op_entry("pretender", "context", add_atom_op("Op by the bot", "Fact"), 1)
        second = make_op_entry(
            "pretender",
            "context",
            add_atom_op("Another", "Fact"),
            2,
            parent_op_ids=[first["op_id"]],
        )
        stored = client.oplog_append("s1", [first, second])
    assert next(served.log()).commit.author == "ci-bot"
    ops = served.oplog("s1").read_all()
    assert [op["actor_id"] for op in ops] == ["ci-bot", "ci-bot"]
    assert ops[1]["parent_op_ids"] == [ops[0]["op_id"]]  # the batch's own link follows
    assert [s["op_id"] for s in stored] == [op["op_id"] for op in ops]


def test_the_store_keeps_no_secret(served: Repository, tmp_path: Path) -> None:
    secret = make_token(served, "reader", Scope.READ)
    path = served.path
    assert path is not None
    for file in Path(path).rglob("*"):
        if file.is_file():
            assert secret.encode() not in file.read_bytes(), file
    with sqlite3.connect(Path(path) / "store.db") as db:
        (kept,) = db.execute("SELECT digest FROM tokens").fetchone()
    assert kept != secret
    assert len(kept) == 64


def test_gate_rules() -> None:
    class Store:
        def __init__(self) -> None:
            self.records: list[object] = []

        def add_token(self, record: object) -> None:
            self.records.append(record)

        def list_tokens(self) -> list[object]:
            return self.records

        def find_token(self, digest: str) -> object:
            return next((r for r in self.records if r.digest == digest), None)  # type: ignore[attr-defined]

        def revoke_token(self, name: str, at: int) -> bool:
            return False

    store = Store()
    gate = Gate(store)
    assert not gate.closed()
    assert gate.admit(None) is not None
    secret, record = mint("x", Scope.READ, created_by="t")
    store.add_token(record)
    assert gate.closed()
    grant = gate.admit(secret)
    assert grant is not None
    assert (grant.name, grant.scope) == ("x", Scope.READ)
    assert gate.admit(None) is None
    store.records.clear()
    assert gate.closed()  # closed for good


def test_bad_names_globs_and_expiries_are_refused() -> None:
    for name in ("", "-x", "a b", "x" * 65, "é"):
        with pytest.raises(InvalidInputError, match="token name"):
            mint(name, Scope.READ, created_by="t")
    with pytest.raises(InvalidInputError, match="branch glob"):
        mint("x", Scope.READ, created_by="t", branches="a b")
    with pytest.raises(InvalidInputError, match="in the future"):
        mint("x", Scope.READ, created_by="t", expires=5, now=10)


def test_only_an_admin_token_may_push_purge_records(
    served: Repository, server: Server, tmp_path: Path
) -> None:
    """A review found a write token could plant a purge record and break every clone.

    A write token's purge records are left aside (the text stays, every clone
    works); an admin's erase the text on the server, as the purge did elsewhere.
    """
    writer = make_token(served, "agent", Scope.WRITE, branches="agents/*")
    admin = make_token(served, "ops", Scope.ADMIN)
    (memory,) = served.snapshot()
    atom = memory.digest  # type: ignore[union-attr]
    record = PurgeRecord(atom_id=atom, author="agent", reason="x", when=1)
    rows = [(atom.hex(), "atom", b""), (record.id, "purge", record.encode())]
    with Client(server.url, token=writer) as client:
        client.upload(rows)
        done = client.update_refs([])
    assert done["ignored_purges"] == 1
    assert done["purged"] == []
    assert served.store.read_ref(purge_ref(atom)) is None
    assert served.get(atom.hex()).content == "Deployments happen on Fridays"  # type: ignore[union-attr]
    with sync.clone(server.url, tmp_path / "copy", token=admin) as copy:
        assert copy.verify().ok
    with Client(server.url, token=admin) as client:
        client.upload(rows)
        done = client.update_refs([])
    assert done["purged"] == [atom.hex()]
    assert served.is_purged(atom.hex())
    assert served.verify().ok
