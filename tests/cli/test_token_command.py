"""``contextfs token create|list|revoke``, and serve refusing by scope in one line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from contextfs.repo import Repository
from contextfs.tokens import TokenStore, digest

from .conftest import Cli


def test_create_prints_the_secret_once_and_keeps_only_its_digest(repo_run: Cli) -> None:
    made = repo_run("token", "create", "ci-bot", "--scope", "write", "--branch", "agents/*")
    secret = made.stdout.strip()
    assert re.fullmatch(r"cfs_[A-Za-z0-9_-]{43}", secret)
    assert "not stored and cannot be shown again" in made.stderr
    with Repository.open(repo_run.folder) as repo:
        store = repo.store
        assert isinstance(store, TokenStore)
        found = store.find_token(digest(secret))
        assert found is not None
        assert (found.name, found.branches, found.created_by) == ("ci-bot", "agents/*", "tester")
    listed = repo_run.json("token", "list")
    assert listed == [
        {
            "name": "ci-bot",
            "scope": "write",
            "branches": "agents/*",
            "state": "active",
            "created": listed[0]["created"],
            "expires": None,
            "revoked": None,
            "created_by": "tester",
        }
    ]
    assert secret not in repo_run("token", "list").stdout


def test_expiry_revocation_and_listing(repo_run: Cli) -> None:
    made = repo_run.json("token", "create", "temp", "--scope", "read", "--expires", "30d")
    assert made["expires"] is not None
    assert made["token"].startswith("cfs_")
    repo_run("token", "create", "ops", "--scope", "admin", "--expires", "2999-01-01")
    assert repo_run("token", "revoke", "temp").stdout == "Revoked token temp\n"
    lines = repo_run("token", "list").stdout.splitlines()
    assert lines[0] == "ops\tadmin\tactive  (expires 2999-01-01T00:00:00Z)"
    assert lines[1].startswith("temp\tread\trevoked  (revoked ")


def test_bad_requests_change_nothing(repo_run: Cli) -> None:
    repo_run("token", "create", "taken", "--scope", "read")
    cases = [
        (5, ("token", "create", "taken", "--scope", "admin"), "exists already"),
        (5, ("token", "create", "a b", "--scope", "read"), "token name"),
        (5, ("token", "create", "x", "--scope", "read", "--expires", "soon"), "--expires"),
        (5, ("token", "create", "x", "--scope", "read", "--expires", "2001-01-01"), "future"),
        (5, ("token", "create", "x", "--scope", "read", "--branch", "a;b"), "branch glob"),
        (5, ("token", "revoke", "nobody"), "no token named 'nobody'"),
    ]
    for code, args, expected in cases:
        assert expected in repo_run.fails(code, *args)
    repo_run("token", "revoke", "taken")
    assert "is revoked already" in repo_run.fails(5, "token", "revoke", "taken")
    assert [t["name"] for t in repo_run.json("token", "list")] == ["taken"]
    usage = repo_run("token", "create", "y", "--scope", "root", code=2)
    assert "'root' is not one of" in usage.stderr


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "contextfs.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_served_store_refuses_a_read_token_on_push_in_one_line(tmp_path: Path) -> None:
    served = tmp_path / "served"
    env = {**os.environ, "CONTEXTFS_AUTHOR": "ops"}
    env.pop("CONTEXTFS_DIR", None)
    assert _cli("--repo", str(served), "init", env=env).returncode == 0
    made = _cli("--repo", str(served), "token", "create", "reader", "--scope", "read", env=env)
    secret = made.stdout.strip()
    with Repository.open(served) as repo:
        repo.add("Served to readers", "Fact")
        repo.commit("first")
    server = subprocess.Popen(
        [sys.executable, "-m", "contextfs.cli.main", "--repo", str(served), "serve", "--port", "0"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        url = server.stderr.readline().split()[-1]
        copy = tmp_path / "copy"
        without = _cli("clone", url, str(copy), env=env)
        assert without.returncode == 10
        assert without.stderr == "error: bad or missing token\n"
        cloned = _cli("clone", url, str(copy), "--token", secret, env=env)
        assert cloned.returncode == 0, cloned.stderr
        with Repository.open(copy) as repo:
            repo.add("The reader's own idea", "Fact")
            repo.commit("second")
        pushed = _cli("--repo", str(copy), "push", env={**env, "CONTEXTFS_TOKEN": secret})
        assert pushed.returncode == 10
        assert pushed.stderr == (
            "error: token 'reader' is read-only: it cannot push (that needs a write token)\n"
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=20)
    with Repository.open(served) as repo:
        assert [c.commit.message for c in repo.log()] == ["first"]
