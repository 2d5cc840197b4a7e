"""The contract every :class:`~contextfs.search.base.SearchIndex` backend must pass.

Subclass :class:`SearchContract` in a ``Test*`` class and override
:meth:`~SearchContract.make_store`; the index comes from
:func:`~contextfs.backends.search_index_for` unless ``make_index`` is overridden::

    class TestSqliteSearch(SearchContract):
        def make_store(self) -> Store:
            return SqliteStore.open(self.tmp_path / "store.db", create=True)

Rankings are asserted as exact orders, so a backend must rank like FTS5's
``bm25()`` (k1 = 1.2, b = 0.75), break ties by ascending id, and tokenize like
``unicode61 remove_diacritics 2``. The suite needs pytest; the library never
imports this module.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from contextfs.backends import search_index_for
from contextfs.errors import InvalidInputError, StoreError
from contextfs.model.objects import atom_body, atom_digest
from contextfs.model.types import T_STRING
from contextfs.search import SearchIndex, atom_texts
from contextfs.search.query import MAX_PHRASES, Mode, tokenize
from contextfs.store.base import Store
from contextfs.testing.store_contract import abandoned, make_objects

#: Texts that hold none of the words the cases search for; they keep every
#: searched word in under half the documents, so BM25's IDF is not floored.
FILLER = tuple(f"filler document number {n} about nothing in particular" for n in range(12))

#: Queries a user (or attacker) might type: none may raise anything but the
#: empty-query InvalidInputError, and none is read as FTS5 syntax.
HOSTILE_QUERIES = (
    '"',
    '""',
    '"""',
    "*",
    "**",
    "x*",
    "*x",
    "NEAR(",
    "NEAR(x y, 2)",
    "x OR y",
    "x AND NOT y",
    "(x",
    "x)",
    "col:x",
    "search_fts:x",
    "{body}: x",
    "-x",
    "+x",
    "^x",
    '"x',
    'x "y',
    '"x" "y',
    "x\x00y",
    "\x00",
    "x'); DROP TABLE objects; --",
    "😀",
    "x 😀 y",
    "\ud800 x",
    "\\",
    "x" * 10_000,
    " ".join(f"w{n}" for n in range(5_000)),
    '"' + " ".join(["x"] * 3_000) + '"',
)


def text_id(text: str) -> bytes:
    """Return a deterministic 32-byte id for ``text`` (the index does not hash)."""
    return hashlib.sha256(f"search-contract:{text}".encode()).digest()


def exactly(message: str) -> str:
    """A ``pytest.raises(match=...)`` pattern for exactly ``message``."""
    return f"^{re.escape(message)}$"


class SearchContract:
    """What every search backend promises: matching, BM25 order, modes, transactions."""

    tmp_path: Path
    request: pytest.FixtureRequest
    store: Store
    index: SearchIndex

    def make_store(self) -> Store:
        """Return a new, empty store; override in the backend's test class."""
        raise NotImplementedError

    def make_index(self, store: Store) -> SearchIndex:
        """Return the search index for ``store``."""
        return search_index_for(store)

    @pytest.fixture(autouse=True)
    def _search_contract_setup(
        self, tmp_path: Path, request: pytest.FixtureRequest
    ) -> Iterator[None]:
        self.tmp_path = tmp_path
        self.request = request
        self.store = self.make_store()
        self.index = self.make_index(self.store)
        self.texts: dict[bytes, str] = {}
        yield
        self.store.close()

    # -- helpers ---------------------------------------------------------------

    def add(self, *texts: str) -> None:
        """Index ``texts`` plus :data:`FILLER`, with ids from :func:`text_id`."""
        everything = [*texts, *FILLER]
        self.texts.update((text_id(text), text) for text in everything)
        self.index.index_texts((text_id(text), text) for text in everything)

    def found(self, query: str, *, limit: int = 100, mode: Mode = "any") -> list[str]:
        """Return the texts a search finds, best first."""
        return [self.texts[oid] for oid, _ in self.index.search(query, limit=limit, mode=mode)]

    # -- matching --------------------------------------------------------------

    def test_is_a_search_index(self) -> None:
        assert isinstance(self.index, SearchIndex)

    def _store_atoms(self, *texts: str) -> list[bytes]:
        oids = [atom_digest(T_STRING, text) for text in texts]
        self.store.put_objects(
            (oid, "atom", atom_body(T_STRING, text)) for oid, text in zip(oids, texts, strict=True)
        )
        return oids

    def test_deferred_atoms_are_indexed_before_the_next_query(self) -> None:
        oids = self._store_atoms("the quick brown fox", "a lazy brown dog", *FILLER)
        self.index.defer(oids[:2])
        assert {oid for oid, _ in self.index.search("brown", limit=10)} == set(oids[:2])
        assert self.index.count() == 2

    def test_deferral_rolls_back_with_the_store(self) -> None:
        oids = self._store_atoms("kept words here", *FILLER)
        with abandoned(self.store):
            self.index.defer(oids[:1])
        assert self.index.count() == 0

    def test_match_ids_returns_every_atom_with_all_terms(self) -> None:
        self.add("red apple pie", "red cherry pie", "green apple")
        assert self.index.match_ids("red pie") == {
            text_id("red apple pie"),
            text_id("red cherry pie"),
        }
        assert self.index.match_ids("apple") == {text_id("red apple pie"), text_id("green apple")}
        assert self.index.match_ids("purple") == set()
        with pytest.raises(InvalidInputError):
            self.index.match_ids("  ")

    def test_an_empty_index_finds_nothing(self) -> None:
        assert self.index.count() == 0
        assert self.index.search("anything", limit=10) == []

    def test_finds_documents_by_word_with_positive_scores_best_first(self) -> None:
        self.add("the cat sat on the mat", "a dog", "cat and dog")
        hits = self.index.search("cat", limit=10)
        assert [oid for oid, _ in hits] == sorted(
            [text_id("the cat sat on the mat"), text_id("cat and dog")],
            key=lambda oid: -dict(hits)[oid],
        )
        assert all(isinstance(score, float) and score > 0 for _, score in hits)
        assert hits == sorted(hits, key=lambda hit: (-hit[1], hit[0]))

    def test_no_match_is_an_empty_list(self) -> None:
        self.add("alpha beta")
        assert self.index.search("gamma", limit=10) == []
        assert self.index.search("alpha gamma", limit=10, mode="all") == []

    def test_term_twice_in_a_short_text_beats_once_in_a_long_text(self) -> None:
        long = "memory " + " ".join(f"word{n}" for n in range(60))
        self.add(long, "memory memory lane")
        assert self.found("memory") == ["memory memory lane", long]

    def test_shorter_document_wins_at_equal_frequency(self) -> None:
        self.add("zebra one two three four five six", "zebra one")
        assert self.found("zebra") == ["zebra one", "zebra one two three four five six"]

    def test_rarer_term_weighs_more(self) -> None:
        self.add("common rare", "common x", "common y", "common z")
        assert self.found("common rare")[0] == "common rare"
        assert self.found("rare") == ["common rare"]

    def test_any_ranks_documents_matching_more_terms_higher(self) -> None:
        self.add("red apple pie", "red car", "green apple", "blue sky")
        found = self.found("red apple")
        assert found[0] == "red apple pie"
        assert sorted(found[1:]) == ["green apple", "red car"]

    def test_all_requires_every_term(self) -> None:
        self.add("red apple pie", "red car", "green apple", "apple red")
        assert sorted(self.found("red apple", mode="all")) == ["apple red", "red apple pie"]
        assert self.found("red apple car", mode="all") == []

    def test_phrase_needs_the_words_adjacent_and_in_order(self) -> None:
        self.add("the quick brown fox", "brown quick fox", "quick red brown")
        assert self.found('"quick brown"') == ["the quick brown fox"]
        assert sorted(self.found("quick brown", mode="all")) == [
            "brown quick fox",
            "quick red brown",
            "the quick brown fox",
        ]

    def test_phrase_and_word_combine(self) -> None:
        self.add("new york pizza", "york new pizza", "new york bagel")
        assert self.found('"new york" pizza', mode="all") == ["new york pizza"]
        found = self.found('"new york" pizza')
        assert found[0] == "new york pizza"
        assert sorted(found[1:]) == ["new york bagel", "york new pizza"]

    def test_prefix_matches_words_starting_with_it(self) -> None:
        self.add("cat", "cats", "catalog", "concat", "dog")
        assert sorted(self.found("cat*")) == ["cat", "catalog", "cats"]
        assert self.found("cat") == ["cat"]

    def test_prefix_on_the_last_word_of_a_phrase(self) -> None:
        self.add("new york", "new yorkshire", "new jersey york")
        assert sorted(self.found('"new yor*"')) == ["new york", "new yorkshire"]
        assert sorted(self.found('"new yor"*')) == ["new york", "new yorkshire"]

    def test_case_and_diacritics_are_folded(self) -> None:
        self.add("Café CRÈME brûlée", "Cafe\u0301 decomposed", "naïve Ærø")
        assert sorted(self.found("cafe")) == ["Cafe\u0301 decomposed", "Café CRÈME brûlée"]
        assert sorted(self.found("CAFÉ")) == sorted(self.found("cafe"))
        assert self.found("creme brulee", mode="all") == ["Café CRÈME brûlée"]
        assert self.found("NAIVE") == ["naïve Ærø"]
        assert self.found("ærø") == ["naïve Ærø"]

    def test_unicode_text_in_several_scripts(self) -> None:
        texts = (
            "Ελληνικά κείμενα",
            "Привет мир",
            "東京タワー 夜景",
            "مرحبا بالعالم",
            "I ❤ cats 😀",
        )
        self.add(*texts)
        assert self.found("ΕΛΛΗΝΙΚΆ") == ["Ελληνικά κείμενα"]
        assert self.found("привет") == ["Привет мир"]
        assert self.found("東京タワー") == ["東京タワー 夜景"]
        assert self.found("東京*") == ["東京タワー 夜景"]
        assert self.found("東京") == []  # a run of ideographs is one token, as in FTS5
        assert self.found("بالعالم") == ["مرحبا بالعالم"]
        assert self.found("cats ❤") == ["I ❤ cats 😀"]

    def test_digits_are_words(self) -> None:
        self.add("version 2024 release", "version 2025")
        assert self.found("2024") == ["version 2024 release"]

    # -- results ---------------------------------------------------------------

    def test_limit_keeps_the_best(self) -> None:
        texts = [f"needle {' '.join(['hay'] * n)}" for n in range(30)]
        self.add(*texts)
        everything = self.index.search("needle", limit=100)
        assert len(everything) == 30
        assert self.index.search("needle", limit=5) == everything[:5]
        assert self.found("needle", limit=1) == ["needle "]
        assert self.index.search("needle", limit=0) == []
        assert self.index.search("needle", limit=-3) == []

    def test_ties_are_broken_by_id(self) -> None:
        ids = [text_id(f"twin {n}") for n in range(6)]
        self.add()
        self.index.index_texts((oid, "identical twin text") for oid in ids)
        hits = self.index.search("twin", limit=10)
        assert [oid for oid, _ in hits] == sorted(ids)
        assert len({score for _, score in hits}) == 1

    def test_indexing_is_idempotent(self) -> None:
        self.add("one fish", "two fish")
        before = self.index.search("fish", limit=10)
        self.add("one fish", "two fish")
        self.index.index_texts([(text_id("one fish"), "one fish")] * 3)
        assert self.index.count() == 2 + len(FILLER)
        assert self.index.search("fish", limit=10) == before

    def test_count_and_empty_batches(self) -> None:
        self.index.index_texts([])
        assert self.index.count() == 0
        self.add("a b c")
        assert self.index.count() == 1 + len(FILLER)
        self.index.index_texts(iter([]))
        assert self.index.count() == 1 + len(FILLER)

    def test_a_text_without_words_counts_but_never_matches(self) -> None:
        self.index.index_texts([(text_id("!!!"), "!!! ... 😀")])
        assert self.index.count() == 1
        self.add("real words")
        assert self.index.count() == 2 + len(FILLER)
        assert self.found("real") == ["real words"]

    def test_a_long_text(self) -> None:
        long = " ".join(f"w{n % 5000}" for n in range(100_000)) + " unique"
        self.add(long)
        assert self.found("unique") == [long]
        assert self.found('"w4999 w0 w1"') == [long]

    # -- bad input -------------------------------------------------------------

    @pytest.mark.parametrize("query", ["", "   ", '"', "*", "-- () :", "😀", "\x00"])
    def test_a_query_without_words_is_invalid_input(self, query: str) -> None:
        message = f"search query {query!r} has no words to search for"
        with pytest.raises(InvalidInputError, match=exactly(message)):
            self.index.search(query, limit=10)

    @pytest.mark.parametrize("query", HOSTILE_QUERIES)
    def test_hostile_queries_never_raise_anything_else(self, query: str) -> None:
        self.add("x y near or and not col search_fts body drop table objects w1")
        if tokenize(query):
            assert len(self.index.search(query, limit=10)) <= 10
        else:
            with pytest.raises(InvalidInputError, match=r"has no words to search for$"):
                self.index.search(query, limit=10)

    def test_operators_are_plain_words(self) -> None:
        self.add("x only", "y only", "or only", "near and not")
        assert sorted(self.found("x OR y")) == ["or only", "x only", "y only"]
        assert self.found("NOT", mode="all") == ["near and not"]
        assert sorted(self.found("col:x")) == ["x only"]
        assert self.found("NEAR(x y)", mode="all") == []

    def test_a_huge_query_is_cut_to_the_phrase_limit(self) -> None:
        self.add("w0 early", f"w{MAX_PHRASES} late")
        query = " ".join(f"w{n}" for n in range(5_000))
        assert self.found(query) == ["w0 early"]

    def test_unknown_mode_and_bad_limit_are_invalid_input(self) -> None:
        with pytest.raises(
            InvalidInputError, match=exactly("search mode must be 'any' or 'all', got 'some'")
        ):
            self.index.search("x", limit=1, mode="some")  # type: ignore[arg-type]
        with pytest.raises(
            InvalidInputError, match=exactly("search limit must be an integer, got '5'")
        ):
            self.index.search("x", limit="5")  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("bad", "message"),
        [
            ((b"short", "text"), "atom id must be 32 bytes, got b'short'"),
            (("0" * 32, "text"), f"atom id must be 32 bytes, got {'0' * 32!r}"),
            ((text_id("x"), b"bytes"), "atom text must be a string, got bytes"),
        ],
    )
    def test_a_malformed_batch_is_refused_whole(self, bad: tuple[bytes, str], message: str) -> None:
        with pytest.raises(InvalidInputError, match=exactly(message)):
            self.index.index_texts([(text_id("good"), "good text"), bad])
        assert self.index.count() == 0

    # -- transactions ----------------------------------------------------------

    def test_indexing_in_a_committed_transaction_lands_with_the_objects(self) -> None:
        with self.store.transaction():
            self.store.put_objects(make_objects(2))
            self.add("committed words")
            assert self.found("committed") == ["committed words"]
        assert self.store.count_objects() == 2
        assert self.found("committed") == ["committed words"]

    def test_a_rolled_back_transaction_unindexes_its_texts(self) -> None:
        self.add("kept words")
        count = self.index.count()
        with abandoned(self.store):
            self.store.put_objects(make_objects(2))
            self.index.index_texts([(text_id("lost words"), "lost words")])
            with self.store.transaction():  # nested: joins the outer one
                self.index.index_texts([(text_id("nested words"), "nested words")])
            assert self.index.search("lost nested", limit=10, mode="any") != []
        assert self.store.count_objects() == 0
        assert self.index.count() == count
        assert self.index.search("lost nested", limit=10) == []
        assert self.found("words") == ["kept words"]

    def test_rollback_on_base_exception(self) -> None:
        def interrupted() -> None:
            with self.store.transaction():
                self.index.index_texts([(text_id("lost"), "lost")])
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            interrupted()
        assert self.index.count() == 0

    def test_reindex_replaces_everything(self) -> None:
        self.add("old text")
        fresh = [(text_id("new text"), "new text"), (text_id("other"), "other")]
        assert self.index.reindex(fresh + fresh[:1]) == 2
        assert self.index.count() == 2
        assert self.index.search("old", limit=10) == []
        assert [oid for oid, _ in self.index.search("new", limit=10)] == [text_id("new text")]
        assert self.index.reindex([]) == 0
        assert self.index.search("new", limit=10) == []

    def test_reindex_from_the_atoms_in_the_store(self) -> None:
        contents = ["first stored fact", "second stored fact", "Café third"]
        self.store.put_objects(
            (atom_digest(T_STRING, text), "atom", atom_body(T_STRING, text)) for text in contents
        )
        self.store.put_objects(make_objects(2, kind="commit"))
        self.store.put_objects([(text_id("bad"), "atom", b"not an atom")])
        assert self.index.reindex(atom_texts(self.store)) == 3
        hits = self.index.search("cafe fact", limit=10)
        assert sorted(oid for oid, _ in hits) == sorted(
            atom_digest(T_STRING, text) for text in contents
        )

    def test_a_rolled_back_reindex_restores_the_old_index(self) -> None:
        self.add("old text")
        count = self.index.count()
        with abandoned(self.store):
            assert self.index.reindex([(text_id("new text"), "new text")]) == 1
            assert self.index.search("old", limit=10) == []
        assert self.index.count() == count
        assert self.found("old") == ["old text"]
        assert self.index.search("new", limit=10) == []

    def test_a_bad_reindex_changes_nothing(self) -> None:
        self.add("old text")
        with pytest.raises(InvalidInputError):
            self.index.reindex([(text_id("new"), "new"), (b"bad", "bad")])
        assert self.found("old") == ["old text"]

    def test_concurrent_indexing_and_searching(self) -> None:
        def work(worker: int) -> None:
            for n in range(25):
                text = f"shared worker{worker} item{n}"
                self.index.index_texts([(text_id(text), text)])
                assert self.index.search(f"worker{worker}", limit=100) != []

        with ThreadPoolExecutor(4) as pool:
            for future in [pool.submit(work, w) for w in range(4)]:
                future.result()
        assert self.index.count() == 100
        assert len(self.index.search("shared", limit=1000)) == 100

    def test_a_closed_store_refuses_use(self) -> None:
        self.store.close()
        with pytest.raises(StoreError):
            self.index.search("x", limit=1)
        with pytest.raises(StoreError):
            self.index.index_texts([(text_id("x"), "x")])
