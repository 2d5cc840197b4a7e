"""Real processes: four writers on one session, and writers killed with SIGKILL."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from contextfs import Repository
from contextfs.errors import NothingToDoError
from contextfs.oplog import OpLog
from contextfs.oplog.entry import check_entry, decode_json

WRITERS = 4
APPENDS = 2000

WRITER = textwrap.dedent(
    """
    import sys
    from contextfs.oplog import OpLog, add_atom_op, make_op_entry
    root, actor, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    log = OpLog(root, "shared")
    for i in range(count):
        op = add_atom_op(f"{actor} note {i}", timestamp=1_700_000_000_000_000 + i)
        log.append(make_op_entry(actor, "context", op, log.next_lamport_ts()))
    """
)


def spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_four_processes_append_2000_ops_each_to_one_session(tmp_path: Path) -> None:
    writers = [spawn(WRITER, str(tmp_path), f"w{n}", str(APPENDS)) for n in range(WRITERS)]
    for writer in writers:
        _, err = writer.communicate(timeout=600)
        assert writer.returncode == 0, err
    raw = (tmp_path / ".contextfs/oplog/shared/ops.jsonl").read_bytes()
    assert raw.endswith(b"\n")
    lines = raw.split(b"\n")[:-1]
    assert len(lines) == WRITERS * APPENDS
    entries = [check_entry(decode_json(line), verify_id=True) for line in lines]
    assert len({e["op_id"] for e in entries}) == len(entries)
    stamps = [e["lamport_ts"] for e in entries]
    assert all(a < b for a, b in itertools.pairwise(stamps)), "stamps not increasing"
    for n in range(WRITERS):
        texts = [e["domain_op"]["content"] for e in entries if e["actor_id"] == f"w{n}"]
        assert texts == [f"w{n} note {i}" for i in range(APPENDS)]
    assert OpLog(tmp_path, "shared").verify().ok


ACKING_WRITER = textwrap.dedent(
    """
    import sys
    from contextfs.oplog import OpLog, add_atom_op, make_op_entry
    log = OpLog(sys.argv[1], "crash")
    i = 0
    while True:
        batch = []
        for _ in range(200):  # big writes, so a kill can land inside one
            text = f"note {i} " + "padding " * 60
            batch.append(make_op_entry("w", "context", add_atom_op(text), 1))
            i += 1
        for entry in log.append_many(batch):
            print(entry["op_id"], flush=True)
    """
)


def test_sigkill_mid_append_loses_no_acknowledged_op(tmp_path: Path) -> None:
    acknowledged: set[str] = set()
    for round_number in range(3):
        writer = spawn(ACKING_WRITER, str(tmp_path))
        assert writer.stdout is not None
        wanted = 400 * (round_number + 1)
        while len(acknowledged) < wanted:
            line = writer.stdout.readline()
            assert line, writer.stderr.read() if writer.stderr else ""
            acknowledged.add(line.strip())
        os.kill(writer.pid, signal.SIGKILL)
        rest, _ = writer.communicate()
        acknowledged.update(rest.split())  # printed before the kill landed
        log = OpLog(tmp_path, "crash")
        stored = {e["op_id"] for e in log.read_all()}
        assert acknowledged <= stored
        assert log.verify().ok


COMMITTER = textwrap.dedent(
    """
    import sys
    from contextfs import Repository
    from contextfs.oplog import add_atom_op, make_op_entry
    repo = Repository.open(sys.argv[1])
    log = repo.oplog("live")
    i = 0
    while True:
        for _ in range(5):
            entry = make_op_entry("agent", "context", add_atom_op(f"fact {i}"), 1)
            log.append(entry)
            print(f"fact {i}", flush=True)
            i += 1
        repo.commit_oplog(log)
    """
)


def test_sigkill_while_crystallising_leaves_a_store_that_verifies(tmp_path: Path) -> None:
    Repository.init(tmp_path).close()
    acknowledged: list[str] = []
    for _ in range(3):
        writer = spawn(COMMITTER, str(tmp_path))
        assert writer.stdout is not None
        target = len(acknowledged) + 40
        while len(acknowledged) < target:
            line = writer.stdout.readline()
            assert line, writer.stderr.read() if writer.stderr else ""
            acknowledged.append(line.strip())
        time.sleep((len(acknowledged) % 5) / 100)  # vary where the kill lands
        os.kill(writer.pid, signal.SIGKILL)
        rest, _ = writer.communicate()
        acknowledged += [line for line in rest.splitlines() if line]
        with Repository.open(tmp_path) as repo:
            assert repo.verify().ok
            assert repo.oplog("live").verify().ok
    with Repository.open(tmp_path) as repo:
        with contextlib.suppress(NothingToDoError):
            repo.commit_oplog("live")
        held = {m.content for m in repo.snapshot()}
        assert set(acknowledged) <= held
        assert repo.verify().ok
        assert repo.oplog("live").verify().ok
