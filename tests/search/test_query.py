"""Query parsing: hostile text becomes a safe FTS5 expression; the tokenizer matches FTS5's."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contextfs.errors import InvalidInputError
from contextfs.search.query import (
    FTS5_MAX_TOKEN_BYTES,
    MAX_PHRASE_TOKENS,
    MAX_PHRASES,
    Phrase,
    SearchQuery,
    check_mode,
    content_phrases,
    fts5_expression,
    parse_query,
    term_key,
    tokenize,
)
from contextfs.testing.search_contract import HOSTILE_QUERIES

#: What fts5_expression may produce: quoted strings (``"`` doubled), an optional
#: prefix star, joined by OR or AND -- never a bare user character.
_STRING = r'"(?:[^"]|"")+"\*?'
SAFE_EXPRESSION = re.compile(rf"{_STRING}(?: (?:OR|AND) {_STRING})*")


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


@pytest.fixture(scope="module")
def fts5() -> Iterator[sqlite3.Connection]:
    """A scratch FTS5 table with the schema's tokenizer, and its token listing."""
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE VIRTUAL TABLE t USING fts5("
        "body, content='', tokenize='unicode61 remove_diacritics 2')"
    )
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    conn.execute("INSERT INTO t (rowid, body) VALUES (1, 'x y near or col')")
    yield conn
    conn.close()


def fts5_tokens(conn: sqlite3.Connection, texts: list[str]) -> list[list[str]]:
    """Tokenize ``texts`` with SQLite's own FTS5 tokenizer."""
    conn.execute("INSERT INTO t (t) VALUES ('delete-all')")
    conn.executemany(
        "INSERT INTO t (rowid, body) VALUES (?, ?)", [(n, text) for n, text in enumerate(texts)]
    )
    found: list[list[str]] = [[] for _ in texts]
    for term, doc in conn.execute("SELECT term, doc FROM v ORDER BY doc, offset"):
        found[doc].append(term)
    return found


def run_match(conn: sqlite3.Connection, expression: str) -> None:
    conn.execute("SELECT rowid, bm25(t) FROM t WHERE t MATCH ?", (expression,)).fetchall()


# -- the expression ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "any_expression", "all_expression"),
    [
        ("hello world", '"hello" OR "world"', '"hello" AND "world"'),
        ('"quick brown" fox*', '"quick brown" OR "fox"*', '"quick brown" AND "fox"*'),
        ("a OR b", '"a" OR "or" OR "b"', '"a" AND "or" AND "b"'),
        ("NEAR(a b, 3)", '"near" OR "a" OR "b" OR "3"', '"near" AND "a" AND "b" AND "3"'),
        ("col:x", '"col" OR "x"', '"col" AND "x"'),
        ("-x ^y +z", '"x" OR "y" OR "z"', '"x" AND "y" AND "z"'),
        ("Café CRÈME", '"cafe" OR "creme"', '"cafe" AND "creme"'),
        ('"unbalanced', '"unbalanced"', '"unbalanced"'),
        ('x"y"z', '"x" OR "y" OR "z"', '"x" AND "y" AND "z"'),
        ('"quick bro*"', '"quick bro"*', '"quick bro"*'),
        ('"quick bro"*', '"quick bro"*', '"quick bro"*'),
        ('"quick* brown"', '"quick brown"', '"quick brown"'),
        ("foo * bar", '"foo" OR "bar"', '"foo" AND "bar"'),
        ("*foo", '"foo"', '"foo"'),
        ("foo-bar*", '"foo" OR "bar"*', '"foo" AND "bar"*'),
        ("a a A", '"a"', '"a"'),
        ("fox* fox", '"fox"* OR "fox"', '"fox"* AND "fox"'),
        ("x\x00y", '"x" OR "y"', '"x" AND "y"'),
        ("I ❤ cats 😀", '"i" OR "cats"', '"i" AND "cats"'),
        ("İstanbul straße", '"istanbul" OR "straße"', '"istanbul" AND "straße"'),
    ],
)
def test_exact_expressions(text: str, any_expression: str, all_expression: str) -> None:
    query = parse_query(text)
    assert fts5_expression(query, "any") == any_expression
    assert fts5_expression(query, "all") == all_expression


def test_phrases_and_prefixes_are_parsed_in_order() -> None:
    assert parse_query('"Quick  Brown" fox* "the end"*') == SearchQuery(
        (Phrase(("quick", "brown")), Phrase(("fox",), prefix=True), Phrase(("the", "end"), True))
    )


def test_a_double_quote_inside_a_term_is_doubled() -> None:
    # The tokenizer never yields a quote; the quoting holds even if it did.
    query = SearchQuery((Phrase(('a"b',)), Phrase(('"',), prefix=True)))
    assert fts5_expression(query, "any") == '"a""b" OR """"*'


@pytest.mark.parametrize(
    "text", ["", " ", '"', '""', "*", '"*"', "()", "-- :", "😀", "\x00", "\u0301"]
)
def test_a_query_without_words_is_refused_in_one_line(text: str) -> None:
    message = f"search query {text!r} has no words to search for"
    with pytest.raises(InvalidInputError, match=exactly(message)):
        parse_query(text)


def test_the_message_quotes_at_most_80_characters() -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_query("!" * 10_000)
    assert str(caught.value) == f"search query {'!' * 80!r} has no words to search for"


def test_a_query_must_be_text() -> None:
    with pytest.raises(InvalidInputError, match=exactly("search query must be text, got bytes")):
        parse_query(b"x")  # type: ignore[arg-type]


def test_modes() -> None:
    assert check_mode("any") == "any"
    assert check_mode("all") == "all"
    for bad in ("ANY", "or", None, 1):
        with pytest.raises(InvalidInputError, match="search mode must be 'any' or 'all'"):
            check_mode(bad)


def test_huge_queries_are_cut_to_the_limits() -> None:
    many = parse_query(" ".join(f"w{n}" for n in range(5_000)))
    assert [phrase.tokens for phrase in many.phrases] == [(f"w{n}",) for n in range(MAX_PHRASES)]
    long_phrase = parse_query('"' + " ".join(f"w{n}" for n in range(1_000)) + '"')
    assert long_phrase.phrases[0] == Phrase(tuple(f"w{n}" for n in range(MAX_PHRASE_TOKENS)))
    starred = parse_query('"' + " ".join(f"w{n}" for n in range(1_000)) + '"*')
    assert starred.phrases == long_phrase.phrases  # the star was on a token that was cut
    assert parse_query("x" * 10_000).phrases == (Phrase(("x" * 10_000,)),)


@pytest.mark.parametrize("text", HOSTILE_QUERIES)
def test_hostile_queries_make_safe_expressions_that_fts5_accepts(
    fts5: sqlite3.Connection, text: str
) -> None:
    try:
        query = parse_query(text)
    except InvalidInputError:
        assert tokenize(text) == []
        return
    for mode in ("any", "all"):
        expression = fts5_expression(query, mode)
        assert SAFE_EXPRESSION.fullmatch(expression), expression
        run_match(fts5, expression)


_TRICKY = st.sampled_from(
    [*"\"*()-+^:{},.\\'\x00 \t\nNEAROTDANDnear", "AND", "OR", "NOT", "NEAR(", "é", "\u0301"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_TRICKY | st.characters(), max_size=40).map("".join))
def test_no_text_raises_anything_but_the_empty_query_error(text: str) -> None:
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE VIRTUAL TABLE t USING fts5(body)")
        try:
            query = parse_query(text)
        except InvalidInputError as exc:
            assert str(exc).endswith("has no words to search for")  # noqa: PT017
            return
        for mode in ("any", "all"):
            expression = fts5_expression(query, mode)
            assert SAFE_EXPRESSION.fullmatch(expression)
            run_match(conn, expression)
    finally:
        conn.close()


# -- the tokenizer ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Hello, World!", ["hello", "world"]),
        ("Café CRÈME brûlée", ["cafe", "creme", "brulee"]),
        ("Cafe\u0301 e\u0301\u0301", ["cafe", "e"]),
        ("x \u0301 y", ["x", "y"]),
        ("İstanbul ǖ Ǖ Å", ["istanbul", "u", "u", "a"]),
        ("straße ẞ ﬁ ς", ["straße", "ß", "ﬁ", "σ"]),
        ("Ærø Łódź", ["ærø", "łodz"]),
        ("ΕΛΛΗΝΙΚΆ Привет", ["ελληνικά", "привет"]),
        ("東京タワー 夜景", ["東京タワー", "夜景"]),
        (
            "snake_case kebab-case dotted.name it's",
            ["snake", "case", "kebab", "case", "dotted", "name", "it", "s"],
        ),
        ("v2 2024-01-01 ½ ² ①", ["v2", "2024", "01", "01", "½", "²", "①"]),
        ("hot🌡x 😀 ❤", ["hot", "x"]),
        ("\ue000private", ["\ue000private"]),
        ("", []),
    ],
)
def test_tokenize(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


#: Blocks where the Python rule and FTS5's Unicode 6.1 tables must agree exactly.
AGREEING_BLOCKS = [
    (0x0000, 0x0370),  # ASCII, Latin-1, Latin Extended, IPA, combining marks
    (0x0380, 0x0528),  # Greek, Cyrillic (U+037F Yot is newer)
    (0x0590, 0x0600),  # Hebrew
    (0x0620, 0x0700),  # Arabic
    (0x0900, 0x0980),  # Devanagari
    (0x0E00, 0x0E80),  # Thai
    (0x1E00, 0x2000),  # Latin Extended Additional, Greek Extended
    (0x2000, 0x2066),  # General Punctuation
    (0x3000, 0x3100),  # CJK symbols, Hiragana, Katakana
    (0x4E00, 0x9FA0),  # CJK Unified Ideographs
    (0xAC00, 0xD7A4),  # Hangul
    (0xE000, 0xE100),  # private use
    (0xFF00, 0xFFF0),  # fullwidth forms
    (0x1F600, 0x1F641),  # emoticons of Unicode 6.1
]


def test_tokenize_matches_fts5_code_point_by_code_point(fts5: sqlite3.Connection) -> None:
    # "a" on both sides shows whether the character joins a token or separates.
    points = [cp for low, high in AGREEING_BLOCKS for cp in range(low, high)]
    texts = [f"a{chr(cp)}a" for cp in points if not 0xD800 <= cp < 0xE000]
    assert [tokenize(text) for text in texts] == fts5_tokens(fts5, texts)


def test_fts5_reads_our_tokens_back_unchanged(fts5: sqlite3.Connection) -> None:
    # The SQLite backend indexes " ".join(tokenize(text)); FTS5 must keep every token,
    # across all of Unicode, so both backends see the same tokens.
    texts = [f"a{chr(cp)}a" for cp in range(0x110000) if not 0xD800 <= cp < 0xE000][::29]
    joined = [" ".join(tokenize(text)) for text in texts]
    assert [tokens.split() for tokens in joined] == fts5_tokens(fts5, joined)


@settings(max_examples=100, deadline=None)
@given(
    st.text(
        st.characters(
            codec="utf-8",
            categories=("Lu", "Ll", "Nd", "Po", "Zs", "Mn"),
            max_codepoint=0x0527,  # U+0528 on (and U+037F) are newer than FTS5's tables
            exclude_characters="\u037f",
        ),
        max_size=60,
    )
)
def test_tokenize_matches_fts5_on_random_text(text: str) -> None:
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(
            "CREATE VIRTUAL TABLE t USING fts5("
            "body, content='', tokenize='unicode61 remove_diacritics 2')"
        )
        conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
        assert tokenize(text) == fts5_tokens(conn, [text])[0]
    finally:
        conn.close()


def test_term_key_cuts_like_fts5() -> None:
    assert term_key("short") == "short"
    assert term_key("a" * 40_000) == "a" * FTS5_MAX_TOKEN_BYTES
    # A cut through a character keeps its partial bytes distinct, as FTS5 does.
    cut = term_key("a" * (FTS5_MAX_TOKEN_BYTES - 1) + "é")
    assert cut.encode("utf-8", "surrogateescape") == b"a" * (FTS5_MAX_TOKEN_BYTES - 1) + b"\xc3"
    assert (
        term_key("日" * 20_000).encode("utf-8", "surrogateescape")
        == ("日".encode() * 20_000)[:FTS5_MAX_TOKEN_BYTES]
    )


def test_loose_stop_words_are_not_matched_unless_nothing_else_is_left() -> None:
    def kept(text: str) -> list[tuple[tuple[str, ...], bool]]:
        return [(p.tokens, p.prefix) for p in content_phrases(parse_query(text))]

    assert kept("What did the user's sister say?") == [
        (("user",), False),
        (("sister",), False),
        (("say",), False),
    ]
    assert kept('"the end" of the* it') == [(("the", "end"), False), (("the",), True)]
    assert kept("who is it") == [(("who",), False), (("is",), False), (("it",), False)]
    assert kept("Can we won't let Don") == [
        (("can",), False),
        (("won",), False),
        (("let",), False),
        (("don",), False),
    ]
