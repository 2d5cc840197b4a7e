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
* a :class:`Cut` is a position in log order, never a stamp, so an op merged
  late with a low stamp lands after every checkpoint taken before it arrived;
* the log is an RFC 6962 log over the canonical lines (:func:`~.entry.encode_line`
  without the newline): the same ops in the same order give the same leaf
  hashes, roots, op ids and checkpoint cuts on either backend.

:class:`BaseOpLog` holds that semantics once, over a few storage primitives
each backend implements (read ops and leaves between cuts, append lines and
keep held ops under its write lock, keep checkpoints), so the backends cannot
drift apart; the pure checks behind its ``verify`` are in :mod:`.checks`.
"""

from __future__ import annotations

from collections.abc import Collection, Container, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, Self, TypeVar, cast, runtime_checkable

import msgspec

from ..errors import CorruptLogError, InvalidInputError
from ..model.merkle import (
    EMPTY_ROOT,
    consistency_proof_from_hashes,
    extend_frontier,
    frontier_root,
)
from ..store.base import Store
from .checks import LineCheck, RootCache, check_checkpoints
from .context_ops import CONTEXT_DOMAIN, check_context_op
from .entry import (
    OpEntry,
    OpLogCheckpoint,
    check_entry,
    compute_op_id,
    decode_json,
    iso_to_micros,
    merge_key,
    now_iso,
    restamp,
)

#: What a backend's write lock holds: a file descriptor, a database connection.
H = TypeVar("H")


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


@dataclass(slots=True)
class Tail:
    """The log's end as a backend keeps it: op count, byte length, highest stamp."""

    ops: int = 0
    bytes: int = 0
    max_lamport: int = 0


@dataclass(slots=True)
class Locked(Generic[H]):
    """A backend's write lock, held: its ``handle`` and the log's end under it.

    ``tail`` is current while the lock is held, and moves as ops are written.
    """

    handle: H
    tail: Tail


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

    def redact(self, text: str, *, dry_run: bool = False) -> int:
        """Erase ``text`` from every op whose payload holds it; return how many changed."""
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


class BaseOpLog(Generic[H]):
    """The semantics of :class:`OpLogBackend`, written once over a backend's storage.

    The file log and the PostgreSQL log differ only in where lines, held ops and
    checkpoints are kept and how writers exclude each other. Everything above
    that (re-stamping appends, merging replicas, cutting checkpoints, replay,
    transparency, the verdict of ``verify``) is here, so they cannot drift.

    A backend sets ``_session_id``, ``_clock`` (0) and ``_mutex`` (guarding
    ``_clock``) and implements :meth:`end`, :meth:`read_checkpoint` and the
    primitives below, each raising :class:`NotImplementedError` here.
    """

    _session_id: str
    _clock: int
    _mutex: AbstractContextManager[Any]

    # -- primitives: what each backend implements ------------------------------------

    def end(self) -> Cut:
        """The cut at the log's current end."""
        raise NotImplementedError

    def read_checkpoint(self) -> OpLogCheckpoint | None:
        """Return the latest checkpoint, or None."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what this handle holds; safe to call twice."""
        raise NotImplementedError

    def _read(self, start: Cut, end: Cut) -> list[OpEntry]:
        """Decode the ops between two cuts, in log order."""
        raise NotImplementedError

    def _leaf_hashes(self, end: Cut, size: int | None) -> list[bytes]:
        """Return the leaf hashes of the first ``size`` ops (None: up to ``end``, the log's end)."""
        raise NotImplementedError

    def _checkpoint_leaves(self, start: Cut, end: Cut) -> tuple[list[bytes], int]:
        """Return the leaf hashes of the ops between two cuts and their highest stamp (0 if none).

        Raises:
            InvalidInputError: ``end`` is not a cut of this log.
        """
        raise NotImplementedError

    def _position(self, cut: Cut) -> int:
        """Where ``cut`` is in the backend's own addressing (a byte offset, a row number)."""
        raise NotImplementedError

    def _snapshot(self) -> AbstractContextManager[None]:
        """Make the reads in the body agree with each other (a no-op where they always do)."""
        raise NotImplementedError

    def _write_lock(self) -> AbstractContextManager[Locked[H]]:
        """Exclude every other writer of the session, in any process, for the body.

        Its writes land together when the body ends, or not at all if it raises.
        """
        raise NotImplementedError

    def _stamps(self, locked: Locked[H] | None, op_ids: Collection[str]) -> Mapping[str, int]:
        """Return ``op_id -> lamport_ts`` for those of ``op_ids`` in the log (it may hold more).

        ``locked`` is the write lock held, or None when it is not.
        """
        raise NotImplementedError

    def _write(self, locked: Locked[H], entries: Sequence[OpEntry]) -> None:
        """Append ``entries`` (already stamped) at ``locked.tail``, moving it past them."""
        raise NotImplementedError

    def _read_held(self, locked: Locked[H]) -> dict[str, OpEntry]:
        """Return the ops received earlier and held for their parents, by op id."""
        raise NotImplementedError

    def _hold(self, locked: Locked[H], before: set[str], waiting: Sequence[OpEntry]) -> None:
        """Make the held ops exactly ``waiting`` (``before``: the ids held until now)."""
        raise NotImplementedError

    def _store_checkpoint(self, locked: Locked[H], record: OpLogCheckpoint) -> None:
        """Keep ``record`` as the latest checkpoint, after every earlier one."""
        raise NotImplementedError

    def _redact(self, locked: Locked[H], text: str, *, dry_run: bool) -> int:
        """Replace each logged op holding ``text`` by its redacted line; drop held ones.

        Every line keeps its length and place (:func:`~.entry.redact_line`);
        the change lands whole or not at all. Returns how many ops changed
        (with ``dry_run``, would change: nothing is written).
        """
        raise NotImplementedError

    # -- shared behaviour -------------------------------------------------------------

    def session_id(self) -> str:
        """Return the session id (a method, as in the seed)."""
        return self._session_id

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _saw(self, stamp: int) -> None:
        """Move the local clock past ``stamp``."""
        with self._mutex:
            self._clock = max(self._clock, stamp)

    def append(self, entry: OpEntry) -> OpEntry:
        """Append one op durably and return it as stored (see :meth:`append_many`)."""
        return self.append_many([entry])[0]

    def append_many(self, entries: Iterable[OpEntry]) -> list[OpEntry]:
        """Append ops durably, all or none, and return them as stored.

        An op whose stamp is not above every stamp in the log is re-stamped
        (its ``op_id`` changes with it; a later op in the same call that names
        it as a parent is rewritten to match). Causal parents must already be
        in the log or earlier in the call.

        Raises:
            InvalidInputError: an op is malformed, or names a parent not in the log.
            StoreError: the backend failed; nothing was appended.
        """
        checked = [check_op(entry) for entry in entries]
        if not checked:
            return []
        parents = {p for entry in checked for p in entry["parent_op_ids"]}
        with self._write_lock() as locked:
            known = self._stamps(locked, parents)
            stored = stamp_appends(checked, known, locked.tail.max_lamport, self._session_id)
            self._write(locked, stored)
        self._saw(stored[-1]["lamport_ts"])
        return stored

    def receive(self, entries: Iterable[OpEntry | dict[str, Any]]) -> ReceiveResult:
        """Merge ops from another replica of this session.

        Each op is checked (its id must match its content); ops already here
        are counted as duplicates; an op whose causal parents are not all here
        is held back (by the file log in this handle, by the PostgreSQL log in
        the database for every handle), retried on the next call and reported
        in ``held``. The rest are appended in merge order (stamp, actor, id),
        keeping their stamps, and the local clock moves past the highest (the
        Lamport receive rule), so the next local op is later than all of them.

        Raises:
            InvalidInputError: an op is malformed, or its stamp is not above its
                parents' (nothing is written).
            StoreError: the backend failed; nothing was written.
        """
        offered = list(entries)
        for entry in offered:
            if not isinstance(entry, dict) or not isinstance(entry.get("op_id"), str):
                raise InvalidInputError("an op must be a JSON object with an op_id")
        present = self._stamps(None, [raw["op_id"] for raw in offered])
        fresh = {raw["op_id"]: raw for raw in offered if raw["op_id"] not in present}
        checked = {op_id: check_op(raw) for op_id, raw in fresh.items()}
        for raw in offered:  # ops already here are not written: only their ids are checked
            if raw["op_id"] not in fresh:
                check_op_id(raw)
        with self._write_lock() as locked:
            before = self._read_held(locked)
            present = self._stamps(locked, [*checked, *before])
            # A held op may have come in through another handle since.
            held = {k: v for k, v in before.items() if k not in present}
            new = {k: v for k, v in checked.items() if k not in present and k not in held}
            duplicates = len(offered) - len(new)
            incoming = {**held, **new}
            parents = {p for entry in incoming.values() for p in entry["parent_op_ids"]}
            added, waiting = accept_received(incoming.values(), self._stamps(locked, parents))
            if added:
                self._write(locked, added)
            self._hold(locked, set(before), waiting)
        self._saw(locked.tail.max_lamport)
        return ReceiveResult(tuple(added), duplicates, tuple(waiting))

    def read_all(self) -> list[OpEntry]:
        """Return every op in the log, in log (arrival) order."""
        return self._read(Cut(0, 0), self.end())

    def read_range(self, start: Cut, end: Cut) -> list[OpEntry]:
        """Return the ops between two cuts (log order)."""
        return self._read(start, end)

    def pending(self) -> tuple[list[OpEntry], Cut, Cut]:
        """Return the ops after the last checkpoint (log order), and the cuts around them.

        Raises:
            CorruptLogError: the checkpoint's cut is past the log's end.
        """
        with self._snapshot():
            latest = self.read_checkpoint()
            start = Cut(latest["op_count"], latest["log_bytes"]) if latest else Cut(0, 0)
            end = self.end()
            if self._position(end) < self._position(start):
                raise CorruptLogError(
                    f"op log {self._session_id}: the checkpoint covers {start.ops} ops"
                    f" but the log holds {end.ops}"
                )
            return self._read(start, end), start, end

    def replay_since_checkpoint(self) -> list[OpEntry]:
        """Return the ops not yet in a checkpoint, in merge order (the order they apply in).

        "Not yet in a checkpoint" means after the checkpoint's cut, so an op
        that arrived late with a low stamp is still here (the seed's stamp
        filter dropped it). Reads only the ops after the cut.
        """
        return sorted(self.pending()[0], key=merge_key)

    def to_structured_delta(self, domain: str) -> dict[str, Any]:
        """Collapse the ops since the checkpoint for one domain, as the seed does.

        Returns ``{"domain", "ops", "summary"}``: that domain's ``domain_op``
        values in merge order and a count of each op kind.
        """
        return structured_delta(self.replay_since_checkpoint(), domain)

    def checkpoint(
        self, snapshot_id: str, *, through: Cut | None = None, commit: str | None = None
    ) -> OpLogCheckpoint:
        """Record that the ops up to ``through`` (default: all) are in ``snapshot_id``.

        The record holds the cut, the highest stamp in it, the log's RFC 6962
        root at the cut and the frontier to extend it; only the ops since the
        previous checkpoint are read. In PostgreSQL it joins the store's open
        transaction (so a crystallised commit and its checkpoint land together).

        Raises:
            InvalidInputError: ``through`` is before the previous checkpoint, past
                the end, or not a cut of this log.
        """
        if not isinstance(snapshot_id, str) or not snapshot_id:
            raise InvalidInputError("snapshot id must be non-empty text")
        with self._write_lock() as locked:
            tail = locked.tail
            end = through if through is not None else Cut(tail.ops, tail.bytes)
            previous = self.read_checkpoint()
            start = Cut(previous["op_count"], previous["log_bytes"]) if previous else Cut(0, 0)
            if not start.ops <= end.ops <= tail.ops or not start.bytes <= end.bytes <= tail.bytes:
                raise InvalidInputError(
                    f"checkpoint cut at op {end.ops} is outside ops {start.ops}..{tail.ops}"
                )
            hashes, top = self._checkpoint_leaves(start, end)
            frontier = [bytes.fromhex(h) for h in previous["frontier"]] if previous else []
            frontier = extend_frontier(frontier, start.ops, hashes)
            record: OpLogCheckpoint = {
                "session_id": self._session_id,
                "snapshot_id": snapshot_id,
                "lamport_ts": max(previous["lamport_ts"] if previous else 0, top),
                "op_count": end.ops,
                "created_at": now_iso(),
                "log_bytes": end.bytes,
                "log_root": frontier_root(frontier).hex(),
                "frontier": [h.hex() for h in frontier],
                "commit": commit,
            }
            self._store_checkpoint(locked, record)
        return record

    def redact(self, text: str, *, dry_run: bool = False) -> int:
        """Erase ``text`` from every op whose payload holds it; return how many ops changed.

        ``dry_run`` checks that every such op can be redacted, changing nothing.

        What a purge does to op logs: each such op keeps its id, stamp, place
        and leaf hash, so the log's roots, checkpoints and proofs stay valid,
        but its payload is gone (:func:`~.entry.redact_line`); held ops that
        hold it are dropped. A redacted op is skipped when the session is
        crystallised.

        Raises:
            InvalidInputError: an op written before salts, of another domain
                and shorter than the redaction marker, cannot be redacted in
                place (nothing changed).
        """
        with self._write_lock() as locked:
            return self._redact(locked, text, dry_run=dry_run)

    def leaf_hashes(self, size: int | None = None) -> list[bytes]:
        """Return the RFC 6962 leaf hashes of the first ``size`` ops (default: all).

        Raises:
            InvalidInputError: the log holds fewer than ``size`` ops.
        """
        end = self.end()
        if size is not None and not 0 <= size <= end.ops:
            raise InvalidInputError(f"the log holds {end.ops} ops, not {size}")
        return self._leaf_hashes(end, size)

    def root(self, size: int | None = None) -> str:
        """Return the log's RFC 6962 root (hex) over its first ``size`` ops."""
        return frontier_root(extend_frontier([], 0, self.leaf_hashes(size))).hex()

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[str]:
        """Return the RFC 6962 proof (hex) that the log of ``new_size`` extends ``old_size``."""
        hashes = self.leaf_hashes(new_size)
        return [h.hex() for h in consistency_proof_from_hashes(hashes, old_size)]

    def _verdict(
        self,
        found: LineCheck,
        checkpoints: Sequence[OpLogCheckpoint],
        trusted: tuple[int, str] | None,
        records: int,
        after: Iterable[str] = (),
    ) -> LogVerification:
        """The end of ``verify``: check the checkpoints against the lines, and report.

        ``found`` holds the lines' findings and the backend's own problems so
        far; ``records`` counts the checkpoint records, ``checkpoints`` those
        that decoded; ``after`` are the backend's problems to list last.
        """
        problems = found.problems
        root_at = RootCache(found.hashes)
        problems += check_checkpoints(found, checkpoints, trusted, root_at)
        problems += after
        size = len(found.hashes)
        return LogVerification(
            self._session_id,
            size,
            records,
            root_at(size).hex() if size else EMPTY_ROOT.hex(),
            tuple(problems),
        )


def check_op(entry: OpEntry | dict[str, Any]) -> OpEntry:
    """Return ``entry`` if a log may store it: a well-formed op, its id matching its content.

    Ops of the ``context`` domain must also be well-formed context ops.

    Raises:
        InvalidInputError: naming what is wrong.
    """
    checked = check_entry(entry, verify_id=True)
    _refuse_redacted(checked)
    if checked["domain"] == CONTEXT_DOMAIN:
        check_context_op(checked["domain_op"], default_timestamp=iso_to_micros(entry["created_at"]))
    return checked


def _refuse_redacted(entry: Mapping[str, Any]) -> None:
    """Refuse a redacted op from outside: only a purge here may redact an op here.

    A redacted op's id is not checked against its content (its leaf vouches
    for it in the log that redacted it), so taken from another replica it
    could claim any op's id and shadow the real one.

    Raises:
        InvalidInputError: it is redacted.
    """
    if isinstance(entry, Mapping) and "redacted" in entry:
        raise InvalidInputError(
            f"op {str(entry.get('op_id'))[:16]} is redacted: redacted ops are not"
            " appended or merged (a purge redacts each log's own copy)"
        )


def check_op_id(entry: OpEntry | dict[str, Any]) -> None:
    """Refuse an op whose id is not the hash of its content (cheaper than :func:`check_op`).

    Raises:
        InvalidInputError: naming what is wrong.
    """
    _refuse_redacted(entry)
    try:
        expected = compute_op_id(
            entry["actor_id"],
            entry["domain"],
            entry["domain_op"],
            entry["lamport_ts"],
            entry["parent_op_ids"],
            entry["intent_id"],
            entry["reservation_id"],
            entry.get("payload_salt"),
        )
    except (KeyError, TypeError, msgspec.EncodeError):
        expected = None
    if expected != entry["op_id"]:
        check_op(entry)  # names what is wrong
        raise InvalidInputError(f"op {entry['op_id'][:16]} does not match its content")


def structured_delta(entries: Sequence[OpEntry], domain: str) -> dict[str, Any]:
    """The seed's ``to_structured_delta``: ``domain``'s ops (already in merge order), counted."""
    ops = [e["domain_op"] for e in entries if e["domain"] == domain and "redacted" not in e]
    counts: dict[str, int] = {}
    for op in ops:
        kind = str(op.get("op", "unknown"))
        counts[kind] = counts.get(kind, 0) + 1
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "no ops"
    return {"domain": domain, "ops": ops, "summary": summary}


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


__all__ = [
    "BaseOpLog",
    "Cut",
    "Locked",
    "LogVerification",
    "OpLogBackend",
    "ReceiveResult",
    "Repair",
    "Tail",
    "TransactionalOpLog",
    "accept_received",
    "check_op",
    "check_op_id",
    "decode_checkpoint",
    "stamp_appends",
    "structured_delta",
]
