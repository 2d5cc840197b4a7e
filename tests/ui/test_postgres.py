"""`contextfs ui` over a team store on PostgreSQL, named by CONTEXTFS_STORE_URL."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from contextfs.repo import Repository


def test_the_ui_serves_a_postgresql_store(postgres_url: str, tmp_path: Path) -> None:
    with Repository.init(tmp_path / "unused", store=postgres_url) as repo:
        repo.add("Deploys happen on Tuesdays", "Fact")
        first = repo.commit("Shared from the team store", author="ops-bot")
    env = {**os.environ, "CONTEXTFS_STORE_URL": postgres_url}
    server = subprocess.Popen(
        [sys.executable, "-m", "contextfs", "ui", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        found = re.match(r"serving the UI on (\S+)/ ", server.stderr.readline())
        assert found
        with urllib.request.urlopen(found.group(1) + "/history", timeout=30) as response:
            page = response.read().decode()
        with urllib.request.urlopen(found.group(1) + "/health", timeout=30) as response:
            health = response.read().decode()
    finally:
        server.send_signal(signal.SIGTERM)
        _, rest = server.communicate(timeout=20)
    assert server.returncode == 0, rest
    assert f'href="/commit/{first}"' in page
    assert "Shared from the team store" in page
    assert "ops-bot" in page
    assert "PostgreSQL" in health
