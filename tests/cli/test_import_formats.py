"""``import --from`` rules files, mem0 and LangGraph, and ``export --to markdown``."""

from __future__ import annotations

import json
import os
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
    assert out.startswith("AGENTS.md: 3 added, 0 updated, 0 removed, 0 unchanged [main ")
    held = atoms(repo_run.folder)
    assert {c: (a.tags, a.source_hash, str(a.type_sig)) for c, a in held.items()} == {
        "Use type hints everywhere.": (("Conventions",), "AGENTS.md", "Instruction"),
        "Keep functions short.": (("Conventions",), "AGENTS.md", "Instruction"),
        "Run `pytest -q` before pushing.": (("Testing",), "AGENTS.md", "Instruction"),
    }
    assert log(repo_run.folder)[0] == ("tester", "Import AGENTS.md: 3 added, 0 updated, 0 removed")

    head = repo_run.state()
    again = repo_run("import", "--from", "markdown", str(repo_run.folder / "AGENTS.md"))
    assert again.stdout == (  # messages name the file as given; the source is one
        f"{repo_run.folder / 'AGENTS.md'}: up to date (0 added, 0 updated, 0 removed,"
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
    assert [
        (len(r["added"]), len(r["updated"]), len(r["removed"]), r["unchanged"]) for r in result
    ] == [(1, 1, 1, 1)]
    held = atoms(repo_run.folder)
    assert set(held) == {
        "A memory of my own",
        "Use type hints everywhere.",
        "Run `pytest -q` before pushing.",
        "Document every public function.",
    }
    assert held["Run `pytest -q` before pushing."].tags == ("QA",)
    assert held["A memory of my own"].source_hash == ""


def test_what_the_format_does_not_carry_survives_a_reimport(repo_run: Cli) -> None:
    (repo_run.folder / "CLAUDE.md").write_text("# Lint\n- Use ruff\n")
    result: Any = repo_run.json("import", "--from", "markdown", "CLAUDE.md")
    atom_id = result[0]["added"][0]
    with Repository.open(repo_run.folder) as repo:
        repo.update_entry(atom_id, relevance=0.2, abstract="lint")
        repo.commit("tune", author="tester")
    head = repo_run.state()
    repo_run("import", "--from", "markdown", "CLAUDE.md")
    assert repo_run.state() == head  # unchanged file: nothing to commit
    (repo_run.folder / "CLAUDE.md").write_text("# Style\n- Use ruff\n")
    repo_run("import", "--from", "markdown", "CLAUDE.md")
    kept = atoms(repo_run.folder)["Use ruff"]
    assert (kept.tags, kept.relevance_score, kept.abstract) == (("Style",), 0.2, "lint")


def test_a_memory_in_two_files_belongs_to_both_until_both_drop_it(repo_run: Cli) -> None:
    (repo_run.folder / "CLAUDE.md").write_text("- Rule one\n- Rule two\n- Rule three\n")
    repo_run("import", "--from", "markdown", "CLAUDE.md")
    (repo_run.folder / "AGENTS.md").write_text("- Rule two\n- Agents only\n")
    (repo_run.folder / "CLAUDE.md").write_text("- Rule one\n- Rule three\n")
    repo_run("import", "--from", "markdown", "AGENTS.md", "CLAUDE.md")
    held = atoms(repo_run.folder)
    assert held["Rule two"].source_hash == "AGENTS.md"  # moved, not lost
    head = repo_run.state()
    repo_run("import", "--from", "markdown", "AGENTS.md", "CLAUDE.md")  # the same again
    assert repo_run.state() == head

    (repo_run.folder / "CLAUDE.md").write_text("- Rule one\n- Rule two\n")
    repo_run("import", "--from", "markdown", "CLAUDE.md")
    assert atoms(repo_run.folder)["Rule two"].source_hash == "AGENTS.md\nCLAUDE.md"
    (repo_run.folder / "AGENTS.md").write_text("- Agents only\n")
    repo_run("import", "--from", "markdown", "AGENTS.md")
    assert atoms(repo_run.folder)["Rule two"].source_hash == "CLAUDE.md"
    (repo_run.folder / "CLAUDE.md").write_text("- Rule one\n")
    repo_run("import", "--from", "markdown", "CLAUDE.md")
    assert "Rule two" not in atoms(repo_run.folder)


def test_a_memory_added_by_hand_is_left_alone(repo_run: Cli) -> None:
    repo_run("add", "Shared  rule", "--type", "Fact")  # another type, other spacing
    repo_run("add", "Hand rule")
    repo_run("commit", "-m", "by hand")
    (repo_run.folder / "CLAUDE.md").write_text("- Shared rule\n- Hand rule\n- Only in Claude\n")
    out = repo_run("import", "--from", "markdown", "CLAUDE.md").stdout
    assert "1 added, 0 updated, 0 removed, 0 unchanged, 2 already held otherwise" in out
    (repo_run.folder / "CLAUDE.md").write_text("")
    repo_run("import", "--from", "markdown", "CLAUDE.md")
    assert set(atoms(repo_run.folder)) == {"Shared  rule", "Hand rule"}


def test_a_name_with_a_hash_is_its_own_source(repo_run: Cli) -> None:
    (repo_run.folder / "notes.md#v2").write_text("- from the hash file\n")
    (repo_run.folder / "notes.md").write_text("- from notes\n")
    repo_run("import", "--from", "markdown", "notes.md#v2", "notes.md")
    head = repo_run.state()
    repo_run("import", "--from", "markdown", "notes.md#v2", "notes.md")
    assert repo_run.state() == head
    assert atoms(repo_run.folder)["from the hash file"].source_hash == "notes.md%23v2"


def test_a_file_that_export_wrote_brings_in_only_what_is_new(repo_run: Cli) -> None:
    rules = repo_run.folder / "AGENTS.md"
    rules.write_text("".join(f"- Rule number {n} of the project\n" for n in range(20)))
    repo_run("import", "--from", "agents-md", "AGENTS.md")
    repo_run("export", "--to", "markdown", "--budget", "60", "-o", "AGENTS.md")
    rules.write_text(rules.read_text() + "- A rule added by hand to the view\n")
    result: Any = repo_run.json("import", "--from", "agents-md", "AGENTS.md")
    assert (len(result[0]["added"]), result[0]["removed"]) == (1, [])
    assert len(atoms(repo_run.folder)) == 21  # what the budget left out is still there


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
    assert out == "CLAUDE.md: would import: 3 added, 0 updated, 0 removed, 0 unchanged\n"
    assert repo_run.state() == before
    repo_run("add", "staged work")  # a dry run reports even with changes staged
    staged = repo_run.state()
    out = repo_run("import", "--from", "markdown", "CLAUDE.md", "--dry-run").stdout
    assert out.startswith("CLAUDE.md: would import: 3 added")
    assert repo_run.state() == staged


def test_usage_errors(run: Cli) -> None:
    run("init")
    (run.folder / "x.md").write_text("- x\n")
    assert "--from markdown reads files" in run.fails(2, "import", "--from", "markdown", "-")
    assert "--commit is for jsonl" in run.fails(
        2, "import", "--from", "markdown", "x.md", "--commit"
    )
    assert "does not exist" in run.fails(2, "import", "--from", "mem0", "missing.json")
    os.mkfifo(run.folder / "pipe.md")
    assert "not a regular file" in run.fails(2, "import", "--from", "markdown", "pipe.md")
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
    assert line.startswith("error: not-a-store.sqlite: not a SQLite database")
    sqlite3.connect(repo_run.folder / "other.sqlite").execute(
        "CREATE TABLE t (x)"
    ).connection.close()
    assert repo_run.fails(5, "import", "--from", "langgraph", "other.sqlite") == (
        "error: other.sqlite: not a LangGraph SQLite store (it has no 'store' table);"
        " nothing was imported"
    )
    busy = sqlite3.connect(path, isolation_level=None)
    busy.execute("BEGIN EXCLUSIVE")
    try:
        line = repo_run.fails(6, "import", "--from", "langgraph", "agent-store.sqlite")
    finally:
        busy.close()
    assert line == "error: agent-store.sqlite: the store is locked by another process; try again"


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
    result = repo_run("export", "--to", "markdown", "--budget", "40", "-o", "AGENTS.md")
    written = (repo_run.folder / "AGENTS.md").read_text()
    # The best first; what does not fit is skipped, and smaller ones after it still go in.
    assert written.split("\n", 1)[1] == (
        "\n## Style\n\n- The user prefers short answers.\n- Use British spelling.\n"
    )
    assert result.stderr.startswith("note: wrote 2 memories in ")
    assert int(result.stderr.split(" tokens")[0].rsplit(" ", 1)[1]) <= 40
    assert "does not fit even the file's header" in repo_run.fails(
        5, "export", "--to", "markdown", "--budget", "5"
    )

    (repo_run.folder / "ALL.md").write_text(full)
    out: Any = repo_run.json("import", "--from", "markdown", "ALL.md")
    assert (out[0]["elsewhere"], out[0]["commit"]) == (4, None)  # the same memories


def test_export_escapes_what_markdown_would_misread_and_fills_the_budget(repo_run: Cli) -> None:
    for text in ["```\nan unclosed fence", "---", "Build with:\n```sh\nmake\n```"]:
        repo_run("add", "--", text)
    repo_run("commit", "-m", "awkward")
    result = repo_run("export", "--to", "markdown", "-o", "ALL.md")
    assert "note: 2 memories have a line escaped with a backslash" in result.stderr
    written = (repo_run.folder / "ALL.md").read_text()
    assert "- \\```\n  an unclosed fence\n" in written
    assert "- \\---\n" in written
    assert "- Build with:\n  ```sh\n  make\n  ```\n" in written  # balanced: as it is
    out: Any = repo_run.json("import", "--from", "markdown", "ALL.md")
    assert (out[0]["added"], out[0]["removed"], out[0]["elsewhere"]) == ([], [], 3)

    tokens = int(result.stderr.split(" tokens")[0].rsplit(" ", 1)[1])
    exact = repo_run("export", "--to", "markdown", "--budget", str(tokens))
    assert exact.stderr.startswith("note: wrote 3 memories")  # an exact fit fits
