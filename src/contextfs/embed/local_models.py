"""Adapters for embedding models a user already has on disk: sentence-transformers, fastembed.

Each library is an optional extra, imported only when its embedder first
embeds. Both are asked for local files only, so a model that is not on the
machine is a clear error, never a download.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from .base import EmbedderError, Vectors, check_texts, package_version, unit_rows


class _LocalModel:
    """A model loaded once, on first use, by ``load``; its vectors checked by ``unit_rows``."""

    package: str = ""
    extra: str = ""

    def __init__(self, model: str, dimensions: int) -> None:
        if not isinstance(model, str) or not model:
            raise InvalidInputError(f"model must be a name or a folder, got {model!r}")
        if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions <= 0:
            raise InvalidInputError(f"dimensions must be a positive integer, got {dimensions!r}")
        self._model_name = model
        self._dimensions = dimensions
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def id(self) -> str:
        """``<library>:<model>-<dimensions>@<library version>``."""
        return (
            f"{self.package}:{self._model_name}-{self._dimensions}@{package_version(self.package)}"
        )

    @property
    def dimensions(self) -> int:
        """The length of every vector."""
        return self._dimensions

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Return one unit row per text."""
        found = check_texts(texts)
        if not found:
            return np.zeros((0, self._dimensions), dtype=np.float32)
        with self._lock:
            if self._model is None:
                self._model = self._load()
        try:
            raw = self._encode(self._model, found)
        except Exception as exc:  # the library's own failure, named in one line
            raise EmbedderError(f"{self.id} failed to embed: {exc}") from None
        return unit_rows(raw, len(found), self._dimensions, self.id)

    def _load(self) -> Any:
        load = self._loader()
        try:
            return load(self._model_name)
        except Exception as exc:
            raise EmbedderError(
                f"{self.package} cannot load model {self._model_name!r} from local files"
                f" (nothing is downloaded): {exc}"
            ) from None

    def _loader(self) -> Callable[[str], Any]:
        raise NotImplementedError

    def _encode(self, model: Any, texts: list[str]) -> Any:
        raise NotImplementedError

    def _missing(self) -> EmbedderError:
        return EmbedderError(
            f"this embedder needs the {self.package} package:"
            f" pip install 'contextfs-vcs[{self.extra}]'"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._model_name!r}, {self._dimensions})"


class SentenceTransformerEmbedder(_LocalModel):
    """A sentence-transformers model from a local folder or the local model cache."""

    package = "sentence-transformers"
    extra = "sentence-transformers"

    def _loader(self) -> Callable[[str], Any]:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise self._missing() from None
        return lambda name: SentenceTransformer(name, local_files_only=True)

    def _encode(self, model: Any, texts: list[str]) -> Any:
        return model.encode(texts, convert_to_numpy=True, normalize_embeddings=True)


class FastEmbedEmbedder(_LocalModel):
    """A fastembed (ONNX) model from its local cache."""

    package = "fastembed"
    extra = "fastembed"

    def _loader(self) -> Callable[[str], Any]:
        try:
            from fastembed import TextEmbedding
        except ImportError:
            raise self._missing() from None
        return lambda name: TextEmbedding(model_name=name, local_files_only=True)

    def _encode(self, model: Any, texts: list[str]) -> Any:
        return list(model.embed(texts))


__all__ = ["FastEmbedEmbedder", "SentenceTransformerEmbedder"]
