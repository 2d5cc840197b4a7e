"""End to end: the real ``python -m contextfs.cli.main`` in a child process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from contextfs.repo import Repository


def contextfs(
    cwd: Path, *args: str, input: str | None = None, code: int = 0
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CONTEXTFS_DIR"}
    env["CONTEXTFS_AUTHOR"] = "e2e"
    result = subprocess.run(
        [sys.executable, "-m", "contextfs.cli.main", *args],
        cwd=cwd,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    return result


def test_init_add_commit_log(tmp_path: Path) -> None:
    contextfs(tmp_path, "init")
    added = json.loads(contextfs(tmp_path, "add", "The user prefers tea.", "--json").stdout)
    committed = json.loads(contextfs(tmp_path, "commit", "-m", "first", "--json").stdout)
    (entry,) = json.loads(contextfs(tmp_path, "log", "--json").stdout)
    assert entry["id"] == committed["commit"]
    assert entry["author"] == "e2e"
    shown = json.loads(contextfs(tmp_path, "show", "--json").stdout)
    assert [c["id"] for c in shown["changes"]] == added
    exported = contextfs(tmp_path, "export").stdout
    assert json.loads(exported)["content"] == "The user prefers tea."


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    result = contextfs(tmp_path, "status", code=3)
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: not a ContextFS repository")
    contextfs(tmp_path, "init")
    result = contextfs(tmp_path, "add", "x", "--type", "List[", code=5)
    assert result.stderr == ("error: invalid type signature 'List[': unclosed '[' at position 4\n")
    result = contextfs(tmp_path, "import", "-", input='{"content": "a"}\n{"content": 1}\n', code=5)
    assert result.stderr == (
        "error: <stdin>: line 2: 'content' must be a string, got a number; nothing was imported\n"
    )
    result = contextfs(tmp_path, "frobnicate", code=2)
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipe semantics")
def test_closed_pipe_is_quiet(tmp_path: Path) -> None:
    contextfs(tmp_path, "init")
    with Repository.open(tmp_path) as repo:
        for n in range(300):
            repo.commit(f"commit {n}\n\n" + "body " * 100, allow_empty=True)
    env = {k: v for k, v in os.environ.items() if k != "CONTEXTFS_DIR"}
    with subprocess.Popen(
        [sys.executable, "-m", "contextfs.cli.main", "log"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.readline()
        proc.stdout.close()
        stderr = proc.stderr.read()
        proc.wait(timeout=60)
    assert stderr == b""
    assert proc.returncode in (0, 1)


def test_tour_runs_and_shows_a_merge(tmp_path: Path) -> None:
    where = tmp_path / "tour"
    result = contextfs(tmp_path, "tour", str(where))
    out = result.stdout
    assert result.stderr == ""
    assert re.search(r"^\s*\*   [0-9a-f]{12} \(HEAD -> main\) Merge research into main$", out, re.M)
    assert re.search(r"^\s*\|\\$", out, re.M)
    assert re.search(r"^\s*\|/$", out, re.M)
    assert "[Decision]" in out
    by_meaning = out.split('search "what database do we use"')[1]
    assert "[Decision] Decision: store events in PostgreSQL 16, not MongoDB." in by_meaning
    assert str(where / ".contextfs") in out
    # The store it leaves behind is a real one, with a two-parent merge at HEAD.
    (head,) = json.loads(contextfs(where, "log", "-n", "1", "--json").stdout)
    assert len(head["parents"]) == 2
    assert contextfs(tmp_path, "tour", str(where), code=3).stderr.startswith("error: ")


def test_tour_in_a_temporary_folder(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CONTEXTFS_DIR"}
    env["TMPDIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "contextfs.cli.main", "tour"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (made,) = tmp_path.glob("contextfs-tour-*")
    assert (made / ".contextfs" / "store.db").is_file()
