"""Input a tool cannot read is refused in one line (issue 19's hole 7), never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from contextfs.cli.main import cli

NOT_UTF8 = bytes(range(128, 256)) * 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["log", "--remote", "ctx://[::1"], "looks like ctx://host:port"),
        (["clone", "ctx://[::1", "{new}"], "looks like ctx://host:port"),
        (["session", "--since", "{binary}"], "not UTF-8 text"),
        (["oplog", "merge", "s1", "{binary}"], "not UTF-8 text"),
    ],
)
def test_refused_in_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    runner = CliRunner()
    repo = tmp_path / "repo"
    assert runner.invoke(cli, ["init", str(repo)]).exit_code == 0
    binary = tmp_path / "binary.json"
    binary.write_bytes(NOT_UTF8)
    filled = [a.format(new=tmp_path / "new", binary=binary) for a in args]
    result = runner.invoke(cli, ["--repo", str(repo), *filled])
    assert result.exit_code == 5, result.output
    assert message in result.output
    assert result.output.count("\n") == 1
    assert "Traceback" not in result.output
    assert not (tmp_path / "new").exists()
