"""``contextfs session``: the payload, then deltas turn after turn."""

from __future__ import annotations

from contextfs.session import apply_delta
from contextfs.session.tiers import render_payload

from .conftest import Cli


def test_payload_then_delta_rebuilds_the_next_payload(repo_run: Cli) -> None:
    run = repo_run
    run("add", "I am the support agent.", "--type", "Identity", "--tag", "pinned")
    for i in range(12):
        run("add", f"Customer note {i}: " + "details of the case " * 12, "--type", "Note")
    run("commit", "-m", "notes")
    first = run.json("session", "--budget", "400", "--save", "hashes.json")
    payload = first["payload"]
    assert payload["l0"] == "[Identity] I am the support agent."
    assert first["tokens"]["prompt"] <= 400
    assert (run.folder / "hashes.json").is_file()
    text = run("session", "--budget", "400").stdout
    assert text.startswith(render_payload(payload))
    assert "tokens: prompt" in text
    assert "hashes: {" in text
    same = run.json("session", "--budget", "400", "--since", "hashes.json")
    assert same["delta"] == {}
    assert same["tokens"]["delta"] < 5
    run("add", "Customer note 99: the newest and most relevant", "--type", "Note")
    run("commit", "-m", "one more")
    turn = run.json("session", "--budget", "400", "--since", "hashes.json")
    assert apply_delta(payload, turn["delta"]) == run.json("session", "--budget", "400")["payload"]
    assert turn["tokens"]["delta"] < turn["tokens"]["payload"]
    seed_style = run.json(
        "session", "--budget", "400", "--since", "hashes.json", "--granularity", "component"
    )
    assert isinstance(seed_style["delta"]["l2"], list)  # whole component, as the seed sends


def test_bad_hash_files_are_one_line_errors(repo_run: Cli) -> None:
    run = repo_run
    run("add", "x")
    run("commit", "-m", "x")
    (run.folder / "bad.json").write_text("{nope")
    assert "not valid JSON" in run.fails(5, "session", "--since", "bad.json")
    (run.folder / "list.json").write_text("[1, 2]")
    assert "JSON object" in run.fails(5, "session", "--since", "list.json")
    (run.folder / "odd.json").write_text('{"l0": 5, "l2": "zz"}')
    assert run.json("session", "--since", "odd.json")["delta"]["l2"] == ["[String] x"]
    run("session", "--budget", "-3", code=2)
