"""Choosing a backend from a location: a ``postgresql://`` URL or a SQLite file path.

The one place that maps a user's store location to a backend, so the CLI,
the repository, remotes and benchmarks all agree. The PostgreSQL backend is
an optional extra, imported only when a URL asks for it.
"""

from __future__ import annotations

import os
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit

from contextfs.errors import StoreError
from contextfs.store.base import Store
from contextfs.store.sqlite import SqliteStore

#: The environment variable naming the store every command uses (it wins over the folder's).
STORE_URL_ENV: Final = "CONTEXTFS_STORE_URL"

POSTGRES_SCHEMES: Final = ("postgresql://", "postgres://")


def is_postgres_url(location: object) -> bool:
    """Return whether ``location`` is a ``postgresql://`` (or ``postgres://``) URL."""
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


def redact_url(url: str) -> str:
    """Return ``url`` without its password, for messages and logs.

    The password goes from the user part and from a ``password=`` parameter;
    other parameters stay (a ``search_path`` option tells two stores in one
    database apart).
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    user = f"{parts.username}@" if parts.username else ""
    query = [(k, v) for k, v in parse_qsl(parts.query) if k.lower() not in _SECRET_PARAMETERS]
    tail = f"?{urlencode(query)}" if query else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}{tail}"


_SECRET_PARAMETERS: Final = frozenset({"password", "sslpassword"})


def open_store(
    location: str | os.PathLike[str], *, create: bool = False, workspace: str | None = None
) -> Store:
    """Open the store at ``location``: a PostgreSQL URL, else a SQLite database file.

    ``workspace`` (PostgreSQL only) keeps this checkout's HEAD and stage private.

    Raises:
        StoreError: the store cannot be opened, or PostgreSQL support is not
            installed.
    """
    if is_postgres_url(location):
        assert isinstance(location, str)
        return open_postgres(location, create=create, workspace=workspace)
    return SqliteStore.open(location, create=create)


def open_postgres(url: str, *, create: bool = False, workspace: str | None = None) -> Store:
    """Open the PostgreSQL store at ``url``, importing psycopg only now.

    Raises:
        StoreError: psycopg is not installed, or the store cannot be opened.
    """
    try:
        from contextfs.store.postgres import PostgresStore
    except ImportError:
        raise StoreError(
            "PostgreSQL stores need psycopg 3: pip install 'contextfs[postgres]'"
        ) from None
    return PostgresStore.open(url, create=create, workspace=workspace)
