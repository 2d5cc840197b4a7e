"""The op log as an RFC 6962 transparency log: roots, consistency proofs, tampering."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contextfs.errors import InvalidInputError
from contextfs.model.merkle import (
    extend_frontier,
    frontier_root,
    leaf_hash,
    root,
    verify_consistency,
)
from contextfs.oplog import OpLog, add_atom_op, make_op_entry


def fill(log: OpLog, count: int, actor: str = "a") -> None:
    for i in range(count):
        operation = add_atom_op(f"{actor} fact {i}", timestamp=i)
        log.append(make_op_entry(actor, "context", operation, log.next_lamport_ts()))


@given(sizes=st.lists(st.integers(0, 40), min_size=1, max_size=5))
def test_a_frontier_extended_in_any_steps_gives_the_rfc_6962_root(sizes: list[int]) -> None:
    leaves = [str(i).encode() for i in range(sum(sizes))]
    frontier: list[bytes] = []
    done = 0
    for size in sizes:
        batch = [leaf_hash(leaf) for leaf in leaves[done : done + size]]
        frontier = extend_frontier(frontier, done, batch)
        done += size
        assert frontier_root(frontier) == root(leaves[:done])
        assert len(frontier) == done.bit_count()


def test_extend_frontier_refuses_a_frontier_of_the_wrong_shape() -> None:
    with pytest.raises(InvalidInputError):
        extend_frontier([], 3, [])


def test_checkpoints_record_roots_that_a_stranger_can_check(tmp_path: Path) -> None:
    log = OpLog(tmp_path, "s")
    fill(log, 5)
    first = log.checkpoint("one")
    fill(log, 8, "b")
    second = log.checkpoint("two")
    lines = (log.folder / "ops.jsonl").read_bytes().splitlines()
    assert first["log_root"] == root(lines[:5]).hex()
    assert second["log_root"] == root(lines).hex() == log.root()
    proof = [bytes.fromhex(h) for h in log.consistency_proof(5, 13)]
    assert verify_consistency(
        5, 13, bytes.fromhex(first["log_root"]), bytes.fromhex(second["log_root"]), proof
    )
    report = log.verify(trusted=(5, first["log_root"]))
    assert report.ok
    assert (report.ops, report.checkpoints) == (13, 2)
    assert report.root == second["log_root"]


def test_rewriting_history_is_caught(tmp_path: Path) -> None:
    log = OpLog(tmp_path, "s")
    fill(log, 6)
    checkpoint = log.checkpoint("one")
    fill(log, 3)
    log.checkpoint("two")
    path = log.folder / "ops.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    # Swap two early lines: every op still verifies on its own, the order does not.
    lines[1], lines[2] = lines[2], lines[1]
    path.write_bytes(b"".join(lines))
    report = OpLog(tmp_path, "s").verify(trusted=(6, checkpoint["log_root"]))
    assert not report.ok
    assert any("root" in problem for problem in report.problems)
    assert any("trusted" in problem for problem in report.problems)


def test_an_altered_op_is_caught(tmp_path: Path) -> None:
    log = OpLog(tmp_path, "s")
    fill(log, 3)
    path = log.folder / "ops.jsonl"
    path.write_bytes(path.read_bytes().replace(b"a fact 1", b"a fact X"))
    report = OpLog(tmp_path, "s").verify()
    assert [p.split(":")[0] for p in report.problems] == ["line 2"]
    assert "does not match" in report.problems[0]


def test_a_dropped_op_breaks_causality_and_the_checkpoint(tmp_path: Path) -> None:
    log = OpLog(tmp_path, "s")
    fill(log, 2)
    parent = log.read_all()[0]
    child = make_op_entry(
        "a", "context", add_atom_op("child"), log.next_lamport_ts(), parent_op_ids=[parent["op_id"]]
    )
    log.append(child)
    log.checkpoint("one")
    path = log.folder / "ops.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[1:]))
    (log.folder / "ops.state").unlink()
    report = OpLog(tmp_path, "s").verify()
    assert any("parent" in p for p in report.problems)
    assert any("checkpoint 1" in p for p in report.problems)
