"""Integrity benchmarks (issue 4): Merkle roots, commit roots at scale, proof sizes.

One command: ``.venv/bin/python benchmarks/integrity.py [--quick]``. It writes the
section "integrity" of ``benchmarks/RESULTS.md`` (``--output`` to write elsewhere;
see ``benchmarks/README.md``).

Measured, side by side in one run:

1. the RFC 6962 root of 1,000,000 leaves against the floor: a plain loop of
   2,000,000 ``hashlib.sha256`` calls (a tree of n leaves needs 2n - 1 hashes);
2. a commit that changes 10 atoms on snapshots of 10,000, 100,000 and
   1,000,000 atoms (SQLite, durable): the goal is under 50 ms and flat;
3. membership and non-membership proofs at 1,000,000 atoms: size and the time
   a stand-alone verifier takes.
"""

from __future__ import annotations

import hashlib
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    Corpus,
    Plans,
    Report,
    Rounds,
    Row,
    fmt_bytes,
    fmt_seconds,
    machine_lines,
    markdown_table,
    progress,
    publish_section,
)
from contextfs import MemoryAtom, Repository, TypeSignature, verify_proof
from contextfs.model.merkle import root
from contextfs.model.timeutil import from_micros

SECTION = "integrity"
HEADING = "## Integrity (issue 4)"
NOTE = TypeSignature("Note")
YEAR = 365 * 86_400 * 1_000_000
EPOCH = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


@dataclass(frozen=True)
class Plan:
    """How much to measure."""

    sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)  # stores of item 2; item 3 on the last
    leaves: int = 1_000_000  # item 1
    repeats: int = 30  # 10-change commits per store


PLANS = Plans(
    script="integrity.py",
    full=Plan(),
    quick=Plan(sizes=(2_000, 20_000), leaves=100_000, repeats=10),
    quick_help="small sizes, for a smoke run",
)


def note_atom(text: str, rng: random.Random) -> MemoryAtom:
    """A ``Note`` with a seeded time within a year and a seeded relevance."""
    when = from_micros(EPOCH + rng.randrange(YEAR))
    return MemoryAtom(text, NOTE, when, "bench", round(rng.random(), 3))


def bench_root(report: Report, leaves_count: int) -> None:
    """Item 1: our RFC 6962 root against 2n sha256 calls."""
    leaves = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(leaves_count)]
    start = time.perf_counter()
    ours = root(leaves)
    spent = time.perf_counter() - start
    start = time.perf_counter()
    data = b"\x00" * 65
    for _ in range(2 * leaves_count):
        hashlib.sha256(data).digest()
    floor = time.perf_counter() - start
    assert len(ours) == 32
    report.add(
        Row(
            f"1. RFC 6962 root of {leaves_count:,} leaves",
            fmt_seconds(spent),
            f"floor, {2 * leaves_count:,} sha256 calls: {fmt_seconds(floor)}",
            spent / floor,
            "≈ 1 (the floor)",
        )
    )


def build(path: Path, corpus: Corpus, size: int, rng: random.Random) -> Repository:
    """A SQLite repository with ``size`` atoms in one commit, ingested in batches."""
    repo = Repository.init(path)
    batch = 100_000
    for start in range(0, size, batch):
        texts = corpus.texts(start, min(batch, size - start))
        repo.add_atoms([note_atom(text, rng) for text in texts])
    repo.commit(f"{size:,} atoms")
    return repo


def commit_ten(
    report: Report, repo: Repository, corpus: Corpus, size: int, repeats: int, rng: random.Random
) -> float:
    """Item 2: ``stage`` 10 atoms with new relevance, then ``commit``; durable, timed together."""
    times = Rounds()
    for step in range(repeats):
        picks = rng.sample(range(size), 10)
        changed = [note_atom(corpus.text(i), rng) for i in picks]
        start = time.perf_counter()
        repo.stage(add=changed)
        repo.commit(f"change 10 atoms, step {step}")
        times.add(time.perf_counter() - start)
    report.add(
        Row(
            f"2. commit of 10 changed atoms on {size:,} atoms (median of {repeats}; p95)",
            f"{fmt_seconds(times.median)}; p95 {fmt_seconds(times.p95)}",
            "",
            None,
            "< 50 ms",
        )
    )
    return times.median


def proofs(report: Report, repo: Repository, corpus: Corpus, size: int, rng: random.Random) -> None:
    """Item 3: proof sizes and stand-alone verification time."""
    commit = repo.resolve("HEAD")
    members = [MemoryAtom(corpus.text(i), NOTE).content_hash for i in rng.sample(range(size), 200)]
    absent = [hashlib.sha256(f"absent {i}".encode()).hexdigest() for i in range(200)]
    for kind, refs in (("membership", members), ("non-membership", absent)):
        built = [repo.prove(ref) for ref in refs]
        assert all(p.kind == kind for p in built)
        sizes = [len(p.to_json()) for p in built]
        start = time.perf_counter()
        assert all(verify_proof(p, commit) for p in built)
        per_proof = (time.perf_counter() - start) / len(built)
        levels = statistics.mean(len(p.path) for p in built)
        report.add(
            Row(
                f"3. {kind} proof at {size:,} atoms: JSON size median (max); levels",
                f"{fmt_bytes(statistics.median(sizes))} ({fmt_bytes(max(sizes))}); {levels:.1f}",
                f"verify: {fmt_seconds(per_proof)} per proof",
            )
        )
    report.notes.append(
        "Proofs: 200 random atoms and 200 random absent ids; the verifier is "
        "`contextfs.integrity.proofs.verify`, which uses only hashlib and the RFC 6962 "
        "functions; JSON is the `prove --json` format (hex), about twice the raw size."
    )


def bench_stores(report: Report, plan: Plan) -> None:
    """Items 2 and 3: build each store, commit 10 changes on it; proofs on the largest."""
    corpus = Corpus()
    medians: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="contextfs-integrity-") as scratch:
        for size in plan.sizes:
            rng = random.Random(size)
            progress(f"integrity: building a {size:,}-atom store")
            start = time.perf_counter()
            repo = build(Path(scratch) / f"s{size}", corpus, size, rng)
            progress(f"  built in {fmt_seconds(time.perf_counter() - start)}")
            medians[size] = commit_ten(report, repo, corpus, size, plan.repeats, rng)
            if size == plan.sizes[-1]:
                proofs(report, repo, corpus, size, rng)
            repo.close()
    small, large = medians[plan.sizes[0]], medians[plan.sizes[-1]]
    report.add(
        Row(
            f"2. commit of 10 changes: {plan.sizes[-1]:,} / {plan.sizes[0]:,} atoms, medians",
            f"{fmt_seconds(large)} / {fmt_seconds(small)}",
            "",
            large / small,
            "≈ 1 (flat)",
        )
    )


def main(argv: list[str] | None = None) -> int:
    """Run every measurement and write the section."""
    args, plan = PLANS.choose(PLANS.parser(__doc__), argv)
    report = Report()
    begun = time.perf_counter()
    progress("integrity: Merkle root")
    bench_root(report, plan.leaves)
    bench_stores(report, plan)
    elapsed = time.perf_counter() - begun
    body = [
        HEADING,
        "",
        f"- Command: `{PLANS.command(args)}`; whole run {elapsed:.0f} s",
        *machine_lines(),
        "",
        markdown_table(report.rows),
        "",
        "Notes:",
        "",
        *(f"- {note}" for note in report.notes),
    ]
    publish_section(args.output, SECTION, HEADING, "\n".join(body), tables=[], wall=elapsed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
