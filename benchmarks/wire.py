"""Wire protocol benchmarks: round trips, a large streamed answer, a slow reader, first chunks.

Run from the project root:

    .venv/bin/python benchmarks/wire.py            # 100,000 + 1,000,000 memories, ~5 minutes
    .venv/bin/python benchmarks/wire.py --quick    # 4,000 + 20,000 memories, ~30 s
    .venv/bin/python benchmarks/wire.py --first-chunk-atoms 0          # no 1,000,000 build
    .venv/bin/python benchmarks/wire.py --memories 50000 --round-trips 10000 --stall 5

A repository of real-text memories (the paragraphs of ``pydoc_data.topics``,
one commit) is served by ``contextfs.server.serve.Server`` in a child
interpreter; the clients (``contextfs.client.AsyncClient``) run in this
process. The floor is a plain asyncio server in another child interpreter
that speaks 4-byte big-endian length + payload frames: it echoes, answers
with a payload of a requested size, or streams frames of requested sizes.
Measured, side by side in one run:

1. round trips per second: PING (answered by the server's read loop) and a
   QUERY for a rare word (full-text search in a worker thread), from one
   client in sequence, from 16 clients with a connection each, and 16 in
   flight on one connection; against the floor moving frames of the same
   sizes, and (QUERY) against ``repo.search`` called in this process. Goal:
   at least 50% of the floor's rate (time per round trip at most 2x);
2. a large streamed answer: ``AsyncClient.stream`` of every memory (100,000
   by default), in MB/s of payload and atoms/s, against the floor streaming
   frames of the same sizes and against ``repo.stream`` in this process (goal:
   100 MB/s of payload); and EXPAND with a budget of 8,000 tokens against
   ``repo.context`` in this process;
3. a slow reader: a STREAM that is not read for ``--stall`` seconds (through
   ``AsyncClient``, through a raw socket that never calls ``recv``, and 16
   raw sockets at once) while another connection sends PINGs, against the
   same PINGs without a stall; and the server process's resident memory
   (``VmRSS`` of the child, from ``/proc``) before, during and after; then a
   check that a STREAM read with pauses arrives whole;
4. the first chunk of a fresh STREAM over the network (sent to first
   STREAM_CHUNK received, ~20 requests, each iterator closed after its first
   chunk), against ``repo.stream``'s first chunk in this process: on the
   server above, and on a second server over a repository of
   ``--first-chunk-atoms`` memories (1,000,000 by default; 0 skips it) built
   for the purpose (its build is timed) after the first server stops.

Everything happens in a temporary directory removed at the end. Progress goes
to stderr, the table to stdout, and the report to the section "wire" of
``benchmarks/RESULTS.md`` (``--output`` to write elsewhere); the rest of that
file is left as it is (see ``common.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import os
import random
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    HERE,
    RESULTS,
    SERVER_CODE,
    Corpus,
    Report,
    Row,
    fmt_bytes,
    fmt_seconds,
    machine,
    markdown_table,
    percentile,
    progress,
    write_section,
)
from contextfs import Repository
from contextfs.client.client import AsyncClient
from contextfs.model.objects import MemoryAtom
from contextfs.model.types import T_STRING
from contextfs.server import handlers
from contextfs.wire.connection import Connection, Received, Role
from contextfs.wire.frames import HEADER_SIZE, encode_frame
from contextfs.wire.messages import (
    Hello,
    Message,
    MessageType,
    Ping,
    Query,
    QueryResponse,
    Stream,
    StreamChunk,
    StreamEnd,
    Welcome,
    encode_payload,
)

SECTION = "wire"
HEADING = "## Wire protocol (server and client)"
CLIENTS = 16  # concurrent clients, and requests in flight on one connection
RARE = "decorator"  # in 0.2% of the paragraphs: a small, real full-text search
EXPAND_BUDGET = 8_000
SHORT_THRESHOLD = 0.99  # item 3d: a STREAM of the top 1% of the memories
SLOW_PAUSE = 0.05  # item 3d: seconds a slow consumer sleeps after each chunk
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
YEAR_SECONDS = 366 * 24 * 3600
HANG = 3.0  # seconds a request may take before it counts as hung (item 1c)
LIMIT = 300.0  # seconds any one measurement may take before the run gives up
LENGTH = struct.Struct(">I")
MB = 1e6
GOAL_ROUND_TRIP = 2.0  # goal: time per round trip at most 2 x the floor's (>= 50% of its rate)
GOAL_STREAM = 100.0  # goal: a streamed answer at 100 MB/s of payload or more
BUILD_BATCH = 250_000  # atoms per add_atoms call when building a repository
FIRST_CHUNK_SIZE = 10  # item 4: STREAM chunk_size (max_tokens_per_chunk 500)
FIRST_CHUNK_PAUSE = 0.2  # item 4: seconds between requests (the server finishes cancelling)

# Item 4's cold baseline, in a new interpreter: the first chunk of repo.stream, in seconds.
COLD_CODE = """
import sys, time
from contextfs import Repository

repo = Repository.open(sys.argv[1])
start = time.perf_counter()
chunks = repo.stream(chunk_size=int(sys.argv[2]), max_tokens_per_chunk=500)
next(chunks)
print(time.perf_counter() - start, flush=True)
chunks.close()
repo.close()
"""

# The floor, in a child interpreter: 4-byte big-endian length + payload frames.
# Payload byte 0 says what to do: b"S" + sizes (4 bytes each): send frames of those
# sizes, then an empty frame; b"R" + size: answer with a payload of that size;
# anything else: echo the frame.
FLOOR_CODE = """
import asyncio, signal, struct

LENGTH = struct.Struct(">I")
BLOB = memoryview(bytes(range(256)) * 65536)

async def handle(reader, writer):
    try:
        while True:
            head = await reader.readexactly(4)
            payload = await reader.readexactly(LENGTH.unpack(head)[0])
            kind = payload[:1]
            if kind == b"S":
                for (size,) in struct.iter_unpack(">I", payload[1:]):
                    writer.write(LENGTH.pack(size) + BLOB[:size])
                    await writer.drain()
                writer.write(LENGTH.pack(0))
            elif kind == b"R":
                size = LENGTH.unpack_from(payload, 1)[0]
                writer.write(LENGTH.pack(size) + BLOB[:size])
            else:
                writer.write(head + payload)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()

asyncio.run(main())
"""


@dataclass(frozen=True)
class Plan:
    """How much to measure."""

    memories: int = 100_000
    round_trips: int = 5_000  # per configuration and round (PING and its floor)
    queries: int = 800  # per configuration and round (QUERY and its floor)
    rounds: int = 3  # interleaved rounds of item 1; medians reported
    stream_rounds: int = 3  # rounds of item 2's streams (one read per shape and round)
    expand_runs: int = 21
    stall: float = 2.0  # seconds a slow reader reads nothing
    first_chunk_atoms: int = 1_000_000  # item 4's repository (0: item 4 skipped)
    first_chunk_runs: int = 21  # fresh STREAMs timed to their first chunk, per repository


# -- the child processes --------------------------------------------------------------------


class Child:
    """A child interpreter running ``code`` that prints its port on its first line."""

    def __init__(self, name: str, code: str, args: Sequence[str], log: Path) -> None:
        self.name = name
        self.log = log
        with open(log, "wb") as errors:
            self.process = subprocess.Popen(
                [sys.executable, "-c", code, *args],
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.process.kill()
            raise RuntimeError(f"the {name} did not start:\n{self.errors()}")
        self.port = int(line)

    def status(self, key: str) -> int:
        """A ``kB`` figure (or a count) from ``/proc/PID/status``, in bytes for kB."""
        with open(f"/proc/{self.process.pid}/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    parts = line.split()
                    return int(parts[1]) * (1024 if parts[-1] == "kB" else 1)
        raise KeyError(key)

    def rss(self) -> int:
        """Resident memory now, in bytes."""
        return self.status("VmRSS")

    def cpu(self) -> float:
        """CPU seconds (user + system) the child has used so far."""
        with open(f"/proc/{self.process.pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def fds(self) -> int:
        """Open file descriptors."""
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def errors(self) -> str:
        """What the child wrote to stderr."""
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, grace: float = 20.0) -> float | None:
        """SIGTERM, then wait; the seconds it took, or None if it had to be killed."""
        start = time.perf_counter()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None
        return time.perf_counter() - start


# -- the floor's client -------------------------------------------------------------------


class FloorClient:
    """A plain client of the floor server: one request, then its answer, in turn."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> FloorClient:
        """Open a connection to the floor."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def call(self, frame: bytes) -> int:
        """Send one whole frame, read one answer; returns the answer's payload size."""
        self.writer.write(frame)
        await self.writer.drain()
        size = LENGTH.unpack(await self.reader.readexactly(4))[0]
        await self.reader.readexactly(size)
        return size

    async def stream(self, frame: bytes) -> tuple[int, int]:
        """Send a stream request; read frames to the empty one. Returns (frames, bytes)."""
        self.writer.write(frame)
        await self.writer.drain()
        frames = total = 0
        while True:
            size = LENGTH.unpack(await self.reader.readexactly(4))[0]
            if not size:
                return frames, total
            await self.reader.readexactly(size)
            frames += 1
            total += 4 + size

    async def aclose(self) -> None:
        """Close the connection."""
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


class FloorMux:
    """Many requests in flight on one floor connection: FIFO answers, one reader task."""

    def __init__(self, client: FloorClient) -> None:
        self.client = client
        self.waiting: deque[asyncio.Future[int]] = deque()
        self.reader_task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        reader = self.client.reader
        while True:
            size = LENGTH.unpack(await reader.readexactly(4))[0]
            await reader.readexactly(size)
            self.waiting.popleft().set_result(size)

    async def call(self, frame: bytes) -> int:
        """Send one frame and wait for its answer."""
        answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.waiting.append(answer)
        self.client.writer.write(frame)
        await self.client.writer.drain()
        return await answer

    async def aclose(self) -> None:
        """Stop reading and close the connection."""
        self.reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, asyncio.IncompleteReadError):
            await self.reader_task
        await self.client.aclose()


def floor_frame(payload: bytes) -> bytes:
    """A floor frame: the 4-byte length, then the payload."""
    return LENGTH.pack(len(payload)) + payload


def echo_frame(size: int) -> bytes:
    """A floor frame the floor echoes, with a payload of ``size`` bytes."""
    return floor_frame(b"E" * size)


def reply_frame(request: int, reply: int) -> bytes:
    """A floor frame of ``request`` payload bytes asking for ``reply`` bytes back."""
    head = b"R" + LENGTH.pack(reply)
    return floor_frame(head + b"r" * max(0, request - len(head)))


def stream_frame(sizes: Sequence[int]) -> bytes:
    """A floor frame asking for frames with payloads of ``sizes`` bytes."""
    return floor_frame(b"S" + b"".join(LENGTH.pack(size) for size in sizes))


# -- measuring helpers ----------------------------------------------------------------------


async def repeat(call: Callable[[], Awaitable[object]], count: int) -> None:
    """Await ``call()`` ``count`` times in turn."""
    for _ in range(count):
        await call()


async def spread(calls: Sequence[Callable[[], Awaitable[object]]], each: int) -> float:
    """Run ``each`` calls in turn on every one of ``calls`` at once; the wall time."""
    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(repeat(call, each) for call in calls)), LIMIT)
    return time.perf_counter() - start


def rate(count: int, seconds: float, unit: str = "RT") -> str:
    """Throughput and time per item."""
    return f"{count / seconds:,.0f} {unit}/s ({fmt_seconds(seconds / count)}/{unit})"


def cell(times: Sequence[float]) -> str:
    """``median (p95)``, or ``median of N`` when there are few runs."""
    median = fmt_seconds(statistics.median(times))
    if len(times) < 10:
        return f"{median} (median of {len(times)})"
    return f"{median} (p95 {fmt_seconds(percentile(times, 0.95))})"


def summary(log: str) -> str:
    """A server log in one line: its first line, and its last if there are more."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    if len(lines) <= 1:
        return " ".join(lines)[:300]
    return f"{lines[0][:200]} … {lines[-1][:200]} ({len(lines)} lines)"


def verdict(met: bool) -> str:
    """A goal's outcome."""
    return "met" if met else "**missed**"


def frame_size(message: Message) -> int:
    """Bytes of ``message`` as one ContextFS frame (14-byte header + MessagePack)."""
    return HEADER_SIZE + len(encode_payload(message))


def steal_seconds() -> float:
    """CPU time the hypervisor gave to others so far (all cores; 0 on bare metal)."""
    try:
        with open("/proc/stat") as handle:
            fields = handle.readline().split()
    except OSError:
        return 0.0
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def measured_version() -> str:
    """The ContextFS commit measured, and whether its sources differ from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "../src"],
            cwd=HERE,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown (no git)"
    if not commit:
        return "unknown (not a git checkout)"
    return f"commit {commit}" + (" with uncommitted changes under src/" if dirty else "")


@dataclass
class Bench:
    """What every item needs: the plan, the report, the processes, the repository."""

    plan: Plan
    report: Report
    server: Child
    floor: Child
    repo: Repository
    url: str
    memory: list[tuple[str, int, int]] = field(default_factory=list)  # (when, VmRSS, fds)
    problems: list[str] = field(default_factory=list)
    goals: list[str] = field(default_factory=list)  # the verdicts, for the section "Goals"

    async def note_memory(self, when: str) -> None:
        """Record the server's resident memory and open descriptors (once closes settle)."""
        await asyncio.sleep(0.5)
        self.memory.append((when, self.server.rss(), self.server.fds()))

    async def clients(self, count: int) -> list[AsyncClient]:
        """``count`` ContextFS clients, each on its own connection."""
        return [await AsyncClient.connect(self.url) for _ in range(count)]

    async def floors(self, count: int) -> list[FloorClient]:
        """``count`` floor clients, each on its own connection."""
        return [await FloorClient.connect(self.floor.port) for _ in range(count)]


async def close_all(clients: Sequence[AsyncClient | FloorClient | FloorMux]) -> None:
    """Close every client."""
    await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)


# -- 1. round trips --------------------------------------------------------------------------


async def hung_pings(url: str) -> tuple[int, int, list[str]]:
    """16 PINGs at once on one AsyncClient: (answered, still waiting after HANG s, errors)."""
    client = await AsyncClient.connect(url)
    try:
        jobs = [asyncio.create_task(client.ping()) for _ in range(CLIENTS)]
        done, pending = await asyncio.wait(jobs, timeout=HANG)
        for job in pending:
            job.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        errors = [repr(job.exception()) for job in done if job.exception() is not None]
        return len(done) - len(errors), len(pending), errors
    finally:
        await client.aclose()


async def bench_round_trips(bench: Bench) -> None:
    """Item 1: PING and QUERY round trips against the floor, interleaved rounds."""
    plan, report = bench.plan, bench.report
    ping_frame = encode_frame(MessageType.PING, 0, encode_payload(Ping(nonce=1)))
    ping_size = len(ping_frame)
    floor_ping = echo_frame(ping_size)

    progress("1. connecting 16 + 1 ContextFS clients and 16 + 1 floor clients")
    ours = await bench.clients(CLIENTS)
    shared = await AsyncClient.connect(bench.url)
    floors = await bench.floors(CLIENTS)
    mux = FloorMux(await FloorClient.connect(bench.floor.port))

    # The QUERY's frames, as sent and as answered, size the floor's frames.
    hits = await ours[0].query(RARE)
    query_size = frame_size(Query(query=RARE))
    answer_size = frame_size(QueryResponse(hits=hits))
    floor_query = reply_frame(query_size, answer_size)
    direct_hits = bench.repo.search(RARE)
    if [h.atom.content_hash for h in direct_hits] != [h.atom.id for h in hits]:
        bench.problems.append("QUERY over the wire and repo.search returned different hits")
    matches = len(bench.repo.search(RARE, limit=plan.memories))

    progress(f"1. 16 PINGs at once on one AsyncClient (waiting at most {HANG:.0f} s)")
    answered, hung, errors = await hung_pings(bench.url)
    pings_multiplex = hung == 0 and not errors
    if not pings_multiplex:
        bench.problems.append(
            f"16 PINGs in flight on one AsyncClient: {answered} answered, {hung} still waiting "
            f"after {HANG:.0f} s" + (f", errors {errors[:2]}" if errors else "")
        )

    each = max(1, plan.round_trips // CLIENTS)
    qeach = max(1, plan.queries // CLIENTS)
    spans: dict[str, list[float]] = {}
    cpu: dict[str, list[tuple[float, float]]] = {}  # (server, client) CPU seconds per run

    async def record(name: str, run: Awaitable[float]) -> None:
        # The CPU of the server that answers: ContextFS's, or the floor's.
        child = bench.floor if name.startswith("floor") else bench.server
        server_cpu, client_cpu = child.cpu(), time.process_time()
        spans.setdefault(name, []).append(await run)
        used = (child.cpu() - server_cpu, time.process_time() - client_cpu)
        cpu.setdefault(name, []).append(used)

    for number in range(plan.rounds):
        progress(f"1. round trips, round {number + 1} of {plan.rounds}")
        await record("ping/1", spread([ours[0].ping], plan.round_trips))
        await record("floor-ping/1", spread([lambda: floors[0].call(floor_ping)], plan.round_trips))
        await record("ping/16", spread([c.ping for c in ours], each))
        await record(
            "floor-ping/16",
            spread([lambda f=f: f.call(floor_ping) for f in floors], each),
        )
        if pings_multiplex:
            await record("ping/one", spread([shared.ping] * CLIENTS, each))
        await record("floor-ping/one", spread([lambda: mux.call(floor_ping)] * CLIENTS, each))

        await record("query/1", spread([lambda: ours[0].query(RARE)], plan.queries))
        await record("floor-query/1", spread([lambda: floors[0].call(floor_query)], plan.queries))
        start = time.perf_counter()
        for _ in range(plan.queries):
            bench.repo.search(RARE)
        spans.setdefault("direct-query", []).append(time.perf_counter() - start)
        await record(
            "query/16",
            spread([lambda c=c: c.query(RARE) for c in ours], qeach),
        )
        await record(
            "floor-query/16",
            spread([lambda f=f: f.call(floor_query) for f in floors], qeach),
        )
        await record("query/one", spread([lambda: shared.query(RARE)] * CLIENTS, qeach))
        await record("floor-query/one", spread([lambda: mux.call(floor_query)] * CLIENTS, qeach))
    await close_all([*ours, shared, *floors, mux])
    await bench.note_memory("after the round trips")

    counts = {"1": plan.round_trips, "16": each * CLIENTS, "one": each * CLIENTS}
    qcounts = {"1": plan.queries, "16": qeach * CLIENTS, "one": qeach * CLIENTS}

    def per(name: str, count: int) -> float:
        return statistics.median(spans[name]) / count

    def show(name: str, count: int) -> str:
        return rate(count, statistics.median(spans[name]))

    def busy(name: str, count: int) -> str:
        server = statistics.median(c[0] for c in cpu[name]) / count
        client = statistics.median(c[1] for c in cpu[name]) / count
        return f"; CPU per RT: server {fmt_seconds(server)}, clients {fmt_seconds(client)}"

    shapes = {
        "1": "1 client, one request at a time",
        "16": f"{CLIENTS} clients at once, a connection each",
        "one": f"{CLIENTS} requests in flight on one connection ({CLIENTS} tasks)",
    }
    floor_shapes = {
        "1": "1 connection",
        "16": f"{CLIENTS} connections",
        "one": f"{CLIENTS} tasks on one connection, FIFO answers",
    }
    ratios: dict[str, float] = {}  # ContextFS / floor, time per round trip
    for key, shape in shapes.items():
        count = counts[key]
        floor = (
            f"floor, echo of a {ping_size}-byte payload, {floor_shapes[key]}: "
            f"{show(f'floor-ping/{key}', count)}{busy(f'floor-ping/{key}', count)}"
        )
        label = f"1. PING round trip, {shape} ({count:,} in all)"
        if key == "one" and not pings_multiplex:
            report.add(
                Row(
                    label,
                    f"**hangs**: {answered} of {CLIENTS} PONGs came back, {hung} callers still "
                    f"waiting after {HANG:.0f} s (client bug, see notes)",
                    floor,
                    None,
                    f"≤ {GOAL_ROUND_TRIP:g}: {verdict(False)}",
                )
            )
            ratios[f"PING, {shape}"] = float("inf")
            continue
        ratio = per(f"ping/{key}", count) / per(f"floor-ping/{key}", count)
        ratios[f"PING, {shape}"] = ratio
        report.add(
            Row(
                label,
                show(f"ping/{key}", count) + busy(f"ping/{key}", count),
                floor,
                ratio,
                f"≤ {GOAL_ROUND_TRIP:g}: {verdict(ratio <= GOAL_ROUND_TRIP)}",
            )
        )
    for key, shape in shapes.items():
        count = qcounts[key]
        ratio = per(f"query/{key}", count) / per(f"floor-query/{key}", count)
        ratios[f"QUERY, {shape}"] = ratio
        report.add(
            Row(
                f"1. QUERY {RARE!r} (limit 10), {shape} ({count:,} in all)",
                show(f"query/{key}", count) + busy(f"query/{key}", count),
                f"floor, {query_size}-byte request, {answer_size:,}-byte answer, "
                f"{floor_shapes[key]}: {show(f'floor-query/{key}', count)}"
                f"{busy(f'floor-query/{key}', count)}",
                ratio,
                f"≤ {GOAL_ROUND_TRIP:g}: {verdict(ratio <= GOAL_ROUND_TRIP)}",
            )
        )
        if key == "1":
            report.add(
                Row(
                    "1. same, against repo.search in this process (no wire: what the protocol "
                    "adds)",
                    show("query/1", count),
                    f"repo.search({RARE!r}, limit=10): {show('direct-query', count)}",
                    per("query/1", count) / per("direct-query", count),
                )
            )
    pings = {name: r for name, r in ratios.items() if name.startswith("PING")}
    queries = {name: r for name, r in ratios.items() if name.startswith("QUERY")}
    bench.goals.append(
        f"PING round trips at 50% or more of the floor's rate (time per round trip ≤ "
        f"{GOAL_ROUND_TRIP:g} × the floor's): "
        f"{verdict(all(r <= GOAL_ROUND_TRIP for r in pings.values()))} ("
        + "; ".join(
            f"{name[6:]}: {verdict(r <= GOAL_ROUND_TRIP)}, × {r:.2f}" for name, r in pings.items()
        )
        + ")."
    )
    bench.goals.append(
        f"QUERY round trips at 50% or more of the floor's rate: "
        f"{verdict(all(r <= GOAL_ROUND_TRIP for r in queries.values()))} ("
        + "; ".join(
            f"{name[7:]}: {verdict(r <= GOAL_ROUND_TRIP)}, × {r:.1f}" for name, r in queries.items()
        )
        + f"). The floor moves the same bytes but searches nothing; the QUERY over the wire "
        f"is × {per('query/1', qcounts['1']) / per('direct-query', qcounts['1']):.2f} the time "
        "of `repo.search` in process."
    )
    report.notes.append(
        f"Round trips: {plan.rounds} interleaved rounds, medians of the rounds reported; a "
        "round runs every configuration once, ContextFS then its floor. Time per round trip "
        "is the wall time over the round trips; with 16 clients, they all start together. "
        f"A PING frame is {ping_size} bytes (14-byte header + MessagePack `{{nonce: 1}}`), "
        "and the PONG too; the server answers it in its read loop. The floor echoes a frame "
        f"whose payload is {ping_size} bytes (so {ping_size + 4} bytes with its length prefix). "
        f"The QUERY is `AsyncClient.query({RARE!r})` (limit 10, mode any): it matches "
        f"{matches} of the {plan.memories:,} memories; its request frame is {query_size} "
        f"bytes and its answer {answer_size:,} bytes (10 hits, each atom in full); the server "
        "runs it in a worker thread (`asyncio.to_thread`). Its floor sends a payload of the "
        "request's frame size and gets back a payload of the answer's frame size. One-connection "
        "floor: a reader task resolves the answers in order (FIFO), the shape of a "
        "multiplexing client; the other floor clients write a frame and read the answer "
        "(`readexactly`). Clients run in this process, servers in child interpreters "
        "(plain asyncio event loops on both sides). CPU per RT: the answering server's user + "
        "system time (`/proc/PID/stat`, 10 ms ticks) and this process's "
        "(`time.process_time`) over a configuration's run, divided by its round trips."
    )


# -- 2. a large streamed answer, and EXPAND -------------------------------------------------


async def read_stream(
    client: AsyncClient, chunk_size: int, tokens: int
) -> tuple[float, list[StreamChunk]]:
    """Read a whole STREAM; returns the seconds it took and the chunks."""
    chunks: list[StreamChunk] = []

    async def read() -> None:
        async for chunk in client.stream(chunk_size=chunk_size, max_tokens_per_chunk=tokens):
            chunks.append(chunk)

    start = time.perf_counter()
    await asyncio.wait_for(read(), LIMIT)
    return time.perf_counter() - start, chunks


def read_direct(repo: Repository, chunk_size: int, tokens: int) -> tuple[float, int, int]:
    """Every chunk of ``repo.stream`` in this process: (seconds, atoms, skipped)."""
    atoms = skipped = 0
    start = time.perf_counter()
    for chunk in repo.stream(chunk_size=chunk_size, max_tokens_per_chunk=tokens):
        atoms += len(chunk.atoms)
        skipped = len(chunk.skipped)
    return time.perf_counter() - start, atoms, skipped


def delivered(chunks: Sequence[StreamChunk]) -> tuple[int, int]:
    """(atoms delivered, atoms skipped as too long for a chunk)."""
    return sum(len(c.atoms) for c in chunks), len(chunks[-1].skipped) if chunks else 0


def handler_head(repo: Repository, request: Stream, count: int) -> list[bytes]:
    """The payloads of the first ``count`` messages the server's own handler produces."""
    messages = handlers.stream(repo, request)
    try:
        return [encode_payload(m) for m in itertools.islice(messages, count)]
    finally:
        messages.close()  # type: ignore[attr-defined]


HEAD_CHECKED = 20  # chunks of each STREAM compared byte for byte with the server's handler


async def bench_stream(bench: Bench) -> int:
    """Item 2: STREAM against the floor and repo.stream, then EXPAND against repo.context.

    Returns the bytes of the STREAM answer with the default chunking (for item 3).
    """
    plan, report, repo = bench.plan, bench.report, bench.repo
    client = await AsyncClient.connect(bench.url)
    floor = await FloorClient.connect(bench.floor.port)
    shapes = [(10, 500), (100, 5_000)]  # (chunk_size, max_tokens_per_chunk)
    spans: dict[str, list[float]] = {}
    facts: dict[int, dict[str, Any]] = {
        chunk_size: {"tokens": tokens, "reads": [], "cpu": [], "outcomes": set()}
        for chunk_size, tokens in shapes
    }
    for number in range(plan.stream_rounds):
        for chunk_size, tokens in shapes:
            progress(
                f"2. streams, round {number + 1} of {plan.stream_rounds}: chunk_size "
                f"{chunk_size}, over the wire, the floor, then repo.stream"
            )
            fact = facts[chunk_size]
            server_cpu, client_cpu = bench.server.cpu(), time.process_time()
            seconds, chunks = await read_stream(client, chunk_size, tokens)
            fact["cpu"].append((bench.server.cpu() - server_cpu, time.process_time() - client_cpu))
            spans.setdefault(f"stream/{chunk_size}", []).append(seconds)
            fact["reads"].append(delivered(chunks))
            if number == 0:
                # The frames as sent: each message re-encoded (msgspec's encoding is
                # deterministic), the first ones checked against the server's handler.
                messages: list[Message] = [*chunks, StreamEnd(chunks=len(chunks))]
                payloads = [len(encode_payload(m)) for m in messages]
                sizes = [HEADER_SIZE + n for n in payloads]
                request = Stream(chunk_size=chunk_size, max_tokens_per_chunk=tokens)
                head = [encode_payload(c) for c in chunks[:HEAD_CHECKED]]
                if head != handler_head(repo, request, len(head)):
                    bench.problems.append(
                        f"STREAM chunk_size {chunk_size}: the first {len(head)} chunks over "
                        "the wire differ from the server's handler run in this process"
                    )
                fact.update(
                    frames=len(sizes),
                    bytes=sum(sizes),
                    payload=sum(payloads),
                    text=sum(len(a.content.encode()) for c in chunks for a in c.atoms),
                    request=stream_frame(sizes),
                )
            start = time.perf_counter()
            frames, total = await asyncio.wait_for(floor.stream(fact["request"]), LIMIT)
            spans.setdefault(f"floor/{chunk_size}", []).append(time.perf_counter() - start)
            assert frames == fact["frames"], (frames, fact["frames"])
            fact["floor_bytes"] = total
            seconds, atoms, skipped = read_direct(repo, chunk_size, tokens)
            spans.setdefault(f"direct/{chunk_size}", []).append(seconds)
            fact["outcomes"].add((atoms, skipped))
    await bench.note_memory("after the streams")
    for chunk_size, fact in facts.items():
        outcomes = fact["outcomes"]
        if len(outcomes) != 1 or sum(next(iter(outcomes))) != plan.memories:
            bench.problems.append(
                f"repo.stream chunk_size {chunk_size}: (atoms, skipped) {sorted(outcomes)} in "
                f"{plan.stream_rounds} reads, {plan.memories:,} memories in the commit"
            )
        expected = max(outcomes)
        fact["atoms"], fact["skipped"] = expected
        fact["short"] = [read for read in fact["reads"] if read != expected]
        if fact["short"]:
            bench.problems.append(
                f"STREAM chunk_size {chunk_size}: {len(fact['short'])} of {plan.stream_rounds} "
                f"reads over the wire delivered (atoms, skipped) "
                f"{', '.join(map(str, fact['short']))}, not {expected}"
            )

    stream_rates: list[str] = []
    for chunk_size, tokens in shapes:
        fact = facts[chunk_size]
        ours = statistics.median(spans[f"stream/{chunk_size}"])
        floor_time = statistics.median(spans[f"floor/{chunk_size}"])
        direct = statistics.median(spans[f"direct/{chunk_size}"])
        mbs = fact["payload"] / ours / MB
        ceiling = fact["payload"] / direct / MB
        stream_rates.append(
            f"chunk_size {chunk_size}: {mbs:.2f} MB/s, {fact['atoms'] / ours:,.0f} atoms/s; "
            f"`repo.stream` in process yields chunks at {fact['atoms'] / direct:,.0f} "
            f"atoms/s, which as payload would be {ceiling:.2f} MB/s"
        )
        report.add(
            Row(
                f"2. STREAM of all {plan.memories:,} memories, chunk_size {chunk_size}, "
                f"max_tokens_per_chunk {tokens:,}: {fact['frames']:,} frames, "
                f"{fact['payload'] / MB:.2f} MB of payload ({fact['bytes'] / MB:.2f} MB with "
                f"headers; {fact['text'] / MB:.2f} MB of memory text)",
                f"{fmt_seconds(ours)}: {mbs:.2f} MB/s of payload, "
                f"{fact['atoms'] / ours:,.0f} atoms/s, {fact['text'] / ours / MB:.2f} MB/s of "
                f"text; CPU per run: server "
                f"{fmt_seconds(statistics.median(c[0] for c in fact['cpu']))}, client "
                f"{fmt_seconds(statistics.median(c[1] for c in fact['cpu']))}"
                + (
                    f" (**{len(fact['short'])} of {plan.stream_rounds} reads incomplete**; "
                    "see the problems below)"
                    if fact["short"]
                    else ""
                ),
                f"floor, the same frame sizes streamed: {fmt_seconds(floor_time)}, "
                f"{fact['floor_bytes'] / floor_time / MB:,.0f} MB/s",
                ours / floor_time,
                f"≥ {GOAL_STREAM:g} MB/s of payload: {verdict(mbs >= GOAL_STREAM)}",
            )
        )
        report.add(
            Row(
                f"2. same, against repo.stream in this process (chunk_size {chunk_size})",
                fmt_seconds(ours),
                f"repo.stream, every chunk: {fmt_seconds(direct)}, "
                f"{fact['atoms'] / direct:,.0f} atoms/s",
                ours / direct,
            )
        )
    best = max(facts[c]["payload"] / statistics.median(spans[f"stream/{c}"]) for c, _ in shapes)
    bench.goals.append(
        f"A streamed answer at {GOAL_STREAM:g} MB/s of payload or more ({plan.memories:,} "
        f"memories): {verdict(best / MB >= GOAL_STREAM)} (" + "; ".join(stream_rates) + ")."
    )

    progress(f"2. EXPAND with a budget of {EXPAND_BUDGET:,} tokens, {plan.expand_runs} runs")
    answer = await client.expand(budget=EXPAND_BUDGET)
    prompt = repo.context(budget=EXPAND_BUDGET)
    if answer.text != prompt.text:
        bench.problems.append("EXPAND over the wire and repo.context gave different prompts")
    wire_times: list[float] = []
    direct_times: list[float] = []
    for _ in range(plan.expand_runs):
        start = time.perf_counter()
        await asyncio.wait_for(client.expand(budget=EXPAND_BUDGET), LIMIT)
        wire_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        repo.context(budget=EXPAND_BUDGET)
        direct_times.append(time.perf_counter() - start)
    window = client.welcome.window if client.welcome is not None else 0
    await close_all([client, floor])
    med = statistics.median
    report.add(
        Row(
            f"2. EXPAND, budget {EXPAND_BUDGET:,} ({len(answer.atoms)} atoms, "
            f"{answer.total_tokens:,} tokens; answer frame {fmt_bytes(frame_size(answer))})",
            cell(wire_times),
            f"repo.context(budget={EXPAND_BUDGET:,}) in this process: {cell(direct_times)}",
            med(wire_times) / med(direct_times),
        )
    )
    report.notes.append(
        "Streams: `AsyncClient.stream(chunk_size=..., max_tokens_per_chunk=...)` read to the "
        f"end on one connection, with the window the server's WELCOME gives "
        f"({fmt_bytes(window)}; the client grants credit for each chunk it consumes). "
        "Payload: the MessagePack payloads of every STREAM_CHUNK and the STREAM_END as "
        f"sent; with headers, {HEADER_SIZE} bytes more per frame. The sizes come from the "
        "first read over the wire, each message re-encoded (msgspec encodes a message the "
        f"same way every time); the first {HEAD_CHECKED} chunks of each shape are checked "
        "byte for byte against the server's own handler (`contextfs.server.handlers.stream`) "
        "run in this process. The client's WINDOW frames are not counted. Atoms whose line "
        "alone exceeds max_tokens_per_chunk are skipped by `repo.stream` (listed in the "
        "final chunk): "
        + ", ".join(f"{facts[c]['skipped']} at chunk_size {c}" for c, _ in shapes)
        + f"; delivered plus skipped equals the {plan.memories:,} memories (checked), and "
        "every read over the wire delivers what `repo.stream` does (checked). The floor "
        "streams frames whose payloads are as long as the ContextFS frames (so 4 bytes more "
        "per frame), as fast as the socket takes them (`drain` after each), with no flow "
        f"control. {plan.stream_rounds} round(s), each one read of each shape over the wire "
        "(the first read of the run is also the server's first STREAM: no separate warm-up), "
        "then the floor, then `repo.stream` in this process (a fresh iterator each time); "
        "medians. MB/s is 10^6 bytes a second."
    )
    report.notes.append(
        f"EXPAND: `AsyncClient.expand(budget={EXPAND_BUDGET})` (format lines, no query) "
        f"against `repo.context(budget={EXPAND_BUDGET})` on the `Repository` that built the "
        f"store, in this process, {plan.expand_runs} interleaved runs after one warm-up "
        "each; both prompts "
        + ("are identical (checked)." if answer.text == prompt.text else "**differ**.")
    )
    return int(facts[10]["bytes"])


# -- 3. a slow reader --------------------------------------------------------------------------


async def ping_for(client: AsyncClient, seconds: float) -> list[float]:
    """PING in turn for ``seconds``; the time each PONG came back."""
    stamps: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        await asyncio.wait_for(client.ping(), LIMIT)
        stamps.append(time.perf_counter())
    return stamps


async def sample_rss(child: Child, seconds: float) -> int:
    """The server's largest VmRSS over ``seconds``, sampled every 50 ms."""
    highest = child.rss()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        await asyncio.sleep(0.05)
        highest = max(highest, child.rss())
    return highest


def raw_stream_socket(port: int) -> socket.socket:
    """A socket that said HELLO, got WELCOME and asked for a STREAM; it then reads nothing."""
    conn = Connection(Role.CLIENT)
    sock = socket.create_connection(("127.0.0.1", port))
    conn.send(0, Hello(versions=[1], client="bench-slow-reader"))
    sock.sendall(conn.data_to_send())
    welcomed = False
    while not welcomed:
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("the server closed a slow reader's connection in the handshake")
        conn.receive_data(data)
        while (event := conn.next_event()) is not None:
            if isinstance(event, Received) and isinstance(event.message, Welcome):
                welcomed = True
            elif isinstance(event, Received):
                raise RuntimeError(f"handshake answered with {event.message!r}")
    conn.send(conn.next_stream_id(), Stream(), end=True)
    sock.sendall(conn.data_to_send())
    sock.setblocking(False)
    return sock


def drain_socket(sock: socket.socket) -> int:
    """Read whatever the socket holds now, without waiting; the number of bytes."""
    total = 0
    with contextlib.suppress(BlockingIOError):
        while data := sock.recv(1 << 20):
            total += len(data)
    return total


@dataclass
class Stall:
    """One slow-reader period: pings on another connection and the server's memory."""

    name: str
    label: str
    readers: int
    stamps: list[float] = field(default_factory=list)
    started: float = 0.0
    rss_before: int = 0
    rss_peak: int = 0
    rss_after: int = 0
    sent: int | None = None  # bytes the server sent to raw slow readers during the stall
    cpu: float = 0.0  # CPU seconds the server used during the stall
    extra: str = ""


async def read_slowly(client: AsyncClient, pause: float, threshold: float) -> tuple[int, int, bool]:
    """Read a STREAM of the atoms above ``threshold``, pausing after each chunk.

    Returns (chunks, atoms, whether the final chunk arrived).
    """
    chunks = atoms = 0
    final = False
    async for chunk in client.stream(relevance_threshold=threshold):
        chunks += 1
        atoms += len(chunk.atoms)
        final = final or chunk.is_final
        if pause:
            await asyncio.sleep(pause)
    return chunks, atoms, final


async def bench_slow_reader(bench: Bench, answer_bytes: int) -> None:
    """Item 3: a STREAM nobody reads, while another connection PINGs; the server's memory."""
    plan, report, server = bench.plan, bench.report, bench.server
    pinger = await AsyncClient.connect(bench.url)
    quiet: list[float] = []  # seconds per PING in each period without a stall
    quiet_cpu: list[float] = []  # the server's CPU share in each of those periods
    sockets: list[socket.socket] = []

    async def calm() -> None:
        progress(f"3. PINGs for {plan.stall:g} s with no stall")
        used, started = server.cpu(), time.perf_counter()
        stamps = await ping_for(pinger, plan.stall)
        quiet.append((stamps[-1] - started) / len(stamps))
        quiet_cpu.append((server.cpu() - used) / (stamps[-1] - started))

    async def stalled(stall: Stall, open_stall: Callable[[], Awaitable[object]]) -> None:
        progress(f"3{stall.name}. {stall.label}, for {plan.stall:g} s")
        stall.rss_before = server.rss()
        stall.started = time.perf_counter()
        used = server.cpu()
        await open_stall()
        stall.stamps, stall.rss_peak = await asyncio.gather(
            ping_for(pinger, plan.stall), sample_rss(server, plan.stall)
        )
        stall.cpu = server.cpu() - used

    async def open_raw(count: int) -> None:
        for _ in range(count):
            sockets.append(raw_stream_socket(server.port))

    async def close_raw(stall: Stall) -> None:
        await asyncio.sleep(0.2)  # let the last frames in flight land
        stall.sent = sum(drain_socket(s) for s in sockets)
        for sock in sockets:
            sock.close()
        sockets.clear()
        await asyncio.sleep(0.5)
        stall.rss_after = server.rss()

    stalls = [
        Stall("a", "an AsyncClient STREAM, one chunk read, then nothing", 1),
        Stall("b", "a raw socket that asked for a STREAM and never calls recv", 1),
        Stall("c", f"{CLIENTS} raw sockets, each asked for a STREAM, none calls recv", CLIENTS),
    ]
    await calm()

    # a) AsyncClient: the first chunk is read, then nothing; then the rest.
    reader = await AsyncClient.connect(bench.url)
    iterator = reader.stream()
    first: list[StreamChunk] = []

    async def open_a() -> None:
        first.append(await asyncio.wait_for(iterator.__anext__(), LIMIT))

    await stalled(stalls[0], open_a)
    chunks, atoms, skipped, final = 1, len(first[0].atoms), 0, first[0].is_final
    async for chunk in iterator:
        chunks += 1
        atoms += len(chunk.atoms)
        skipped = len(chunk.skipped)
        final = final or chunk.is_final
    stalls[0].rss_after = server.rss()
    stalls[0].extra = f"then read on: {chunks:,} chunks, {atoms:,} atoms + {skipped} skipped" + (
        "" if final else ", **no final chunk**"
    )
    if atoms + skipped != plan.memories or not final:
        bench.problems.append(
            f"3a: the STREAM read on after the stall delivered {atoms:,} atoms + {skipped} "
            f"skipped of {plan.memories:,}" + ("" if final else ", without its final chunk")
        )
    await reader.aclose()
    await calm()

    # b) one raw socket that never calls recv; c) 16 of them.
    await stalled(stalls[1], lambda: open_raw(1))
    await close_raw(stalls[1])
    await calm()
    await stalled(stalls[2], lambda: open_raw(CLIENTS))
    await close_raw(stalls[2])
    await calm()

    # d) correctness: a short STREAM (it fits in the window) read with pauses.
    progress(f"3d. a STREAM of the atoms above relevance {SHORT_THRESHOLD}, read with pauses")
    probe = await AsyncClient.connect(bench.url)
    brisk = await asyncio.wait_for(read_slowly(probe, 0.0, SHORT_THRESHOLD), LIMIT)
    slow = await asyncio.wait_for(read_slowly(probe, SLOW_PAUSE, SHORT_THRESHOLD), LIMIT)
    await close_all([probe, pinger])
    await bench.note_memory("after the slow readers")

    baseline = statistics.mean(quiet)
    quiet_cell = ", ".join(f"{1 / q:,.0f}" for q in quiet)
    for number, stall in enumerate(stalls):
        during = (stall.stamps[-1] - stall.started) / len(stall.stamps)
        around = statistics.mean(quiet[number : number + 2])
        tail = [t for t in stall.stamps if t >= stall.started + 0.5]
        tail_rate = (
            f"; after the first 0.5 s {len(tail) / (tail[-1] - stall.started - 0.5):,.0f}/s"
            if len(tail) > 1
            else ""
        )
        report.add(
            Row(
                f"3{stall.name}. PINGs/s on another connection during a {plan.stall:g}-s "
                f"stall: {stall.label}",
                f"{1 / during:,.0f} PINGs/s ({fmt_seconds(during)}/PING{tail_rate}); server "
                f"CPU {stall.cpu / (stall.stamps[-1] - stall.started):.0%} of the stall",
                f"no stall, the periods just before and after: {1 / quiet[number]:,.0f} and "
                f"{1 / quiet[number + 1]:,.0f} PINGs/s",
                during / around,
            )
        )
        whole = answer_bytes * stall.readers
        sent = (
            f"; the server sent {fmt_bytes(stall.sent)} of the {fmt_bytes(whole)} asked for"
            if stall.sent is not None
            else ""
        )
        extra = f"; {stall.extra}" if stall.extra else ""
        report.add(
            Row(
                f"3{stall.name}. server VmRSS: before / highest during the stall / after",
                f"{fmt_bytes(stall.rss_before)} / {fmt_bytes(stall.rss_peak)} / "
                f"{fmt_bytes(stall.rss_after)} (+{fmt_bytes(stall.rss_peak - stall.rss_before)} "
                f"at most{sent}{extra})",
                f"the whole answer{'s' if stall.readers > 1 else ''}: {fmt_bytes(whole)} of frames",
            )
        )
    lost = brisk[:2] != slow[:2] or not slow[2]
    report.add(
        Row(
            f"3d. a STREAM that fits in the window (relevance above {SHORT_THRESHOLD}: "
            f"{brisk[1]:,} atoms, {brisk[0]} chunks), read with a {SLOW_PAUSE * 1e3:.0f}-ms "
            "pause after each chunk",
            f"{slow[0]} chunks, {slow[1]:,} atoms arrived; final chunk "
            + ("seen" if slow[2] else "**never seen**, and no error raised"),
            f"read without pauses: {brisk[0]} chunks, {brisk[1]:,} atoms, final chunk "
            + ("seen" if brisk[2] else "not seen"),
        )
    )
    if lost:
        bench.problems.append(
            f"3d: a STREAM read with a {SLOW_PAUSE * 1e3:.0f}-ms pause per chunk ended silently "
            f"after {slow[0]} of {brisk[0]} chunks ({slow[1]:,} of {brisk[1]:,} atoms)"
        )
    report.notes.append(
        f"Slow reader: one connection PINGs in turn for {plan.stall:g} s with no stall, "
        "then during a stall, and so on: no stall, (a), no stall, (b), no stall, (c), no "
        f"stall (mean of all four: {1 / baseline:,.0f} PINGs/s; each: {quiet_cell}; the "
        f"server's CPU {min(quiet_cpu):.0%} to {max(quiet_cpu):.0%} of those periods); each "
        "stall's ratio is against the mean of the periods just before and after it. PINGs/s "
        "over a stall counts from the moment the stalled STREAM is opened (so it includes "
        "the server producing the first window's worth of chunks). (a) `AsyncClient.stream()` "
        "read for one chunk, then left alone (the client's reader task still takes bytes off "
        "the socket, but grants no credit), then read to the end and checked; (b) a raw "
        "socket that completes HELLO / WELCOME, sends STREAM and then never calls `recv` "
        "(what the kernel buffered is read without waiting after the stall and counted); "
        f"(c) {CLIENTS} such sockets at once. The server's VmRSS is read from "
        "`/proc/PID/status` of its child interpreter every 50 ms during the stall, just "
        "before it, and after (for (a) after the rest is read; for (b) and (c) 0.5 s after "
        "the sockets are closed). (d) reads, on a fresh connection, a STREAM short enough "
        f"that the server sends all of it at once (relevance_threshold {SHORT_THRESHOLD}), "
        f"first straight through, then sleeping {SLOW_PAUSE * 1e3:.0f} ms after each chunk."
    )


# -- 4. the first chunk of a fresh STREAM ---------------------------------------------------


@dataclass
class FirstChunk:
    """Item 4 on one repository: the first chunk of fresh STREAMs, wire and in process."""

    atoms: int  # memories in the repository
    chunk_atoms: int  # atoms in the first chunk
    wire: list[float]  # seconds from sending STREAM to receiving the first chunk
    direct: list[float]  # seconds for repo.stream's first chunk in this process
    cold_wire: float | None = None  # the first STREAM a freshly started server answers
    cold_direct: float | None = None  # the first repo.stream of a freshly opened Repository
    cold_child: float | None = None  # the first repo.stream in a new interpreter


async def wire_first_chunks(url: str, runs: int) -> tuple[list[float], list[list[str]]]:
    """``runs`` fresh STREAMs on one connection, each closed after its first chunk.

    Returns the seconds from sending each STREAM to receiving its first chunk,
    and that chunk's atom ids.
    """
    client = await AsyncClient.connect(url)
    times: list[float] = []
    ids: list[list[str]] = []
    try:
        for _ in range(runs):
            chunks = cast(
                AsyncGenerator[StreamChunk, None],
                client.stream(chunk_size=FIRST_CHUNK_SIZE, max_tokens_per_chunk=500),
            )
            async with contextlib.aclosing(chunks), asyncio.timeout(LIMIT):
                start = time.perf_counter()  # the first step of the iterator sends STREAM
                first = await anext(chunks)
                times.append(time.perf_counter() - start)
            ids.append([str(atom.id) for atom in first.atoms])
            await asyncio.sleep(FIRST_CHUNK_PAUSE)  # the server cancels what it read ahead
    finally:
        await client.aclose()
    return times, ids


def direct_first_chunks(repo: Repository, runs: int) -> tuple[list[float], list[list[str]]]:
    """``runs`` calls of ``repo.stream`` in this process, each closed after its first chunk."""
    times: list[float] = []
    ids: list[list[str]] = []
    for _ in range(runs):
        start = time.perf_counter()
        chunks = repo.stream(chunk_size=FIRST_CHUNK_SIZE, max_tokens_per_chunk=500)
        first = next(chunks)
        times.append(time.perf_counter() - start)
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
        ids.append([atom.content_hash for atom in first.atoms])
    return times, ids


async def measure_first_chunk(
    bench: Bench, url: str, repo: Repository, atoms: int, *, cold: Path | None = None
) -> FirstChunk:
    """Item 4 against the server at ``url`` serving ``repo``: first wire, then in process.

    With ``cold`` (the repository's folder), the server has just started and
    ``repo`` was just opened: the first call of each is reported apart, and so
    is the first chunk in a new interpreter; otherwise the first call is a
    warm-up, not reported.
    """
    runs = bench.plan.first_chunk_runs
    progress(
        f"4. first chunk of {runs} + 1 fresh STREAMs over the wire, {atoms:,} atoms "
        f"({FIRST_CHUNK_PAUSE * 1e3:.0f} ms apart)"
    )
    wire, wire_ids = await wire_first_chunks(url, runs + 1)
    cold_child = None
    if cold is not None:
        progress("4. the first repo.stream chunk in a new interpreter")
        child = subprocess.run(
            [sys.executable, "-c", COLD_CODE, str(cold), str(FIRST_CHUNK_SIZE)],
            capture_output=True,
            text=True,
            timeout=LIMIT,
        )
        try:
            cold_child = float(child.stdout.split()[0])
        except (IndexError, ValueError):
            bench.problems.append(f"4: the cold repo.stream child failed: {child.stderr[-300:]}")
    progress(f"4. first chunk of {runs} + 1 repo.stream calls in this process, {atoms:,} atoms")
    direct, direct_ids = direct_first_chunks(repo, runs + 1)
    if any(ids != direct_ids[0] for ids in wire_ids + direct_ids):
        bench.problems.append(
            f"4: the first chunks at {atoms:,} atoms differ between requests, or between the "
            "wire and repo.stream"
        )
    return FirstChunk(
        atoms=atoms,
        chunk_atoms=len(direct_ids[0]),
        wire=wire[1:],
        direct=direct[1:],
        cold_wire=wire[0] if cold is not None else None,
        cold_direct=direct[0] if cold is not None else None,
        cold_child=cold_child,
    )


def first_chunk_rows(bench: Bench, result: FirstChunk) -> None:
    """Item 4's rows for one repository."""
    med = statistics.median
    bench.report.add(
        Row(
            f"4. first chunk over the network, {result.atoms:,} atoms: STREAM (chunk_size "
            f"{FIRST_CHUNK_SIZE}) sent → first STREAM_CHUNK ({result.chunk_atoms} atoms) "
            f"received; {len(result.wire)} fresh requests on one connection, median (p95)",
            cell(result.wire),
            f"repo.stream(chunk_size={FIRST_CHUNK_SIZE}) first chunk in this process, warm "
            f"Repository: {cell(result.direct)}",
            med(result.wire) / med(result.direct),
        )
    )
    if result.cold_wire is not None and result.cold_direct is not None:
        bench.report.add(
            Row(
                f"4. same, {result.atoms:,} atoms, the first STREAM a freshly started server "
                "answers (cold caches, one request)",
                fmt_seconds(result.cold_wire),
                (
                    f"the first repo.stream in a new interpreter: {fmt_seconds(result.cold_child)}"
                    "; "
                    if result.cold_child is not None
                    else ""
                )
                + "the first repo.stream of a freshly opened Repository in this process: "
                f"{fmt_seconds(result.cold_direct)}",
                result.cold_wire / (result.cold_child or result.cold_direct),
            )
        )


def store_bytes(folder: Path) -> int:
    """Bytes of every file under ``folder``."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def bench_first_chunk_large(bench: Bench, corpus: Corpus, work: Path) -> None:
    """Item 4 at ``plan.first_chunk_atoms``: build, serve in a child, time, clean up."""
    plan = bench.plan
    atoms = plan.first_chunk_atoms
    folder = work / "large"
    progress(f"4. building a repository of {atoms:,} memories (batches of {BUILD_BATCH:,})")
    repo, build = build_repository(corpus, folder, atoms)
    repo.close()
    size = store_bytes(folder)
    progress(f"4. built in {build.seconds:.1f} s ({fmt_bytes(size)}); starting its server")
    server = Child("server", SERVER_CODE, [str(folder)], work / "large-server.log")
    fresh = Repository.open(folder)
    try:
        result = asyncio.run(
            measure_first_chunk(bench, f"ctx://127.0.0.1:{server.port}", fresh, atoms, cold=folder)
        )
    finally:
        stopped = server.stop()
        fresh.close()
    log = server.errors().strip()
    if stopped is None:
        bench.problems.append(f"4: the {atoms:,}-atom server did not exit on SIGTERM (killed)")
    if log:
        bench.problems.append(f"4: the {atoms:,}-atom server logged: {summary(log)}")
    bench.report.add(
        Row(
            f"4. set-up: building the {atoms:,}-atom repository (`Repository.init`, "
            f"{len(build.batches)} × `add_atoms` of up to {BUILD_BATCH:,}, one commit)",
            f"{fmt_seconds(build.seconds)} ({atoms / build.seconds:,.0f} atoms/s); store "
            f"{fmt_bytes(size)}",
            "per add_atoms call: " + ", ".join(f"{s:.1f}" for s in build.batches) + " s; "
            f"commit {fmt_seconds(build.commit)}",
        )
    )
    first_chunk_rows(bench, result)


# -- the run -------------------------------------------------------------------------------------


@dataclass
class Build:
    """How long building a repository took."""

    seconds: float = 0.0  # the whole build: init, atoms, add_atoms, commit
    batches: list[float] = field(default_factory=list)  # each add_atoms call, atoms included
    commit: float = 0.0


def build_repository(corpus: Corpus, folder: Path, count: int) -> tuple[Repository, Build]:
    """``count`` memories, staged ``BUILD_BATCH`` at a time, in one commit in a new repository."""
    rng = random.Random(3)
    build = Build()
    start = time.perf_counter()
    repo = Repository.init(folder)
    for first in range(0, count, BUILD_BATCH):
        size = min(BUILD_BATCH, count - first)
        began = time.perf_counter()
        repo.add_atoms(
            MemoryAtom(
                text,
                T_STRING,
                EPOCH + timedelta(seconds=rng.randrange(YEAR_SECONDS)),
                "bench",
                rng.random(),
            )
            for text in corpus.texts(first, size)
        )
        build.batches.append(time.perf_counter() - began)
        if count > BUILD_BATCH:
            progress(
                f"  staged {first + size:,} of {count:,} memories "
                f"({build.batches[-1]:.1f} s for this batch, {time.perf_counter() - start:.1f} s "
                "so far)"
            )
    began = time.perf_counter()
    repo.commit(f"{count} memories")
    build.commit = time.perf_counter() - began
    build.seconds = time.perf_counter() - start
    return repo, build


def render_section(
    command: str, plan: Plan, corpus: Corpus, bench: Bench, wall: float, measured: str
) -> str:
    """The RESULTS.md section."""
    report = bench.report
    memory = "; ".join(
        f"{when}: {fmt_bytes(rss)}, {fds} descriptors" for when, rss, fds in bench.memory
    )
    found = list(dict.fromkeys(bench.problems))
    problems = (
        "Problems found:" + "".join(f"\n  - {problem}" for problem in found)
        if found
        else "No problems found: every answer checked, no hangs, nothing in the server's log."
    )
    return "\n".join(
        [
            HEADING,
            "",
            "Generated by `benchmarks/wire.py` (this section only; `benchmarks/run.py` keeps "
            "it); see `benchmarks/README.md` for what each figure means. Ratios are ContextFS / "
            "baseline in time (per round trip for rates): below 1 means ContextFS is faster.",
            "",
            f"- Command: `{command}`",
            f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- ContextFS: {measured}",
            f"- Sizes: {plan.memories:,} memories; {plan.round_trips:,} PINGs and "
            f"{plan.queries:,} QUERYs per configuration and round, {plan.rounds} rounds; "
            f"{plan.stream_rounds} round(s) of streams; {plan.expand_runs} EXPANDs; stalls of "
            f"{plan.stall:g} s; first chunks: {plan.first_chunk_runs} requests at "
            f"{plan.memories:,}"
            + (f" and {plan.first_chunk_atoms:,} atoms" if plan.first_chunk_atoms else " atoms")
            + f"; whole run {wall:.0f} s",
            "- Load average (1, 5, 15 min) at start / end: "
            + " / ".join(", ".join(f"{x:.2f}" for x in load) for load in report.load)
            + f"; CPU time stolen by the hypervisor during the run (all cores): "
            f"{report.timings.get('steal', 0.0):.1f} s",
            *(f"- {name}: {value}" for name, value in machine()),
            "",
            "### Figures",
            "",
            markdown_table(report.rows),
            "",
            "### Goals",
            "",
            *(f"- {goal}" for goal in bench.goals),
            "",
            "### Notes",
            "",
            f"- Memories: item i of the {len(corpus):,} paragraphs of `pydoc_data.topics` (as "
            f"in the core benchmarks; suffixed ` (note i)` from i = {len(corpus):,} on), a "
            "`String` atom with relevance uniform in [0, 1) and a time uniform over 2024 "
            f"(random.Random(3)); `Repository.init`, `add_atoms` of up to {BUILD_BATCH:,} "
            "memories at a time, one commit. For items 1 to 3 the full-text index is built "
            "(first `repo.search`) before the server starts; item 4's large repository has no "
            "full-text index (STREAM does not use it).",
            *(f"- {note}" for note in report.notes),
            f"- Server process (VmRSS and open descriptors): {memory}.",
            f"- {problems}",
        ]
    )


async def measure(bench: Bench) -> None:
    """Items 1 to 3, in order, then item 4 on the same server."""
    await bench.note_memory("at start")
    await bench_round_trips(bench)
    answer = await bench_stream(bench)
    await bench_slow_reader(bench, answer)
    result = await measure_first_chunk(bench, bench.url, bench.repo, bench.plan.memories)
    first_chunk_rows(bench, result)
    bench.report.notes.append(
        f"First chunk (item 4): `AsyncClient.stream(chunk_size={FIRST_CHUNK_SIZE}, "
        "max_tokens_per_chunk=500)`, a new STREAM each time on one connection that stays "
        "open; the time runs from the iterator's first step (which sends STREAM) to the "
        "first STREAM_CHUNK it yields; then the iterator is closed (`contextlib.aclosing`: "
        f"the client sends CANCEL) and the next request waits {FIRST_CHUNK_PAUSE * 1e3:.0f} "
        "ms, so the server has stopped what it read ahead. Against it, "
        f"`next(repo.stream(chunk_size={FIRST_CHUNK_SIZE}, max_tokens_per_chunk=500))` in "
        "this process, the generator then closed. The atoms of every first chunk, over the "
        "wire and in process, are checked to be the same. At "
        f"{bench.plan.memories:,} atoms the server is the one items 1 to 3 used (warm) and "
        "one request of each kind is a warm-up, not reported"
        + (
            f"; at {bench.plan.first_chunk_atoms:,} atoms a new server is started on a "
            "repository built for the purpose after the first server stopped, and its first "
            "request, like the first `repo.stream` of a freshly opened `Repository` in this "
            "process, is reported on its own (the OS page cache is warm from the build)."
            if bench.plan.first_chunk_atoms
            else "."
        )
    )


def main(argv: list[str] | None = None) -> int:
    """Measure the four items and write the RESULTS.md section."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="4,000 memories, 1,000 PINGs and 160 QUERYs per configuration, 2 rounds, 1-s "
        "stalls, item 4 at 20,000 atoms",
    )
    parser.add_argument("--memories", type=int, help="memories in the repository (100,000)")
    parser.add_argument("--round-trips", type=int, help="PINGs per configuration (5,000)")
    parser.add_argument("--queries", type=int, help="QUERYs per configuration (800)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (3)")
    parser.add_argument("--stream-rounds", type=int, help="rounds of item 2's streams (3)")
    parser.add_argument("--stall", type=float, help="seconds a slow reader reads nothing (2)")
    parser.add_argument(
        "--first-chunk-atoms",
        type=int,
        help="memories in item 4's separate repository (1,000,000; 0 skips it)",
    )
    parser.add_argument(
        "--first-chunk-runs", type=int, help="fresh STREAMs timed per repository in item 4 (21)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="the report file to update")
    args = parser.parse_args(argv)
    plan = (
        Plan(
            memories=4_000,
            round_trips=1_000,
            queries=160,
            rounds=2,
            stream_rounds=2,
            expand_runs=7,
            stall=1.0,
            first_chunk_atoms=20_000,
            first_chunk_runs=11,
        )
        if args.quick
        else Plan()
    )
    overrides = {
        "memories": args.memories,
        "round_trips": args.round_trips,
        "queries": args.queries,
        "rounds": args.rounds,
        "stream_rounds": args.stream_rounds,
        "stall": args.stall,
        "first_chunk_atoms": args.first_chunk_atoms,
        "first_chunk_runs": args.first_chunk_runs,
    }
    plan = dataclasses.replace(plan, **{k: v for k, v in overrides.items() if v is not None})
    if plan.memories < 100 or plan.round_trips < CLIENTS or plan.queries < CLIENTS:
        parser.error(f"need --memories >= 100, --round-trips and --queries >= {CLIENTS}")
    if plan.rounds < 1 or plan.stream_rounds < 1 or plan.stall < 0.6:
        parser.error("need --rounds >= 1, --stream-rounds >= 1 and --stall >= 0.6")
    if plan.first_chunk_runs < 1 or not (
        plan.first_chunk_atoms == 0 or plan.first_chunk_atoms >= 100
    ):
        parser.error("need --first-chunk-runs >= 1 and --first-chunk-atoms 0 or >= 100")

    corpus = Corpus()
    report = Report()
    started = time.perf_counter()
    report.load.append(os.getloadavg())
    stolen = steal_seconds()
    measured = measured_version()
    progress(
        f"wire benchmarks: {plan.memories:,} memories, {plan.round_trips:,} PINGs and "
        f"{plan.queries:,} QUERYs per configuration, {plan.rounds} rounds, "
        f"{plan.stream_rounds} round(s) of streams; first chunk at {plan.memories:,}"
        + (f" and {plan.first_chunk_atoms:,} atoms" if plan.first_chunk_atoms else " atoms")
    )
    with tempfile.TemporaryDirectory(prefix="contextfs-wire-") as temp:
        work = Path(temp)
        progress(f"building a repository of {plan.memories:,} memories")
        repo, built = build_repository(corpus, work / "repo", plan.memories)
        start = time.perf_counter()
        repo.search(RARE)  # builds the full-text index, once, before the server starts
        indexed = time.perf_counter() - start
        progress(
            f"  built in {built.seconds:.1f} s, indexed in {indexed:.1f} s; starting the servers"
        )
        server = Child("server", SERVER_CODE, [str(work / "repo")], work / "server.log")
        floor: Child | None = None
        bench: Bench | None = None
        try:
            floor = Child("floor", FLOOR_CODE, [], work / "floor.log")
            bench = Bench(plan, report, server, floor, repo, f"ctx://127.0.0.1:{server.port}")
            asyncio.run(measure(bench))
        finally:
            stopped = server.stop()
            if floor is not None:
                floor.stop()
            repo.close()
        log = server.errors().strip()
        if bench is None:
            return 1
        if stopped is None:
            bench.problems.append("the server did not exit within 20 s of SIGTERM (killed)")
        if server.process.returncode not in (0, None):
            bench.problems.append(f"the server exited with status {server.process.returncode}")
        if log:
            bench.problems.append(f"the server logged: {summary(log)}")
        report.notes.append(
            f"Set-up (not measured against anything): building the repository took "
            f"{built.seconds:.1f} s, the full-text index {indexed:.1f} s; the server stopped "
            + (f"{stopped:.2f} s after SIGTERM." if stopped is not None else "only when killed.")
        )
        if plan.first_chunk_atoms:
            bench_first_chunk_large(bench, corpus, work)
    wall = time.perf_counter() - started
    report.load.append(os.getloadavg())
    report.timings["steal"] = steal_seconds() - stolen
    options = ["--quick"] if args.quick else []
    options += [f"--{k.replace('_', '-')} {v}" for k, v in overrides.items() if v is not None]
    command = " ".join([".venv/bin/python benchmarks/wire.py", *options])
    write_section(
        args.output, SECTION, render_section(command, plan, corpus, bench, wall, measured)
    )
    print(markdown_table(report.rows))
    for problem in dict.fromkeys(bench.problems):
        progress(f"problem: {problem}")
    progress(f"done in {wall:.0f} s; wrote the {HEADING[3:]!r} section of {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
