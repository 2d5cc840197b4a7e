"""Helpers the benchmark scripts share: the corpus, measuring, formatting, the report.

``RESULTS.md`` is shared by several scripts. ``run.py`` owns the file as a whole
(its title, machine, figures and notes); every other script owns one *section*
of it, a block between the lines ``<!-- begin section: NAME -->`` and
``<!-- end section: NAME -->``. Rewriting the core report keeps every such
section, in order, after the new core report (:func:`write_core_report`);
a script rewrites only its own section, in place, or appends it the first time
(:func:`write_section`).
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import pydoc_data.topics
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
CORE_TITLE = "# ContextFS benchmark results"

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


# -- measuring helpers -----------------------------------------------------------


def progress(message: str) -> None:
    """Print one progress line to stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def timed(action: Callable[[], object]) -> float:
    """Return the seconds ``action`` took."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


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


def markdown_table(rows: list[Row]) -> str:
    """The results as a Markdown table."""
    header = ["Measurement", "ContextFS", "Baseline", "Ratio (ContextFS / baseline)", "Goal"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(row.cells()) + " |" for row in rows)
    return "\n".join(lines)


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


#: ``contextfs serve`` in a child interpreter (``python -c SERVER_CODE REPO``):
#: prints its port on its first line, serves until SIGTERM.
SERVER_CODE = """
import asyncio, logging, signal, sys
from contextfs import Repository
from contextfs.server.serve import Server

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
