"""Objects at rest (issue 18): compressed and packed, against the same code storing raw, and git.

Run from the project root:

    .venv/bin/python benchmarks/storage.py            # 1,000 commits of 100 memories, ~10 min
    .venv/bin/python benchmarks/storage.py --quick    # 200 commits, ~2 min
    .venv/bin/python benchmarks/storage.py --baseline REV

Two versions of ContextFS run the same steps, one after the other, each in a
child interpreter: this checkout's ``src`` and the baseline, the source tree of
commit ``--baseline`` (default: the last commit that stored every object raw),
unpacked from git into a temporary directory. Each child

1. builds the history of ``benchmarks/remotes.py``: ``--commits`` commits of
   100 new memories each (real paragraphs of ``pydoc_data.topics``), timed;
2. measures the store on disk, then reads it: ``expand`` of HEAD and of the
   first commit (budget 4,000 tokens), ``context`` for the seven queries of
   ``assembly.py``, ``log`` of every commit, ``diff`` of the first commit
   against HEAD, and ``verify``; each read on a freshly opened
   ``Repository`` (empty caches), median of ``--rounds``;
3. runs ``gc`` (the baseline's only collects; this version also trains its
   dictionaries and makes old tree versions deltas) and measures 2 again.

git holds the same memories (one file each, 100 per commit, ``git
fast-import`` then ``git gc``, as ``remotes.py`` builds it); its packed objects
are the size to beat. The report goes to the "storage" section of
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assembly import QUERIES
from common import (
    HERE,
    Corpus,
    Plans,
    Report,
    Row,
    bullets,
    fmt_bytes,
    fmt_seconds,
    machine_lines,
    markdown_table,
    measured_version,
    progress,
    publish_section,
    section_opening,
    subsection,
    tree_bytes,
)
from contextfs import Repository
from remotes import blocks, git_packs, git_stream, make_atom
from run import fast_import, git

SECTION = "storage"
HEADING = "## Objects at rest: compressed and packed (issue 18)"
BASELINE = "7d4b535"  # the last commit that stored every object raw
BUDGET = 4000


@dataclass(frozen=True)
class Plan:
    """How long a history, how many rounds per read, and which commit is the baseline."""

    commits: int = 1000
    rounds: int = 5
    baseline: str = BASELINE


PLANS = Plans(
    script="storage.py",
    full=Plan(),
    quick=Plan(200, 3),
    quick_help="200 commits, 3 rounds per read",
    options={
        "commits": "commits of 100 memories (1000)",
        "rounds": "rounds per read (5)",
        "baseline": f"the commit to compare with ({BASELINE})",
    },
)


# -- the child: one version's build and reads ---------------------------------------------


def median_of(rounds: int, action: Callable[[], object]) -> float:
    """The median seconds of ``action`` over ``rounds`` runs."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def reads(folder: Path, rounds: int, first: str) -> dict[str, float]:
    """Each read's median seconds, each on a freshly opened repository."""

    def fresh(action: Callable[[Repository], object]) -> Callable[[], object]:
        def run() -> object:
            with Repository.open(folder) as repo:
                return action(repo)

        return run

    results = {
        "expand HEAD": median_of(rounds, fresh(lambda r: r.expand("HEAD", budget=BUDGET))),
        "expand the first commit": median_of(
            rounds, fresh(lambda r: r.expand(first, budget=BUDGET))
        ),
        "log of every commit": median_of(rounds, fresh(lambda r: list(r.log(["HEAD"])))),
        "diff first..HEAD": median_of(rounds, fresh(lambda r: list(r.diff(first, "HEAD")))),
        "verify": median_of(1, fresh(lambda r: r.verify())),
    }
    with Repository.open(folder) as repo:
        repo.context("HEAD", budget=BUDGET, query=QUERIES[0])  # indexes, loads the tokenizer
        per_query = [
            median_of(rounds, lambda q=q: repo.context("HEAD", budget=BUDGET, query=q))
            for q in QUERIES
        ]
    results["context (median of the 7 queries)"] = statistics.median(per_query)
    return results


def child(folder: Path, commits: int, rounds: int) -> dict[str, Any]:
    """Build the history in ``folder``, read it, gc it, read it again."""
    corpus = Corpus()
    Repository.init(folder, embedder="none").close()
    start = time.perf_counter()
    with Repository.open(folder) as repo:
        for block in blocks(0, commits):
            repo.add_atoms([make_atom(corpus, item) for item in block])
            repo.commit(f"memories {block.start:,} to {block.stop - 1:,}")
        first = str(list(repo.log())[-1].id)
    built = time.perf_counter() - start
    out: dict[str, Any] = {"build": built, "disk": tree_bytes(folder / ".contextfs")}
    out["reads"] = reads(folder, rounds, first)
    with Repository.open(folder) as repo:
        start = time.perf_counter()
        repo.gc()
        out["gc"] = time.perf_counter() - start
    out["disk after gc"] = tree_bytes(folder / ".contextfs")
    out["reads after gc"] = reads(folder, rounds, first)
    return out


# -- the parent: both versions and git ------------------------------------------------------


def run_child(src: Path, folder: Path, plan: Plan) -> dict[str, Any]:
    """One version's figures, from a child interpreter importing ContextFS from ``src``."""
    env = {"PYTHONPATH": f"{src}:{HERE}", "PATH": "/usr/bin:/bin"}
    argv = [sys.executable, __file__, "--child", str(folder), str(plan.commits), str(plan.rounds)]
    done = subprocess.run(argv, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def baseline_source(revision: str, into: Path) -> Path:
    """The ``src`` tree of ``revision``, unpacked from git."""
    archive = subprocess.run(
        ["git", "archive", revision, "src"], cwd=HERE.parent, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def git_twin(commits: int, work: Path) -> tuple[int, float]:
    """The packed bytes and build seconds of git holding the same memories."""
    corpus = Corpus()
    git_dir = work / "twin.git"
    git("init", "--quiet", "--bare", str(git_dir), cwd=work)
    start = time.perf_counter()
    fast_import(git_dir, git_stream(corpus, blocks(0, commits), None, 1_704_067_200))
    git("gc", "--quiet", cwd=git_dir)
    return sum(git_packs(git_dir).values()), time.perf_counter() - start


def rows_for(
    current: dict[str, Any], base: dict[str, Any], git_bytes: int, plan: Plan
) -> list[Row]:
    """The table: this version against the baseline, and the history against git."""
    rows = [
        Row(
            f"build: {plan.commits:,} commits of 100 memories (add_atoms + commit)",
            fmt_seconds(current["build"]),
            f"raw: {fmt_seconds(base['build'])}",
            current["build"] / base["build"],
            "≈ 1",
        ),
        Row(
            "store on disk after the build",
            fmt_bytes(current["disk"]),
            f"raw: {fmt_bytes(base['disk'])}",
            current["disk"] / base["disk"],
        ),
        Row(
            "gc (this version: collect, train dictionaries, repack)",
            fmt_seconds(current["gc"]),
            f"raw (collect only): {fmt_seconds(base['gc'])}",
            current["gc"] / base["gc"],
        ),
        Row(
            "store on disk after gc",
            fmt_bytes(current["disk after gc"]),
            f"raw: {fmt_bytes(base['disk after gc'])}",
            current["disk after gc"] / base["disk after gc"],
        ),
        Row(
            "history on disk after gc, against git's packed objects",
            fmt_bytes(current["disk after gc"]),
            f"git gc: {fmt_bytes(git_bytes)}",
            current["disk after gc"] / git_bytes,
            "≤ 1.5",
        ),
    ]
    for stage, label in (("reads", "before gc"), ("reads after gc", "after gc")):
        for name, seconds in current[stage].items():
            rows.append(
                Row(
                    f"{name}, {label}",
                    fmt_seconds(seconds),
                    f"raw: {fmt_seconds(base[stage][name])}",
                    seconds / base[stage][name],
                    "≤ 1.2",
                )
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run both versions and git, then write the RESULTS.md section."""
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["--child"]:
        folder, commits, rounds = Path(args_in[1]), int(args_in[2]), int(args_in[3])
        print(json.dumps(child(folder, commits, rounds)))
        return 0
    parser = PLANS.parser(__doc__)
    args, plan = PLANS.choose(parser, argv)
    report = Report()
    report.note_load()
    begun = time.perf_counter()
    measured = measured_version()
    with tempfile.TemporaryDirectory(prefix="contextfs-storage-") as temp:
        work = Path(temp)
        (work / "baseline").mkdir()
        old_src = baseline_source(plan.baseline, work / "baseline")
        progress(f"git: {plan.commits:,} commits")
        git_bytes, git_seconds = git_twin(plan.commits, work)
        progress(f"baseline {plan.baseline}: build, read, gc, read")
        base = run_child(old_src, work / "raw", plan)
        shutil.rmtree(work / "raw")
        progress("this version: build, read, gc, read")
        current = run_child(HERE.parent / "src", work / "packed", plan)
    report.rows = rows_for(current, base, git_bytes, plan)
    for row in report.rows:
        progress(f"  {row.measurement}: {row.contextfs} | {row.baseline}")
    report.note_load()
    wall = time.perf_counter() - begun
    lines = section_opening(HEADING, "storage.py", PLANS.command(args), measured)
    lines += [report.load_line(), *machine_lines()]
    lines += subsection("Figures", markdown_table(report.rows))
    notes = [
        f"Baseline: the source of commit {plan.baseline}, which stores every object raw;"
        " both versions run the same steps on the same memories, one after the other, in"
        " child interpreters. Ratios are this version / the baseline, and for the history"
        " this version's store after gc / git's packed objects.",
        f"git: `git fast-import` of the same memories then `git gc` ({fmt_seconds(git_seconds)});"
        " its figure is the bytes of its packs.",
        "Store on disk: every file in `.contextfs` (the object table, the full-text index"
        " and the reflog).",
        "Reads: each on a freshly opened `Repository` (its tree cache and the decoded-base"
        " cache empty; the OS page cache warm); `context` on one open repository, after a"
        " first query that indexes and loads the tokenizer.",
    ]
    lines += subsection("Notes", *bullets(notes))
    publish_section(
        args.output,
        SECTION,
        HEADING,
        "\n".join(lines) + "\n",
        tables=[markdown_table(report.rows)],
        wall=wall,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
