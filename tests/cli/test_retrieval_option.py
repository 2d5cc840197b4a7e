"""``--retrieval`` on search, expand and session: words and meaning by default, or either."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from contextfs.cli.main import cli


def run(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--repo", str(tmp_path), *args])
    return result.exit_code, result.output


def make(tmp_path: Path) -> None:
    assert run(tmp_path, "init")[0] == 0
    for text in ("A kitten rested on the rug", "Deploys happen on Fridays"):
        assert run(tmp_path, "add", text, "--type", "Fact")[0] == 0
    assert run(tmp_path, "commit", "-m", "two memories")[0] == 0


def test_search_by_meaning_unless_told_words_only(tmp_path: Path) -> None:
    make(tmp_path)
    assert run(tmp_path, "search", "cat mat", "--retrieval", "lexical") == (
        0,
        "No memories match.\n",
    )
    for retrieval in ("semantic", "hybrid", None):
        chosen = ("--retrieval", retrieval) if retrieval else ()
        code, out = run(tmp_path, "search", "cat mat", *chosen, "--json")
        assert code == 0
        assert json.loads(out)[0]["content"] == "A kitten rested on the rug"


def test_a_repository_without_an_embedder_searches_words(tmp_path: Path) -> None:
    assert run(tmp_path, "init", "--embedder", "none")[0] == 0
    assert run(tmp_path, "add", "A kitten rested on the rug", "--type", "Fact")[0] == 0
    assert run(tmp_path, "commit", "-m", "one")[0] == 0
    assert run(tmp_path, "search", "cat mat") == (0, "No memories match.\n")
    code, out = run(tmp_path, "search", "kitten", "--json")
    assert (code, json.loads(out)[0]["content"]) == (0, "A kitten rested on the rug")


def test_expand_and_session_take_it_too(tmp_path: Path) -> None:
    make(tmp_path)
    code, out = run(tmp_path, "expand", "--query", "cat mat", "--retrieval", "hybrid")
    assert (code, out.splitlines()[0]) == (0, "[Fact] A kitten rested on the rug")
    code, out = run(tmp_path, "session", "--query", "cat mat", "--retrieval", "semantic", "--json")
    assert code == 0
    assert json.loads(out)["payload"]["l2"][0] == "[Fact] A kitten rested on the rug"


def test_a_bad_value_is_a_usage_error(tmp_path: Path) -> None:
    make(tmp_path)
    code, out = run(tmp_path, "search", "cat", "--retrieval", "vectors")
    assert code == 2
    assert "'vectors' is not one of 'lexical', 'semantic', 'hybrid'" in out


def test_context_turn_saves_a_state_and_keeps_the_stable_block(tmp_path: Path) -> None:
    make(tmp_path)
    state = tmp_path / "turn.json"
    first = CliRunner().invoke(
        cli,
        [
            *("--repo", str(tmp_path), "context", "--turn", "--budget", "80", "-q", "cat mat"),
            *("--save", str(state)),
        ],
    )
    assert first.exit_code == 0
    assert first.stdout.startswith("## Memory\n")
    assert "stable block rebuilt (first)" in first.stderr
    assert json.loads(state.read_text())["turn"] == 0
    second = CliRunner().invoke(
        cli,
        [
            *("--repo", str(tmp_path), "context", "--since", str(state), "--budget", "80"),
            *("-q", "deploys", "--save", str(state), "--json"),
        ],
    )
    assert second.exit_code == 0
    answer = json.loads(second.stdout)
    assert answer["blocks"][0]["text"].startswith(first.stdout.split("## Relevant")[0])
    assert answer["rebuild"] is None
    assert answer["cost"]["cache_read"] == answer["blocks"][0]["tokens"]
    assert json.loads(state.read_text()) == answer["state"]
    code, out = run(tmp_path, "context", "--turn")
    assert (code, out) == (2, "error: --turn needs --budget (see 'contextfs context --help')\n")
    state.write_text("not json")
    code, out = run(tmp_path, "context", "--since", str(state), "--budget", "80")
    assert code != 0
    assert out.startswith("error: turn.json: not a turn state (not JSON")
