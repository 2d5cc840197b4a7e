"""The PostgreSQL search backend: ``tsvector`` rows and a GIN index in the store's schema.

Invariants this module owns:

* The index shares the :class:`~contextfs.store.postgres.PostgresStore`'s
  connection, lock and transactions (:meth:`PostgresStore.connection`), so text
  indexed inside ``with store.transaction():`` commits or rolls back with the
  objects written there.
* Its tables come from the ``search`` component's schema steps
  (:data:`MIGRATIONS`, applied by :meth:`PostgresStore.migrate` when an index is
  made). The first step queues every atom the store already holds in
  ``search_pending``, so a store filled before search existed is indexed by the
  first query, like any deferred atom.
* PostgreSQL never tokenizes. Each document's ``tsvector`` is written as a
  literal built from :func:`~contextfs.search.query.tokenize`'s output (every
  lexeme quoted, with its 1-based positions) and cast, so no text search
  configuration, stemmer or stop list is involved and this backend, the SQLite
  one and the memory twin see the same tokens.
* Queries are built from :func:`~contextfs.search.query.parse_query`'s phrases
  only: every token a quoted lexeme (``'`` and ``\\`` doubled), tokens of a
  phrase joined by ``<->``, ``:*`` on a prefix, phrases joined by ``|`` ("any")
  or ``&`` ("all"). The ``tsquery`` reaches SQL only as a bound parameter, so no
  user text is SQL or ``tsquery`` syntax.
* ``search_totals`` holds the document and token counts BM25 needs, as rows
  summed on read: each write adds its change in one statement that also folds
  every row no other transaction holds (``FOR UPDATE SKIP LOCKED``) into one.
  Writers never wait for each other there, the table stays a few rows long, and
  a query never scans ``search_docs`` for ``count(*)``.

Ranking. The GIN index finds the candidates (``tokens @@ query``); for each,
:data:`SEARCH_SQL` returns the positions of the lexemes the query names; Python
counts every phrase's occurrences and scores with :mod:`contextfs.search.bm25`
(FTS5's ``bm25()`` in its floating-point order, as the memory twin does). N and
the average length come from
``search_totals``; a phrase's document frequency from the candidates ("any"
finds every document holding any phrase) or from a GIN count per phrase
(:data:`HITS_SQL`, "all"). So the scores equal SQLite's and the memory twin's,
not just their order.

Long documents. A ``tsvector`` keeps at most 256 positions per lexeme, clamps
positions above 16383, refuses lexemes over 2046 bytes and values over 1 MiB.
A document that would hit any limit is an *overflow* document: it keeps
``tokens`` NULL and stores its tokens in ``body`` (joined by spaces; tokens
never hold one), and its distinct lexemes (cut to 2046 bytes) go to
``search_overflow`` in as many position-free ``tsvector`` parts as needed.
Queries find overflow candidates there with a looser query (every token of
every phrase OR'd; long ones as cut prefixes), a superset of the true matches,
and count phrases exactly from ``body``, as the memory twin would. A query
token too long to be a lexeme cannot occur in a positional document (those hold
only shorter tokens), so it becomes the lexeme ``' '``, which none holds.
Overflow documents are rare (over 16383 tokens, a word repeated over 256 times,
or a token over 2 KB), so their exact count costs little.

Query plan of :data:`SEARCH_SQL` (PostgreSQL 15, a few thousand rows after
``ANALYZE``, a prefix query; checked by the tests)::

    Nested Loop
      ->  Bitmap Heap Scan on search_docs d
            Recheck Cond: (tokens @@ $1)
            ->  Bitmap Index Scan on search_docs_tokens
                  Index Cond: (tokens @@ $1)
      ->  Append
            ->  Function Scan on unnest w
            ->  Function Scan on unnest p
                  Filter: (lexeme ^@ ANY ($3))

The GIN index answers ``@@`` (a phrase is rechecked against the row's
positions); each candidate then costs two small function scans. Without
prefixes the second is pruned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import psycopg

from contextfs.search import bm25
from contextfs.search.base import check_limit, checked_batches, checked_texts, stored_texts
from contextfs.search.query import Mode, Phrase, check_mode, parse_query, term_key, tokenize
from contextfs.store.postgres import PostgresStore, Step

#: The ``search`` component's schema steps. Append only.
MIGRATIONS: Final[tuple[Step, ...]] = (
    (
        1,
        "create the full-text search tables",
        (
            # tokens: the positional tsvector; body: an overflow document's tokens.
            "CREATE TABLE search_docs ("
            " id bytea PRIMARY KEY CHECK (octet_length(id) = 32),"
            " length integer NOT NULL CHECK (length >= 0),"
            " tokens tsvector, body text,"
            " CHECK ((tokens IS NULL) <> (body IS NULL)))",
            # fastupdate (the default): new entries go to a pending list merged in
            # bulk, about twice as fast as merging one document at a time; each
            # write merges it at once (_merge_pending), so queries never scan it.
            "CREATE INDEX search_docs_tokens ON search_docs USING gin (tokens)",
            "CREATE TABLE search_overflow ("
            " id bytea NOT NULL REFERENCES search_docs (id) ON DELETE CASCADE,"
            " part integer NOT NULL, lexemes tsvector NOT NULL, PRIMARY KEY (id, part))",
            "CREATE INDEX search_overflow_lexemes ON search_overflow USING gin (lexemes)",
            "CREATE TABLE search_pending (id bytea PRIMARY KEY)",
            "CREATE TABLE search_totals (docs bigint NOT NULL, tokens bigint NOT NULL)",
            # The atoms stored before search existed; 'atom' is ATOM, fixed by the format.
            "INSERT INTO search_pending (id) SELECT id FROM objects WHERE kind = 'atom'",
        ),
    ),
)

#: The longest lexeme, in UTF-8 bytes, a tsvector or tsquery accepts.
MAX_LEXEME_BYTES: Final = 2046
#: Positions above this are clamped to it.
MAX_POSITION: Final = 16383
#: A lexeme keeps at most this many positions; later ones are dropped.
MAX_POSITIONS: Final = 256
#: Bytes of lexemes and positions a tsvector may hold: below its 1 MiB limit, with room.
MAX_VECTOR_BYTES: Final = 1_000_000
#: Overflow lexemes are cut to MAX_LEXEME_BYTES at a character boundary, which
#: drops at most 3 bytes, so a query token cut to this many bytes and matched as a
#: prefix finds every cut lexeme of the tokens it matches.
LOOSE_PREFIX_BYTES: Final = MAX_LEXEME_BYTES - 3
#: A lexeme no positional document holds (tokens never contain a space).
NO_LEXEME: Final = "' '"

#: Positional candidates, with the positions of the lexemes the query names.
#: ``setweight`` marks the query's whole words and ``ts_filter`` keeps just
#: them, a few times cheaper than unnesting every lexeme; prefixes need the
#: full ``unnest``, skipped (a one-time filter) when the query has none.
SEARCH_SQL: Final = (
    "SELECT d.id, d.length, u.lexeme, u.positions"
    " FROM search_docs AS d CROSS JOIN LATERAL ("
    "SELECT w.lexeme, w.positions"
    " FROM unnest(ts_filter(setweight(d.tokens, 'A', %(words)s::text[]), '{a}')) AS w"
    " UNION ALL SELECT p.lexeme, p.positions FROM unnest(d.tokens) AS p"
    " WHERE cardinality(%(prefixes)s::text[]) > 0 AND p.lexeme ^@ ANY(%(prefixes)s::text[])"
    ") AS u"
    " WHERE d.tokens @@ %(query)s::tsquery"
)

#: Positional documents matching a query; the tsquery alone decides.
MATCH_SQL: Final = "SELECT id FROM search_docs WHERE tokens @@ %s::tsquery"

#: How many positional documents hold each phrase, in the phrases' order.
HITS_SQL: Final = (
    "SELECT (SELECT count(*) FROM search_docs WHERE tokens @@ q.query)"
    " FROM unnest(%s::tsquery[]) WITH ORDINALITY AS q(query, n) ORDER BY q.n"
)

#: Overflow documents holding any of the (loose) query's lexemes.
OVERFLOW_SQL: Final = (
    "SELECT d.id, d.length, d.body FROM search_docs AS d"
    " WHERE d.id IN (SELECT o.id FROM search_overflow AS o WHERE o.lexemes @@ %s::tsquery)"
)

_TOTALS_SQL: Final = "SELECT coalesce(sum(docs), 0), coalesce(sum(tokens), 0) FROM search_totals"

#: Add ``(docs, tokens)`` to the totals, folding every row no one else holds into one.
_ADD_TOTALS_SQL: Final = (
    "WITH folded AS ("
    " DELETE FROM search_totals WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM search_totals FOR UPDATE SKIP LOCKED))"
    " RETURNING docs, tokens)"
    " INSERT INTO search_totals (docs, tokens)"
    " SELECT %s::bigint + coalesce(sum(docs), 0), %s::bigint + coalesce(sum(tokens), 0)"
    " FROM folded"
)

_INSERT_SQL: Final = (
    "INSERT INTO search_docs (id, length, tokens, body)"
    " SELECT * FROM unnest(%s::bytea[], %s::integer[], %s::tsvector[], %s::text[])"
    " ON CONFLICT (id) DO NOTHING RETURNING id, length"
)

_INSERT_OVERFLOW_SQL: Final = (
    "INSERT INTO search_overflow (id, part, lexemes)"
    " SELECT * FROM unnest(%s::bytea[], %s::integer[], %s::tsvector[])"
)

Connection = psycopg.Connection[Any]
#: Where each term of one document occurs: term -> positions.
Terms = Mapping[str, Sequence[int]]
#: A candidate document: its length in tokens and each phrase's occurrences in it.
Hit = tuple[int, list[int]]


class PostgresSearchIndex:
    """A :class:`~contextfs.search.base.SearchIndex` over a :class:`PostgresStore`'s tables.

    Cheap to create (one query, to check the schema); any number may share one
    store, and any number of processes one database.
    """

    def __init__(self, store: PostgresStore) -> None:
        """Attach to ``store``, creating the search tables on first use.

        Raises:
            StoreError: the store is closed, or PostgreSQL failed.
        """
        self._store = store
        store.migrate("search", MIGRATIONS)

    def __repr__(self) -> str:
        return f"PostgresSearchIndex({self._store!r})"

    def index_texts(self, items: Iterable[tuple[bytes, str]]) -> None:
        """Index ``(atom id, content)`` pairs; ids already indexed are skipped.

        Raises:
            InvalidInputError: an id is not 32 bytes or a text is not a string;
                nothing is indexed.
            StoreError: PostgreSQL failed; nothing is indexed.
        """
        rows = checked_texts(items)
        if rows:
            with self._store.connection(write=True) as conn:
                _insert(conn, rows)

    def reindex(self, texts: Iterable[tuple[bytes, str]]) -> int:
        """Replace the whole index with ``texts``, in one transaction; return its size.

        ``texts`` is read in batches, so a whole store can be streamed through.
        Deferred atoms stay deferred. Other writers wait until it commits;
        readers do not.

        Raises:
            InvalidInputError: an id or text is malformed; the transaction rolls
                back (if it is nested, the caller's outer block decides).
            StoreError: PostgreSQL failed; the index is unchanged.
        """
        with self._store.connection(write=True) as conn:
            # Wait for every open writer and hold off new ones: a writer's
            # totals row would otherwise still count documents deleted here.
            conn.execute("LOCK TABLE search_docs, search_totals IN SHARE ROW EXCLUSIVE MODE")
            conn.execute("DELETE FROM search_docs")  # cascades to search_overflow
            conn.execute("DELETE FROM search_totals")
            for batch in checked_batches(texts):
                _insert(conn, batch)
            return _totals(conn)[0]

    def count(self) -> int:
        """Return how many atoms are indexed."""
        self._catch_up()
        with self._store.connection() as conn:
            return _totals(conn)[0]

    def defer(self, oids: Iterable[bytes]) -> None:
        """Note atoms to index before the next query (one cheap insert)."""
        # Sorted: concurrent writers take the rows' locks in one order.
        unique = sorted(set(oids))
        if unique:
            with self._store.connection(write=True) as conn:
                conn.execute(
                    "INSERT INTO search_pending (id) SELECT unnest(%s::bytea[])"
                    " ON CONFLICT (id) DO NOTHING",
                    (unique,),
                )

    def forget(self, oid: bytes, text: str) -> bool:
        """Remove atom ``oid`` from the index and the deferred atoms, for a purge.

        Rows are keyed by id, so ``text`` is not needed here. The deleted rows
        stay in the table files until PostgreSQL vacuums them.

        Returns:
            True if the atom was indexed.

        Raises:
            StoreError: PostgreSQL failed; nothing changed.
        """
        with self._store.connection(write=True) as conn:
            conn.execute("DELETE FROM search_pending WHERE id = %s", (oid,))
            row = conn.execute(
                "DELETE FROM search_docs WHERE id = %s RETURNING length", (oid,)
            ).fetchone()
            if row is None:
                return False
            conn.execute(_ADD_TOTALS_SQL, (-1, -int(row[0])))
            return True

    def match_ids(self, query: str) -> set[bytes]:
        """Return the ids of every atom holding all of ``query``'s terms, unranked."""
        phrases = parse_query(query).phrases
        self._catch_up()
        with self._store.read_snapshot(), self._store.connection() as conn:
            found = {bytes(row[0]) for row in conn.execute(MATCH_SQL, (_tsquery(phrases, "all"),))}
            found.update(oid for oid, hit in _overflow_hits(conn, phrases).items() if all(hit[1]))
        return found

    def search(self, query: str, *, limit: int, mode: Mode = "any") -> list[tuple[bytes, float]]:
        """Return up to ``limit`` ``(atom id, score)`` pairs, best first, ties by id.

        Raises:
            InvalidInputError: the query has no words, or ``mode`` or ``limit`` is invalid.
            StoreError: PostgreSQL failed.
        """
        mode = check_mode(mode)
        phrases = parse_query(query).phrases
        limit = check_limit(limit)
        if limit <= 0:
            return []
        self._catch_up()
        # One snapshot, so the totals, frequencies and candidates agree.
        with self._store.read_snapshot(), self._store.connection() as conn:
            rows, tokens = _totals(conn)
            if not rows:
                return []
            found = _positional_hits(conn, phrases, mode)
            overflow = _overflow_hits(conn, phrases)
            if mode == "any":  # every document holding a phrase is a candidate
                hits = _holding([*found.values(), *overflow.values()], len(phrases))
            else:
                counts = conn.execute(HITS_SQL, (_phrase_queries(phrases),)).fetchall()
                extra = _holding(overflow.values(), len(phrases))
                hits = [int(row[0]) + n for row, n in zip(counts, extra, strict=True)]
        match = any if mode == "any" else all
        matched = {oid: hit for oid, hit in {**found, **overflow}.items() if match(hit[1])}
        return _rank(matched, hits, rows, tokens, limit)

    def _catch_up(self) -> None:
        """Index every deferred atom, before a query."""
        with self._store.connection() as conn:
            if conn.execute("SELECT 1 FROM search_pending LIMIT 1").fetchone() is None:
                return
        with self._store.connection(write=True) as conn:
            # Deleting first locks the rows: a concurrent catch-up waits for this
            # one to commit, then finds nothing left and sees its work.
            pending = conn.execute("DELETE FROM search_pending RETURNING id").fetchall()
            oids = sorted(bytes(row[0]) for row in pending)
            for batch in checked_batches(stored_texts(self._store, oids)):
                _insert(conn, batch)


# -- writing ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Document:
    """One document as its rows: a positional tsvector, or a body and vocabulary parts."""

    oid: bytes
    length: int
    vector: str | None
    body: str | None
    parts: tuple[str, ...]


def _document(oid: bytes, text: str) -> _Document:
    """Tokenize ``text`` and lay it out positionally if a tsvector holds it exactly."""
    tokens = tokenize(text)
    positions: dict[str, list[int]] = {}
    for position, token in enumerate(tokens, 1):  # tsvector positions start at 1
        positions.setdefault(token, []).append(position)
    if _fits(len(tokens), positions):
        vector = " ".join(
            f"{quote_lexeme(t)}:{','.join(map(str, at))}" for t, at in positions.items()
        )
        return _Document(oid, len(tokens), vector, None, ())
    return _Document(oid, len(tokens), None, " ".join(tokens), _vocabulary_parts(positions))


def _fits(length: int, positions: Mapping[str, list[int]]) -> bool:
    """Whether a tsvector can hold these positions exactly, nothing clamped or dropped."""
    if length > MAX_POSITION:
        return False
    size = 0
    for token, at in positions.items():
        width = _width(token)
        if width > MAX_LEXEME_BYTES or len(at) > MAX_POSITIONS:
            return False
        size += width + 3 + 2 * len(at)  # alignment, position count, positions
    return size <= MAX_VECTOR_BYTES


def _vocabulary_parts(tokens: Iterable[str]) -> tuple[str, ...]:
    """An overflow document's distinct lexemes as position-free tsvector literals."""
    parts: list[str] = []
    part: list[str] = []
    size = 0
    for lexeme in sorted({_cut(token, MAX_LEXEME_BYTES) for token in tokens}):
        width = _width(lexeme) + 1
        if part and size + width > MAX_VECTOR_BYTES:
            parts.append(" ".join(part))
            part, size = [], 0
        part.append(quote_lexeme(lexeme))
        size += width
    if part:
        parts.append(" ".join(part))
    return tuple(parts)


def _insert(conn: Connection, rows: list[tuple[bytes, str]]) -> None:
    """Index the rows whose ids are not indexed yet; the caller holds a write transaction.

    Rows go in id order, so concurrent writers of overlapping batches lock in
    one order; ``ON CONFLICT DO NOTHING`` skips an id another writer committed
    meanwhile, and only the rows really inserted count in the totals.
    """
    oids = sorted(oid for oid, _ in rows)
    indexed = {
        bytes(row[0])
        for row in conn.execute("SELECT id FROM search_docs WHERE id = ANY(%s)", (oids,))
    }
    docs = [_document(oid, text) for oid, text in sorted(rows) if oid not in indexed]
    if not docs:
        return
    inserted = conn.execute(
        _INSERT_SQL,
        (
            [d.oid for d in docs],
            [d.length for d in docs],
            [d.vector for d in docs],
            [d.body for d in docs],
        ),
    ).fetchall()
    fresh = {bytes(row[0]) for row in inserted}
    parts = [(d.oid, n, part) for d in docs if d.oid in fresh for n, part in enumerate(d.parts)]
    if parts:
        conn.execute(
            _INSERT_OVERFLOW_SQL,
            ([p[0] for p in parts], [p[1] for p in parts], [p[2] for p in parts]),
        )
    if inserted:
        conn.execute(_ADD_TOTALS_SQL, (len(inserted), sum(int(row[1]) for row in inserted)))
        _merge_pending(conn, overflow=bool(parts))


def _merge_pending(conn: Connection, *, overflow: bool) -> None:
    """Merge the GIN indexes' pending lists now, in bulk, so no query has to scan them."""
    conn.execute("SELECT gin_clean_pending_list('search_docs_tokens'::regclass)")
    if overflow:
        conn.execute("SELECT gin_clean_pending_list('search_overflow_lexemes'::regclass)")


def _totals(conn: Connection) -> tuple[int, int]:
    """Return ``(documents, tokens)`` indexed."""
    row = conn.execute(_TOTALS_SQL).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


# -- lexemes and queries -----------------------------------------------------------


def quote_lexeme(lexeme: str) -> str:
    """Quote a lexeme for tsvector or tsquery input: ``'`` and ``\\`` are doubled inside quotes."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _width(token: str) -> int:
    return len(token) if token.isascii() else len(token.encode())


def _cut(token: str, limit: int) -> str:
    """Return ``token``'s longest prefix of at most ``limit`` UTF-8 bytes."""
    if _width(token) <= limit:
        return token
    return token.encode()[:limit].decode(errors="ignore")


def _phrase_query(phrase: Phrase) -> str:
    """A phrase for positional documents: ``<->`` between tokens, ``:*`` on a prefix."""
    last = len(phrase.tokens) - 1
    lexemes = []
    for n, token in enumerate(phrase.tokens):
        lexeme = quote_lexeme(token) if _width(token) <= MAX_LEXEME_BYTES else NO_LEXEME
        lexemes.append(lexeme + ":*" if phrase.prefix and n == last else lexeme)
    return " <-> ".join(lexemes)


def _phrase_queries(phrases: Sequence[Phrase]) -> list[str]:
    return [_phrase_query(phrase) for phrase in phrases]


def _tsquery(phrases: Sequence[Phrase], mode: Mode) -> str:
    """The phrases OR'd ("any") or AND'd ("all"), for positional documents."""
    joiner = " | " if mode == "any" else " & "
    return joiner.join(f"({query})" for query in _phrase_queries(phrases))


def _loose_query(phrases: Sequence[Phrase]) -> str:
    """Every token of every phrase OR'd: a superset of the overflow documents that match."""
    lexemes: dict[str, None] = {}
    for phrase in phrases:
        last = len(phrase.tokens) - 1
        for n, token in enumerate(phrase.tokens):
            if (phrase.prefix and n == last) or _width(token) > LOOSE_PREFIX_BYTES:
                lexemes[quote_lexeme(_cut(token, LOOSE_PREFIX_BYTES)) + ":*"] = None
            else:
                lexemes[quote_lexeme(token)] = None
    return " | ".join(lexemes)


def _positional_hits(conn: Connection, phrases: Sequence[Phrase], mode: Mode) -> dict[bytes, Hit]:
    """Return ``id -> (length, occurrences of each phrase)`` for the positional candidates."""
    words: set[str] = set()
    prefixes: set[str] = set()
    for phrase in phrases:
        *body, last = phrase.tokens
        words.update(body)
        (prefixes if phrase.prefix else words).add(last)
    # Longer tokens are in no positional document; leaving them out keeps the
    # parameters within what a lexeme can be.
    params = {
        "query": _tsquery(phrases, mode),
        "words": sorted(w for w in words if _width(w) <= MAX_LEXEME_BYTES),
        "prefixes": sorted(p for p in prefixes if _width(p) <= MAX_LEXEME_BYTES),
    }
    docs: dict[bytes, tuple[int, dict[str, list[int]]]] = {}
    for oid, length, lexeme, positions in conn.execute(SEARCH_SQL, params).fetchall():
        docs.setdefault(bytes(oid), (int(length), {}))[1][lexeme] = positions
    return {
        oid: (length, [_occurrences(terms, phrase) for phrase in phrases])
        for oid, (length, terms) in docs.items()
    }


def _overflow_hits(conn: Connection, phrases: Sequence[Phrase]) -> dict[bytes, Hit]:
    """Return ``id -> (length, occurrences of each phrase)`` for overflow candidates, exactly."""
    found: dict[bytes, Hit] = {}
    for oid, length, body in conn.execute(OVERFLOW_SQL, (_loose_query(phrases),)).fetchall():
        terms: dict[str, list[int]] = {}
        for position, token in enumerate(body.split(" ")):
            terms.setdefault(term_key(token), []).append(position)
        found[bytes(oid)] = (int(length), [_occurrences(terms, phrase) for phrase in phrases])
    return found


def _occurrences(terms: Terms, phrase: Phrase) -> int:
    """Count ``phrase`` in one document, as the memory twin does (overlaps count, as in FTS5)."""
    last = len(phrase.tokens) - 1
    lists: list[Sequence[int]] = []
    for n, token in enumerate(phrase.tokens):
        key = term_key(token)
        if phrase.prefix and n == last:
            found = [p for term, at in terms.items() if term.startswith(key) for p in at]
        else:
            found = list(terms.get(key, ()))
        if not found:
            return 0
        lists.append(found)
    if len(lists) == 1:
        return len(lists[0])
    later = [set(positions) for positions in lists[1:]]
    return sum(
        all(start + offset in positions for offset, positions in enumerate(later, 1))
        for start in lists[0]
    )


# -- ranking ---------------------------------------------------------------------------


def _holding(docs: Iterable[Hit], phrases: int) -> list[int]:
    """Return, for each phrase, how many of ``docs`` hold it."""
    hits = [0] * phrases
    for _, freqs in docs:
        for n, freq in enumerate(freqs):
            hits[n] += freq > 0
    return hits


def _rank(
    matched: Mapping[bytes, Hit],
    hits: Sequence[int],
    rows: int,
    tokens: int,
    limit: int,
) -> list[tuple[bytes, float]]:
    """Score with FTS5's bm25 (:mod:`~contextfs.search.bm25`) and keep the best ``limit``."""
    if not matched:
        return []
    docs = ((oid, length, freqs) for oid, (length, freqs) in matched.items())
    return bm25.rank(docs, hits, rows, tokens, limit)
