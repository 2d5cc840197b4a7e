"""Suite-wide settings and fixtures: hypothesis profiles, PostgreSQL, one repository per backend.

``default`` (used unless ``HYPOTHESIS_PROFILE`` names another) has no deadline,
because a loaded 2-core CI machine makes per-example timing meaningless (tests
never assert on timing), and derandomises so CI runs are reproducible. ``dev``
explores randomly, with more examples.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, settings

from contextfs.repo import Repository
from contextfs.store import MemoryStore, SqliteStore, Store

if TYPE_CHECKING:
    from contextfs.testing.pgcluster import Cluster

settings.register_profile(
    "default",
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


# -- PostgreSQL --------------------------------------------------------------------
#
# Tests that need PostgreSQL take the ``postgres_url`` fixture: a fresh, empty
# schema in a server, dropped afterwards. The server is the one named by
# CONTEXTFS_TEST_POSTGRES_URL (a URL whose user may create schemas), else a
# throwaway cluster this session starts on 127.0.0.1 and stops at the end.
# Without server binaries those tests skip, with the reason in the summary,
# unless CONTEXTFS_REQUIRE_POSTGRES=1 (set by .ci/run): then they fail.

POSTGRES_URL_ENV = "CONTEXTFS_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "CONTEXTFS_REQUIRE_POSTGRES"


@dataclass
class PostgresServer:
    """Where the test server is, and how to name a schema in it."""

    admin_url: str
    url_for: Callable[[str], str]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    external = os.environ.get(POSTGRES_URL_ENV)
    if external:
        yield PostgresServer(external, lambda schema: _with_schema(external, schema))
        return
    from contextfs.testing.pgcluster import ClusterError, start_cluster

    try:
        cluster = start_cluster()
    except ClusterError as exc:
        if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
            pytest.fail(f"PostgreSQL is required here: {exc}")
        pytest.skip(f"no PostgreSQL server for these tests: {exc}")
    try:
        yield PostgresServer(cluster.url(), lambda schema: cluster.url(schema=schema))
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A URL whose tables land in a new, empty schema; the schema is dropped afterwards."""
    import psycopg

    schema = f"test_{os.getpid()}_{next(_SCHEMA_NUMBERS)}"
    with psycopg.connect(postgres_server.admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")  # a name made here, not input
    try:
        yield postgres_server.url_for(schema)
    finally:
        with psycopg.connect(postgres_server.admin_url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


_SCHEMA_NUMBERS = itertools.count()


# A second server, for the pgvector path: Debian 12's PostgreSQL packages have no
# pgvector, so these tests run a PostgreSQL 16 build that bundles it, from the
# ``pgserver`` wheel (test extra, Linux x86-64 on CPython 3.11-3.12), started the
# same throwaway way. They skip without it unless CONTEXTFS_REQUIRE_PGVECTOR=1.

REQUIRE_PGVECTOR_ENV = "CONTEXTFS_REQUIRE_PGVECTOR"


def _pgvector_bindir() -> Path | None:
    """The server binaries inside the installed ``pgserver`` package, if any."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bindir if (bindir / "postgres").is_file() else None


@pytest.fixture(scope="session")
def pgvector_cluster() -> Iterator[Cluster]:
    """A throwaway server whose ``pg_available_extensions`` lists ``vector``."""
    from contextfs.testing.pgcluster import ClusterError, start_cluster

    bindir = _pgvector_bindir()
    try:
        if bindir is None:
            raise ClusterError("the pgserver package (PostgreSQL with pgvector) is not installed")
        cluster = start_cluster(bindir=bindir)
    except ClusterError as exc:
        if os.environ.get(REQUIRE_PGVECTOR_ENV) == "1":
            pytest.fail(f"PostgreSQL with pgvector is required here: {exc}")
        pytest.skip(f"no PostgreSQL server with pgvector for these tests: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pgvector_server_url(pgvector_cluster: Cluster) -> str:
    """The pgvector server's default database, where the extension is not installed."""
    return pgvector_cluster.url()


@dataclass
class PgvectorDatabase:
    """A fresh database on the pgvector server, the extension not yet installed."""

    url: str
    admin_url: str

    def install(self) -> None:
        """``CREATE EXTENSION vector`` in a schema of its own, off the search_path.

        The store must then name the extension's type and operators by their
        schema, as it must wherever an administrator installed it elsewhere.
        """
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA pgv")
            conn.execute("CREATE EXTENSION vector WITH SCHEMA pgv")


@pytest.fixture
def pgvector_database(pgvector_cluster: Cluster) -> Iterator[PgvectorDatabase]:
    """A new database on the pgvector server; dropped afterwards."""
    import psycopg

    name = f"pgv_{os.getpid()}_{next(_SCHEMA_NUMBERS)}"  # a name made here, not input
    admin_url = pgvector_cluster.url()
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield PgvectorDatabase(pgvector_cluster.url(database=name), admin_url)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _with_schema(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}', safe='')}"


# -- one repository per backend ----------------------------------------------------
#
# Suites that drive the facade end to end take ``repo_backend``: each of their
# tests then runs once per backend, and builds its repository (or a bare store)
# through it. Only the PostgreSQL run asks for ``postgres_url``, so without a
# server only that run skips.

#: The backends a facade test runs on, in the order of its test ids.
BACKENDS: Final = ("memory", "sqlite", "postgres")
#: The backends that keep their data in a database: for tests that compact the
#: store, change its rows behind its back, or need reads that really block.
DATABASES: Final = ("sqlite", "postgres")


@dataclass
class RepoBackend:
    """Makes fresh repositories and stores on one backend, for one test."""

    kind: str
    tmp_path: Path
    request: pytest.FixtureRequest

    @property
    def postgres_url(self) -> str:
        """The test's own empty schema (the ``postgres_url`` fixture)."""
        url: str = self.request.getfixturevalue("postgres_url")
        return url

    def repository(self) -> Repository:
        """A new repository, as users make one on this backend.

        SQLite and PostgreSQL get a folder (``tmp_path/.contextfs``); on
        PostgreSQL it records the store's URL and its own workspace, as
        ``contextfs init --store`` does. The caller closes the repository.
        """
        if self.kind == "memory":
            return Repository.memory()
        if self.kind == "sqlite":
            return Repository.init(self.tmp_path)
        return Repository.init(self.tmp_path, store=self.postgres_url)

    def store(self) -> Store:
        """A new, empty store on this backend; the caller closes it."""
        if self.kind == "memory":
            return MemoryStore()
        if self.kind == "sqlite":
            return SqliteStore.open(self.tmp_path / "store.db", create=True)
        from contextfs.store.postgres import PostgresStore

        return PostgresStore.open(self.postgres_url, create=True)


@pytest.fixture(params=BACKENDS)
def repo_backend(request: pytest.FixtureRequest, tmp_path: Path) -> RepoBackend:
    """Each backend in turn: the test runs once on memory, SQLite and PostgreSQL."""
    return RepoBackend(request.param, tmp_path, request)


@pytest.fixture(params=DATABASES)
def db_backend(request: pytest.FixtureRequest, tmp_path: Path) -> RepoBackend:
    """Each database backend in turn: SQLite and PostgreSQL (not the memory store)."""
    return RepoBackend(request.param, tmp_path, request)
