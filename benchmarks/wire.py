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

import asyncio
import contextlib
import itertools
import os
import random
import socket
import statistics
import struct
import sys
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    SERVE_HANDLE_CODE,
    SERVER_CODE,
    Child,
    Corpus,
    Plans,
    Report,
    Rounds,
    Row,
    bullets,
    child_output,
    fmt_bytes,
    fmt_seconds,
    machine_lines,
    markdown_table,
    measured_version,
    progress,
    publish_section,
    rate,
    section_opening,
    string_atoms,
    subsection,
    tree_bytes,
    verdict,
)
from contextfs import Repository
from contextfs.client import AsyncClient
from contextfs.server import handlers
from contextfs.wire import Connection, MessageType, Received, Role
from contextfs.wire.frames import HEADER_SIZE, encode_frame
from contextfs.wire.messages import (
    Hello,
    Message,
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
FLOOR_CODE = (
    """
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
"""
    + SERVE_HANDLE_CODE
)


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


PLANS = Plans(
    script="wire.py",
    full=Plan(),
    quick=Plan(
        memories=4_000,
        round_trips=1_000,
        queries=160,
        rounds=2,
        stream_rounds=2,
        expand_runs=7,
        stall=1.0,
        first_chunk_atoms=20_000,
        first_chunk_runs=11,
    ),
    quick_help="4,000 memories, 1,000 PINGs and 160 QUERYs per configuration, 2 rounds, 1-s "
    "stalls, item 4 at 20,000 atoms",
    options={
        "memories": "memories in the repository (100,000)",
        "round_trips": "PINGs per configuration (5,000)",
        "queries": "QUERYs per configuration (800)",
        "rounds": "interleaved rounds (3)",
        "stream_rounds": "rounds of item 2's streams (3)",
        "stall": "seconds a slow reader reads nothing (2)",
        "first_chunk_atoms": "memories in item 4's separate repository (1,000,000; 0 skips it)",
        "first_chunk_runs": "fresh STREAMs timed per repository in item 4 (21)",
    },
)


def check_plan(plan: Plan) -> str:
    """Why ``plan`` cannot run, or nothing."""
    if plan.memories < 100 or plan.round_trips < CLIENTS or plan.queries < CLIENTS:
        return f"need --memories >= 100, --round-trips and --queries >= {CLIENTS}"
    if plan.rounds < 1 or plan.stream_rounds < 1 or plan.stall < 0.6:
        return "need --rounds >= 1, --stream-rounds >= 1 and --stall >= 0.6"
    if plan.first_chunk_runs < 1 or not (
        plan.first_chunk_atoms == 0 or plan.first_chunk_atoms >= 100
    ):
        return "need --first-chunk-runs >= 1 and --first-chunk-atoms 0 or >= 100"
    return ""


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


async def call_in_turn(call: Callable[[], Awaitable[object]], count: int) -> None:
    """Await ``call()`` ``count`` times in turn."""
    for _ in range(count):
        await call()


async def spread(calls: Sequence[Callable[[], Awaitable[object]]], each: int) -> float:
    """Run ``each`` calls in turn on every one of ``calls`` at once; the wall time."""
    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(call_in_turn(call, each) for call in calls)), LIMIT)
    return time.perf_counter() - start


def cell(rounds: Rounds) -> str:
    """``median (p95)``, or ``median of N`` when there are few runs."""
    return rounds.median_or_count()


def summary(log: str) -> str:
    """A server log in one line: its first line, and its last if there are more."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    if len(lines) <= 1:
        return " ".join(lines)[:300]
    return f"{lines[0][:200]} … {lines[-1][:200]} ({len(lines)} lines)"


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


@dataclass
class Connections:
    """Item 1's clients: 16 ContextFS clients and one shared, 16 floor clients and a mux."""

    ours: list[AsyncClient]
    shared: AsyncClient
    floors: list[FloorClient]
    mux: FloorMux

    @classmethod
    async def open(cls, bench: Bench) -> Connections:
        """Connect every client."""
        progress("1. connecting 16 + 1 ContextFS clients and 16 + 1 floor clients")
        ours = await bench.clients(CLIENTS)
        shared = await AsyncClient.connect(bench.url)
        floors = await bench.floors(CLIENTS)
        mux = FloorMux(await FloorClient.connect(bench.floor.port))
        return cls(ours, shared, floors, mux)

    async def aclose(self) -> None:
        """Close every client."""
        await close_all([*self.ours, self.shared, *self.floors, self.mux])


@dataclass
class RoundTrips:
    """Item 1: the frames' sizes, and per configuration its rounds' wall and CPU times."""

    server: Child
    floor: Child
    ping_size: int
    query_size: int = 0
    answer_size: int = 0
    matches: int = 0
    answered: int = 0
    hung: int = 0
    spans: defaultdict[str, Rounds] = field(default_factory=lambda: defaultdict(Rounds))
    server_cpu: defaultdict[str, Rounds] = field(default_factory=lambda: defaultdict(Rounds))
    client_cpu: defaultdict[str, Rounds] = field(default_factory=lambda: defaultdict(Rounds))
    counts: dict[str, int] = field(default_factory=dict)  # PINGs per configuration, by shape
    qcounts: dict[str, int] = field(default_factory=dict)  # QUERYs likewise

    async def record(self, name: str, run: Callable[[], Awaitable[float]]) -> None:
        """One run of configuration ``name``: its wall time and the CPU each side used."""
        # The CPU of the server that answers: ContextFS's, or the floor's.
        child = self.floor if name.startswith("floor") else self.server
        server_cpu, client_cpu = child.cpu(), time.process_time()
        self.spans[name].add(await run())
        self.server_cpu[name].add(child.cpu() - server_cpu)
        self.client_cpu[name].add(time.process_time() - client_cpu)

    @property
    def pings_multiplex(self) -> bool:
        """Whether 16 PINGs in flight on one AsyncClient all came back."""
        return self.hung == 0 and self.answered == CLIENTS

    def per(self, name: str, count: int) -> float:
        """Median seconds per round trip of configuration ``name``."""
        return self.spans[name].median / count

    def show(self, name: str, count: int) -> str:
        """Configuration ``name``'s median rate."""
        return rate(count, self.spans[name].median, "RT")

    def busy(self, name: str, count: int) -> str:
        """CPU per round trip of the answering server and of the clients."""
        server = self.server_cpu[name].median / count
        client = self.client_cpu[name].median / count
        return f"; CPU per RT: server {fmt_seconds(server)}, clients {fmt_seconds(client)}"


async def size_query(bench: Bench, client: AsyncClient, trips: RoundTrips) -> bytes:
    """Size the QUERY's frames, check its hits against ``repo.search``; the floor's frame."""
    hits = await client.query(RARE)
    trips.query_size = frame_size(Query(query=RARE))
    trips.answer_size = frame_size(QueryResponse(hits=hits))
    direct_hits = bench.repo.search(RARE)
    if [h.atom.content_hash for h in direct_hits] != [h.atom.id for h in hits]:
        bench.problems.append("QUERY over the wire and repo.search returned different hits")
    trips.matches = len(bench.repo.search(RARE, limit=bench.plan.memories))
    return reply_frame(trips.query_size, trips.answer_size)


async def check_multiplexing(bench: Bench, trips: RoundTrips) -> None:
    """Whether 16 PINGs in flight on one AsyncClient come back (else that row is a hang)."""
    progress(f"1. 16 PINGs at once on one AsyncClient (waiting at most {HANG:.0f} s)")
    trips.answered, trips.hung, errors = await hung_pings(bench.url)
    if not trips.pings_multiplex:
        bench.problems.append(
            f"16 PINGs in flight on one AsyncClient: {trips.answered} answered, {trips.hung} still "
            f"waiting after {HANG:.0f} s" + (f", errors {errors[:2]}" if errors else "")
        )


async def search_in_process(repo: Repository, count: int) -> float:
    """Seconds for ``count`` calls of ``repo.search`` for the rare word, in this process."""
    start = time.perf_counter()
    for _ in range(count):
        repo.search(RARE)
    return time.perf_counter() - start


Configuration = tuple[str, Callable[[], Awaitable[float]]]  # (name, one timed run)


def ping_configurations(
    trips: RoundTrips, c: Connections, floor_ping: bytes, round_trips: int
) -> list[Configuration]:
    """Every PING configuration, each followed by its floor (16 in flight: if it works)."""
    each = trips.counts["16"] // CLIENTS
    floors = [lambda f=f: f.call(floor_ping) for f in c.floors]
    configurations: list[Configuration] = [
        ("ping/1", lambda: spread([c.ours[0].ping], round_trips)),
        ("floor-ping/1", lambda: spread([lambda: c.floors[0].call(floor_ping)], round_trips)),
        ("ping/16", lambda: spread([x.ping for x in c.ours], each)),
        ("floor-ping/16", lambda: spread(floors, each)),
        ("ping/one", lambda: spread([c.shared.ping] * CLIENTS, each)),
        ("floor-ping/one", lambda: spread([lambda: c.mux.call(floor_ping)] * CLIENTS, each)),
    ]
    if not trips.pings_multiplex:
        configurations = [(name, run) for name, run in configurations if name != "ping/one"]
    return configurations


def query_configurations(
    trips: RoundTrips, c: Connections, floor_query: bytes, repo: Repository, queries: int
) -> list[Configuration]:
    """Every QUERY configuration, each followed by its floor; and ``repo.search`` in process."""
    qeach = trips.qcounts["16"] // CLIENTS
    ours = [lambda x=x: x.query(RARE) for x in c.ours]
    floors = [lambda f=f: f.call(floor_query) for f in c.floors]
    return [
        ("query/1", lambda: spread([lambda: c.ours[0].query(RARE)], queries)),
        ("floor-query/1", lambda: spread([lambda: c.floors[0].call(floor_query)], queries)),
        ("direct-query", lambda: search_in_process(repo, queries)),
        ("query/16", lambda: spread(ours, qeach)),
        ("floor-query/16", lambda: spread(floors, qeach)),
        ("query/one", lambda: spread([lambda: c.shared.query(RARE)] * CLIENTS, qeach)),
        ("floor-query/one", lambda: spread([lambda: c.mux.call(floor_query)] * CLIENTS, qeach)),
    ]


async def bench_round_trips(bench: Bench) -> None:
    """Item 1: PING and QUERY round trips against the floor, interleaved rounds."""
    plan = bench.plan
    ping_frame = encode_frame(MessageType.PING, 0, encode_payload(Ping(nonce=1)))
    trips = RoundTrips(bench.server, bench.floor, ping_size=len(ping_frame))
    floor_ping = echo_frame(trips.ping_size)
    connections = await Connections.open(bench)
    floor_query = await size_query(bench, connections.ours[0], trips)
    await check_multiplexing(bench, trips)
    each = max(1, plan.round_trips // CLIENTS)
    qeach = max(1, plan.queries // CLIENTS)
    trips.counts = {"1": plan.round_trips, "16": each * CLIENTS, "one": each * CLIENTS}
    trips.qcounts = {"1": plan.queries, "16": qeach * CLIENTS, "one": qeach * CLIENTS}
    configurations = [
        *ping_configurations(trips, connections, floor_ping, plan.round_trips),
        *query_configurations(trips, connections, floor_query, bench.repo, plan.queries),
    ]
    for number in range(plan.rounds):
        progress(f"1. round trips, round {number + 1} of {plan.rounds}")
        for name, run in configurations:
            await trips.record(name, run)
    await connections.aclose()
    await bench.note_memory("after the round trips")
    ratios = ping_rows(bench.report, trips)
    ratios.update(query_rows(bench.report, trips))
    bench.goals += round_trip_goals(trips, ratios)
    bench.report.notes.append(round_trip_note(plan, trips))


SHAPES = {
    "1": "1 client, one request at a time",
    "16": f"{CLIENTS} clients at once, a connection each",
    "one": f"{CLIENTS} requests in flight on one connection ({CLIENTS} tasks)",
}
FLOOR_SHAPES = {
    "1": "1 connection",
    "16": f"{CLIENTS} connections",
    "one": f"{CLIENTS} tasks on one connection, FIFO answers",
}


def ping_rows(report: Report, trips: RoundTrips) -> dict[str, float]:
    """Item 1's PING rows; the ratios ContextFS / floor, in time per round trip."""
    ratios: dict[str, float] = {}
    for key, shape in SHAPES.items():
        count = trips.counts[key]
        floor = (
            f"floor, echo of a {trips.ping_size}-byte payload, {FLOOR_SHAPES[key]}: "
            f"{trips.show(f'floor-ping/{key}', count)}{trips.busy(f'floor-ping/{key}', count)}"
        )
        label = f"1. PING round trip, {shape} ({count:,} in all)"
        if key == "one" and not trips.pings_multiplex:
            report.add(
                Row(
                    label,
                    f"**hangs**: {trips.answered} of {CLIENTS} PONGs came back, {trips.hung} "
                    f"callers still waiting after {HANG:.0f} s (client bug, see notes)",
                    floor,
                    None,
                    f"≤ {GOAL_ROUND_TRIP:g}: {verdict(False)}",
                )
            )
            ratios[f"PING, {shape}"] = float("inf")
            continue
        ratio = trips.per(f"ping/{key}", count) / trips.per(f"floor-ping/{key}", count)
        ratios[f"PING, {shape}"] = ratio
        report.add(
            Row(
                label,
                trips.show(f"ping/{key}", count) + trips.busy(f"ping/{key}", count),
                floor,
                ratio,
                f"≤ {GOAL_ROUND_TRIP:g}: {verdict(ratio <= GOAL_ROUND_TRIP)}",
            )
        )
    return ratios


def query_rows(report: Report, trips: RoundTrips) -> dict[str, float]:
    """Item 1's QUERY rows; the ratios ContextFS / floor, in time per round trip."""
    ratios: dict[str, float] = {}
    for key, shape in SHAPES.items():
        count = trips.qcounts[key]
        ratio = trips.per(f"query/{key}", count) / trips.per(f"floor-query/{key}", count)
        ratios[f"QUERY, {shape}"] = ratio
        report.add(
            Row(
                f"1. QUERY {RARE!r} (limit 10), {shape} ({count:,} in all)",
                trips.show(f"query/{key}", count) + trips.busy(f"query/{key}", count),
                f"floor, {trips.query_size}-byte request, {trips.answer_size:,}-byte answer, "
                f"{FLOOR_SHAPES[key]}: {trips.show(f'floor-query/{key}', count)}"
                f"{trips.busy(f'floor-query/{key}', count)}",
                ratio,
                f"≤ {GOAL_ROUND_TRIP:g}: {verdict(ratio <= GOAL_ROUND_TRIP)}",
            )
        )
        if key == "1":
            report.add(
                Row(
                    "1. same, against repo.search in this process (no wire: what the protocol "
                    "adds)",
                    trips.show("query/1", count),
                    f"repo.search({RARE!r}, limit=10): {trips.show('direct-query', count)}",
                    trips.per("query/1", count) / trips.per("direct-query", count),
                )
            )
    return ratios


def round_trip_goals(trips: RoundTrips, ratios: dict[str, float]) -> list[str]:
    """Item 1's goals: PING and QUERY each at 50% or more of the floor's rate."""
    pings = {name: r for name, r in ratios.items() if name.startswith("PING")}
    queries = {name: r for name, r in ratios.items() if name.startswith("QUERY")}
    over_wire = trips.per("query/1", trips.qcounts["1"])
    in_process = trips.per("direct-query", trips.qcounts["1"])
    return [
        f"PING round trips at 50% or more of the floor's rate (time per round trip ≤ "
        f"{GOAL_ROUND_TRIP:g} × the floor's): "
        f"{verdict(all(r <= GOAL_ROUND_TRIP for r in pings.values()))} ("
        + "; ".join(
            f"{name[6:]}: {verdict(r <= GOAL_ROUND_TRIP)}, × {r:.2f}" for name, r in pings.items()
        )
        + ").",
        f"QUERY round trips at 50% or more of the floor's rate: "
        f"{verdict(all(r <= GOAL_ROUND_TRIP for r in queries.values()))} ("
        + "; ".join(
            f"{name[7:]}: {verdict(r <= GOAL_ROUND_TRIP)}, × {r:.1f}" for name, r in queries.items()
        )
        + f"). The floor moves the same bytes but searches nothing; the QUERY over the wire "
        f"is × {over_wire / in_process:.2f} the time of `repo.search` in process.",
    ]


def round_trip_note(plan: Plan, trips: RoundTrips) -> str:
    """How item 1's rounds run, and what its frames and floors are."""
    ping_size = trips.ping_size
    return (
        f"Round trips: {plan.rounds} interleaved rounds, medians of the rounds reported; a "
        "round runs every configuration once, ContextFS then its floor. Time per round trip "
        "is the wall time over the round trips; with 16 clients, they all start together. "
        f"A PING frame is {ping_size} bytes (14-byte header + MessagePack `{{nonce: 1}}`), "
        "and the PONG too; the server answers it in its read loop. The floor echoes a frame "
        f"whose payload is {ping_size} bytes (so {ping_size + 4} bytes with its length prefix). "
        f"The QUERY is `AsyncClient.query({RARE!r})` (limit 10, mode any): it matches "
        f"{trips.matches} of the {plan.memories:,} memories; its request frame is "
        f"{trips.query_size} bytes and its answer {trips.answer_size:,} bytes (10 hits, each "
        "atom in full); the server "
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


@dataclass
class StreamShape:
    """Item 2 for one chunking: its reads over the wire, the floor and ``repo.stream``."""

    chunk_size: int
    tokens: int  # max_tokens_per_chunk
    wire: Rounds = field(default_factory=Rounds)
    floor: Rounds = field(default_factory=Rounds)
    direct: Rounds = field(default_factory=Rounds)
    server_cpu: Rounds = field(default_factory=Rounds)
    client_cpu: Rounds = field(default_factory=Rounds)
    reads: list[tuple[int, int]] = field(default_factory=list)  # (atoms, skipped) per wire read
    outcomes: set[tuple[int, int]] = field(default_factory=set)  # repo.stream's, per read
    frames: int = 0
    frame_bytes: int = 0  # every frame, headers included
    payload: int = 0  # the frames' MessagePack payloads
    text: int = 0  # the memories' text
    request: bytes = b""  # the floor's request for frames of the same sizes
    floor_bytes: int = 0
    atoms: int = 0
    skipped: int = 0
    short: list[tuple[int, int]] = field(default_factory=list)  # incomplete wire reads


def note_frames(bench: Bench, shape: StreamShape, chunks: list[StreamChunk]) -> None:
    """Size the frames of the first read; check its first chunks against the server's handler."""
    # The frames as sent: each message re-encoded (msgspec's encoding is
    # deterministic), the first ones checked against the server's handler.
    messages: list[Message] = [*chunks, StreamEnd(chunks=len(chunks))]
    payloads = [len(encode_payload(m)) for m in messages]
    sizes = [HEADER_SIZE + n for n in payloads]
    request = Stream(chunk_size=shape.chunk_size, max_tokens_per_chunk=shape.tokens)
    head = [encode_payload(c) for c in chunks[:HEAD_CHECKED]]
    if head != handler_head(bench.repo, request, len(head)):
        bench.problems.append(
            f"STREAM chunk_size {shape.chunk_size}: the first {len(head)} chunks over "
            "the wire differ from the server's handler run in this process"
        )
    shape.frames, shape.frame_bytes, shape.payload = len(sizes), sum(sizes), sum(payloads)
    shape.text = sum(len(a.content.encode()) for c in chunks for a in c.atoms)
    shape.request = stream_frame(sizes)


async def stream_round(
    bench: Bench, client: AsyncClient, floor: FloorClient, shape: StreamShape, first: bool
) -> None:
    """One read over the wire, one from the floor, one of ``repo.stream`` in process."""
    server_cpu, client_cpu = bench.server.cpu(), time.process_time()
    seconds, chunks = await read_stream(client, shape.chunk_size, shape.tokens)
    shape.server_cpu.add(bench.server.cpu() - server_cpu)
    shape.client_cpu.add(time.process_time() - client_cpu)
    shape.wire.add(seconds)
    shape.reads.append(delivered(chunks))
    if first:
        note_frames(bench, shape, chunks)
    start = time.perf_counter()
    frames, shape.floor_bytes = await asyncio.wait_for(floor.stream(shape.request), LIMIT)
    shape.floor.add(time.perf_counter() - start)
    assert frames == shape.frames, (frames, shape.frames)
    seconds, atoms, skipped = read_direct(bench.repo, shape.chunk_size, shape.tokens)
    shape.direct.add(seconds)
    shape.outcomes.add((atoms, skipped))


def check_reads(bench: Bench, shape: StreamShape) -> None:
    """Every read, over the wire and in process, delivered every memory."""
    plan = bench.plan
    if len(shape.outcomes) != 1 or sum(next(iter(shape.outcomes))) != plan.memories:
        bench.problems.append(
            f"repo.stream chunk_size {shape.chunk_size}: (atoms, skipped) "
            f"{sorted(shape.outcomes)} in {plan.stream_rounds} reads, {plan.memories:,} "
            "memories in the commit"
        )
    expected = max(shape.outcomes)
    shape.atoms, shape.skipped = expected
    shape.short = [read for read in shape.reads if read != expected]
    if shape.short:
        bench.problems.append(
            f"STREAM chunk_size {shape.chunk_size}: {len(shape.short)} of "
            f"{plan.stream_rounds} reads over the wire delivered (atoms, skipped) "
            f"{', '.join(map(str, shape.short))}, not {expected}"
        )


async def bench_stream(bench: Bench) -> int:
    """Item 2: STREAM against the floor and repo.stream, then EXPAND against repo.context.

    Returns the bytes of the STREAM answer with the default chunking (for item 3).
    """
    plan = bench.plan
    client = await AsyncClient.connect(bench.url)
    floor = await FloorClient.connect(bench.floor.port)
    shapes = [StreamShape(10, 500), StreamShape(100, 5_000)]
    for number in range(plan.stream_rounds):
        for shape in shapes:
            progress(
                f"2. streams, round {number + 1} of {plan.stream_rounds}: chunk_size "
                f"{shape.chunk_size}, over the wire, the floor, then repo.stream"
            )
            await stream_round(bench, client, floor, shape, number == 0)
    await bench.note_memory("after the streams")
    for shape in shapes:
        check_reads(bench, shape)
    bench.goals.append(stream_rows(bench, shapes))
    window = client.welcome.window if client.welcome is not None else 0
    same = await bench_expand(bench, client)
    await close_all([client, floor])
    bench.report.notes.append(stream_note(plan, shapes, window))
    bench.report.notes.append(expand_note(plan, same))
    return shapes[0].frame_bytes


def stream_rows(bench: Bench, shapes: list[StreamShape]) -> str:
    """Item 2's STREAM rows; its goal's verdict: 100 MB/s of payload."""
    stream_rates: list[str] = []
    for s in shapes:
        ours, floor_time, direct = s.wire.median, s.floor.median, s.direct.median
        mbs = s.payload / ours / MB
        stream_rates.append(
            f"chunk_size {s.chunk_size}: {mbs:.2f} MB/s, {s.atoms / ours:,.0f} atoms/s; "
            f"`repo.stream` in process yields chunks at {s.atoms / direct:,.0f} "
            f"atoms/s, which as payload would be {s.payload / direct / MB:.2f} MB/s"
        )
        incomplete = (
            f" (**{len(s.short)} of {bench.plan.stream_rounds} reads incomplete**; "
            "see the problems below)"
        )
        bench.report.add(
            Row(
                f"2. STREAM of all {bench.plan.memories:,} memories, chunk_size {s.chunk_size}, "
                f"max_tokens_per_chunk {s.tokens:,}: {s.frames:,} frames, "
                f"{s.payload / MB:.2f} MB of payload ({s.frame_bytes / MB:.2f} MB with "
                f"headers; {s.text / MB:.2f} MB of memory text)",
                f"{fmt_seconds(ours)}: {mbs:.2f} MB/s of payload, "
                f"{s.atoms / ours:,.0f} atoms/s, {s.text / ours / MB:.2f} MB/s of "
                f"text; CPU per run: server {fmt_seconds(s.server_cpu.median)}, client "
                f"{fmt_seconds(s.client_cpu.median)}" + (incomplete if s.short else ""),
                f"floor, the same frame sizes streamed: {fmt_seconds(floor_time)}, "
                f"{s.floor_bytes / floor_time / MB:,.0f} MB/s",
                ours / floor_time,
                f"≥ {GOAL_STREAM:g} MB/s of payload: {verdict(mbs >= GOAL_STREAM)}",
            )
        )
        bench.report.add(
            Row(
                f"2. same, against repo.stream in this process (chunk_size {s.chunk_size})",
                fmt_seconds(ours),
                f"repo.stream, every chunk: {fmt_seconds(direct)}, {s.atoms / direct:,.0f} atoms/s",
                ours / direct,
            )
        )
    best = max(s.payload / s.wire.median for s in shapes)
    return (
        f"A streamed answer at {GOAL_STREAM:g} MB/s of payload or more ({bench.plan.memories:,} "
        f"memories): {verdict(best / MB >= GOAL_STREAM)} (" + "; ".join(stream_rates) + ")."
    )


async def bench_expand(bench: Bench, client: AsyncClient) -> bool:
    """Item 2: EXPAND over the wire against ``repo.context``; whether the prompts are equal."""
    plan, repo = bench.plan, bench.repo
    progress(f"2. EXPAND with a budget of {EXPAND_BUDGET:,} tokens, {plan.expand_runs} runs")
    answer = await client.expand(budget=EXPAND_BUDGET)
    prompt = repo.context(budget=EXPAND_BUDGET)
    if answer.text != prompt.text:
        bench.problems.append("EXPAND over the wire and repo.context gave different prompts")
    wire, direct = Rounds(), Rounds()
    for _ in range(plan.expand_runs):
        start = time.perf_counter()
        await asyncio.wait_for(client.expand(budget=EXPAND_BUDGET), LIMIT)
        wire.add(time.perf_counter() - start)
        start = time.perf_counter()
        repo.context(budget=EXPAND_BUDGET)
        direct.add(time.perf_counter() - start)
    bench.report.add(
        Row(
            f"2. EXPAND, budget {EXPAND_BUDGET:,} ({len(answer.atoms)} atoms, "
            f"{answer.total_tokens:,} tokens; answer frame {fmt_bytes(frame_size(answer))})",
            cell(wire),
            f"repo.context(budget={EXPAND_BUDGET:,}) in this process: {cell(direct)}",
            wire.median / direct.median,
        )
    )
    return answer.text == prompt.text


def stream_note(plan: Plan, shapes: list[StreamShape], window: int) -> str:
    """How item 2's streams are read, sized and checked, and what the floor streams."""
    return (
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
        + ", ".join(f"{s.skipped} at chunk_size {s.chunk_size}" for s in shapes)
        + f"; delivered plus skipped equals the {plan.memories:,} memories (checked), and "
        "every read over the wire delivers what `repo.stream` does (checked). The floor "
        "streams frames whose payloads are as long as the ContextFS frames (so 4 bytes more "
        "per frame), as fast as the socket takes them (`drain` after each), with no flow "
        f"control. {plan.stream_rounds} round(s), each one read of each shape over the wire "
        "(the first read of the run is also the server's first STREAM: no separate warm-up), "
        "then the floor, then `repo.stream` in this process (a fresh iterator each time); "
        "medians. MB/s is 10^6 bytes a second."
    )


def expand_note(plan: Plan, same: bool) -> str:
    """How item 2's EXPAND is compared, and whether the prompts matched."""
    return (
        f"EXPAND: `AsyncClient.expand(budget={EXPAND_BUDGET})` (format lines, no query) "
        f"against `repo.context(budget={EXPAND_BUDGET})` on the `Repository` that built the "
        f"store, in this process, {plan.expand_runs} interleaved runs after one warm-up "
        "each; both prompts " + ("are identical (checked)." if same else "**differ**.")
    )


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


class StallRun:
    """Item 3's sequence on one PINGing connection: calm periods and stalls in turn."""

    def __init__(self, bench: Bench, pinger: AsyncClient) -> None:
        self.bench = bench
        self.pinger = pinger
        self.quiet: list[float] = []  # seconds per PING in each period without a stall
        self.quiet_cpu: list[float] = []  # the server's CPU share in each of those periods
        self.sockets: list[socket.socket] = []

    async def calm(self) -> None:
        """PING for the stall's length with no stall."""
        server, stall = self.bench.server, self.bench.plan.stall
        progress(f"3. PINGs for {stall:g} s with no stall")
        used, started = server.cpu(), time.perf_counter()
        stamps = await ping_for(self.pinger, stall)
        self.quiet.append((stamps[-1] - started) / len(stamps))
        self.quiet_cpu.append((server.cpu() - used) / (stamps[-1] - started))

    async def stalled(self, stall: Stall, open_stall: Callable[[], Awaitable[object]]) -> None:
        """Open a stalled reader, then PING and sample the server's memory meanwhile."""
        server, seconds = self.bench.server, self.bench.plan.stall
        progress(f"3{stall.name}. {stall.label}, for {seconds:g} s")
        stall.rss_before = server.rss()
        stall.started = time.perf_counter()
        used = server.cpu()
        await open_stall()
        stall.stamps, stall.rss_peak = await asyncio.gather(
            ping_for(self.pinger, seconds), sample_rss(server, seconds)
        )
        stall.cpu = server.cpu() - used

    async def open_raw(self, count: int) -> None:
        """``count`` raw sockets that ask for a STREAM and never read."""
        for _ in range(count):
            self.sockets.append(raw_stream_socket(self.bench.server.port))

    async def close_raw(self, stall: Stall) -> None:
        """Count what the raw sockets were sent, close them, note the memory after."""
        await asyncio.sleep(0.2)  # let the last frames in flight land
        stall.sent = sum(drain_socket(s) for s in self.sockets)
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()
        await asyncio.sleep(0.5)
        stall.rss_after = self.bench.server.rss()

    async def raw_stall(self, stall: Stall) -> None:
        """(b) or (c): raw sockets that never read, through the stall; then a calm period."""
        await self.stalled(stall, lambda: self.open_raw(stall.readers))
        await self.close_raw(stall)
        await self.calm()


async def client_stall(bench: Bench, run: StallRun, stall: Stall) -> None:
    """(a): an AsyncClient STREAM read for one chunk, left alone, then read to the end."""
    reader = await AsyncClient.connect(bench.url)
    iterator = reader.stream()
    first: list[StreamChunk] = []

    async def open_a() -> None:
        first.append(await asyncio.wait_for(iterator.__anext__(), LIMIT))

    await run.stalled(stall, open_a)
    chunks, atoms, skipped, final = 1, len(first[0].atoms), 0, first[0].is_final
    async for chunk in iterator:
        chunks += 1
        atoms += len(chunk.atoms)
        skipped = len(chunk.skipped)
        final = final or chunk.is_final
    stall.rss_after = bench.server.rss()
    stall.extra = f"then read on: {chunks:,} chunks, {atoms:,} atoms + {skipped} skipped" + (
        "" if final else ", **no final chunk**"
    )
    if atoms + skipped != bench.plan.memories or not final:
        bench.problems.append(
            f"3a: the STREAM read on after the stall delivered {atoms:,} atoms + {skipped} "
            f"skipped of {bench.plan.memories:,}" + ("" if final else ", without its final chunk")
        )
    await reader.aclose()
    await run.calm()


async def bench_slow_reader(bench: Bench, answer_bytes: int) -> None:
    """Item 3: a STREAM nobody reads, while another connection PINGs; the server's memory."""
    pinger = await AsyncClient.connect(bench.url)
    run = StallRun(bench, pinger)
    stalls = [
        Stall("a", "an AsyncClient STREAM, one chunk read, then nothing", 1),
        Stall("b", "a raw socket that asked for a STREAM and never calls recv", 1),
        Stall("c", f"{CLIENTS} raw sockets, each asked for a STREAM, none calls recv", CLIENTS),
    ]
    await run.calm()
    await client_stall(bench, run, stalls[0])
    await run.raw_stall(stalls[1])
    await run.raw_stall(stalls[2])
    # d) correctness: a short STREAM (it fits in the window) read with pauses.
    progress(f"3d. a STREAM of the atoms above relevance {SHORT_THRESHOLD}, read with pauses")
    probe = await AsyncClient.connect(bench.url)
    brisk = await asyncio.wait_for(read_slowly(probe, 0.0, SHORT_THRESHOLD), LIMIT)
    slow = await asyncio.wait_for(read_slowly(probe, SLOW_PAUSE, SHORT_THRESHOLD), LIMIT)
    await close_all([probe, pinger])
    await bench.note_memory("after the slow readers")
    for number, stall in enumerate(stalls):
        stall_rows(bench, run.quiet[number : number + 2], stall, answer_bytes)
    paused_read_row(bench, brisk, slow)
    bench.report.notes.append(slow_reader_note(bench.plan, run))


def stall_rows(bench: Bench, around: list[float], stall: Stall, answer_bytes: int) -> None:
    """One stall's rows: PINGs during it against the calm periods around it; the memory."""
    during = (stall.stamps[-1] - stall.started) / len(stall.stamps)
    tail = [t for t in stall.stamps if t >= stall.started + 0.5]
    tail_rate = (
        f"; after the first 0.5 s {len(tail) / (tail[-1] - stall.started - 0.5):,.0f}/s"
        if len(tail) > 1
        else ""
    )
    bench.report.add(
        Row(
            f"3{stall.name}. PINGs/s on another connection during a {bench.plan.stall:g}-s "
            f"stall: {stall.label}",
            f"{1 / during:,.0f} PINGs/s ({fmt_seconds(during)}/PING{tail_rate}); server "
            f"CPU {stall.cpu / (stall.stamps[-1] - stall.started):.0%} of the stall",
            f"no stall, the periods just before and after: {1 / around[0]:,.0f} and "
            f"{1 / around[1]:,.0f} PINGs/s",
            during / statistics.mean(around),
        )
    )
    whole = answer_bytes * stall.readers
    sent = (
        f"; the server sent {fmt_bytes(stall.sent)} of the {fmt_bytes(whole)} asked for"
        if stall.sent is not None
        else ""
    )
    extra = f"; {stall.extra}" if stall.extra else ""
    bench.report.add(
        Row(
            f"3{stall.name}. server VmRSS: before / highest during the stall / after",
            f"{fmt_bytes(stall.rss_before)} / {fmt_bytes(stall.rss_peak)} / "
            f"{fmt_bytes(stall.rss_after)} (+{fmt_bytes(stall.rss_peak - stall.rss_before)} "
            f"at most{sent}{extra})",
            f"the whole answer{'s' if stall.readers > 1 else ''}: {fmt_bytes(whole)} of frames",
        )
    )


def paused_read_row(
    bench: Bench, brisk: tuple[int, int, bool], slow: tuple[int, int, bool]
) -> None:
    """(d): a STREAM read with pauses must arrive as whole as one read straight through."""
    bench.report.add(
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
    if brisk[:2] != slow[:2] or not slow[2]:
        bench.problems.append(
            f"3d: a STREAM read with a {SLOW_PAUSE * 1e3:.0f}-ms pause per chunk ended silently "
            f"after {slow[0]} of {brisk[0]} chunks ({slow[1]:,} of {brisk[1]:,} atoms)"
        )


def slow_reader_note(plan: Plan, run: StallRun) -> str:
    """How item 3's periods alternate and what each stall does."""
    baseline = statistics.mean(run.quiet)
    quiet_cell = ", ".join(f"{1 / q:,.0f}" for q in run.quiet)
    return (
        f"Slow reader: one connection PINGs in turn for {plan.stall:g} s with no stall, "
        "then during a stall, and so on: no stall, (a), no stall, (b), no stall, (c), no "
        f"stall (mean of all four: {1 / baseline:,.0f} PINGs/s; each: {quiet_cell}; the "
        f"server's CPU {min(run.quiet_cpu):.0%} to {max(run.quiet_cpu):.0%} of those periods); "
        "each stall's ratio is against the mean of the periods just before and after it. "
        "PINGs/s "
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
    wire: Rounds  # seconds from sending STREAM to receiving the first chunk
    direct: Rounds  # seconds for repo.stream's first chunk in this process
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
        try:
            args = ["-c", COLD_CODE, str(cold), str(FIRST_CHUNK_SIZE)]
            cold_child = float(child_output(args, timeout=LIMIT))
        except (RuntimeError, ValueError) as error:
            bench.problems.append(f"4: the cold repo.stream child failed: {error}")
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
        wire=Rounds(wire[1:]),
        direct=Rounds(direct[1:]),
        cold_wire=wire[0] if cold is not None else None,
        cold_direct=direct[0] if cold is not None else None,
        cold_child=cold_child,
    )


def first_chunk_rows(bench: Bench, result: FirstChunk) -> None:
    """Item 4's rows for one repository."""
    bench.report.add(
        Row(
            f"4. first chunk over the network, {result.atoms:,} atoms: STREAM (chunk_size "
            f"{FIRST_CHUNK_SIZE}) sent → first STREAM_CHUNK ({result.chunk_atoms} atoms) "
            f"received; {len(result.wire)} fresh requests on one connection, median (p95)",
            cell(result.wire),
            f"repo.stream(chunk_size={FIRST_CHUNK_SIZE}) first chunk in this process, warm "
            f"Repository: {cell(result.direct)}",
            result.wire.median / result.direct.median,
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


def bench_first_chunk_large(bench: Bench, corpus: Corpus, work: Path) -> None:
    """Item 4 at ``plan.first_chunk_atoms``: build, serve in a child, time, clean up."""
    plan = bench.plan
    atoms = plan.first_chunk_atoms
    folder = work / "large"
    progress(f"4. building a repository of {atoms:,} memories (batches of {BUILD_BATCH:,})")
    repo, build = build_repository(corpus, folder, atoms)
    repo.close()
    size = tree_bytes(folder)
    progress(f"4. built in {build.seconds:.1f} s ({fmt_bytes(size)}); starting its server")
    server = Child.python("server", SERVER_CODE, [str(folder)], work / "large-server.log")
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
        repo.add_atoms(string_atoms(corpus, rng, first, size, year_seconds=YEAR_SECONDS))
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
    ratios = (
        "Ratios are ContextFS / baseline in time (per round trip for rates): below 1 means "
        "ContextFS is faster."
    )
    return "\n".join(
        [
            *section_opening(HEADING, "wire.py", command, measured, ratios),
            f"- Sizes: {plan.memories:,} memories; {plan.round_trips:,} PINGs and "
            f"{plan.queries:,} QUERYs per configuration and round, {plan.rounds} rounds; "
            f"{plan.stream_rounds} round(s) of streams; {plan.expand_runs} EXPANDs; stalls of "
            f"{plan.stall:g} s; first chunks: {plan.first_chunk_runs} requests at "
            f"{plan.memories:,}"
            + (f" and {plan.first_chunk_atoms:,} atoms" if plan.first_chunk_atoms else " atoms")
            + f"; whole run {wall:.0f} s",
            report.load_line() + "; CPU time stolen by the hypervisor during the run (all cores): "
            f"{report.timings.get('steal', 0.0):.1f} s",
            *machine_lines(),
            *subsection("Figures", markdown_table(report.rows)),
            *subsection("Goals", *bullets(bench.goals)),
            *subsection("Notes"),
            f"- Memories: item i of the {len(corpus):,} paragraphs of `pydoc_data.topics` (as "
            f"in the core benchmarks; suffixed ` (note i)` from i = {len(corpus):,} on), a "
            "`String` atom with relevance uniform in [0, 1) and a time uniform over 2024 "
            f"(random.Random(3)); `Repository.init`, `add_atoms` of up to {BUILD_BATCH:,} "
            "memories at a time, one commit. For items 1 to 3 the full-text index is built "
            "(first `repo.search`) before the server starts; item 4's large repository has no "
            "full-text index (STREAM does not use it).",
            *bullets(report.notes),
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


def check_server_exit(bench: Bench, server: Child, stopped: float | None) -> None:
    """A problem for a server that had to be killed, failed, or logged anything."""
    if stopped is None:
        bench.problems.append("the server did not exit within 20 s of SIGTERM (killed)")
    if server.process.returncode not in (0, None):
        bench.problems.append(f"the server exited with status {server.process.returncode}")
    log = server.errors().strip()
    if log:
        bench.problems.append(f"the server logged: {summary(log)}")


def serve_and_measure(plan: Plan, corpus: Corpus, report: Report, work: Path) -> Bench:
    """Build the repository, serve it and the floor from child interpreters, run items 1-4."""
    progress(f"building a repository of {plan.memories:,} memories")
    repo, built = build_repository(corpus, work / "repo", plan.memories)
    start = time.perf_counter()
    repo.search(RARE)  # builds the full-text index, once, before the server starts
    indexed = time.perf_counter() - start
    progress(f"  built in {built.seconds:.1f} s, indexed in {indexed:.1f} s; starting the servers")
    server = Child.python("server", SERVER_CODE, [str(work / "repo")], work / "server.log")
    floor: Child | None = None
    try:
        floor = Child.python("floor", FLOOR_CODE, [], work / "floor.log")
        bench = Bench(plan, report, server, floor, repo, f"ctx://127.0.0.1:{server.port}")
        asyncio.run(measure(bench))
    finally:
        stopped = server.stop()
        if floor is not None:
            floor.stop()
        repo.close()
    check_server_exit(bench, server, stopped)
    report.notes.append(
        f"Set-up (not measured against anything): building the repository took "
        f"{built.seconds:.1f} s, the full-text index {indexed:.1f} s; the server stopped "
        + (f"{stopped:.2f} s after SIGTERM." if stopped is not None else "only when killed.")
    )
    if plan.first_chunk_atoms:
        bench_first_chunk_large(bench, corpus, work)
    return bench


def main(argv: list[str] | None = None) -> int:
    """Measure the four items and write the RESULTS.md section."""
    args, plan = PLANS.choose(PLANS.parser(__doc__), argv, check_plan)
    corpus = Corpus()
    report = Report()
    started = time.perf_counter()
    report.note_load()
    stolen = steal_seconds()
    measured = measured_version()
    progress(
        f"wire benchmarks: {plan.memories:,} memories, {plan.round_trips:,} PINGs and "
        f"{plan.queries:,} QUERYs per configuration, {plan.rounds} rounds, "
        f"{plan.stream_rounds} round(s) of streams; first chunk at {plan.memories:,}"
        + (f" and {plan.first_chunk_atoms:,} atoms" if plan.first_chunk_atoms else " atoms")
    )
    with tempfile.TemporaryDirectory(prefix="contextfs-wire-") as temp:
        bench = serve_and_measure(plan, corpus, report, Path(temp))
    wall = time.perf_counter() - started
    report.note_load()
    report.timings["steal"] = steal_seconds() - stolen
    section = render_section(PLANS.command(args), plan, corpus, bench, wall, measured)
    tables = [markdown_table(report.rows)]
    publish_section(
        args.output, SECTION, HEADING, section, tables=tables, wall=wall, problems=bench.problems
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
