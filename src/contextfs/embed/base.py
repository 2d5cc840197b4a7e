"""The embedder port: text in, one unit vector per text out, the same every time.

An :class:`Embedder` names itself with an :attr:`~Embedder.id` that changes
whenever its vectors could (model, dimensions, version), because vectors are
derived data kept per ``(embedder id, atom id)``: atoms are immutable, so a
vector never goes stale as long as the id says exactly what made it.

An embedder may also say how hybrid retrieval weighs words against its
cosines (``lexical_weight``, see :func:`lexical_weight`).

Every embedder returns rows through :func:`unit_rows`, so callers can rely on
the shape ``(len(texts), dimensions)``, C-contiguous ``float32``, every row of
length 1 or, for a text with nothing to embed, all zeros (never NaN).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import metadata
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..errors import ContextFSError, InvalidInputError

Vectors = npt.NDArray[np.float32]


class EmbedderError(ContextFSError):
    """An embedder could not embed: its model, its extra or its server is missing or failed."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit vectors; deterministic for a given :attr:`id`."""

    @property
    def id(self) -> str:
        """What made the vectors: model, dimensions, version (``wordllama:l2_supercat-256@0.4``)."""
        ...

    @property
    def dimensions(self) -> int:
        """The length of every vector."""
        ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Return one row per text, in order: ``float32``, unit length (zeros for an empty text).

        Raises:
            InvalidInputError: ``texts`` is not a sequence of strings.
            EmbedderError: the model or server failed.
        """
        ...


def check_texts(texts: object) -> list[str]:
    """Return ``texts`` as a list if it is a sequence of strings (not one string).

    Raises:
        InvalidInputError: it is not.
    """
    if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
        raise InvalidInputError(f"texts must be a sequence of strings, got {type(texts).__name__}")
    found = list(texts)
    for text in found:
        if not isinstance(text, str):
            raise InvalidInputError(f"texts must be strings, got {type(text).__name__}")
    return found


def unit_rows(raw: object, count: int, dimensions: int, source: str) -> Vectors:
    """Check a model's output and scale each row to unit length.

    Rows of zeros (an empty text, a text of unknown words) stay zeros, so they
    match nothing rather than poisoning scores with NaN.

    Raises:
        EmbedderError: the output does not have ``count`` rows of ``dimensions``
            finite numbers (``source`` names the embedder in the message).
    """
    try:
        array = np.asarray(raw, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise EmbedderError(f"{source} returned something that is not vectors: {exc}") from None
    if array.shape != (count, dimensions):
        raise EmbedderError(
            f"{source} returned vectors of shape {array.shape}, expected ({count}, {dimensions})"
        )
    if not np.isfinite(array).all():
        raise EmbedderError(f"{source} returned vectors holding NaN or infinity")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    scaled = np.divide(array, norms, out=np.zeros_like(array), where=norms > 0)
    return np.ascontiguousarray(scaled, dtype=np.float32)


@functools.cache  # reading package metadata parses a file: once is enough
def package_version(package: str) -> str:
    """The installed version of ``package``, for embedder ids; ``missing`` if absent."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "missing"


#: How much the words count against the meaning in hybrid retrieval, unless an
#: embedder says otherwise with a ``lexical_weight`` attribute (its cosines may
#: spread more or less than another's; each built-in one's is measured on LoCoMo).
DEFAULT_LEXICAL_WEIGHT = 0.5


def lexical_weight(embedder: object) -> float:
    """The weight of the lexical side in hybrid retrieval with ``embedder``, in [0, 1].

    Raises:
        EmbedderError: the embedder's ``lexical_weight`` is not a number in [0, 1].
    """
    weight = getattr(embedder, "lexical_weight", DEFAULT_LEXICAL_WEIGHT)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1:
        raise EmbedderError(f"an embedder's lexical_weight must be in [0, 1], got {weight!r}")
    return float(weight)


__all__ = [
    "DEFAULT_LEXICAL_WEIGHT",
    "Embedder",
    "EmbedderError",
    "Vectors",
    "check_texts",
    "lexical_weight",
    "package_version",
    "unit_rows",
]
