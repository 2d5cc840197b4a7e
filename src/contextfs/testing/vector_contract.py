"""The contract every :class:`~contextfs.search.vectors.VectorIndex` backend must pass.

Subclass :class:`VectorContract` in a ``Test*`` class and override
:meth:`~VectorContract.make_store`; the index comes from
:func:`~contextfs.backends.vector_index_for`. Answers are asserted exactly
against a brute-force ranking, so a backend must score by dot product,
round as :data:`~contextfs.search.vectors.SCORE_DIGITS` says and break ties
by ascending id. The suite needs pytest; the library never imports it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from contextfs.backends import vector_index_for
from contextfs.errors import InvalidInputError
from contextfs.search.vectors import EXACT_SEARCH, SCORE_DIGITS, VectorIndex, Vectors
from contextfs.store.base import Store
from contextfs.testing.store_contract import abandoned

EMBEDDER = "contract-embedder@1"
OTHER = "other-embedder@2"
DIMENSIONS = 8


def vector_id(n: int) -> bytes:
    """A deterministic 32-byte atom id for vector ``n``."""
    return hashlib.sha256(f"vector-contract:{n}".encode()).digest()


def unit_rows(count: int, seed: int = 7, dimensions: int = DIMENSIONS) -> Vectors:
    """``count`` reproducible random unit vectors."""
    rows = np.random.default_rng(seed).normal(size=(count, dimensions)).astype(np.float32)
    unit: Vectors = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    return unit


def brute_force(
    ids: Sequence[bytes], rows: Vectors, query: Vectors, limit: int
) -> list[tuple[bytes, float]]:
    """The answer by definition: every score, rounded, sorted by (-score, id)."""
    scores = np.round(rows @ query, SCORE_DIGITS)
    ranked = sorted(zip(ids, scores.tolist(), strict=True), key=lambda p: (-p[1], p[0]))
    return [(oid, float(score)) for oid, score in ranked[:limit]]


def exactly(message: str) -> str:
    """A ``pytest.raises(match=...)`` pattern for exactly ``message``."""
    return f"^{re.escape(message)}$"


class VectorContract:
    """What every vector backend promises: idempotent adds, exact search, transactions."""

    tmp_path: Path
    request: pytest.FixtureRequest
    store: Store
    index: VectorIndex

    def make_store(self) -> Store:
        """Return a new, empty store; override in the backend's test class."""
        raise NotImplementedError

    @pytest.fixture(autouse=True)
    def _vector_contract_setup(
        self, tmp_path: Path, request: pytest.FixtureRequest
    ) -> Iterator[None]:
        self.tmp_path = tmp_path
        self.request = request
        self.store = self.make_store()
        self.index = vector_index_for(self.store)
        yield
        self.store.close()

    def fill(self, count: int, embedder: str = EMBEDDER) -> tuple[list[bytes], Vectors]:
        ids = [vector_id(n) for n in range(count)]
        rows = unit_rows(count)
        assert self.index.add(embedder, ids, rows) == count
        return ids, rows

    def test_is_a_vector_index(self) -> None:
        assert isinstance(self.index, VectorIndex)
        assert self.index.count() == 0
        assert self.index.embedders() == []
        assert self.index.nearest(EMBEDDER, unit_rows(1)[0], 5) == []
        assert self.index.search_method().startswith(EXACT_SEARCH)  # what verify reports

    def test_nearest_is_exact_and_ties_go_by_id(self) -> None:
        ids, rows = self.fill(300)
        twin = [vector_id(1000 + n) for n in range(3)]  # exact copies of row 0: a three-way tie
        self.index.add(EMBEDDER, twin, np.repeat(rows[:1], 3, axis=0))
        everything, matrix = ids + twin, np.concatenate([rows, np.repeat(rows[:1], 3, axis=0)])
        for query in (rows[0], unit_rows(1, seed=99)[0]):
            for limit in (1, 4, 10, 400):
                expected = brute_force(everything, matrix, query, limit)
                assert self.index.nearest(EMBEDDER, query, limit) == expected

    def test_among_filters_without_losing_exactness(self) -> None:
        ids, rows = self.fill(500)
        allowed = set(ids[::7])  # a strict filter: most of the best are refused
        query = unit_rows(1, seed=3)[0]
        seen: list[int] = []

        def among(batch: Sequence[bytes]) -> set[bytes]:
            seen.append(len(batch))
            return allowed & set(batch)

        got = self.index.nearest(EMBEDDER, query, 10, among)
        kept = [i for i, oid in enumerate(ids) if oid in allowed]
        expected = brute_force([ids[i] for i in kept], rows[kept], query, 10)
        assert got == expected
        assert sum(seen) < len(ids)  # candidates were offered in rounds, not all at once

    def test_adds_are_idempotent_per_embedder_and_missing_says_what_lacks_one(self) -> None:
        ids, rows = self.fill(20)
        assert self.index.add(EMBEDDER, ids[:5], unit_rows(5, seed=1)) == 0  # first vector stays
        assert self.index.nearest(EMBEDDER, rows[3], 1) == brute_force(ids, rows, rows[3], 1)
        fresh = [vector_id(100 + n) for n in range(3)]
        assert self.index.missing(EMBEDDER, [fresh[0], ids[2], fresh[1]]) == [fresh[0], fresh[1]]
        assert self.index.missing(OTHER, ids[:2]) == ids[:2]
        assert self.index.add(OTHER, ids[:2], unit_rows(2, dimensions=4)) == 2  # its own size
        assert self.index.count() == 22
        assert (self.index.count(EMBEDDER), self.index.count(OTHER)) == (20, 2)
        assert self.index.embedders() == sorted([EMBEDDER, OTHER])
        assert self.index.ids() == set(ids)

    def test_forget_removes_an_atom_for_every_embedder(self) -> None:
        ids, rows = self.fill(10)
        self.index.add(OTHER, ids[:1], unit_rows(1))
        assert self.index.forget(ids[0]) == 2
        assert self.index.forget(ids[0]) == 0
        assert ids[0] not in {oid for oid, _ in self.index.nearest(EMBEDDER, rows[0], 10)}
        assert self.index.missing(EMBEDDER, ids[:2]) == ids[:1]
        assert self.index.count() == 9

    def test_drop_removes_one_embedder(self) -> None:
        ids, _ = self.fill(10)
        self.index.add(OTHER, ids[:3], unit_rows(3))
        assert self.index.drop(EMBEDDER) == 10
        assert self.index.embedders() == [OTHER]
        assert self.index.nearest(EMBEDDER, unit_rows(1)[0], 5) == []
        assert self.index.search_method().startswith(EXACT_SEARCH)  # what verify reports
        assert self.index.add(EMBEDDER, ids[:1], unit_rows(1, dimensions=16)) == 1  # anew

    def test_the_embedded_mark_is_kept_cleared_by_drop_and_rolled_back(self) -> None:
        tree, later = b"t" * 32, b"u" * 32
        assert self.index.embedded_through(EMBEDDER) is None
        self.index.mark_embedded(EMBEDDER, tree)
        assert self.index.embedded_through(EMBEDDER) == tree
        assert self.index.embedded_through(OTHER) is None
        with abandoned(self.store):
            self.index.mark_embedded(EMBEDDER, later)
            assert self.index.embedded_through(EMBEDDER) == later
        assert self.index.embedded_through(EMBEDDER) == tree
        assert vector_index_for(self.store).embedded_through(EMBEDDER) == tree  # any handle
        self.fill(2)
        self.index.drop(EMBEDDER)
        assert self.index.embedded_through(EMBEDDER) is None

    def test_writes_roll_back_with_the_store(self) -> None:
        ids, rows = self.fill(10)
        before = self.index.nearest(EMBEDDER, rows[0], 10)
        with abandoned(self.store):
            self.index.add(EMBEDDER, [vector_id(50)], rows[:1])
            self.index.forget(ids[1])
            self.index.drop(OTHER)
            assert self.index.count(EMBEDDER) == 10  # one added, one forgotten
        assert self.index.count() == 10
        assert self.index.missing(EMBEDDER, [vector_id(50), ids[1]]) == [vector_id(50)]
        assert self.index.nearest(EMBEDDER, rows[0], 10) == before

    def test_search_sees_what_another_handle_wrote(self) -> None:
        _, rows = self.fill(10)
        assert len(self.index.nearest(EMBEDDER, rows[0], 20)) == 10  # now cached, if cached
        other = vector_index_for(self.store)  # a second handle, as another process has
        newcomer = vector_id(77)
        other.add(EMBEDDER, [newcomer], rows[:1])
        assert len(self.index.nearest(EMBEDDER, rows[0], 20)) == 11
        other.forget(newcomer)
        assert len(self.index.nearest(EMBEDDER, rows[0], 20)) == 10

    @pytest.mark.parametrize(
        ("call", "message"),
        [
            (lambda ix: ix.add("", [vector_id(0)], unit_rows(1)), "embedder id must be"),
            (lambda ix: ix.add(EMBEDDER, [b"short"], unit_rows(1)), "atom id must be 32 bytes"),
            (lambda ix: ix.add(EMBEDDER, [vector_id(0)], unit_rows(2)), "one row per id"),
            (
                lambda ix: ix.add(EMBEDDER, [vector_id(0)] * 2, unit_rows(2)),
                "an atom id is given twice",
            ),
            (
                lambda ix: ix.add(EMBEDDER, [vector_id(0)], np.full((1, 8), np.nan)),
                "vectors must be finite",
            ),
            (lambda ix: ix.nearest(EMBEDDER, [np.inf], 3), "query vector must be"),
            (lambda ix: ix.nearest(EMBEDDER, unit_rows(1)[0], "3"), "limit must be an integer"),
        ],
    )
    def test_bad_input_is_refused_and_changes_nothing(self, call: object, message: str) -> None:
        self.fill(3)
        with pytest.raises(InvalidInputError, match=message):
            call(self.index)  # type: ignore[operator]
        assert self.index.count() == 3

    def test_other_dimensions_are_refused_for_one_embedder(self) -> None:
        self.fill(3)
        with pytest.raises(
            InvalidInputError,
            match=exactly(f"embedder {EMBEDDER!r} has vectors of 8 dimensions here, not 4"),
        ):
            self.index.add(EMBEDDER, [vector_id(9)], unit_rows(1, dimensions=4))
        with pytest.raises(InvalidInputError, match="query vector has 4 dimensions, the index 8"):
            self.index.nearest(EMBEDDER, unit_rows(1, dimensions=4)[0], 3)


__all__ = ["DIMENSIONS", "EMBEDDER", "VectorContract", "brute_force", "unit_rows", "vector_id"]
