"""Run the shipped op-log contract against the file log and the PostgreSQL log."""

from __future__ import annotations

from pathlib import Path

from contextfs.discovery import REPO_DIR
from contextfs.oplog import OpLog
from contextfs.oplog.base import OpLogBackend
from contextfs.oplog.postgres_log import PostgresOpLog
from contextfs.store.postgres import PostgresStore
from contextfs.testing.oplog_contract import OpLogContract


class TestFileOpLog(OpLogContract):
    def make_log(self, session: str) -> OpLogBackend:
        return OpLog(self.tmp_path / "repo", session)

    def rewrite_line(self, log: OpLogBackend, number: int, line: bytes) -> None:
        folder = self.tmp_path / "repo" / REPO_DIR / "oplog" / log.session_id()
        path = folder / "ops.jsonl"
        lines = path.read_bytes().splitlines(keepends=True)
        lines[number - 1] = line + b"\n"
        path.write_bytes(b"".join(lines))
        (folder / "ops.state").unlink(missing_ok=True)  # a cache; rebuilt from the lines


class TestPostgresOpLog(OpLogContract):
    """Each handle has its own store, so its own connection: a machine of its own."""

    def make_log(self, session: str) -> OpLogBackend:
        store = self._store()
        return _OwningLog(store, session)

    def rewrite_line(self, log: OpLogBackend, number: int, line: bytes) -> None:
        with self._store() as store, store.connection(write=True) as conn:
            conn.execute(
                "UPDATE oplog_ops SET line = %s WHERE session = %s AND seq = %s",
                (line, log.session_id(), number),
            )

    def _store(self) -> PostgresStore:
        url: str = self.request.getfixturevalue("postgres_url")
        return PostgresStore.open(url, create=True)


class _OwningLog(PostgresOpLog):
    """A PostgresOpLog that closes its store with it (the library leaves stores to callers)."""

    def __init__(self, store: PostgresStore, session: str) -> None:
        super().__init__(store, session)
        self.owned = store

    def close(self) -> None:
        self.owned.close()


def test_the_file_log_path_layout_is_unchanged(tmp_path: Path) -> None:
    log = OpLog(tmp_path, "s")
    assert isinstance(log, OpLogBackend)
    assert log.folder == tmp_path / REPO_DIR / "oplog" / "s"
