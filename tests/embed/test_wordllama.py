"""WordLlama's packaged model: unit vectors, no network, in every install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from contextfs.embed import Embedder, WordLlamaEmbedder
from contextfs.embed.base import EmbedderError
from contextfs.errors import InvalidInputError

MEMORIES = [
    "User prefers concise answers",
    "The user lives in Lisbon",
    "Deploys happen on Fridays",
    "Quarterly revenue grew by four percent",
]


@pytest.fixture(scope="module")
def embedder() -> WordLlamaEmbedder:
    return WordLlamaEmbedder()


def test_wordllama_is_an_embedder(embedder: WordLlamaEmbedder) -> None:
    assert isinstance(embedder, Embedder)
    assert embedder.id == WordLlamaEmbedder().id
    assert embedder.id.startswith("wordllama:l2_supercat-256@0.")
    assert embedder.dimensions == 256


def test_vectors_are_float32_unit_rows_in_order(embedder: WordLlamaEmbedder) -> None:
    vectors = embedder.embed(MEMORIES)
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(MEMORIES), 256)
    assert vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    # Row i is text i, whatever else is in the batch.
    alone = embedder.embed([MEMORIES[2]])
    np.testing.assert_array_equal(alone[0], vectors[2])


def test_the_same_texts_give_the_same_bytes(embedder: WordLlamaEmbedder) -> None:
    again = WordLlamaEmbedder().embed(MEMORIES)
    assert again.tobytes() == embedder.embed(MEMORIES).tobytes()


def test_empty_input_and_empty_text(embedder: WordLlamaEmbedder) -> None:
    assert embedder.embed([]).shape == (0, 256)
    rows = embedder.embed(["", "tea"])
    assert not np.isnan(rows).any()  # WordLlama's own normalising divides by zero here
    assert not rows[0].any()
    assert np.linalg.norm(rows[1]) == pytest.approx(1.0, rel=1e-6)


def test_nearer_meanings_score_higher(embedder: WordLlamaEmbedder) -> None:
    def similarity(a: str, b: str) -> float:
        left, right = embedder.embed([a, b])
        return float(left @ right)

    assert similarity("brief replies", "short answers") > similarity(
        "brief replies", "The user lives in Lisbon"
    )
    assert similarity("the cat sat on the mat", "a kitten rested on the rug") > similarity(
        "the cat sat on the mat", "quarterly revenue grew"
    )


@pytest.mark.parametrize("bad", ["one string", [1, 2], [b"bytes"], None])
def test_bad_input_is_refused_in_one_line(embedder: WordLlamaEmbedder, bad: object) -> None:
    with pytest.raises(InvalidInputError, match=r"^texts must be"):
        embedder.embed(bad)  # type: ignore[arg-type]


def test_bad_construction_and_an_absent_model() -> None:
    with pytest.raises(InvalidInputError, match="dimensions must be a positive integer"):
        WordLlamaEmbedder(dimensions=0)
    with pytest.raises(InvalidInputError, match="config must be a name"):
        WordLlamaEmbedder(config="")
    missing = WordLlamaEmbedder(dimensions=1234)  # no such file in the wheel: never fetched
    with pytest.raises(EmbedderError, match="no packaged model 'l2_supercat' with 1234 dimensions"):
        missing.embed(["x"])


def test_embedding_and_counting_never_touch_the_network(tmp_path: Path) -> None:
    """With an empty home, every cache empty, proxies at a closed port and sockets refused.

    Counting tokens and embedding (the default embedder, MiniLM, and
    WordLlama) all work, and nothing is written under the empty home (no model
    cache filled from anywhere).
    """
    script = """
import socket

def refuse(*args, **kwargs):
    raise OSError("network use is refused in this test")

socket.socket.connect = refuse
socket.create_connection = refuse
from contextfs.embed import WordLlamaEmbedder, default_embedder
from contextfs.expand.tokens import default_tokenizer
import logging
texts = ["User prefers concise answers", "brief replies"]
vectors = default_embedder().embed(texts)
small = WordLlamaEmbedder().embed(texts)
# Loading the models left the application's logging as it was.
assert logging.getLogger().handlers == [] and logging.getLogger().level == logging.WARNING
print(default_tokenizer().count("hello world"), vectors.shape, small.shape)
"""
    home = tmp_path / "home"
    home.mkdir()
    closed = "http://127.0.0.1:9"
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "HF_HOME": str(home / "hf"),
        "TIKTOKEN_CACHE_DIR": str(tmp_path / "tiktoken"),
        "DATA_GYM_CACHE_DIR": str(tmp_path / "tiktoken"),
        "HTTP_PROXY": closed,
        "HTTPS_PROXY": closed,
        "http_proxy": closed,
        "https_proxy": closed,
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout) == (0, "2 (2, 384) (2, 256)\n"), result.stderr
    assert list(home.iterdir()) == []
