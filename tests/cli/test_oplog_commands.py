"""``contextfs oplog ...`` and ``contextfs revert --actor/--session``."""

from __future__ import annotations

import json

from contextfs.repo import Repository

from .conftest import Cli


def test_append_show_checkpoint_verify(repo_run: Cli) -> None:
    run = repo_run
    out = run(
        "oplog", "append", "s1", "--actor", "alice", "--add", "User prefers tea", "-t", "Fact"
    )
    assert out.stdout.startswith("appended ")
    assert "at lamport 1" in out.stdout
    stored = run.json(
        "oplog", "append", "s1", "-a", "bob", "-d", "midi", '{"op": "note", "pitch": 60}'
    )
    assert stored[0]["actor_id"] == "bob"
    assert stored[0]["lamport_ts"] == 2
    shown = run.json("oplog", "show", "s1")
    assert [e["domain"] for e in shown] == ["context", "midi"]
    assert run.json("oplog", "show", "s1", "--domain", "midi", "--limit", "1") == stored
    assert "User prefers tea" in run("oplog", "show", "s1").stdout
    assert run.json("oplog", "sessions") == [
        {"session": "s1", "ops": 2, "checkpointed": 0, "commit": None}
    ]
    result = run.json("oplog", "checkpoint", "s1", "-m", "first crystal")
    assert result["ops"] == 2
    assert result["changed"] == 1
    assert result["actors"] == ["alice", "bob"]
    assert result["other_domains"] == {"midi": 1}
    log = run.json("log")
    assert log[0]["id"] == result["commit"]
    assert log[0]["message"] == "first crystal"
    assert run.json("oplog", "show", "s1", "--pending") == []
    report = run.json("oplog", "verify", "s1")
    assert report["ok"]
    assert report["checkpoints"] == 1
    root = result["checkpoint"]["log_root"]
    assert "OK: 2 op(s)" in run("oplog", "verify", "s1", "--trusted", f"2:{root}").stdout
    run.fails(7, "oplog", "checkpoint", "s1")


def test_append_from_stdin_and_remove_by_prefix(repo_run: Cli) -> None:
    run = repo_run
    lines = "\n".join(
        json.dumps({"op": "add_atom", "content": f"fact {i}", "type": "Fact"}) for i in range(3)
    )
    assert len(run.json("oplog", "append", "s", "--stdin", input=lines + "\n\n")) == 3
    run("oplog", "checkpoint", "s")
    with Repository.open(run.folder) as repo:
        victim = repo.snapshot()[0]
    prefix = victim.digest.hex()[:10]
    run("oplog", "append", "s", "--remove", prefix)
    run("oplog", "checkpoint", "s")
    with Repository.open(run.folder) as repo:
        assert repo.count() == 2


def test_merge_replicas_from_a_file_and_stdin(repo_run: Cli) -> None:
    run = repo_run
    run("oplog", "append", "a", "-a", "x", "--add", "one", "--add", "two")
    exported = run("oplog", "show", "a", "--json").stdout
    merged = run.json("oplog", "merge", "b", "-", input=exported)
    assert merged == {"added": 2, "duplicates": 0, "held": []}
    ops_file = run.folder / ".contextfs/oplog/a/ops.jsonl"
    again = run("oplog", "merge", "b", str(ops_file)).stdout
    assert "merged 0 op(s); 2 already here" in again
    assert run.json("oplog", "show", "b") == json.loads(exported)


def test_bad_input_is_one_line_and_changes_nothing(repo_run: Cli) -> None:
    run = repo_run
    run("oplog", "append", "s", "--add", "kept")
    before = run.json("oplog", "show", "s")
    assert "session id" in run.fails(5, "oplog", "append", "../escape", "--add", "x")
    assert "JSON" in run.fails(5, "oplog", "append", "s", "{not json")
    assert "content" in run.fails(5, "oplog", "append", "s", '{"op": "add_atom"}')
    assert "one of" in run.fails(
        5, "oplog", "append", "s", '{"op": "add_atom", "content": "ok"}', '{"op": "drop_table"}'
    )
    tampered = json.dumps({**before[0], "actor_id": "mallory"})
    assert "does not match" in run.fails(5, "oplog", "merge", "s", "-", input=tampered)
    assert "no op log" in run.fails(5, "oplog", "show", "nothing-here")
    run("oplog", "append", "s", "--add", "x", "--domain", "context")
    run("oplog", "append", "s", "-d", "midi", "--add", "x", code=2)
    run("oplog", "verify", "s", "--trusted", "nonsense", code=2)
    assert len(run.json("oplog", "show", "s")) == 2
    assert not (run.folder / ".contextfs/oplog/escape").exists()
    assert not (run.folder.parent / "escape").exists()


def test_a_tampered_log_fails_verify_with_exit_9(repo_run: Cli) -> None:
    run = repo_run
    run("oplog", "append", "s", "--add", "one", "--add", "two")
    path = run.folder / ".contextfs/oplog/s/ops.jsonl"
    path.write_bytes(path.read_bytes().replace(b"two", b"owt"))
    result = run("oplog", "verify", "s", code=9)
    assert "line 2" in result.stdout
    assert "does not match" in result.stdout


def test_a_torn_line_is_repaired_with_a_warning(repo_run: Cli) -> None:
    run = repo_run
    run("oplog", "append", "s", "--add", "one")
    path = run.folder / ".contextfs/oplog/s/ops.jsonl"
    with open(path, "ab") as handle:
        handle.write(b'{"actor_id":"a","cre')
    result = run("oplog", "show", "s")
    assert "warning: cut off a torn line 2" in result.stderr
    assert len(run.json("oplog", "show", "s")) == 1


def test_revert_actor_and_session(repo_run: Cli) -> None:
    run = repo_run
    run("oplog", "append", "s", "-a", "good", "--add", "useful")
    run("oplog", "append", "s", "-a", "bad", "--add", "poison", "--add", "more poison")
    run("oplog", "checkpoint", "s")
    dry = run.json("revert", "--actor", "bad", "--dry-run")
    assert dry["commit"] is None
    assert len(dry["reverted"]) == 2
    result = run.json("revert", "--actor", "bad")
    assert result["commit"]
    assert not result["conflicts"]
    with Repository.open(run.folder) as repo:
        assert [m.content for m in repo.snapshot()] == ["useful"]
    run("oplog", "append", "t", "-a", "x", "--add", "from t")
    run("oplog", "checkpoint", "t")
    assert "restored 1 memories" in run("revert", "--session", "t").stdout
    run("revert", code=2)
    run("revert", "HEAD", "--actor", "x", code=2)
    run("revert", "HEAD", "--dry-run", code=2)
    run.fails(7, "revert", "--actor", "nobody")


def test_revert_actor_reports_conflicts_with_exit_6(repo_run: Cli) -> None:
    run = repo_run
    run("oplog", "append", "s", "-a", "bad", "--add", "shared")
    run("oplog", "checkpoint", "s")
    with Repository.open(run.folder) as repo:
        shared = repo.snapshot()[0].digest.hex()
    op = json.dumps({"op": "set_fields", "id": shared, "fields": {"relevance": 0.5}})
    run("oplog", "append", "s", "-a", "good", op)
    run("oplog", "checkpoint", "s")
    result = run("revert", "--actor", "bad", code=6)
    assert "restored 0 memories" in result.stdout
    assert "shared" in result.stdout
    assert result.stderr.startswith("error: 1 memories were changed by others too")


def test_a_failed_first_append_leaves_no_session(repo_run: Cli) -> None:
    unknown = "a" * 64
    message = repo_run.fails(5, "oplog", "append", "s5", "--add", "x", "--parent", unknown)
    assert "causal parent not in session 's5'" in message
    assert repo_run.json("oplog", "sessions") == []
    assert not (repo_run.folder / ".contextfs" / "oplog" / "s5" / "ops.jsonl").exists()
    repo_run("oplog", "append", "s5", "--add", "x")  # the session starts cleanly later
    assert [s["session"] for s in repo_run.json("oplog", "sessions")] == ["s5"]
