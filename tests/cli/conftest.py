"""Fixtures for CLI tests: a runner in a fresh folder, and ways to read the store back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from contextfs.cli.main import cli
from contextfs.repo import Repository


@dataclass
class Cli:
    """Runs ``contextfs`` in-process in ``folder``."""

    folder: Path
    runner: CliRunner

    def __call__(self, *args: str, input: str | bytes | None = None, code: int = 0) -> Result:
        """Run and check the exit status (and, on success, that stderr holds no error)."""
        result = self.runner.invoke(cli, list(args), input=input, catch_exceptions=False)
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        return result

    def json(self, *args: str, input: str | None = None, code: int = 0) -> Any:
        """Run a ``--json`` command and parse its stdout."""
        return json.loads(self(*args, "--json", input=input, code=code).stdout)

    def fails(self, code: int, *args: str, input: str | bytes | None = None) -> str:
        """Run a command that must fail with ``code``; return its one stderr line.

        Also checks that stdout is empty of tracebacks and that stderr is exactly
        one ``error: ...`` line.
        """
        result = self(*args, input=input, code=code)
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: "), lines
        assert "Traceback" not in result.stdout + result.stderr
        return lines[0]

    def state(self) -> tuple[Any, ...]:
        """Everything a failed command must leave unchanged."""
        with Repository.open(self.folder) as repo:
            status = repo.status()
            return (
                repo.head(),
                repo.current_branch,
                repo.branches(),
                repo.tags(),
                [(c.status, c.id, c.old, c.new) for c in status.changes],
                status.merging,
                status.conflicts,
            )


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """A CLI runner whose current directory is an empty temporary folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONTEXTFS_DIR", raising=False)
    monkeypatch.setenv("CONTEXTFS_AUTHOR", "tester")
    return Cli(tmp_path, CliRunner())


@pytest.fixture
def repo_run(run: Cli) -> Cli:
    """A runner in a folder that already holds an empty repository."""
    run("init")
    return run
