"""The on-disk op log: appends, clocks, repair, corruption, checkpoints, merging replicas."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

import pytest

from contextfs.discovery import REPO_DIR
from contextfs.errors import InvalidInputError
from contextfs.oplog import (
    CorruptLogError,
    Cut,
    OpEntry,
    OpLog,
    add_atom_op,
    list_sessions,
    make_op_entry,
    merge_key,
)
from contextfs.oplog.entry import encode_line


def op(log: OpLog, actor: str = "alice", text: str = "a memory", **kw: object) -> OpEntry:
    """A context op stamped by ``log``'s clock."""
    return make_op_entry(actor, "context", add_atom_op(text), log.next_lamport_ts(), **kw)  # type: ignore[arg-type]


def ops_file(root: Path, session: str = "s") -> Path:
    return root / REPO_DIR / "oplog" / session / "ops.jsonl"


@pytest.fixture
def log(tmp_path: Path) -> OpLog:
    return OpLog(tmp_path, "s")


def test_seed_layout_and_api(tmp_path: Path, log: OpLog) -> None:
    assert log.session_id() == "s"
    assert log.read_all() == []
    assert log.read_checkpoint() is None
    first = log.append(op(log, text="User prefers tea"))
    second = log.append(op(log, "bob", "Deploys on Fridays"))
    assert log.read_all() == [first, second]
    lines = ops_file(tmp_path).read_bytes().splitlines()
    assert [json.loads(line) for line in lines] == [first, second]
    assert list_sessions(tmp_path) == ["s"]
    delta = log.to_structured_delta("context")
    assert delta["summary"] == "2 add_atom"
    assert len(delta["ops"]) == 2
    assert log.to_structured_delta("midi") == {"domain": "midi", "ops": [], "summary": "no ops"}


def test_stamps_continue_after_reopening(tmp_path: Path, log: OpLog) -> None:
    for _ in range(3):
        log.append(op(log))
    reopened = OpLog(tmp_path, "s")
    assert reopened.next_lamport_ts() == 4
    assert reopened.next_lamport_ts() == 5  # the counter advances, as in the seed


def test_a_stale_stamp_is_restamped_above_everything_in_the_log(tmp_path: Path) -> None:
    one, two = OpLog(tmp_path, "s"), OpLog(tmp_path, "s")
    a = op(one)
    b = op(two, "bob")  # both took stamp 1
    assert a["lamport_ts"] == b["lamport_ts"] == 1
    stored_a, stored_b = one.append(a), two.append(b)
    assert stored_a == a
    assert stored_b["lamport_ts"] == 2
    assert stored_b["op_id"] != b["op_id"]
    assert [e["lamport_ts"] for e in one.read_all()] == [1, 2]


def test_append_many_is_all_or_nothing_and_rewrites_parents_it_restamps(log: OpLog) -> None:
    log.append(op(log))
    first = make_op_entry("a", "context", add_atom_op("x"), 1)  # stale stamp
    child = make_op_entry("a", "context", add_atom_op("y"), 2, parent_op_ids=[first["op_id"]])
    stored = log.append_many([first, child])
    assert stored[1]["parent_op_ids"] == [stored[0]["op_id"]]
    assert stored[0]["lamport_ts"] < stored[1]["lamport_ts"]
    before = log.read_all()
    bad = dict(op(log))
    bad["domain_op"] = {"op": "add_atom"}  # no content
    with pytest.raises(InvalidInputError):
        log.append_many([op(log), bad])  # type: ignore[list-item]
    orphan = make_op_entry("a", "context", add_atom_op("z"), 99, parent_op_ids=["f" * 64])
    with pytest.raises(InvalidInputError, match="causal parent"):
        log.append(orphan)
    assert log.read_all() == before


def test_threads_appending_at_once_lose_nothing(log: OpLog) -> None:
    def work(actor: str) -> None:
        for i in range(50):
            log.append(op(log, actor, f"{actor} {i}"))

    threads = [threading.Thread(target=work, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries = log.read_all()
    assert len(entries) == 200
    assert len({e["op_id"] for e in entries}) == 200
    stamps = [e["lamport_ts"] for e in entries]
    assert all(a < b for a, b in itertools.pairwise(stamps))


def test_a_torn_last_line_is_cut_off_on_open_and_reported(tmp_path: Path, log: OpLog) -> None:
    kept = [log.append(op(log)) for _ in range(3)]
    log.close()
    path = ops_file(tmp_path)
    whole = path.read_bytes()
    torn = encode_line(make_op_entry("a", "context", add_atom_op("lost"), 9))[:40]
    path.write_bytes(whole + torn)
    reopened = OpLog(tmp_path, "s")
    assert reopened.read_all() == kept
    assert [(r.file, r.line, r.dropped_bytes) for r in reopened.repairs] == [("ops.jsonl", 4, 40)]
    assert path.read_bytes() == whole
    assert reopened.append(op(reopened))["lamport_ts"] == 4


def test_a_corrupt_middle_line_is_an_error_naming_it(tmp_path: Path, log: OpLog) -> None:
    for _ in range(3):
        log.append(op(log))
    path = ops_file(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = b'{"op_id": "broken"\n'
    path.write_bytes(b"".join(lines))
    (path.parent / "ops.state").unlink()
    with pytest.raises(CorruptLogError, match="line 2"):
        OpLog(tmp_path, "s").read_all()


def test_clock_and_replay_read_only_the_tail(tmp_path: Path, log: OpLog) -> None:
    """Damage early lines after the state cache and a checkpoint were written: the
    clock and replay still answer, because neither reads the whole file."""
    for _ in range(5):
        log.append(op(log))
    log.checkpoint("snap")
    late = log.append(op(log))
    path = ops_file(tmp_path)
    data = bytearray(path.read_bytes())
    data[2:8] = b"XXXXXX"  # line 1 no longer parses
    path.write_bytes(bytes(data))
    fresh = OpLog(tmp_path, "s")
    assert fresh.next_lamport_ts() == 7
    assert fresh.replay_since_checkpoint() == [late]
    with pytest.raises(CorruptLogError, match="line 1"):
        fresh.read_all()


def test_a_damaged_state_cache_is_rebuilt_from_the_log(tmp_path: Path, log: OpLog) -> None:
    for _ in range(4):
        log.append(op(log))
    state = ops_file(tmp_path).parent / "ops.state"
    state.write_bytes(b"garbage")
    fresh = OpLog(tmp_path, "s")
    assert fresh.next_lamport_ts() == 5
    assert fresh.end().ops == 4


def test_checkpoints_are_cuts_so_a_late_low_stamp_op_is_not_lost(tmp_path: Path) -> None:
    """The seed filtered replay by stamp, so a concurrent op merged after the
    checkpoint with a lower stamp vanished from the next commit. Here the cut is
    a position in the log."""
    here = OpLog(tmp_path / "a", "s")
    there = OpLog(tmp_path / "b", "s")
    for _ in range(5):
        here.append(op(here))
    late = there.append(op(there, "bob", "concurrent edit"))  # stamp 1, made elsewhere
    checkpoint = here.checkpoint("snapshot-1")
    assert checkpoint["lamport_ts"] == 5
    assert checkpoint["op_count"] == 5
    assert here.replay_since_checkpoint() == []
    here.receive([late])
    assert here.replay_since_checkpoint() == [late]
    seed_cut = [e for e in here.read_all() if e["lamport_ts"] > checkpoint["lamport_ts"]]
    assert late not in seed_cut  # what the seed would have replayed


def test_checkpoint_files_and_cut_validation(tmp_path: Path, log: OpLog) -> None:
    for _ in range(3):
        log.append(op(log))
    first = log.checkpoint("one", through=Cut(2, log.cut_after(Cut(0, 0), 2).bytes))
    assert first["op_count"] == 2
    assert [e["lamport_ts"] for e in log.replay_since_checkpoint()] == [3]
    second = log.checkpoint("two")
    assert log.read_checkpoint() == second
    assert log.checkpoints() == [first, second]
    saved = json.loads((ops_file(tmp_path).parent / "checkpoint.json").read_text())
    assert saved == second
    with pytest.raises(InvalidInputError, match="outside"):
        log.checkpoint("back", through=Cut(1, first["log_bytes"]))
    with pytest.raises(InvalidInputError):
        log.checkpoint("")


def test_a_crash_between_the_checkpoint_writes_is_finished_on_open(
    tmp_path: Path, log: OpLog
) -> None:
    log.append(op(log))
    first = log.checkpoint("one")
    log.append(op(log))
    second = log.checkpoint("two")
    folder = ops_file(tmp_path).parent
    # The history got the second record, checkpoint.json still holds the first.
    (folder / "checkpoint.json").write_bytes(json.dumps(first).encode())
    assert OpLog(tmp_path, "s").read_checkpoint() == second
    # A torn history record is cut off and the previous one stands.
    with open(folder / "checkpoints.jsonl", "ab") as history:
        history.write(b'{"session_id": "s", "snap')
    reopened = OpLog(tmp_path, "s")
    assert reopened.checkpoints() == [first, second]
    assert any(r.file == "checkpoints.jsonl" for r in reopened.repairs)


# -- merging replicas -------------------------------------------------------------------


def test_receive_dedupes_keeps_stamps_and_applies_the_lamport_rule(tmp_path: Path) -> None:
    here = OpLog(tmp_path / "a", "s")
    there = OpLog(tmp_path / "b", "s")
    mine = here.append(op(here))
    theirs = [there.append(op(there, "bob", f"b{i}")) for i in range(10)]
    result = here.receive([*theirs, mine, theirs[0]])
    assert result.duplicates == 2
    assert not result.held
    assert list(result.added) == sorted(theirs, key=merge_key)[: len(result.added)]
    assert {e["op_id"] for e in here.read_all()} == {mine["op_id"], *(t["op_id"] for t in theirs)}
    assert here.next_lamport_ts() == 11  # max(local 1, remote 10) + 1
    again = here.receive(theirs)
    assert again.added == ()
    assert again.duplicates == 10


def test_ops_whose_parents_are_missing_are_held_until_they_arrive(tmp_path: Path) -> None:
    here = OpLog(tmp_path / "a", "s")
    there = OpLog(tmp_path / "b", "s")
    parent = there.append(op(there, "bob"))
    child = there.append(
        make_op_entry(
            "bob",
            "context",
            add_atom_op("child"),
            there.next_lamport_ts(),
            parent_op_ids=[parent["op_id"]],
        )
    )
    first = here.receive([child])
    assert first.added == ()
    assert [e["op_id"] for e in first.held] == [child["op_id"]]
    assert here.read_all() == []
    second = here.receive([parent])
    assert [e["op_id"] for e in second.added] == [parent["op_id"], child["op_id"]]
    assert second.held == ()


def test_a_held_op_another_handle_wrote_meanwhile_is_not_written_twice(tmp_path: Path) -> None:
    there = OpLog(tmp_path / "b", "s")
    parent = there.append(op(there, "bob"))
    child = there.append(
        make_op_entry(
            "bob",
            "context",
            add_atom_op("child"),
            there.next_lamport_ts(),
            parent_op_ids=[parent["op_id"]],
        )
    )
    first, second = OpLog(tmp_path / "a", "s"), OpLog(tmp_path / "a", "s")
    assert [e["op_id"] for e in first.receive([child]).held] == [child["op_id"]]
    second.receive([parent, child])  # another handle on the same log gets both
    result = first.receive([parent])
    assert result.added == ()
    assert result.held == ()
    ids = [e["op_id"] for e in first.read_all()]
    assert ids == [parent["op_id"], child["op_id"]]
    assert first.verify().ok


def test_receive_refuses_altered_or_acausal_ops_and_writes_nothing(tmp_path: Path) -> None:
    here = OpLog(tmp_path / "a", "s")
    there = OpLog(tmp_path / "b", "s")
    good = there.append(op(there, "bob"))
    altered = dict(there.append(op(there, "bob")))
    altered["actor_id"] = "mallory"
    with pytest.raises(InvalidInputError, match="does not match"):
        here.receive([good, altered])  # type: ignore[list-item]
    acausal = make_op_entry(
        "bob", "context", add_atom_op("x"), good["lamport_ts"], parent_op_ids=[good["op_id"]]
    )
    with pytest.raises(InvalidInputError, match="not above its parent"):
        here.receive([good, acausal])
    assert here.read_all() == []


def test_list_sessions_ignores_stray_folders(tmp_path: Path) -> None:
    OpLog(tmp_path, "b").append(make_op_entry("a", "x", {}, 1))
    OpLog(tmp_path, "a").append(make_op_entry("a", "x", {}, 1))
    (tmp_path / REPO_DIR / "oplog" / "not a session").mkdir()
    (tmp_path / REPO_DIR / "oplog" / "empty").mkdir()
    assert list_sessions(tmp_path) == ["a", "b"]
    assert list_sessions(tmp_path / "nowhere") == []
