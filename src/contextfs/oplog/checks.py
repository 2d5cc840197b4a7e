"""The pure checks behind an op log's ``verify``, the same for every backend.

They read a log's lines and checkpoint records as given, in log order, and
report what is wrong as text naming the line or checkpoint; each backend adds
the checks of its own storage (:meth:`~.base.BaseOpLog._verdict` puts them
together).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import msgspec

from ..errors import InvalidInputError
from ..model.merkle import (
    consistency_proof_from_hashes,
    extend_frontier,
    frontier_root,
    verify_consistency,
)
from .entry import OpLogCheckpoint, check_entry, decode_json, op_leaf


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
        found.hashes.append(op_leaf(line))
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


__all__ = ["LineCheck", "RootCache", "check_checkpoints", "check_lines", "hex32"]
