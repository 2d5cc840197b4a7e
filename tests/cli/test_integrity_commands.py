"""`contextfs prove`, `verify-proof`, `verify` and `purge`."""

from __future__ import annotations

import json

from .conftest import Cli


def test_cli_prove_verify_proof_verify_and_purge(repo_run: Cli) -> None:
    repo_run("add", "zebra-secret-7319 is the vault code")
    repo_run("add", "The user prefers tea")
    repo_run("commit", "-m", "memories")
    hits = repo_run.json("search", "zebra")
    atom = hits[0]["id"]  # type: ignore[index]
    commit = repo_run.json("log")[0]["id"]  # type: ignore[index]
    assert " is in HEAD " in repo_run("prove", atom[:10]).stdout
    proof = repo_run.folder / "proof.json"
    proof.write_text(repo_run("prove", atom[:10], "--json").stdout)
    assert json.loads(proof.read_text())["kind"] == "membership"
    assert repo_run("verify-proof", str(proof), "--commit", commit).stdout.startswith("OK: ")
    repo_run.fails(9, "verify-proof", str(proof), "--commit", "0" * 64)
    assert repo_run("verify").stdout.startswith("OK: checked ")
    repo_run("purge", atom[:10], "--yes", "--reason", "asked")
    report = repo_run.json("verify")
    assert report["ok"] is True  # type: ignore[index]
    assert report["purged"] == [atom]  # type: ignore[index]
    assert "zebra" not in repo_run("expand").stdout
    repo_run.fails(7, "purge", atom[:10], "--yes")
