"""ContextFS benchmarks, side by side with git and with the durable-write floor.

Run from the project root:

    .venv/bin/python benchmarks/run.py           # full run (a few minutes)
    .venv/bin/python benchmarks/run.py --quick   # ~10x smaller smoke run

Progress goes to stderr, the results table to stdout, and the whole report
(command, date, machine, figures, ratios) to ``benchmarks/RESULTS.md``
(``--output`` to write elsewhere). Everything happens in a temporary directory
that is removed at the end. The texts are real English prose: the paragraphs of
Python's own ``pydoc_data.topics``.

The other scripts run on their own (each has a smoke-run option) and own one
section of RESULTS.md, which this script keeps: ``assembly.py`` (context
assembly), ``integrity.py``, ``oplog.py``, ``session.py``, ``wire.py`` (the wire
protocol), ``storage.py`` (objects at rest against the raw store and git),
``gc.py`` (garbage collection), ``remotes.py`` (the PostgreSQL backend against SQLite, and
clone/push/fetch against git) and ``mcp_latency.py`` (``context`` and ``recall``
over MCP against the same calls in Python). See ``benchmarks/README.md``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from typing import IO

from common import (
    EPOCH,
    Corpus,
    Plans,
    Report,
    Rounds,
    Row,
    fmt_bytes,
    fmt_seconds,
    interleave,
    markdown_table,
    proc_number,
    progress,
    timed,
    tree_bytes,
    write_core_report,
)
from common import machine as common_machine
from contextfs import T_STRING, MemoryAtom, Repository

BUDGET = 4000  # tokens asked of every expansion
GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_PAGER": "cat",
    "LC_ALL": "C",
}
COMMITTER = b"Bench <bench@example.com>"


# -- plan ----------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How big each benchmark is; ``--quick`` divides by ten."""

    ingest: int = 100_000
    ingest_repeats: int = 3
    small_base: int = 10_000
    small_commits: int = 1_000
    large_base: int = 100_000
    large_commits: int = 200
    chain_base: int = 1_000
    chain_depth: int = 10_000
    middle_depth: int = 1_000
    expand_runs: int = 15
    read_runs: int = 7


PLANS = Plans(
    script="run.py",
    full=Plan(),
    quick=Plan(
        ingest=10_000,
        ingest_repeats=2,
        small_base=1_000,
        small_commits=100,
        large_base=10_000,
        large_commits=20,
        chain_base=1_000,
        chain_depth=1_000,
        middle_depth=100,
        expand_runs=5,
        read_runs=3,
    ),
    quick_help="sizes / 10, for a smoke run",
)


# -- the atoms -------------------------------------------------------------------


def atom(text: str, relevance: float = 0.5, step: int = 0) -> MemoryAtom:
    """Make the atom every benchmark stores: a String with fixed time and source."""
    return MemoryAtom(text, T_STRING, EPOCH + timedelta(seconds=step), "bench", relevance)


# -- measuring helpers -----------------------------------------------------------


def bytes_written() -> int:
    """Bytes this process has passed to write() so far (``wchar`` of /proc/self/io)."""
    return proc_number("/proc/self/io", "wchar")


def object_totals(database: Path) -> tuple[int, int]:
    """Return (objects, bytes of object data) in a ContextFS database."""
    with contextlib.closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as conn:
        count, total = conn.execute(
            "SELECT count(*), coalesce(sum(length(data)), 0) FROM objects"
        ).fetchone()
    return int(count), int(total)


def git(*args: str, cwd: Path, capture: bool = True) -> str:
    """Run git and return its stdout."""
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=capture, text=True
    )
    return result.stdout if capture else ""


def fast_import(repo: Path, chunks: Iterator[bytes]) -> None:
    """Feed ``chunks`` to ``git fast-import --quiet`` in ``repo``."""
    process = subprocess.Popen(
        ["git", "fast-import", "--quiet"], cwd=repo, env=GIT_ENV, stdin=subprocess.PIPE
    )
    stdin: IO[bytes] | None = process.stdin
    assert stdin is not None
    try:
        for chunk in chunks:
            stdin.write(chunk)
    finally:
        stdin.close()
    if process.wait() != 0:
        raise RuntimeError(f"git fast-import failed with status {process.returncode}")


def data_block(payload: bytes) -> bytes:
    """A fast-import ``data`` command."""
    return b"data %d\n%s\n" % (len(payload), payload)


# -- 1. ingest ---------------------------------------------------------------------


def ingest_contextfs(texts: list[str], where: Path) -> dict[str, float]:
    """Build atoms, init a repository, stage them all and commit; return phase times."""
    start = time.perf_counter()
    atoms = [atom(text) for text in texts]
    built = time.perf_counter()
    repo = Repository.init(where)
    repo.add_atoms(atoms)
    staged = time.perf_counter()
    repo.commit("ingest")
    done = time.perf_counter()
    repo.close()
    return {
        "total": done - start,
        "atoms": built - start,
        "stage": staged - built,
        "commit": done - staged,
    }


def ingest_stream(texts: list[str], sharded: bool) -> Iterator[bytes]:
    """The fast-import stream: one blob per text, then one commit naming them all."""
    batch: list[bytes] = []
    for i, text in enumerate(texts, 1):
        payload = text.encode()
        batch.append(b"blob\nmark :%d\ndata %d\n%s\n" % (i, len(payload), payload))
        if len(batch) == 1000:
            yield b"".join(batch)
            batch = []
    batch.append(b"commit refs/heads/main\ncommitter %s 1704067200 +0000\n" % COMMITTER)
    batch.append(data_block(b"ingest"))
    for i in range(len(texts)):
        path = b"%03d/%d" % (i // 1000, i) if sharded else b"%d" % i
        batch.append(b"M 100644 :%d %s\n" % (i + 1, path))
        if len(batch) >= 10000:
            yield b"".join(batch)
            batch = []
    batch.append(b"\n")
    yield b"".join(batch)


def ingest_git(texts: list[str], where: Path, sharded: bool) -> float:
    """Time git init + generating and feeding the fast-import stream."""
    start = time.perf_counter()
    git("init", "--quiet", "--bare", str(where), cwd=where.parent)
    fast_import(where, ingest_stream(texts, sharded))
    return time.perf_counter() - start


def ingest_git_once(texts: list[str], target: Path, sharded: bool) -> tuple[float, int]:
    """One git ingest into ``target``, then removed: its seconds and the repository's bytes."""
    seconds = ingest_git(texts, target, sharded)
    size = tree_bytes(target)
    shutil.rmtree(target)
    return seconds, size


@dataclass
class Ingest:
    """Item 1's runs: ours by phase, git's in two tree layouts, and the sizes on disk."""

    ours: list[dict[str, float]]
    sharded: Rounds
    flat: float
    store_bytes: int
    git_bytes: int
    flat_bytes: int


def measure_ingest(plan: Plan, texts: list[str], work: Path) -> Ingest:
    """Ingest ``texts`` with ContextFS and with git (100 dirs), alternately; then git flat."""
    ours: list[dict[str, float]] = []
    sharded = Rounds()
    store_bytes = git_bytes = 0
    for attempt in range(plan.ingest_repeats):
        folder = work / f"ingest-cfs-{attempt}"
        ours.append(ingest_contextfs(texts, folder))
        store_bytes = tree_bytes(folder / ".contextfs")
        shutil.rmtree(folder)
        progress(f"  contextfs run {attempt + 1}: {ours[-1]['total']:.2f} s")
        seconds, git_bytes = ingest_git_once(texts, work / f"ingest-git-{attempt}.git", True)
        sharded.add(seconds)
        progress(f"  git fast-import (100 dirs) run {attempt + 1}: {seconds:.2f} s")
    flat, flat_bytes = ingest_git_once(texts, work / "ingest-git-flat.git", False)
    progress(f"  git fast-import (one flat dir) : {flat:.2f} s")
    return Ingest(ours, sharded, flat, store_bytes, git_bytes, flat_bytes)


def bench_ingest(plan: Plan, corpus: Corpus, work: Path, report: Report) -> None:
    """Item 1: N atoms in one commit vs the same N texts through git fast-import."""
    n = plan.ingest
    texts = corpus.texts(0, n)
    progress(f"1. ingest of {n:,} atoms in one commit ({plan.ingest_repeats} repeats each)")
    result = measure_ingest(plan, texts, work)
    best = min(result.ours, key=lambda r: r["total"])
    best_git = result.sharded.best
    report.timings["ingest"] = best["total"]
    report.add(
        Row(
            f"1. ingest {n:,} atoms, one commit (best of {plan.ingest_repeats})",
            fmt_seconds(best["total"]),
            f"git fast-import, files in 100 dirs: {fmt_seconds(best_git)}",
            best["total"] / best_git,
            "< 1",
        )
    )
    report.add(
        Row(
            "1. same, git tree as one flat directory (as specified; 1 run)",
            fmt_seconds(best["total"]),
            f"git fast-import, flat: {fmt_seconds(result.flat)}",
            best["total"] / result.flat,
            "< 1",
        )
    )
    report.add(
        Row(
            "1. ingest throughput",
            f"{n / best['total']:,.0f} atoms/s",
            f"{n / best_git:,.0f} blobs/s",
            best_git / best["total"],
            "> 1 (higher is better)",
        )
    )
    report.add(
        Row(
            "1. size on disk after ingest",
            fmt_bytes(result.store_bytes),
            f".git: {fmt_bytes(result.git_bytes)} (flat: {fmt_bytes(result.flat_bytes)})",
            result.store_bytes / result.git_bytes,
            "",
        )
    )
    report.notes.append(ingest_note(n, best))


def ingest_note(n: int, best: dict[str, float]) -> str:
    """What item 1 times, and why its two sides differ."""
    return (
        f"Ingest phases (best run): building {n:,} `MemoryAtom`s {fmt_seconds(best['atoms'])}, "
        f"`add_atoms` {fmt_seconds(best['stage'])}, `commit` {fmt_seconds(best['commit'])}. "
        "Both sides include creating the repository; the git side includes generating the "
        "stream in Python. git zlib-compresses blobs (and fast-import deltas them); "
        "ContextFS stores atoms uncompressed. git fast-import does not fsync; ContextFS "
        "commits durably (SQLite WAL, synchronous=FULL). A 100,000-entry *flat* git tree "
        "makes fast-import quadratic, so the headline ratio uses the faster sharded layout "
        "(`NNN/index`, 1,000 files per directory)."
    )


# -- 2. small commits ----------------------------------------------------------------


@dataclass
class SmallCommits:
    """What a run of small commits cost."""

    times: Rounds
    cpu: Rounds
    wchar: float
    objects: float
    object_bytes: float
    file_growth: float


def base_repository(corpus: Corpus, base: int, folder: Path) -> list[MemoryAtom]:
    """A repository in ``folder`` holding ``base`` atoms in one commit; returns the atoms."""
    repo = Repository.init(folder)
    base_atoms = [atom(text) for text in corpus.texts(0, base)]
    repo.add_atoms(base_atoms)
    repo.commit("base")
    repo.close()
    return base_atoms


def small_commits(corpus: Corpus, base: int, commits: int, folder: Path) -> SmallCommits:
    """On a ``base``-atom repository, commit ``commits`` times: one new atom + one changed entry."""
    base_atoms = base_repository(corpus, base, folder)
    database = folder / ".contextfs" / "store.db"
    size_before = tree_bytes(folder / ".contextfs")
    objects_before, bytes_before = object_totals(database)
    new_texts = corpus.texts(base, commits)

    repo = Repository.open(folder)
    times, cpu = Rounds(), Rounds()
    wchar_start = bytes_written()
    for step in range(commits):
        start, cpu_start = time.perf_counter(), time.process_time()
        changed = base_atoms[(step * 7919) % base]
        repo.add_atoms(
            [
                atom(new_texts[step], step=step),
                atom(changed.content, relevance=(step % 100) / 100 + 0.001, step=step),
            ]
        )
        repo.commit(f"small commit {step}")
        times.add(time.perf_counter() - start)
        cpu.add(time.process_time() - cpu_start)
    wchar = bytes_written() - wchar_start
    repo.close()
    objects_after, bytes_after = object_totals(database)
    return SmallCommits(
        times,
        cpu,
        wchar / commits,
        (objects_after - objects_before) / commits,
        (bytes_after - bytes_before) / commits,
        (tree_bytes(folder / ".contextfs") - size_before) / commits,
    )


def floor_commits(commits: int, payload: int, folder: Path) -> tuple[Rounds, float]:
    """The least a durable commit costs here: one SQLite WAL transaction
    (synchronous=FULL) inserting one object of ``payload`` bytes and moving one ref."""
    folder.mkdir()
    conn = sqlite3.connect(folder / "floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE objects (id BLOB PRIMARY KEY, kind TEXT, data BLOB) WITHOUT ROWID")
    conn.execute("CREATE TABLE refs (name TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO refs VALUES ('HEAD', '')")
    times = Rounds()
    wchar_start = bytes_written()
    for step in range(commits):
        data = step.to_bytes(8, "big") * (payload // 8 + 1)
        oid = sha256(data).digest()
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO objects VALUES (?, 'atom', ?)", (oid, data[:payload]))
        conn.execute("UPDATE refs SET value = ? WHERE name = 'HEAD'", (oid.hex(),))
        conn.execute("COMMIT")
        times.add(time.perf_counter() - start)
    wchar = (bytes_written() - wchar_start) / commits
    conn.close()
    return times, wchar


def bench_small_commits(plan: Plan, corpus: Corpus, work: Path, report: Report) -> None:
    """Item 2: per-commit time and bytes of small commits on a 10k and a 100k snapshot."""
    results: dict[int, SmallCommits] = {}
    for base, commits in (
        (plan.small_base, plan.small_commits),
        (plan.large_base, plan.large_commits),
    ):
        progress(f"2. {commits:,} small commits on a {base:,}-atom snapshot")
        folder = work / f"small-{base}"
        results[base] = small_commits(corpus, base, commits, folder)
        shutil.rmtree(folder)
    payload = len(corpus.text(0).encode())
    floor, floor_wchar = floor_commits(plan.small_commits, payload, work / "floor")
    progress(f"  floor: durable SQLite transaction median {fmt_seconds(floor.median)}")
    for base, result in results.items():
        small_commit_rows(base, result, floor, floor_wchar, report)
    snapshot_independence_rows(plan, results, report)
    report.notes.append(
        "Small commits: each step is `add_atoms([new atom, existing atom with a new relevance])` "
        "then `commit` (two durable transactions), timed together, including building the two "
        "`MemoryAtom`s. Bytes written = growth of `wchar` in `/proc/self/io` (every byte the "
        "process handed to write(): WAL frames of 4 KiB pages plus checkpoints), per commit. "
        "New objects and object bytes are counted in the database; file growth is the "
        "`.contextfs` directory after closing (WAL checkpointed). The floor is one SQLite WAL "
        "transaction with synchronous=FULL that inserts one atom-sized row and updates one "
        "ref: the least a durable commit can cost on this disk."
    )


def small_commit_rows(
    base: int, result: SmallCommits, floor: Rounds, floor_wchar: float, report: Report
) -> None:
    """Item 2's rows for one snapshot size: median, p95 and bytes against the floor."""
    report.add(
        Row(
            f"2. small commit on {base:,} atoms ({len(result.times):,} commits): median",
            fmt_seconds(result.times.median),
            f"floor, 1 durable SQLite txn: {fmt_seconds(floor.median)}",
            result.times.median / floor.median,
            "",
        )
    )
    report.add(
        Row(
            f"2. small commit on {base:,} atoms: p95",
            fmt_seconds(result.times.p95),
            f"floor p95: {fmt_seconds(floor.p95)}",
            result.times.p95 / floor.p95,
            "",
        )
    )
    report.add(
        Row(
            f"2. bytes written per commit on {base:,} atoms",
            f"{fmt_bytes(result.wchar)} write() "
            f"({result.objects:.1f} new objects, {fmt_bytes(result.object_bytes)} "
            f"of object data; file growth {fmt_bytes(result.file_growth)})",
            f"floor: {fmt_bytes(floor_wchar)} write()",
            result.wchar / floor_wchar,
            "kilobytes, not megabytes",
        )
    )


def snapshot_independence_rows(
    plan: Plan, results: dict[int, SmallCommits], report: Report
) -> None:
    """Item 2: the large snapshot's commits against the small one's, in CPU and in time."""
    small, large = (results[plan.small_base], results[plan.large_base])
    report.add(
        Row(
            f"2. CPU time per small commit (not waiting on the disk), median, "
            f"{plan.large_base:,} / {plan.small_base:,} atoms",
            f"{fmt_seconds(large.cpu.median)} / {fmt_seconds(small.cpu.median)}",
            "",
            large.cpu.median / small.cpu.median,
            "≈ 1",
        )
    )
    report.add(
        Row(
            f"2. snapshot-size independence: median commit {plan.large_base:,} / "
            f"{plan.small_base:,} atoms",
            f"{fmt_seconds(large.times.median)} / {fmt_seconds(small.times.median)}",
            f"bytes: {fmt_bytes(large.wchar)} / {fmt_bytes(small.wchar)}",
            large.times.median / small.times.median,
            "≈ 1",
        )
    )


# -- 3-5. the long chain ---------------------------------------------------------------


@dataclass
class Chain:
    """A ContextFS history of constant snapshot size, and its git twin."""

    folder: Path
    git_dir: Path
    ids: list[str]  # ids[g - 1] is the commit at generation (depth) g
    git_ids: list[str]
    build_times: Rounds
    git_build: float
    extra_objects: float


class ChainPlan:
    """The steps of the chain, shared by the ContextFS and the git builds.

    Generation 1 holds ``base`` atoms (corpus items ``0 .. base - 1``). Step ``s``
    (generation ``s + 1``) replaces the atom in slot ``j = s mod base`` by a new
    atom with the same paragraph and a new suffix (corpus item ``j + P * (s // base
    + 1)``), and changes the relevance of two other atoms. So every snapshot holds
    exactly ``base`` atoms of about the same text, whatever its depth.
    """

    def __init__(self, corpus: Corpus, base: int, depth: int) -> None:
        if base > len(corpus):
            raise ValueError(f"the chain base ({base}) must not exceed the corpus size")
        self.corpus = corpus
        self.base = base
        self.depth = depth

    def text(self, index: int) -> str:
        """The text of atom ``index``."""
        return self.corpus.text(index)

    def steps(self) -> Iterator[tuple[int, int, int, list[tuple[int, float]]]]:
        """Yield ``(step, removed, added, [(changed, relevance)])`` for steps 1..depth-1."""
        live = list(range(self.base))
        for step in range(1, self.depth):
            slot = step % self.base
            removed, added = live[slot], slot + len(self.corpus) * (step // self.base + 1)
            live[slot] = added
            changed = []
            for offset in (self.base // 3, 2 * self.base // 3):
                index = live[(slot + offset) % self.base]
                value = ((step * 7919 + offset) % 997) / 1000
                changed.append((index, value))
            yield step, removed, added, changed


def file_body(text: str, relevance: float) -> bytes:
    """What the git twin stores for one atom: its text and its relevance."""
    return f"{text}\nrelevance: {relevance}\n".encode()


def build_contextfs_chain(corpus: Corpus, base: int, depth: int, folder: Path) -> Chain:
    """Build the ContextFS chain through the public API, timing each commit."""
    plan = ChainPlan(corpus, base, depth)
    repo = Repository.init(folder)
    by_index: dict[int, MemoryAtom] = {}
    for i in range(base):
        by_index[i] = atom(plan.text(i))
    repo.add_atoms(list(by_index.values()))
    ids: list[str] = [repo.commit("base")]
    times = Rounds()
    objects_before = repo.store.count_objects()
    for step, removed, added, changed in plan.steps():
        start = time.perf_counter()
        gone = by_index.pop(removed)
        by_index[added] = atom(plan.text(added), step=step)
        batch = [by_index[added]]
        for index, value in changed:
            by_index[index] = atom(plan.text(index), relevance=value, step=step)
            batch.append(by_index[index])
        repo.stage(add=batch, remove=[gone.content_hash])
        ids.append(repo.commit(f"step {step}"))
        times.add(time.perf_counter() - start)
        if step % 1000 == 0:
            progress(f"  contextfs chain: {step:,} / {depth - 1:,} commits")
    objects = (repo.store.count_objects() - objects_before) / max(1, depth - 1)
    repo.close()
    return Chain(folder, Path(), ids, [], times, 0.0, objects)


def git_chain_stream(corpus: Corpus, base: int, depth: int) -> Iterator[bytes]:
    """The fast-import stream of the git twin: one file per atom, same steps."""
    plan = ChainPlan(corpus, base, depth)
    out = [b"commit refs/heads/main\nmark :1\ncommitter %s 1704067200 +0000\n" % COMMITTER]
    out.append(data_block(b"base"))
    for i in range(base):
        out.append(b"M 100644 inline atoms/%07d\n" % i)
        out.append(data_block(file_body(plan.text(i), 0.5)))
    out.append(b"\n")
    for step, removed, added, changed in plan.steps():
        out.append(
            b"commit refs/heads/main\nmark :%d\ncommitter %s %d +0000\n"
            % (step + 1, COMMITTER, 1704067200 + step)
        )
        out.append(data_block(b"step %d" % step))
        out.append(b"from :%d\n" % step)
        out.append(b"D atoms/%07d\n" % removed)
        out.append(b"M 100644 inline atoms/%07d\n" % added)
        out.append(data_block(file_body(plan.text(added), 0.5)))
        for index, value in changed:
            out.append(b"M 100644 inline atoms/%07d\n" % index)
            out.append(data_block(file_body(plan.text(index), value)))
        out.append(b"\n")
        if len(out) > 5000:
            yield b"".join(out)
            out = []
    yield b"".join(out)


def build_chain(plan: Plan, corpus: Corpus, work: Path) -> Chain:
    """Build both histories."""
    base, depth = plan.chain_base, plan.chain_depth
    progress(f"3-5. building a {depth:,}-commit chain over {base:,} atoms")
    chain = build_contextfs_chain(corpus, base, depth, work / "chain")
    git_dir = work / "chain.git"
    start = time.perf_counter()
    git("init", "--quiet", "--bare", str(git_dir), cwd=work)
    fast_import(git_dir, git_chain_stream(corpus, base, depth))
    chain.git_build = time.perf_counter() - start
    chain.git_dir = git_dir
    chain.git_ids = git("rev-list", "--reverse", "main", cwd=git_dir).split()
    if len(chain.git_ids) != depth:
        raise RuntimeError(f"git chain has {len(chain.git_ids)} commits, expected {depth}")
    total = sum(chain.build_times.values)
    progress(f"  built: contextfs {total:.1f} s, git fast-import {chain.git_build:.1f} s")
    return chain


def expand_once(folder: Path, revision: str) -> tuple[float, int]:
    """Open a fresh Repository (cold caches), expand ``revision`` under the budget and
    render it; return the seconds taken and how many atoms the rendering kept."""
    repo = Repository.open(folder)
    try:
        start = time.perf_counter()
        text = repo.expand(revision, budget=BUDGET).to_prompt_context(BUDGET)
        elapsed = time.perf_counter() - start
        if not text:
            raise RuntimeError(f"expanding {revision} rendered nothing")
        return elapsed, text.count("\n") + 1
    finally:
        repo.close()


def snapshot_once(folder: Path, revision: str) -> float:
    """Open a fresh Repository and materialise every memory of ``revision``."""
    repo = Repository.open(folder)
    try:
        return timed(lambda: repo.snapshot(revision))
    finally:
        repo.close()


def snapshot_shape(folder: Path, revision: str) -> tuple[int, int]:
    """Return how many atoms ``revision`` holds and their total characters."""
    with Repository.open(folder) as repo:
        atoms = [m for m in repo.snapshot(revision) if isinstance(m, MemoryAtom)]
    return len(atoms), sum(len(a.content) for a in atoms)


@dataclass
class Depth:
    """Item 3 at one depth: cold expansions and snapshots, and what the budget kept."""

    expand: Rounds
    snapshot: Rounds
    kept: int
    atoms: int
    characters: int


def measure_depths(plan: Plan, chain: Chain) -> dict[int, Depth]:
    """Expand and materialise each depth's commit, depths interleaved round by round."""
    depths = (1, plan.middle_depth, plan.chain_depth)
    kept: dict[int, int] = {}

    def expand_at(depth: int) -> Callable[[], float]:
        def expand() -> float:
            seconds, lines = expand_once(chain.folder, chain.ids[depth - 1])
            kept.setdefault(depth, lines)
            return seconds

        return expand

    actions: list[Callable[[], float]] = []
    for depth in depths:
        revision = chain.ids[depth - 1]
        actions += [expand_at(depth), functools.partial(snapshot_once, chain.folder, revision)]
    # interleaved, so background load hits every depth
    rounds = interleave(actions, plan.expand_runs)
    found: dict[int, Depth] = {}
    for n, depth in enumerate(depths):
        shape = snapshot_shape(chain.folder, chain.ids[depth - 1])
        found[depth] = Depth(rounds[2 * n], rounds[2 * n + 1], kept[depth], *shape)
    return found


def bench_expand(plan: Plan, chain: Chain, report: Report) -> None:
    """Item 3: expansion cost at depth 1, middle and full."""
    depths = (1, plan.middle_depth, plan.chain_depth)
    progress(f"3. expand at depths {depths} ({plan.expand_runs} cold runs each)")
    expand_once(chain.folder, chain.ids[0])  # load the tokenizer once, outside the timings
    found = measure_depths(plan, chain)
    for depth, runs in found.items():
        progress(
            f"  depth {depth:,}: expand median {fmt_seconds(runs.expand.median)} "
            f"(min {fmt_seconds(runs.expand.best)}, max {fmt_seconds(max(runs.expand.values))})"
        )
        report.add(
            Row(
                f"3. expand commit at depth {depth:,} (snapshot of {runs.atoms:,} atoms, "
                f"{runs.characters:,} characters; {runs.kept} fit the budget): median (min)",
                f"{fmt_seconds(runs.expand.median)} ({fmt_seconds(runs.expand.best)})",
                f"materialise only (repo.snapshot): {fmt_seconds(runs.snapshot.median)} "
                f"({fmt_seconds(runs.snapshot.best)})",
                None,
                "",
            )
        )
    depth_ratio_rows(found[plan.chain_depth], found[1], plan.chain_depth, report)
    chain_build_row(chain, report)
    report.notes.append(expand_note(plan, chain))


def depth_ratio_rows(deepest: Depth, first: Depth, depth: int, report: Report) -> None:
    """Item 3's goal: the deepest commit against depth 1, by medians and by minimums."""
    report.add(
        Row(
            f"3. expand depth {depth:,} / depth 1, medians",
            f"{fmt_seconds(deepest.expand.median)} / {fmt_seconds(first.expand.median)}",
            f"snapshot: {fmt_seconds(deepest.snapshot.median)} / "
            f"{fmt_seconds(first.snapshot.median)}",
            deepest.expand.median / first.expand.median,
            "≤ 1.5",
        )
    )
    report.add(
        Row(
            f"3. expand depth {depth:,} / depth 1, minimums",
            f"{fmt_seconds(deepest.expand.best)} / {fmt_seconds(first.expand.best)}",
            f"snapshot: {fmt_seconds(deepest.snapshot.best)} / {fmt_seconds(first.snapshot.best)}",
            deepest.expand.best / first.expand.best,
            "≤ 1.5",
        )
    )


def chain_build_row(chain: Chain, report: Report) -> None:
    """What building the chain cost, against git fast-import (for scale only)."""
    build = chain.build_times
    total = sum(build.values)
    report.add(
        Row(
            f"3. building the chain: {len(build):,} commits (stage + commit; "
            f"median {fmt_seconds(build.median)}, p95 "
            f"{fmt_seconds(build.p95)} each), total",
            fmt_seconds(total),
            f"git fast-import of the same history: {fmt_seconds(chain.git_build)}",
            total / chain.git_build,
            "not like for like",
        )
    )


def expand_note(plan: Plan, chain: Chain) -> str:
    """How item 3 builds its commits and times their expansion."""
    return (
        f"Expansion: the chain's generation-1 commit holds {plan.chain_base:,} atoms; each "
        f"later commit removes one atom, adds one and changes the relevance of two, so every "
        f'depth expands a snapshot of exactly {plan.chain_base:,} atoms. "Depth d" is the '
        f"commit at generation d, expanded by its id; depth {plan.chain_depth:,} is HEAD. Each "
        f"run opens a new `Repository` (empty tree cache, new SQLite connection; the OS page "
        f"cache stays warm). Method: repo.expand(rev, budget) + to_prompt_context, budget "
        f"{BUDGET:,} tokens (cl100k_base), "
        f"tokenizer loaded before timing. The chain build is timed per commit "
        f"(`stage(add=..., remove=...)` then `commit`: two durable transactions) and wrote "
        f"{chain.extra_objects:.1f} new objects per commit; git fast-import writes the same "
        f"history in one pack without fsync, so its ratio is for scale only."
    )


def bench_log(plan: Plan, chain: Chain, report: Report) -> None:
    """Item 4: full log walk vs git log --oneline."""
    depth = plan.chain_depth
    progress(f"4. log over {depth:,} commits ({plan.read_runs} runs each)")

    def walk_log() -> float:
        repo = Repository.open(chain.folder)
        try:
            start = time.perf_counter()
            count = sum(1 for _ in repo.log())
            elapsed = time.perf_counter() - start
        finally:
            repo.close()
        if count != depth:
            raise RuntimeError(f"log listed {count} commits, expected {depth}")
        return elapsed

    def git_log() -> float:
        return timed(lambda: git("log", "--oneline", "main", cwd=chain.git_dir))

    ours, theirs = interleave([walk_log, git_log], plan.read_runs)
    report.add(
        Row(
            f"4. log over {depth:,} commits, median",
            fmt_seconds(ours.median),
            f"git log --oneline: {fmt_seconds(theirs.median)}",
            ours.median / theirs.median,
            "",
        )
    )


def bench_diff(plan: Plan, chain: Chain, report: Report) -> None:
    """Item 5: diff between the first and last commit."""
    depth = plan.chain_depth
    progress(f"5. diff across {depth:,} commits ({plan.read_runs} runs each)")
    changes = 0

    def run_diff() -> float:
        nonlocal changes
        repo = Repository.open(chain.folder)
        try:
            start = time.perf_counter()
            changes = len(repo.diff(chain.ids[0], chain.ids[-1]))
            return time.perf_counter() - start
        finally:
            repo.close()

    first, last = chain.git_ids[0], chain.git_ids[-1]

    def git_diff(*options: str) -> Callable[[], float]:
        return lambda: timed(lambda: git("diff", *options, first, last, cwd=chain.git_dir))

    ours, plain, renames = interleave(
        [run_diff, git_diff("--stat", "--no-renames"), git_diff("--stat")], plan.read_runs
    )
    stat = git("diff", "--shortstat", "--no-renames", first, last, cwd=chain.git_dir).strip()
    report.add(
        Row(
            f"5. diff first..last of {depth:,} commits ({changes:,} changes), median",
            fmt_seconds(ours.median),
            f"git diff --stat --no-renames: {fmt_seconds(plain.median)}",
            ours.median / plain.median,
            "",
        )
    )
    report.add(
        Row(
            "5. same, git with its default rename detection",
            fmt_seconds(ours.median),
            f"git diff --stat: {fmt_seconds(renames.median)}",
            ours.median / renames.median,
            "",
        )
    )
    report.notes.append(
        f"Log and diff run on the chain of item 3 and on its git twin, built with git "
        f"fast-import from the same steps (one file per atom holding its text and relevance; "
        f"each commit deletes one file, adds one and edits two). `git diff --shortstat` of "
        f"the twin: {stat}. ContextFS has no rename detection, so the like-for-like "
        f"baseline is `--no-renames`. git timings include starting the git process (a few ms); "
        f"ContextFS timings open a fresh `Repository` first (not timed) and, for diff, "
        f"load both versions of every changed memory."
    )


# -- the report -------------------------------------------------------------------


def machine() -> list[tuple[str, str]]:
    """Describe the machine the figures come from."""
    git_version = git("--version", cwd=Path.cwd()).strip()
    return [*common_machine(), ("git", git_version)]


def text_note(corpus: Corpus) -> str:
    """Where the texts come from, and how many items had to be suffixed."""
    suffixed = sum(1 for i in corpus.used if i >= len(corpus))
    return (
        f"Texts: the {len(corpus):,} unique paragraphs (20+ characters, whitespace "
        f"collapsed) of Python {platform.python_version()}'s `pydoc_data.topics`. "
        + (
            f"The runs needed more unique items than that ({len(corpus.used):,} distinct "
            f"items), so paragraphs are reused with a numeric suffix ` (note N)`: "
            f"{suffixed:,} of the items are suffixed. Item i is paragraph i mod "
            f"{len(corpus):,}, suffixed from i = {len(corpus):,} on."
            if suffixed > 0
            else "No paragraph was reused."
        )
    )


def write_results(
    path: Path, command: str, plan: Plan, corpus: Corpus, report: Report, wall: float
) -> None:
    """Write RESULTS.md."""
    parts = [
        "# ContextFS benchmark results",
        "",
        "Generated by `benchmarks/run.py`; see `benchmarks/README.md` for what each "
        "figure means. Ratios are ContextFS / baseline: below 1 means ContextFS is "
        "faster or smaller, except where the goal says otherwise.",
        "",
        f"- Command: `{command}`",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Mode: {'quick (sizes / 10)' if plan.ingest < 100_000 else 'full'}; "
        f"whole run {wall:.0f} s",
        "- Load average (1, 5, 15 min) at start / end: "
        + report.load_text()
        + " (other work on the machine shares its cores; runs are interleaved and "
        "medians reported to damp that)",
        *(f"- {name}: {value}" for name, value in machine()),
        "",
        "## Figures",
        "",
        markdown_table(report.rows),
        "",
        "## Notes",
        "",
        f"- {text_note(corpus)}",
        *(f"- {note}" for note in report.notes),
        "",
    ]
    write_core_report(path, "\n".join(parts))


def main(argv: list[str] | None = None) -> int:
    """Run every benchmark and write the report."""
    parser = PLANS.parser(__doc__)
    args, plan = PLANS.choose(parser, argv)
    corpus = Corpus()
    report = Report()
    started = time.perf_counter()
    report.note_load()
    progress(f"{'quick' if args.quick else 'full'} run; corpus of {len(corpus):,} paragraphs")
    with tempfile.TemporaryDirectory(prefix="contextfs-bench-") as temp:
        work = Path(temp)
        bench_ingest(plan, corpus, work, report)
        bench_small_commits(plan, corpus, work, report)
        chain = build_chain(plan, corpus, work)
        bench_expand(plan, chain, report)
        bench_log(plan, chain, report)
        bench_diff(plan, chain, report)
    wall = time.perf_counter() - started
    report.note_load()
    write_results(args.output, PLANS.command(args), plan, corpus, report, wall)
    print(markdown_table(report.rows))
    progress(f"done in {wall:.0f} s; wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
