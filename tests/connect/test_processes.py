"""Concurrent ``contextfs connect`` runs, as real processes on one config file: none is lost.

Each run reads the file, plans its entry and writes the file back; without
the lock each run's write would replace the others'. The file is padded so
each cycle takes long enough for the runs to overlap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from contextfs.repo import Repository

SCRIPT = Path(sys.executable).parent / "contextfs"
RUNS = 8

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="runs are serialised by flock")


def _connect_all(folder: Path, home: Path) -> list[subprocess.CompletedProcess[str]]:
    env = {k: v for k, v in os.environ.items() if k not in ("CONTEXTFS_DIR", "CONTEXTFS_STORE_URL")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    runs = [
        subprocess.Popen(
            [str(SCRIPT), "connect", "cursor", "--name", f"n{i}"],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(RUNS)
    ]
    done = []
    for run in runs:
        out, err = run.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(run.args, run.returncode, out, err))
    return done


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    Repository.init(tmp_path / "app").close()
    return tmp_path / "app"


def test_concurrent_runs_each_add_their_entry(folder: Path, tmp_path: Path) -> None:
    config = folder / ".cursor" / "mcp.json"
    config.parent.mkdir()
    padding = "x" * 4_000_000  # ~ a large ~/.claude.json: reading and writing take a while
    config.write_text(json.dumps({"padding": padding, "mcpServers": {"other": {"command": "x"}}}))
    for run in _connect_all(folder, tmp_path):
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith(f"cursor: connected in {config} as 'n"), run.stdout
    found = json.loads(config.read_text(encoding="utf-8"))
    assert found["padding"] == padding
    assert sorted(found["mcpServers"]) == sorted(["other", *(f"n{i}" for i in range(RUNS))])


def test_concurrent_runs_make_the_folder_once(folder: Path, tmp_path: Path) -> None:
    for run in _connect_all(folder, tmp_path):
        assert run.returncode == 0, run.stderr
    config = folder / ".cursor" / "mcp.json"
    found = json.loads(config.read_text(encoding="utf-8"))
    assert sorted(found["mcpServers"]) == [f"n{i}" for i in range(RUNS)]
    assert sorted(p.name for p in config.parent.iterdir()) == ["mcp.json", "mcp.json.bak"]
