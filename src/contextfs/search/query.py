"""Untrusted search text -> a safe query, and the tokenizer both backends share.

Invariants this module owns:

* **One tokenizer.** :func:`tokenize` follows SQLite FTS5's
  ``unicode61 remove_diacritics 2`` rule: letters, digits and private-use
  characters are token characters, everything else separates; each character
  is case-folded on its own and stripped of its diacritics; the combining
  marks that ``remove_diacritics`` strips are dropped, so ``"Cafe\u0301"`` is
  ``cafe``. Both backends index its output (the SQLite backend hands FTS5 the
  tokens joined by spaces, which FTS5 re-tokenizes unchanged) and both search
  for its terms, so they agree on every text, whatever Unicode tables the
  linked SQLite was built with.
* **The user never writes FTS5 syntax.** :func:`parse_query` keeps only terms,
  ``"quoted phrases"`` and a trailing ``*`` (prefix); everything else,
  including FTS5's operators (``AND OR NOT NEAR``, parentheses, ``col:``,
  ``^``, ``-``, ``+``), is a plain word or a separator. :func:`fts5_expression`
  quotes every term as an FTS5 string, so no user text can be parsed as FTS5
  syntax or raise an FTS5 syntax error, and the expression reaches SQL only as a
  bound parameter.

Why not let FTS5 tokenize raw text: its tables are Unicode 6.1, and it treats
every code point unassigned there as a token character, so newer emoji glue to
words (``"hot🌡"`` would be one token) and newer scripts are not case-folded.
Python's tables are current. On the characters FTS5's tables know, the rule
here gives FTS5's own tokens, except where later Unicode versions changed a
character's category or case mapping; ``tests/search/test_query.py`` checks
Latin, Greek, Cyrillic, Hebrew, Arabic, Devanagari, Thai, CJK, Hangul,
fullwidth forms and punctuation code point by code point against the linked SQLite.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Literal

from contextfs.errors import InvalidInputError

from .stopwords import ENGLISH

#: How terms combine: "any" term may match (OR), or "all" must (AND).
Mode = Literal["any", "all"]

#: A query keeps at most this many distinct phrases; the rest are ignored so a
#: hostile 10,000-word query costs what a 64-word one does.
MAX_PHRASES: Final = 64
#: A phrase keeps at most this many tokens (a longer one matches a prefix of it).
MAX_PHRASE_TOKENS: Final = 64

#: FTS5 truncates every token (indexed or queried) to this many UTF-8 bytes.
FTS5_MAX_TOKEN_BYTES: Final = 32768

# The combining marks that ``remove_diacritics 2`` strips; FTS5 treats them as
# token characters that fold to nothing (measured against SQLite 3.40's FTS5).
_DIACRITIC_MARKS: Final = frozenset(
    (*range(0x300, 0x305), *range(0x306, 0x30D), 0x30F, 0x311, 0x31B, *range(0x323, 0x329))
).union((0x32D, 0x32E, 0x330, 0x331))
# Characters whose diacritics FTS5's table leaves in place although the rule
# above would strip them.
_KEEP_DIACRITICS: Final = frozenset({0x1E0, 0x1E1})
# Code points FTS5 separates although Python calls them token characters: two
# noncharacters, and marks that later Unicode versions recategorised as letters.
# Keeping them separators means FTS5 re-tokenizes every token we emit unchanged.
_FTS5_SEPARATORS: Final = frozenset(
    (*range(0x19B0, 0x19C1), 0x19C8, 0x19C9, 0x1CF2, 0x1CF3, 0xFFFE, 0xFFFF)
)
_TOKEN_CATEGORIES: Final = frozenset({"Co", "Cn"})
_SEPARATOR: Final = " "


def _fold_char(cp: int) -> str | None:
    """Return what FTS5 makes of one code point: its folded form, "" or None (a separator)."""
    if cp in _DIACRITIC_MARKS:
        return ""
    char = chr(cp)
    category = unicodedata.category(char)
    if category[0] not in "LN" and category not in _TOKEN_CATEGORIES:
        return None
    if cp in _FTS5_SEPARATORS:
        return None
    # FTS5 folds one code point to one code point: simple case folding.
    folded = char.casefold()
    if len(folded) != 1:
        folded = char.lower()
        if len(folded) != 1:
            folded = char
    if cp not in _KEEP_DIACRITICS:
        decomposed = unicodedata.normalize("NFD", folded)
        base, marks = decomposed[0], decomposed[1:]
        if marks and base < "\x80" and all(ord(mark) in _DIACRITIC_MARKS for mark in marks):
            folded = base.lower()
    return folded


class _FoldTable(dict[int, str]):
    """A ``str.translate`` table computed on demand: separators become spaces.

    Only the Basic Multilingual Plane is remembered, which bounds the table at
    65,536 entries however exotic the indexed text is.
    """

    def __missing__(self, cp: int) -> str:
        folded = _fold_char(cp)
        result = _SEPARATOR if folded is None else folded
        if cp < 0x10000:
            self[cp] = result
        return result


_FOLD_TABLE: Final = _FoldTable()


def tokenize(text: str) -> list[str]:
    """Split ``text`` into case- and diacritic-folded terms, as FTS5's tokenizer does.

    Tokens are not truncated here; the memory index applies FTS5's 32 KiB limit
    (:func:`term_key`) so that queries can pass whole tokens to SQLite.
    """
    return [token for token in text.translate(_FOLD_TABLE).split(_SEPARATOR) if token]


def term_key(token: str) -> str:
    """Return ``token`` as FTS5 stores it: cut to 32 KiB of UTF-8, even mid-character.

    A cut through a character leaves partial bytes; ``surrogateescape`` keeps
    them, so two tokens that differ only there stay different, as in FTS5.
    """
    if len(token) * 4 <= FTS5_MAX_TOKEN_BYTES:
        return token
    raw = token.encode("utf-8", "surrogateescape")
    if len(raw) <= FTS5_MAX_TOKEN_BYTES:
        return token
    return raw[:FTS5_MAX_TOKEN_BYTES].decode("utf-8", "surrogateescape")


@dataclass(frozen=True, slots=True)
class Phrase:
    """Consecutive tokens that must appear in order; ``prefix`` lets the last one be a prefix."""

    tokens: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A parsed query: distinct phrases in the order the user typed them."""

    phrases: tuple[Phrase, ...]


def _spans(text: str) -> Iterator[tuple[str, bool, bool]]:
    """Yield ``(chunk, quoted, starred)``: quoted chunks are phrases, the rest loose words.

    Quotes pair up left to right; an unpaired last quote is just a separator.
    ``starred`` says a ``*`` follows the closing quote.
    """
    pos = 0
    while pos < len(text):
        start = text.find('"', pos)
        end = text.find('"', start + 1) if start >= 0 else -1
        if end < 0:
            yield text[pos:].replace('"', " "), False, False
            return
        yield text[pos:start], False, False
        starred = text.startswith("*", end + 1)
        yield text[start + 1 : end], True, starred
        pos = end + 1


def _loose_phrases(chunk: str) -> Iterator[Phrase]:
    """Single-token phrases from unquoted text; a token directly followed by ``*`` is a prefix."""
    pieces = chunk.split("*")
    for index, piece in enumerate(pieces):
        tokens = tokenize(piece)
        starred = index < len(pieces) - 1
        # A star is a prefix marker only right after a token character.
        ends_in_token = bool(piece) and _fold_char(ord(piece[-1])) is not None
        for position, token in enumerate(tokens):
            last = position == len(tokens) - 1
            yield Phrase((token,), prefix=starred and last and ends_in_token)


def _quoted_phrase(chunk: str, starred: bool) -> Phrase | None:
    """The phrase of a quoted chunk; a star after its last token or after the quote is a prefix."""
    body = chunk.rstrip()
    if body.endswith("*"):
        stripped = body.rstrip("*")
        starred = starred or (bool(stripped) and _fold_char(ord(stripped[-1])) is not None)
        body = stripped
    tokens = tokenize(body.replace("*", " "))
    if not tokens:
        return None
    # A cut phrase loses the token the star was on, so it loses the star too.
    return Phrase(tuple(tokens[:MAX_PHRASE_TOKENS]), starred and len(tokens) <= MAX_PHRASE_TOKENS)


def parse_query(text: str) -> SearchQuery:
    """Parse untrusted search text into terms, phrases and prefixes.

    Args:
        text: what the user typed. Any string is accepted; nothing in it is
            FTS5 syntax except ``"quoted phrases"`` and a ``*`` right after a
            term (a prefix query).

    Returns:
        The distinct phrases, in order, at most :data:`MAX_PHRASES` of them.

    Raises:
        InvalidInputError: ``text`` holds no searchable term.
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"search query must be text, got {type(text).__name__}")
    phrases: dict[Phrase, None] = {}
    for chunk, quoted, starred in _spans(text):
        if quoted:
            phrase = _quoted_phrase(chunk, starred)
            found = [] if phrase is None else [phrase]
        else:
            found = list(_loose_phrases(chunk))
        for phrase in found:
            phrases.setdefault(phrase)
            if len(phrases) == MAX_PHRASES:
                return SearchQuery(tuple(phrases))
    if not phrases:
        raise InvalidInputError(f"search query {text[:80]!r} has no words to search for")
    return SearchQuery(tuple(phrases))


def _fts5_string(phrase: Phrase) -> str:
    """Quote a phrase as an FTS5 string (``"`` doubled), with ``*`` for a prefix."""
    body = " ".join(phrase.tokens).replace('"', '""')
    return f'"{body}"*' if phrase.prefix else f'"{body}"'


def fts5_expression(query: SearchQuery, mode: Mode) -> str:
    """Return the FTS5 MATCH expression for ``query``: quoted strings joined by OR or AND."""
    joiner = " OR " if mode == "any" else " AND "
    return joiner.join(_fts5_string(phrase) for phrase in query.phrases)


def check_mode(mode: object) -> Mode:
    """Return ``mode`` if it is "any" or "all", else raise :class:`InvalidInputError`."""
    if mode == "any":
        return "any"
    if mode == "all":
        return "all"
    raise InvalidInputError(f"search mode must be 'any' or 'all', got {mode!r}")


def content_phrases(query: SearchQuery) -> tuple[Phrase, ...]:
    """``query``'s phrases without loose stop words, or all of them if nothing else is left.

    A stop word (:data:`contextfs.search.stopwords.ENGLISH`) typed alone is
    dropped; in quotes, or as a prefix, it is kept as typed.
    """
    kept = tuple(
        phrase
        for phrase in query.phrases
        if len(phrase.tokens) > 1 or phrase.prefix or phrase.tokens[0] not in ENGLISH
    )
    return kept or query.phrases
