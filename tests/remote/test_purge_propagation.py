"""Purges travel: a fetch, pull or clone erases text the remote purged; a push erases it there.

Issue 19 asked that a purge reach clones and the server a store pushed to:
the purge records travel with every transfer, and a receiver applies them
(erases its copy: object, index, vectors, op logs, files) unless it opts out,
reported in the transfer's summary.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from contextfs.cli.main import cli
from contextfs.integrity.purge import PurgeRecord, purge_ref
from contextfs.oplog import add_atom_op, make_op_entry
from contextfs.remote import sync
from contextfs.repo import Repository

from ..server.test_fuzz import Running

SECRET = "Wombat-2207 opens the archive"
TOKEN = b"wombat"


def _copies(folder: Path) -> list[str]:
    return [
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and TOKEN in p.read_bytes().lower()
    ]


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[Repository]:
    repo = Repository.init(tmp_path / "origin")
    repo.add(SECRET, "Fact")
    repo.add("The archive opens at nine", "Fact")
    repo.commit("first")
    yield repo
    repo.close()


def _secret_id(repo: Repository) -> str:
    (hit,) = repo.search("wombat archive", retrieval="lexical", limit=1)
    return hit.atom.digest.hex()


def test_a_fetch_erases_what_the_remote_purged(origin: Repository, tmp_path: Path) -> None:
    with sync.clone(str(tmp_path / "origin"), tmp_path / "copy") as copy:
        secret = _secret_id(copy)
        log = copy.oplog("agent")  # the clone's own op log holds the text too
        log.append_many([make_op_entry("agent", "context", add_atom_op(SECRET, "Fact"), 1)])
        copy.search("the code for the archive", retrieval="hybrid")  # vectors made here
        assert _copies(tmp_path / "copy" / ".contextfs")
        origin.purge(secret, author="dpo", reason="asked")
        fetched = sync.fetch(copy)
        assert fetched.purged == [secret]
        assert fetched.ignored_purges == 0
        assert copy.is_purged(secret)
        assert copy.verify().ok
        assert copy.search("wombat", retrieval="lexical") == []
        assert log.verify().ok  # the redacted op keeps the log's proofs
        again = sync.fetch(copy)
        assert again.purged == []  # applied once
    assert _copies(tmp_path / "copy" / ".contextfs") == []


def test_opting_out_keeps_the_text_and_says_so(origin: Repository, tmp_path: Path) -> None:
    with sync.clone(str(tmp_path / "origin"), tmp_path / "copy") as copy:
        secret = _secret_id(copy)
        origin.purge(secret, author="dpo")
        fetched = sync.fetch(copy, purges=False)
        assert fetched.purged == []
        assert fetched.ignored_purges == 1
        assert not copy.is_purged(secret)
        assert copy.get(secret).content == SECRET  # type: ignore[union-attr]


def test_a_push_erases_it_on_the_remote(origin: Repository, tmp_path: Path) -> None:
    with sync.clone(str(tmp_path / "origin"), tmp_path / "copy") as copy:
        secret = _secret_id(copy)
        copy.purge(secret, author="dpo")
        pushed = sync.push(copy)
        assert pushed.purged == [secret]
    assert origin.is_purged(secret)
    assert origin.verify().ok
    assert _copies(tmp_path / "origin" / ".contextfs") == []


def test_over_the_wire_and_in_the_cli_summary(origin: Repository, tmp_path: Path) -> None:
    running = Running(origin)
    try:
        url = running.server.url
        with sync.clone(url, tmp_path / "copy") as copy:
            secret = _secret_id(copy)
        origin.purge(secret, author="dpo")
        runner = CliRunner()
        done = runner.invoke(cli, ["--repo", str(tmp_path / "copy"), "fetch"])
        assert done.exit_code == 0, done.output
        assert "Erased 1 purged memor(y/ies) here:" in done.output
        assert secret[:12] in done.output
    finally:
        running.stop()
    with Repository.open(tmp_path / "copy") as copy:
        assert copy.is_purged(secret)
    assert _copies(tmp_path / "copy" / ".contextfs") == []


# -- what a review found ---------------------------------------------------------------


def test_a_purge_received_before_the_text_keeps_the_text_out(tmp_path: Path) -> None:
    """B learns of the purge from A (record only), then fetches C, which never purged it."""
    with Repository.init(tmp_path / "c") as c:
        c.add(SECRET, "Fact")
        c.commit("c has it")
    with Repository.init(tmp_path / "a") as a:
        sync.add_remote(a, "c", str(tmp_path / "c"))
        sync.fetch(a, "c")  # A holds the text as C's history, not on a branch of its own
        (hit,) = a.search("wombat", retrieval="lexical", revision="c/main")
        secret = hit.atom.digest.hex()
        a.purge(secret, author="dpo")
    with Repository.init(tmp_path / "b") as b:
        sync.add_remote(b, "a", str(tmp_path / "a"))
        sync.add_remote(b, "c", str(tmp_path / "c"))
        sync.fetch(b, "a")  # the record arrives alone: B holds no copy yet
        assert b.store.read_ref(purge_ref(bytes.fromhex(secret))) is not None
        fetched = sync.fetch(b, "c")
        assert fetched.purged == [secret]
        assert b.is_purged(secret)
        assert b.verify().ok
    assert _copies(tmp_path / "b" / ".contextfs") == []


def test_a_purge_of_an_atom_the_remote_never_held_erases_nothing(
    origin: Repository, tmp_path: Path
) -> None:
    """Anyone who can write to a remote must not erase a clone's own memories."""
    with sync.clone(str(tmp_path / "origin"), tmp_path / "copy") as copy:
        mine = copy.add("My own note the remote never saw", "Fact")
        copy.commit("local")
        forged = PurgeRecord(atom_id=bytes.fromhex(mine), author="x", reason="", when=1)
        origin.store.put_objects([(forged.digest, "purge", forged.encode())])
        assert origin.store.set_ref_if_equals(purge_ref(bytes.fromhex(mine)), None, forged.id)
        fetched = sync.fetch(copy)
        assert fetched.purged == []
        assert fetched.ignored_purges == 1
        assert copy.get(mine).content == "My own note the remote never saw"  # type: ignore[union-attr]
        assert not copy.is_purged(mine)


def test_a_path_remote_is_that_folder_never_one_above_it(tmp_path: Path) -> None:
    """A repository folder not named .contextfs, inside another repository's tree."""
    with Repository.init(tmp_path / "outer") as outer:
        outer.add("The outer repository", "Fact")
        outer.commit("outer")
    with Repository.init(tmp_path / "made") as inner:
        inner.add("The inner repository", "Fact")
        inner.commit("inner")
    folder = tmp_path / "outer" / "sub" / "memory"
    folder.parent.mkdir()
    (tmp_path / "made" / ".contextfs").rename(folder)
    with Repository.init(tmp_path / "b") as b:
        sync.add_remote(b, "inner", str(folder))
        sync.fetch(b, "inner")
        assert [c.commit.message for c in b.log(["inner/main"])] == ["inner"]
