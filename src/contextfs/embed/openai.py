"""Embeddings from any OpenAI-compatible ``/v1/embeddings`` endpoint: Ollama, vLLM, OpenAI.

The request is the one OpenAI documents (``{"model", "input": [texts]}``;
answers ``{"data": [{"index", "embedding"}]}``), which the local servers
implement too. The API key is read from an environment variable when the
call is made, never stored in a repository's config or in the embedder's id;
a local server that wants none gets no ``Authorization`` header.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import numpy as np

from ..errors import InvalidInputError
from .base import EmbedderError, Vectors, check_texts, unit_rows

#: Where the key is read from unless told otherwise.
DEFAULT_KEY_ENV: Final = "OPENAI_API_KEY"
#: Texts sent per request (OpenAI accepts up to 2,048).
BATCH: Final = 256


class OpenAIEmbedder:
    """An embedding model behind an OpenAI-compatible HTTP endpoint."""

    def __init__(
        self,
        model: str,
        dimensions: int,
        *,
        base_url: str = "https://api.openai.com/v1",
        key_env: str = DEFAULT_KEY_ENV,
        timeout: float = 60.0,
    ) -> None:
        """Name the model and where it is served.

        Args:
            model: the model's name on the server (``text-embedding-3-small``,
                ``nomic-embed-text``, ...).
            dimensions: the length of its vectors (checked on every answer).
            base_url: the API root; ``/embeddings`` is appended
                (Ollama: ``http://127.0.0.1:11434/v1``).
            key_env: the environment variable holding the API key, if any.
            timeout: seconds to wait for each request.

        Raises:
            InvalidInputError: an argument is malformed.
        """
        if not isinstance(model, str) or not model or model != model.strip():
            raise InvalidInputError(f"embedding model must be a name, got {model!r}")
        if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions <= 0:
            raise InvalidInputError(f"dimensions must be a positive integer, got {dimensions!r}")
        parts = urlsplit(base_url) if isinstance(base_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInputError(f"base_url must be an http(s) URL, got {base_url!r}")
        if parts.username or parts.password:
            raise InvalidInputError("put the API key in an environment variable, not the URL")
        self._model = model
        self._dimensions = dimensions
        self._url = base_url.rstrip("/") + "/embeddings"
        self._key_env = key_env
        self._timeout = timeout

    @property
    def id(self) -> str:
        """``openai:<model>-<dimensions>@<endpoint>``: the server helps make the vectors."""
        return f"openai:{self._model}-{self._dimensions}@{self._url}"

    @property
    def dimensions(self) -> int:
        """The length of every vector."""
        return self._dimensions

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts`` in batches of :data:`BATCH`, one request each.

        Raises:
            EmbedderError: the server cannot be reached, refuses, or answers
                with something other than one vector per text.
        """
        found = check_texts(texts)
        rows = [self._embed_batch(found[i : i + BATCH]) for i in range(0, len(found), BATCH)]
        if not rows:
            return np.zeros((0, self._dimensions), dtype=np.float32)
        return np.ascontiguousarray(np.concatenate(rows), dtype=np.float32)

    def _embed_batch(self, batch: list[str]) -> Vectors:
        answer = self._post({"model": self._model, "input": batch})
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list) or len(data) != len(batch):
            raise EmbedderError(f"{self._url} answered without one embedding per text")
        try:
            ordered = sorted(data, key=lambda item: int(item["index"]))
            vectors = [item["embedding"] for item in ordered]
        except (KeyError, TypeError, ValueError):
            raise EmbedderError(f"{self._url} answered with malformed embeddings") from None
        return unit_rows(vectors, len(batch), self._dimensions, self._url)

    def _post(self, body: dict[str, Any]) -> Any:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self._key_env) if self._key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(
            self._url, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise EmbedderError(f"{self._url} refused the request: HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise EmbedderError(f"cannot reach {self._url}: {reason}") from None
        except ValueError:
            raise EmbedderError(f"{self._url} answered with something that is not JSON") from None

    def __repr__(self) -> str:
        return f"OpenAIEmbedder({self._model!r}, {self._dimensions}, base_url={self._url!r})"


__all__ = ["DEFAULT_KEY_ENV", "OpenAIEmbedder"]
