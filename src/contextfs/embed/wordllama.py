"""The offline default embedder: WordLlama, whose weights ship inside its wheel.

WordLlama (MIT) embeds a text as the pooled, learned embeddings of its tokens:
no network, no GPU, tens of thousands of texts a second on one core. Its
``l2_supercat`` model (256 dimensions, 16 MB) and tokenizer are files in the
installed package; :meth:`WordLlama.load` is pointed at the package's own
folder with downloads disabled, so nothing is fetched at run time, ever.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInputError
from .base import EmbedderError, Vectors, check_texts, package_version, unit_rows

if TYPE_CHECKING:
    from wordllama.inference import WordLlamaInference

#: The model a new repository embeds with unless told otherwise.
DEFAULT_CONFIG = "l2_supercat"
DEFAULT_DIMENSIONS = 256
#: Texts embedded per call into the model.
BATCH = 256


class WordLlamaEmbedder:
    """WordLlama's packaged model, loaded once on first use, offline only."""

    #: Hybrid retrieval's weight of words against this model's cosines (best on LoCoMo).
    lexical_weight = 0.5

    def __init__(self, config: str = DEFAULT_CONFIG, dimensions: int = DEFAULT_DIMENSIONS) -> None:
        if not isinstance(config, str) or not config:
            raise InvalidInputError(f"WordLlama config must be a name, got {config!r}")
        if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions <= 0:
            raise InvalidInputError(f"dimensions must be a positive integer, got {dimensions!r}")
        self._config = config
        self._dimensions = dimensions
        self._model: WordLlamaInference | None = None
        self._lock = threading.Lock()

    @property
    def id(self) -> str:
        """``wordllama:<config>-<dimensions>@<package version>``."""
        return f"wordllama:{self._config}-{self._dimensions}@{package_version('wordllama')}"

    @property
    def dimensions(self) -> int:
        """The length of every vector."""
        return self._dimensions

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Return one unit row per text (zeros for a text with no known tokens)."""
        found = check_texts(texts)
        model = self._load()
        if not found:
            return np.zeros((0, self._dimensions), dtype=np.float32)
        # norm=False: the model divides by zero on an empty text; unit_rows does not.
        raw = model.embed(found, norm=False, return_np=True, batch_size=BATCH)
        return unit_rows(raw, len(found), self._dimensions, self.id)

    def _load(self) -> WordLlamaInference:
        with self._lock:
            if self._model is None:
                self._model = _load_packaged(self._config, self._dimensions)
            return self._model

    def __repr__(self) -> str:
        return f"WordLlamaEmbedder({self._config!r}, {self._dimensions})"


def _import_quietly() -> Any:
    """Import wordllama without letting it configure the application's logging.

    Its modules call ``logging.basicConfig(level=INFO)`` on import, which would
    make every library's INFO messages appear on stderr; the root logger's
    handlers and level are put back as they were.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        import wordllama
        import wordllama.inference
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
    return wordllama


def _load_packaged(config: str, dimensions: int) -> WordLlamaInference:
    """Load the model from the files inside the ``wordllama`` package, never from the network.

    Raises:
        EmbedderError: the package is missing, or ships no such model.
    """
    try:
        wordllama = _import_quietly()
    except ImportError:
        raise EmbedderError(
            "the default embedder needs the wordllama package: pip install wordllama"
        ) from None
    package = Path(wordllama.__file__).parent
    try:
        # The wheel keeps weights under weights/ and the tokenizer under tokenizers/;
        # as cache_dir, the package folder is where the loader looks for both.
        return wordllama.WordLlama.load(
            config=config, dim=dimensions, cache_dir=package, disable_download=True
        )
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise EmbedderError(
            f"WordLlama has no packaged model {config!r} with {dimensions} dimensions: {exc}"
        ) from None


__all__ = ["DEFAULT_CONFIG", "DEFAULT_DIMENSIONS", "WordLlamaEmbedder"]
