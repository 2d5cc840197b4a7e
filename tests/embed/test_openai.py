"""The OpenAI-compatible endpoint adapter, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from contextfs.embed import Embedder, EmbedderError, OpenAIEmbedder
from contextfs.embed import openai as openai_module
from contextfs.errors import InvalidInputError

DIMENSIONS = 3


@dataclass
class Endpoint:
    """A small ``/v1/embeddings`` server: what it received, and how it should answer."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    mode: str = "ok"  # ok | reversed | error | not-json | short | wrong-size


def vector_of(text: str) -> list[float]:
    """A deterministic, unnormalised vector per text: its length, vowels, and 1."""
    return [float(len(text)), float(sum(text.count(v) for v in "aeiou")), 1.0]


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    state: Endpoint

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the method name http.server dispatches to
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append(body)
            state.headers.append(dict(self.headers))
            if self.path != "/v1/embeddings" or state.mode == "error":
                self.send_response(500)
                self.end_headers()
                return
            data = [
                {"object": "embedding", "index": i, "embedding": vector_of(text)}
                for i, text in enumerate(body["input"])
            ]
            if state.mode == "reversed":
                data.reverse()
            elif state.mode == "short":
                data = data[:-1]
            elif state.mode == "wrong-size":
                data = [{**item, "embedding": item["embedding"] + [0.0]} for item in data]
            payload = b"{" if state.mode == "not-json" else json.dumps({"data": data}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Endpoint(f"http://127.0.0.1:{server.server_address[1]}/v1")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_embeds_in_batches_in_order_as_unit_rows(
    endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(openai_module, "BATCH", 4)
    endpoint.mode = "reversed"  # the server may answer out of order: index decides
    texts = [f"text number {'a' * i}" for i in range(10)]
    embedder = OpenAIEmbedder("nomic-embed-text", DIMENSIONS, base_url=endpoint.url)
    assert isinstance(embedder, Embedder)
    vectors = embedder.embed(texts)
    assert [len(r["input"]) for r in endpoint.requests] == [4, 4, 2]
    assert all(r["model"] == "nomic-embed-text" for r in endpoint.requests)
    expected = np.array([vector_of(t) for t in texts], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(vectors, expected, rtol=1e-6)
    assert vectors.dtype == np.float32
    assert embedder.id == f"openai:nomic-embed-text-3@{endpoint.url}/embeddings"
    assert embedder.embed([]).shape == (0, DIMENSIONS)
    assert len(endpoint.requests) == 3  # nothing to embed: no request


def test_the_key_comes_from_the_environment_only(
    endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONTEXTFS_TEST_KEY", raising=False)
    embedder = OpenAIEmbedder("m", DIMENSIONS, base_url=endpoint.url, key_env="CONTEXTFS_TEST_KEY")
    embedder.embed(["no key"])
    assert "Authorization" not in endpoint.headers[-1]  # a local server that needs none
    monkeypatch.setenv("CONTEXTFS_TEST_KEY", "sk-test-123")
    embedder.embed(["with key"])
    assert endpoint.headers[-1]["Authorization"] == "Bearer sk-test-123"
    assert "sk-test" not in embedder.id
    assert "sk-test" not in repr(embedder)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("error", "refused the request: HTTP 500"),
        ("not-json", "answered with something that is not JSON"),
        ("short", "answered without one embedding per text"),
        ("wrong-size", r"returned vectors of shape \(2, 4\), expected \(2, 3\)"),
    ],
)
def test_a_bad_answer_is_one_clear_error(endpoint: Endpoint, mode: str, message: str) -> None:
    endpoint.mode = mode
    with pytest.raises(EmbedderError, match=message):
        OpenAIEmbedder("m", DIMENSIONS, base_url=endpoint.url).embed(["one", "two"])


def test_an_unreachable_server_is_one_clear_error() -> None:
    embedder = OpenAIEmbedder("m", DIMENSIONS, base_url="http://127.0.0.1:9/v1", timeout=5)
    with pytest.raises(EmbedderError, match=r"^cannot reach http://127\.0\.0\.1:9/v1/embeddings"):
        embedder.embed(["x"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": ""}, "embedding model must be a name"),
        ({"dimensions": 0}, "dimensions must be a positive integer"),
        ({"base_url": "ftp://example.org"}, "base_url must be an http"),
        ({"base_url": "https://user:secret@example.org/v1"}, "API key in an environment variable"),
    ],
)
def test_bad_construction_is_refused(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"model": "m", "dimensions": DIMENSIONS, **kwargs}
    model, dimensions = arguments.pop("model"), arguments.pop("dimensions")
    with pytest.raises(InvalidInputError, match=message):
        OpenAIEmbedder(model, dimensions, **arguments)
