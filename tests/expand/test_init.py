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
}


def test_exports() -> None:
    assert set(expand.__all__) == EXPECTED
    assert expand.__all__ == sorted(expand.__all__)
    for name in expand.__all__:
        assert getattr(expand, name).__module__.startswith("contextfs.expand.")
