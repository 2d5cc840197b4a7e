"""Tests for contextfs.expand.expander: seed semantics, lossless compaction, caching."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contextfs.errors import (
    ConflictError,
    ContextFSError,
    CorruptObjectError,
    InvalidInputError,
    UnknownRevisionError,
)
from contextfs.expand.contextstore import InMemoryContextStore
from contextfs.expand.expander import (
    ExpanderFunctor,
    IncrementalExpander,
    compact_atoms,
    compaction_key,
)
from contextfs.expand.tokens import TiktokenTokenizer, WordEstimateTokenizer
from contextfs.model.context import CompressedContext
from contextfs.model.objects import MemoryAtom, MemoryMolecule
from contextfs.model.types import T_INT, T_STRING, TypeSignature

T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def atom(
    content: str, relevance: float = 0.5, *, type_sig: TypeSignature = T_STRING, at: datetime = T0
) -> MemoryAtom:
    return MemoryAtom(content, type_sig, at, "src", relevance)


class CountingStore:
    """A ContextStore wrapper that counts reads, to observe the cache."""

    def __init__(self) -> None:
        self.inner = InMemoryContextStore()
        self.gets = 0

    def get(self, hash_key: str) -> CompressedContext | None:
        self.gets += 1
        return self.inner.get(hash_key)

    def put(self, context: CompressedContext) -> str:
        return self.inner.put(context)

    def get_lineage(self, hash_key: str) -> list[str]:
        return self.inner.get_lineage(hash_key)


def chain(store: CountingStore | InMemoryContextStore, length: int) -> list[CompressedContext]:
    contexts = [CompressedContext(None, [atom("fact 0")])]
    for i in range(1, length):
        contexts.append(CompressedContext(store.put(contexts[-1]), [atom(f"fact {i}")]))
    store.put(contexts[-1])
    return contexts


def test_seed_semantics_remove_add_and_path() -> None:
    store = InMemoryContextStore()
    a1, a2, a3 = atom("one", 0.9), atom("two", 0.95), atom("three", 0.7, type_sig=T_INT)
    root_key = store.put(CompressedContext(None, [a1, a2], [], set(), {"version": 1}))
    delta = CompressedContext(root_key, [a3], [], {a1.content_hash}, {"version": 2})
    expanded = ExpanderFunctor(store).expand(delta)
    assert expanded.atoms == [a2, a3]
    assert expanded.molecules == []
    assert expanded.expansion_path == [root_key, delta.context_hash]
    assert expanded.type_summary == {"Int": 1, "String": 1}
    assert expanded.to_prompt_context() == "[String] two\n[Int] three"
    assert expanded.total_tokens_estimate == TiktokenTokenizer().count("[String] two\n[Int] three")
    assert expanded.total_tokens_estimate == 7


def test_expanding_an_unstored_root() -> None:
    ctx = CompressedContext(None, [atom("x"), atom("y", 0.9)])
    expanded = ExpanderFunctor(InMemoryContextStore()).expand(ctx)
    assert [a.content for a in expanded.atoms] == ["y", "x"]
    assert expanded.expansion_path == [ctx.context_hash]


def test_re_added_hash_replaces_the_old_entry() -> None:
    store = InMemoryContextStore()
    root_key = store.put(CompressedContext(None, [atom("x", 0.2), atom("y", 0.5)]))
    bumped = atom("x", 0.9, at=T0 + timedelta(days=1))
    expanded = ExpanderFunctor(store).expand(CompressedContext(root_key, [bumped]))
    assert expanded.atoms == [bumped, atom("y", 0.5)]


def test_remove_and_re_add_in_one_delta_keeps_the_new_entry() -> None:
    store = InMemoryContextStore()
    root_key = store.put(CompressedContext(None, [atom("x", 0.2)]))
    again = atom("x", 0.4)
    delta = CompressedContext(root_key, [again], [], {again.content_hash})
    assert ExpanderFunctor(store).expand(delta).atoms == [again]


def test_molecules_are_added_and_removed_by_hash() -> None:
    store = InMemoryContextStore()
    first = MemoryMolecule((atom("a"), atom("b")), {"r": ((0, 1),)})
    second = MemoryMolecule((atom("c"),))
    root_key = store.put(CompressedContext(None, [], [first, second]))
    expander = ExpanderFunctor(store)
    assert expander.expand(CompressedContext(root_key)).molecules == [first, second]
    delta = CompressedContext(root_key, [], [], {first.molecule_hash})
    assert expander.expand(delta).molecules == [second]


def test_base_given_as_a_prefix() -> None:
    store = InMemoryContextStore()
    root_key = store.put(CompressedContext(None, [atom("x")]))
    child = CompressedContext(root_key[:16], [atom("y")])
    expanded = ExpanderFunctor(store).expand(child)
    assert expanded.expansion_path == [root_key, child.context_hash]
    assert len(expanded.atoms) == 2


def test_unknown_base_raises() -> None:
    with pytest.raises(UnknownRevisionError) as info:
        ExpanderFunctor(InMemoryContextStore()).expand(CompressedContext("ab" * 32))
    assert str(info.value) == f"base context {'ab' * 32!r} is not in the store"


def test_looping_bases_are_refused() -> None:
    class Looping:
        def get(self, hash_key: str) -> CompressedContext | None:
            return CompressedContext("bb" * 32 if hash_key == "aa" * 32 else "aa" * 32)

        def put(self, context: CompressedContext) -> str:
            raise NotImplementedError

        def get_lineage(self, hash_key: str) -> list[str]:
            raise NotImplementedError

    with pytest.raises(CorruptObjectError) as info:
        ExpanderFunctor(Looping()).expand(CompressedContext("aa" * 32, [atom("x")]))
    assert str(info.value) == f"context {'aa' * 6} is its own ancestor"


# -- compaction ---------------------------------------------------------------


def test_compaction_key_normalises_case_space_and_unicode() -> None:
    composed = atom("Caf\u00e9  au\tLAIT ")
    decomposed = atom(" cafe\u0301 au lait")
    assert compaction_key(composed) == compaction_key(decomposed) == (T_STRING, "café au lait")


def test_compaction_keeps_the_most_relevant_then_newest_then_smallest_hash() -> None:
    low = atom("Same fact", 0.3)
    high = atom("same  FACT", 0.8)
    assert compact_atoms([low, high]) == [high]
    older = atom("same fact.", 0.5, at=T0 - timedelta(hours=1))
    newer = atom("SAME FACT.", 0.5)
    assert compact_atoms([older, newer]) == [newer]
    tie = [atom("Tie", 0.5), atom("tie", 0.5)]
    assert compact_atoms(tie) == [min(tie, key=lambda a: a.content_hash)]


def test_compaction_never_merges_different_types_or_contents() -> None:
    atoms = [atom("42", type_sig=T_STRING), atom("42", type_sig=T_INT), atom("43")]
    assert len(compact_atoms(atoms)) == 3


def test_compaction_can_be_turned_off() -> None:
    store = InMemoryContextStore()
    ctx = CompressedContext(None, [atom("Fact"), atom("fact")])
    assert len(ExpanderFunctor(store).expand(ctx).atoms) == 1
    assert len(ExpanderFunctor(store, compact=False).expand(ctx).atoms) == 2


def test_removing_the_kept_duplicate_reveals_the_other() -> None:
    store = InMemoryContextStore()
    kept, hidden = atom("Fact", 0.9), atom("fact", 0.1)
    root_key = store.put(CompressedContext(None, [kept, hidden]))
    assert ExpanderFunctor(store).expand(CompressedContext(root_key)).atoms == [kept]
    delta = CompressedContext(root_key, [], [], {kept.content_hash})
    assert ExpanderFunctor(store).expand(delta).atoms == [hidden]


# -- cache ----------------------------------------------------------------------


def test_child_of_a_cached_context_reads_nothing() -> None:
    store = CountingStore()
    contexts = chain(store, 6)
    expander = ExpanderFunctor(store)
    expander.expand(contexts[-1])
    assert store.gets == 5
    child = CompressedContext(contexts[-1].context_hash, [atom("new")])
    expanded = expander.expand(child)
    assert store.gets == 5
    assert len(expanded.atoms) == 7
    assert len(expanded.expansion_path) == 7


def test_without_a_cache_every_base_is_read() -> None:
    store = CountingStore()
    contexts = chain(store, 6)
    expander = ExpanderFunctor(store, cache_size=0)
    expander.expand(contexts[-1])
    expander.expand(contexts[-1])
    assert store.gets == 10
    assert expander.cache_info() == (0, 0)


def test_cache_is_bounded_lru() -> None:
    store = CountingStore()
    contexts = chain(store, 4)
    expander = ExpanderFunctor(store, cache_size=2)
    for ctx in contexts:
        expander.expand(ctx)
    assert expander.cache_info() == (2, 2)
    reads = store.gets
    expander.expand(contexts[3])  # cached
    assert store.gets == reads
    expander.expand(contexts[0])  # evicted: a root reads nothing but is rebuilt
    expander.expand(contexts[1])  # evicted: its base (contexts[0]) is cached again
    assert store.gets == reads
    expander.clear_cache()
    assert expander.cache_info() == (0, 2)


def test_cached_states_are_not_changed_by_later_expansions() -> None:
    store = InMemoryContextStore()
    contexts = chain(store, 3)
    expander = ExpanderFunctor(store)
    before = expander.expand(contexts[-1])
    expander.expand(CompressedContext(contexts[-1].context_hash, [atom("more")]))
    expander.expand(
        CompressedContext(contexts[-1].context_hash, [], [], {atom("fact 0").content_hash})
    )
    assert expander.expand(contexts[-1]) == before
    assert ExpanderFunctor(store, cache_size=0).expand(contexts[-1]) == before


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_bad_cache_size_is_refused(bad: object) -> None:
    with pytest.raises(InvalidInputError) as info:
        ExpanderFunctor(InMemoryContextStore(), bad)  # type: ignore[arg-type]
    assert str(info.value) == f"cache_size must be a non-negative int, got {bad!r}"


def test_tokenizer_is_pluggable() -> None:
    ctx = CompressedContext(None, [atom("a b c")])
    expander = ExpanderFunctor(InMemoryContextStore(), tokenizer=WordEstimateTokenizer())
    assert expander.expand(ctx).total_tokens_estimate == 5  # 4 words x 1.3


# -- IncrementalExpander -------------------------------------------------------


def test_incremental_matches_full_expansion() -> None:
    store = InMemoryContextStore()
    contexts = chain(store, 3)
    incremental = IncrementalExpander(store)
    assert incremental.head is None
    first = incremental.initialize(contexts[1])
    assert incremental.head == contexts[1].context_hash
    assert first == ExpanderFunctor(store).expand(contexts[1])
    stepped = incremental.apply_delta(contexts[2])
    assert stepped == ExpanderFunctor(store).expand(contexts[2])
    removal = CompressedContext(incremental.head, [], [], {atom("fact 1").content_hash})
    after = incremental.apply_delta(removal)
    assert [a.content for a in after.atoms] == ["fact 0", "fact 2"]
    assert after.expansion_path[-1] == removal.context_hash
    assert incremental.head == removal.context_hash


def test_incremental_refuses_a_delta_on_another_head() -> None:
    store = InMemoryContextStore()
    contexts = chain(store, 2)
    incremental = IncrementalExpander(store)
    before = incremental.initialize(contexts[1])
    stale = CompressedContext(contexts[0].context_hash, [atom("late")])
    with pytest.raises(ConflictError) as info:
        incremental.apply_delta(stale)
    assert str(info.value) == (
        f"delta is based on {contexts[0].context_hash!r}, "
        f"not on the current head {contexts[1].context_hash!r}"
    )
    root = CompressedContext(None, [atom("late")])
    with pytest.raises(ConflictError):
        incremental.apply_delta(root)
    assert incremental.apply_delta(CompressedContext(incremental.head)).atoms == before.atoms


def test_incremental_needs_initialize() -> None:
    with pytest.raises(ContextFSError) as info:
        IncrementalExpander(InMemoryContextStore()).apply_delta(CompressedContext(None))
    assert str(info.value) == "IncrementalExpander has no state: call initialize() first"


def test_incremental_does_not_disturb_a_shared_expander_cache() -> None:
    store = InMemoryContextStore()
    contexts = chain(store, 2)
    reference = ExpanderFunctor(store).expand(contexts[1])
    incremental = IncrementalExpander(store)
    incremental.initialize(contexts[1])
    incremental.apply_delta(CompressedContext(incremental.head, [atom("extra")]))
    assert ExpanderFunctor(store).expand(contexts[1]) == reference
