"""The public surface of contextfs.expand: exactly these names, all importable."""

from __future__ import annotations

import contextfs.expand as expand

EXPECTED = {
    "CompressedContext",
    "ContextQuery",
    "ContextStore",
    "ExpandedContext",
    "ExpanderFunctor",
    "InMemoryContextStore",
    "IncrementalExpander",
    "LatticeCycleError",
    "ObjectContextStore",
    "RelevanceLattice",
    "TiktokenTokenizer",
    "Tokenizer",
    "WordEstimateTokenizer",
    "compact_atoms",
    "compaction_key",
    "decode_context",
    "default_tokenizer",
    "rank_key",
    "render_line",
    "Selection",
    "check_format",
    "fit",
    "render",
    "Receipt",
    "ReceiptMismatch",
    "ReceiptVerification",
    "build_receipt",
    "prompt_sha256",
    "verify",
    "verify_receipt",
    "ExpansionChunk",
    "StreamingExpander",
    "chunk_atoms",
    "iter_chunks",
}

MODEL_NAMES = {"CompressedContext", "decode_context"}


def test_exports() -> None:
    assert set(expand.__all__) == EXPECTED
    assert len(expand.__all__) == len(set(expand.__all__))
    for name in expand.__all__:
        # The seed's commit payload is a model object, re-exported with the seed's vocabulary.
        home = "contextfs.model.context" if name in MODEL_NAMES else "contextfs.expand."
        assert getattr(expand, name).__module__.startswith(home)
