"""The UI's History page (issue 22) on a 10,000-commit repository, against git and the floor.

Run from the project root:

    .venv/bin/python benchmarks/ui_history.py ../shared/data/locomo-dev           # 10,000 commits
    .venv/bin/python benchmarks/ui_history.py ../shared/data/locomo-dev --quick   # 1,000, smoke

The commits remember the turns of LoCoMo conversations (Maharana et al., ACL
2024), one turn a commit, by the turn's speaker; every 40th commit opens a
branch of 4 commits that is merged back, so the graph has lanes and merges.
The same history is written to a git repository with ``git fast-import`` (one
file per turn), so each side shows the same 50 newest commits:

1. **History page**: ``GET /history`` from a running ``contextfs ui`` (a real
   process, over HTTP): the first 50 commits with the SVG graph, refs,
   authors and per-commit counts of memories added, changed and removed; the
   first request after start (cold) and then warm ones;
2. **a deep page**: the page halfway down (``GET /history?page=100`` of 10,000);
3. **the floor**: the library calls behind the page (``Repository.log`` for
   50 commits and ``Repository.show`` of each), in process;
4. **git**: ``git log --graph --stat -50``, the picture a user would look at
   instead (a process, as the page request is).

Medians and 95th percentiles; ratios against git. The report goes to the
"ui-history" section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import itertools
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from common import (
    Plans,
    Report,
    Rounds,
    Row,
    bullets,
    fmt_seconds,
    machine_lines,
    markdown_table,
    measured_version,
    progress,
    publish_section,
    section_opening,
    subsection,
)
from contextfs import Repository

SECTION = "ui-history"
HEADING = "## The UI's History page (issue 22)"


@dataclass(frozen=True)
class Plan:
    commits: int = 10_000
    rounds: int = 30


PLANS = Plans(
    script="ui_history.py",
    full=Plan(),
    quick=Plan(1_000, 10),
    quick_help="1,000 commits, 10 rounds",
    options={"commits": "commits in the repository (10000)", "rounds": "requests of each (30)"},
)


def turns(files: list[Path]) -> list[tuple[str, str]]:
    """(speaker, text) of every turn of the conversations, in order."""
    found: list[tuple[str, str]] = []
    for file in files:
        talk = json.loads(file.read_text(encoding="utf-8"))
        number = 1
        while f"session_{number}" in talk:
            found += [(t["speaker"], t["text"]) for t in talk[f"session_{number}"] if t.get("text")]
            number += 1
    return found


def build(folder: Path, lines: list[tuple[str, str]], count: int) -> None:
    """``count`` commits, one turn each, with a merged branch of 4 every 40 commits."""
    source = itertools.cycle(enumerate(lines))  # the index keeps repeats distinct
    git_stream: list[bytes] = []
    with Repository.init(folder / "contextfs") as repo:
        made = 0
        while made < count:
            branch = made % 40 == 0 and made > 0 and made + 6 <= count
            if branch:
                repo.switch(f"topic-{made}", create=True)
            for _ in range(4 if branch else 1):
                _, (speaker, text) = next(source)
                repo.add(f"{text} (turn {made})", "Fact", tags=[speaker])
                repo.commit(text[:72], author=speaker)
                git_stream.append(_git_commit(made, speaker, text, "topic" if branch else "main"))
                made += 1
            if branch:
                repo.switch("main")
                repo.merge(f"topic-{made - 4}", author="planner", fast_forward=False)
                git_stream.append(_git_merge(made))
                made += 1
            if made % 1000 == 0:
                progress(f"{made:,} commits")
    _git_import(folder / "git", git_stream)


_MARKS: dict[str, int] = {}


def _git_commit(n: int, speaker: str, text: str, line: str) -> bytes:
    """One fast-import commit adding the turn as its own file."""
    data = text.encode()
    ref = "refs/heads/main" if line == "main" else "refs/heads/topic"
    parent = _MARKS.get(line) or (_MARKS.get("main") if line == "topic" else None)
    _MARKS[line] = n + 1
    head = f"commit {ref}\nmark :{n + 1}\ncommitter {speaker} <x@y> {1_700_000_000 + n} +0000\n"
    msg = text[:72].encode()
    body = head.encode() + b"data %d\n" % len(msg) + msg + b"\n"
    if parent is not None:
        body += b"from :%d\n" % parent
    return body + b"M 644 inline turns/%d.txt\ndata %d\n" % (n, len(data)) + data + b"\n"


def _git_merge(n: int) -> bytes:
    msg = b"Merge topic into main"
    body = (
        f"commit refs/heads/main\nmark :{n}\ncommitter planner <x@y> {1_700_000_000 + n} +0000\n"
    ).encode()
    body += b"data %d\n" % len(msg) + msg + b"\n"
    body += b"from :%d\nmerge :%d\n" % (_MARKS["main"], _MARKS["topic"])
    _MARKS["main"] = n
    del _MARKS["topic"]
    return body


def _git_import(folder: Path, stream: list[bytes]) -> None:
    subprocess.run(["git", "init", "-q", "-b", "main", str(folder)], check=True)
    subprocess.run(
        ["git", "fast-import", "--quiet"], cwd=folder, input=b"".join(stream), check=True
    )


def timed_get(url: str) -> float:
    begun = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read()
    elapsed = time.perf_counter() - begun
    assert b'table class="commits"' in body
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = PLANS.parser(__doc__)
    parser.add_argument("locomo", type=Path, help="the folder of LoCoMo conversation files")
    args, plan = PLANS.choose(parser, argv)
    files = sorted(args.locomo.glob("*.json"))
    if not files:
        parser.error(f"no LoCoMo files (*.json) in {str(args.locomo)!r}")
    report = Report()
    report.note_load()
    begun = time.perf_counter()
    lines = turns(files)
    with tempfile.TemporaryDirectory(prefix="contextfs-ui-") as temp:
        folder = Path(temp)
        progress(f"{plan.commits:,} commits of {len(lines):,} LoCoMo turns")
        build(folder, lines, plan.commits)
        repo_path = folder / "contextfs"
        middle = max(1, plan.commits // 100)  # the page halfway down the history
        server = subprocess.Popen(
            [sys.executable, "-m", "contextfs", "--repo", str(repo_path), "ui", "--port", "0"],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stderr is not None
            found = re.match(r"serving the UI on (\S+)/ ", server.stderr.readline())
            assert found, "the UI did not start"
            url = found.group(1)
            cold = timed_get(url + "/history")
            first = Rounds([timed_get(url + "/history") for _ in range(plan.rounds)])
            deep = Rounds([timed_get(f"{url}/history?page={middle}") for _ in range(plan.rounds)])
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
        with Repository.open(repo_path) as repo:  # warm, as the server's is
            floor = Rounds([_library_page(repo) for _ in range(plan.rounds)])
        git = Rounds([_git_log(folder / "git") for _ in range(plan.rounds)])
        with Repository.open(repo_path) as repo:
            commits = sum(1 for _ in repo.log())
    baseline = f"git log --graph --stat -50: {git.median_p95()}"
    report.add(
        Row(
            "History page, first 50 commits, warm (GET over HTTP)",
            first.median_p95(),
            baseline,
            first.median / git.median,
            "< 300 ms",
        )
    )
    report.add(
        Row("History page, first request after start (cold)", fmt_seconds(cold), goal="< 300 ms")
    )
    report.add(
        Row(
            f"History page {middle} (commits {(middle - 1) * 50 + 1:,}-{middle * 50:,})",
            deep.median_p95(),
            baseline,
            deep.median / git.median,
        )
    )
    report.add(
        Row(
            "floor: Repository.log 50 + show of each, in process",
            floor.median_p95(),
            baseline,
            floor.median / git.median,
        )
    )
    report.note_load()
    measured = measured_version()
    opening = section_opening(
        HEADING,
        "ui_history.py",
        PLANS.command(args, str(args.locomo)),
        measured,
        "Ratios are each figure's median / git log's (lower is better).",
    )
    opening += [report.load_line(), *machine_lines([])]
    opening += subsection("Figures", markdown_table(report.rows))
    notes = [
        f"{commits:,} commits ({plan.commits // 40:,} merges of 4-commit branches), one LoCoMo "
        "turn each, on a SQLite repository; the git repository holds the same history.",
        "The page counts each commit's memories added, changed and removed against its first "
        "parent (a tree diff per commit) and draws the lanes of the 50 commits as SVG.",
        f"The issue's bound: the first page in under 300 ms; measured {fmt_seconds(first.median)}"
        f" warm and {fmt_seconds(cold)} cold.",
    ]
    opening += subsection("Notes", *bullets(notes))
    publish_section(
        args.output,
        SECTION,
        HEADING,
        "\n".join(opening) + "\n",
        tables=[markdown_table(report.rows)],
        wall=time.perf_counter() - begun,
    )
    return 0


def _library_page(repo: Repository) -> float:
    begun = time.perf_counter()
    for info in itertools.islice(repo.log(), 50):
        repo.show(info.id)
    return time.perf_counter() - begun


def _git_log(folder: Path) -> float:
    begun = time.perf_counter()
    subprocess.run(
        ["git", "log", "--graph", "--stat", "-50"], cwd=folder, check=True, capture_output=True
    )
    return time.perf_counter() - begun


if __name__ == "__main__":
    sys.exit(main())
