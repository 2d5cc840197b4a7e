"""A snapshot's entries as columns: keys, relevance and timestamps in numpy arrays.

Ranking the matches of a common word asks, for each of hundreds of thousands
of matching atoms, whether the snapshot holds it and at what rank. Through the
tree that is a visit to nearly every leaf and a decode of each; with the
columns it is one vectorised search over sorted keys. Columns are built once
per snapshot, reading every node once, and the next snapshot's are derived
from them through the two snapshots' diff, which is as small as what changed
(an agent committing every turn never rebuilds them).

Keys are kept whole, as four big-endian 64-bit lanes, and searched by their
first lane: SHA-256 ids make that lane unique in practice, and a snapshot
where two keys share it has no columns (:func:`build` and :meth:`derive`
return None), so every answer stays exact.

:func:`encode` and :func:`decode` give columns a byte form a store can keep
as derived data, so a fresh process derives its snapshot's columns from a
kept one instead of reading every node: a header naming the snapshot, the
entry count and the SHA-256 of the arrays that follow, which :func:`decode`
checks before trusting them.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from ..model.objects import entry_rank
from .tree import SnapshotTrees, item_key

#: Bytes of a snapshot key.
KEY_BYTES: Final = 32
#: Bytes of the columns per entry: the key, its first lane again, relevance and timestamp.
ENTRY_BYTES: Final = KEY_BYTES + 8 + 8 + 8
#: The byte form's header: magic, snapshot id, entry count, SHA-256 of the arrays.
_HEADER = struct.Struct("<8s32sQ32s")
_MAGIC: Final = b"cfscol1\0"


@dataclass(frozen=True, slots=True, eq=False)
class SnapshotColumns:
    """One snapshot's entries sorted by key, as parallel arrays.

    Attributes:
        lanes: Each key as four big-endian ``uint64`` lanes, shape ``(n, 4)``.
        prefixes: The first lane as native ``uint64``, strictly increasing.
        relevance: Each entry's relevance; -1.0 for a molecule (no rank).
        timestamps: Each entry's timestamp (µs).
    """

    lanes: NDArray[np.uint64]
    prefixes: NDArray[np.uint64]
    relevance: NDArray[np.float64]
    timestamps: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.prefixes)

    @property
    def nbytes(self) -> int:
        """Memory the arrays take."""
        return len(self) * ENTRY_BYTES

    def key(self, position: int) -> bytes:
        """The 32-byte key at ``position``."""
        return bytes(self.lanes[position].tobytes())

    def positions(self, ids: Collection[bytes]) -> NDArray[np.intp]:
        """Positions of the entries among ``ids`` (32-byte keys) the snapshot holds, sorted."""
        if not ids or not len(self):
            return np.empty(0, dtype=np.intp)
        wanted = _lanes(ids)
        prefixes = wanted[:, 0].astype(np.uint64)
        order = np.argsort(prefixes)  # sorted needles walk the keys in order: fewer cache misses
        wanted = wanted[order]
        at = np.searchsorted(self.prefixes, prefixes[order])
        inside = at < len(self)
        at, wanted = at[inside], wanted[inside]
        held = (self.lanes[at] == wanted).all(axis=1)
        return np.asarray(at[held], dtype=np.intp)  # sorted, as the needles were

    def derive(
        self, trees: SnapshotTrees, old: bytes, new: bytes, most: int
    ) -> SnapshotColumns | None:
        """The columns of snapshot ``new``, from these (snapshot ``old``'s) and their diff.

        Returns None when more than ``most`` entries differ (building anew
        costs about the same) or two keys of ``new`` share a first lane.
        """
        gone: list[bytes] = []
        added: list[bytes] = []
        for key, before, after in trees.diff(old, new):
            if before is not None:
                gone.append(key)
            if after is not None:
                added.append(after)
            if len(gone) + len(added) > most:
                return None
        keep = np.ones(len(self), dtype=bool)
        keep[self.positions(gone)] = False
        lanes, relevance, timestamps = _columns(added)
        order = np.argsort(lanes[:, 0].astype(np.uint64), kind="stable")
        lanes, relevance, timestamps = lanes[order], relevance[order], timestamps[order]
        base = self.prefixes[keep]
        prefixes = lanes[:, 0].astype(np.uint64)
        at = np.searchsorted(base, prefixes)
        return _checked(
            np.insert(self.lanes[keep], at, lanes, axis=0),
            np.insert(base, at, prefixes),
            np.insert(self.relevance[keep], at, relevance),
            np.insert(self.timestamps[keep], at, timestamps),
        )


def build(trees: SnapshotTrees, root: bytes) -> SnapshotColumns | None:
    """The columns of snapshot ``root``, reading each of its nodes once, a level at a time.

    Returns None when two of its keys share a first lane (see the module).
    """
    items: list[bytes] = []
    level = [root]
    while level:
        below: list[bytes] = []
        for node in trees.load_many(level):
            if node.is_leaf:
                items.extend(node.items)
            else:
                below.extend(child.id for child in node.children)
        level = below
    lanes, relevance, timestamps = _columns(items)
    prefixes = lanes[:, 0].astype(np.uint64)
    order = np.argsort(prefixes, kind="stable")
    return _checked(lanes[order], prefixes[order], relevance[order], timestamps[order])


def _lanes(keys: Iterable[bytes]) -> NDArray[np.uint64]:
    raw = b"".join(keys)
    return np.frombuffer(raw, dtype=">u8").reshape(-1, 4)


def _columns(
    items: list[bytes],
) -> tuple[NDArray[np.uint64], NDArray[np.float64], NDArray[np.int64]]:
    ranks = [entry_rank(item) for item in items]
    lanes = _lanes(item_key(item) for item in items)
    relevance = np.fromiter((r for r, _ in ranks), dtype=np.float64, count=len(ranks))
    timestamps = np.fromiter((t for _, t in ranks), dtype=np.int64, count=len(ranks))
    return lanes, relevance, timestamps


def _checked(
    lanes: NDArray[np.uint64],
    prefixes: NDArray[np.uint64],
    relevance: NDArray[np.float64],
    timestamps: NDArray[np.int64],
) -> SnapshotColumns | None:
    if len(prefixes) > 1 and not bool(np.all(prefixes[1:] > prefixes[:-1])):
        return None  # two keys share a first lane: searching by it would not be exact
    for array in (lanes, prefixes, relevance, timestamps):
        array.flags.writeable = False
    return SnapshotColumns(lanes, prefixes, relevance, timestamps)


def encode(tree: bytes, columns: SnapshotColumns) -> bytes:
    """The byte form of snapshot ``tree``'s columns (see the module)."""
    body = b"".join(
        (
            columns.lanes.tobytes(),
            columns.relevance.astype("<f8").tobytes(),
            columns.timestamps.astype("<i8").tobytes(),
        )
    )
    digest = hashlib.sha256(body).digest()
    return _HEADER.pack(_MAGIC, tree, len(columns), digest) + body


def decode(data: bytes) -> tuple[bytes, SnapshotColumns] | None:
    """``(snapshot id, columns)`` from :func:`encode`'s bytes; None if they are not intact."""
    if len(data) < _HEADER.size:
        return None
    magic, tree, count, digest = _HEADER.unpack_from(data)
    body = memoryview(data)[_HEADER.size :]
    if magic != _MAGIC or len(body) != count * (KEY_BYTES + 16):
        return None
    if hashlib.sha256(body).digest() != digest:
        return None
    keys_end = count * KEY_BYTES
    lanes = np.frombuffer(body[:keys_end], dtype=">u8").reshape(-1, 4)
    relevance = np.frombuffer(body[keys_end : keys_end + count * 8], dtype="<f8")
    timestamps = np.frombuffer(body[keys_end + count * 8 :], dtype="<i8")
    columns = _checked(
        lanes,
        lanes[:, 0].astype(np.uint64),
        relevance.astype(np.float64),
        timestamps.astype(np.int64),
    )
    return None if columns is None else (bytes(tree), columns)


__all__ = ["ENTRY_BYTES", "SnapshotColumns", "build", "decode", "encode"]
