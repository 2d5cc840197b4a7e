"""The harness every benchmark script shares: corpus, plans, rounds, child processes, report.

- **Plans.** A script declares a frozen ``Plan`` dataclass and a :class:`Plans`:
  its full plan, its ``--quick`` plan and the fields its command line may set one
  by one (``--FIELD VALUE``). :meth:`Plans.parser`, :meth:`Plans.choose` and
  :meth:`Plans.command` give every script the same command line and the same
  record of it in the report.
- **Rounds.** Repeated measurements go into :class:`Rounds` (median, nearest-rank
  p95, the cells the reports print); :func:`interleave` runs several measurements
  round by round, so background load on a shared machine hits each alike.
- **Child processes.** :class:`Child` is a server the measurements run against
  (it announces its port, is stopped with SIGTERM and read through ``/proc``);
  :func:`child_output` runs one measurement in a fresh interpreter;
  :func:`run_forked` starts forked writers together and times them.
- **The report.** :class:`Report` and :class:`Row` make the table; the section
  helpers write the lines every section opens with.

``RESULTS.md`` is shared by several scripts. ``run.py`` owns the file as a whole
(its title, machine, figures and notes); every other script owns one *section*
of it, a block between the lines ``<!-- begin section: NAME -->`` and
``<!-- end section: NAME -->``. Rewriting the core report keeps every such
section, in order, after the new core report (:func:`write_core_report`);
a script rewrites only its own section, in place, or appends it the first time
(:func:`write_section`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import multiprocessing
import os
import platform
import pydoc_data.topics
import random
import re
import select
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Generic, TypeVar

from contextfs import T_STRING, MemoryAtom

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
CORE_TITLE = "# ContextFS benchmark results"
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)  # the atoms' times start here
T = TypeVar("T")
P = TypeVar("P")

# -- the corpus ------------------------------------------------------------------


class Corpus:
    """Unique real-text items: the paragraphs of ``pydoc_data.topics``.

    Item ``i`` is paragraph ``i mod P``; from the second pass on it gets the
    suffix `` (note i)`` so every item stays unique. ``used`` records which items
    the benchmarks took, so the report can say whether suffixes were needed.
    """

    def __init__(self) -> None:
        seen: set[str] = set()
        paragraphs: list[str] = []
        topics: dict[str, str] = pydoc_data.topics.topics
        for name in sorted(topics):
            for block in re.split(r"\n\s*\n", topics[name]):
                text = " ".join(block.split())
                if len(text) >= 20 and text not in seen:
                    seen.add(text)
                    paragraphs.append(text)
        self.paragraphs = paragraphs
        self.used: set[int] = set()

    def __len__(self) -> int:
        return len(self.paragraphs)

    def text(self, i: int) -> str:
        """Return item ``i``."""
        self.used.add(i)
        base = self.paragraphs[i % len(self.paragraphs)]
        return base if i < len(self.paragraphs) else f"{base} (note {i})"

    def texts(self, start: int, count: int) -> list[str]:
        """Return items ``start`` to ``start + count - 1``."""
        return [self.text(i) for i in range(start, start + count)]


def string_atoms(
    corpus: Corpus, rng: random.Random, start: int, count: int, *, year_seconds: int
) -> Iterator[MemoryAtom]:
    """Items ``start`` on as ``String`` atoms: a time uniform over a year, relevance in [0, 1).

    ``rng`` draws the time, then the relevance, of each atom in turn, so a
    store built in batches holds the same atoms as one built at once.
    """
    for text in corpus.texts(start, count):
        when = EPOCH + timedelta(seconds=rng.randrange(year_seconds))
        yield MemoryAtom(text, T_STRING, when, "bench", rng.random())


# -- measuring one call ----------------------------------------------------------------


def progress(message: str) -> None:
    """Print one progress line to stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def timed(action: Callable[[], object]) -> float:
    """Return the seconds ``action`` took."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def clocked(action: Callable[[], T]) -> tuple[float, T]:
    """Run ``action``; return the seconds it took and what it returned."""
    start = time.perf_counter()
    value = action()
    return time.perf_counter() - start, value


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


# -- repeated rounds ---------------------------------------------------------------------


@dataclass
class Rounds:
    """Repeated measurements of one thing (seconds unless a cell's unit says otherwise).

    Reports give the median, which a busy neighbour moves least, and the
    nearest-rank 95th percentile, which shows the tail.
    """

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        """Record one round."""
        self.values.append(value)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def median(self) -> float:
        """The median round."""
        return float(statistics.median(self.values))

    @property
    def p95(self) -> float:
        """The nearest-rank 95th percentile."""
        return percentile(self.values, 0.95)

    @property
    def best(self) -> float:
        """The smallest round."""
        return min(self.values)

    def median_p95(self, unit: Callable[[float], str] | None = None) -> str:
        """``median (p95)``."""
        show = unit or fmt_seconds
        return f"{show(self.median)} ({show(self.p95)})"

    def median_labelled_p95(self, unit: Callable[[float], str] | None = None) -> str:
        """``median (p95 X)``."""
        show = unit or fmt_seconds
        return f"{show(self.median)} (p95 {show(self.p95)})"

    def median_or_count(self, unit: Callable[[float], str] | None = None) -> str:
        """``median (p95 X)``, or ``median (median of N)`` when under 10 rounds make no p95."""
        if len(self.values) < 10:
            return f"{(unit or fmt_seconds)(self.median)} (median of {len(self.values)})"
        return self.median_labelled_p95(unit)


def interleave(
    actions: Sequence[Callable[[], float]], rounds: int, cap: float = math.inf
) -> list[Rounds]:
    """Run ``actions`` round by round; each returns the seconds its timed part took.

    Interleaving spreads background load over every action alike. Past ``cap``
    seconds the run stops early, once at least 3 rounds are done.
    """
    results = [Rounds() for _ in actions]
    started = time.perf_counter()
    for done in range(rounds):
        if done >= 3 and time.perf_counter() - started > cap:
            break
        for action, result in zip(actions, results, strict=True):
            result.add(action())
    return results


def repeat(action: Callable[[], float], rounds: int, cap: float = math.inf) -> Rounds:
    """:func:`interleave` of one action."""
    return interleave([action], rounds, cap)[0]


# -- formatting ----------------------------------------------------------------------------


def fmt_seconds(value: float) -> str:
    """Seconds with a sensible unit."""
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.2f} ms"
    return f"{value * 1e6:.0f} µs"


def fmt_bytes(value: float) -> str:
    """Bytes with a binary unit."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.0f} B"


def rate(count: int, seconds: float, unit: str, units: str | None = None) -> str:
    """Throughput and time per item: ``N units/s (T/unit)``."""
    return f"{count / seconds:,.0f} {units or unit}/s ({fmt_seconds(seconds / count)}/{unit})"


def verdict(met: bool) -> str:
    """A goal's outcome."""
    return "met" if met else "**missed**"


# -- what was measured ------------------------------------------------------------------------


def tree_bytes(path: Path) -> int:
    """Total bytes of the file at ``path`` or of the files under it."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def object_table_bytes(folder: Path) -> int:
    """The pages SQLite gives a repository's objects and its compression dictionaries.

    The history itself: the full-text and vector indexes beside it are left out.
    """
    with contextlib.closing(sqlite3.connect(folder / ".contextfs" / "store.db")) as conn:
        (size,) = conn.execute(
            "SELECT sum(pgsize) FROM dbstat WHERE name IN ('objects', 'dictionaries')"
        ).fetchone()
    return int(size or 0)


def measured_version() -> str:
    """The ContextFS commit measured, and whether its sources differ from it."""
    root = HERE.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown (no git)"
    if not commit:
        return "unknown (not a git checkout)"
    return f"commit {commit}" + (" with uncommitted changes under src/" if dirty else "")


def proc_number(path: str, key: str) -> int:
    """The number after ``key:`` in a /proc file (in bytes where it says kB); 0 if none."""
    with contextlib.suppress(OSError), open(path) as handle:
        for line in handle:
            if line.startswith(key + ":"):
                parts = line.split()
                return int(parts[1]) * (1024 if parts[-1] == "kB" else 1)
    return 0


def package_version(name: str) -> str:
    """The installed version of package ``name``, or ``unknown``."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


# -- plans: full or quick, chosen on the command line -------------------------------------------


def show_value(value: object) -> str:
    """An option's value as typed on a command line (tuples comma-separated)."""
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    return str(value)


@dataclass(frozen=True)
class Plans(Generic[P]):
    """A script's two plans, and the plan fields its command line may set one by one.

    ``--quick`` starts from ``quick`` instead of ``full``; ``--FIELD VALUE`` (the
    field's name with dashes) then sets one field. ``options`` maps each such
    field to its help; ``parsers`` reads a field's value where the field's own
    type cannot (tuples), and may raise ``argparse.ArgumentTypeError``.
    """

    script: str  # the file name under benchmarks/, as the report records the command
    full: P
    quick: P
    quick_help: str
    options: Mapping[str, str] = field(default_factory=dict)
    parsers: Mapping[str, Callable[[str], Any]] = field(default_factory=dict)

    def parser(self, doc: str | None) -> argparse.ArgumentParser:
        """``--quick``, one option per settable field and ``--output``; add more if needed."""
        parser = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
        parser.add_argument("--quick", action="store_true", help=self.quick_help)
        for name, help_text in self.options.items():
            parse = self.parsers.get(name, type(getattr(self.full, name)))
            parser.add_argument(f"--{name.replace('_', '-')}", type=parse, help=help_text)
        parser.add_argument(
            "--output", type=Path, default=RESULTS, help="the report file to update"
        )
        return parser

    def choose(
        self,
        parser: argparse.ArgumentParser,
        argv: Sequence[str] | None,
        check: Callable[[P], str] | None = None,
    ) -> tuple[argparse.Namespace, P]:
        """Parse ``argv``; the plan it asks for, or exit with ``check``'s complaint."""
        args = parser.parse_args(argv)
        base = self.quick if args.quick else self.full
        plan: P = dataclasses.replace(base, **self.given(args))  # type: ignore[type-var]
        complaint = check(plan) if check is not None else ""
        if complaint:
            parser.error(complaint)
        return args, plan

    def given(self, args: argparse.Namespace) -> dict[str, Any]:
        """The fields the command line set."""
        values = {name: getattr(args, name) for name in self.options}
        return {name: value for name, value in values.items() if value is not None}

    def command(self, args: argparse.Namespace, *extra: str) -> str:
        """The command line as the report records it (``--output`` left out)."""
        options = ["--quick"] if args.quick else []
        options += [
            f"--{name.replace('_', '-')} {show_value(value)}"
            for name, value in self.given(args).items()
        ]
        return " ".join([f".venv/bin/python benchmarks/{self.script}", *options, *extra])


# -- child processes ---------------------------------------------------------------------------

READY = 60.0  # seconds a child may take to start listening or to print a line

#: The end of a child's code that serves ``handle(reader, writer)`` (``asyncio`` and
#: ``signal`` imported): listens on a free port of 127.0.0.1, prints it, serves until SIGTERM.
SERVE_HANDLE_CODE = """
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()

asyncio.run(main())
"""

#: ``contextfs serve`` in a child interpreter (``python -c SERVER_CODE REPO``):
#: prints its port on its first line, serves until SIGTERM.
SERVER_CODE = """
import asyncio, logging, signal, sys
from contextfs import Repository
from contextfs.server import Server

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

async def main():
    repo = Repository.open(sys.argv[1])
    server = Server(repo, host="127.0.0.1", port=0)
    await server.start()
    print(server.port, flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.aclose()
    repo.close()

asyncio.run(main())
"""


class Child:
    """A server in a child process on 127.0.0.1, for measurements to run against.

    It prints its port on its first stdout line (or is given ``port`` and polled
    until it listens); its stderr goes to ``log``. Its memory and CPU are read
    from ``/proc``, so they are the child's own, not this process's.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log: Path,
        *,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.log = log
        self._buffer = b""
        with open(log, "wb") as errors:
            self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, env=env)
        try:
            if port is None:
                self.port = int(self.line())
            else:
                self.port = port
                wait_for_port(port)
        except BaseException:
            self.stop()
            raise

    @classmethod
    def python(cls, name: str, code: str, args: Sequence[str], log: Path, **kwargs: Any) -> Child:
        """A child interpreter running ``code`` with ``args``."""
        return cls(name, [sys.executable, "-c", code, *args], log, **kwargs)

    def line(self) -> str:
        """The child's next line on stdout (read unbuffered, so no line hides in a buffer).

        Raises:
            RuntimeError: none came within :data:`READY` seconds (the child's log is shown).
        """
        stdout = self.process.stdout
        assert stdout is not None
        deadline = time.monotonic() + READY
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([stdout], [], [], max(0.0, left))
            chunk = os.read(stdout.fileno(), 65536) if ready else b""
            if not chunk:
                raise RuntimeError(f"the {self.name} said nothing:\n{self.errors()[-2000:]}")
            self._buffer += chunk
        text, self._buffer = self._buffer.split(b"\n", 1)
        return text.decode()

    def errors(self) -> str:
        """What the child wrote to stderr."""
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")
        return ""

    def rss(self) -> int:
        """Resident memory now, in bytes."""
        return proc_number(f"/proc/{self.process.pid}/status", "VmRSS")

    def cpu(self) -> float:
        """CPU seconds (user + system) the child has used so far."""
        with open(f"/proc/{self.process.pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def fds(self) -> int:
        """Open file descriptors."""
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def stop(self, grace: float = 20.0) -> float | None:
        """SIGTERM, then wait; the seconds it took, or None if it had to be killed.

        Safe to call twice.
        """
        start = time.perf_counter()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()
        return time.perf_counter() - start


def wait_for_port(port: int) -> None:
    """Return once 127.0.0.1:``port`` accepts connections.

    Raises:
        RuntimeError: it did not within :data:`READY` seconds.
    """
    deadline = time.monotonic() + READY
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on 127.0.0.1:{port}") from None
            time.sleep(0.05)


def child_output(args: Sequence[str], *, timeout: float | None = None) -> str:
    """Run ``python ARGS`` in a fresh interpreter; the last line it printed.

    A fresh interpreter measures what a new process costs, or peaks at, free of
    this process's caches and heap.

    Raises:
        RuntimeError: it failed, printed nothing or outlived ``timeout`` (its stderr's end shown).
    """
    try:
        done = subprocess.run(
            [sys.executable, *args], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"the child {args[:1]} took over {timeout} s") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the child {args[:1]} failed ({done.returncode}): {done.stderr[-300:]}")
    return lines[-1]


def run_forked(target: Callable[[int], None], processes: int) -> float:
    """Run ``target(k)`` for k < ``processes`` in forked processes started together.

    Returns the wall time from the first process's start to the last one's
    end (``perf_counter`` is one monotonic clock for every process on Linux).
    """
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(processes)
    results = context.SimpleQueue()

    def child(k: int) -> None:
        try:
            barrier.wait()
            start = time.perf_counter()
            target(k)
            results.put((start, time.perf_counter(), ""))
        except BaseException:  # report anything, so the parent never waits forever
            results.put((0.0, 0.0, traceback.format_exc()))

    workers = [context.Process(target=child, args=(k,)) for k in range(processes)]
    for worker in workers:
        worker.start()
    spans: list[tuple[float, float, str]] = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    errors = [message for _, _, message in spans if message]
    if errors:
        raise RuntimeError(f"a writer process failed:\n{errors[0]}")
    return max(end for _, end, _ in spans) - min(start for start, _, _ in spans)


# -- the report -------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table."""

    measurement: str
    contextfs: str
    baseline: str = ""
    ratio: float | None = None
    goal: str = ""

    def cells(self) -> list[str]:
        """The row as table cells."""
        if self.ratio is None:
            ratio = ""
        elif self.ratio < 0.01:  # two significant digits, not "0.00"
            ratio = f"{self.ratio:.1e}"
        else:
            ratio = f"{self.ratio:.2f}"
        return [self.measurement, self.contextfs, self.baseline, ratio, self.goal]


@dataclass
class Report:
    """Everything the run found."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    load: list[tuple[float, float, float]] = field(default_factory=list)

    def add(self, row: Row) -> None:
        """Record a row and echo it to stderr."""
        self.rows.append(row)
        ratio = "" if row.ratio is None else f"  ratio {row.cells()[3]}"
        progress(f"  {row.measurement}: {row.contextfs} | {row.baseline}{ratio}")

    def note_load(self) -> None:
        """Record the load average: at the start of a run and at its end."""
        self.load.append(os.getloadavg())

    def load_text(self) -> str:
        """The recorded load averages, ``1, 5, 15`` at start / end."""
        return " / ".join(", ".join(f"{x:.2f}" for x in load) for load in self.load)

    def load_line(self) -> str:
        """The load averages as a section's list item."""
        return f"- Load average (1, 5, 15 min) at start / end: {self.load_text()}"


def machine() -> list[tuple[str, str]]:
    """Describe the machine the figures come from (scripts may append tool versions)."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with contextlib.suppress(OSError), open("/proc/meminfo") as info:
        for line in info:
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    return [
        ("CPU", cpu),
        ("Cores", str(os.cpu_count())),
        ("RAM", ram),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("SQLite", sqlite3.sqlite_version),
    ]


def machine_lines(extra: Sequence[tuple[str, str]] = ()) -> list[str]:
    """The machine (and ``extra`` tools) as report list items."""
    return [f"- {name}: {value}" for name, value in [*machine(), *extra]]


def markdown_table(rows: list[Row]) -> str:
    """The results as a Markdown table."""
    header = ["Measurement", "ContextFS", "Baseline", "Ratio (ContextFS / baseline)", "Goal"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(row.cells()) + " |" for row in rows)
    return "\n".join(lines)


def section_opening(
    heading: str, script: str, command: str, measured: str, ratios: str = ""
) -> list[str]:
    """The lines a section starts with: heading, provenance, command, date and version."""
    generated = (
        f"Generated by `benchmarks/{script}` (this section only; `benchmarks/run.py` keeps "
        "it); see `benchmarks/README.md` for what each figure means."
    )
    return [
        heading,
        "",
        f"{generated} {ratios}" if ratios else generated,
        "",
        f"- Command: `{command}`",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- ContextFS: {measured}",
    ]


def subsection(title: str, *lines: str) -> list[str]:
    """A ``### title`` part of a section: a blank line, the heading, a blank line, ``lines``."""
    return ["", f"### {title}", "", *lines]


def bullets(items: Iterable[str]) -> list[str]:
    """``items`` as Markdown list items."""
    return [f"- {item}" for item in items]


def publish_section(
    path: Path,
    name: str,
    heading: str,
    body: str,
    *,
    tables: Sequence[str],
    wall: float,
    problems: Sequence[str] = (),
) -> None:
    """Write section ``name``, print ``tables`` to stdout, and say so (and any problems)."""
    write_section(path, name, body)
    if tables:
        print("\n\n".join(tables))
    for problem in dict.fromkeys(problems):
        progress(f"problem: {problem}")
    progress(f"done in {wall:.0f} s; wrote the {heading[3:]!r} section of {path}")


# -- RESULTS.md: one core report, any number of owned sections --------------------------


def section_begin(name: str) -> str:
    """The line that opens section ``name``."""
    return f"<!-- begin section: {name} -->"


def section_end(name: str) -> str:
    """The line that closes section ``name``."""
    return f"<!-- end section: {name} -->"


_SECTION = re.compile(
    r"^<!-- begin section: (?P<name>[\w.-]+) -->\n.*?^<!-- end section: (?P=name) -->\n?",
    re.MULTILINE | re.DOTALL,
)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def sections(text: str) -> list[str]:
    """Every owned section of ``text``, markers included, in order."""
    return [match.group(0).rstrip("\n") + "\n" for match in _SECTION.finditer(text)]


def write_core_report(path: Path, report: str) -> None:
    """Write ``run.py``'s ``report`` to ``path``, keeping every section already there."""
    kept = sections(_read(path))
    path.write_text(report + "".join(f"\n{section}" for section in kept))


def write_section(path: Path, name: str, body: str) -> None:
    """Put ``body`` into ``path`` as section ``name``: in place, or appended if new.

    Everything outside the section is left as it was; a missing file gets a
    title line until ``run.py`` writes the core report around the section.
    """
    block = f"{section_begin(name)}\n{body.strip(chr(10))}\n{section_end(name)}\n"
    text = _read(path)
    for match in _SECTION.finditer(text):
        if match.group("name") == name:
            path.write_text(text[: match.start()] + block + text[match.end() :])
            return
    if not text:
        text = f"{CORE_TITLE}\n\nThe core figures appear here when `benchmarks/run.py` runs.\n"
    path.write_text(text.rstrip("\n") + "\n\n" + block)
