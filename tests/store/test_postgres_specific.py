"""What only the PostgreSQL backend has: schema steps, workspaces, many writers, errors.

Every test runs against a real server (the ``postgres_url`` fixture); the
many-writer test uses real processes, each with its own connection, as
separate machines would.
"""

from __future__ import annotations

import multiprocessing
import re
from collections import Counter

import psycopg
import pytest

from contextfs.backends import open_store
from contextfs.errors import ConcurrentUpdateError, InvalidInputError, StoreError
from contextfs.repo import Repository
from contextfs.store.postgres import MIGRATIONS, PostgresStore
from contextfs.store.urls import redact_url
from contextfs.testing.pgcluster import free_port

WRITERS = 8
COMMITS_EACH = 50


def test_schema_steps_are_recorded_once(postgres_url: str) -> None:
    with PostgresStore.open(postgres_url, create=True):
        pass
    with PostgresStore.open(postgres_url), psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            "SELECT component, step, name FROM schema_migrations ORDER BY component, step"
        ).fetchall()
    assert [(c, s, n) for c, s, n in rows if c == "store"] == [
        ("store", step, name) for step, name, _ in MIGRATIONS
    ]


def test_a_store_written_by_a_newer_version_is_refused(postgres_url: str) -> None:
    PostgresStore.open(postgres_url, create=True).close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO schema_migrations (component, step, name) VALUES ('store', 99, 'future')"
        )
    with pytest.raises(StoreError, match=r"has store schema step 99.*upgrade ContextFS"):
        PostgresStore.open(postgres_url)


def test_a_database_without_a_store_is_refused_unless_created(postgres_url: str) -> None:
    with pytest.raises(StoreError, match=r"^no ContextFS store in 'postgresql://"):
        PostgresStore.open(postgres_url)
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT to_regclass('objects')").fetchone() == (None,)


def test_foreign_tables_are_left_alone(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE objects (anything integer)")
    with pytest.raises(StoreError, match="tables named objects or refs that ContextFS did not"):
        PostgresStore.open(postgres_url, create=True)
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT to_regclass('refs')").fetchone() == (None,)


def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    url = f"postgresql://agent:hunter2@127.0.0.1:{free_port()}/memory"
    with pytest.raises(StoreError) as caught:
        open_store(url, create=True)
    message = str(caught.value)
    assert "\n" not in message
    assert "hunter2" not in message
    assert message.startswith(f"store 'postgresql://agent@127.0.0.1:{url.split(':')[3]}")


def test_bad_urls_and_workspace_names_are_refused(postgres_url: str) -> None:
    with pytest.raises(InvalidInputError, match="not a PostgreSQL URL"):
        PostgresStore.open("mysql://x/y")
    for bad in ("", "a/b", "x" * 65, "../up"):
        with pytest.raises(InvalidInputError, match="workspace must be"):
            PostgresStore.open(postgres_url, create=True, workspace=bad)


def test_redact_url_drops_every_password_and_keeps_the_rest() -> None:
    assert (
        redact_url(
            "postgresql://bob:secret@db.example:5433/mem?sslmode=require"
            "&password=hunter2&options=-csearch_path%3Dteam_a"
        )
        == "postgresql://bob@db.example:5433/mem?sslmode=require&options=-csearch_path%3Dteam_a"
    )


def test_workspaces_keep_head_and_stage_private_and_share_the_rest(postgres_url: str) -> None:
    with PostgresStore.open(postgres_url, create=True) as bare:
        assert bare.set_ref_if_equals("HEAD", None, "ref: refs/heads/main")
        assert bare.set_ref_if_equals("refs/heads/main", None, "a" * 64)
    one = PostgresStore.open(postgres_url, workspace="one")
    two = PostgresStore.open(postgres_url, workspace="two")
    try:
        # A new workspace starts on the store's own HEAD.
        assert one.read_ref("HEAD") == two.read_ref("HEAD") == "ref: refs/heads/main"
        assert one.set_ref_if_equals("HEAD", "ref: refs/heads/main", "ref: refs/heads/dev")
        assert one.set_ref_if_equals("STAGE", None, "b" * 64)
        assert two.read_ref("HEAD") == "ref: refs/heads/main"
        assert two.read_ref("STAGE") is None
        # Branches are shared.
        assert two.set_ref_if_equals("refs/heads/dev", None, "c" * 64)
        assert one.read_ref("refs/heads/dev") == "c" * 64
        assert one.list_refs() == {
            "HEAD": "ref: refs/heads/dev",
            "STAGE": "b" * 64,
            "refs/heads/dev": "c" * 64,
            "refs/heads/main": "a" * 64,
        }
        assert list(two.list_refs("refs/")) == ["refs/heads/dev", "refs/heads/main"]
    finally:
        one.close()
        two.close()
    with PostgresStore.open(postgres_url) as bare:
        assert bare.read_ref("HEAD") == "ref: refs/heads/main"
        assert bare.read_ref("workspaces/one/STAGE") == "b" * 64


def _commit_many(url: str, writer: int, commits: int) -> None:
    """Commit ``commits`` memories to main from one process, retrying when another wins a race."""
    with Repository(PostgresStore.open(url, workspace=f"writer{writer}")) as repo:
        for n in range(commits):
            while True:
                try:
                    with repo.transaction():
                        repo.add(f"Writer {writer} learned fact number {n} about the project")
                        repo.commit(f"writer {writer} commit {n}", author=f"agent-{writer}")
                    break
                except ConcurrentUpdateError:
                    continue  # the transaction rolled back whole: stage and commit again


def test_eight_writers_lose_no_commit(postgres_url: str) -> None:
    Repository.create(PostgresStore.open(postgres_url, create=True)).close()
    context = multiprocessing.get_context("spawn")
    with context.Pool(WRITERS) as pool:
        pool.starmap(
            _commit_many, [(postgres_url, writer, COMMITS_EACH) for writer in range(WRITERS)]
        )
    with Repository(PostgresStore.open(postgres_url, workspace="checker")) as repo:
        history = list(repo.log(["main"]))
        messages = Counter(info.commit.message for info in history)
        assert len(history) == WRITERS * COMMITS_EACH
        assert set(messages.values()) == {1}
        for writer in range(WRITERS):
            mine = [m for m in messages if re.fullmatch(f"writer {writer} commit \\d+", m)]
            assert len(mine) == COMMITS_EACH
        # History is one line: every commit has exactly the previous one as parent.
        assert all(len(info.parents) == 1 for info in history[:-1])
        assert repo.count("main") == WRITERS * COMMITS_EACH
        report = repo.verify()
        assert report.ok, report.problems
        assert report.counts["commit"] == WRITERS * COMMITS_EACH


def test_a_stage_is_carried_over_commits_another_workspace_made(postgres_url: str) -> None:
    with Repository.create(PostgresStore.open(postgres_url, create=True)) as setup:
        setup.add("shared: the build uses python 3.11")
        setup.commit("base")
    laptop = Repository(PostgresStore.open(postgres_url, workspace="laptop"))
    server = Repository(PostgresStore.open(postgres_url, workspace="server"))
    try:
        mine = laptop.add("laptop: staged before the server's commit")
        theirs = server.add("server: committed while the laptop had a stage")
        server.commit("server work")
        assert [c.id for c in laptop.status().changes] == [mine]  # only what it staged
        laptop.commit("laptop work")
        held = {m.digest.hex() for m in laptop.snapshot()}
        assert laptop.get(mine).digest.hex() in held
        assert server.get(theirs).digest.hex() in held
        assert len(held) == 3
        # A staged edit of a memory another workspace changed meanwhile is refused.
        server.update_entry(theirs, relevance=0.2)
        laptop.update_entry(theirs, relevance=0.9)
        server.commit("server edit")
        before = laptop.store.list_refs()
        with pytest.raises(ConcurrentUpdateError, match="conflict with the new commits"):
            laptop.commit("laptop edit")
        assert laptop.store.list_refs() == before
    finally:
        laptop.close()
        server.close()


def test_tables_made_inside_a_rolled_back_transaction_stay(postgres_url: str) -> None:
    """A component's first use inside a failing transaction does not lose its tables."""
    store = PostgresStore.open(postgres_url, create=True)
    try:
        with pytest.raises(RuntimeError), store.transaction():  # noqa: PT012
            store.migrate("probe", [(1, "make a table", ("CREATE TABLE probe (x integer)",))])
            raise RuntimeError("the caller's work fails")
        with psycopg.connect(postgres_url) as conn:
            assert conn.execute("SELECT to_regclass('probe')").fetchone() != (None,)
            steps = conn.execute(
                "SELECT step FROM schema_migrations WHERE component = 'probe'"
            ).fetchall()
        assert steps == [(1,)]
        store.migrate("probe", [(1, "make a table", ("CREATE TABLE probe (x integer)",))])
    finally:
        store.close()


def test_each_workspace_has_its_own_head_reflog_and_shares_the_branches(
    postgres_url: str,
) -> None:
    with PostgresStore.open(postgres_url, create=True) as bare:
        assert bare.set_ref_if_equals("HEAD", None, "ref: refs/heads/main")
    one = Repository(PostgresStore.open(postgres_url, workspace="one"))
    two = Repository(PostgresStore.open(postgres_url, workspace="two"))
    try:
        one.add("a fact from workspace one")
        first = one.commit("one's commit", author="agent-one")
        two.create_branch("dev")
        two.switch("dev")
        assert [(e.new, e.who, e.why) for e in one.reflog()] == [
            (first, "agent-one", "commit (initial): one's commit")
        ]
        assert [e.why for e in two.reflog()] == ["checkout: moving from main to dev"]
        assert [e.new for e in two.reflog("main")] == [first]  # branches are shared
    finally:
        one.close()
        two.close()


def test_gc_collects_the_store_and_refuses_a_workspace(postgres_url: str) -> None:
    with PostgresStore.open(postgres_url, create=True) as bare:
        assert bare.set_ref_if_equals("HEAD", None, "ref: refs/heads/main")
    with Repository(PostgresStore.open(postgres_url, workspace="w")) as repo:
        repo.add("kept in the workspace's commit")
        kept = repo.commit("kept")
        repo.add("only on the reset-away commit")
        repo.commit("lost")
        repo.reset("HEAD~1", mode="hard")
        repo.add("staged in the workspace, not committed")
        with pytest.raises(InvalidInputError, match="not from a workspace"):
            repo.gc()
    with Repository(PostgresStore.open(postgres_url)) as repo:
        report = repo.gc(grace_seconds=0)
        assert report.removed["commit"] == 1
        assert repo.verify().ok
    with Repository(PostgresStore.open(postgres_url, workspace="w")) as repo:
        assert repo.head() == kept
        staged = [c.new for c in repo.status().changes]
        assert staged  # the workspace's stage was a root: kept
        assert repo.verify().ok
