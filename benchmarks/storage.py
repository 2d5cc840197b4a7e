"""Objects at rest (issue 18): compressed and packed, against the same code storing raw, and git.

Run from the project root:

    .venv/bin/python benchmarks/storage.py            # 1,000 commits of 100 memories, ~10 min
    .venv/bin/python benchmarks/storage.py --quick    # 200 commits, ~2 min
    .venv/bin/python benchmarks/storage.py --baseline REV

Two versions of ContextFS run the same steps, each in child interpreters:
this checkout's ``src`` and the baseline, the source tree of commit
``--baseline`` (default: the last commit that stored every object raw),
unpacked from git into a temporary directory. Each

1. builds the history of ``benchmarks/remotes.py``: ``--commits`` commits of
   100 new memories each (real paragraphs of ``pydoc_data.topics``), timed;
   then times 100 small commits of one new memory on it, and (best of 3)
   the ingest of all those memories in one commit into a new repository;
2. is read, ``--rounds`` times, the two versions taking turns: ``expand`` of
   HEAD and of the first commit (budget 4,000 tokens), ``log`` of every
   commit, ``diff`` of the first commit against HEAD, ``verify``, and
   ``context`` for the seven queries of ``assembly.py``;
3. runs ``gc`` (the baseline's only collects; this version also trains its
   atom dictionary and makes old tree versions deltas), measuring its
   objects table before and after, and is read again as in 2.

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
from dataclasses import dataclass, field
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
    object_table_bytes,
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
SMALL_COMMITS = 100  # commits of one new memory each, on the built history
INGEST_RUNS = 3  # the ingest in one commit: best of these


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


def timed_reads(folder: Path) -> dict[str, float]:
    """One round of every read, each on a freshly opened repository: seconds by read."""

    def fresh(action: Callable[[Repository], object]) -> float:
        with Repository.open(folder) as repo:
            begin = time.perf_counter()
            action(repo)
            return time.perf_counter() - begin

    first = (folder / "first").read_text()
    with Repository.open(folder) as repo:  # load the tokenizer: no read should pay for it
        repo.expand("HEAD", budget=BUDGET)
    results = {
        "expand HEAD": fresh(lambda r: r.expand("HEAD", budget=BUDGET)),
        "expand the first commit": fresh(lambda r: r.expand(first, budget=BUDGET)),
        "log of every commit": fresh(lambda r: list(r.log(["HEAD"]))),
        "diff first..HEAD": fresh(lambda r: list(r.diff(first, "HEAD"))),
        "verify": fresh(lambda r: r.verify()),
    }
    with Repository.open(folder) as repo:
        repo.context("HEAD", budget=BUDGET, query=QUERIES[0])  # indexes, loads the tokenizer
        per_query = []
        for query in QUERIES:
            begin = time.perf_counter()
            repo.context("HEAD", budget=BUDGET, query=query)
            per_query.append(time.perf_counter() - begin)
    results["context (median of the 7 queries)"] = statistics.median(per_query)
    return results


def build(folder: Path, commits: int) -> dict[str, Any]:
    """Build the history in ``folder``; its seconds and size."""
    corpus = Corpus()
    Repository.init(folder, embedder="none").close()
    start = time.perf_counter()
    with Repository.open(folder) as repo:
        for block in blocks(0, commits):
            repo.add_atoms([make_atom(corpus, item) for item in block])
            repo.commit(f"memories {block.start:,} to {block.stop - 1:,}")
        (folder / "first").write_text(str(list(repo.log())[-1].id))
    built = time.perf_counter() - start
    out: dict[str, Any] = {"seconds": built, "disk": tree_bytes(folder / ".contextfs")}
    with Repository.open(folder) as repo:  # small commits on the built history
        times = []
        for n in range(SMALL_COMMITS):
            begin = time.perf_counter()
            repo.add_atoms([make_atom(corpus, 900_000 + n)])
            repo.commit(f"small {n}")
            times.append(time.perf_counter() - begin)
    out["small commit"] = statistics.median(times)
    atoms = [make_atom(corpus, item) for item in range(commits * 100)]
    ingests = []
    for run in range(INGEST_RUNS):
        target = folder.parent / f"{folder.name}-ingest{run}"
        Repository.init(target, embedder="none").close()
        with Repository.open(target) as repo:
            begin = time.perf_counter()
            repo.add_atoms(atoms)
            repo.commit("everything at once")
            ingests.append(time.perf_counter() - begin)
        shutil.rmtree(target)
    out["ingest"] = min(ingests)
    return out


def collect(folder: Path) -> dict[str, Any]:
    """``gc`` the store; its seconds and the sizes before and after."""
    before = object_table_bytes(folder)
    with Repository.open(folder) as repo:
        start = time.perf_counter()
        repo.gc()
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "objects before": before,
        "objects": object_table_bytes(folder),
        "disk": tree_bytes(folder / ".contextfs"),
    }


def child(step: str, folder: Path, commits: int) -> dict[str, Any]:
    """One step in a child interpreter: build, read or gc."""
    if step == "build":
        return build(folder, commits)
    if step == "gc":
        return collect(folder)
    return timed_reads(folder)


# -- the parent: both versions and git ------------------------------------------------------


@dataclass
class Version:
    """One version of ContextFS under test: its source and its store."""

    name: str
    src: Path
    folder: Path
    figures: dict[str, Any] = field(default_factory=dict)

    def run(self, step: str, plan: Plan) -> dict[str, Any]:
        """Run ``step`` in a child interpreter importing ContextFS from :attr:`src`."""
        env = {"PYTHONPATH": f"{self.src}:{HERE}", "PATH": "/usr/bin:/bin"}
        argv = [sys.executable, __file__, "--child", step, str(self.folder), str(plan.commits)]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"{self.name}: {step} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout)  # type: ignore[no-any-return]


def interleaved_reads(versions: list[Version], plan: Plan) -> dict[str, dict[str, float]]:
    """Every read's median seconds per version, the versions taking turns round by round."""
    rounds: dict[str, list[dict[str, float]]] = {v.name: [] for v in versions}
    for _ in range(plan.rounds):
        for version in versions:
            rounds[version.name].append(version.run("read", plan))
    return {
        name: {read: statistics.median(r[read] for r in runs) for read in runs[0]}
        for name, runs in rounds.items()
    }


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


def rows_for(figures: dict[str, Any], git_bytes: int, plan: Plan) -> list[Row]:
    """The table: this version against the baseline, and the history against git."""
    now, raw = figures["packed"], figures["raw"]
    rows = [
        Row(
            f"build: {plan.commits:,} commits of 100 memories (add_atoms + commit)",
            fmt_seconds(now["build"]["seconds"]),
            f"raw: {fmt_seconds(raw['build']['seconds'])}",
            now["build"]["seconds"] / raw["build"]["seconds"],
            "≈ 1",
        ),
        Row(
            f"ingest {plan.commits * 100:,} memories in one commit (add_atoms + commit),"
            f" best of {INGEST_RUNS}",
            fmt_seconds(now["build"]["ingest"]),
            f"raw: {fmt_seconds(raw['build']['ingest'])}",
            now["build"]["ingest"] / raw["build"]["ingest"],
            "≈ 1",
        ),
        Row(
            f"small commit on the built history (one new memory; median of {SMALL_COMMITS})",
            fmt_seconds(now["build"]["small commit"]),
            f"raw: {fmt_seconds(raw['build']['small commit'])}",
            now["build"]["small commit"] / raw["build"]["small commit"],
            "≈ 1",
        ),
        Row(
            "objects table after the build",
            fmt_bytes(now["gc"]["objects before"]),
            f"raw: {fmt_bytes(raw['gc']['objects before'])}",
            now["gc"]["objects before"] / raw["gc"]["objects before"],
        ),
        Row(
            "gc (this version: collect, train the atom dictionary, repack)",
            fmt_seconds(now["gc"]["seconds"]),
            f"raw (collect only): {fmt_seconds(raw['gc']['seconds'])}",
            now["gc"]["seconds"] / raw["gc"]["seconds"],
        ),
        Row(
            "objects table after gc",
            fmt_bytes(now["gc"]["objects"]),
            f"raw: {fmt_bytes(raw['gc']['objects'])}",
            now["gc"]["objects"] / raw["gc"]["objects"],
        ),
        Row(
            "the history on disk after gc (objects table) against git's packed objects",
            fmt_bytes(now["gc"]["objects"]),
            f"git gc: {fmt_bytes(git_bytes)}",
            now["gc"]["objects"] / git_bytes,
            "≤ 1.5",
        ),
        Row(
            "the whole .contextfs folder after gc (with the full-text index)",
            fmt_bytes(now["gc"]["disk"]),
            f"raw: {fmt_bytes(raw['gc']['disk'])}",
            now["gc"]["disk"] / raw["gc"]["disk"],
        ),
    ]
    for stage, label in (("reads", "before gc"), ("reads after gc", "after gc")):
        for name, seconds in now[stage].items():
            rows.append(
                Row(
                    f"{name}, {label}",
                    fmt_seconds(seconds),
                    f"raw: {fmt_seconds(raw[stage][name])}",
                    seconds / raw[stage][name],
                    "≤ 1.2",
                )
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run both versions and git, then write the RESULTS.md section."""
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["--child"]:
        step, folder, commits = args_in[1], Path(args_in[2]), int(args_in[3])
        print(json.dumps(child(step, folder, commits)))
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
        versions = [
            Version("raw", baseline_source(plan.baseline, work / "baseline"), work / "raw"),
            Version("packed", HERE.parent / "src", work / "packed"),
        ]
        progress(f"git: {plan.commits:,} commits")
        git_bytes, git_seconds = git_twin(plan.commits, work)
        for version in versions:
            progress(f"{version.name}: building {plan.commits:,} commits")
            version.figures["build"] = version.run("build", plan)
        progress(f"reads, {plan.rounds} rounds, the versions taking turns")
        for name, medians in interleaved_reads(versions, plan).items():
            next(v for v in versions if v.name == name).figures["reads"] = medians
        for version in versions:
            progress(f"{version.name}: gc")
            version.figures["gc"] = version.run("gc", plan)
        progress(f"reads after gc, {plan.rounds} rounds")
        for name, medians in interleaved_reads(versions, plan).items():
            next(v for v in versions if v.name == name).figures["reads after gc"] = medians
    figures = {version.name: version.figures for version in versions}
    report.rows = rows_for(figures, git_bytes, plan)
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
        "The objects table: the pages SQLite gives it (`dbstat`), with the compression"
        " dictionaries; the folder adds the full-text index built by the first query, and"
        " the reflog.",
        "Reads: each round runs in a new child interpreter per version, the two versions"
        " taking turns, so drift of the machine falls on both; each read on a freshly"
        " opened `Repository` (its tree cache and the decoded-base cache empty; the OS page"
        " cache warm); medians over the rounds. `context` runs on one open repository"
        " after a first query that indexes and loads the tokenizer: the median of the"
        " seven queries' times.",
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
