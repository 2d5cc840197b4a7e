"""``import --from`` rules files, mem0 and LangGraph, and ``export --to markdown``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from langgraph.store.sqlite import SqliteStore

from contextfs.model.objects import MemoryAtom
from contextfs.repo import Repository

from .conftest import Cli

AGENTS_MD = """\
# Conventions

- Use type hints everywhere.
- Keep functions short.

## Testing

- Run `pytest -q` before pushing.
"""


def atoms(folder: Path, revision: str = "HEAD") -> dict[str, MemoryAtom]:
    with Repository.open(folder) as repo:
        return {m.content: m for m in repo.snapshot(revision) if isinstance(m, MemoryAtom)}


def log(folder: Path) -> list[tuple[str, str]]:
    with Repository.open(folder) as repo:
        return [(info.commit.author, info.commit.summary) for info in repo.log()]


def test_a_rules_file_is_one_commit_and_importing_it_unchanged_is_a_no_op(repo_run: Cli) -> None:
    (repo_run.folder / "AGENTS.md").write_text(AGENTS_MD)
    out = repo_run("import", "--from", "agents-md", "AGENTS.md").stdout
    assert out.startswith("AGENTS.md: 3 added or updated, 0 removed, 0 unchanged [main ")
    held = atoms(repo_run.folder)
    assert {c: (a.tags, a.source_hash, str(a.type_sig)) for c, a in held.items()} == {
        "Use type hints everywhere.": (("Conventions",), "AGENTS.md", "Instruction"),
        "Keep functions short.": (("Conventions",), "AGENTS.md", "Instruction"),
        "Run `pytest -q` before pushing.": (("Testing",), "AGENTS.md", "Instruction"),
    }
    assert log(repo_run.folder)[0] == ("tester", "Import AGENTS.md: 3 added or updated, 0 removed")

    head = repo_run.state()
    again = repo_run("import", "--from", "markdown", str(repo_run.folder / "AGENTS.md"))
    assert again.stdout == (  # messages name the file as given; the source is one
        f"{repo_run.folder / 'AGENTS.md'}: up to date (0 added or updated, 0 removed,"
        " 3 unchanged); nothing to commit\n"
    )
    assert repo_run.state() == head


def test_a_changed_file_updates_adds_and_removes_only_its_own_memories(repo_run: Cli) -> None:
    rules = repo_run.folder / "CLAUDE.md"
    rules.write_text(AGENTS_MD)
    repo_run("add", "A memory of my own", "--tag", "Testing")
    repo_run("commit", "-m", "mine")
    repo_run("import", "--from", "claude-md", "CLAUDE.md")
    edited = AGENTS_MD.replace("- Keep functions short.\n", "").replace("## Testing", "## QA")
    rules.write_text(edited + "- Document every public function.\n")
    result: Any = repo_run.json("import", "--from", "claude-md", "CLAUDE.md")
    assert [(len(r["added"]), len(r["removed"]), r["unchanged"]) for r in result] == [(2, 1, 1)]
    held = atoms(repo_run.folder)
    assert set(held) == {
        "A memory of my own",
        "Use type hints everywhere.",
        "Run `pytest -q` before pushing.",
        "Document every public function.",
    }
    assert held["Run `pytest -q` before pushing."].tags == ("QA",)
    assert held["A memory of my own"].source_hash == ""


def test_a_memory_already_held_from_another_source_stays_with_it(repo_run: Cli) -> None:
    (repo_run.folder / "CLAUDE.md").write_text("- Shared rule\n- Only in Claude\n")
    (repo_run.folder / "GEMINI.md").write_text("- Shared rule\n- Only in Gemini\n")
    repo_run("import", "--from", "markdown", "CLAUDE.md")
    out = repo_run("import", "--from", "markdown", "GEMINI.md").stdout
    assert "1 added or updated, 0 removed, 0 unchanged, 1 already held from other sources" in out
    assert atoms(repo_run.folder)["Shared rule"].source_hash == "CLAUDE.md"
    head = repo_run.state()
    repo_run("import", "--from", "markdown", "CLAUDE.md", "GEMINI.md")  # no ping-pong
    assert repo_run.state() == head


def test_a_purged_memory_is_not_brought_back(repo_run: Cli) -> None:
    (repo_run.folder / "CLAUDE.md").write_text("- Secret: the staging password is hunter2\n")
    result: Any = repo_run.json("import", "--from", "markdown", "CLAUDE.md")
    secret = result[0]["added"][0]
    repo_run("purge", secret[:12], "--reason", "leaked", "--yes")
    repo_run("rm", secret[:12])
    repo_run("commit", "-m", "forget it")
    again: Any = repo_run.json("import", "--from", "markdown", "CLAUDE.md")
    assert (again[0]["purged"], again[0]["commit"]) == (1, None)


def test_every_source_is_checked_before_the_first_commit(repo_run: Cli) -> None:
    (repo_run.folder / "good.md").write_text("- fine\n")
    (repo_run.folder / "bad.mdc").write_text("---\ndescription: broken\n- never closed\n")
    before = repo_run.state()
    line = repo_run.fails(5, "import", "--from", "cursor", "good.md", "bad.mdc")
    assert line == (
        "error: bad.mdc:1: the front matter opened here is never closed; nothing was imported"
    )
    assert repo_run.state() == before


def test_bad_bytes_and_bad_json_name_the_line(repo_run: Cli) -> None:
    (repo_run.folder / "latin1.md").write_bytes(b"- ok\n- caf\xe9\n")
    assert repo_run.fails(5, "import", "--from", "markdown", "latin1.md") == (
        "error: latin1.md:2: not UTF-8 text; nothing was imported"
    )
    (repo_run.folder / "mem0.json").write_text('{"results": [\n  {"memory": "x"},\n  {}\n]}')
    assert repo_run.fails(5, "import", "--from", "mem0", "mem0.json") == (
        "error: mem0.json:3: memory 2 has no text in 'memory'; nothing was imported"
    )
    (repo_run.folder / "huge.md").write_text("- " + "x" * 2_000_000 + "\n")
    assert repo_run.fails(5, "import", "--from", "markdown", "huge.md").startswith(
        "error: huge.md:1: content is 2000000 characters; the limit is"
    )


def test_staged_changes_are_refused_not_committed_with_the_import(repo_run: Cli) -> None:
    (repo_run.folder / "CLAUDE.md").write_text("- a rule\n")
    repo_run("add", "half-done work")
    before = repo_run.state()
    line = repo_run.fails(6, "import", "--from", "markdown", "CLAUDE.md")
    assert "staged changes" in line
    assert repo_run.state() == before


def test_dry_run_says_what_would_change_and_changes_nothing(repo_run: Cli) -> None:
    (repo_run.folder / "CLAUDE.md").write_text(AGENTS_MD)
    before = repo_run.state()
    out = repo_run("import", "--from", "markdown", "CLAUDE.md", "--dry-run").stdout
    assert out == "CLAUDE.md: would import: 3 added or updated, 0 removed, 0 unchanged\n"
    assert repo_run.state() == before


def test_usage_errors(run: Cli) -> None:
    run("init")
    (run.folder / "x.md").write_text("- x\n")
    assert "--from markdown reads files" in run.fails(2, "import", "--from", "markdown", "-")
    assert "--commit is for jsonl" in run.fails(
        2, "import", "--from", "markdown", "x.md", "--commit"
    )
    assert "does not exist" in run.fails(2, "import", "--from", "mem0", "missing.json")
    assert "--from jsonl takes one file" in run.fails(2, "import", "a.jsonl", "b.jsonl")
    assert "--budget is for --to markdown" in run.fails(2, "export", "--budget", "10")


def test_mem0_memories_keep_their_ids_as_anchors(repo_run: Cli) -> None:
    export = {
        "results": [
            {"id": "m-1", "memory": "Prefers tea", "user_id": "alex", "categories": ["food"]},
            {"id": "m-2", "memory": "Works remotely", "user_id": "alex"},
        ]
    }
    (repo_run.folder / "mem0.json").write_text(json.dumps(export))
    repo_run("import", "--from", "mem0", "mem0.json")
    held = atoms(repo_run.folder)
    assert held["Prefers tea"].source_hash == "mem0.json#m-1"
    assert held["Prefers tea"].tags == ("food", "user:alex")
    export["results"].pop()
    (repo_run.folder / "mem0.json").write_text(json.dumps(export))
    result: Any = repo_run.json("import", "--from", "mem0", "mem0.json")
    assert (len(result[0]["removed"]), result[0]["unchanged"]) == (1, 1)
    assert set(atoms(repo_run.folder)) == {"Prefers tea"}


def test_a_langgraph_sqlite_store_is_read_through_its_own_api(repo_run: Cli) -> None:
    path = repo_run.folder / "agent-store.sqlite"
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    store = SqliteStore(conn)
    store.setup()
    store.put(("users", "ada"), "tone", {"content": "Ada likes short answers"})
    store.put(("users", "ada"), "city", {"city": "Lisbon"})
    conn.close()
    mtime = path.stat().st_mtime_ns
    result: Any = repo_run.json("import", "--from", "langgraph", "agent-store.sqlite")
    assert len(result[0]["added"]) == 2
    held = atoms(repo_run.folder)
    assert held["Ada likes short answers"].source_hash == (
        "langgraph:agent-store.sqlite#users/ada/tone"
    )
    assert held['{"city": "Lisbon"}'].tags == ("users/ada",)
    assert path.stat().st_mtime_ns == mtime  # opened read-only
    (repo_run.folder / "not-a-store.sqlite").write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    line = repo_run.fails(5, "import", "--from", "langgraph", "not-a-store.sqlite")
    assert line.startswith("error: not-a-store.sqlite: not a LangGraph SQLite store")


def test_export_to_markdown_is_budgeted_best_first_and_reads_back(repo_run: Cli) -> None:
    for text, relevance, tag in [
        ("Deploys happen on Tuesdays.", "0.9", "Ops"),
        ("The user prefers short answers.", "1.0", "Style"),
        ("Rollbacks need two approvals.", "0.5", "Ops"),
        ("Use British spelling.", "0.2", "Style"),
    ]:
        repo_run("add", text, "--relevance", relevance, "--tag", tag)
    repo_run("commit", "-m", "four")
    full = repo_run("export", "--to", "markdown").stdout
    assert full.split("\n", 1)[1] == (
        "\n## Style\n\n- The user prefers short answers.\n- Use British spelling.\n"
        "\n## Ops\n\n- Deploys happen on Tuesdays.\n- Rollbacks need two approvals.\n"
    )
    result = repo_run("export", "--to", "markdown", "--budget", "35", "-o", "AGENTS.md")
    written = (repo_run.folder / "AGENTS.md").read_text()
    assert written.split("\n", 1)[1] == "\n## Style\n\n- The user prefers short answers.\n"
    assert result.stderr.startswith("note: wrote 1 of 4 memories in ")
    assert int(result.stderr.split(" tokens")[0].rsplit(" ", 1)[1]) <= 35
    # What does not fit is skipped, and smaller ones after it still go in: the best that fit.
    roomier = repo_run("export", "--to", "markdown", "--budget", "40").stdout
    assert roomier.split("\n", 1)[1] == (
        "\n## Style\n\n- The user prefers short answers.\n- Use British spelling.\n"
    )
    assert "does not fit even the file's header" in repo_run.fails(
        5, "export", "--to", "markdown", "--budget", "5"
    )

    (repo_run.folder / "ALL.md").write_text(full)
    out: Any = repo_run.json("import", "--from", "markdown", "ALL.md")
    assert (out[0]["elsewhere"], out[0]["commit"]) == (4, None)  # the same memories
