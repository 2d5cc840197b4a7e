"""The backend registry: what comes with each kind of store, decided in one place.

A backend is a store class plus the search index, the vector index and the
op log that live beside it. Everything that must pick one asks here:
:func:`open_store` (a location to a store), :func:`search_index_for` and
:func:`vector_index_for` (a store to its indexes) and :func:`backend_for` (a
store to its op-log sessions). A store class names its entry in its
``backend`` class attribute.

Entries are registered as loaders and loaded on first use, so an optional
backend costs nothing until a store of its kind is opened: PostgreSQL's
loader is what imports psycopg. Adding a backend is its classes, one
:func:`register` call, and passing the three shipped contract suites
(:mod:`contextfs.testing.store_contract`, :mod:`~contextfs.testing.search_contract`,
:mod:`~contextfs.testing.vector_contract` and :mod:`~contextfs.testing.oplog_contract`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from .errors import ContextFSError, InvalidInputError, StoreError
from .oplog.base import OpLogBackend
from .search.base import SearchIndex
from .search.vectors import VectorIndex
from .store.base import Store


class UnsupportedStoreError(ContextFSError, TypeError):
    """No backend is registered for this kind of store."""


class OpenUrl(Protocol):
    """Open (with ``create``, make) the store a URL names; ``workspace`` keeps HEAD private."""

    def __call__(self, url: str, *, create: bool, workspace: str | None) -> Store: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Backend:
    """What one kind of store comes with.

    Attributes:
        name: the store classes' ``backend`` attribute.
        search_index: the full-text index beside a store (one per store object
            where the index keeps state in memory).
        vector_index: the atoms' vectors beside a store, per embedder.
        oplog: a session's op log, given the store, the repository folder (None
            for a store without one) and a checked session id.
        oplog_sessions: the sessions that have a log, sorted.
        open_url: opens a URL of one of the backend's schemes (None: the
            backend is not opened from URLs).
    """

    name: str
    search_index: Callable[[Store], SearchIndex]
    vector_index: Callable[[Store], VectorIndex]
    oplog: Callable[[Store, Path | None, str], OpLogBackend]
    oplog_sessions: Callable[[Store, Path | None], list[str]]
    open_url: OpenUrl | None = None


_lock = threading.Lock()
_loaders: dict[str, Callable[[], Backend]] = {}
_loaded: dict[str, Backend] = {}
_schemes: dict[str, str] = {}


def register(name: str, load: Callable[[], Backend], *, schemes: Iterable[str] = ()) -> None:
    """Register backend ``name``: ``load`` builds its entry the first time it is needed.

    Args:
        name: what the backend's store classes hold in their ``backend`` attribute.
        load: returns the :class:`Backend`; it may import optional dependencies.
        schemes: URL schemes (``"postgresql"``) whose locations this backend opens.
    """
    with _lock:
        _loaders[name] = load
        _loaded.pop(name, None)
        for scheme in schemes:
            _schemes[scheme.lower()] = name


def backend_for(store: Store, what: str = "backend") -> Backend:
    """Return the registered backend of ``store``'s kind.

    Raises:
        UnsupportedStoreError: no backend is registered for it (``what`` names
            what was sought, for the message).
    """
    name = getattr(store, "backend", None)
    if not isinstance(name, str) or name not in _loaders:
        raise UnsupportedStoreError(f"no {what} for {type(store).__name__!r} stores")
    return _load(name)


def _load(name: str) -> Backend:
    with _lock:
        backend = _loaded.get(name)
        if backend is None:
            backend = _loaded[name] = _loaders[name]()
        return backend


def search_index_for(store: Store) -> SearchIndex:
    """Return the full-text index that lives beside ``store``.

    Raises:
        UnsupportedStoreError: no backend is registered for this kind of store.
        StoreError: the index cannot be opened (SQLite without FTS5, a failed server).
    """
    return backend_for(store, "full-text search backend").search_index(store)


def vector_index_for(store: Store) -> VectorIndex:
    """Return the vector index that lives beside ``store``.

    Raises:
        UnsupportedStoreError: no backend is registered for this kind of store.
        StoreError: the index cannot be opened.
    """
    return backend_for(store, "vector index backend").vector_index(store)


def url_scheme(location: object) -> str | None:
    """Return the registered scheme of ``location`` if it is a store URL, else None."""
    if not isinstance(location, str) or "://" not in location:
        return None
    scheme = location.partition("://")[0].lower()  # no parser: a malformed URL has a scheme too
    return scheme if scheme in _schemes else None


def open_store(
    location: str | os.PathLike[str], *, create: bool = False, workspace: str | None = None
) -> Store:
    """Open the store at ``location``: a registered URL (``postgresql://``), else a SQLite file.

    ``workspace`` (URL stores only) keeps this checkout's HEAD and stage private.

    Raises:
        StoreError: the store cannot be opened, or its backend's extra is not installed.
    """
    scheme = url_scheme(location)
    if scheme is None:
        from .store.sqlite import SqliteStore

        return SqliteStore.open(location, create=create)
    assert isinstance(location, str)
    backend = _load(_schemes[scheme])
    if backend.open_url is None:
        raise InvalidInputError(f"{scheme}:// locations name no store")
    return backend.open_url(location, create=create, workspace=workspace)


# -- the backends that ship -----------------------------------------------------------


def _folder_oplog(store: Store, folder: Path | None, session: str) -> OpLogBackend:
    from .oplog.log import OpLog

    if folder is None:
        raise InvalidInputError(
            "an in-memory repository has no op-log folder; open an OpLog yourself"
        )
    return OpLog.in_folder(folder, session)


def _folder_sessions(store: Store, folder: Path | None) -> list[str]:
    from .oplog.log import sessions_in

    return sessions_in(folder) if folder is not None else []


def _memory() -> Backend:
    from .search.memory import MemorySearchIndex
    from .search.memory_vectors import MemoryVectorIndex
    from .store.memory import MemoryStore

    def store_of(store: Store) -> MemoryStore:
        assert isinstance(store, MemoryStore)
        return store

    return Backend(
        name="memory",
        # Their postings and vectors live as long as the store object.
        search_index=lambda store: MemorySearchIndex.for_store(store_of(store)),
        vector_index=lambda store: MemoryVectorIndex.for_store(store_of(store)),
        oplog=_folder_oplog,
        oplog_sessions=_folder_sessions,
    )


def _sqlite() -> Backend:
    from .search.sqlite_fts import SqliteSearchIndex
    from .search.sqlite_vectors import SqliteVectorIndex
    from .store.sqlite import SqliteStore

    def store_of(store: Store) -> SqliteStore:
        assert isinstance(store, SqliteStore)
        return store

    return Backend(
        name="sqlite",
        search_index=lambda store: SqliteSearchIndex(store_of(store)),
        vector_index=lambda store: SqliteVectorIndex(store_of(store)),
        oplog=_folder_oplog,
        oplog_sessions=_folder_sessions,
    )


def _postgresql() -> Backend:
    """PostgreSQL: its op logs live in the database, so every machine shares them."""
    try:
        from .oplog.postgres_log import PostgresOpLog, sessions_in_store
        from .search.postgres_fts import PostgresSearchIndex
        from .search.postgres_vectors import PostgresVectorIndex
        from .store.postgres import PostgresStore
    except ImportError:
        raise StoreError(POSTGRES_EXTRA) from None

    def store_of(store: Store) -> PostgresStore:
        assert isinstance(store, PostgresStore)
        return store

    def open_url(url: str, *, create: bool, workspace: str | None) -> Store:
        return PostgresStore.open(url, create=create, workspace=workspace)

    return Backend(
        name="postgresql",
        search_index=lambda store: PostgresSearchIndex(store_of(store)),
        vector_index=lambda store: PostgresVectorIndex(store_of(store)),
        oplog=lambda store, _, session: PostgresOpLog(store_of(store), session),
        oplog_sessions=lambda store, _: sessions_in_store(store_of(store)),
        open_url=open_url,
    )


#: What to do when a PostgreSQL store is asked for without its extra installed.
POSTGRES_EXTRA: Final = "PostgreSQL stores need psycopg 3: pip install 'contextfs-vcs[postgres]'"

register("memory", _memory)
register("sqlite", _sqlite)
register("postgresql", _postgresql, schemes=("postgresql", "postgres"))


__all__ = [
    "Backend",
    "OpenUrl",
    "UnsupportedStoreError",
    "backend_for",
    "open_store",
    "register",
    "search_index_for",
    "url_scheme",
    "vector_index_for",
]
