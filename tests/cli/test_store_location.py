"""Where a repository's store is: ``init --store``, ``config.json`` and ``CONTEXTFS_STORE_URL``."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from contextfs.cli.main import cli
from contextfs.config import CONFIG_FILE
from contextfs.repo import Repository
from contextfs.store.postgres import PostgresStore
from contextfs.testing.pgcluster import free_port


def run(*args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_init_store_joins_one_database_from_two_folders(postgres_url: str, tmp_path: Path) -> None:
    first, second = tmp_path / "laptop", tmp_path / "server"
    out = run("init", str(first), "--store", postgres_url)
    assert "stored in postgresql://contextfs@127.0.0.1:" in out
    config = json.loads((first / ".contextfs" / CONFIG_FILE).read_text())
    assert config["store"] == postgres_url
    assert len(config["workspace"]) == 16
    mode = stat.S_IMODE((first / ".contextfs" / CONFIG_FILE).stat().st_mode)
    assert mode == 0o600
    assert not (first / ".contextfs" / "store.db").exists()
    run("--repo", str(first), "add", "the team deploys on Fridays")
    run("--repo", str(first), "commit", "-m", "from the laptop")
    run("init", str(second), "--store", postgres_url)  # joins, does not re-initialise
    log = json.loads(run("--repo", str(second), "log", "--json"))
    assert [entry["message"] for entry in log] == ["from the laptop"]
    # Each folder has its own HEAD: switching in one does not move the other.
    run("--repo", str(second), "branch", "experiment")
    run("--repo", str(second), "switch", "experiment")
    assert json.loads(run("--repo", str(first), "status", "--json"))["branch"] == "main"
    assert json.loads(run("--repo", str(second), "status", "--json"))["branch"] == "experiment"
    verified = run("--repo", str(first), "verify")
    assert verified.startswith("OK")


def test_the_environment_names_the_store(postgres_url: str, tmp_path: Path) -> None:
    with Repository.create(PostgresStore.open(postgres_url, create=True)) as repo:
        repo.add("reached through CONTEXTFS_STORE_URL")
        repo.commit("seeded")
    env = {"CONTEXTFS_STORE_URL": postgres_url}
    hits = json.loads(run("search", "reached", "--json", env=env))
    assert [hit["content"] for hit in hits] == ["reached through CONTEXTFS_STORE_URL"]
    with Repository.open(postgres_url) as repo:
        assert repo.path is None
        assert repo.count() == 1


def test_bad_store_locations_are_one_line_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    sqlite_path = runner.invoke(cli, ["init", str(tmp_path / "a"), "--store", "x.db"])
    assert sqlite_path.exit_code == 5
    assert "--store takes a postgresql:// URL" in sqlite_path.stderr
    assert not (tmp_path / "a" / ".contextfs").exists()
    url = f"postgresql://agent:hunter2@127.0.0.1:{free_port()}/memory"
    down = runner.invoke(cli, ["init", str(tmp_path / "b"), "--store", url])
    assert down.exit_code == 8
    assert down.stderr.count("\n") == 1
    assert "hunter2" not in down.stderr
    assert not (tmp_path / "b" / ".contextfs").exists()


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{", "is not valid JSON"),
        ('{"store": 7}', "must be an object"),
        ('{"remotes": {"origin": 1}}', "must be an object"),
    ],
)
def test_a_damaged_config_is_reported(tmp_path: Path, content: str, why: str) -> None:
    Repository.init(tmp_path).close()
    (tmp_path / ".contextfs" / CONFIG_FILE).write_text(content)
    result = CliRunner().invoke(cli, ["--repo", str(tmp_path), "log"])
    assert result.exit_code == 8
    assert why in result.stderr
    assert result.stderr.count("\n") == 1
