"""``--remote`` on expand, search, session and log: the same answers as the local repository."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from contextfs import Repository
from contextfs.cli.main import cli
from contextfs.session import apply_delta

from .test_fuzz import Running


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_remote_reading_commands_match_local_ones(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path)
    for i in range(25):
        repo.add(f"note {i}: the deploy runs python {i}", "Fact", relevance=i / 25)
    repo.commit("notes")
    running = Running(repo)
    url = f"ctx://127.0.0.1:{running.server.port}"
    try:
        local = ("--repo", str(tmp_path))
        assert run(*local, "expand", "--budget", "80") == run(
            "expand", "--budget", "80", "--remote", url
        )
        remote_hits = json.loads(run("search", "python", "-n", "3", "--json", "--remote", url))
        local_hits = json.loads(run(*local, "search", "python", "-n", "3", "--json"))
        assert [h["id"] for h in remote_hits] == [h["id"] for h in local_hits]
        for mode in ("semantic", "hybrid"):  # by meaning, with the server's embedder
            meant = ("search", "a deployment script", "-n", "5", "--retrieval", mode, "--json")
            remote_meant = json.loads(run(*meant, "--remote", url))
            assert [h["id"] for h in remote_meant] == [
                h["id"] for h in json.loads(run(*local, *meant))
            ]
            assert remote_meant
        by_meaning = ("expand", "--budget", "60", "--query", "deployment", "--retrieval", "hybrid")
        assert run(*local, *by_meaning) == run(*by_meaning, "--remote", url)
        meant_session = ("session", "--query", "deployment", "--retrieval", "semantic", "--json")
        assert (
            json.loads(run(*meant_session, "--remote", url))["payload"]
            == json.loads(run(*local, *meant_session))["payload"]
        )
        remote_log = json.loads(run("log", "--json", "--remote", url))
        assert [c["id"] for c in remote_log] == [
            c["id"] for c in json.loads(run(*local, "log", "--json"))
        ]
        session = json.loads(run("session", "--budget", "300", "--json", "--remote", url))
        assert session["payload"] == repo.session_payload(budget=300)
        hashes = tmp_path / "hashes.json"
        hashes.write_text(json.dumps(session["hashes"]))
        again = json.loads(
            run("session", "--budget", "300", "--since", str(hashes), "--json", "--remote", url)
        )
        assert again["delta"] == {}
        assert apply_delta(session["payload"], again["delta"]) == session["payload"]
        refused = CliRunner().invoke(cli, ["expand", "--receipt", "r.json", "--remote", url])
        assert refused.exit_code == 2
        unreachable = CliRunner().invoke(cli, ["log", "--remote", "ctx://127.0.0.1:1"])
        assert unreachable.exit_code == 1
        assert unreachable.stderr.startswith("error: cannot reach")
    finally:
        running.stop()
