"""Embedders by name, as ``contextfs init --embedder`` and ``config.json`` spell them.

A name is ``KIND[:MODEL][,OPTION=VALUE...]``; commas, not ``?`` and ``&``, so
it needs no quoting in a shell::

    minilm                                      the offline default (contextfs-vcs[minilm])
    wordllama                                   offline, in every install, 60x faster
    none                                        no embedder: words only
    openai:nomic-embed-text,dimensions=768,url=http://127.0.0.1:11434/v1
    sentence-transformers:all-MiniLM-L6-v2,dimensions=384
    fastembed:BAAI/bge-small-en-v1.5,dimensions=384

Parsing checks the whole name and builds the embedder without loading any
model or calling any server, so a bad name is refused before anything is
written, and naming an embedder costs nothing until the first query.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from ..errors import InvalidInputError
from .base import Embedder
from .local_models import FastEmbedEmbedder, SentenceTransformerEmbedder
from .minilm import MiniLMEmbedder
from .minilm import available as minilm_available
from .openai import DEFAULT_KEY_ENV, OpenAIEmbedder
from .wordllama import DEFAULT_CONFIG, DEFAULT_DIMENSIONS, WordLlamaEmbedder

#: The name that turns finding by meaning off.
NO_EMBEDDER: Final = "none"

_Options = dict[str, str]


def _wordllama(model: str | None, options: _Options) -> Embedder:
    dimensions = _dimensions(options, DEFAULT_DIMENSIONS, "wordllama")
    _no_more(options, "wordllama")
    return WordLlamaEmbedder(model or DEFAULT_CONFIG, dimensions)


def _minilm(model: str | None, options: _Options) -> Embedder:
    if model is not None:
        raise InvalidInputError("embedder 'minilm' is one model: name it 'minilm' alone")
    _no_more(options, "minilm")
    return MiniLMEmbedder()


def _openai(model: str | None, options: _Options) -> Embedder:
    model = _model(model, "openai")
    dimensions = _dimensions(options, None, "openai")
    url = options.pop("url", "https://api.openai.com/v1")
    key_env = options.pop("key-env", DEFAULT_KEY_ENV)
    _no_more(options, "openai")
    return OpenAIEmbedder(model, dimensions, base_url=url, key_env=key_env)


def _sentence_transformers(model: str | None, options: _Options) -> Embedder:
    model = _model(model, "sentence-transformers")
    dimensions = _dimensions(options, None, "sentence-transformers")
    _no_more(options, "sentence-transformers")
    return SentenceTransformerEmbedder(model, dimensions)


def _fastembed(model: str | None, options: _Options) -> Embedder:
    model = _model(model, "fastembed")
    dimensions = _dimensions(options, None, "fastembed")
    _no_more(options, "fastembed")
    return FastEmbedEmbedder(model, dimensions)


_KINDS: Final[dict[str, Callable[[str | None, _Options], Embedder]]] = {
    "minilm": _minilm,
    "wordllama": _wordllama,
    "openai": _openai,
    "sentence-transformers": _sentence_transformers,
    "fastembed": _fastembed,
}
#: Every kind of name, for help texts and errors.
EMBEDDER_KINDS: Final = (*_KINDS, NO_EMBEDDER)


def default_embedder_name() -> str:
    """The embedder a new repository gets: MiniLM where its extra is installed, else WordLlama.

    Both run offline. MiniLM finds more by meaning (benchmarks/RESULTS.md);
    WordLlama comes with every install. A repository records the name it got
    (``config.json``), so installing the extra later changes nothing there.
    """
    return "minilm" if minilm_available() else "wordllama"


def embedder_named(name: str) -> Embedder | None:
    """Return the embedder ``name`` describes, unloaded; ``None`` for ``"none"``.

    Raises:
        InvalidInputError: ``name`` is not a valid embedder name.
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"embedder must be a name like 'minilm', got {name!r}")
    head, *rest = name.strip().split(",")
    kind, _, model = head.partition(":")
    kind = kind.strip().lower()
    if kind == NO_EMBEDDER and not model and not rest:
        return None
    make = _KINDS.get(kind)
    if make is None:
        raise InvalidInputError(
            f"unknown embedder {kind!r}; choose one of {', '.join(EMBEDDER_KINDS)}"
        )
    options: _Options = {}
    for option in rest:
        key, equals, value = option.partition("=")
        key = key.strip().lower()
        if not equals or not key or not value.strip() or key in options:
            raise InvalidInputError(
                f"embedder option {option!r} must be a single KEY=VALUE (in {name!r})"
            )
        options[key] = value.strip()
    return make(model.strip() or None, options)


def check_embedder_name(name: str) -> str:
    """Return ``name`` tidied if it names an embedder (``embedder_named`` accepts it).

    Raises:
        InvalidInputError: it does not.
    """
    embedder_named(name)
    return name.strip()


def _model(model: str | None, kind: str) -> str:
    if model is None:
        raise InvalidInputError(f"embedder {kind!r} needs a model: {kind}:MODEL,dimensions=N")
    return model


def _dimensions(options: _Options, default: int | None, kind: str) -> int:
    raw = options.pop("dimensions", None)
    if raw is None:
        if default is None:
            raise InvalidInputError(
                f"embedder {kind!r} needs its vectors' length: {kind}:MODEL,dimensions=N"
            )
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise InvalidInputError(f"dimensions must be a positive integer, got {raw!r}")
    return int(raw)


def _no_more(options: _Options, kind: str) -> None:
    if options:
        raise InvalidInputError(f"embedder {kind!r} takes no option {', '.join(sorted(options))!r}")


__all__ = [
    "EMBEDDER_KINDS",
    "NO_EMBEDDER",
    "check_embedder_name",
    "default_embedder_name",
    "embedder_named",
]
