"""``init --embedder``, ``config`` and ``index``: choosing what finds memories by meaning."""

from __future__ import annotations

import json

from .conftest import Cli


def fill(run: Cli) -> None:
    run("add", "A kitten rested on the rug", "Deploys happen on Fridays", "--type", "Fact")
    run("commit", "-m", "two")


def test_config_shows_every_setting_with_defaults(repo_run: Cli) -> None:
    assert repo_run("config").stdout.splitlines() == [
        "embedder = minilm",
        "store = sqlite (the folder's own file)",
        "workspace = (none)",
        "remotes = (none)",
    ]
    assert repo_run("config", "embedder").stdout == "minilm\n"
    repo_run("remote", "add", "origin", "ctx://127.0.0.1:9")
    assert repo_run.json("config")["remotes"] == {"origin": "ctx://127.0.0.1:9"}


def test_config_changes_the_embedder_and_drops_the_old_vectors(repo_run: Cli) -> None:
    fill(repo_run)
    assert repo_run.json("search", "cat mat")[0]["content"] == "A kitten rested on the rug"
    out = repo_run("config", "embedder", "none").stdout
    assert out == "Embedder is now none; dropped 2 vectors of the old one\n"
    assert repo_run("config", "embedder").stdout == "none\n"
    assert repo_run("search", "cat mat").stdout == "No memories match.\n"
    assert repo_run("config", "embedder", "wordllama").stdout == "Embedder is now wordllama\n"


def test_index_embeds_at_once(repo_run: Cli) -> None:
    fill(repo_run)
    out = repo_run("index").stdout
    assert out == "Embedded 2 memories with minilm:all-MiniLM-L6-v2-int8-384@1.0.0\n"
    shape = repo_run.json("index")
    assert shape["embedded"] == 0
    assert shape["embedder"].startswith("minilm:")


def test_init_records_the_embedder(run: Cli) -> None:
    run("init", "--embedder", "none")
    config = json.loads((run.folder / ".contextfs" / "config.json").read_text())
    assert config["embedder"] == "none"
    fill(run)
    assert run.fails(5, "index").startswith("error: this repository has no embedder")


def test_mistakes_are_one_line_and_change_nothing(repo_run: Cli) -> None:
    before = repo_run("config").stdout
    assert repo_run.fails(5, "config", "colour") == (
        "error: no setting 'colour'; settings are embedder, store, workspace and remotes"
    )
    assert repo_run.fails(5, "config", "store", "postgresql://x/y") == (
        "error: 'store' is set by `contextfs init` or `contextfs remote`, not by config"
    )
    assert repo_run.fails(5, "config", "embedder", "bogus").startswith(
        "error: unknown embedder 'bogus'"
    )
    assert repo_run("config").stdout == before


def test_init_refuses_a_bad_embedder(run: Cli) -> None:
    assert run.fails(5, "init", "--embedder", "openai").startswith(
        "error: embedder 'openai' needs a model"
    )
    assert not (run.folder / ".contextfs").exists()


def test_verify_reports_the_vectors(repo_run: Cli) -> None:
    fill(repo_run)
    repo_run("index")
    lines = repo_run("verify").stdout.splitlines()
    assert lines[-2:] == [
        "vectors: 2 of minilm:all-MiniLM-L6-v2-int8-384@1.0.0",
        "vector search: exact (numpy, every vector scored)",
    ]
    report = repo_run.json("verify")
    assert report["vectors"] == {"minilm:all-MiniLM-L6-v2-int8-384@1.0.0": 2}
