"""The op-log port: what crystallising, the CLI and the server need from a session's log.

Two backends implement it: :class:`~contextfs.oplog.log.OpLog` (files under
``.contextfs/oplog/``) and :class:`~contextfs.oplog.postgres_log.PostgresOpLog`
(rows in a PostgreSQL database). They promise the same semantics, held by the
shipped contract suite :mod:`contextfs.testing.oplog_contract`:

* log order is arrival order; a local append is re-stamped above every stamp
  already in the log, so local stamps increase strictly in log order;
* ``receive`` keeps remote stamps, dedupes by op id, checks each op's id
  against its content, holds back ops whose causal parents are missing, and
  moves the local clock past everything merged (the Lamport receive rule);
* a :class:`~contextfs.oplog.log.Cut` is a position in log order, never a
  stamp, so an op merged late with a low stamp lands after every checkpoint
  taken before it arrived;
* the log is an RFC 6962 log over the canonical lines (:func:`~.entry.encode_line`
  without the newline): the same ops in the same order give the same leaf
  hashes, roots, op ids and checkpoint cuts on either backend.

The pure checks shared by the backends' ``verify`` live here too.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, Self, cast, runtime_checkable

import msgspec

from ..errors import InvalidInputError
from ..model.merkle import (
    consistency_proof_from_hashes,
    extend_frontier,
    frontier_root,
    leaf_hash,
    verify_consistency,
)
from ..store.base import Store
from .entry import OpEntry, OpLogCheckpoint, check_entry, decode_json, merge_key, restamp


@dataclass(frozen=True, slots=True)
class Repair:
    """A torn last line cut off when the log was opened (left by a crash mid-append)."""

    file: str
    line: int
    dropped_bytes: int


@dataclass(frozen=True, slots=True)
class Cut:
    """A prefix of the log: its first ``ops`` lines, ``bytes`` bytes long."""

    ops: int
    bytes: int


@dataclass(frozen=True, slots=True)
class ReceiveResult:
    """What :meth:`OpLog.receive` did: ops added (in merge order), duplicates, held."""

    added: tuple[OpEntry, ...]
    duplicates: int
    held: tuple[OpEntry, ...]


@dataclass(frozen=True, slots=True)
class LogVerification:
    """What :meth:`OpLog.verify` found; ``ok`` when ``problems`` is empty."""

    session_id: str
    ops: int
    checkpoints: int
    root: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when the log, its checkpoints and their proofs all check out."""
        return not self.problems


@runtime_checkable
class OpLogBackend(Protocol):
    """One session's append-only, Lamport-clocked op log, wherever it is kept."""

    @property
    def repairs(self) -> list[Repair]:
        """Damage a crash left and opening the log cut off (empty where none can occur)."""
        ...

    def session_id(self) -> str:
        """Return the session id."""
        ...

    def exists(self) -> bool:
        """True once the session has a log."""
        ...

    def next_lamport_ts(self) -> int:
        """Return a stamp above every stamp this log or this handle has seen."""
        ...

    def append(self, entry: OpEntry) -> OpEntry:
        """Append one op durably; return it as stored (possibly re-stamped)."""
        ...

    def append_many(self, entries: Iterable[OpEntry]) -> list[OpEntry]:
        """Append ops durably, all or none; return them as stored."""
        ...

    def receive(self, entries: Iterable[OpEntry | dict[str, Any]]) -> ReceiveResult:
        """Merge another replica's ops, keeping their stamps."""
        ...

    def read_all(self) -> list[OpEntry]:
        """Return every op in log order."""
        ...

    def end(self) -> Cut:
        """The cut at the log's current end."""
        ...

    def cut_after(self, start: Cut, count: int) -> Cut:
        """Return the cut ``count`` ops after ``start``."""
        ...

    def pending(self) -> tuple[list[OpEntry], Cut, Cut]:
        """Return the ops after the last checkpoint (log order) and the cuts around them."""
        ...

    def read_range(self, start: Cut, end: Cut) -> list[OpEntry]:
        """Return the ops between two cuts, in log order."""
        ...

    def replay_since_checkpoint(self) -> list[OpEntry]:
        """Return the ops after the last checkpoint, in merge order."""
        ...

    def to_structured_delta(self, domain: str) -> dict[str, Any]:
        """Collapse the pending ops of one domain as the seed does."""
        ...

    def checkpoint(
        self, snapshot_id: str, *, through: Cut | None = None, commit: str | None = None
    ) -> OpLogCheckpoint:
        """Record that the ops up to ``through`` (default: all) are in ``snapshot_id``."""
        ...

    def read_checkpoint(self) -> OpLogCheckpoint | None:
        """Return the latest checkpoint, or None."""
        ...

    def checkpoints(self) -> list[OpLogCheckpoint]:
        """Return every checkpoint, oldest first."""
        ...

    def leaf_hashes(self, size: int | None = None) -> list[bytes]:
        """Return the RFC 6962 leaf hashes of the first ``size`` ops (default: all)."""
        ...

    def root(self, size: int | None = None) -> str:
        """Return the RFC 6962 root (hex) of the first ``size`` ops."""
        ...

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[str]:
        """Return the RFC 6962 proof (hex) that the log of ``new_size`` extends ``old_size``."""
        ...

    def verify(self, *, trusted: tuple[int, str] | None = None) -> LogVerification:
        """Check every op, its causal order, and every checkpoint and its proof."""
        ...

    def commit_lock(self) -> AbstractContextManager[None]:
        """Exclude other crystallisers of this session, in any process."""
        ...

    def close(self) -> None:
        """Release what this handle holds; safe to call twice."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


@runtime_checkable
class TransactionalOpLog(Protocol):
    """A log whose writes can join a store's transaction.

    :func:`~contextfs.oplog.crystallise.commit_oplog` then writes the commit,
    the refs and the checkpoint in one transaction, so no crash can land
    between them.
    """

    def joins_transactions_of(self, store: Store) -> bool:
        """True when this log's writes join ``store``'s open transaction."""
        ...


def structured_delta(entries: Sequence[OpEntry], domain: str) -> dict[str, Any]:
    """The seed's ``to_structured_delta``: ``domain``'s ops (already in merge order), counted."""
    ops = [e["domain_op"] for e in entries if e["domain"] == domain]
    counts: dict[str, int] = {}
    for op in ops:
        kind = str(op.get("op", "unknown"))
        counts[kind] = counts.get(kind, 0) + 1
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "no ops"
    return {"domain": domain, "ops": ops, "summary": summary}


@dataclass(slots=True)
class LineCheck:
    """What :func:`check_lines` found.

    ``hashes`` are the leaf hashes; ``offsets[n]`` the byte length of the first
    ``n`` lines (their cut); ``stamps`` the ``(op_id, lamport_ts)`` of each line
    (``("", 0)`` where it did not decode), for a backend's own cross-checks.
    """

    hashes: list[bytes] = field(default_factory=list)
    offsets: list[int] = field(default_factory=lambda: [0])
    problems: list[str] = field(default_factory=list)
    stamps: list[tuple[str, int]] = field(default_factory=list)


def check_lines(lines: Iterable[tuple[int, bytes]]) -> LineCheck:
    """Check a log's lines (``(number, line without newline)``, in log order).

    Every op must decode, match its id, appear once and come after its parents.
    """
    found = LineCheck()
    seen: dict[str, int] = {}
    for number, line in lines:
        found.hashes.append(leaf_hash(line))
        found.offsets.append(found.offsets[-1] + len(line) + 1)
        try:
            entry = check_entry(decode_json(line), verify_id=True)
        except (msgspec.DecodeError, InvalidInputError) as exc:
            found.problems.append(f"line {number}: {exc}")
            found.stamps.append(("", 0))
            continue
        op_id = entry["op_id"]
        found.stamps.append((op_id, entry["lamport_ts"]))
        if op_id in seen:
            found.problems.append(
                f"line {number}: op {op_id[:16]} is already on line {seen[op_id]}"
            )
        for parent in entry["parent_op_ids"]:
            if parent not in seen:
                found.problems.append(
                    f"line {number}: parent {parent[:16]} does not come before the op"
                )
        seen.setdefault(op_id, number)
    return found


class RootCache:
    """RFC 6962 roots of a log's prefixes, each computed once."""

    def __init__(self, hashes: Sequence[bytes]) -> None:
        self.hashes = hashes
        self._roots: dict[int, bytes] = {}

    def __call__(self, size: int) -> bytes:
        if size not in self._roots:
            self._roots[size] = frontier_root(extend_frontier([], 0, self.hashes[:size]))
        return self._roots[size]


def check_checkpoints(
    found: LineCheck,
    records: Sequence[OpLogCheckpoint],
    trusted: tuple[int, str] | None,
    root_at: RootCache,
) -> Iterator[str]:
    """Yield what is wrong with ``records`` (oldest first) and ``trusted`` against the lines.

    Each checkpoint's cut and root must match the log's prefix, and each must be
    provably consistent with the one before: an RFC 6962 consistency proof is
    built here and checked as a stranger would check it.
    """
    hashes = found.hashes
    previous: OpLogCheckpoint | None = None
    for number, record in enumerate(records, 1):
        size = record["op_count"]
        if size > len(hashes):
            yield f"checkpoint {number} covers {size} ops; the log holds {len(hashes)}"
            continue
        if record["log_bytes"] != found.offsets[size]:
            yield f"checkpoint {number} says the cut is at byte {record['log_bytes']}"
        if record["log_root"] != root_at(size).hex():
            yield f"checkpoint {number}: the log's root at {size} ops differs"
        if previous is not None:
            old = previous["op_count"]
            proof = consistency_proof_from_hashes(hashes[:size], min(old, size))
            if old > size or not verify_consistency(
                old,
                size,
                bytes.fromhex(previous["log_root"]),
                bytes.fromhex(record["log_root"]),
                proof,
            ):
                yield f"checkpoint {number} is not consistent with checkpoint {number - 1}"
        previous = record
    if trusted is not None:
        old_size, old_root = trusted
        ok = 0 <= old_size <= len(hashes)
        if ok:
            proof = consistency_proof_from_hashes(hashes, old_size)
            ok = verify_consistency(
                old_size, len(hashes), hex32(old_root), root_at(len(hashes)), proof
            )
        if not ok:
            yield f"the log does not extend the trusted root at {old_size} ops"


def decode_checkpoint(data: bytes, session_id: str) -> OpLogCheckpoint:
    """Decode one checkpoint record (canonical JSON) of session ``session_id``.

    Raises:
        InvalidInputError: the bytes are not JSON, or not a checkpoint of the session.
    """
    try:
        value = decode_json(data)
    except msgspec.DecodeError as exc:
        raise InvalidInputError(f"not valid JSON ({exc})") from None
    ints = ("lamport_ts", "op_count", "log_bytes")
    texts = ("session_id", "snapshot_id", "created_at", "log_root")
    if (
        not isinstance(value, dict)
        or not all(isinstance(value.get(k), int) and value[k] >= 0 for k in ints)
        or not all(isinstance(value.get(k), str) for k in texts)
        or not isinstance(value.get("frontier"), list)
        or len(value["frontier"]) != value["op_count"].bit_count()
        or value["session_id"] != session_id
    ):
        raise InvalidInputError("not a checkpoint of this session")
    return cast(OpLogCheckpoint, value)


def stamp_appends(
    entries: Sequence[OpEntry], known: Container[str], stamp: int, session_id: str
) -> list[OpEntry]:
    """Return ``entries`` as a log whose highest stamp is ``stamp`` stores them, in order.

    An op whose stamp is not above the one before it is re-stamped (its id
    changes with it, and a later op of the batch naming it as a parent is
    rewritten to match), so stamps strictly increase in log order. Both
    backends run this under their write lock.

    Raises:
        InvalidInputError: an op names a parent neither in ``known`` (the log)
            nor earlier in the batch.
    """
    stored: list[OpEntry] = []
    renamed: dict[str, str] = {}
    batch: set[str] = set()
    for entry in entries:
        parents = [renamed.get(p, p) for p in entry["parent_op_ids"]]
        missing = [p for p in parents if p not in known and p not in batch]
        if missing:
            raise InvalidInputError(
                f"op names a causal parent not in session {session_id!r}: {missing[0][:16]}"
            )
        moved = entry
        if entry["lamport_ts"] <= stamp or parents != entry["parent_op_ids"]:
            moved = restamp(entry, max(entry["lamport_ts"], stamp + 1), parents)
            renamed[entry["op_id"]] = moved["op_id"]
        stamp = moved["lamport_ts"]
        batch.add(moved["op_id"])
        stored.append(moved)
    return stored


def accept_received(
    incoming: Iterable[OpEntry], known: Mapping[str, int]
) -> tuple[list[OpEntry], list[OpEntry]]:
    """Split another replica's new ops into those to append (merge order) and those held.

    An op is accepted once every causal parent is in the log (``known``: op
    id -> stamp) or accepted before it; the rest wait for their parents.

    Raises:
        InvalidInputError: an op's stamp is not above its parents' (the Lamport rule).
    """
    accepted: dict[str, OpEntry] = {}
    waiting = sorted(incoming, key=merge_key)
    while waiting:  # valid ops are already in causal order: one pass, one check
        still: list[OpEntry] = []
        for entry in waiting:
            stamps = [
                known.get(p) or (accepted[p]["lamport_ts"] if p in accepted else 0)
                for p in entry["parent_op_ids"]
            ]
            if not all(stamps):
                still.append(entry)
                continue
            if stamps and entry["lamport_ts"] <= max(stamps):
                raise InvalidInputError(
                    f"op {entry['op_id'][:16]} has stamp {entry['lamport_ts']},"
                    f" not above its parent's {max(stamps)}"
                )
            accepted[entry["op_id"]] = entry
        if len(still) == len(waiting):
            break
        waiting = still
    return list(accepted.values()), waiting


def hex32(text: str) -> bytes:
    """Return a 64-hex-digit root as bytes.

    Raises:
        InvalidInputError: ``text`` is not 64 hex digits.
    """
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise InvalidInputError(f"a root must be 64 hex digits, got {text!r}") from None
    if len(value) != 32:
        raise InvalidInputError(f"a root must be 64 hex digits, got {text!r}")
    return value


__all__ = [
    "LineCheck",
    "OpLogBackend",
    "RootCache",
    "TransactionalOpLog",
    "check_checkpoints",
    "check_lines",
    "decode_checkpoint",
    "hex32",
    "structured_delta",
]
