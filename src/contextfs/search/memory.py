"""The in-memory search backend: an inverted index ranked exactly like FTS5's ``bm25()``.

The reference twin of :mod:`contextfs.search.sqlite_fts` for
:class:`~contextfs.store.memory.MemoryStore`. It tokenizes with
:func:`~contextfs.search.query.tokenize` (FTS5's ``unicode61 remove_diacritics 2``
rule), counts each phrase's occurrences itself and scores them with
:mod:`contextfs.search.bm25`, FTS5's ``bm25()`` in its floating-point order.
Same corpus, same query: same order and same scores.

Every write runs inside the store's transaction and registers an undo step with
it (:meth:`MemoryStore.on_rollback`), so the index rolls back with the objects.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial

from contextfs.search import bm25
from contextfs.search.base import check_limit, checked_texts, stored_texts
from contextfs.search.query import Mode, Phrase, check_mode, parse_query, term_key, tokenize
from contextfs.store.memory import MemoryStore

Postings = dict[bytes, list[int]]


@dataclass
class _Corpus:
    """Postings (term -> id -> positions) plus the lengths BM25 needs."""

    docs: dict[bytes, tuple[str, ...]] = field(default_factory=dict)
    postings: dict[str, Postings] = field(default_factory=dict)
    total_tokens: int = 0
    _vocabulary: list[str] | None = None  # sorted terms, rebuilt after the vocabulary changes

    def add(self, oid: bytes, text: str) -> bool:
        """Index one document; return False if ``oid`` was already indexed."""
        if oid in self.docs:
            return False
        terms = tuple(term_key(token) for token in tokenize(text))
        self.docs[oid] = terms
        self.total_tokens += len(terms)
        for position, term in enumerate(terms):
            by_doc = self.postings.get(term)
            if by_doc is None:
                by_doc = self.postings[term] = {}
                self._vocabulary = None
            by_doc.setdefault(oid, []).append(position)
        return True

    def remove(self, oid: bytes) -> None:
        """Forget one document (the undo of :meth:`add`)."""
        terms = self.docs.pop(oid, None)
        if terms is None:
            return
        self.total_tokens -= len(terms)
        for term in set(terms):
            by_doc = self.postings[term]
            del by_doc[oid]
            if not by_doc:
                del self.postings[term]
                self._vocabulary = None

    def terms_with_prefix(self, prefix: str) -> list[str]:
        """Return every indexed term starting with ``prefix``, via a sorted vocabulary."""
        if self._vocabulary is None:
            self._vocabulary = sorted(self.postings)
        vocabulary = self._vocabulary
        found = []
        for term in vocabulary[bisect_left(vocabulary, prefix) :]:
            if not term.startswith(prefix):
                break
            found.append(term)
        return found

    def _positions(self, token: str, prefix: bool) -> Postings:
        key = term_key(token)
        if not prefix:
            return self.postings.get(key, {})
        merged: Postings = {}
        for term in self.terms_with_prefix(key):
            for oid, positions in self.postings[term].items():
                merged.setdefault(oid, []).extend(positions)
        return merged

    def phrase_hits(self, phrase: Phrase) -> dict[bytes, int]:
        """Return ``id -> occurrences`` of ``phrase`` (overlapping ones count, as in FTS5)."""
        last = len(phrase.tokens) - 1
        lists = [
            self._positions(token, phrase.prefix and i == last)
            for i, token in enumerate(phrase.tokens)
        ]
        if len(lists) == 1:
            return {oid: len(positions) for oid, positions in lists[0].items()}
        common = set(min(lists, key=len).keys())
        for by_doc in lists:
            common.intersection_update(by_doc)
        hits: dict[bytes, int] = {}
        for oid in common:
            later = [set(by_doc[oid]) for by_doc in lists[1:]]
            count = sum(
                all(start + offset in positions for offset, positions in enumerate(later, 1))
                for start in lists[0][oid]
            )
            if count:
                hits[oid] = count
        return hits


class MemorySearchIndex:
    """A :class:`~contextfs.search.base.SearchIndex` for one :class:`MemoryStore`.

    Get it with :func:`~contextfs.search.search_index_for` or :meth:`for_store`,
    which return the same instance for the same store. Every call holds the
    store's lock (through its transaction), so other threads never see text a
    transaction has not committed.
    """

    def __init__(self, store: MemoryStore) -> None:
        """Make an empty index beside ``store``; prefer :meth:`for_store`."""
        self._store = store
        self._corpus = _Corpus()
        self._pending: set[bytes] = set()

    @classmethod
    def for_store(cls, store: MemoryStore) -> MemorySearchIndex:
        """Return the index attached to ``store``, creating it on first use."""
        return store.extension(cls, partial(cls, store))

    def index_texts(self, items: Iterable[tuple[bytes, str]]) -> None:
        """Index ``(atom id, content)`` pairs; ids already indexed are skipped.

        Raises:
            InvalidInputError: an id is not 32 bytes or a text is not a string;
                nothing is indexed.
            StoreError: the store is closed.
        """
        rows = checked_texts(items)
        with self._store.transaction():
            corpus = self._corpus
            added: list[bytes] = []
            # Registered first, so even a write cut short is undone with the store.
            self._store.on_rollback(partial(_remove_all, corpus, added))
            for oid, text in rows:
                if corpus.add(oid, text):
                    added.append(oid)

    def reindex(self, texts: Iterable[tuple[bytes, str]]) -> int:
        """Replace the whole index with ``texts``; return how many atoms it now holds.

        Raises:
            InvalidInputError: an id or text is malformed; the index is unchanged.
        """
        rows = checked_texts(texts)
        corpus = _Corpus()
        for oid, text in rows:
            corpus.add(oid, text)
        with self._store.transaction():
            self._store.on_rollback(partial(setattr, self, "_corpus", self._corpus))
            self._corpus = corpus
            return len(corpus.docs)

    def count(self) -> int:
        """Return how many atoms are indexed."""
        with self._store.transaction():
            self._catch_up()
            return len(self._corpus.docs)

    def defer(self, oids: Iterable[bytes]) -> None:
        """Note atoms to index before the next query."""
        with self._store.transaction():
            fresh = [oid for oid in oids if oid not in self._pending]
            self._store.on_rollback(partial(self._pending.difference_update, fresh))
            self._pending.update(fresh)

    def forget(self, oid: bytes, text: str) -> bool:
        """Remove atom ``oid`` from the index and the deferred atoms, for a purge.

        ``text`` is the content it was indexed with; a rollback indexes it again.

        Returns:
            True if the atom was indexed.
        """
        with self._store.transaction():
            if oid in self._pending:
                self._pending.discard(oid)
                self._store.on_rollback(partial(self._pending.add, oid))
            corpus = self._corpus
            if oid not in corpus.docs:
                return False
            corpus.remove(oid)
            self._store.on_rollback(partial(corpus.add, oid, text))
            return True

    def match_ids(self, query: str) -> set[bytes]:
        """Return the ids of every atom holding all of ``query``'s terms, unranked."""
        parsed = parse_query(query)
        with self._store.transaction():
            self._catch_up()
            hits = [set(self._corpus.phrase_hits(phrase)) for phrase in parsed.phrases]
            return set.intersection(*hits) if hits else set()

    def _catch_up(self) -> None:
        """Index the deferred atoms; the caller holds the store's transaction."""
        if not self._pending:
            return
        pending = self._pending
        self._pending = set()
        self._store.on_rollback(partial(setattr, self, "_pending", pending))
        self.index_texts(stored_texts(self._store, sorted(pending)))

    def search(self, query: str, *, limit: int, mode: Mode = "any") -> list[tuple[bytes, float]]:
        """Return up to ``limit`` ``(atom id, score)`` pairs, best first, ties by id.

        Raises:
            InvalidInputError: the query has no words, or ``mode`` or ``limit`` is invalid.
            StoreError: the store is closed.
        """
        mode = check_mode(mode)
        parsed = parse_query(query)
        limit = check_limit(limit)
        with self._store.transaction():
            self._catch_up()
            if limit <= 0 or not self._corpus.docs:
                return []
            corpus = self._corpus
            hits = [corpus.phrase_hits(phrase) for phrase in parsed.phrases]
            return _rank(corpus, hits, mode, limit)


def _remove_all(corpus: _Corpus, oids: list[bytes]) -> None:
    for oid in reversed(oids):
        corpus.remove(oid)


def _rank(
    corpus: _Corpus, hits: list[dict[bytes, int]], mode: Mode, limit: int
) -> list[tuple[bytes, float]]:
    """Score the matching documents with FTS5's bm25 and keep the best ``limit``."""
    matched = set(hits[0])
    for by_doc in hits[1:]:
        if mode == "any":
            matched.update(by_doc)
        else:
            matched.intersection_update(by_doc)
    ids = list(matched)
    lengths = [len(corpus.docs[oid]) for oid in ids]
    # Column by column: each phrase's counts in one tight loop, paired up in C.
    counts = zip(*[[by_doc.get(oid, 0) for oid in ids] for by_doc in hits], strict=True)
    docs = zip(ids, lengths, counts, strict=True)
    return bm25.rank(
        docs, [len(by_doc) for by_doc in hits], len(corpus.docs), corpus.total_tokens, limit
    )
