"""The search port: full-text search over atom content, kept in step with a store.

A :class:`SearchIndex` maps atom ids to the words of their content. It lives
beside a :class:`~contextfs.store.base.Store` (which index comes with which
store is :func:`contextfs.backends.search_index_for`'s to say) and shares its
transactions: text
indexed inside ``with store.transaction():`` commits or rolls back with the
objects written there, so the index never names an atom the store lacks.

Invariants every backend keeps (held by :mod:`contextfs.testing.search_contract`):

* Indexing is idempotent: an id already indexed is skipped (atoms are
  content-addressed, so its text cannot differ).
* Queries are untrusted text parsed by :func:`~contextfs.search.query.parse_query`;
  no query string raises anything but the empty-query
  :class:`~contextfs.errors.InvalidInputError`.
* Results are ranked by Okapi BM25 exactly as SQLite FTS5's ``bm25()``
  (k1 = 1.2, b = 0.75), higher is better, ties broken by ascending id.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Final, Protocol, runtime_checkable

from contextfs.errors import CorruptObjectError, InvalidInputError
from contextfs.model.objects import ATOM, decode_atom
from contextfs.search.query import Mode
from contextfs.store.base import Store

#: Ids and texts are validated and written this many at a time.
BATCH: Final = 1000


@runtime_checkable
class SearchIndex(Protocol):
    """Full-text search over atom content, transactional with its store."""

    def index_texts(self, items: Iterable[tuple[bytes, str]]) -> None:
        """Index ``(atom id, content)`` pairs; ids already indexed are skipped.

        Raises:
            InvalidInputError: an id is not 32 bytes or a text is not a string;
                nothing is indexed.
        """
        ...

    def search(self, query: str, *, limit: int, mode: Mode = "any") -> list[tuple[bytes, float]]:
        """Return up to ``limit`` ``(atom id, score)`` pairs, best first, ties by id.

        Args:
            query: untrusted text: words, ``"quoted phrases"``, ``prefix*``.
            limit: the most results to return; 0 or less returns none.
            mode: "any" matches documents holding at least one term, ranked so
                more matching terms rank higher; "all" requires every term.

        Raises:
            InvalidInputError: the query has no words, or ``mode`` is unknown.
        """
        ...

    def reindex(self, texts: Iterable[tuple[bytes, str]]) -> int:
        """Replace the whole index with ``texts``; return how many atoms it now holds."""
        ...

    def defer(self, oids: Iterable[bytes]) -> None:
        """Note atoms (already in the store) to index before the next query.

        Cheap and transactional with the store: ingest pays no tokenizing,
        and the next query still sees every atom deferred before it.
        """
        ...

    def match_ids(self, query: str) -> set[bytes]:
        """Return the ids of every atom holding all of ``query``'s terms, unranked.

        Raises:
            InvalidInputError: the query has no words.
        """
        ...

    def forget(self, oid: bytes, text: str) -> bool:
        """Remove atom ``oid`` from the index (and from the deferred atoms), for a purge.

        ``text`` must be the content the atom was indexed with: the SQLite
        backend's contentless FTS5 table can only delete postings it is told.
        Joins the store's open transaction.

        Returns:
            True if the atom was indexed, False if it was not (only deferred, or unknown).
        """
        ...

    def count(self) -> int:
        """Return how many atoms are indexed."""
        ...


def check_limit(limit: object) -> int:
    """Return ``limit`` if it is an int (not a bool), else raise :class:`InvalidInputError`."""
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidInputError(f"search limit must be an integer, got {limit!r}")
    return limit


def checked_texts(items: Iterable[tuple[bytes, str]]) -> list[tuple[bytes, str]]:
    """Materialise and validate ``(id, text)`` pairs, keeping the first of repeated ids.

    Raises:
        InvalidInputError: an id is not 32 bytes or a text is not a string.
    """
    rows: dict[bytes, str] = {}
    for oid, text in items:
        if not isinstance(oid, bytes) or len(oid) != 32:
            raise InvalidInputError(f"atom id must be 32 bytes, got {oid!r}")
        if not isinstance(text, str):
            raise InvalidInputError(f"atom text must be a string, got {type(text).__name__}")
        rows.setdefault(oid, text)
    return list(rows.items())


def checked_batches(items: Iterable[tuple[bytes, str]]) -> Iterator[list[tuple[bytes, str]]]:
    """Yield validated batches of at most :data:`BATCH` pairs without materialising them all."""
    iterator = iter(items)
    while batch := checked_texts(islice(iterator, BATCH)):
        yield batch


def stored_texts(store: Store, oids: Iterable[bytes]) -> Iterator[tuple[bytes, str]]:
    """Yield ``(id, content)`` of the given atoms that are stored and decode."""
    pending = list(oids)
    for start in range(0, len(pending), BATCH):
        found = store.get_objects(pending[start : start + BATCH])
        for oid, stored in found.items():
            if stored.kind != ATOM:
                continue
            try:
                _, content = decode_atom(stored.data)
            except CorruptObjectError:
                continue
            yield oid, content


def atom_texts(store: Store) -> Iterator[tuple[bytes, str]]:
    """Yield ``(atom id, content)`` for every atom in ``store``, by id, for (re)indexing.

    An atom that does not decode is skipped: ``contextfs verify`` names it, and
    search simply cannot find it. Use ``index.reindex(atom_texts(store))`` to
    rebuild an index, for example after purging content.
    """
    for oid, _, data in store.iter_objects(ATOM):
        try:
            _, content = decode_atom(data)
        except CorruptObjectError:
            continue
        yield oid, content
