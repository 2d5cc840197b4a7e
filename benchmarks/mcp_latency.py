"""MCP server benchmarks: what ``context`` and ``recall`` cost over MCP, against calling Python.

Run from the project root:

    .venv/bin/python benchmarks/mcp_latency.py            # 5,000 memories, 50 calls each, ~1 minute
    .venv/bin/python benchmarks/mcp_latency.py --quick    # 1,000 memories, 15 calls each, ~20 s
    .venv/bin/python benchmarks/mcp_latency.py --memories 20000 --calls 100

(The script is not called ``mcp.py``: run as a script, its folder comes first on
``sys.path``, and a file of that name would hide the MCP SDK's ``mcp`` package.)

A repository of real-text memories (the paragraphs of ``pydoc_data.topics``,
one commit, full-text index built first) is served by ``contextfs mcp`` over
stdio, as an MCP client starts it: a child process, the SDK's own client
(``mcp.Client``) in this process. Measured, interleaved call by call, on the
same repository (which of a kind's calls goes first rotates from round to
round, so none always finds the caches warmed by another):

1. ``context`` with a budget of 4,000 tokens and a query, over MCP, against
   ``repo.context(budget=4000, query=...)`` in this process;
2. ``recall`` of 10 hits for a query, over MCP, against ``repo.search(query,
   limit=10)`` in this process;
3. the same two tool functions called in this process (``MemoryTools``:
   the library call plus building the typed result, no transport), which
   splits the overhead between the tool layer and the protocol;
4. ``history`` of one commit over MCP, against ``list(repo.log(limit=1))``:
   a tool whose library call costs next to nothing, so its time over MCP is
   the fixed cost of any call; and the server's start-up (process start to
   the first ``tools/list`` answered).

Every answer over MCP is checked against the direct call (same prompt text,
same hit ids). Medians and 95th percentiles; ratios are MCP / direct.
Progress goes to stderr, the table to stdout, and the report to the section
"mcp" of ``benchmarks/RESULTS.md`` (``--output`` to write elsewhere); the rest
of that file is left as it is (see ``common.py``).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mcp import Client
from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client

from common import (
    Corpus,
    Plans,
    Report,
    Rounds,
    Row,
    clocked,
    fmt_bytes,
    fmt_seconds,
    machine_lines,
    markdown_table,
    measured_version,
    package_version,
    progress,
    publish_section,
    section_opening,
    string_atoms,
    subsection,
)
from contextfs import Repository
from contextfs.mcp import SessionWriter
from contextfs.mcp.tools import MemoryTools

SECTION = "mcp"
HEADING = "## MCP server (`contextfs mcp`)"
BUDGET = 4_000
LIMIT = 10
#: Queries cycled through: common and rare words of the corpus, one or two words each.
QUERIES = (
    "decorator",
    "exception handling",
    "iterator protocol",
    "class attribute",
    "unicode string",
    "context manager",
    "keyword argument",
)
YEAR_SECONDS = 366 * 24 * 3600
WARMUP = 3  # calls of each kind before measuring (caches, the server's first imports)


@dataclass(frozen=True)
class Plan:
    """The sizes of a run."""

    memories: int = 5_000
    calls: int = 50


PLANS = Plans(
    script="mcp_latency.py",
    full=Plan(),
    quick=Plan(memories=1_000, calls=15),
    quick_help="1,000 memories, 15 calls each",
    options={
        "memories": "memories in the repository (5,000)",
        "calls": "timed calls of each kind (50)",
    },
)


def check_plan(plan: Plan) -> str:
    """Why ``plan`` cannot run, or nothing."""
    if plan.memories < 100 or plan.calls < 5:
        return "need --memories >= 100 and --calls >= 5"
    return ""


@dataclass
class Timings:
    """Seconds per call, by kind."""

    runs: dict[str, Rounds] = field(default_factory=dict)
    sizes: dict[str, list[int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, kind: str, seconds: float) -> None:
        """Record one call."""
        self.runs.setdefault(kind, Rounds()).add(seconds)


def build(corpus: Corpus, folder: Path, count: int) -> float:
    """``count`` memories in one commit; the full-text index built. Returns seconds."""
    rng = random.Random(3)
    start = time.perf_counter()
    with Repository.init(folder) as repo:
        repo.add_atoms(string_atoms(corpus, rng, 0, count, year_seconds=YEAR_SECONDS))
        repo.commit(f"{count} memories")
        repo.search("decorator")  # indexes every memory, once, before anything is timed
    return time.perf_counter() - start


async def awaited(action: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    """Seconds an awaited call took, and its result."""
    start = time.perf_counter()
    result = await action()
    return time.perf_counter() - start, result


async def measure(plan: Plan, folder: Path, log: Path) -> tuple[Timings, float, str]:
    """Interleave every kind of call ``plan.calls`` times.

    Returns the timings, the start-up time and the protocol version negotiated.
    """
    timings = Timings()
    argv = [sys.executable, "-m", "contextfs.cli.main", "--repo", str(folder), "mcp"]
    params = StdioServerParameters(
        command=argv[0], args=[*argv[1:], "--actor", "bench"], env=get_default_environment()
    )
    with Repository.open(folder) as repo, log.open("w", encoding="utf-8") as errlog:
        writer = SessionWriter(repo, actor="bench", session="bench")
        tools = MemoryTools(repo, writer)
        started = time.perf_counter()
        async with Client(stdio_client(params, errlog=errlog)) as client:
            await client.list_tools()
            startup = time.perf_counter() - started
            protocol = client.protocol_version
            for n in range(WARMUP + plan.calls):
                query = QUERIES[n % len(QUERIES)]
                await _round(client, repo, tools, query, n, timings if n >= WARMUP else None)
        writer.close()
    return timings, startup, protocol


async def _round(
    client: Client,
    repo: Repository,
    tools: MemoryTools,
    query: str,
    turn: int,
    timings: Timings | None,
) -> None:
    """One call of each kind; who goes first rotates from round to round (warm caches)."""
    sink = timings or Timings()
    answers: dict[str, Any] = {}

    async def over_mcp(tool: str, arguments: dict[str, Any]) -> None:
        seconds, result = await awaited(lambda: client.call_tool(tool, arguments))
        if result.is_error or result.structured_content is None:
            sink.problems.append(f"{tool} {arguments} failed over MCP: {result.content}")
            return
        sink.add(f"mcp {tool}", seconds)
        sink.sizes.setdefault(tool, []).append(len(json.dumps(result.structured_content)))
        answers[f"mcp {tool}"] = result.structured_content

    async def here(kind: str, call: Callable[[], Any]) -> None:
        seconds, answers[kind] = clocked(call)
        sink.add(kind, seconds)

    steps: list[list[Callable[[], Awaitable[None]]]] = [
        [
            lambda: here("direct context", lambda: repo.context(budget=BUDGET, query=query)),
            lambda: over_mcp("context", {"budget": BUDGET, "query": query}),
            lambda: here("tool context", lambda: tools.context(budget=BUDGET, query=query)),
        ],
        [
            lambda: here("direct recall", lambda: repo.search(query, limit=LIMIT)),
            lambda: over_mcp("recall", {"query": query, "limit": LIMIT}),
            lambda: here("tool recall", lambda: tools.recall(query, limit=LIMIT)),
        ],
        [
            lambda: here("direct history", lambda: list(repo.log(limit=1))),
            # A tool whose library call costs next to nothing: the fixed cost of any call.
            lambda: over_mcp("history", {"limit": 1}),
        ],
    ]
    for group in steps:
        first = turn % len(group)
        for step in group[first:] + group[:first]:
            await step()
    if (
        "mcp context" in answers
        and answers["mcp context"]["text"] != answers["direct context"].text
    ):
        sink.problems.append(f"context {query!r}: the prompt over MCP differs from repo.context")
    if "mcp recall" in answers and [h["id"] for h in answers["mcp recall"]["hits"]] != [
        h.atom.content_hash for h in answers["direct recall"]
    ]:
        sink.problems.append(f"recall {query!r}: the hits over MCP differ from repo.search")


def rows(timings: Timings, startup: float) -> list[Row]:
    """The results table."""
    runs = timings.runs
    table = []
    for tool, direct, call in (
        ("context", "direct context", f"repo.context(budget={BUDGET:,}, query=q)"),
        ("recall", "direct recall", f"repo.search(q, limit={LIMIT})"),
    ):
        over, here, tool_runs = runs[f"mcp {tool}"], runs[direct], runs[f"tool {tool}"]
        table.append(
            Row(
                f"{tool} over MCP (stdio), median (p95)",
                over.median_labelled_p95(),
                f"{call} in process: {here.median_labelled_p95()}",
                over.median / here.median,
            )
        )
        table.append(
            Row(
                f"{tool}: p95 over MCP / p95 in process",
                fmt_seconds(over.p95),
                fmt_seconds(here.p95),
                over.p95 / here.p95,
            )
        )
        table.append(
            Row(
                f"{tool}: the tool function in process (no transport)",
                tool_runs.median_labelled_p95(),
                f"{call}: {here.median_labelled_p95()}",
                tool_runs.median / here.median,
            )
        )
        sizes = timings.sizes[tool]
        table.append(
            Row(f"{tool}: structured result as JSON, median", fmt_bytes(statistics.median(sizes)))
        )
    over, here = runs["mcp history"], runs["direct history"]
    table.append(
        Row(
            "a near-free tool call over MCP (history, limit 1): the fixed cost per call",
            over.median_labelled_p95(),
            f"list(repo.log(limit=1)) in process: {here.median_labelled_p95()}",
            over.median / here.median,
        )
    )
    table.append(Row("server start-up (spawn to tools/list answered)", fmt_seconds(startup)))
    return table


def render_section(
    command: str,
    plan: Plan,
    corpus: Corpus,
    report: Report,
    built: float,
    wall: float,
    protocol: str,
) -> str:
    """The RESULTS.md section."""
    ratios = "Ratios are over MCP / in process, in time: 1 means MCP costs nothing extra."
    return "\n".join(
        [
            *section_opening(HEADING, "mcp_latency.py", command, measured_version(), ratios),
            f"- Sizes: {plan.memories:,} memories; {plan.calls} calls of each kind after "
            f"{WARMUP} warm-up rounds, interleaved; whole run {wall:.0f} s",
            report.load_line(),
            *machine_lines(),
            f"- MCP SDK: mcp {package_version('mcp')}",
            *subsection("Figures", markdown_table(report.rows)),
            *subsection("Notes", *section_notes(plan, corpus, report, built, protocol)),
        ]
    )


def section_notes(
    plan: Plan, corpus: Corpus, report: Report, built: float, protocol: str
) -> list[str]:
    """What is built, how each side is called, and whether every answer matched."""
    return [
        f"- Memories: items 0 to {plan.memories - 1:,} of the {len(corpus):,} paragraphs of "
        "`pydoc_data.topics` (suffixed ` (note i)` past the last one), `String` atoms with "
        "relevance uniform in [0, 1) and a time uniform over 2024 (random.Random(3)), one "
        f"commit; built and indexed in {built:.1f} s before the server starts.",
        f"- Queries, cycled: {', '.join(repr(q) for q in QUERIES)}.",
        "- Over MCP: `contextfs mcp --repo REPO --actor bench` started by "
        "`mcp.client.stdio.stdio_client` and driven by `mcp.Client` in this process "
        f"(protocol version {protocol}, as the SDK negotiated it); one call at a time, timed "
        "from the call to its parsed `CallToolResult`. The server process shares the "
        f"machine's {os.cpu_count()} cores with this one. In process: the same "
        "`Repository` method on a `Repository` opened in this process; the tool function "
        "is `contextfs.mcp.tools.MemoryTools` called directly (the library call plus the "
        "typed result).",
        "- What MCP adds on top of the library call: the result as a pydantic model, "
        "validated again and serialised by the SDK both as `structuredContent` and as a "
        "JSON text block, JSON-RPC framing over the pipes, the client's parsing, and the "
        "hop to a worker thread in the server; the `history` row is that fixed cost alone.",
        "- Every answer over MCP was compared with the in-process call: "
        + (
            "all the same." if not report.notes else "differences found: " + "; ".join(report.notes)
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    """Measure and write the RESULTS.md section."""
    args, plan = PLANS.choose(PLANS.parser(__doc__), argv, check_plan)
    corpus = Corpus()
    report = Report()
    report.note_load()
    started = time.perf_counter()
    progress(f"mcp benchmarks: {plan.memories:,} memories, {plan.calls} calls of each kind")
    with tempfile.TemporaryDirectory(prefix="contextfs-mcp-") as temp:
        work = Path(temp)
        built = build(corpus, work / "repo", plan.memories)
        progress(f"  built and indexed in {built:.1f} s; starting contextfs mcp")
        timings, startup, protocol = asyncio.run(measure(plan, work / "repo", work / "server.log"))
        log = (work / "server.log").read_text(encoding="utf-8", errors="replace").strip()
    if log:
        timings.problems.append(f"the server logged: {log.splitlines()[0][:200]}")
    report.notes.extend(dict.fromkeys(timings.problems))
    for row in rows(timings, startup):
        report.add(row)
    wall = time.perf_counter() - started
    report.note_load()
    section = render_section(PLANS.command(args), plan, corpus, report, built, wall, protocol)
    tables = [markdown_table(report.rows)]
    publish_section(
        args.output, SECTION, HEADING, section, tables=tables, wall=wall, problems=report.notes
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
