"""A store that cannot be written here is still read: on a full disk and on a read-only mount.

Issue 19's holes 6 (a read-only store could not be read: every command said
"unable to open database file") and 9 (a read-only command failed on a full
disk), reproduced with the real thing: a file-size limit of zero makes every
write fail as on a full disk, and a read-only bind mount in a user namespace
makes the folder read-only even for root.
"""

from __future__ import annotations

import json
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from contextfs.errors import ReadOnlyStoreError, StoreError
from contextfs.repo import Repository
from contextfs.store.sqlite import SqliteStore

READS = [
    ["log", "--oneline"],
    ["status", "--json"],
    ["search", "deploys", "--json"],
    ["search", "shipping software", "--retrieval", "semantic", "--json"],
    ["verify"],
    ["context", "--budget", "60"],
    ["show", "HEAD", "--json"],
]


def _full_disk() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def _run(
    folder: Path, args: list[str], preexec: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "contextfs.cli.main", "--repo", str(folder), *args],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=preexec,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with commits, staged changes and atoms the indexes have not seen yet."""
    folder = tmp_path / "repo"
    with Repository.init(folder) as repo:
        for i in range(30):
            repo.add(f"The team deploys release {i} on Fridays", "Fact")
        repo.commit("first")
        repo.add("Shipping software is done by the release train", "Fact")
        repo.add("Staged, not committed: deploys wait for review", "Fact")
    return folder


def test_every_read_works_on_a_full_disk_and_gives_what_a_writable_store_gives(
    repo: Path, tmp_path: Path
) -> None:
    twin = tmp_path / "twin"
    shutil.copytree(repo, twin)
    for args in READS:
        full = _run(repo, args, _full_disk)
        assert full.returncode == 0, (args, full.stderr)
        normal = _run(twin, args)
        assert normal.returncode == 0, (args, normal.stderr)
        if "--json" in args:
            assert json.loads(full.stdout) == json.loads(normal.stdout), args
    written = _run(repo, ["add", "one more"], _full_disk)
    assert written.returncode == 10
    assert written.stderr.startswith("error: store ")
    assert "is read-only here" in written.stderr
    assert len(written.stderr.splitlines()) == 1
    with Repository.open(repo) as opened:
        assert len(opened.status().changes) == 2  # nothing was written


def test_a_read_only_mount_is_read_and_refuses_writes_in_one_line(repo: Path) -> None:
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f"mount --bind -o ro {repo} {repo}"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"this machine allows no read-only bind mount: {probe.stderr.strip()}")

    def read_only(*args: str) -> subprocess.CompletedProcess[str]:
        script = f'mount --bind -o ro "{repo}" "{repo}" && exec "$@"'
        python = [sys.executable, "-m", "contextfs.cli.main", "--repo", str(repo), *args]
        return subprocess.run(
            ["unshare", "-rm", "sh", "-c", script, "sh", *python],
            capture_output=True,
            text=True,
            timeout=120,
        )

    for args in READS:
        done = read_only(*args)
        assert done.returncode == 0, (args, done.stderr)
    assert "The team deploys" in read_only("search", "deploys").stdout
    for args in (["add", "x"], ["commit", "-m", "x"], ["oplog", "append", "s1", "--add", "y"]):
        refused = read_only(*args)
        assert refused.returncode == 10, (args, refused.stderr)
        assert "read-only" in refused.stderr or "cannot be written here" in refused.stderr
        assert len(refused.stderr.splitlines()) == 1


def test_a_read_only_store_that_needs_an_upgrade_says_so(repo: Path) -> None:
    with sqlite3.connect(repo / ".contextfs" / "store.db") as raw:
        raw.execute("DROP TABLE tokens")
        raw.execute("DELETE FROM schema_migrations WHERE step = 6")
    raw.close()
    done = _run(repo, ["log"], _full_disk)
    assert done.returncode == 8
    assert "needs schema step 6" in done.stderr
    assert "open it once where it can be written" in done.stderr


def test_the_store_object_says_why_it_is_read_only(repo: Path) -> None:
    path = repo / ".contextfs" / "store.db"
    with SqliteStore.open(path) as store:
        assert store.read_only is None
    script = (
        "import resource, signal;"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN);"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0));"
        "from contextfs.store.sqlite import SqliteStore;"
        f"s = SqliteStore.open({str(path)!r});"
        "print(s.read_only);"
        "s.put_objects([(bytes(32), 'atom', b'x')])"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip()  # a reason
    assert "ReadOnlyStoreError" in done.stderr
    assert issubclass(ReadOnlyStoreError, StoreError)
