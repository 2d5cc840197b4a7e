"""The vector port: each atom's vector per embedder, kept beside a store as derived data.

Vectors are to meaning what the full-text index is to words: derived from
atom content, so never shipped by clone or fetch, rebuilt on demand, and
deleted by a purge (a vector leaks its text). One vector is kept per
``(embedder id, atom id)``; atoms are immutable and an embedder id names
exactly what made its vectors, so a stored vector never goes stale.

Invariants every backend keeps (held by :mod:`contextfs.testing.vector_contract`):

* writes join the store's transaction: vectors written inside
  ``with store.transaction():`` land or roll back with it;
* ``add`` is idempotent per ``(embedder, id)`` (the first vector stays), and
  every vector of one embedder has the same dimensions;
* :meth:`VectorIndex.nearest` is exact: it scores every stored vector of the
  embedder by dot product with the query (cosine, since rows are unit
  vectors), keeps those ``among`` accepts, and returns the best ``limit``,
  ties broken by ascending id, scores rounded to :data:`SCORE_DIGITS` so the
  last bits of a platform's float arithmetic never reorder an answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..errors import CorruptObjectError, InvalidInputError

Vectors = npt.NDArray[np.float32]
#: Decides which candidate ids may be answered (e.g. those in a revision's snapshot).
Filter = Callable[[Sequence[bytes]], Collection[bytes]]

#: Digits scores are rounded to before ranking, so answers do not depend on last bits.
SCORE_DIGITS: Final = 6
#: Longest embedder id stored.
MAX_EMBEDDER_ID: Final = 500
#: How every built-in index searches: every vector scored, so no candidate is missed.
EXACT_SEARCH: Final = "exact (numpy, every vector scored)"


@runtime_checkable
class VectorIndex(Protocol):
    """Atom vectors per embedder, transactional with their store, searched exactly."""

    def add(self, embedder: str, ids: Sequence[bytes], vectors: Vectors) -> int:
        """Store one vector per id (row ``i`` for ``ids[i]``); return how many were new.

        Raises:
            InvalidInputError: a malformed id, embedder id or matrix, or
                dimensions that differ from the embedder's stored vectors.
        """
        ...

    def missing(self, embedder: str, ids: Iterable[bytes]) -> list[bytes]:
        """Return the ids among ``ids`` with no vector of ``embedder``, in the order given."""
        ...

    def nearest(
        self, embedder: str, query: Vectors, limit: int, among: Filter | None = None
    ) -> list[tuple[bytes, float]]:
        """Return up to ``limit`` ``(id, score)``, best first, ties by id (see the module)."""
        ...

    def forget(self, oid: bytes) -> int:
        """Delete every embedder's vector of atom ``oid`` (a purge); return how many."""
        ...

    def drop(self, embedder: str) -> int:
        """Delete every vector of ``embedder`` (it was replaced); return how many."""
        ...

    def count(self, embedder: str | None = None) -> int:
        """Return how many vectors are stored (of ``embedder``, or of all)."""
        ...

    def embedders(self) -> list[str]:
        """Return the ids of the embedders that have vectors here, sorted."""
        ...

    def ids(self) -> set[bytes]:
        """Return every atom id that has a vector of some embedder (for ``verify``)."""
        ...

    def embedded_through(self, embedder: str) -> bytes | None:
        """Return the snapshot tree last marked as fully embedded by ``embedder``, if any.

        Every atom of that snapshot has a vector of the embedder (or was
        purged), so bringing another snapshot up to date only needs their
        diff. :meth:`drop` clears the mark.
        """
        ...

    def mark_embedded(self, embedder: str, tree: bytes) -> None:
        """Record that every atom of snapshot ``tree`` has a vector of ``embedder``."""
        ...

    def search_method(self) -> str:
        """How :meth:`nearest` searches, in words, for ``verify`` to report."""
        ...


class MatrixCache:
    """Each embedder's ids and vector matrix, kept while its generation in the store holds.

    Backends that keep vectors in a database read an embedder's matrix once and
    reuse it until a write (by any process) bumps the embedder's generation.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[int, list[bytes], Vectors]] = {}

    def get(self, embedder: str, generation: int) -> tuple[list[bytes], Vectors] | None:
        """The cached ids and matrix, if read at this very generation."""
        with self._lock:
            entry = self._entries.get(embedder)
        return (entry[1], entry[2]) if entry is not None and entry[0] == generation else None

    def put(self, embedder: str, generation: int, ids: list[bytes], matrix: Vectors) -> None:
        """Keep what was read at ``generation`` (only ever from committed state)."""
        with self._lock:
            self._entries[embedder] = (generation, ids, matrix)


def check_embedder(embedder: object) -> str:
    """Return ``embedder`` if it is a usable embedder id.

    Raises:
        InvalidInputError: it is not one line of 1 to :data:`MAX_EMBEDDER_ID` characters.
    """
    if (
        not isinstance(embedder, str)
        or not embedder
        or len(embedder) > MAX_EMBEDDER_ID
        or not embedder.isprintable()
    ):
        raise InvalidInputError(f"embedder id must be one printable line, got {embedder!r}")
    return embedder


def checked_rows(ids: Sequence[bytes], vectors: object) -> tuple[list[bytes], Vectors]:
    """Return ``ids`` and ``vectors`` as a list and a C-contiguous float32 matrix, checked.

    Raises:
        InvalidInputError: an id is not 32 bytes, the matrix is not one finite
            row per id, or an id repeats.
    """
    found = list(ids)
    for oid in found:
        if not isinstance(oid, bytes) or len(oid) != 32:
            raise InvalidInputError(f"atom id must be 32 bytes, got {oid!r}")
    if len(set(found)) != len(found):
        raise InvalidInputError("an atom id is given twice")
    try:
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"vectors must be a matrix of numbers: {exc}") from None
    if matrix.ndim != 2 or matrix.shape[0] != len(found) or (found and matrix.shape[1] == 0):
        raise InvalidInputError(
            f"vectors must have one row per id ({len(found)}), got shape {matrix.shape}"
        )
    if not np.isfinite(matrix).all():
        raise InvalidInputError("vectors must be finite")
    return found, matrix


def check_dimensions(embedder: str, have: int | None, given: int) -> None:
    """Refuse vectors whose length differs from the embedder's stored ones.

    Raises:
        InvalidInputError: ``given`` differs from ``have`` (None: nothing stored yet).
    """
    if have is not None and have != given:
        raise InvalidInputError(
            f"embedder {embedder!r} has vectors of {have} dimensions here, not {given}"
        )


def encode_vector(row: Vectors) -> bytes:
    """The stored bytes of one vector: float32, little-endian."""
    return np.asarray(row, dtype="<f4").tobytes()


def decode_vectors(blobs: Sequence[bytes]) -> Vectors:
    """Stack stored vectors into a matrix.

    Raises:
        CorruptObjectError: a blob is not whole float32s, or lengths differ.
    """
    if not blobs:
        return np.zeros((0, 0), dtype=np.float32)
    size = len(blobs[0])
    if size == 0 or size % 4 or any(len(blob) != size for blob in blobs):
        raise CorruptObjectError("a stored vector is not a whole number of float32s")
    joined = np.frombuffer(b"".join(blobs), dtype="<f4").astype(np.float32)
    return joined.reshape(len(blobs), size // 4)


def check_query(query: object, dimensions: int | None) -> Vectors:
    """Return the query as one float32 row.

    Raises:
        InvalidInputError: it is not one finite row, or its length differs
            from the stored vectors'.
    """
    try:
        row = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"query vector must be numbers: {exc}") from None
    if not row.size or not np.isfinite(row).all():
        raise InvalidInputError("query vector must be a non-empty row of finite numbers")
    if dimensions is not None and row.size != dimensions:
        raise InvalidInputError(f"query vector has {row.size} dimensions, the index {dimensions}")
    return row


def search_matrix(
    ids: Sequence[bytes], matrix: Vectors, query: object, limit: int, among: Filter | None
) -> list[tuple[bytes, float]]:
    """Check ``query`` against the stored vectors' length, then :func:`nearest_rows`."""
    row = check_query(query, matrix.shape[1] if len(ids) else None)
    return nearest_rows(ids, matrix, row, limit, among)


def nearest_rows(
    ids: Sequence[bytes], matrix: Vectors, query: Vectors, limit: int, among: Filter | None
) -> list[tuple[bytes, float]]:
    """Exact top ``limit`` of ``matrix @ query`` over the rows ``among`` accepts, best first.

    Candidates are taken in growing rounds (the best ``limit`` and a quarter
    more, then four times as many) and offered to ``among`` a round at a time,
    so a filter that keeps most ids costs one small round while a strict one
    still finds every match. Only the candidates of a round are sorted.
    """
    if check_limit(limit) == 0 or not len(ids):
        return []
    scores = np.round(matrix @ query, SCORE_DIGITS)
    chosen: list[tuple[bytes, float]] = []
    offered, size = 0, limit + max(limit // 4, 16)
    while offered < len(ids) and len(chosen) < limit:
        best = _best(scores, ids, offered + size)
        batch = best[offered:]
        kept = set(among([ids[i] for i in batch])) if among is not None else None
        for i in batch:
            if kept is None or ids[i] in kept:
                chosen.append((ids[i], float(scores[i])))
                if len(chosen) == limit:
                    break
        offered, size = len(best), size * 4
    return chosen


def check_limit(limit: object) -> int:
    """Return ``limit``, or 0 for a limit below one (nothing asked for).

    Raises:
        InvalidInputError: it is not an integer.
    """
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidInputError(f"limit must be an integer, got {limit!r}")
    return max(limit, 0)


def _best(scores: npt.NDArray[np.float32], ids: Sequence[bytes], count: int) -> list[int]:
    """Indices of the ``count`` best scores (and any tied with the last), by (-score, id)."""
    candidates: Sequence[int]
    if count >= len(ids):
        candidates = range(len(ids))
    else:
        cut = np.partition(scores, len(ids) - count)[len(ids) - count]
        candidates = np.nonzero(scores >= cut)[0].tolist()
    return sorted(candidates, key=lambda i: (-float(scores[i]), ids[i]))


__all__ = [
    "EXACT_SEARCH",
    "SCORE_DIGITS",
    "Filter",
    "MatrixCache",
    "VectorIndex",
    "Vectors",
    "check_dimensions",
    "check_embedder",
    "check_limit",
    "check_query",
    "checked_rows",
    "decode_vectors",
    "encode_vector",
    "nearest_rows",
    "search_matrix",
]
