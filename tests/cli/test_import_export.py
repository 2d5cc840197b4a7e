"""``import`` and ``export``: exact round trips, and a large import in one step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from contextfs.model.objects import MemoryAtom, MemoryMolecule
from contextfs.model.types import Kind, TypeSignature
from contextfs.repo import Repository

from .conftest import Cli

SAMPLE: list[dict[str, object]] = [
    {"content": "The user prefers concise answers."},
    {
        "content": "Deploys are frozen on Fridays.",
        "type": "Policy",
        "relevance": 0.3,
        "source": "ops-handbook",
        "tags": ["ops", "deploy"],
        "timestamp": "2024-02-03T04:05:06.5+02:00",
        "abstract": "No Friday deploys",
        "overview": "Ops froze Friday deploys after an incident.",
    },
    {"content": "Naive times are UTC.", "timestamp": "2023-07-01T10:00:00"},
    {"content": "ünïcödé\nand a second line", "type": "Dict[String, List[Int]]"},
    {"content": "Constrained", "type": ["Fact", 1, [], ["verified"]], "relevance": 0},
]


def write_jsonl(path: Path, records: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def snapshot(folder: Path) -> list[MemoryAtom | MemoryMolecule]:
    with Repository.open(folder) as repo:
        return repo.snapshot()


def test_import_stages_and_commits(repo_run: Cli) -> None:
    write_jsonl(repo_run.folder / "in.jsonl", SAMPLE)
    result: Any = repo_run.json("import", "in.jsonl", "--commit", "-m", "Import sample")
    assert len(result["ids"]) == len(SAMPLE)
    log: Any = repo_run.json("log")
    assert log[0]["id"] == result["commit"]
    assert log[0]["summary"] == "Import sample"
    atoms = {m.content: m for m in snapshot(repo_run.folder) if isinstance(m, MemoryAtom)}
    policy = atoms["Deploys are frozen on Fridays."]
    assert policy.relevance_score == 0.3
    assert policy.tags == ("deploy", "ops")
    assert policy.timestamp.isoformat() == "2024-02-03T02:05:06.500000+00:00"
    assert atoms["Naive times are UTC."].timestamp.isoformat() == "2023-07-01T10:00:00+00:00"
    constrained = atoms["Constrained"].type_sig
    assert constrained == TypeSignature("Fact", Kind.ARROW, (), ("verified",))


def test_import_plain_output_without_commit(repo_run: Cli) -> None:
    write_jsonl(repo_run.folder / "in.jsonl", SAMPLE[:2])
    assert repo_run("import", "in.jsonl").stdout == "Staged 2 memories from in.jsonl\n"
    repo_run.fails(4, "log")  # nothing committed yet
    assert len(repo_run.json("status")["changes"]) == 2


def test_export_round_trips_exactly(repo_run: Cli, tmp_path: Path) -> None:
    write_jsonl(repo_run.folder / "in.jsonl", SAMPLE)
    imported: Any = repo_run.json("import", "in.jsonl", "--commit")
    repo_run("export", "-o", "out.jsonl")
    exported = (repo_run.folder / "out.jsonl").read_text(encoding="utf-8")
    assert exported == repo_run("export", "HEAD").stdout
    records = [json.loads(line) for line in exported.splitlines()]
    assert sorted(r["id"] for r in records) == sorted(imported["ids"])
    assert all(r["timestamp"].endswith("Z") for r in records)

    # Into a second repository: same ids, same entries, and the same export again.
    repo_run("init", "copy")
    second: Any = repo_run.json("--repo", "copy", "import", "out.jsonl", "--commit", "-m", "copy")
    assert sorted(second["ids"]) == sorted(imported["ids"])
    assert snapshot(repo_run.folder / "copy") == snapshot(repo_run.folder)
    assert repo_run("--repo", "copy", "export").stdout == exported
    # The snapshots are equal, so their Merkle roots are too.
    first_log: Any = repo_run.json("log", "-n", "1")
    copy_log: Any = repo_run.json("--repo", "copy", "log", "-n", "1")
    assert first_log[0]["snapshot"] == copy_log[0]["snapshot"]


def test_export_an_older_revision_and_molecules_note(repo_run: Cli) -> None:
    repo_run("add", "old")
    repo_run("commit", "-m", "one")
    with Repository.open(repo_run.folder) as repo:
        atom = MemoryAtom("part of a molecule", TypeSignature("String"))
        repo.add_molecule(MemoryMolecule((atom,)))
        repo.commit("two", author="tester")
    lines = repo_run("export", "HEAD~1").stdout.splitlines()
    assert [json.loads(line)["content"] for line in lines] == ["old"]
    result = repo_run("export")
    assert len(result.stdout.splitlines()) == 2
    assert result.stderr == "note: 1 molecule(s) not exported (their atoms are)\n"


def test_import_from_stdin(repo_run: Cli) -> None:
    result: Any = repo_run.json("import", "-", input='{"content": "from a pipe"}\n')
    assert len(result["ids"]) == 1
    assert result["commit"] is None


def test_twenty_thousand_line_import(repo_run: Cli) -> None:
    count = 20_000
    path = repo_run.folder / "big.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            record: dict[str, object] = {
                "content": f"Observation {n}: build {n % 97} took {n % 13} minutes."
            }
            if n % 3 == 0:
                record.update(type="Metric", relevance=(n % 100) / 100, tags=[f"t{n % 5}"])
            out.write(json.dumps(record) + "\n")
    result = repo_run("import", "big.jsonl", "--commit", "-m", "bulk")
    assert result.stdout.startswith(f"Staged {count} memories from big.jsonl\n")
    assert "staging" in result.stderr  # a progress bar for a file this large
    with Repository.open(repo_run.folder) as repo:
        assert repo.count() == count
        (info,) = repo.log(limit=1)
        assert info.commit.summary == "bulk"


def test_large_bad_import_stages_nothing(repo_run: Cli) -> None:
    path = repo_run.folder / "big.jsonl"
    lines = [json.dumps({"content": f"m{n}"}) for n in range(12_000)]
    lines[11_999] = '{"content": "last", "type": "Bad[["}'
    path.write_text("\n".join(lines))
    before = repo_run.state()
    line = repo_run.fails(5, "import", "big.jsonl")
    assert line.startswith("error: big.jsonl: line 12000: invalid type signature 'Bad[['")
    assert repo_run.state() == before
