"""A malformed PostgreSQL URL is refused in one line that never shows its password."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from contextfs.cli.main import cli
from contextfs.store.urls import redact_url

BAD = "postgresql://agent:hunter2@[bad/db"


@pytest.mark.parametrize(
    "args",
    [
        ["init", "{folder}", "--store", BAD],
        ["clone", BAD, "{folder}"],
        ["--repo", "{repo}", "remote", "add", "team", BAD],
    ],
)
def test_commands_refuse_it_in_one_line_without_the_password(
    args: list[str], tmp_path: Path
) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["init", str(tmp_path / "repo")]).exit_code == 0
    filled = [a.format(folder=tmp_path / "new", repo=tmp_path / "repo") for a in args]
    result = runner.invoke(cli, filled)
    assert result.exit_code == 5, result.output
    assert "hunter2" not in result.output
    assert result.output.count("\n") == 1
    assert "not a valid PostgreSQL URL" in result.output
    assert not (tmp_path / "new").exists()
    listed = runner.invoke(cli, ["--repo", str(tmp_path / "repo"), "remote", "list"])
    assert listed.exit_code == 0
    assert "team" not in listed.output  # nothing was saved


def test_the_environment_variable_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTEXTFS_STORE_URL", BAD)
    result = CliRunner().invoke(cli, ["log"])
    assert result.exit_code == 5
    assert "hunter2" not in result.output


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://agent:hunter2@[bad/db", "postgresql://agent@[bad/db"),
        ("postgresql://a:b:c@d@[x/db?password=p&x=1", "postgresql://a@[x/db?password=***&x=1"),
        ("postgresql://agent:hunter2@host:5432/db", "postgresql://agent@host:5432/db"),
    ],
)
def test_redaction_survives_urls_no_parser_accepts(url: str, shown: str) -> None:
    assert redact_url(url) == shown
