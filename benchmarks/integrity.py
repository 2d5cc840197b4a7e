"""Integrity benchmarks (issue 4): Merkle roots, commit roots at scale, proof sizes.

One command: ``.venv/bin/python benchmarks/integrity.py [--quick]``. It writes the
section "integrity" of ``benchmarks/RESULTS.md`` (see ``benchmarks/README.md``).

Measured, side by side in one run:

1. the RFC 6962 root of 1,000,000 leaves against the floor: a plain loop of
   2,000,000 ``hashlib.sha256`` calls (a tree of n leaves needs 2n - 1 hashes);
2. a commit that changes 10 atoms on snapshots of 10,000, 100,000 and
   1,000,000 atoms (SQLite, durable): the goal is under 50 ms and flat;
3. membership and non-membership proofs at 1,000,000 atoms: size and the time
   a stand-alone verifier takes.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    RESULTS,
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
from contextfs import MemoryAtom, Repository, TypeSignature
from contextfs.integrity.proofs import verify
from contextfs.model.merkle import root
from contextfs.model.timeutil import from_micros

NOTE = TypeSignature("Note")
YEAR = 365 * 86_400 * 1_000_000
EPOCH = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def atoms_for(corpus: Corpus, start: int, count: int, rng: random.Random) -> list[MemoryAtom]:
    """Real-text atoms with seeded relevance and times spread over a year."""
    return [
        MemoryAtom(
            text,
            NOTE,
            from_micros(EPOCH + rng.randrange(YEAR)),
            "bench",
            round(rng.random(), 3),
        )
        for text in corpus.texts(start, count)
    ]


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
        repo.add_atoms(atoms_for(corpus, start, min(batch, size - start), rng))
    repo.commit(f"{size:,} atoms")
    return repo


def main() -> None:
    """Run every measurement and write the section."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    sizes = [2_000, 20_000] if args.quick else [10_000, 100_000, 1_000_000]
    leaves = 100_000 if args.quick else 1_000_000
    repeats = 10 if args.quick else 30
    report = Report()
    begun = time.perf_counter()
    progress("integrity: Merkle root")
    bench_root(report, leaves)
    corpus = Corpus()
    medians: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="contextfs-integrity-") as scratch:
        for size in sizes:
            rng = random.Random(size)
            progress(f"integrity: building a {size:,}-atom store")
            start = time.perf_counter()
            repo = build(Path(scratch) / f"s{size}", corpus, size, rng)
            progress(f"  built in {fmt_seconds(time.perf_counter() - start)}")
            medians[size] = commit_ten(report, repo, corpus, size, repeats, rng)
            if size == sizes[-1]:
                proofs(report, repo, corpus, size, rng)
            repo.close()
    small, large = medians[sizes[0]], medians[sizes[-1]]
    report.add(
        Row(
            f"2. commit of 10 changes: {sizes[-1]:,} / {sizes[0]:,} atoms, medians",
            f"{fmt_seconds(large)} / {fmt_seconds(small)}",
            "",
            large / small,
            "≈ 1 (flat)",
        )
    )
    elapsed = time.perf_counter() - begun
    command = ".venv/bin/python benchmarks/integrity.py" + (" --quick" if args.quick else "")
    body = [
        "## Integrity (issue 4)",
        "",
        f"- Command: `{command}`; whole run {elapsed:.0f} s",
        *(f"- {name}: {value}" for name, value in machine()),
        "",
        markdown_table(report.rows),
        "",
        "Notes:",
        "",
        *(f"- {note}" for note in report.notes),
    ]
    write_section(RESULTS, "integrity", "\n".join(body))
    progress(f"integrity: done in {elapsed:.0f} s; wrote {RESULTS}")


def commit_ten(
    report: Report, repo: Repository, corpus: Corpus, size: int, repeats: int, rng: random.Random
) -> float:
    """Item 2: ``stage`` 10 atoms with new relevance, then ``commit``; durable, timed together."""
    times = []
    for step in range(repeats):
        picks = rng.sample(range(size), 10)
        changed = [
            MemoryAtom(
                corpus.text(i),
                NOTE,
                from_micros(EPOCH + rng.randrange(YEAR)),
                "bench",
                round(rng.random(), 3),
            )
            for i in picks
        ]
        start = time.perf_counter()
        repo.stage(add=changed)
        repo.commit(f"change 10 atoms, step {step}")
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    report.add(
        Row(
            f"2. commit of 10 changed atoms on {size:,} atoms (median of {repeats}; p95)",
            f"{fmt_seconds(median)}; p95 {fmt_seconds(percentile(times, 0.95))}",
            "",
            None,
            "< 50 ms",
        )
    )
    return median


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
        assert all(verify(p, commit) for p in built)
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


if __name__ == "__main__":
    main()
