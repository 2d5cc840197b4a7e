"""Files the CLI takes are read within a limit; files it writes replace the old one whole.

Issue 19's holes 5 (``export -o`` on a full disk tore a good file) and 8
(``/dev/zero`` as input grew memory without end), reproduced with the real
thing: a file-size limit makes the disk "full" part way through a write.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from contextfs.cli.main import cli
from contextfs.files import JSON_LIMIT, read_limited
from contextfs.repo import Repository

ZERO = Path("/dev/zero")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    folder = tmp_path / "repo"
    with Repository.init(folder) as repo:
        for i in range(200):
            repo.add(f"Memory number {i}: the team deploys on Fridays after the review", "Fact")
        repo.commit("two hundred memories")
    return folder


def _full_disk_after(limit: int) -> None:
    """In the child: writes past ``limit`` bytes fail with EFBIG, as on a full disk."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_export_on_a_full_disk_keeps_the_old_file(repo: Path, tmp_path: Path) -> None:
    target = tmp_path / "memories.jsonl"
    target.write_text('{"content": "the good old export"}\n')
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "contextfs.cli.main",
            "--repo",
            str(repo),
            "export",
            "-o",
            str(target),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: _full_disk_after(4096),
    )
    assert done.returncode != 0
    assert done.stderr.startswith("error: ")
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert target.read_text() == '{"content": "the good old export"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memories.jsonl", "repo"]


def test_export_replaces_the_file_whole(repo: Path, tmp_path: Path) -> None:
    target = tmp_path / "memories.jsonl"
    target.write_text("old\n")
    os.chmod(target, 0o640)
    result = CliRunner().invoke(cli, ["--repo", str(repo), "export", "-o", str(target)])
    assert result.exit_code == 0, result.output
    lines = target.read_text().splitlines()
    assert len(lines) == 200
    assert all(json.loads(line)["type"] == "Fact" for line in lines)
    assert target.stat().st_mode & 0o777 == 0o640  # the old file's mode is kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memories.jsonl", "repo"]


@pytest.mark.parametrize(
    "args",
    [
        ["session", "--since", "{zero}"],
        ["context", "--turn", "--budget", "100", "--since", "{zero}"],
        ["import", "{zero}"],
        ["oplog", "merge", "s1", "{zero}"],
        ["verify-receipt", "{zero}"],
        ["verify-proof", "{zero}", "--commit", "0" * 64],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_an_endless_file_is_refused_at_a_limit(args: list[str], repo: Path) -> None:
    filled = [a.format(zero=ZERO) for a in args]
    result = CliRunner().invoke(cli, ["--repo", str(repo), *filled])
    assert result.exit_code == 5, result.output
    (line,) = result.output.splitlines()
    assert line.startswith("error: ")
    assert "/dev/zero" in line
    assert "the most this reads" in line
    with Repository.open(repo) as opened:
        assert not opened.status().changes
    assert not (repo / ".contextfs" / "oplog" / "s1").exists()


def test_read_limited_reads_up_to_the_limit_exactly(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 10)
    with path.open("rb") as source:
        assert read_limited(source, 10, "f") == b"x" * 10
    with path.open("rb") as source, pytest.raises(Exception, match="larger than 9 bytes"):
        read_limited(source, 9, "f")
    assert JSON_LIMIT >= 1 << 20


def test_a_missing_folder_is_named_as_given_not_as_a_temporary_file(
    repo: Path, tmp_path: Path
) -> None:
    target = tmp_path / "no-such-folder" / "AGENTS.md"
    result = CliRunner().invoke(
        cli, ["--repo", str(repo), "export", "--to", "markdown", "-o", str(target)]
    )
    assert result.exit_code == 1
    assert result.stderr == f"error: No such file or directory: {target}\n"
