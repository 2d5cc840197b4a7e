"""Garbage collection (issue 18): a store with 10,000 abandoned stages, collected.

Run from the project root:

    .venv/bin/python benchmarks/gc.py            # 10,000 abandoned stages on 20,000 memories
    .venv/bin/python benchmarks/gc.py --quick    # 1,000 on 2,000, a smoke run

One SQLite repository: ``memories`` real paragraphs (``pydoc_data.topics``)
committed in 100 commits, then ``stages`` times an agent stages a memory it
then throws away (``add_atoms`` then ``reset --hard``: each leaves a stage
tree, its new leaves and path, and the atom, reachable from nothing). Then,
side by side on that store:

* ``repo.gc(grace_seconds=0, dry_run=True)``: the reachability walk alone;
* ``repo.verify()``, the other pass over every object (the floor a full
  collection is compared with);
* ``repo.gc(grace_seconds=0)``: the walk, the deletes (with the atoms' index
  rows), the reflog expiry, the repack (the atom dictionary, older tree
  versions as deltas) and SQLite's ``VACUUM``; objects and bytes removed,
  the store file before and after.

The report goes to the "gc" section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import (
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
    string_atoms,
    subsection,
    tree_bytes,
)
from contextfs import MemoryAtom, Repository, TypeSignature

SECTION = "gc"
HEADING = "## Garbage collection (issue 18)"
COMMITS = 100


@dataclass(frozen=True)
class Plan:
    """How many memories are kept and how many stages abandoned."""

    memories: int = 20_000
    stages: int = 10_000


PLANS = Plans(
    script="gc.py",
    full=Plan(),
    quick=Plan(2_000, 1_000),
    quick_help="1,000 abandoned stages on 2,000 memories",
    options={"memories": "memories committed (20000)", "stages": "stages abandoned (10000)"},
)


def build(plan: Plan, folder: Path) -> float:
    """The store: the memories in 100 commits, then the abandoned stages; seconds taken."""
    corpus = Corpus()
    rng = random.Random(18)
    start = time.perf_counter()
    per_commit = max(1, plan.memories // COMMITS)
    with Repository.init(folder, embedder="none") as repo:
        for low in range(0, plan.memories, per_commit):
            high = min(low + per_commit, plan.memories)
            repo.add_atoms(list(string_atoms(corpus, rng, low, high, year_seconds=365 * 86_400)))
            repo.commit(f"memories {low}-{high}")
        kind = TypeSignature("Note")
        for n in range(plan.stages):
            text = f"{corpus.text(n)} (draft {n}, thrown away)"
            repo.add_atoms([MemoryAtom(text, kind)])
            repo.reset("HEAD", mode="hard")
            if n % 2000 == 1999:
                progress(f"  {n + 1:,} stages abandoned")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Build the store, collect it, and write the RESULTS.md section."""
    parser = PLANS.parser(__doc__)
    args, plan = PLANS.choose(parser, argv)
    report = Report()
    report.note_load()
    begun = time.perf_counter()
    measured = measured_version()
    with tempfile.TemporaryDirectory(prefix="contextfs-gc-") as temp:
        folder = Path(temp) / "store"
        folder.mkdir()
        progress(f"building {plan.memories:,} memories and {plan.stages:,} abandoned stages")
        built = build(plan, folder)
        before = tree_bytes(folder / ".contextfs")
        with Repository.open(folder) as repo:
            start = time.perf_counter()
            dry = repo.gc(grace_seconds=0, dry_run=True)
            walk = time.perf_counter() - start
            start = time.perf_counter()
            verified = repo.verify()
            verify = time.perf_counter() - start
            assert verified.ok
            start = time.perf_counter()
            done = repo.gc(grace_seconds=0)
            collect = time.perf_counter() - start
            assert repo.verify().ok
        after = tree_bytes(folder / ".contextfs")
    removed = ", ".join(f"{n:,} {kind}" for kind, n in done.removed.items())
    report.rows = [
        Row(
            f"build: {plan.memories:,} memories in {COMMITS} commits, {plan.stages:,} "
            "stages abandoned",
            fmt_seconds(built),
        ),
        Row(
            "gc --dry-run (the reachability walk) / verify (every object re-hashed)",
            fmt_seconds(walk),
            f"verify: {fmt_seconds(verify)}",
            walk / verify,
        ),
        Row(
            f"gc: removed {removed} ({fmt_bytes(done.removed_bytes)}); kept {done.kept:,};"
            f" repacked {done.repacked:,}",
            fmt_seconds(collect),
            f"verify: {fmt_seconds(verify)}",
            collect / verify,
        ),
        Row(
            "store on disk before / after gc",
            f"{fmt_bytes(before)} / {fmt_bytes(after)}",
            f"reclaimed {fmt_bytes(before - after)}",
            after / before,
        ),
    ]
    for row in report.rows:
        progress(f"  {row.measurement}: {row.contextfs}")
    report.note_load()
    wall = time.perf_counter() - begun
    lines = section_opening(HEADING, "gc.py", PLANS.command(args), measured)
    lines += [report.load_line(), *machine_lines()]
    lines += subsection("Figures", markdown_table(report.rows))
    notes = [
        "Each abandoned stage is `repo.add_atoms([one new memory])` then "
        "`repo.reset('HEAD', mode='hard')`: the stage tree, its changed leaf and path, and "
        "the atom become reachable from nothing (the reflog names commits, not stages).",
        f"The dry run found the same {dry.removed_total:,} objects the collection removed "
        f"({fmt_bytes(dry.removed_bytes)}); the collection also expired "
        f"{done.expired:,} reflog entries (grace 0), repacked (a new dictionary for "
        f"{', '.join(done.dictionaries) or 'nothing'}; {done.repacked:,} objects re-encoded,"
        " older tree versions as deltas of the newer: the objects' stored bytes went from "
        f"{fmt_bytes(done.bytes_before)} to {fmt_bytes(done.bytes_after)}) and ran SQLite's"
        " VACUUM.",
        "Ratios: gc / verify (both pass over every object), and the store's size after / before.",
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
