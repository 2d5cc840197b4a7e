"""Health: how big the store is, how memories are found, and, when asked, whether it verifies.

The cheap figures (file sizes, index counts, refs, sessions) are shown on
every visit. :meth:`Repository.verify` re-hashes every object, so it costs
what the store holds and, run under the UI's one lock, holds up every other
page meanwhile: it runs only when asked (``?verify=1``, the "Run verify" button).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from ..._version import __version__
from ...errors import InvalidInputError
from ...integrity.fsck import VerifyReport
from ...repo import Repository
from ...store.base import Store
from ...store.sqlite import SqliteStore
from ..app import UI, Page

#: What PostgreSQL holds for the store's schema: tables with their indexes and TOAST.
PG_SIZE_SQL = (
    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class AS c"
    " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
    " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')"
)


@dataclass(frozen=True, slots=True)
class StoreSize:
    """Where the store keeps its bytes, and how many.

    Attributes:
        kind: ``"SQLite"``, ``"PostgreSQL"`` or another backend's name.
        files: Each file and its size (SQLite: the database, its -wal and -shm).
        total: Every byte together, or None when the backend cannot say cheaply.
        engine: The database engine's version, when known.
    """

    kind: str
    files: tuple[tuple[str, int], ...] = ()
    total: int | None = None
    engine: str = ""


@dataclass(frozen=True, slots=True)
class Health:
    """The figures a look costs little to gather: sizes, indexes, refs, sessions."""

    version: str
    store: StoreSize
    embedder: str | None
    retrieval: str
    indexed: int | None
    vectors: dict[str, int] = field(default_factory=dict)
    vector_search: str | None = None
    branch: str | None = None
    branches: int = 0
    tags: int = 0
    sessions: int = 0


def sqlite_size(path: Path) -> StoreSize:
    """The database file and the -wal and -shm files beside it, those that exist.

    The -wal holds commits not yet checkpointed into the database, so the
    store's size on disk is the sum, not the database file alone.
    """
    files = []
    for suffix in ("", "-wal", "-shm"):
        candidate = path.with_name(path.name + suffix)
        try:
            files.append((candidate.name, candidate.stat().st_size))
        except FileNotFoundError:
            continue
    return StoreSize(
        kind="SQLite",
        files=tuple(files),
        total=sum(size for _, size in files),
        engine=f"SQLite {sqlite3.sqlite_version}",
    )


def store_size(store: Store) -> StoreSize:
    """How much ``store`` occupies, from file sizes or one catalogue query; never a scan."""
    if isinstance(store, SqliteStore):
        return sqlite_size(store.path)
    backend = str(getattr(store, "backend", type(store).__name__))
    if backend == "postgresql":
        # Imported only here: a PostgreSQL store means psycopg is installed and loaded.
        from ...store.postgres import PostgresStore

        if isinstance(store, PostgresStore):
            with store.connection() as conn:
                row = conn.execute(PG_SIZE_SQL).fetchone()
                version = conn.execute("SHOW server_version").fetchone()
            return StoreSize(
                kind="PostgreSQL",
                total=int(row[0]) if row is not None else None,
                engine=f"PostgreSQL {version[0]}" if version is not None else "",
            )
    return StoreSize(kind=backend)


def health_of(repo: Repository) -> Health:
    """The cheap figures of ``repo``.

    The full-text count first indexes what is pending, as the next search
    would anyway (on a read-only store it reads a copy made in memory).
    """
    search, vectors = repo.indexes.every()
    embedder = repo.embedder
    return Health(
        version=__version__,
        store=store_size(repo.store),
        embedder=embedder.id if embedder is not None else None,
        retrieval=repo.assembler.default_retrieval,
        indexed=search.count() if search is not None else None,
        vectors={name: vectors.count(name) for name in vectors.embedders()} if vectors else {},
        vector_search=vectors.search_method() if vectors is not None else None,
        branch=repo.current_branch,
        branches=len(repo.branches()),
        tags=len(repo.tags()),
        sessions=len(repo.oplog_sessions()),
    )


def wants_verify(value: str | None) -> bool:
    """Whether ``?verify=`` asks for a verify run: absent or ``1`` only."""
    if value is None:
        return False
    if value != "1":
        raise InvalidInputError(f"verify must be 1 (run it) or left out, got {value[:40]!r}")
    return True


def human_size(size: int) -> str:
    """``size`` bytes for people: B, KiB, MiB, GiB or TiB, three significant figures."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{size} B" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1024
    return f"{value:.3g} TiB"


async def health(ui: UI, request: Request) -> Response:
    run_verify = wants_verify(request.query_params.get("verify"))

    def work(repo: Repository) -> tuple[Health, VerifyReport | None]:
        return health_of(repo), repo.verify() if run_verify else None

    figures, report = await ui.run(work)
    return ui.render(request, "health.html", health=figures, report=report, human_size=human_size)


ROUTES: list[tuple[str, Page, list[str]]] = [
    ("/health", health, ["GET"]),
]
