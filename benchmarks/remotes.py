"""PostgreSQL backend and remotes: PostgreSQL against SQLite, and clone/push/fetch against git.

Run from the project root:

    .venv/bin/python benchmarks/remotes.py            # 100,000 atoms, 1,000 commits, ~12 min
    .venv/bin/python benchmarks/remotes.py --quick    # 2,000 atoms, 20 commits, < 1 minute
    .venv/bin/python benchmarks/remotes.py --atoms 20000 --commits 200 --no-postgres-remotes

Measured, side by side in one run, on the real text of ``common.Corpus``:

1. the PostgreSQL store against the SQLite store, same atoms: ingest of
   ``--atoms`` atoms in one commit (``add_atoms`` + ``commit``); the first
   ``repo.search`` on a fresh ``Repository`` (both backends index deferred
   atoms then); ``repo.context(budget=4000, query=Q)`` and
   ``repo.search(Q, limit=10)`` for the seven queries of ``assembly.py``,
   interleaved, medians. PostgreSQL is a throwaway cluster on 127.0.0.1
   started with ``durable=True`` (fsync and synchronous commit on, as SQLite
   runs with synchronous=FULL);
2. remotes against git, on a history of ``--commits`` commits of 100 new
   memories each and its git twin (each memory one file holding its text, 100
   files added per commit, built with ``git fast-import``, then ``git gc``):
   clone over a path (``sync.clone``) against ``git clone --no-local``; clone
   from a live server (``ctx://``, the server in a child interpreter) against
   ``git clone git://`` from ``git daemon``; push of the whole history into an
   empty repository over a path and over ``ctx://`` against ``git push`` into
   an empty bare repository over ``file://`` and ``git://``; fetch of 10 new
   commits after the clone, on this history and on one of a tenth of the
   commits (the bytes must follow the change, not the history); and (unless
   ``--no-postgres-remotes``) push, clone and fetch between SQLite and
   PostgreSQL stores against the same transfer between two SQLite stores.

Bytes: a ContextFS transfer over a path counts the pack it moved
(``TransferResult.bytes``; for a clone, the pack the source makes for it,
made again untimed): no socket, one process reads one store and writes the
other.
git over a path counts the ``.pack`` file the receiver kept. Over ``ctx://``
and ``git://`` a small counting TCP proxy (a child interpreter) counts the
bytes on the socket, both directions, in a second, separate transfer, so the
proxy never slows a timed one.

Everything happens in a temporary directory removed at the end; the cluster,
the servers, the proxies and ``git daemon`` are stopped even on failure.
Progress goes to stderr, the tables to stdout, and the report to the section
"remotes" of ``benchmarks/RESULTS.md`` (``--output`` to write elsewhere); the
rest of that file is left as it is (see ``common.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg

from assembly import QUERIES
from common import (
    EPOCH,
    SERVE_HANDLE_CODE,
    SERVER_CODE,
    Child,
    Corpus,
    Plans,
    Report,
    Rounds,
    Row,
    bullets,
    clocked,
    fmt_bytes,
    fmt_seconds,
    machine_lines,
    markdown_table,
    measured_version,
    object_table_bytes,
    progress,
    publish_section,
    section_opening,
    subsection,
    tree_bytes,
)
from contextfs import T_STRING, MemoryAtom, Repository
from contextfs.history.tree import EMPTY_TREE_ID, LEAF_CAPACITY, decode_node
from contextfs.model.ids import from_hex
from contextfs.remote import sync
from contextfs.testing.pgcluster import Cluster, free_port, start_cluster
from run import COMMITTER, GIT_ENV, data_block, fast_import, git

SECTION = "remotes"
HEADING = "## PostgreSQL backend and remotes"
BUDGET = 4000  # tokens asked of every repo.context
SEARCH_LIMIT = 10
PER_COMMIT = 100  # new memories per commit of the histories
FETCH_COMMITS = 10  # commits each incremental fetch brings
YEAR_SECONDS = 365 * 86_400
NOW = 1_735_689_600_000_000  # 2025-01-01 in microseconds: every query ranks at the same "now"
GIT_TIME = 1_704_067_200  # 2024-01-01: the git twin's commit times count up from here

# The byte counter, in a child interpreter: relays its own port to 127.0.0.1:argv[1]
# and, as each connection ends, prints "sent received open": bytes from the client,
# bytes to it, and how many connections are still open.
PROXY_CODE = (
    """
import asyncio, signal, sys

UPSTREAM = int(sys.argv[1])
live = 0

async def pump(reader, writer, counts, index):
    try:
        while data := await reader.read(1 << 18):
            counts[index] += len(data)
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        pass

async def handle(client_reader, client_writer):
    global live
    live += 1
    counts = [0, 0]
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", UPSTREAM)
    except OSError:
        upstream_writer = None
    if upstream_writer is not None:
        await asyncio.gather(
            pump(client_reader, upstream_writer, counts, 0),
            pump(upstream_reader, client_writer, counts, 1),
        )
        upstream_writer.close()
    client_writer.close()
    live -= 1
    print(counts[0], counts[1], live, flush=True)
"""
    + SERVE_HANDLE_CODE
)


@dataclass(frozen=True)
class Plan:
    """How much to measure."""

    atoms: int = 100_000  # item 1: atoms ingested in one commit
    ingest_runs: int = 2  # item 1: fresh stores per backend; the best is reported
    query_runs: int = 7  # item 1: runs per query and backend (interleaved)
    commits: int = 1_000  # item 2: commits of PER_COMMIT memories in the history
    small_commits: int = 100  # item 2: the short history the fetch is repeated on
    fetch_rounds: int = 3  # item 2: incremental fetches of FETCH_COMMITS commits each
    postgres_remotes: bool = True  # item 2: transfers between SQLite and PostgreSQL


PLANS = Plans(
    script="remotes.py",
    full=Plan(),
    quick=Plan(atoms=2_000, query_runs=3, commits=20, small_commits=2, fetch_rounds=2),
    quick_help="2,000 atoms, histories of 20 and 2 commits",
    options={
        "atoms": "atoms ingested in item 1 (100,000)",
        "commits": "commits in the history (1,000)",
        "small_commits": "commits in the short history (100)",
        "fetch_rounds": "incremental fetch rounds (3)",
        "query_runs": "runs per query and backend (7)",
    },
)


def check_plan(plan: Plan) -> str:
    """Why ``plan`` cannot run, or nothing."""
    if plan.atoms < 100 or plan.small_commits < 1 or plan.commits <= plan.small_commits:
        return "need --atoms >= 100 and --commits > --small-commits >= 1"
    if plan.fetch_rounds < 1 or plan.query_runs < 1:
        return "need --fetch-rounds >= 1 and --query-runs >= 1"
    return ""


@dataclass
class Results:
    """Everything the run found, beyond the common table."""

    report: Report = field(default_factory=Report)
    transfers: list[Transfer] = field(default_factory=list)
    queries: list[QueryRow] = field(default_factory=list)
    steps: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    readings: list[str] = field(default_factory=list)  # what the figures show, from this run


# -- child processes -----------------------------------------------------------------


class Proxy(Child):
    """The counting TCP proxy in front of another child."""

    def counted(self) -> int:
        """Bytes, both directions, of the connections since the last call.

        Waits until every connection through the proxy has closed.
        """
        total = 0
        while True:
            sent, received, live = (int(x) for x in self.line().split())
            total += sent + received
            if live == 0:
                return total


C = TypeVar("C", bound=Child)


class Children:
    """Starts the benchmark's servers and proxies; stops every one of them on exit."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.stack = contextlib.ExitStack()

    def __enter__(self) -> Children:
        self.logs.mkdir(exist_ok=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stack.close()

    def _started(self, child: C) -> C:
        self.stack.callback(child.stop)
        return child

    def serve(self, folder: Path) -> Child:
        """A ContextFS server on the repository in ``folder``."""
        log = self.logs / f"serve-{folder.name}.log"
        name = f"server of {folder.name}"
        return self._started(Child.python(name, SERVER_CODE, [str(folder)], log, env=GIT_ENV))

    def proxy(self, upstream: Child) -> Proxy:
        """A counting proxy in front of ``upstream``."""
        argv = [sys.executable, "-c", PROXY_CODE, str(upstream.port)]
        log = self.logs / f"proxy-{upstream.port}.log"
        return self._started(Proxy(f"proxy to the {upstream.name}", argv, log, env=GIT_ENV))

    def git_daemon(self, root: Path) -> Child:
        """``git daemon`` serving every repository under ``root``, pushes allowed."""
        port = free_port()
        argv = [
            "git",
            "daemon",
            "--listen=127.0.0.1",
            f"--port={port}",
            f"--base-path={root}",
            "--export-all",
            "--enable=receive-pack",
            "--reuseaddr",
            "--informative-errors",
            str(root),
        ]
        log = self.logs / "git-daemon.log"
        return self._started(Child("git daemon", argv, log, port=port, env=GIT_ENV))


# -- measuring helpers -----------------------------------------------------------------


def make_atom(corpus: Corpus, item: int) -> MemoryAtom:
    """Item ``item`` of the corpus as a ``String`` atom.

    Relevance and time come from ``random.Random(item)``, so an item is the same
    atom (same id) in every repository that holds it.
    """
    rng = random.Random(item)
    when = EPOCH + timedelta(seconds=rng.randrange(YEAR_SECONDS))
    return MemoryAtom(corpus.text(item), T_STRING, when, "bench", rng.random())


def stored_bytes(repo: Repository) -> tuple[int, int]:
    """Objects and object bytes in ``repo``'s store, less what ``Repository.init`` wrote.

    For a new clone, exactly what the transfer brought.
    """
    count = total = 0
    for oid, _, data in repo.store.iter_objects():
        if oid != EMPTY_TREE_ID:
            count += 1
            total += len(data)
    return count, total


def create_schema(cluster: Cluster, name: str) -> str:
    """Make an empty schema in the cluster; return a URL whose tables go there."""
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")  # a name made here, never input
    return cluster.url(schema=name)


def git_packs(git_dir: Path) -> dict[str, int]:
    """Every pack file of a git repository: name -> size."""
    return {p.name: p.stat().st_size for p in (git_dir / "objects" / "pack").glob("*.pack")}


def git_received(git_dir: Path, before: dict[str, int]) -> int:
    """Bytes of the pack files that appeared in ``git_dir`` since ``before``.

    Receivers here keep every pack (``transfer.unpackLimit=1``), so this is the
    pack the sender produced.
    """
    return sum(size for name, size in git_packs(git_dir).items() if name not in before)


# -- 1. PostgreSQL against SQLite ----------------------------------------------------


@dataclass
class Backend:
    """One backend of item 1 and what was measured on it."""

    name: str
    folder: Path | None = None  # the repository of the last ingest run
    ingest: Rounds = field(default_factory=Rounds)
    first_query: float = 0.0
    context: dict[str, Rounds] = field(default_factory=dict)
    search: dict[str, Rounds] = field(default_factory=dict)


@dataclass
class QueryRow:
    """One query of item 1 on both backends."""

    query: str
    matches: int
    atoms: int
    tokens: int
    context: tuple[float, float]  # medians: SQLite, PostgreSQL
    search: tuple[float, float]


def ingest(folder: Path, atoms: list[MemoryAtom], store: str | None) -> float:
    """Init a repository (SQLite, or in the PostgreSQL store ``store``); time add + commit.

    Without an embedder: item 1 compares the backends' full-text paths, and the
    first query would otherwise be the embedding of every atom.
    """
    repo = Repository.init(folder, store=store, embedder="none")
    try:
        start = time.perf_counter()
        repo.add_atoms(atoms)
        repo.commit("ingest")
        return time.perf_counter() - start
    finally:
        repo.close()


def bench_backends(
    plan: Plan, corpus: Corpus, cluster: Cluster, work: Path, results: Results
) -> None:
    """Item 1: the same atoms in SQLite and in PostgreSQL; ingest, first query, queries."""
    atoms = [make_atom(corpus, item) for item in range(plan.atoms)]
    sqlite, postgres = Backend("SQLite"), Backend("PostgreSQL")
    progress(f"1. ingest of {plan.atoms:,} atoms, {plan.ingest_runs} run(s) per backend")
    for run in range(plan.ingest_runs):
        sqlite.folder = work / f"sqlite-{run}"
        sqlite.ingest.add(ingest(sqlite.folder, atoms, None))
        postgres.folder = work / f"postgres-{run}"
        url = create_schema(cluster, f"ingest_{run}")
        postgres.ingest.add(ingest(postgres.folder, atoms, url))
        progress(
            f"   SQLite {fmt_seconds(sqlite.ingest.values[-1])}, "
            f"PostgreSQL {fmt_seconds(postgres.ingest.values[-1])}"
        )
    with contextlib.ExitStack() as stack:
        repos: dict[str, Repository] = {}
        for backend in (sqlite, postgres):
            assert backend.folder is not None
            repo = repos[backend.name] = stack.enter_context(Repository.open(backend.folder))
            first = functools.partial(repo.search, QUERIES[0], limit=SEARCH_LIMIT, now=NOW)
            backend.first_query, _ = clocked(first)
            progress(f"   first query, {backend.name}: {fmt_seconds(backend.first_query)}")
        progress(f"1. context and search: {len(QUERIES)} queries x {plan.query_runs} runs")
        for query in QUERIES:
            results.queries.append(query_both(plan, query, (sqlite, postgres), repos, results))
    report_backends(plan, sqlite, postgres, results)


def query_both(
    plan: Plan,
    query: str,
    backends: tuple[Backend, Backend],
    repos: dict[str, Repository],
    results: Results,
) -> QueryRow:
    """Time one query on both backends, interleaved; check that they answer alike."""
    answers: dict[str, tuple[str, tuple[str, ...]]] = {}
    for _ in range(plan.query_runs):
        for backend in backends:
            repo = repos[backend.name]
            ask = functools.partial(repo.context, budget=BUDGET, query=query, now=NOW)
            seconds, context = clocked(ask)
            backend.context.setdefault(query, Rounds()).add(seconds)
            find = functools.partial(repo.search, query, limit=SEARCH_LIMIT, now=NOW)
            seconds, hits = clocked(find)
            backend.search.setdefault(query, Rounds()).add(seconds)
            answers[backend.name] = (context.text, tuple(hit.atom.content_hash for hit in hits))
            if context.tokens > BUDGET:
                raise RuntimeError(f"{backend.name}: the context for {query!r} is over budget")
    if len(set(answers.values())) != 1:
        results.problems.append(
            f"SQLite and PostgreSQL answer {query!r} differently (prompt text or search hits)"
        )
    first = repos[backends[0].name]
    matches = len(first.search(query, limit=10**9, now=NOW))
    context = first.context(budget=BUDGET, query=query, now=NOW)
    sqlite, postgres = backends
    row = QueryRow(
        query,
        matches,
        len(context.atoms),
        context.tokens,
        (sqlite.context[query].median, postgres.context[query].median),
        (sqlite.search[query].median, postgres.search[query].median),
    )
    progress(
        f"   {query!r} ({matches:,} matches): context {fmt_seconds(row.context[0])} / "
        f"{fmt_seconds(row.context[1])}, search {fmt_seconds(row.search[0])} / "
        f"{fmt_seconds(row.search[1])} (SQLite / PostgreSQL)"
    )
    return row


def report_backends(plan: Plan, sqlite: Backend, postgres: Backend, results: Results) -> None:
    """The rows and notes of item 1: PostgreSQL / SQLite."""
    report = results.report
    ours, theirs = postgres.ingest.best, sqlite.ingest.best
    report.add(
        Row(
            f"1. ingest {plan.atoms:,} atoms in one commit (add_atoms + commit), best of "
            f"{plan.ingest_runs}",
            f"PostgreSQL: {fmt_seconds(ours)} ({plan.atoms / ours:,.0f} atoms/s)",
            f"SQLite: {fmt_seconds(theirs)} ({plan.atoms / theirs:,.0f} atoms/s)",
            ours / theirs,
        )
    )
    report.add(
        Row(
            "1. first query after ingest (fresh Repository: indexes every deferred atom)",
            f"PostgreSQL: {fmt_seconds(postgres.first_query)}",
            f"SQLite: {fmt_seconds(sqlite.first_query)}",
            postgres.first_query / sqlite.first_query,
        )
    )
    query_rows(results)
    report.notes.append(backends_note(plan, sqlite, postgres))
    context = [row.context[1] / row.context[0] for row in results.queries]
    search = [row.search[1] / row.search[0] for row in results.queries]
    results.readings.append(
        f"PostgreSQL / SQLite: ingest {ours / theirs:.2f}x, the first query (the full-text "
        f"index catch-up) {postgres.first_query / sqlite.first_query:.2f}x, then per query "
        f"{min(context):.2f}x to {max(context):.2f}x for `context` and {min(search):.2f}x "
        f"to {max(search):.2f}x for `search`. PostgreSQL runs in its own processes on the "
        "same cores and every read is a round trip over TCP; SQLite reads in process."
    )


def query_rows(results: Results) -> None:
    """Item 1's query rows: the median of the query medians, and the worst query."""
    report = results.report
    calls = {
        "context": f"repo.context(budget={BUDGET:,}, query=Q)",
        "search": f"repo.search(Q, limit={SEARCH_LIMIT})",
    }
    for what, call in calls.items():
        pairs = {row.query: getattr(row, what) for row in results.queries}
        on_postgres = Rounds([pg for _, pg in pairs.values()]).median
        on_sqlite = Rounds([lite for lite, _ in pairs.values()]).median
        report.add(
            Row(
                f"1. {call}: median of the {len(pairs)} query medians",
                f"PostgreSQL: {fmt_seconds(on_postgres)}",
                f"SQLite: {fmt_seconds(on_sqlite)}",
                on_postgres / on_sqlite,
            )
        )
        worst = max(pairs, key=lambda q: pairs[q][1] / pairs[q][0])
        matches = next(row.matches for row in results.queries if row.query == worst)
        report.add(
            Row(
                f"1. {call}: the query with the highest ratio ({worst!r}, {matches:,} matches)",
                f"PostgreSQL: {fmt_seconds(pairs[worst][1])}",
                f"SQLite: {fmt_seconds(pairs[worst][0])}",
                pairs[worst][1] / pairs[worst][0],
            )
        )


def backends_note(plan: Plan, sqlite: Backend, postgres: Backend) -> str:
    """How item 1's stores are built and queried, with every ingest run."""
    return (
        f"Item 1: items 0 to {plan.atoms - 1:,} of the corpus as `String` atoms (relevance "
        "uniform in [0, 1) and a time uniform over 2024, from `random.Random(item)`), built "
        "once. Each ingest run makes a fresh repository without an embedder (SQLite: "
        "`Repository.init(folder, embedder='none')`; PostgreSQL: the same with `store=URL` "
        "on a new schema), so the backends' full-text paths are compared, and times "
        "`add_atoms` + `commit`. All runs: SQLite "
        + ", ".join(fmt_seconds(x) for x in sqlite.ingest.values)
        + "; PostgreSQL "
        + ", ".join(fmt_seconds(x) for x in postgres.ingest.values)
        + ". The first query is `repo.search('decorator')` on a newly opened `Repository` "
        "after the last ingest: both backends defer full-text indexing from ingest to the "
        f"first query, so this is the index catch-up. Then each query runs {plan.query_runs} "
        "times per backend on one warm `Repository` each, SQLite and PostgreSQL interleaved "
        "(context, then search); medians per query in the table below. Both backends must "
        "give the same prompt text and the same hits for every query (checked)."
    )


def query_table(rows: list[QueryRow]) -> str:
    """Item 1 per query, as Markdown."""
    lines = [
        "| Query | Matches | Context atoms / tokens | context: SQLite | PostgreSQL | ratio "
        "| search: SQLite | PostgreSQL | ratio |",
        "|" + "---|" * 9,
    ]
    for row in rows:
        (cs, cp), (ss, sp) = row.context, row.search
        lines.append(
            f"| {row.query} | {row.matches:,} | {row.atoms} / {row.tokens:,} "
            f"| {fmt_seconds(cs)} | {fmt_seconds(cp)} | {cp / cs:.2f} "
            f"| {fmt_seconds(ss)} | {fmt_seconds(sp)} | {sp / ss:.2f} |"
        )
    return "\n".join(lines)


# -- 2. remotes against git: the histories ----------------------------------------------


@dataclass
class History:
    """A ContextFS repository and its git twin, holding the same memories."""

    name: str
    folder: Path  # the ContextFS repository
    git_dir: Path  # the bare git twin
    commits: int = 0
    build: float = 0.0  # seconds: every add_atoms + commit
    git_build: float = 0.0  # seconds: git fast-import + git gc
    kinds: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (count, bytes)


def blocks(first_item: int, commits: int) -> list[range]:
    """The items of ``commits`` commits of :data:`PER_COMMIT` memories from ``first_item``."""
    return [
        range(first_item + n * PER_COMMIT, first_item + (n + 1) * PER_COMMIT)
        for n in range(commits)
    ]


def git_path(item: int) -> str:
    """Where item ``item`` lives in the git twin: 1,000 files per directory, in item order."""
    return f"{item // 1000:03d}/{item:07d}.txt"


def git_stream(
    corpus: Corpus, commits: list[range], parent: str | None, first_time: int
) -> Iterator[bytes]:
    """A fast-import stream: one commit per block, adding one file per memory."""
    for n, block in enumerate(commits):
        out = [
            b"commit refs/heads/main\ncommitter %s %d +0000\n" % (COMMITTER, first_time + n),
            data_block(b"memories %d to %d" % (block.start, block.stop - 1)),
        ]
        if n == 0 and parent is not None:
            out.append(b"from %s\n" % parent.encode())
        for item in block:
            out.append(b"M 100644 inline %s\n" % git_path(item).encode())
            out.append(data_block(corpus.text(item).encode()))
        out.append(b"\n")
        yield b"".join(out)


def grow(history: History, corpus: Corpus, commits: list[range]) -> None:
    """Add ``commits`` to both sides of ``history`` (each block one commit)."""
    with Repository.open(history.folder) as repo:
        start = time.perf_counter()
        for block in commits:
            repo.add_atoms([make_atom(corpus, item) for item in block])
            repo.commit(f"memories {block.start:,} to {block.stop - 1:,}")
        history.build += time.perf_counter() - start
    start = time.perf_counter()
    parent = git("rev-parse", "main", cwd=history.git_dir).strip() if history.commits else None
    fast_import(history.git_dir, git_stream(corpus, commits, parent, GIT_TIME + history.commits))
    history.git_build += time.perf_counter() - start
    history.commits += len(commits)


def build_history(name: str, commits: int, corpus: Corpus, work: Path) -> History:
    """A history of ``commits`` commits of :data:`PER_COMMIT` memories, on both sides."""
    history = History(name, work / name, work / "git" / f"{name}.git")
    Repository.init(history.folder, embedder="none").close()
    git("init", "--quiet", "--bare", str(history.git_dir), cwd=work)
    grow(history, corpus, blocks(0, commits))
    # A served repository is packed; gc is what keeps it so, on both sides.
    history.git_build += clocked(lambda: git("gc", "--quiet", cwd=history.git_dir))[0]
    with Repository.open(history.folder) as repo:
        history.build += clocked(repo.gc)[0]
    return history


def object_kinds(folder: Path) -> dict[str, tuple[int, int]]:
    """Objects in a repository by kind: kind -> (count, bytes)."""
    kinds: dict[str, tuple[int, int]] = {}
    with Repository.open(folder) as repo:
        for _, kind, data in repo.store.iter_objects():
            count, total = kinds.get(kind, (0, 0))
            kinds[kind] = (count + 1, total + len(data))
    return kinds


@dataclass(frozen=True)
class Leaves:
    """The leaves of a snapshot tree: how many, and how full."""

    memories: int
    leaves: int
    entries: float  # per leaf, on average
    bytes: float  # per leaf, on average


def leaf_shape(folder: Path) -> Leaves:
    """Walk the HEAD snapshot's tree a level at a time and measure its leaves.

    A commit rewrites every leaf a changed memory lands in, whole, so the
    leaves' size is what a change costs in tree bytes.
    """
    sizes: list[tuple[int, int]] = []
    with Repository.open(folder) as repo:
        head = repo.head()
        assert head is not None
        level = [repo.load_commit(from_hex(head)).tree]
        while level:
            found = repo.store.get_objects(level)
            below: list[bytes] = []
            for oid in level:
                node = decode_node(found[oid].data)
                if node.is_leaf:
                    sizes.append((len(node.items), len(found[oid].data)))
                below.extend(child.id for child in node.children)
            level = below
    count = len(sizes)
    entries = sum(n for n, _ in sizes)
    return Leaves(entries, count, entries / count, sum(b for _, b in sizes) / count)


def report_history(history: History, corpus_bytes: int, results: Results) -> None:
    """Rows and a note on how the history was built and how big it is."""
    report = results.report
    report.add(
        Row(
            f"2. build the history: {history.commits:,} commits of {PER_COMMIT} new memories "
            "(add_atoms + commit each)",
            fmt_seconds(history.build),
            f"git fast-import + git gc: {fmt_seconds(history.git_build)}",
            history.build / history.git_build,
            "not like for like",
        )
    )
    store = object_table_bytes(history.folder)
    packed = tree_bytes(history.git_dir / "objects")
    report.add(
        Row(
            "2. the history on disk after gc: ContextFS objects table vs git's objects (packed)",
            fmt_bytes(store),
            f"git: {fmt_bytes(packed)}",
            store / packed,
            "≤ 1.5",
        )
    )
    kinds = history.kinds = object_kinds(history.folder)
    parts = ", ".join(
        f"{count:,} {kind}s ({fmt_bytes(size)})" for kind, (count, size) in sorted(kinds.items())
    )
    report.notes.append(
        f"The {history.commits:,}-commit history holds {parts}: the memories' text is "
        f"{fmt_bytes(corpus_bytes)}. The git twin holds the same texts, one file per memory "
        "(`NNN/NNNNNNN.txt`, 1,000 files per directory in item order, so a commit of 100 "
        "memories touches one or two directories); it was built with `git fast-import` and "
        "then `git gc` (as a served repository would be packed), and every receiving git "
        "repository keeps the pack it receives (`transfer.unpackLimit=1`)."
    )
    total = sum(size for _, size in kinds.values())
    trees, node_bytes = kinds.get("tree", (0, 0))
    results.readings.append(
        f"What the history is made of: {fmt_bytes(total)} of objects in canonical form, tree "
        f"nodes {node_bytes / total:.0%} of it ({trees:,} nodes, "
        f"{trees / history.commits:.0f} written per commit of {PER_COMMIT} memories, "
        f"{node_bytes / trees:,.0f} bytes each on average) and atoms "
        f"{kinds.get('atom', (0, 0))[1] / total:.0%}. After gc the store keeps them in "
        f"{fmt_bytes(store)} (atoms compressed with a dictionary, every older tree version a "
        "delta of the newer), and a transfer sends them as one pack (compressed, tree nodes "
        f"as deltas); git's packed objects hold the same {fmt_bytes(corpus_bytes)} of text "
        f"and every tree version in {fmt_bytes(packed)} (zlib and deltas)."
    )


# -- 2. remotes against git: the transfers ----------------------------------------------


@dataclass
class Side:
    """One side of a transfer row: how it was done, its time and its bytes."""

    how: str
    seconds: float
    bytes: int


@dataclass
class Transfer:
    """One row of the transfer table: ContextFS and its baseline, in time and in bytes."""

    what: str
    ours: Side
    base: Side

    def cells(self) -> list[str]:
        """The row as table cells."""
        return [
            self.what,
            self.ours.how,
            self.base.how,
            f"{fmt_seconds(self.ours.seconds)} / {fmt_seconds(self.base.seconds)}",
            f"{self.ours.seconds / self.base.seconds:.2f}",
            f"{fmt_bytes(self.ours.bytes)} / {fmt_bytes(self.base.bytes)}",
            f"{self.ours.bytes / self.base.bytes:.2f}",
        ]


def add_transfer(results: Results, row: Transfer) -> None:
    """Record a transfer row and echo it to stderr."""
    results.transfers.append(row)
    cells = row.cells()
    progress(f"  {row.what}: time {cells[3]} ({cells[4]}), bytes {cells[5]} ({cells[6]})")


def transfer_table(rows: list[Transfer]) -> str:
    """The transfer rows as Markdown."""
    header = [
        "Transfer",
        "ContextFS",
        "Baseline",
        "Time: ContextFS / baseline",
        "Ratio",
        "Bytes: ContextFS / baseline",
        "Ratio",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(row.cells()) + " |" for row in rows)
    return "\n".join(lines)


@dataclass
class Endpoints:
    """Where the history is served from: ContextFS and git, direct and through a proxy."""

    source: History
    server: Child
    server_proxy: Proxy
    daemon: Child
    daemon_proxy: Proxy

    def ctx(self, counted: bool = False) -> str:
        """The ``ctx://`` URL of the served history (through the proxy if ``counted``)."""
        port = self.server_proxy.port if counted else self.server.port
        return f"ctx://127.0.0.1:{port}"

    def git(self, repository: str, counted: bool = False) -> str:
        """The ``git://`` URL of ``repository`` under the daemon's root."""
        port = self.daemon_proxy.port if counted else self.daemon.port
        return f"git://127.0.0.1:{port}/{repository}"


def clone_contextfs(url: str, dest: Path, expected: str | None) -> tuple[float, int]:
    """``sync.clone``; return its seconds and the bytes of the pack it brought."""
    seconds, repo = clocked(lambda: sync.clone(url, dest))
    with repo:
        if repo.head() != expected:
            raise RuntimeError(f"the clone of {url} is at {repo.head()}, expected {expected}")
        return seconds, pack_bytes(repo, expected)


def pack_bytes(repo: Repository, head: str | None) -> int:
    """The bytes of the pack a clone of ``head`` carries: made again from ``repo``, untimed."""
    # Imported here: storage.py imports this module under versions that had no packs.
    from contextfs.remote.pack import pack_history

    if head is None:
        return 0
    return sum(len(chunk) for chunk in pack_history(repo.store, [from_hex(head)], []))


def clone_git(url: str, dest: Path, *options: str) -> tuple[float, int]:
    """``git clone --no-checkout``; return its seconds and the pack bytes it received."""
    args = ("clone", "--quiet", "--no-checkout", *options, url, str(dest))
    seconds, _ = clocked(lambda: git(*args, cwd=dest.parent))
    return seconds, git_received(dest / ".git", {})


def bench_clones(ends: Endpoints, work: Path, results: Results) -> Transfer:
    """Clone over a path and from a server, against git; return the path row."""
    source = ends.source
    with Repository.open(source.folder) as repo:
        head = repo.head()
    progress(f"2. clone of {source.commits:,} commits")
    ours = clone_contextfs(str(source.folder), work / "clone-path", head)
    base = clone_git(str(source.git_dir), work / "clone-path-git", "--no-local")
    path_row = Transfer(
        f"clone, {source.commits:,} commits, over a path",
        Side("`sync.clone(path)`; pack bytes", *ours),
        Side("`git clone --no-local`; pack bytes", *base),
    )
    add_transfer(results, path_row)
    seconds, _ = clone_contextfs(ends.ctx(), work / "clone-ctx", head)
    counted = clone_contextfs(ends.ctx(counted=True), work / "clone-ctx-counted", head)
    ours_bytes = ends.server_proxy.counted()
    git_seconds, _ = clone_git(ends.git(source.git_dir.name), work / "clone-git")
    git_counted, _ = clone_git(ends.git(source.git_dir.name, True), work / "clone-git-counted")
    git_bytes = ends.daemon_proxy.counted()
    add_transfer(
        results,
        Transfer(
            f"clone, {source.commits:,} commits, from a server on 127.0.0.1",
            Side(
                "`sync.clone('ctx://…')` from `contextfs serve`; socket bytes", seconds, ours_bytes
            ),
            Side("`git clone git://…` from `git daemon`; socket bytes", git_seconds, git_bytes),
        ),
    )
    results.readings.append(
        f"Over `ctx://` the clone's socket carried {fmt_bytes(ours_bytes)} for a pack of "
        f"{fmt_bytes(counted[1])}: the protocol's framing, the handshake and the refs add "
        f"{(ours_bytes - counted[1]) / counted[1]:.1%}."
    )
    results.report.notes.append(
        f"Clones: through the counting proxy (not timed in the table) the `ctx://` clone took "
        f"{fmt_seconds(counted[0])} and the `git://` clone {fmt_seconds(git_counted)}; the "
        f"`ctx://` socket carried {fmt_bytes(ours_bytes)} for a pack of "
        f"{fmt_bytes(counted[1])}."
    )
    return path_row


def empty_contextfs(folder: Path, store: str | None = None) -> None:
    """A new, empty repository to push into."""
    Repository.init(folder, store=store).close()


def empty_git(git_dir: Path) -> None:
    """A new, empty bare git repository that keeps every pack it receives."""
    git("init", "--quiet", "--bare", str(git_dir), cwd=git_dir.parent)
    git("config", "transfer.unpackLimit", "1", cwd=git_dir)


def push_contextfs(source: History, name: str, url: str) -> tuple[float, int]:
    """Push the history's main branch to ``url`` (as remote ``name``); seconds and bytes."""
    with Repository.open(source.folder) as repo:
        sync.add_remote(repo, name, url)
        seconds, result = clocked(lambda: sync.push(repo, name))
    if not result.updated:
        raise RuntimeError(f"the push to {url} moved no ref")
    return seconds, result.bytes


def push_git(source: History, url: str) -> float:
    """``git push`` of main from the git twin to ``url``; its seconds."""
    args = ("push", "--quiet", url, "refs/heads/main:refs/heads/main")
    return clocked(lambda: git(*args, cwd=source.git_dir))[0]


def bench_pushes(ends: Endpoints, children: Children, work: Path, results: Results) -> Transfer:
    """Push the whole history into empty repositories, against git; return the path row."""
    source = ends.source
    progress(f"2. push of {source.commits:,} commits into empty repositories")
    empty_contextfs(work / "push-path")
    ours = push_contextfs(source, "push-path", str(work / "push-path"))
    target = work / "git" / "push-file.git"
    empty_git(target)
    base_seconds = push_git(source, target.as_uri())
    path_row = Transfer(
        f"push, {source.commits:,} commits, into an empty repository over a path",
        Side("`sync.push` to a path remote; pack bytes", *ours),
        Side("`git push file://…`; pack bytes", base_seconds, git_received(target, {})),
    )
    add_transfer(results, path_row)
    empty_contextfs(work / "push-ctx")
    server = children.serve(work / "push-ctx")
    seconds, _ = push_contextfs(source, "push-ctx", f"ctx://127.0.0.1:{server.port}")
    empty_contextfs(work / "push-ctx-counted")
    counter = children.proxy(children.serve(work / "push-ctx-counted"))
    counted_url = f"ctx://127.0.0.1:{counter.port}"
    counted_seconds, _ = push_contextfs(source, "push-ctx-counted", counted_url)
    ours_bytes = counter.counted()
    git_timed: dict[bool, float] = {}
    for counted in (False, True):
        name = "push-git-counted.git" if counted else "push-git.git"
        empty_git(work / "git" / name)
        git_timed[counted] = push_git(source, ends.git(name, counted))
    git_bytes = ends.daemon_proxy.counted()
    add_transfer(
        results,
        Transfer(
            f"push, {source.commits:,} commits, into an empty repository on a server",
            Side("`sync.push` to `ctx://…`; socket bytes", seconds, ours_bytes),
            Side("`git push git://…` to `git daemon`; socket bytes", git_timed[False], git_bytes),
        ),
    )
    results.report.notes.append(
        f"Through the counting proxy the `ctx://` push took {fmt_seconds(counted_seconds)} and "
        f"the `git://` push {fmt_seconds(git_timed[True])}."
    )
    return path_row


def bench_postgres_remotes(
    source: History,
    cluster: Cluster,
    work: Path,
    baselines: tuple[Transfer, Transfer],
    results: Results,
) -> None:
    """Push, clone and fetch between SQLite and PostgreSQL, against SQLite to SQLite."""
    clone_row, push_row = baselines
    with Repository.open(source.folder) as repo:
        head = repo.head()
    progress(f"2. SQLite <-> PostgreSQL transfers of {source.commits:,} commits")
    url = create_schema(cluster, "push_target")
    empty_contextfs(work / "pg-push", store=url)
    pushed = push_contextfs(source, "postgres", url)
    add_transfer(
        results,
        Transfer(
            f"push, {source.commits:,} commits, SQLite into an empty PostgreSQL store",
            Side("`sync.push` to `postgresql://…`; pack bytes", *pushed),
            Side("the same push into an empty SQLite store (row above)", *push_side(push_row)),
        ),
    )
    cloned = clone_contextfs(url, work / "pg-clone", head)
    add_transfer(
        results,
        Transfer(
            f"clone, {source.commits:,} commits, PostgreSQL into a new SQLite store",
            Side("`sync.clone('postgresql://…')`; pack bytes", *cloned),
            Side("`sync.clone(path)` SQLite to SQLite (row above)", *push_side(clone_row)),
        ),
    )
    target = create_schema(cluster, "fetch_target")
    with Repository.init(work / "pg-fetch", store=target) as repo:
        sync.add_remote(repo, "origin", str(source.folder))
        seconds, result = clocked(lambda: sync.fetch(repo, "origin"))
    add_transfer(
        results,
        Transfer(
            f"fetch, {source.commits:,} commits, SQLite into a new PostgreSQL store",
            Side(
                "`sync.fetch` into `Repository.init(store=URL)`; pack bytes",
                seconds,
                result.bytes,
            ),
            Side("`sync.clone(path)` SQLite to SQLite (row above)", *push_side(clone_row)),
        ),
    )


def push_side(row: Transfer) -> tuple[float, int]:
    """The ContextFS figures of an earlier row, to serve as a baseline."""
    return row.ours.seconds, row.ours.bytes


@dataclass
class Fetches:
    """Each round's seconds and bytes, for one way of fetching."""

    seconds: Rounds = field(default_factory=Rounds)
    bytes: Rounds = field(default_factory=Rounds)

    def add(self, seconds: float, size: int) -> None:
        """Record one round."""
        self.seconds.add(seconds)
        self.bytes.add(size)

    def side(self, how: str) -> Side:
        """Medians over the rounds."""
        return Side(how, self.seconds.median, round(self.bytes.median))


def fetch_contextfs(folder: Path, expected: str | None) -> tuple[float, sync.TransferResult]:
    """``sync.fetch`` of origin into the clone in ``folder``; its seconds and result."""
    with Repository.open(folder) as repo:
        seconds, result = clocked(lambda: sync.fetch(repo, "origin"))
        tip = repo.store.read_ref("refs/remotes/origin/main")
    if tip != expected:
        raise RuntimeError(f"the fetch into {folder} reached {tip}, expected {expected}")
    return seconds, result


def fetch_git(folder: Path) -> tuple[float, int]:
    """``git fetch`` of origin into the clone in ``folder``; seconds and pack bytes."""
    before = git_packs(folder / ".git")
    args = ("-c", "transfer.unpackLimit=1", "fetch", "--quiet", "origin")
    seconds, _ = clocked(lambda: git(*args, cwd=folder))
    return seconds, git_received(folder / ".git", before)


FETCH_WAYS = ("path", "git", "ctx", "ctx-counted", "daemon", "daemon-counted", "small", "small-git")


def head_of(folder: Path) -> str | None:
    """The commit HEAD names in the repository in ``folder``."""
    with Repository.open(folder) as repo:
        return repo.head()


def fetch_round(ends: Endpoints, small: History, work: Path, ways: dict[str, Fetches]) -> str:
    """Fetch the histories' new commits every way into the clones; what moved over a path."""
    head, small_head = head_of(ends.source.folder), head_of(small.folder)
    seconds, fetched = fetch_contextfs(work / "clone-path", head)
    ways["path"].add(seconds, fetched.bytes)
    shape = f"{fetched.objects:,} objects moved"
    ways["git"].add(*fetch_git(work / "clone-path-git"))
    seconds, fetched = fetch_contextfs(work / "clone-ctx", head)
    ways["ctx"].add(seconds, fetched.bytes)
    seconds, fetched = fetch_contextfs(work / "clone-ctx-counted", head)
    ways["ctx-counted"].add(seconds, ends.server_proxy.counted())
    shape += f" ({fetched.objects:,} over `ctx://`)"
    ways["daemon"].add(*fetch_git(work / "clone-git"))
    seconds, _ = fetch_git(work / "clone-git-counted")
    ways["daemon-counted"].add(seconds, ends.daemon_proxy.counted())
    seconds, fetched = fetch_contextfs(work / "clone-small", small_head)
    ways["small"].add(seconds, fetched.bytes)
    ways["small-git"].add(*fetch_git(work / "clone-small-git"))
    return shape


def bench_fetches(
    plan: Plan,
    corpus: Corpus,
    ends: Endpoints,
    small: History,
    work: Path,
    clone_row: Transfer,
    results: Results,
) -> None:
    """Rounds of 10 new commits on both histories, fetched every way into the clones."""
    large = ends.source
    first_item = large.commits * PER_COMMIT
    ways = {name: Fetches() for name in FETCH_WAYS}
    progress(f"2. fetch of {FETCH_COMMITS} new commits into the clones, {plan.fetch_rounds} rounds")
    small_clone = clone_contextfs(str(small.folder), work / "clone-small", head_of(small.folder))
    small_git_clone = clone_git(str(small.git_dir), work / "clone-small-git", "--no-local")
    shapes: list[str] = []
    for round_ in range(plan.fetch_rounds):
        new = blocks(first_item + round_ * FETCH_COMMITS * PER_COMMIT, FETCH_COMMITS)
        grow(large, corpus, new)
        grow(small, corpus, new)
        shapes.append(fetch_round(ends, small, work, ways))
        progress(
            f"   round {round_ + 1}: "
            + "; ".join(
                f"{name} {fmt_seconds(way.seconds.values[-1])}, {fmt_bytes(way.bytes.values[-1])}"
                for name, way in ways.items()
            )
        )
    fetch_transfers(plan, ways, results)
    report_scaling(plan, clone_row, small_clone, small_git_clone, ways, results)
    fetch_readings(plan, (large, small), clone_row, ways, results)
    results.report.notes.append(
        f"Fetches, round by round, on the {plan.commits:,}-commit history: over a path "
        + "; ".join(shapes)
        + "; bytes over a path "
        + ", ".join(fmt_bytes(x) for x in ways["path"].bytes.values)
        + ", on the `ctx://` socket "
        + ", ".join(fmt_bytes(x) for x in ways["ctx-counted"].bytes.values)
        + " (the same pack, plus the protocol's framing, the refs and the request's commit "
        "ids), on the `git://` socket "
        + ", ".join(fmt_bytes(x) for x in ways["daemon-counted"].bytes.values)
        + "."
    )


def fetch_transfers(plan: Plan, ways: dict[str, Fetches], results: Results) -> None:
    """The fetch rows of the transfer table: long history over a path and a server, short."""
    change = f"{FETCH_COMMITS} new commits ({FETCH_COMMITS * PER_COMMIT:,} memories)"
    median_of = f"median of {plan.fetch_rounds} rounds"
    add_transfer(
        results,
        Transfer(
            f"fetch {change} after a clone of {plan.commits:,} commits, over a path ({median_of})",
            ways["path"].side("`sync.fetch`, path remote; pack bytes"),
            ways["git"].side("`git fetch`, path remote; pack bytes"),
        ),
    )
    add_transfer(
        results,
        Transfer(
            f"the same fetch from a server on 127.0.0.1 ({median_of})",
            Side(
                "`sync.fetch` from `ctx://…`; socket bytes",
                ways["ctx"].seconds.median,
                round(ways["ctx-counted"].bytes.median),
            ),
            Side(
                "`git fetch` from `git://…`; socket bytes",
                ways["daemon"].seconds.median,
                round(ways["daemon-counted"].bytes.median),
            ),
        ),
    )
    add_transfer(
        results,
        Transfer(
            f"fetch {change} after a clone of {plan.small_commits:,} commits, over a path "
            f"({median_of})",
            ways["small"].side("`sync.fetch`, path remote; pack bytes"),
            ways["small-git"].side("`git fetch`, path remote; pack bytes"),
        ),
    )


def fetch_readings(
    plan: Plan,
    histories: tuple[History, History],
    clone_row: Transfer,
    ways: dict[str, Fetches],
    results: Results,
) -> None:
    """Why a fetch's bytes follow the snapshot's tree shape, not the history's length."""
    big, short = (leaf_shape(history.folder) for history in histories)
    ours, theirs = ways["path"].bytes.median, ways["small"].bytes.median
    results.readings.append(
        f"A fetch of the same {FETCH_COMMITS * PER_COMMIT:,} new memories moved "
        f"{fmt_bytes(ours)} after the {plan.commits:,}-commit clone and {fmt_bytes(theirs)} "
        f"after the {plan.small_commits:,}-commit one ({ours / theirs:.2f}x). What differs is "
        "the snapshot the memories land in, not the history: a commit rewrites whole every "
        "leaf a new memory lands in (and the interior nodes above it), and the leaves hold "
        f"{big.entries:.1f} entries ({big.bytes:,.0f} bytes) on average at {big.memories:,} "
        f"memories against {short.entries:.1f} ({short.bytes:,.0f} bytes) at "
        f"{short.memories:,} (the two histories at the end of the run). A leaf holds at "
        f"most {LEAF_CAPACITY} entries, so a change's cost is bounded by the tree's shape "
        "whatever the history's length; the "
        f"{plan.commits:,}-commit clone, which carries the history, is "
        f"{clone_row.ours.bytes / ours:.0f}x the fetch."
    )


def report_scaling(
    plan: Plan,
    clone_row: Transfer,
    small_clone: tuple[float, int],
    small_git_clone: tuple[float, int],
    ways: dict[str, Fetches],
    results: Results,
) -> None:
    """Rows showing that a fetch's bytes follow the change, not the history."""
    ours_large, ours_small = ways["path"].bytes.median, ways["small"].bytes.median
    git_large, git_small = ways["git"].bytes.median, ways["small-git"].bytes.median
    results.report.add(
        Row(
            f"2. bytes of a {FETCH_COMMITS}-commit fetch, after {plan.commits:,} / after "
            f"{plan.small_commits:,} commits (the quotient in each cell)",
            f"{fmt_bytes(ours_large)} / {fmt_bytes(ours_small)} = {ours_large / ours_small:.2f}",
            f"git: {fmt_bytes(git_large)} / {fmt_bytes(git_small)} = {git_large / git_small:.2f}",
            None,
            "≈ 1 (the change, not the history)",
        )
    )
    clone, git_clone = clone_row.ours.bytes, clone_row.base.bytes
    results.report.add(
        Row(
            f"2. bytes of the {plan.commits:,}-commit clone / of a {FETCH_COMMITS}-commit "
            "fetch (the quotient in each cell)",
            f"{fmt_bytes(clone)} / {fmt_bytes(ours_large)} = {clone / ours_large:.0f}",
            f"git: {fmt_bytes(git_clone)} / {fmt_bytes(git_large)} = {git_clone / git_large:.0f}",
            None,
            f"≈ {plan.commits / FETCH_COMMITS:g}",
        )
    )
    results.report.add(
        Row(
            f"2. bytes of the {plan.small_commits:,}-commit clone / of a {FETCH_COMMITS}-commit "
            "fetch on it",
            f"{fmt_bytes(small_clone[1])} / {fmt_bytes(ours_small)} = "
            f"{small_clone[1] / ours_small:.1f}",
            f"git: {fmt_bytes(small_git_clone[1])} / {fmt_bytes(git_small)} = "
            f"{small_git_clone[1] / git_small:.1f}",
            None,
            f"≈ {plan.small_commits / FETCH_COMMITS:g}",
        )
    )


def bench_remotes(
    plan: Plan, corpus: Corpus, cluster: Cluster, work: Path, results: Results
) -> None:
    """Item 2: build the histories, then clone, push and fetch them, against git."""
    (work / "git").mkdir()
    with step(results, "2. building the histories"):
        progress(f"2. building histories of {plan.commits:,} and {plan.small_commits:,} commits")
        large = build_history("history", plan.commits, corpus, work)
        small = build_history("short", plan.small_commits, corpus, work)
        progress(
            f"   ContextFS {fmt_seconds(large.build)} + {fmt_seconds(small.build)}, "
            f"git {fmt_seconds(large.git_build)} + {fmt_seconds(small.git_build)}"
        )
        text = sum(len(corpus.text(i).encode()) for i in range(plan.commits * PER_COMMIT))
        report_history(large, text, results)
    with Children(work / "logs") as children:
        server = children.serve(large.folder)
        daemon = children.git_daemon(work / "git")
        ends = Endpoints(large, server, children.proxy(server), daemon, children.proxy(daemon))
        with step(results, "2. clones"):
            clone_row = bench_clones(ends, work, results)
        with step(results, "2. pushes"):
            push_row = bench_pushes(ends, children, work, results)
        if plan.postgres_remotes:
            with step(results, "2. SQLite <-> PostgreSQL"):
                bench_postgres_remotes(large, cluster, work, (clone_row, push_row), results)
        with step(results, "2. fetches"):
            bench_fetches(plan, corpus, ends, small, work, clone_row, results)
        log = server.errors().strip()  # git daemon's log is not checked: not under test
        if log:
            results.problems.append(f"the {server.name} logged: {log.splitlines()[-1]}")


@contextlib.contextmanager
def step(results: Results, name: str) -> Iterator[None]:
    """Time one step of the run (the report lists them, so a slow one shows)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        results.steps[name] = time.perf_counter() - start


# -- the report ---------------------------------------------------------------------------


def postgres_version(cluster: Cluster) -> str:
    """The cluster's server version."""
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0] if row else 'unknown'} (psycopg {psycopg.__version__})"


def render_section(
    command: str,
    plan: Plan,
    corpus: Corpus,
    results: Results,
    wall: float,
    tools: list[tuple[str, str]],
    measured: str,
) -> str:
    """The RESULTS.md section."""
    report = results.report
    steps = "; ".join(f"{name} {seconds:.0f} s" for name, seconds in results.steps.items())
    slow = [name for name, seconds in results.steps.items() if seconds > 600]
    ratios = (
        "Ratios are ContextFS / baseline: below 1 means ContextFS is faster or moves fewer "
        "bytes; in item 1 the ratio is PostgreSQL / SQLite."
    )
    return "\n".join(
        [
            *section_opening(HEADING, "remotes.py", command, measured, ratios),
            f"- Sizes: {plan.atoms:,} atoms in item 1 ({plan.ingest_runs} ingest runs, "
            f"{plan.query_runs} runs per query); histories of {plan.commits:,} and "
            f"{plan.small_commits:,} commits of {PER_COMMIT} memories; {plan.fetch_rounds} "
            f"fetch rounds of {FETCH_COMMITS} commits; whole run {wall:.0f} s",
            f"- Steps: {steps}"
            + (f" (over 10 minutes: {', '.join(slow)})" if slow else " (none over 10 minutes)"),
            report.load_line(),
            *machine_lines(tools),
            *subsection("Figures", markdown_table(report.rows)),
            *subsection("Transfers", transfer_table(results.transfers)),
            *subsection("Per query (item 1)", query_table(results.queries)),
            *subsection("Reading the figures"),
            "- Item 1 ratios are PostgreSQL / SQLite for the same call on the same atoms: "
            "above 1, PostgreSQL is slower.",
            "- Transfers: each time ratio is ContextFS's seconds / the baseline's for the same "
            "transfer of the same memories, and each bytes ratio ContextFS's bytes / the "
            "baseline's. Over a path that compares ContextFS's objects as stored with git's "
            "compressed pack; over a server both sides count what crossed the socket. The "
            "SQLite / PostgreSQL rows compare with the same ContextFS transfer between two "
            "SQLite stores, so they show what a PostgreSQL store adds.",
            "- The rows of quotients in the first table compare one system with itself "
            "(history length, clone against fetch), git in the Baseline column.",
            *bullets(results.readings),
            *subsection("Notes", *section_notes(corpus, results)),
        ]
    )


def section_notes(corpus: Corpus, results: Results) -> list[str]:
    """The texts, the cluster, how bytes are counted, the run's notes and its problems."""
    problems = list(dict.fromkeys(results.problems))
    return [
        f"- Texts: item i of the {len(corpus):,} paragraphs of `pydoc_data.topics` "
        f"(suffixed ` (note i)` from i = {len(corpus):,} on), as in the core benchmarks; "
        f"{len(corpus.used):,} distinct items were used.",
        "- PostgreSQL: a throwaway cluster on 127.0.0.1 (`start_cluster(durable=True)`: "
        "fsync, synchronous commit and full-page writes on, as SQLite runs with "
        "synchronous=FULL), reached over TCP; one schema per store.",
        "- Bytes: a ContextFS transfer over a path counts the pack it moved "
        "(`TransferResult.bytes`; for `sync.clone`, the pack the clone carries, made "
        "again untimed); git over a path counts the pack the receiver kept. Over `ctx://` and "
        "`git://` a counting TCP proxy (an asyncio relay in a child interpreter) counts "
        "every byte on the socket, both directions, in a second transfer run only for "
        "that: the timed transfer goes straight to the server. The `contextfs` server and "
        "`git daemon` run in their own processes on this machine; ContextFS over a path "
        "runs in the benchmark's process alone.",
        *bullets(results.report.notes),
        "- Problems found: " + ("; ".join(problems) if problems else "none."),
    ]


def measure(plan: Plan, corpus: Corpus, results: Results) -> list[tuple[str, str]]:
    """Items 1 and 2 on a throwaway PostgreSQL cluster; the tools' versions."""
    cluster = start_cluster(durable=True)
    try:
        tools = [
            ("git", git("--version", cwd=Path.cwd()).strip()),
            ("PostgreSQL", postgres_version(cluster)),
        ]
        with tempfile.TemporaryDirectory(prefix="contextfs-remotes-") as temp:
            work = Path(temp)
            with step(results, "1. PostgreSQL vs SQLite"):
                bench_backends(plan, corpus, cluster, work, results)
            bench_remotes(plan, corpus, cluster, work, results)
    finally:
        cluster.stop()
    return tools


def main(argv: list[str] | None = None) -> int:
    """Measure items 1 and 2 and write the RESULTS.md section."""
    parser = PLANS.parser(__doc__)
    parser.add_argument(
        "--no-postgres-remotes",
        action="store_true",
        help="skip the transfers between SQLite and PostgreSQL",
    )
    args, plan = PLANS.choose(parser, argv, check_plan)
    if args.no_postgres_remotes:
        plan = dataclasses.replace(plan, postgres_remotes=False)
    corpus = Corpus()
    results = Results()
    started = time.perf_counter()
    results.report.note_load()
    measured = measured_version()
    progress(
        f"remotes benchmarks: {plan.atoms:,} atoms; histories of {plan.commits:,} and "
        f"{plan.small_commits:,} commits"
    )
    tools = measure(plan, corpus, results)
    wall = time.perf_counter() - started
    results.report.note_load()
    extra = ["--no-postgres-remotes"] if args.no_postgres_remotes else []
    command = PLANS.command(args, *extra)
    section = render_section(command, plan, corpus, results, wall, tools, measured)
    tables = [markdown_table(results.report.rows), transfer_table(results.transfers)]
    publish_section(
        args.output, SECTION, HEADING, section, tables=tables, wall=wall, problems=results.problems
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
