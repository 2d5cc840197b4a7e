"""Regression tests for the seed defects the expansion layer fixes (DESIGN.md section 2).

1. ids truncated to 64 bits; 2. context keys that ignore most of the context;
7. recursive, unboundedly cached expansion; 8. compaction keyed on content[:100];
9. token counts estimated as words x 1.3.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from contextfs.expand import (
    CompressedContext,
    ExpanderFunctor,
    InMemoryContextStore,
    TiktokenTokenizer,
    WordEstimateTokenizer,
)
from contextfs.model.objects import MemoryAtom, MemoryMolecule
from contextfs.model.types import T_STRING

T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def atom(content: str, relevance: float = 0.5) -> MemoryAtom:
    return MemoryAtom(content, T_STRING, T0, "src", relevance)


# -- defect 1: full 64-hex ids, with prefixes resolving ------------------------------


def test_defect_1_ids_are_full_sha256_and_seed_length_prefixes_resolve() -> None:
    store = InMemoryContextStore()
    a = atom("User prefers concise answers")
    assert len(a.content_hash) == 64
    root = CompressedContext(None, [a])
    key = store.put(root)
    assert len(key) == 64
    assert int(key, 16) >= 0
    assert store.get(key[:16]) == root  # an id as the seed printed it
    assert store.get(key[:4]) == root
    assert store.get_lineage(key[:16]) == [key]
    child = CompressedContext(key[:16], [atom("more")])
    assert ExpanderFunctor(store).expand(child).expansion_path[0] == key


# -- defect 2: the key covers the whole context ----------------------------------------


def test_defect_2_contexts_differing_in_anything_get_different_keys() -> None:
    base = "ab" * 32
    a = atom("fact")
    plain = CompressedContext(base, [a], [], set(), {})
    variants = [
        CompressedContext(base, [a], [], {"cd" * 32}, {}),  # removed hashes
        CompressedContext(base, [a], [MemoryMolecule((a,))], set(), {}),  # molecules
        CompressedContext(base, [a], [], set(), {"version": 2}),  # metadata
        CompressedContext(base, [atom("fact", 0.9)], [], set(), {}),  # entry: relevance
        CompressedContext(base, [MemoryAtom("fact", T_STRING, T0, "other", 0.5)]),  # source
        CompressedContext(None, [a], [], set(), {}),  # base
    ]
    keys = {plain.context_hash, *(v.context_hash for v in variants)}
    assert len(keys) == 1 + len(variants)


def test_defect_2_store_keeps_both_contexts() -> None:
    store = InMemoryContextStore()
    first = CompressedContext(None, [atom("x")], [], set(), {"version": 1})
    second = CompressedContext(None, [atom("x")], [], set(), {"version": 2})
    assert store.put(first) != store.put(second)
    assert store.get(first.context_hash) == first
    assert store.get(second.context_hash) == second


# -- defect 7: no recursion, bounded cache -------------------------------------------


def test_defect_7_a_20000_deep_chain_expands_without_recursion() -> None:
    depth = 20_000
    assert depth > sys.getrecursionlimit()
    store = InMemoryContextStore()
    key: str | None = None
    for i in range(depth):
        key = store.put(CompressedContext(key, [atom(f"fact {i}")]))
    assert key is not None
    tip = store.get(key)
    assert tip is not None
    expander = ExpanderFunctor(store, cache_size=4)
    expanded = expander.expand(tip)
    assert len(expanded.atoms) == depth
    assert len(expanded.expansion_path) == depth
    assert expanded.expansion_path[-1] == key
    assert store.get_lineage(key) == expanded.expansion_path
    assert expander.cache_info() == (1, 4)


def test_defect_7_cache_never_grows_past_its_size() -> None:
    store = InMemoryContextStore()
    expander = ExpanderFunctor(store, cache_size=3)
    for i in range(10):
        expander.expand(CompressedContext(None, [atom(f"root {i}")]))
    assert expander.cache_info() == (3, 3)


# -- defect 8: nothing is lost to a shared prefix ------------------------------------


def test_defect_8_memories_sharing_100_characters_both_survive() -> None:
    prefix = (
        "The deployment checklist for the payments service says that before every release we " * 2
    )
    assert len(prefix) > 100
    first = atom(prefix + "must run the migration dry-run.", 0.9)
    second = atom(prefix + "must page the on-call engineer.", 0.8)
    assert first.content[:100] == second.content[:100]
    expanded = ExpanderFunctor(InMemoryContextStore()).expand(
        CompressedContext(None, [first, second])
    )
    assert expanded.atoms == [first, second]
    assert expanded.type_summary == {"String": 2}


# -- defect 9: real token counts -------------------------------------------------------


def test_defect_9_token_counts_are_cl100k_not_words_times_1_3() -> None:
    sentence = "The quick brown fox jumps over the lazy dog."
    assert TiktokenTokenizer().count(sentence) == 10
    assert WordEstimateTokenizer().count(sentence) == 11
    code = "def f(x):\n    return x ** 2\n"
    assert TiktokenTokenizer().count(code) == 11
    assert WordEstimateTokenizer().count(code) == 7
    japanese = "日本語のテキストです"
    assert TiktokenTokenizer().count(japanese) == 9
    assert WordEstimateTokenizer().count(japanese) == 1


def test_defect_9_expansion_counts_with_the_real_tokenizer() -> None:
    ctx = CompressedContext(None, [atom("日本語のテキストです")])
    expanded = ExpanderFunctor(InMemoryContextStore()).expand(ctx)
    assert expanded.total_tokens_estimate == TiktokenTokenizer().count(
        "[String] 日本語のテキストです"
    )
    assert expanded.total_tokens_estimate == 11
    assert expanded.to_prompt_context(10) == ""
    assert expanded.to_prompt_context(11) == "[String] 日本語のテキストです"
