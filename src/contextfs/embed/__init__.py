"""Embedders: text to unit vectors, for finding memories by meaning.

:func:`default_embedder` is the offline default: all-MiniLM-L6-v2 where the
``minilm`` extra is installed (:class:`MiniLMEmbedder`), else WordLlama's
packaged model (:class:`WordLlamaEmbedder`); nothing is downloaded, ever.
Models a user already runs plug in through adapters: :class:`OpenAIEmbedder`
for any OpenAI-compatible ``/v1/embeddings`` endpoint (Ollama, vLLM, OpenAI),
:class:`SentenceTransformerEmbedder` and :class:`FastEmbedEmbedder` for local
models (extras ``sentence-transformers`` and ``fastembed``). Anything with
``id``, ``dimensions`` and ``embed`` is an :class:`Embedder`.
"""

from .base import Embedder as Embedder
from .base import EmbedderError as EmbedderError
from .base import Vectors as Vectors
from .local_models import FastEmbedEmbedder as FastEmbedEmbedder
from .local_models import SentenceTransformerEmbedder as SentenceTransformerEmbedder
from .minilm import MiniLMEmbedder as MiniLMEmbedder
from .names import default_embedder_name, embedder_named
from .openai import OpenAIEmbedder as OpenAIEmbedder
from .wordllama import WordLlamaEmbedder as WordLlamaEmbedder


def default_embedder() -> Embedder:
    """The embedder a repository uses unless told otherwise (:func:`default_embedder_name`)."""
    embedder = embedder_named(default_embedder_name())
    assert embedder is not None
    return embedder


__all__ = [
    "Embedder",
    "EmbedderError",
    "FastEmbedEmbedder",
    "MiniLMEmbedder",
    "OpenAIEmbedder",
    "SentenceTransformerEmbedder",
    "Vectors",
    "WordLlamaEmbedder",
    "default_embedder",
]
