"""Op-log benchmarks (live collaboration): durable appends, reads on a big log, merging replicas.

Run from the project root:

    .venv/bin/python benchmarks/oplog.py            # 1,000,000-op log, 100,000-op replicas
    .venv/bin/python benchmarks/oplog.py --quick    # 100,000-op log, 10,000-op replicas
    .venv/bin/python benchmarks/oplog.py --log-ops 300000 --merge-ops 50000

Measured, side by side in one run:

1. durable appends per second on one session: ``OpLog.append`` (one op per
   call) from 1 and from 4 processes at once, and ``append_many`` in batches of
   100, against the floor (``os.write`` of the same line bytes + ``fdatasync``
   on an ``O_APPEND`` file; with 4 processes an ``flock`` around each write)
   and against the seed's append (open in append mode, write, close: no lock,
   no fsync), which shows what durability and the lock cost;
2. ``next_lamport_ts()`` and ``replay_since_checkpoint()`` on a 1,000,000-op
   log whose checkpoint covers all but the last 100 ops, on a fresh and on a
   warm ``OpLog``, against the seed's reads, which json-parse the whole file;
3. merging two 100,000-op replicas that share half their ops: ``receive``,
   against the floor of sorting the union and writing it with one
   ``fdatasync``; then ``Repository.commit_oplog`` of the merged session,
   against committing the same atoms through ``add_atoms`` + ``commit``.

The ops are ``context`` ops (``add_atom`` with real text, and ``set_fields``).
Everything happens in a temporary directory removed at the end. Progress goes
to stderr, the table to stdout, and the report to the section "oplog" of
``benchmarks/RESULTS.md`` (``--output`` to write elsewhere); the rest of that
file is left as it is (see ``common.py``).
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import functools
import itertools
import json
import multiprocessing
import operator
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
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
    progress,
    publish_section,
    rate,
    repeat,
    run_forked,
    section_opening,
    subsection,
    timed,
)
from contextfs import T_STRING, MemoryAtom, Repository
from contextfs.model.ids import from_hex
from contextfs.model.timeutil import from_micros
from contextfs.oplog import (
    Cut,
    OpEntry,
    OpLog,
    OpLogBackend,
    add_atom_op,
    make_op_entry,
    set_fields_op,
)
from contextfs.oplog.entry import encode_line

SECTION = "oplog"
HEADING = "## Op log (live collaboration)"
SESSION = "bench"
EPOCH_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z, in microseconds
BATCH = 100  # ops per append_many call (item 1c)
PROCESSES = 4  # concurrent writers (item 1b)
UNCHECKPOINTED = 100  # ops after the checkpoint on the big log (item 2)
CHUNK = 50_000  # ops per worker task when building the big log


@dataclass(frozen=True)
class Plan:
    """How much to measure."""

    appends: int = 2_000  # ops per one-op-per-call configuration (batched: 10x)
    rounds: int = 3  # interleaved rounds of item 1; medians reported
    log_ops: int = 1_000_000
    fresh_runs: int = 21
    warm_runs: int = 201
    seed_runs: int = 3
    merge_ops: int = 100_000  # ops per replica


PLANS = Plans(
    script="oplog.py",
    full=Plan(),
    quick=Plan(appends=400, log_ops=100_000, fresh_runs=11, warm_runs=101, merge_ops=10_000),
    quick_help="400 appends, a 100,000-op log, 10,000-op replicas",
    options={
        "appends": "ops per append configuration (2,000)",
        "log_ops": "ops in the big log of item 2 (1,000,000)",
        "merge_ops": "ops per replica in item 3 (100,000)",
    },
)


def check_plan(plan: Plan) -> str:
    """Why ``plan`` cannot run, or nothing."""
    if plan.appends < 40 or plan.log_ops < 10 * UNCHECKPOINTED or plan.merge_ops < 100:
        return "need --appends >= 40, --log-ops >= 1000 and --merge-ops >= 100"
    return ""


# -- the ops ------------------------------------------------------------------------------


def relevance(i: int) -> float:
    """A deterministic spread of relevance scores in [0, 1)."""
    return (i * 7919 % 1000) / 1000


def atom_body(text: str, i: int) -> dict[str, Any]:
    """Item ``i`` as the op ``add_atom_op`` returns, without re-running its check.

    Used only to build the big log of item 2 quickly; :func:`main` asserts it
    equals ``add_atom_op`` for the same arguments.
    """
    return {
        "op": "add_atom",
        "content": text,
        "type": "String",
        "relevance": relevance(i),
        "timestamp": EPOCH_US + i * 1_000_000,
        "source": "bench",
        "tags": [],
    }


def add_op(text: str, i: int) -> dict[str, Any]:
    """Item ``i`` as a checked ``add_atom`` op."""
    return add_atom_op(
        text, relevance=relevance(i), timestamp=EPOCH_US + i * 1_000_000, source="bench"
    )


def atom_of(text: str, i: int, score: float | None = None) -> MemoryAtom:
    """The atom the op of item ``i`` adds (with ``score`` as relevance if given)."""
    return MemoryAtom(
        text,
        T_STRING,
        from_micros(EPOCH_US + i * 1_000_000),
        "bench",
        relevance(i) if score is None else score,
    )


@functools.cache
def shared_corpus() -> Corpus:
    """One corpus per process (forked workers inherit the parent's)."""
    return Corpus()


def log_lines(start: int, count: int) -> bytes:
    """Lines of the big log for ops ``start`` to ``start + count - 1`` (a pool task).

    Op ``i`` is an ``add_atom`` of item ``i`` by actor ``agent-(i mod 4)``
    with stamp ``i + 1``: the log as ``append`` would have written it.
    """
    corpus = shared_corpus()
    return b"".join(
        encode_line(
            make_op_entry(f"agent-{i % PROCESSES}", "context", atom_body(corpus.text(i), i), i + 1)
        )
        for i in range(start, start + count)
    )


def write_ops(folder: Path, entries: Sequence[OpEntry]) -> Path:
    """Write ``entries`` as the session's ops.jsonl under the repository folder ``folder``."""
    session = folder / "oplog" / SESSION
    session.mkdir(parents=True)
    path = session / "ops.jsonl"
    path.write_bytes(b"".join(encode_line(e) for e in entries))
    return path


# -- the seed's log, for comparison --------------------------------------------------------


class SeedLog:
    """The seed's OpLog reads and append (seed 002, ``OpLog``), as it wrote them.

    No lock, no fsync, no cache: ``next_lamport_ts`` scans the whole file on an
    instance's first call and then counts in memory (so it never sees another
    writer's ops); ``replay_since_checkpoint`` json-parses every line on every
    call and keeps the ops whose stamp is above the checkpoint's.
    """

    def __init__(self, session_folder: Path) -> None:
        self.ops_path = session_folder / "ops.jsonl"
        self.checkpoint_path = session_folder / "checkpoint.json"
        self._lamport = 0

    def _load_lamport(self) -> int:
        if not self.ops_path.exists():
            return 0
        highest = 0
        with self.ops_path.open() as handle:
            for raw in handle:
                line = raw.strip()
                if not line:
                    continue
                with contextlib.suppress(json.JSONDecodeError):
                    highest = max(highest, json.loads(line).get("lamport_ts", 0))
        return highest

    def next_lamport_ts(self) -> int:
        if self._lamport == 0:
            self._lamport = self._load_lamport()
        self._lamport += 1
        return self._lamport

    def read_all(self) -> list[dict[str, Any]]:
        if not self.ops_path.exists():
            return []
        entries = []
        with self.ops_path.open() as handle:
            for raw in handle:
                line = raw.strip()
                if line:
                    with contextlib.suppress(json.JSONDecodeError):
                        entries.append(json.loads(line))
        return entries

    def read_checkpoint(self) -> dict[str, Any] | None:
        if not self.checkpoint_path.exists():
            return None
        return json.loads(self.checkpoint_path.read_text())  # type: ignore[no-any-return]

    def replay_since_checkpoint(self) -> list[dict[str, Any]]:
        checkpoint = self.read_checkpoint()
        entries = self.read_all()
        if checkpoint is None:
            return entries
        cutoff = checkpoint["lamport_ts"]
        return [e for e in entries if e["lamport_ts"] > cutoff]


def seed_append(path: Path, line: bytes) -> None:
    """The seed's append: open in append mode, write the line, close."""
    with open(path, "ab") as handle:
        handle.write(line)


# -- measuring helpers ---------------------------------------------------------------------


def fmt_time(seconds: float) -> str:
    """Like ``fmt_seconds``, with nanoseconds below a microsecond."""
    return f"{seconds * 1e9:.0f} ns" if seconds < 1e-6 else fmt_seconds(seconds)


def cell(rounds: Rounds) -> str:
    """``median (p95)``, or ``median of N`` when there are few runs."""
    return rounds.median_or_count(fmt_time)


def ops_rate(ops: int, seconds: float) -> str:
    """Throughput and time per op."""
    return rate(ops, seconds, "op", "ops")


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """``items`` in consecutive slices of ``size``."""
    return [items[i : i + size] for i in range(0, len(items), size)]


# -- 1. durable appends ---------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """One way of appending ``ops`` lines to one file, from ``processes`` processes."""

    processes: int
    ops: int
    writer: Callable[[Path, int], None]  # (run folder, process index) -> None
    check: Callable[[Path], str]  # run folder -> "" or what is wrong


def floor_writer(lines: list[list[bytes]], batch: int, locked: bool) -> Callable[[Path, int], None]:
    """``os.write`` of ``batch`` lines, ``fdatasync``, on an O_APPEND file (flock if ``locked``)."""

    def write(folder: Path, k: int) -> None:
        fd = os.open(folder / "floor.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            for group in chunks(lines[k], batch):
                if locked:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                os.write(fd, b"".join(group))
                os.fdatasync(fd)
                if locked:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    return write


def seed_writer(lines: list[list[bytes]]) -> Callable[[Path, int], None]:
    """The seed's append, one line per call."""

    def write(folder: Path, k: int) -> None:
        for line in lines[k]:
            seed_append(folder / "seed.jsonl", line)

    return write


def oplog_writer(entries: list[list[OpEntry]], batch: int) -> Callable[[Path, int], None]:
    """``OpLog.append`` (``batch`` 1) or ``append_many`` in batches, on a new instance."""

    def write(folder: Path, k: int) -> None:
        with OpLog.in_folder(folder, SESSION) as log:
            if batch == 1:
                for entry in entries[k]:
                    log.append(entry)
            else:
                for group in chunks(entries[k], batch):
                    log.append_many(group)

    return write


def check_oplog(total: int) -> Callable[[Path], str]:
    """Every op is there once, whole, with stamps strictly increasing in file order."""

    def check(folder: Path) -> str:
        ops = OpLog.in_folder(folder, SESSION).read_all()
        if len(ops) != total or len({e["op_id"] for e in ops}) != total:
            return f"{len(ops)} ops in the log, {total} appended"
        if any(b <= a for a, b in itertools.pairwise(e["lamport_ts"] for e in ops)):
            return "stamps do not increase strictly"
        return ""

    return check


def check_lines(name: str, total: int) -> Callable[[Path], str]:
    """The file holds ``total`` lines and every one is a whole JSON object."""

    def check(folder: Path) -> str:
        lines = (folder / name).read_bytes().split(b"\n")
        if lines[-1] != b"" or len(lines) - 1 != total:
            return f"{len(lines) - 1} lines, {total} written"
        broken = 0
        for line in lines[:-1]:
            try:
                json.loads(line)
            except json.JSONDecodeError:
                broken += 1
        return f"{broken} torn or interleaved lines" if broken else ""

    return check


def split(items: Sequence[Any], processes: int) -> list[list[Any]]:
    """Item ``i`` goes to process ``i mod processes`` (agent-k's ops to process k)."""
    return [list(items[k::processes]) for k in range(processes)]


def append_configs(ones: list[OpEntry], many: list[OpEntry], processes: int) -> dict[str, Config]:
    """Every way of appending, from ``processes`` processes, keyed ``name/processes``."""
    lines = split([encode_line(e) for e in ones], processes)
    batch_lines = split([encode_line(e) for e in many], processes)
    locked = processes > 1
    n, m = len(ones), len(many)
    configs = {
        "append": (n, oplog_writer(split(ones, processes), 1), check_oplog(n)),
        "append_many": (m, oplog_writer(split(many, processes), BATCH), check_oplog(m)),
        "floor": (n, floor_writer(lines, 1, locked), check_lines("floor.jsonl", n)),
        "floor_batch": (
            m,
            floor_writer(batch_lines, BATCH, locked),
            check_lines("floor.jsonl", m),
        ),
        "seed": (n, seed_writer(lines), check_lines("seed.jsonl", n)),
    }
    return {f"{name}/{processes}": Config(processes, *parts) for name, parts in configs.items()}


def append_entries(corpus: Corpus, count: int) -> list[OpEntry]:
    """``count`` add_atom ops: op i is agent-(i mod 4)'s, stamped i + 1.

    One process appends them in order; with four processes, process k appends
    agent-k's ops, so stamps collide and `append` re-stamps the late ones, as it must.
    """
    return [
        make_op_entry(f"agent-{i % PROCESSES}", "context", add_op(corpus.text(i), i), i + 1)
        for i in range(count)
    ]


@dataclass
class Appends:
    """Item 1's rounds: each configuration's wall times, and what its checks found."""

    configs: dict[str, Config]
    spans: dict[str, Rounds]
    problems: dict[str, str]

    def per_op(self, name: str) -> float:
        """Median seconds per op of configuration ``name``."""
        return self.spans[name].median / self.configs[name].ops

    def show(self, name: str) -> str:
        """Configuration ``name``'s median throughput."""
        return ops_rate(self.configs[name].ops, self.spans[name].median)


def measure_appends(configs: dict[str, Config], rounds: int, work: Path) -> Appends:
    """Every configuration once per round, each into a new folder; check what each wrote."""
    found = Appends(configs, {name: Rounds() for name in configs}, {})
    for number in range(rounds):
        progress(f"1. appends, round {number + 1} of {rounds}")
        for name, config in configs.items():
            folder = work / f"append-{number}-{name.replace('/', '-')}"
            folder.mkdir()
            writer = functools.partial(config.writer, folder)
            found.spans[name].add(run_forked(writer, config.processes))
            problem = config.check(folder)
            if problem:
                found.problems.setdefault(name, problem)
            shutil.rmtree(folder)
    return found


def bench_appends(report: Report, corpus: Corpus, plan: Plan, work: Path) -> None:
    """Item 1: every configuration once per round, interleaved; median throughput."""
    progress(f"1. building {plan.appends * 11:,} add_atom ops")
    entries = append_entries(corpus, plan.appends * 11)
    ones, many = entries[: plan.appends], entries[plan.appends :]
    configs = {**append_configs(ones, many, 1), **append_configs(ones, many, PROCESSES)}
    found = measure_appends(configs, plan.rounds, work)
    for label, ours, what, baseline in append_comparisons(plan.appends, len(many)):
        report.add(
            Row(
                label,
                found.show(ours),
                f"{what}: {found.show(baseline)}",
                found.per_op(ours) / found.per_op(baseline),
            )
        )
    line_bytes = sum(len(encode_line(e)) for e in ones) // len(ones)
    report.notes.append(appends_note(plan, line_bytes, found.problems))


def append_comparisons(appends: int, batched: int) -> list[tuple[str, str, str, str]]:
    """Item 1's rows: (label, our configuration, the baseline's description, the baseline)."""
    four = f"{PROCESSES} processes at once"
    return [
        (
            f"1a. OpLog.append, one op per call, 1 process ({appends:,} ops)",
            "append/1",
            "floor, os.write + fdatasync per line",
            "floor/1",
        ),
        (
            "1a. same, against the seed's append (open, write, close: no lock, no fsync)",
            "append/1",
            "seed, 1 process",
            "seed/1",
        ),
        (
            f"1b. OpLog.append, one op per call, {four} ({appends:,} ops in all)",
            f"append/{PROCESSES}",
            "floor, flock + os.write + fdatasync per line",
            f"floor/{PROCESSES}",
        ),
        (
            "1b. same, against the seed's append",
            f"append/{PROCESSES}",
            f"seed, {four}",
            f"seed/{PROCESSES}",
        ),
        (
            f"1c. append_many, batches of {BATCH}, 1 process ({batched:,} ops)",
            "append_many/1",
            "floor, os.write + fdatasync per line",
            "floor/1",
        ),
        (
            "1c. same, against the floor per batch",
            "append_many/1",
            f"floor, one os.write of {BATCH} lines + fdatasync",
            "floor_batch/1",
        ),
        (
            f"1c. append_many, batches of {BATCH}, {four}",
            f"append_many/{PROCESSES}",
            f"floor per batch, flock + os.write of {BATCH} lines + fdatasync",
            f"floor_batch/{PROCESSES}",
        ),
    ]


def appends_note(plan: Plan, line_bytes: int, problems: dict[str, str]) -> str:
    """How item 1 runs its writers, and what the checks found."""
    found = "; ".join(f"{name}: {problem}" for name, problem in problems.items())
    return (
        f"Appends: every configuration writes a new file, once per round, {plan.rounds} "
        "interleaved rounds, medians reported. Writers are forked processes that start "
        "together (a barrier); throughput is ops over the time from the first writer's start "
        "to the last one's end. The ops, built before timing, are `context` add_atom ops: op "
        f"i holds corpus item i, belongs to agent-(i mod {PROCESSES}) and is stamped i + 1; "
        f"with {PROCESSES} processes, process k appends agent-k's ops, so most stamps are "
        "stale when they arrive and `append` re-stamps them (a new op id). The floor and the "
        f"seed write the same line bytes (`encode_line`, {line_bytes:,} bytes per op on "
        "average); the seed's append is the seed's `open('a')`/`write`/`close`. Checked after "
        "every run: every op there once with stamps strictly increasing (OpLog); the line "
        "count and whole JSON lines (floor, seed). "
        + (f"Problems: {found}." if found else "No problems found.")
    )


def bench_writer_loop(report: Report, corpus: Corpus, plan: Plan, work: Path) -> None:
    """Item 1, informational: what an agent's loop costs per op, end to end."""
    folder = work / "writer-loop"
    folder.mkdir()
    count = plan.appends
    with OpLog.in_folder(folder, SESSION) as log:
        start = time.perf_counter()
        for i in range(count):
            op = add_op(corpus.text(i), i)
            log.append(make_op_entry("agent-0", "context", op, log.next_lamport_ts()))
        spent = time.perf_counter() - start
    shutil.rmtree(folder)
    report.add(
        Row(
            f"1d. an agent's loop, 1 process: add_atom_op + next_lamport_ts + make_op_entry "
            f"+ append ({count:,} ops)",
            ops_rate(count, spent),
        )
    )


# -- 2. reads on a big log ---------------------------------------------------------------------


def build_big_log(folder: Path, count: int) -> tuple[Cut, int]:
    """Write ``count`` ops into ops.jsonl with two worker processes; return the checkpoint cut.

    The cut covers all but the last ``UNCHECKPOINTED`` ops.
    """
    session = folder / "oplog" / SESSION
    session.mkdir(parents=True)
    tail: collections.deque[int] = collections.deque(maxlen=UNCHECKPOINTED)
    total = 0
    tasks = [(start, min(CHUNK, count - start)) for start in range(0, count, CHUNK)]
    shared_corpus()  # built once, inherited by the workers
    context = multiprocessing.get_context("fork")
    with (
        context.Pool(max(1, min(2, os.cpu_count() or 1))) as pool,
        open(session / "ops.jsonl", "wb") as handle,
    ):
        for done, data in enumerate(pool.starmap(log_lines, tasks, chunksize=1), 1):
            handle.write(data)
            total += len(data)
            tail.extend(len(line) + 1 for line in data.split(b"\n")[:-1])
            if done % 5 == 0 or done == len(tasks):
                progress(f"  {min(done * CHUNK, count):,} ops written")
        handle.flush()
        os.fsync(handle.fileno())
    return Cut(count - UNCHECKPOINTED, total - sum(tail)), total


def prepare_big_log(report: Report, count: int, folder: Path) -> Path:
    """Build the big log, open it once without ops.state, checkpoint it; its session folder."""
    progress(f"2. building a {count:,}-op log")
    built, (cut, size) = clocked(lambda: build_big_log(folder, count))
    progress("2. first open without ops.state (the cache is rebuilt by scanning the log)")
    start = time.perf_counter()
    with OpLog.in_folder(folder, SESSION) as log:
        top = log.next_lamport_ts()
    rebuild = time.perf_counter() - start
    assert top == count + 1, top
    progress(f"2. checkpoint through op {cut.ops:,}")
    start = time.perf_counter()
    with OpLog.in_folder(folder, SESSION) as log:
        log.checkpoint("bench-snapshot", through=cut)
    checkpoint = time.perf_counter() - start
    report.add(
        Row(
            f"2. the log: {count:,} ops, {fmt_bytes(size)} (built in {fmt_seconds(built)})",
            f"first open without ops.state (rebuilds it): {fmt_seconds(rebuild)}; "
            f"checkpoint of the first {cut.ops:,} ops: {fmt_seconds(checkpoint)}",
        )
    )
    return folder / "oplog" / SESSION


def fresh_call(folder: Path, call: Callable[[OpLog], object]) -> float:
    """Seconds to construct an ``OpLog`` on ``folder`` and make one call on it."""
    start = time.perf_counter()
    log = OpLog.in_folder(folder, SESSION)
    call(log)
    spent = time.perf_counter() - start
    log.close()
    return spent


def per_call(call: Callable[[], object], calls: int = 1000) -> float:
    """Seconds per call over ``calls`` calls in a row."""
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def measure_our_reads(plan: Plan, folder: Path) -> tuple[dict[str, Rounds], list[OpEntry]]:
    """Our stamps and replays, fresh and warm; and the ops the replay returned."""
    progress("2. next_lamport_ts and replay_since_checkpoint, ours")
    found = {
        "ts fresh": repeat(lambda: fresh_call(folder, OpLog.next_lamport_ts), plan.fresh_runs),
        "replay fresh": repeat(
            lambda: fresh_call(folder, OpLog.replay_since_checkpoint), plan.fresh_runs
        ),
    }
    with OpLog.in_folder(folder, SESSION) as warm:
        replayed = warm.replay_since_checkpoint()
        found["ts warm"] = repeat(lambda: per_call(warm.next_lamport_ts), plan.fresh_runs)
        found["replay warm"] = repeat(lambda: timed(warm.replay_since_checkpoint), plan.warm_runs)
    assert len(replayed) == UNCHECKPOINTED, len(replayed)
    return found, replayed


def measure_seed_reads(
    plan: Plan, session: Path, count: int
) -> tuple[dict[str, Rounds], list[dict[str, Any]]]:
    """The seed's stamps (fresh and warm) and replays; and the ops its replays returned."""
    progress(f"2. the seed's reads ({plan.seed_runs} runs each; each reads the whole log)")
    found = {"ts fresh": repeat(lambda: timed(SeedLog(session).next_lamport_ts), plan.seed_runs)}
    seed_warm = SeedLog(session)
    assert seed_warm.next_lamport_ts() == count + 1
    found["ts warm"] = repeat(lambda: per_call(seed_warm.next_lamport_ts), plan.fresh_runs)
    seed_ops: list[dict[str, Any]] = []
    found["replay"] = repeat(
        lambda: timed(lambda: seed_ops.extend(SeedLog(session).replay_since_checkpoint())),
        plan.seed_runs,
    )
    return found, seed_ops


def bench_big_log(report: Report, plan: Plan, work: Path) -> None:
    """Item 2: next_lamport_ts and replay_since_checkpoint on a big log, against the seed."""
    count = plan.log_ops
    folder = work / "big"
    session = prepare_big_log(report, count, folder)
    ours, replayed = measure_our_reads(plan, folder)
    seed, seed_ops = measure_seed_reads(plan, session, count)
    assert {e["op_id"] for e in seed_ops} == {e["op_id"] for e in replayed}
    rows = [
        (
            f"2. next_lamport_ts(), fresh OpLog per call, {count:,}-op log",
            ours["ts fresh"],
            "seed (json-parses every line on an instance's first call)",
            seed["ts fresh"],
        ),
        (
            "2. next_lamport_ts(), warm OpLog (checks the state cache on every call)",
            ours["ts warm"],
            "seed, warm (a counter in memory that never sees other writers' ops)",
            seed["ts warm"],
        ),
        (
            f"2. replay_since_checkpoint() ({UNCHECKPOINTED} ops after the checkpoint), "
            "fresh OpLog per call",
            ours["replay fresh"],
            "seed (json-parses every line, filters by stamp)",
            seed["replay"],
        ),
        (
            "2. replay_since_checkpoint(), warm OpLog",
            ours["replay warm"],
            "seed, the same as fresh (no cache)",
            seed["replay"],
        ),
    ]
    for label, mine, what, theirs in rows:
        report.add(Row(label, cell(mine), f"{what}: {cell(theirs)}", mine.median / theirs.median))
    report.notes.append(big_log_note(plan, count))
    shutil.rmtree(folder)


def big_log_note(plan: Plan, count: int) -> str:
    """How item 2's log is built and its reads are timed."""
    return (
        f"Big log: {count:,} `context` add_atom ops (op i holds corpus item i, actor "
        f"agent-(i mod {PROCESSES}), stamp i + 1), encoded with `make_op_entry` + `encode_line` "
        f"in two worker processes and written straight into ops.jsonl (no ops.state), so "
        "the first open rebuilds the state cache by scanning every line; then "
        f"`OpLog.checkpoint(snapshot, through=Cut(...))` covering all but the last "
        f"{UNCHECKPOINTED} ops (it reads every line once: RFC 6962 leaf hashes). The add_atom "
        "bodies are built as plain dicts, checked equal to `add_atom_op`'s. A fresh call "
        "constructs the `OpLog` (or the seed's log) and calls once: for ours that includes "
        "taking the lock and checking the state cache against the file; for the seed, "
        "reading and json-parsing every line. Warm calls reuse one instance; warm "
        f"`next_lamport_ts` is timed over 1,000 calls per run. The seed's warm "
        "`next_lamport_ts` never rereads the file, which is how two writers can take the same "
        f"stamp. Runs: {plan.fresh_runs} fresh and {plan.warm_runs} warm replays for ours, "
        f"{plan.fresh_runs} runs of 1,000 warm stamps for both, {plan.seed_runs} of each of "
        "the seed's full reads. The OS page cache is warm for both. Both sides return the "
        f"same next stamp and the same {UNCHECKPOINTED} ops."
    )


# -- 3. merging replicas ------------------------------------------------------------------------


@dataclass
class Actor:
    """One actor's ops and, for the plain commit, the atoms they leave behind."""

    entries: list[OpEntry]
    atoms: dict[str, tuple[str, int, float]]  # atom id -> (text, item, final relevance)


def actor_ops(corpus: Corpus, name: str, first: int, count: int, even: bool) -> Actor:
    """``count`` ops of one actor: four add_atom, then a set_fields of the second, repeated.

    Stamps are ``2j + 1`` (or ``2j + 2`` with ``even``) for the actor's op j, so
    two actors interleave; a set_fields names its add_atom as causal parent.
    """
    entries: list[OpEntry] = []
    atoms: dict[str, tuple[str, int, float]] = {}
    added: list[tuple[str, str]] = []  # (op id, atom id) of each add_atom
    for j in range(count):
        stamp = 2 * j + (2 if even else 1)
        if j % 5 == 4:
            op_id, atom_id = added[-3]
            text, item, _ = atoms[atom_id]
            score = relevance(item + 500)
            op = set_fields_op(atom_id, relevance=score)
            entry = make_op_entry(name, "context", op, stamp, parent_op_ids=[op_id])
            atoms[atom_id] = (text, item, score)
        else:
            item = first + j
            text = corpus.text(item)
            entry = make_op_entry(name, "context", add_op(text, item), stamp)
            atom_id = atom_of(text, item).content_hash
            added.append((entry["op_id"], atom_id))
            atoms[atom_id] = (text, item, relevance(item))
        entries.append(entry)
    return Actor(entries, atoms)


def merge_floor(ours: list[OpEntry], theirs: list[OpEntry], path: Path) -> int:
    """The floor: the union sorted by (lamport_ts, actor_id, op_id), one write, one fdatasync."""
    union = {e["op_id"]: e for e in ours}
    union.update((e["op_id"], e) for e in theirs)
    ordered = sorted(union.values(), key=operator.itemgetter("lamport_ts", "actor_id", "op_id"))
    data = memoryview(b"".join(encode_line(e) for e in ordered))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        while data:
            data = data[os.write(fd, data) :]
        os.fdatasync(fd)
    finally:
        os.close(fd)
    return len(ordered)


@dataclass
class Replicas:
    """Two replicas sharing actor a2's ops: A holds a1 and a2, B holds a2 and a3."""

    half: int  # ops per actor
    a: list[OpEntry]
    b: list[OpEntry]
    final: dict[str, tuple[str, int, float]]  # every atom after the merge, as in Actor.atoms


def build_replicas(corpus: Corpus, plan: Plan) -> Replicas:
    """Three actors' ops, sorted by stamp into the two replicas."""
    half = plan.merge_ops // 2
    progress(f"3. building two {2 * half:,}-op replicas (actors a1+a2 and a2+a3)")
    a1 = actor_ops(corpus, "a1", 0, half, even=False)
    a2 = actor_ops(corpus, "a2", half, half, even=True)
    a3 = actor_ops(corpus, "a3", 2 * half, half, even=False)
    by_stamp = operator.itemgetter("lamport_ts", "actor_id", "op_id")
    replica_a = sorted(a1.entries + a2.entries, key=by_stamp)
    replica_b = sorted(a2.entries + a3.entries, key=by_stamp)
    return Replicas(half, replica_a, replica_b, {**a1.atoms, **a2.atoms, **a3.atoms})


@dataclass
class Merge:
    """What item 3 measured (seconds unless named otherwise)."""

    read_b: float = 0.0
    seed_read_b: float = 0.0
    ops_b: int = 0
    receive: float = 0.0
    duplicates: int = 0
    receive_again: float = 0.0
    duplicates_again: int = 0
    floor: float = 0.0
    union: int = 0
    commit_oplog: float = 0.0
    crystal_ops: int = 0
    crystal_changed: int = 0
    plain: float = 0.0
    same_tree: bool = False


def receive_b(log: OpLogBackend, replicas: Replicas, work: Path, merge: Merge) -> list[OpEntry]:
    """Read replica B (ours and the seed's way), receive it into A twice; B's ops."""
    progress("3. read_all of replica B, and the seed's read_all")
    merge.read_b, theirs = clocked(OpLog.in_folder(work / "replica-b", SESSION).read_all)
    session_b = work / "replica-b" / "oplog" / SESSION
    merge.seed_read_b, seed_read = clocked(SeedLog(session_b).read_all)
    assert len(theirs) == len(seed_read) == len(replicas.b)
    merge.ops_b = len(theirs)
    progress("3. receive B into A")
    merge.receive, received = clocked(lambda: log.receive(theirs))
    assert len(received.added) == replicas.half
    assert received.duplicates == len(theirs) - replicas.half
    assert not received.held
    merge.duplicates = received.duplicates
    progress("3. receive B again (every op a duplicate)")
    merge.receive_again, again = clocked(lambda: log.receive(theirs))
    assert not again.added
    assert again.duplicates == len(theirs)
    merge.duplicates_again = again.duplicates
    return theirs


def commit_plain(replicas: Replicas, folder: Path) -> tuple[float, bytes]:
    """The merged atoms through ``add_atoms`` + ``commit``: the seconds, and the tree."""
    progress(f"3. the same {len(replicas.final):,} atoms through add_atoms + commit")
    folder.mkdir()
    plain = Repository.init(folder)
    start = time.perf_counter()
    plain.add_atoms([atom_of(text, item, score) for text, item, score in replicas.final.values()])
    plain_commit = plain.commit("the same atoms, through the normal API")
    seconds = time.perf_counter() - start
    tree = plain.load_commit(from_hex(plain_commit)).tree
    plain.close()
    return seconds, tree


def measure_merge(replicas: Replicas, work: Path) -> Merge:
    """Receive B into A in a fresh repository, crystallise it; the floor and a plain commit."""
    merge = Merge()
    repo_folder = work / "merged"
    repo_folder.mkdir()
    repo = Repository.init(repo_folder)
    assert repo.path is not None
    write_ops(repo.path, replicas.a)
    write_ops(work / "replica-b", replicas.b)
    log = repo.oplog(SESSION)
    log.end()  # builds ops.state, as appending would have (not timed)
    theirs = receive_b(log, replicas, work, merge)
    log.close()
    progress("3. the floor: sort the union, write it, one fdatasync")
    merge.floor, merge.union = clocked(
        lambda: merge_floor(replicas.a, theirs, work / "floor.jsonl")
    )
    assert merge.union == 3 * replicas.half
    progress(f"3. commit_oplog of the merged session ({merge.union:,} ops)")
    merge.commit_oplog, crystal = clocked(lambda: repo.commit_oplog(SESSION))
    merge.crystal_ops, merge.crystal_changed = crystal.ops, crystal.changed
    tree = repo.load_commit(from_hex(crystal.commit)).tree
    repo.close()
    merge.plain, plain_tree = commit_plain(replicas, work / "plain")
    merge.same_tree = plain_tree == tree
    return merge


def bench_merge(report: Report, corpus: Corpus, plan: Plan, work: Path) -> None:
    """Item 3: receive a replica, crystallise the merged session; floors and a plain commit."""
    replicas = build_replicas(corpus, plan)
    m = measure_merge(replicas, work)
    report.add(
        Row(
            f"3. read replica B with read_all ({m.ops_b:,} ops)",
            fmt_seconds(m.read_b),
            f"seed's read_all (json.loads per line, no checks): {fmt_seconds(m.seed_read_b)}",
            m.read_b / m.seed_read_b,
        )
    )
    report.add(
        Row(
            f"3. OpLog.receive of B into A ({replicas.half:,} new ops, "
            f"{m.duplicates:,} duplicates)",
            fmt_seconds(m.receive),
            f"floor: union of both, sorted by (lamport_ts, actor_id, op_id), {m.union:,} lines "
            f"written, one fdatasync: {fmt_seconds(m.floor)}",
            m.receive / m.floor,
        )
    )
    report.add(
        Row(
            f"3. receive of B again (all {m.duplicates_again:,} ops duplicates)",
            fmt_seconds(m.receive_again),
        )
    )
    report.add(
        Row(
            f"3. Repository.commit_oplog of the merged session ({m.crystal_ops:,} ops, "
            f"{m.crystal_changed:,} atoms) into a fresh repository",
            fmt_seconds(m.commit_oplog),
            f"the same atoms through add_atoms + commit: {fmt_seconds(m.plain)}"
            + ("" if m.same_tree else " (**trees differ**)"),
            m.commit_oplog / m.plain,
        )
    )
    ours, floor = m.read_b + m.receive + m.commit_oplog, m.floor + m.plain
    report.add(
        Row(
            "3. whole merge: read_all + receive + commit_oplog",
            fmt_seconds(ours),
            f"floor + plain commit: {fmt_seconds(floor)}",
            ours / floor,
        )
    )
    report.notes.append(merge_note(replicas, m))


def merge_note(replicas: Replicas, m: Merge) -> str:
    """How item 3's replicas are made and merged."""
    final = len(replicas.final)
    return (
        f"Merge: three actors of {replicas.half:,} ops each; every fifth op of an actor is a "
        "set_fields (a new relevance) of an atom it added three ops before, naming that "
        "add_atom as causal parent; the rest are add_atom ops of distinct corpus items. "
        "Replica A holds a1 and a2, replica B a2 and a3 (the same a2 ops, so half of each "
        "replica is shared); each is written in stamp order straight into ops.jsonl. A "
        "lives in a fresh `Repository.init` folder; its state cache is built before timing. "
        "`receive` gets B's ops from `read_all` (timed separately) and appends the new "
        "ones durably. The floor holds both lists in memory, dedupes by op id, sorts, "
        "encodes and writes the union with one fdatasync. `commit_oplog` crystallises the "
        f"whole merged session ({m.union:,} ops: "
        f"{final:,} add_atom, {m.union - final:,} set_fields) into one commit and a "
        "checkpoint; the plain side builds the final atoms (relevance after the set_fields) "
        "as `MemoryAtom`s, then `add_atoms` + `commit` into another fresh repository. The two "
        "commits hold "
        + ("the same tree (checked)." if m.same_tree else "**different trees**.")
        + " One run each."
    )


# -- the report ------------------------------------------------------------------------------


def render_section(
    command: str, plan: Plan, corpus: Corpus, report: Report, wall: float, measured: str
) -> str:
    """The RESULTS.md section."""
    largest = max(plan.log_ops, plan.appends * 11, plan.merge_ops // 2 * 3)
    ratios = (
        "Ratios are ContextFS / baseline in time (per op for throughputs): below 1 means "
        "ContextFS is faster."
    )
    return "\n".join(
        [
            *section_opening(HEADING, "oplog.py", command, measured, ratios),
            f"- Sizes: appends {plan.appends:,} ops per configuration ({plan.appends * 10:,} "
            f"batched), log {plan.log_ops:,} ops, replicas {plan.merge_ops // 2 * 2:,} ops; "
            f"whole run {wall:.0f} s",
            report.load_line(),
            *machine_lines(),
            *subsection("Figures", markdown_table(report.rows)),
            *subsection(
                "Notes",
                f"- Texts: the {len(corpus):,} paragraphs of `pydoc_data.topics`, as in the core "
                f"benchmarks; item i is paragraph i mod {len(corpus):,}, suffixed ` (note i)` "
                f"from i = {len(corpus):,} on (items up to {largest:,} used), so every op in a "
                "log carries distinct text.",
                *bullets(report.notes),
            ),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Measure the three items and write the RESULTS.md section."""
    args, plan = PLANS.choose(PLANS.parser(__doc__), argv, check_plan)
    corpus = shared_corpus()
    assert atom_body(corpus.text(7), 7) == add_op(corpus.text(7), 7)
    report = Report()
    started = time.perf_counter()
    report.note_load()
    measured = measured_version()
    progress(
        f"op-log benchmarks: {plan.appends:,} appends, a {plan.log_ops:,}-op log, "
        f"{plan.merge_ops:,}-op replicas"
    )
    with tempfile.TemporaryDirectory(prefix="contextfs-oplog-") as temp:
        work = Path(temp)
        bench_appends(report, corpus, plan, work)
        bench_writer_loop(report, corpus, plan, work)
        bench_big_log(report, plan, work)
        bench_merge(report, corpus, plan, work)
    wall = time.perf_counter() - started
    report.note_load()
    section = render_section(PLANS.command(args), plan, corpus, report, wall, measured)
    tables = [markdown_table(report.rows)]
    publish_section(args.output, SECTION, HEADING, section, tables=tables, wall=wall)
    return 0


if __name__ == "__main__":
    sys.exit(main())
