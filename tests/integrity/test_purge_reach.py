"""A purge reaches every copy the repository holds: op logs, index, vectors, the files.

Issue 19's holes 2 (a purge left the text in the op log, and ``oplog show``
printed it) and 3 (a purge under a concurrent reader failed after 30 s having
recorded itself, the text still on disk), reproduced first; and the op log's
RFC 6962 roots, checkpoints and proofs still verify after a redaction.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from contextfs.backends import vector_index_for
from contextfs.cli.main import cli
from contextfs.errors import InvalidInputError, StoreError
from contextfs.expand.contextstore import ObjectContextStore
from contextfs.integrity.purge import AlreadyPurgedError, PurgeBlockedError
from contextfs.model.context import CompressedContext
from contextfs.model.merkle import verify_consistency
from contextfs.oplog import add_atom_op, make_op_entry
from contextfs.oplog.entry import compute_op_id, decode_line, op_leaf, redact_line
from contextfs.repo import Repository
from contextfs.store.sqlite import SqliteStore

from ..conftest import RepoBackend

SECRET = "Quokka-7319 is the vault code"
TOKEN = "quokka"


def _every_file(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _holding(folder: Path, word: str) -> list[str]:
    return [name for name, data in _every_file(folder).items() if word.encode() in data.lower()]


@pytest.fixture
def repo(db_backend: RepoBackend) -> Iterator[Repository]:
    with db_backend.repository() as opened:
        yield opened


def _fill(repo: Repository) -> str:
    """The secret written through an op log (crystallised) and kept in the index and vectors."""
    log = repo.oplog("agent")
    log.append_many(
        [
            make_op_entry("agent-1", "context", add_atom_op(SECRET, "Fact"), 1),
            make_op_entry("agent-1", "context", add_atom_op("The team likes tea", "Fact"), 2),
        ]
    )
    repo.commit_oplog(log)
    (hit,) = repo.search("quokka vault", retrieval="lexical", limit=1)
    assert hit.atom.content == SECRET
    repo.search("the code of the safe", retrieval="hybrid")  # vectors made
    return hit.atom.digest.hex()


def test_a_purge_redacts_every_op_log_and_their_proofs_still_verify(repo: Repository) -> None:
    secret = _fill(repo)
    log = repo.oplog("agent")
    before_root, before_size = log.root(), len(log.read_all())
    checkpoints = log.checkpoints()
    assert checkpoints
    if isinstance(repo.store, SqliteStore):
        assert "oplog/agent/ops.jsonl" in _holding(repo.store.path.parent, TOKEN)
    vectors = vector_index_for(repo.store)
    (embedder,) = vectors.embedders()
    key = bytes.fromhex(secret)
    assert vectors.missing(embedder, [key]) == []  # its vector is there before
    repo.purge(secret, author="dpo", reason="user request")
    assert vectors.missing(embedder, [key]) == [key]  # and gone after
    ops = log.read_all()
    assert all(SECRET not in str(op["domain_op"]) for op in ops)
    (redacted,) = [op for op in ops if "redacted" in op]
    assert redacted["domain_op"] == {}
    assert "payload_salt" not in redacted
    assert log.root() == before_root  # the same leaves: the same RFC 6962 root
    assert len(ops) == before_size
    assert log.checkpoints() == checkpoints
    verdict = log.verify(trusted=(before_size, before_root))
    assert verdict.ok, verdict.problems
    log.append_many([make_op_entry("agent-2", "context", add_atom_op("Later", "Fact"), 9)])
    proof = [bytes.fromhex(h) for h in log.consistency_proof(before_size)]
    assert verify_consistency(
        before_size, len(ops) + 1, bytes.fromhex(before_root), bytes.fromhex(log.root()), proof
    )
    repo.commit_oplog(log)  # crystallising goes on; the redacted op is skipped
    assert repo.verify().ok
    if isinstance(repo.store, SqliteStore):
        folder = repo.store.path.parent
        assert _holding(folder, TOKEN) == []  # store, its log, op logs, index: no copy
    else:
        with repo.store.connection() as conn:  # type: ignore[attr-defined]
            rows = conn.execute("SELECT line FROM oplog_ops").fetchall()
        assert all(TOKEN.encode() not in bytes(line).lower() for (line,) in rows)


def test_redaction_keeps_the_line_length_and_the_leaf() -> None:
    op = make_op_entry("a", "context", add_atom_op("Short", "Fact"), 1)
    line = __import__("contextfs.oplog.entry", fromlist=["encode_line"]).encode_line(op)[:-1]
    redacted = redact_line(line)
    assert len(redacted) == len(line)
    assert op_leaf(redacted) == op_leaf(line)
    assert b"Short" not in redacted
    entry = decode_line(redacted, verify_id=True)  # a redacted op is well formed
    assert entry["op_id"] == op["op_id"]
    with pytest.raises(InvalidInputError, match="redacted already"):
        redact_line(redacted)


def test_a_purge_waits_for_no_reader_and_changes_nothing_when_it_cannot_finish(
    tmp_path: Path,
) -> None:
    repo = Repository.init(tmp_path / "r")
    try:
        secret = _fill(repo)
        assert isinstance(repo.store, SqliteStore)
        reader = sqlite3.connect(repo.store.path)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM objects").fetchone()  # holds a read snapshot
        try:
            with pytest.raises(StoreError, match="nothing was changed"):
                repo.purge(secret, author="dpo")
            assert not repo.is_purged(secret)
            assert repo.get(secret).content == SECRET  # type: ignore[union-attr]
            assert any(SECRET in str(op["domain_op"]) for op in repo.oplog("agent").read_all())
        finally:
            reader.rollback()
            reader.close()
        repo.purge(secret, author="dpo")  # the reader is gone: it completes
        assert repo.is_purged(secret)
        with pytest.raises(AlreadyPurgedError):
            repo.purge(secret, author="dpo")
        assert _holding(tmp_path / "r" / ".contextfs", TOKEN) == []
    finally:
        repo.close()


def test_the_cli_purge_reaches_the_op_log(tmp_path: Path) -> None:
    """Hole 2 as found: append, checkpoint, purge; the text stayed in ops.jsonl."""
    runner = CliRunner()
    folder = tmp_path / "r"
    base = ["--repo", str(folder)]
    assert runner.invoke(cli, ["init", str(folder)]).exit_code == 0
    added = runner.invoke(cli, [*base, "oplog", "append", "s1", "--add", SECRET, "--json"])
    assert added.exit_code == 0, added.output
    assert runner.invoke(cli, [*base, "oplog", "checkpoint", "s1"]).exit_code == 0
    with Repository.open(folder) as repo:
        secret = repo.search("quokka", retrieval="lexical")[0].atom.digest.hex()
    done = runner.invoke(cli, [*base, "purge", secret, "--yes"])
    assert done.exit_code == 0, done.output
    shown = runner.invoke(cli, [*base, "oplog", "show", "s1"])
    assert shown.exit_code == 0
    assert TOKEN not in shown.output.lower()
    assert runner.invoke(cli, [*base, "oplog", "verify", "s1"]).exit_code == 0
    assert _holding(folder / ".contextfs", TOKEN) == []


# -- what a review found ---------------------------------------------------------------


def test_a_refused_purge_changes_no_op_log(tmp_path: Path) -> None:
    """A context object holds the text: the purge is refused, and no op was redacted."""
    with Repository.init(tmp_path / "r") as repo:
        secret = _fill(repo)
        atom = repo.get(secret)
        ObjectContextStore(repo.store).put(CompressedContext(None, [atom], [], set(), {}))  # type: ignore[list-item]
        before = repo.oplog("agent").read_all()
        with pytest.raises(PurgeBlockedError, match="context object"):
            repo.purge(secret, author="dpo")
        assert repo.oplog("agent").read_all() == before
        assert not repo.is_purged(secret)


def test_an_op_that_cannot_be_redacted_stops_the_purge_before_any_log_changes(
    tmp_path: Path,
) -> None:
    """An op written before salts, of another domain, shorter than the marker."""
    with Repository.init(tmp_path / "r") as repo:
        repo.add("hi", "String")
        repo.commit("short")
        (hit,) = repo.search("hi", retrieval="lexical")
        repo.oplog("a").append_many([make_op_entry("x", "context", add_atom_op("hi"), 1)])
        legacy = {
            "actor_id": "x",
            "domain": "notes",
            "domain_op": {"t": "hi"},
            "lamport_ts": 1,
            "parent_op_ids": [],
            "intent_id": "",
            "reservation_id": "",
            "created_at": "2026-01-01T00:00:00.000000Z",
        }
        legacy["op_id"] = compute_op_id("x", "notes", {"t": "hi"}, 1, [], "", "")
        repo.oplog("b").receive([legacy])
        before = {s: repo.oplog(s).read_all() for s in ("a", "b")}
        with pytest.raises(InvalidInputError, match="too short to redact in place"):
            repo.purge(hit.atom.digest.hex(), author="dpo")
        assert {s: repo.oplog(s).read_all() for s in ("a", "b")} == before
        assert not repo.is_purged(hit.atom.digest.hex())


def test_a_read_only_store_refuses_a_purge_as_read_only(tmp_path: Path) -> None:
    folder = tmp_path / "r"
    with Repository.init(folder) as repo:
        secret = _fill(repo)
    script = (
        "import resource, signal, sys;"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN);"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0));"
        "from contextfs.cli.main import main;"
        f"main(['--repo', {str(folder)!r}, 'purge', {secret!r}, '--yes'])"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 10, done.stderr
    assert "read-only here" in done.stderr


def test_redacted_ops_are_not_merged_from_elsewhere(tmp_path: Path) -> None:
    """A redacted op's id is unchecked: merged, it could shadow the real op."""
    with Repository.init(tmp_path / "r") as repo:
        real = make_op_entry("carol", "context", add_atom_op("Carol's note"), 3)
        fake = {**real, "domain_op": {}, "created_at": "", "redacted": "A" * 43}
        del fake["payload_salt"]
        with pytest.raises(InvalidInputError, match="redacted"):
            repo.oplog("s").receive([fake])
        with pytest.raises(InvalidInputError, match="redacted"):
            repo.oplog("s").append_many([fake])  # type: ignore[list-item]
        assert repo.oplog("s").receive([real]).added
