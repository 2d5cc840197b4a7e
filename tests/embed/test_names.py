"""Embedder names: every kind parses to its embedder, unloaded; every mistake is one clear error."""

from __future__ import annotations

import pytest

from contextfs.embed import (
    FastEmbedEmbedder,
    MiniLMEmbedder,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    WordLlamaEmbedder,
)
from contextfs.embed.names import check_embedder_name, default_embedder_name, embedder_named
from contextfs.errors import InvalidInputError


def test_the_default_is_minilm_where_its_extra_is_installed() -> None:
    assert default_embedder_name() == "minilm"  # the test extras install it
    embedder = embedder_named("minilm")
    assert isinstance(embedder, MiniLMEmbedder)
    assert embedder.id == "minilm:all-MiniLM-L6-v2-int8-384@1.0.0"


def test_wordllama_is_named_with_its_packaged_model() -> None:
    embedder = embedder_named("wordllama")
    assert isinstance(embedder, WordLlamaEmbedder)
    assert embedder.id.startswith("wordllama:l2_supercat-256@")


def test_none_means_no_embedder() -> None:
    assert embedder_named("none") is None
    assert embedder_named(" NONE ") is None


def test_an_endpoint_name_carries_model_dimensions_and_url() -> None:
    embedder = embedder_named(
        "openai:nomic-embed-text,dimensions=768,url=http://127.0.0.1:11434/v1"
    )
    assert isinstance(embedder, OpenAIEmbedder)
    assert embedder.dimensions == 768
    assert embedder.id == "openai:nomic-embed-text-768@http://127.0.0.1:11434/v1/embeddings"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("sentence-transformers:all-MiniLM-L6-v2,dimensions=384", SentenceTransformerEmbedder),
        ("fastembed:BAAI/bge-small-en-v1.5, dimensions=384", FastEmbedEmbedder),
    ],
)
def test_local_model_names(name: str, kind: type) -> None:
    embedder = embedder_named(name)  # nothing is loaded: the extras need not be installed
    assert isinstance(embedder, kind)
    assert embedder.dimensions == 384


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "embedder must be a name like 'minilm', got ''"),
        ("minilm:large", "embedder 'minilm' is one model: name it 'minilm' alone"),
        ("bogus", "unknown embedder 'bogus'; choose one of minilm, wordllama, openai,"),
        ("openai", "embedder 'openai' needs a model: openai:MODEL,dimensions=N"),
        ("openai:m", "embedder 'openai' needs its vectors' length: openai:MODEL,dimensions=N"),
        ("openai:m,dimensions=0", "dimensions must be a positive integer, got '0'"),
        ("openai:m,dimensions=8,url=file:///etc", "base_url must be an http(s) URL"),
        ("wordllama,colour=blue", "embedder 'wordllama' takes no option 'colour'"),
        ("fastembed:m,dimensions", "embedder option 'dimensions' must be a single KEY=VALUE"),
        ("none:x", "unknown embedder 'none'"),
    ],
)
def test_a_bad_name_is_one_clear_error(name: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        check_embedder_name(name)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
