"""`contextfs search`, `expand --query/--format/--receipt` and `verify-receipt`."""

from __future__ import annotations

import json
from typing import Any

from contextfs.expand.tokens import default_tokenizer

from .conftest import Cli


def seed(run: Cli) -> None:
    run("add", "The user prefers tea over coffee.", "--type", "Preference", "--relevance", "0.9")
    run("add", "The user works on Project Atlas.", "--type", "Fact", "--relevance", "0.7")
    run(
        "add", "Atlas deploys every Friday.", "--type", "Fact", "--relevance", "0.6", "--tag", "ops"
    )
    run("commit", "-m", "memories")


def test_search_finds_ranks_and_filters(repo_run: Cli) -> None:
    seed(repo_run)
    words = ("--retrieval", "lexical")
    hits: Any = repo_run.json("search", "atlas", *words)
    assert [h["content"] for h in hits] == [
        "The user works on Project Atlas.",
        "Atlas deploys every Friday.",
    ]
    assert all(h["match"] == 1.0 for h in hits)
    tagged: Any = repo_run.json("search", "atlas", "--tag", "ops")
    assert [h["content"] for h in tagged] == ["Atlas deploys every Friday."]
    typed: Any = repo_run.json("search", "user", "--type", "Preference")
    assert [h["content"] for h in typed] == ["The user prefers tea over coffee."]
    assert repo_run.json("search", "user atlas", "--all", "-n", "1", *words) == [
        {**hits[0], "score": hits[0]["score"], "match": 1.0}
    ]
    both: Any = repo_run.json("search", "user atlas", "--all")  # by meaning too, all words
    assert [h["content"] for h in both] == ["The user works on Project Atlas."]
    by_default: Any = repo_run.json("search", "atlas")  # words and meaning: word matches lead
    assert [h["content"] for h in by_default][:2] == [h["content"] for h in hits]
    table = repo_run("search", "friday").stdout
    assert "Atlas deploys every Friday." in table
    assert repo_run("search", "kubernetes", *words).stdout == "No memories match.\n"
    repo_run.fails(5, "search", "!!!")


def test_expand_formats_and_queries(repo_run: Cli) -> None:
    seed(repo_run)
    xml = repo_run("expand", "--format", "xml", "--budget", "200").stdout
    assert xml.startswith("<memories>")
    assert "The user prefers tea over coffee." in xml
    md = repo_run("expand", "-f", "markdown").stdout
    assert md.startswith("## Memories\n1. **Preference**")
    only = repo_run("expand", "--query", "atlas").stdout.splitlines()
    assert only == ["[Fact] The user works on Project Atlas.", "[Fact] Atlas deploys every Friday."]
    data: Any = repo_run.json("expand", "-f", "json", "--budget", "30")
    assert default_tokenizer().count(data["text"]) <= 30


def test_receipts_verify_and_tampering_exits_9(repo_run: Cli) -> None:
    seed(repo_run)
    receipt = repo_run.folder / "receipt.json"
    prompt = repo_run(
        "expand", "--query", "user", "--budget", "40", "--receipt", str(receipt)
    ).stdout
    stored = json.loads(receipt.read_text())
    assert stored["tokens"] == default_tokenizer().count(prompt.rstrip("\n"))
    assert repo_run("verify-receipt", str(receipt)).stdout.startswith("OK: commit ")
    repo_run("add", "The user also likes green tea.", "--relevance", "1.0")
    repo_run("commit", "-m", "later")
    assert repo_run.json("verify-receipt", str(receipt)) == {
        "ok": True,
        "commit": stored["commit"],
        "mismatches": [],
    }
    stored["query"] = "tea"
    receipt.write_text(json.dumps(stored))
    line = repo_run.fails(9, "verify-receipt", str(receipt))
    assert line.startswith("error: receipt does not verify: ")
    receipt.write_text("{not json")
    assert "receipt" in repo_run.fails(5, "verify-receipt", str(receipt))
