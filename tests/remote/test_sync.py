"""clone, fetch, pull and push between two real stores on this machine (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from contextfs.errors import (
    ConcurrentUpdateError,
    CorruptObjectError,
    InvalidInputError,
    NonFastForwardError,
    RepositoryExistsError,
    UnknownRevisionError,
)
from contextfs.model import refs as refnames
from contextfs.model.ids import from_hex
from contextfs.remote import sync
from contextfs.remote.objects import ObjectRow, RefUpdate, offer, receive
from contextfs.remote.peers import open_peer, stored_rows
from contextfs.repo import Repository
from contextfs.store.postgres import PostgresStore


def grow(repo: Repository, commits: int, *, tag: str = "", per_commit: int = 3) -> None:
    """Add ``commits`` commits of ``per_commit`` memories each."""
    for n in range(commits):
        for m in range(per_commit):
            repo.add(f"{tag}memory {n}.{m}: the release train leaves on day {n * 7 + m}")
        repo.commit(f"{tag}commit {n}")


def history(repo: Repository, revision: str = "HEAD") -> list[str]:
    return [info.id for info in repo.log([revision])]


def snapshot_ids(repo: Repository, revision: str = "HEAD") -> set[str]:
    return {memory.digest.hex() for memory in repo.snapshot(revision)}


def state(repo: Repository) -> tuple[int, dict[str, str]]:
    """What a failed transfer must leave unchanged: the objects and every ref."""
    return repo.store.count_objects(), repo.store.list_refs()


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[Repository]:
    repo = Repository.init(tmp_path / "origin")
    grow(repo, 20)
    yield repo
    repo.close()


def test_clone_copies_history_and_verifies(origin: Repository, tmp_path: Path) -> None:
    with sync.clone(str(tmp_path / "origin"), tmp_path / "copy") as copy:
        assert copy.current_branch == "main"
        assert history(copy) == history(origin)
        assert snapshot_ids(copy) == snapshot_ids(origin)
        assert copy.store.read_ref("refs/remotes/origin/main") == origin.head()
        assert sync.remotes(copy) == {"origin": str(tmp_path / "origin")}
        assert copy.verify().ok
        found = [hit.atom.digest for hit in copy.search("release train day 37", limit=5)]
        assert found
        assert found == [hit.atom.digest for hit in origin.search("release train day 37", limit=5)]
        # Only what history reaches travels: not the trees staging left behind.
        assert copy.store.count_objects() < origin.store.count_objects()


def test_clone_into_a_repository_is_refused(origin: Repository, tmp_path: Path) -> None:
    Repository.init(tmp_path / "taken").close()
    with pytest.raises(RepositoryExistsError):
        sync.clone(str(tmp_path / "origin"), tmp_path / "taken")


def test_a_failed_clone_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no ContextFS repository"):
        sync.clone(str(tmp_path / "nowhere"), tmp_path / "copy")
    assert not (tmp_path / "copy").exists()
    (tmp_path / "existing").mkdir()
    (tmp_path / "existing" / "notes.txt").write_text("mine")
    with pytest.raises(Exception, match="no ContextFS repository"):
        sync.clone(str(tmp_path / "nowhere"), tmp_path / "existing")
    assert [p.name for p in (tmp_path / "existing").iterdir()] == ["notes.txt"]


def test_a_relative_path_remote_works_from_anywhere(
    origin: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with sync.clone("origin", tmp_path / "copy") as copy:
        assert sync.remotes(copy) == {"origin": str(tmp_path / "origin")}
        monkeypatch.chdir(tmp_path / "copy")
        grow(origin, 1, tag="later ")
        assert sync.fetch(copy, "origin").updated


def test_fetch_moves_only_what_changed(origin: Repository, tmp_path: Path) -> None:
    with sync.clone(str(tmp_path / "origin"), tmp_path / "copy") as copy:
        before = copy.store.count_objects()
        grow(origin, 10, tag="new ")
        result = sync.fetch(copy, "origin")
        assert [u.name for u in result.updated] == ["refs/remotes/origin/main"]
        # 10 commits of 3 memories: 30 atoms, 10 commits and the changed tree nodes.
        assert copy.store.count_objects() - before == result.objects
        assert 40 <= result.objects < 40 + 10 * 8
        assert result.bytes > 0  # the pack: compressed, tree nodes as deltas
        assert history(copy, "origin/main") == history(origin)
        assert copy.head() != origin.head()  # fetch never moves local branches
        again = sync.fetch(copy, "origin")
        assert again.updated == []
        assert again.objects == again.bytes == 0
        assert copy.verify().ok


def test_pull_fast_forwards_then_merges(origin: Repository, tmp_path: Path) -> None:
    with sync.clone(str(tmp_path / "origin"), tmp_path / "copy") as copy:
        grow(origin, 2, tag="theirs ")
        pulled = sync.pull(copy, "origin", author="tester")
        assert pulled.fast_forward
        assert copy.head() == origin.head()
        assert sync.pull(copy, "origin", author="tester").up_to_date
        grow(origin, 1, tag="upstream ")
        grow(copy, 1, tag="local ")
        merged = sync.pull(copy, "origin", author="tester")
        assert merged.merge is not None
        assert merged.merge.status == "merged"
        head = copy.load_commit(from_hex(copy.head() or ""))
        assert len(head.parents) == 2
        assert snapshot_ids(origin) <= snapshot_ids(copy)
        assert copy.verify().ok
        grow(copy, 1, tag="only here ")
        ahead = sync.pull(copy, "origin", author="tester")
        assert ahead.up_to_date
        assert not ahead.fast_forward


def test_push_fast_forwards_and_refuses_to_drop_commits(origin: Repository, tmp_path: Path) -> None:
    with sync.clone(str(tmp_path / "origin"), tmp_path / "copy") as copy:
        grow(copy, 3, tag="pushed ")
        result = sync.push(copy, "origin")
        assert [u.name for u in result.updated] == ["refs/heads/main"]
        assert origin.head() == copy.head()
        assert copy.store.read_ref("refs/remotes/origin/main") == copy.head()
        assert origin.verify().ok
        # Someone else pushes first: ours no longer contains the remote branch.
        grow(origin, 1, tag="elsewhere ")
        grow(copy, 1, tag="mine ")
        before = state(origin)
        with pytest.raises(NonFastForwardError, match="fetch and merge first"):
            sync.push(copy, "origin")
        assert state(origin) == before
        forced = sync.push(copy, "origin", force=True)
        assert forced.updated
        assert origin.head() == copy.head()


def test_push_of_a_new_branch_and_an_unknown_one(origin: Repository, tmp_path: Path) -> None:
    with sync.clone(str(tmp_path / "origin"), tmp_path / "copy") as copy:
        copy.create_branch("feature")
        copy.switch("feature")
        grow(copy, 1, tag="feature ")
        sync.push(copy, "origin")
        assert origin.branches()["feature"] == copy.head()
        with pytest.raises(UnknownRevisionError, match="no branch 'ghost'"):
            sync.push(copy, "origin", "ghost")
        with pytest.raises(UnknownRevisionError, match="no remote named 'upstream'"):
            sync.push(copy, "upstream")


def test_staged_changes_survive_a_push_into_their_branch(
    origin: Repository, tmp_path: Path
) -> None:
    """A push moves the branch under a stage; the next commit keeps both sides' memories."""
    with sync.clone(str(tmp_path / "origin"), tmp_path / "copy") as copy:
        staged = origin.add("staged on the origin before the push arrived")
        grow(copy, 1, tag="pushed ")
        sync.push(copy, "origin")
        origin.commit("commit the stage")
        held = snapshot_ids(origin)
        assert origin.get(staged).digest.hex() in held
        assert snapshot_ids(copy) <= held
        assert origin.verify().ok


def test_receive_is_all_or_nothing(origin: Repository, tmp_path: Path) -> None:
    other = Repository.init(tmp_path / "other")
    try:
        head = origin.head()
        assert head is not None
        ids = [oid for batch in offer(origin.store, [from_hex(head)], []) for oid in batch]
        rows = list(stored_rows(origin.store, ids))
        before = state(other)
        update = [RefUpdate("refs/heads/main", None, head)]

        def cut_off(rows: list[ObjectRow], after: int) -> Iterator[ObjectRow]:
            yield from rows[:after]
            raise ConnectionResetError("the connection dropped")

        with pytest.raises(ConnectionResetError):
            receive(other.store, cut_off(rows, len(rows) // 2), update)
        assert state(other) == before
        tampered = [
            (oid, kind, data + b" ") if kind == "atom" else (oid, kind, data)
            for oid, kind, data in rows
        ]
        with pytest.raises(CorruptObjectError, match="nothing was stored"):
            receive(other.store, tampered, update)
        assert state(other) == before
        without_trees = [row for row in rows if row[1] != "tree"]
        with pytest.raises(CorruptObjectError, match="neither sent nor already stored"):
            receive(other.store, without_trees, update)
        assert state(other) == before
        stale = [RefUpdate("refs/heads/main", "0" * 64, head)]
        with pytest.raises(ConcurrentUpdateError, match="nothing was stored"):
            receive(other.store, rows, stale)
        assert state(other) == before
        received = receive(other.store, rows, update)
        assert received.objects == len(rows)
        assert other.store.read_ref("refs/heads/main") == head
        assert other.verify().ok
    finally:
        other.close()


def test_remote_names_are_checked_and_kept(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path)
    try:
        sync.add_remote(repo, "origin", "ctx://127.0.0.1:7411")
        with pytest.raises(RepositoryExistsError):
            sync.add_remote(repo, "origin", "elsewhere")
        for bad in ("", "a/b", "-x", "HEAD"):
            with pytest.raises(Exception, match="remote"):
                sync.add_remote(repo, bad, "x")
        repo.store.set_ref_if_equals("refs/remotes/origin/main", None, "a" * 64)
        sync.remove_remote(repo, "origin")
        assert sync.remotes(repo) == {}
        assert repo.store.list_refs(refnames.REMOTES) == {}
        with pytest.raises(UnknownRevisionError):
            sync.remove_remote(repo, "origin")
    finally:
        repo.close()


# -- PostgreSQL on either side ----------------------------------------------------------


def test_clone_from_postgres_and_push_back(postgres_url: str, tmp_path: Path) -> None:
    with Repository.create(PostgresStore.open(postgres_url, create=True)) as shared:
        grow(shared, 5, tag="team ")
        with sync.clone(postgres_url, tmp_path / "laptop") as laptop:
            assert history(laptop) == history(shared)
            assert laptop.verify().ok
            grow(laptop, 2, tag="laptop ")
            sync.push(laptop, "origin")
            assert shared.store.read_ref("refs/heads/main") == laptop.head()
            assert shared.verify().ok


def test_a_postgres_repository_fetches_from_a_sqlite_one(
    origin: Repository, postgres_url: str, tmp_path: Path
) -> None:
    Repository.init(tmp_path / "team", store=postgres_url).close()
    with Repository.open(tmp_path / "team") as team:
        sync.add_remote(team, "laptop", str(tmp_path / "origin"))
        result = sync.fetch(team, "laptop")
        assert result.objects == team.store.count_objects() - 1  # all but the empty tree
        assert history(team, "laptop/main") == history(origin)
        assert sync.pull(team, "laptop", "main", author="tester").fast_forward
        assert snapshot_ids(team) == snapshot_ids(origin)
        assert team.search("release train day 37", limit=1)
        assert team.verify().ok


def test_open_peer_refuses_a_path_without_a_repository(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no ContextFS repository"):
        open_peer(str(tmp_path))


def test_a_remote_with_malformed_refs_is_refused(origin: Repository, tmp_path: Path) -> None:
    with sync.clone(str(tmp_path / "origin"), tmp_path / "copy") as copy:
        before = state(copy)
        assert origin.store.set_ref_if_equals("refs/heads/../../HEAD", None, origin.head())
        with pytest.raises(InvalidInputError, match="malformed ref"):
            sync.fetch(copy, "origin")
        assert origin.store.set_ref_if_equals("refs/heads/../../HEAD", origin.head(), None)
        assert origin.store.set_ref_if_equals("refs/tags/v1", None, "not an id")
        with pytest.raises(InvalidInputError, match="malformed ref 'refs/tags/v1'"):
            sync.fetch(copy, "origin")
        assert state(copy) == before


def test_a_purged_atom_travels_purged_with_its_record(origin: Repository, tmp_path: Path) -> None:
    secret = origin.add("the staging password is swordfish")
    origin.commit("oops")
    origin.purge(secret, author="admin", reason="a credential was committed")
    assert origin.verify().ok
    with sync.clone(str(tmp_path / "origin"), tmp_path / "copy") as copy:
        report = copy.verify()
        assert report.ok, report.problems
        assert list(report.purged) == [secret]
        assert all("swordfish" not in hit.atom.content for hit in copy.search("swordfish"))
        assert copy.store.read_ref(f"refs/purges/{secret}") == origin.store.read_ref(
            f"refs/purges/{secret}"
        )
        # And on to a third, empty store by push.
        Repository.init(tmp_path / "third").close()
        sync.add_remote(copy, "third", str(tmp_path / "third"))
        sync.push(copy, "third")
    with Repository.open(tmp_path / "third") as third:
        assert third.verify().ok
        assert third.is_purged(secret)


def test_an_emptied_atom_without_a_record_is_refused(origin: Repository, tmp_path: Path) -> None:
    other = Repository.init(tmp_path / "other")
    try:
        head = origin.head()
        assert head is not None
        ids = [oid for batch in offer(origin.store, [from_hex(head)], []) for oid in batch]
        rows = list(stored_rows(origin.store, ids))
        first_atom = next(n for n, row in enumerate(rows) if row[1] == "atom")
        rows[first_atom] = (rows[first_atom][0], "atom", b"")  # emptied, as if purged
        before = state(other)
        with pytest.raises(CorruptObjectError, match="without a purge record"):
            receive(other.store, rows, [RefUpdate("refs/heads/main", None, head)])
        assert state(other) == before
    finally:
        other.close()
