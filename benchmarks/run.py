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
protocol), ``remotes.py`` (the PostgreSQL backend against SQLite, and
clone/push/fetch against git) and ``mcp_latency.py`` (``context`` and ``recall``
over MCP against the same calls in Python). See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from typing import IO, Any

from common import (
    Corpus,
    Report,
    Row,
    fmt_bytes,
    fmt_seconds,
    markdown_table,
    percentile,
    progress,
    timed,
    write_core_report,
)
from common import machine as common_machine
from contextfs.expand.context import ExpandedContext, rank_key
from contextfs.model.objects import MemoryAtom
from contextfs.model.types import T_STRING
from contextfs.repo import Repository

HERE = Path(__file__).resolve().parent
BUDGET = 4000  # tokens asked of every expansion
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_PAGER": "cat",
    "LC_ALL": "C",
}
COMMITTER = b"Bench <bench@example.com>"


# -- sizes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
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

    @classmethod
    def quick(cls) -> Sizes:
        """The smoke-run sizes."""
        return cls(
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
        )


# -- the atoms -------------------------------------------------------------------


def atom(text: str, relevance: float = 0.5, step: int = 0) -> MemoryAtom:
    """Make the atom every benchmark stores: a String with fixed time and source."""
    return MemoryAtom(text, T_STRING, EPOCH + timedelta(seconds=step), "bench", relevance)


# -- measuring helpers -----------------------------------------------------------


def bytes_written() -> int:
    """Bytes this process has passed to write() so far (``wchar`` of /proc/self/io)."""
    with contextlib.suppress(OSError), open("/proc/self/io") as io:
        for line in io:
            if line.startswith("wchar:"):
                return int(line.split()[1])
    return 0


def tree_size(path: Path) -> int:
    """Total bytes of the files under ``path``."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


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


def bench_ingest(sizes: Sizes, corpus: Corpus, work: Path, report: Report) -> None:
    """Item 1: N atoms in one commit vs the same N texts through git fast-import."""
    n = sizes.ingest
    texts = corpus.texts(0, n)
    progress(f"1. ingest of {n:,} atoms in one commit ({sizes.ingest_repeats} repeats each)")
    ours: list[dict[str, float]] = []
    sharded: list[float] = []
    store_bytes = git_bytes = 0
    for attempt in range(sizes.ingest_repeats):
        folder = work / f"ingest-cfs-{attempt}"
        ours.append(ingest_contextfs(texts, folder))
        store_bytes = tree_size(folder / ".contextfs")
        shutil.rmtree(folder)
        progress(f"  contextfs run {attempt + 1}: {ours[-1]['total']:.2f} s")
        target = work / f"ingest-git-{attempt}.git"
        sharded.append(ingest_git(texts, target, sharded=True))
        git_bytes = tree_size(target)
        shutil.rmtree(target)
        progress(f"  git fast-import (100 dirs) run {attempt + 1}: {sharded[-1]:.2f} s")
    target = work / "ingest-git-flat.git"
    flat = ingest_git(texts, target, sharded=False)
    flat_bytes = tree_size(target)
    shutil.rmtree(target)
    progress(f"  git fast-import (one flat dir) : {flat:.2f} s")

    best = min(ours, key=lambda r: r["total"])
    best_git = min(sharded)
    report.timings["ingest"] = best["total"]
    report.add(
        Row(
            f"1. ingest {n:,} atoms, one commit (best of {sizes.ingest_repeats})",
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
            f"git fast-import, flat: {fmt_seconds(flat)}",
            best["total"] / flat,
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
            fmt_bytes(store_bytes),
            f".git: {fmt_bytes(git_bytes)} (flat: {fmt_bytes(flat_bytes)})",
            store_bytes / git_bytes,
            "",
        )
    )
    report.notes.append(
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

    times: list[float]
    cpu: list[float]
    wchar: float
    objects: float
    object_bytes: float
    file_growth: float


def small_commits(corpus: Corpus, base: int, commits: int, folder: Path) -> SmallCommits:
    """On a ``base``-atom repository, commit ``commits`` times: one new atom + one changed entry."""
    repo = Repository.init(folder)
    base_atoms = [atom(text) for text in corpus.texts(0, base)]
    repo.add_atoms(base_atoms)
    repo.commit("base")
    repo.close()
    database = folder / ".contextfs" / "store.db"
    size_before = tree_size(folder / ".contextfs")
    objects_before, bytes_before = object_totals(database)
    new_texts = corpus.texts(base, commits)

    repo = Repository.open(folder)
    times: list[float] = []
    cpu: list[float] = []
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
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    wchar = bytes_written() - wchar_start
    repo.close()
    objects_after, bytes_after = object_totals(database)
    return SmallCommits(
        times,
        cpu,
        wchar / commits,
        (objects_after - objects_before) / commits,
        (bytes_after - bytes_before) / commits,
        (tree_size(folder / ".contextfs") - size_before) / commits,
    )


def floor_commits(commits: int, payload: int, folder: Path) -> tuple[list[float], float]:
    """The least a durable commit costs here: one SQLite WAL transaction
    (synchronous=FULL) inserting one object of ``payload`` bytes and moving one ref."""
    folder.mkdir()
    conn = sqlite3.connect(folder / "floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE objects (id BLOB PRIMARY KEY, kind TEXT, data BLOB) WITHOUT ROWID")
    conn.execute("CREATE TABLE refs (name TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO refs VALUES ('HEAD', '')")
    times: list[float] = []
    wchar_start = bytes_written()
    for step in range(commits):
        data = step.to_bytes(8, "big") * (payload // 8 + 1)
        oid = sha256(data).digest()
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO objects VALUES (?, 'atom', ?)", (oid, data[:payload]))
        conn.execute("UPDATE refs SET value = ? WHERE name = 'HEAD'", (oid.hex(),))
        conn.execute("COMMIT")
        times.append(time.perf_counter() - start)
    wchar = (bytes_written() - wchar_start) / commits
    conn.close()
    return times, wchar


def bench_small_commits(sizes: Sizes, corpus: Corpus, work: Path, report: Report) -> None:
    """Item 2: per-commit time and bytes of small commits on a 10k and a 100k snapshot."""
    results: dict[int, SmallCommits] = {}
    for base, commits in (
        (sizes.small_base, sizes.small_commits),
        (sizes.large_base, sizes.large_commits),
    ):
        progress(f"2. {commits:,} small commits on a {base:,}-atom snapshot")
        folder = work / f"small-{base}"
        results[base] = small_commits(corpus, base, commits, folder)
        shutil.rmtree(folder)
    payload = len(corpus.text(0).encode())
    floor_times, floor_wchar = floor_commits(sizes.small_commits, payload, work / "floor")
    floor_median = statistics.median(floor_times)
    progress(f"  floor: durable SQLite transaction median {fmt_seconds(floor_median)}")

    for base, result in results.items():
        median = statistics.median(result.times)
        report.add(
            Row(
                f"2. small commit on {base:,} atoms ({len(result.times):,} commits): median",
                fmt_seconds(median),
                f"floor, 1 durable SQLite txn: {fmt_seconds(floor_median)}",
                median / floor_median,
                "",
            )
        )
        report.add(
            Row(
                f"2. small commit on {base:,} atoms: p95",
                fmt_seconds(percentile(result.times, 0.95)),
                f"floor p95: {fmt_seconds(percentile(floor_times, 0.95))}",
                percentile(result.times, 0.95) / percentile(floor_times, 0.95),
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
    small, large = (results[sizes.small_base], results[sizes.large_base])
    small_cpu, large_cpu = statistics.median(small.cpu), statistics.median(large.cpu)
    report.add(
        Row(
            f"2. CPU time per small commit (not waiting on the disk), median, "
            f"{sizes.large_base:,} / {sizes.small_base:,} atoms",
            f"{fmt_seconds(large_cpu)} / {fmt_seconds(small_cpu)}",
            "",
            large_cpu / small_cpu,
            "≈ 1",
        )
    )
    report.add(
        Row(
            f"2. snapshot-size independence: median commit {sizes.large_base:,} / "
            f"{sizes.small_base:,} atoms",
            f"{fmt_seconds(statistics.median(large.times))} / "
            f"{fmt_seconds(statistics.median(small.times))}",
            f"bytes: {fmt_bytes(large.wchar)} / {fmt_bytes(small.wchar)}",
            statistics.median(large.times) / statistics.median(small.times),
            "≈ 1",
        )
    )
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


# -- 3-5. the long chain ---------------------------------------------------------------


@dataclass
class Chain:
    """A ContextFS history of constant snapshot size, and its git twin."""

    folder: Path
    git_dir: Path
    ids: list[str]  # ids[g - 1] is the commit at generation (depth) g
    git_ids: list[str]
    build_times: list[float]
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
    times: list[float] = []
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
        times.append(time.perf_counter() - start)
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


def build_chain(sizes: Sizes, corpus: Corpus, work: Path) -> Chain:
    """Build both histories."""
    base, depth = sizes.chain_base, sizes.chain_depth
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
    total = sum(chain.build_times)
    progress(f"  built: contextfs {total:.1f} s, git fast-import {chain.git_build:.1f} s")
    return chain


def expand_once(folder: Path, revision: str) -> tuple[float, int]:
    """Open a fresh Repository (cold caches), expand ``revision`` under the budget and
    render it; return the seconds taken and how many atoms the rendering kept."""
    repo = Repository.open(folder)
    try:
        start = time.perf_counter()
        expand: Any = getattr(repo, "expand", None)
        if expand is not None:
            context = expand(revision, budget=BUDGET)
        else:
            atoms = sorted(
                (m for m in repo.snapshot(revision) if isinstance(m, MemoryAtom)), key=rank_key
            )
            context = ExpandedContext(atoms, [], [revision], 0, {})
        text = context.to_prompt_context(BUDGET)
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


def bench_expand(sizes: Sizes, chain: Chain, report: Report) -> None:
    """Item 3: expansion cost at depth 1, middle and full."""
    depths = (1, sizes.middle_depth, sizes.chain_depth)
    progress(f"3. expand at depths {depths} ({sizes.expand_runs} cold runs each)")
    expand_once(chain.folder, chain.ids[0])  # load the tokenizer once, outside the timings
    expand_runs: dict[int, list[tuple[float, int]]] = {d: [] for d in depths}
    snapshot_runs: dict[int, list[float]] = {d: [] for d in depths}
    for _ in range(sizes.expand_runs):  # interleaved, so background load hits every depth
        for depth in depths:
            revision = chain.ids[depth - 1]
            expand_runs[depth].append(expand_once(chain.folder, revision))
            snapshot_runs[depth].append(snapshot_once(chain.folder, revision))
    medians = {d: statistics.median(r[0] for r in runs) for d, runs in expand_runs.items()}
    snapshots = {d: statistics.median(runs) for d, runs in snapshot_runs.items()}
    shape = {d: snapshot_shape(chain.folder, chain.ids[d - 1]) for d in depths}
    kept = {d: runs[0][1] for d, runs in expand_runs.items()}
    for depth in depths:
        spread = sorted(r[0] for r in expand_runs[depth])
        progress(
            f"  depth {depth:,}: expand median {fmt_seconds(medians[depth])} "
            f"(min {fmt_seconds(spread[0])}, max {fmt_seconds(spread[-1])})"
        )
    method = (
        "repo.expand(rev, budget) + to_prompt_context"
        if hasattr(Repository, "expand")
        else "snapshot + rank + to_prompt_context (no Repository.expand yet)"
    )
    best = {d: min(r[0] for r in runs) for d, runs in expand_runs.items()}
    for depth in depths:
        report.add(
            Row(
                f"3. expand commit at depth {depth:,} (snapshot of {shape[depth][0]:,} atoms, "
                f"{shape[depth][1]:,} characters; {kept[depth]} fit the budget): median (min)",
                f"{fmt_seconds(medians[depth])} ({fmt_seconds(best[depth])})",
                f"materialise only (repo.snapshot): {fmt_seconds(snapshots[depth])} "
                f"({fmt_seconds(min(snapshot_runs[depth]))})",
                None,
                "",
            )
        )
    deepest = sizes.chain_depth
    report.add(
        Row(
            f"3. expand depth {deepest:,} / depth 1, medians",
            f"{fmt_seconds(medians[deepest])} / {fmt_seconds(medians[1])}",
            f"snapshot: {fmt_seconds(snapshots[deepest])} / {fmt_seconds(snapshots[1])}",
            medians[deepest] / medians[1],
            "≤ 1.5",
        )
    )
    report.add(
        Row(
            f"3. expand depth {deepest:,} / depth 1, minimums",
            f"{fmt_seconds(best[deepest])} / {fmt_seconds(best[1])}",
            f"snapshot: {fmt_seconds(min(snapshot_runs[deepest]))} / "
            f"{fmt_seconds(min(snapshot_runs[1]))}",
            best[deepest] / best[1],
            "≤ 1.5",
        )
    )
    build = chain.build_times
    report.add(
        Row(
            f"3. building the chain: {len(build):,} commits (stage + commit; "
            f"median {fmt_seconds(statistics.median(build))}, p95 "
            f"{fmt_seconds(percentile(build, 0.95))} each), total",
            fmt_seconds(sum(build)),
            f"git fast-import of the same history: {fmt_seconds(chain.git_build)}",
            sum(build) / chain.git_build,
            "not like for like",
        )
    )
    report.notes.append(
        f"Expansion: the chain's generation-1 commit holds {sizes.chain_base:,} atoms; each "
        f"later commit removes one atom, adds one and changes the relevance of two, so every "
        f'depth expands a snapshot of exactly {sizes.chain_base:,} atoms. "Depth d" is the '
        f"commit at generation d, expanded by its id; depth {deepest:,} is HEAD. Each run "
        f"opens a new `Repository` (empty tree cache, new SQLite connection; the OS page "
        f"cache stays warm). Method: {method}, budget {BUDGET:,} tokens (cl100k_base), "
        f"tokenizer loaded before timing. The chain build is timed per commit "
        f"(`stage(add=..., remove=...)` then `commit`: two durable transactions) and wrote "
        f"{chain.extra_objects:.1f} new objects per commit; git fast-import writes the same "
        f"history in one pack without fsync, so its ratio is for scale only."
    )


def bench_log(sizes: Sizes, chain: Chain, report: Report) -> None:
    """Item 4: full log walk vs git log --oneline."""
    depth = sizes.chain_depth
    progress(f"4. log over {depth:,} commits ({sizes.read_runs} runs each)")

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

    ours_runs: list[float] = []
    git_runs: list[float] = []
    for _ in range(sizes.read_runs):
        ours_runs.append(walk_log())
        git_runs.append(timed(lambda: git("log", "--oneline", "main", cwd=chain.git_dir)))
    ours, theirs = statistics.median(ours_runs), statistics.median(git_runs)
    report.add(
        Row(
            f"4. log over {depth:,} commits, median",
            fmt_seconds(ours),
            f"git log --oneline: {fmt_seconds(theirs)}",
            ours / theirs,
            "",
        )
    )


def bench_diff(sizes: Sizes, chain: Chain, report: Report) -> None:
    """Item 5: diff between the first and last commit."""
    depth = sizes.chain_depth
    progress(f"5. diff across {depth:,} commits ({sizes.read_runs} runs each)")
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
    ours_runs: list[float] = []
    plain_runs: list[float] = []
    rename_runs: list[float] = []
    for _ in range(sizes.read_runs):
        ours_runs.append(run_diff())
        plain_runs.append(
            timed(lambda: git("diff", "--stat", "--no-renames", first, last, cwd=chain.git_dir))
        )
        rename_runs.append(timed(lambda: git("diff", "--stat", first, last, cwd=chain.git_dir)))
    ours = statistics.median(ours_runs)
    plain, renames = statistics.median(plain_runs), statistics.median(rename_runs)
    stat = git("diff", "--shortstat", "--no-renames", first, last, cwd=chain.git_dir).strip()
    report.add(
        Row(
            f"5. diff first..last of {depth:,} commits ({changes:,} changes), median",
            fmt_seconds(ours),
            f"git diff --stat --no-renames: {fmt_seconds(plain)}",
            ours / plain,
            "",
        )
    )
    report.add(
        Row(
            "5. same, git with its default rename detection",
            fmt_seconds(ours),
            f"git diff --stat: {fmt_seconds(renames)}",
            ours / renames,
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


def write_results(
    path: Path, command: str, sizes: Sizes, corpus: Corpus, report: Report, wall: float
) -> None:
    """Write RESULTS.md."""
    suffixed = sum(1 for i in corpus.used if i >= len(corpus))
    text_note = (
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
    parts = [
        "# ContextFS benchmark results",
        "",
        "Generated by `benchmarks/run.py`; see `benchmarks/README.md` for what each "
        "figure means. Ratios are ContextFS / baseline: below 1 means ContextFS is "
        "faster or smaller, except where the goal says otherwise.",
        "",
        f"- Command: `{command}`",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Mode: {'quick (sizes / 10)' if sizes.ingest < 100_000 else 'full'}; "
        f"whole run {wall:.0f} s",
        "- Load average (1, 5, 15 min) at start / end: "
        + " / ".join(", ".join(f"{x:.2f}" for x in load) for load in report.load)
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
        f"- {text_note}",
        *(f"- {note}" for note in report.notes),
        "",
    ]
    write_core_report(path, "\n".join(parts))


def main(argv: list[str] | None = None) -> int:
    """Run every benchmark and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="sizes / 10, for a smoke run")
    parser.add_argument(
        "--output", type=Path, default=HERE / "RESULTS.md", help="where to write the report"
    )
    args = parser.parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    corpus = Corpus()
    report = Report()
    started = time.perf_counter()
    report.load.append(os.getloadavg())
    progress(f"{'quick' if args.quick else 'full'} run; corpus of {len(corpus):,} paragraphs")
    with tempfile.TemporaryDirectory(prefix="contextfs-bench-") as temp:
        work = Path(temp)
        bench_ingest(sizes, corpus, work, report)
        bench_small_commits(sizes, corpus, work, report)
        chain = build_chain(sizes, corpus, work)
        bench_expand(sizes, chain, report)
        bench_log(sizes, chain, report)
        bench_diff(sizes, chain, report)
    wall = time.perf_counter() - started
    report.load.append(os.getloadavg())
    command = ".venv/bin/python benchmarks/run.py" + (" --quick" if args.quick else "")
    write_results(args.output, command, sizes, corpus, report, wall)
    print(markdown_table(report.rows))
    progress(f"done in {wall:.0f} s; wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
