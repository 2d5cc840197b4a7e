"""The contract every op-log backend (:class:`~contextfs.oplog.base.OpLogBackend`) must pass.

Subclass :class:`OpLogContract` in a ``Test*`` class and override
:meth:`~OpLogContract.make_log` and :meth:`~OpLogContract.rewrite_line`::

    class TestFileOpLog(OpLogContract):
        def make_log(self, session: str) -> OpLogBackend:
            return OpLog(self.tmp_path / "repo", session)

        def rewrite_line(self, log: OpLogBackend, number: int, line: bytes) -> None:
            ...  # replace line ``number`` of ops.jsonl

Sessions stand in for replicas: two handles on one session name share a log
(as two processes or machines would), and two names are independent logs (a
replica elsewhere), since no op names its session. Every backend must give
the same op ids, leaf hashes, roots and cuts as the file log for the same ops
in the same order; the suite checks that against an :class:`OpLog` in
``tmp_path``. The suite needs pytest; the library never imports this module.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contextfs.errors import InvalidInputError
from contextfs.model.merkle import EMPTY_ROOT, root, verify_consistency
from contextfs.oplog import Cut, OpEntry, OpLog, add_atom_op, make_op_entry, merge_key
from contextfs.oplog.base import OpLogBackend
from contextfs.oplog.entry import encode_line, restamp

#: A fixed memory timestamp, so ops made twice are byte-identical.
T0 = 1_760_000_000_000_000


def fact(log: OpLogBackend, actor: str = "alice", text: str = "a memory", **kw: Any) -> OpEntry:
    """A ``context`` op adding ``text``, stamped by ``log``'s clock."""
    operation = add_atom_op(text, timestamp=T0)
    return make_op_entry(actor, "context", operation, log.next_lamport_ts(), **kw)


def fill(log: OpLogBackend, count: int, actor: str = "a") -> list[OpEntry]:
    """Append ``count`` facts ``"<actor> fact <i>"``; return them as stored."""
    return [log.append(fact(log, actor, f"{actor} fact {i}")) for i in range(count)]


def line_of(entry: OpEntry) -> bytes:
    """The op's canonical line without its newline (its RFC 6962 leaf)."""
    return encode_line(entry)[:-1]


def _public(record: Any) -> dict[str, Any]:
    """A checkpoint without its wall-clock time."""
    return {k: v for k, v in dict(record).items() if k != "created_at"}


class OpLogContract:
    """What every op-log backend promises (the file log's semantics)."""

    tmp_path: Path
    request: pytest.FixtureRequest
    _opened: list[OpLogBackend]

    def make_log(self, session: str) -> OpLogBackend:
        """Return a new handle on ``session`` in this test's storage; override it."""
        raise NotImplementedError

    def rewrite_line(self, log: OpLogBackend, number: int, line: bytes) -> None:
        """Replace the stored bytes of op ``number`` (1-based) behind the log's back."""
        raise NotImplementedError

    @pytest.fixture(autouse=True)
    def _oplog_contract_setup(
        self, tmp_path: Path, request: pytest.FixtureRequest
    ) -> Iterator[None]:
        self.tmp_path = tmp_path
        self.request = request
        self._opened = []
        yield
        for log in reversed(self._opened):
            log.close()

    def open(self, session: str = "s") -> OpLogBackend:
        """A handle from :meth:`make_log`, closed when the test ends."""
        log = self.make_log(session)
        self._opened.append(log)
        return log

    # -- appending ----------------------------------------------------------------

    def test_a_new_session_is_empty(self) -> None:
        log = self.open()
        assert isinstance(log, OpLogBackend)
        assert log.session_id() == "s"
        assert log.read_all() == []
        assert log.end() == Cut(0, 0)
        assert log.pending() == ([], Cut(0, 0), Cut(0, 0))
        assert log.read_checkpoint() is None
        assert log.checkpoints() == []
        assert log.repairs == []
        assert log.root() == EMPTY_ROOT.hex()
        report = log.verify()
        assert (report.ok, report.ops, report.checkpoints) == (True, 0, 0)
        assert report.root == EMPTY_ROOT.hex()
        assert not log.exists()
        assert log.next_lamport_ts() == 1

    def test_appends_keep_order_and_stamps_strictly_increase(self) -> None:
        log = self.open()
        stored = [log.append(fact(log, actor, f"{actor} {i}")) for i in range(3) for actor in "ab"]
        assert log.exists()
        assert log.read_all() == stored
        assert [e["lamport_ts"] for e in stored] == [1, 2, 3, 4, 5, 6]
        assert log.end() == Cut(6, sum(len(encode_line(e)) for e in stored))
        more = log.append_many([fact(log, "c", "x"), fact(log, "c", "y")])
        assert [e["lamport_ts"] for e in more] == [7, 8]
        assert log.read_all() == stored + more

    def test_a_stale_stamp_is_restamped_above_everything_in_the_log(self) -> None:
        one, two = self.open(), self.open()
        a, b = fact(one), fact(two, "bob")  # both took stamp 1
        assert a["lamport_ts"] == b["lamport_ts"] == 1
        stored_a, stored_b = one.append(a), two.append(b)
        assert stored_a == a
        assert stored_b == restamp(b, 2)
        assert stored_b["op_id"] != b["op_id"]
        assert [e["lamport_ts"] for e in one.read_all()] == [1, 2]
        assert one.next_lamport_ts() == 3

    def test_stamps_continue_in_a_new_handle(self) -> None:
        fill(self.open(), 3)
        fresh = self.open()
        assert fresh.next_lamport_ts() == 4
        assert fresh.next_lamport_ts() == 5  # the counter advances, as in the seed

    def test_append_many_is_all_or_nothing_and_rewrites_parents_it_restamps(self) -> None:
        log = self.open()
        log.append(fact(log))
        first = make_op_entry("a", "context", add_atom_op("x", timestamp=T0), 1)  # stale
        child = make_op_entry(
            "a", "context", add_atom_op("y", timestamp=T0), 2, parent_op_ids=[first["op_id"]]
        )
        stored = log.append_many([first, child])
        assert stored[1]["parent_op_ids"] == [stored[0]["op_id"]]
        assert [e["lamport_ts"] for e in stored] == [2, 3]
        before = log.read_all()
        bad = dict(fact(log))
        bad["domain_op"] = {"op": "add_atom"}  # no content
        with pytest.raises(InvalidInputError):
            log.append_many([fact(log), bad])  # type: ignore[list-item]
        orphan = make_op_entry("a", "context", add_atom_op("z"), 99, parent_op_ids=["f" * 64])
        with pytest.raises(InvalidInputError, match="causal parent"):
            log.append_many([fact(log), orphan])
        assert log.read_all() == before
        assert log.append_many([]) == []

    def test_handles_in_threads_appending_at_once_lose_nothing(self) -> None:
        handles = [self.open() for _ in range(4)]

        def work(log: OpLogBackend, actor: str) -> None:
            for i in range(25):
                log.append(fact(log, actor, f"{actor} {i}"))

        threads = [
            threading.Thread(target=work, args=(log, f"t{n}")) for n, log in enumerate(handles)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        entries = handles[0].read_all()
        assert len({e["op_id"] for e in entries}) == len(entries) == 100
        stamps = [e["lamport_ts"] for e in entries]
        assert all(a < b for a, b in itertools.pairwise(stamps))
        for n in range(4):
            texts = [e["domain_op"]["content"] for e in entries if e["actor_id"] == f"t{n}"]
            assert texts == [f"t{n} {i}" for i in range(25)]
        assert handles[1].verify().ok

    # -- merging replicas ---------------------------------------------------------

    def test_receive_dedupes_keeps_stamps_and_applies_the_lamport_rule(self) -> None:
        here, there = self.open("s"), self.open("elsewhere")
        mine = here.append(fact(here))
        theirs = [there.append(fact(there, "bob", f"b{i}")) for i in range(10)]
        result = here.receive([*theirs, mine, theirs[0]])
        assert result.duplicates == 2
        assert result.held == ()
        assert list(result.added) == sorted(theirs, key=merge_key)
        assert here.read_all() == [mine, *sorted(theirs, key=merge_key)]
        assert here.next_lamport_ts() == 11  # max(local 1, remote 10) + 1
        local = here.append(fact(here, "alice", "after the merge"))
        assert local["lamport_ts"] == 12
        again = here.receive(theirs)
        assert (again.added, again.duplicates, again.held) == ((), 10, ())

    def test_the_lamport_rule_reaches_other_handles_through_the_log(self) -> None:
        here, there = self.open("s"), self.open("elsewhere")
        theirs = [there.append(fact(there, "bob", f"b{i}")) for i in range(5)]
        here.receive(theirs)
        other = self.open("s")
        assert other.next_lamport_ts() == 6
        assert other.append(fact(other, "carol"))["lamport_ts"] == 7

    def test_ops_whose_parents_are_missing_are_held_until_they_arrive(self) -> None:
        here, there = self.open("s"), self.open("elsewhere")
        parent = there.append(fact(there, "bob"))
        child = there.append(fact(there, "bob", "child", parent_op_ids=[parent["op_id"]]))
        grandchild = there.append(fact(there, "bob", "gc", parent_op_ids=[child["op_id"]]))
        first = here.receive([grandchild, child])
        assert first.added == ()
        assert [e["op_id"] for e in first.held] == [child["op_id"], grandchild["op_id"]]
        assert here.read_all() == []
        again = here.receive([child])  # already held: a duplicate, still held
        assert (again.added, again.duplicates, len(again.held)) == ((), 1, 2)
        second = here.receive([parent])
        assert list(second.added) == [parent, child, grandchild]
        assert second.held == ()
        assert here.read_all() == [parent, child, grandchild]
        assert here.receive([]).held == ()
        assert here.verify().ok

    def test_receive_refuses_altered_or_acausal_ops_and_writes_nothing(self) -> None:
        here, there = self.open("s"), self.open("elsewhere")
        good = there.append(fact(there, "bob"))
        altered = dict(there.append(fact(there, "bob")))
        altered["actor_id"] = "mallory"
        with pytest.raises(InvalidInputError, match="does not match"):
            here.receive([good, altered])
        acausal = make_op_entry(
            "bob", "context", add_atom_op("x"), good["lamport_ts"], parent_op_ids=[good["op_id"]]
        )
        with pytest.raises(InvalidInputError, match="not above its parent"):
            here.receive([good, acausal])
        with pytest.raises(InvalidInputError, match="JSON object with an op_id"):
            here.receive([{"actor_id": "bob"}])
        assert here.read_all() == []
        here.receive([good])
        forged = dict(good)
        forged["domain_op"] = {"op": "add_atom", "content": "forged"}
        with pytest.raises(InvalidInputError, match="does not match"):
            here.receive([forged])  # an id already here, with other content
        assert here.read_all() == [good]

    def test_replay_is_in_merge_order_whatever_the_arrival_order(self) -> None:
        a, b = self.open("replica-a"), self.open("replica-b")
        from_a = fill(a, 4, "a")
        from_b = fill(b, 4, "b")
        x, y = self.open("x"), self.open("y")
        x.receive(from_a[:2])
        x.receive(from_b)
        x.receive(from_a[2:])
        y.receive(list(reversed(from_b + from_a)))
        assert x.read_all() != y.read_all()  # arrival order differs...
        expected = sorted(from_a + from_b, key=merge_key)
        assert x.replay_since_checkpoint() == y.replay_since_checkpoint() == expected
        assert x.to_structured_delta("context")["ops"] == [e["domain_op"] for e in expected]

    # -- cuts and checkpoints -----------------------------------------------------

    def test_cuts_pending_and_read_range(self) -> None:
        log = self.open()
        ops = fill(log, 5)
        lengths = [len(encode_line(e)) for e in ops]
        two = log.cut_after(Cut(0, 0), 2)
        assert two == Cut(2, sum(lengths[:2]))
        assert log.cut_after(two, 0) == two
        assert log.cut_after(two, 3) == log.end() == Cut(5, sum(lengths))
        with pytest.raises(InvalidInputError, match="fewer than 4 ops after op 2"):
            log.cut_after(two, 4)
        assert log.read_range(two, log.end()) == ops[2:]
        assert log.read_range(Cut(1, lengths[0]), two) == ops[1:2]
        first = log.checkpoint("one", through=two)
        assert (first["op_count"], first["log_bytes"], first["lamport_ts"]) == (2, two.bytes, 2)
        assert log.pending() == (ops[2:], two, log.end())
        assert log.replay_since_checkpoint() == ops[2:]
        with pytest.raises(InvalidInputError, match="outside"):
            log.checkpoint("back", through=log.cut_after(Cut(0, 0), 1))
        with pytest.raises(InvalidInputError, match="outside"):
            log.checkpoint("ahead", through=Cut(6, sum(lengths) + 10))
        with pytest.raises(InvalidInputError, match="snapshot id"):
            log.checkpoint("")
        assert log.checkpoints() == [first]

    def test_checkpoints_are_cuts_so_a_late_low_stamp_op_is_not_lost(self) -> None:
        """The seed filtered replay by stamp, so a concurrent op merged after the
        checkpoint with a lower stamp vanished from the next commit. Here the
        cut is a position in the log."""
        here, there = self.open("s"), self.open("elsewhere")
        fill(here, 5)
        late = there.append(fact(there, "bob", "concurrent edit"))  # stamp 1, made elsewhere
        checkpoint = here.checkpoint("snapshot-1")
        assert (checkpoint["lamport_ts"], checkpoint["op_count"]) == (5, 5)
        assert here.replay_since_checkpoint() == []
        here.receive([late])
        assert here.replay_since_checkpoint() == [late]
        assert here.pending()[0] == [late]
        seed_cut = [e for e in here.read_all() if e["lamport_ts"] > checkpoint["lamport_ts"]]
        assert late not in seed_cut  # what the seed would have replayed
        second = here.checkpoint("snapshot-2")
        assert (second["lamport_ts"], second["op_count"]) == (5, 6)
        assert here.replay_since_checkpoint() == []

    def test_checkpoint_records_hold_the_cut_root_and_frontier(self) -> None:
        log = self.open()
        ops = fill(log, 3)
        first = log.checkpoint("one", commit="c" * 64)
        ops += fill(log, 4, "b")
        second = log.checkpoint("two")
        lines = [line_of(e) for e in ops]
        assert _public(first) == {
            "session_id": "s",
            "snapshot_id": "one",
            "lamport_ts": 3,
            "op_count": 3,
            "log_bytes": sum(len(line) + 1 for line in lines[:3]),
            "log_root": root(lines[:3]).hex(),
            "frontier": first["frontier"],
            "commit": "c" * 64,
        }
        assert len(first["frontier"]) == 2
        assert second["log_root"] == root(lines).hex() == log.root()
        assert (second["op_count"], second["lamport_ts"], second["commit"]) == (7, 7, None)
        assert len(second["frontier"]) == 3
        assert log.read_checkpoint() == second
        assert self.open().checkpoints() == [first, second]

    # -- transparency -------------------------------------------------------------

    def test_checkpoints_record_roots_that_a_stranger_can_check(self) -> None:
        log = self.open()
        fill(log, 5)
        first = log.checkpoint("one")
        fill(log, 8, "b")
        second = log.checkpoint("two")
        lines = [line_of(e) for e in log.read_all()]
        assert first["log_root"] == root(lines[:5]).hex() == log.root(5)
        assert second["log_root"] == root(lines).hex() == log.root()
        proof = [bytes.fromhex(h) for h in log.consistency_proof(5, 13)]
        assert verify_consistency(
            5, 13, bytes.fromhex(first["log_root"]), bytes.fromhex(second["log_root"]), proof
        )
        report = log.verify(trusted=(5, first["log_root"]))
        assert report.ok, report.problems
        assert (report.ops, report.checkpoints, report.root) == (13, 2, second["log_root"])
        wrong = log.verify(trusted=(5, second["log_root"]))
        assert wrong.problems == ("the log does not extend the trusted root at 5 ops",)
        with pytest.raises(InvalidInputError):
            log.leaf_hashes(14)

    def test_an_altered_op_is_caught(self) -> None:
        log = self.open()
        ops = fill(log, 3)
        self.rewrite_line(log, 2, line_of(ops[1]).replace(b"a fact 1", b"a fact X"))
        report = self.open().verify()
        assert [p.split(":")[0] for p in report.problems] == ["line 2"]
        assert "does not match" in report.problems[0]

    def test_reordering_history_is_caught(self) -> None:
        log = self.open()
        ops = fill(log, 6)
        checkpoint = log.checkpoint("one")
        fill(log, 3)
        log.checkpoint("two")
        # Swap two early ops: each still verifies on its own, the order does not.
        self.rewrite_line(log, 2, line_of(ops[2]))
        self.rewrite_line(log, 3, line_of(ops[1]))
        report = self.open().verify(trusted=(6, checkpoint["log_root"]))
        assert not report.ok
        assert "checkpoint 1: the log's root at 6 ops differs" in report.problems
        assert "the log does not extend the trusted root at 6 ops" in report.problems

    # -- the seed's reading API ---------------------------------------------------

    def test_to_structured_delta(self) -> None:
        log = self.open()
        fill(log, 2)
        log.append(make_op_entry("a", "midi", {"op": "note", "pitch": 60}, log.next_lamport_ts()))
        log.append(make_op_entry("a", "midi", {"op": "note", "pitch": 62}, log.next_lamport_ts()))
        delta = log.to_structured_delta("midi")
        assert delta == {
            "domain": "midi",
            "ops": [{"op": "note", "pitch": 60}, {"op": "note", "pitch": 62}],
            "summary": "2 note",
        }
        assert log.to_structured_delta("context")["summary"] == "2 add_atom"
        log.checkpoint("snap")
        assert log.to_structured_delta("midi") == {"domain": "midi", "ops": [], "summary": "no ops"}

    # -- one format for every backend ---------------------------------------------

    def test_the_same_ops_give_the_file_logs_ids_roots_and_cuts(self) -> None:
        log, reference = self.open(), OpLog(self.tmp_path / "reference", "s")
        remote = OpLog(self.tmp_path / "remote", "s")
        try:
            theirs = [remote.append(fact(remote, "bob", f"b{i}")) for i in range(4)]
            made = [fact(log, "alice", f"a{i}") for i in range(3)]
            made.append(make_op_entry("alice", "context", add_atom_op("stale", timestamp=T0), 1))
            assert log.append_many(made) == reference.append_many(made)
            assert log.receive(theirs) == reference.receive(theirs)
            records = [log.checkpoint("one"), reference.checkpoint("one")]
            late = make_op_entry("carol", "context", add_atom_op("late", timestamp=T0), 1)
            assert log.receive([late]) == reference.receive([late])
            extra = fact(reference, "alice", "more")
            assert log.append(extra) == reference.append(extra)
            assert log.read_all() == reference.read_all()
            assert log.end() == reference.end()
            assert log.leaf_hashes() == reference.leaf_hashes()
            assert log.root() == reference.root()
            assert log.consistency_proof(3, 9) == reference.consistency_proof(3, 9)
            assert _public(records[0]) == _public(records[1])
            assert _public(log.checkpoint("two")) == _public(reference.checkpoint("two"))
            assert log.verify().root == reference.verify().root
        finally:
            reference.close()
            remote.close()

    # -- crystallising and handles --------------------------------------------------

    def test_commit_lock_excludes_another_handle(self) -> None:
        one, two = self.open(), self.open()
        order: list[str] = []
        holding, release = threading.Event(), threading.Event()

        def first() -> None:
            with one.commit_lock():
                order.append("one in")
                holding.set()
                release.wait(10)
                order.append("one out")

        def second() -> None:
            holding.wait(10)
            with two.commit_lock():
                order.append("two in")

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for thread in threads:
            thread.start()
        holding.wait(10)
        threads[1].join(0.3)  # the second is still waiting for the lock
        release.set()
        for thread in threads:
            thread.join(10)
        assert order == ["one in", "one out", "two in"]
        with one.commit_lock():  # released: free again
            pass

    def test_close_is_idempotent_and_handles_are_context_managers(self) -> None:
        log = self.open()
        with log as same:
            assert same is log
            fill(same, 1)
        log.close()
        log.close()
        assert len(self.open().read_all()) == 1


__all__ = ["OpLogContract", "fact", "fill", "line_of"]
