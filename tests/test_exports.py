"""The public surface: what `import contextfs` offers, including the seed vocabulary."""

from __future__ import annotations

import contextfs

SEED_VOCABULARY = {
    "Kind",
    "TypeSignature",
    "T_STRING",
    "T_INT",
    "T_FLOAT",
    "T_BOOL",
    "T_TIMESTAMP",
    "T_ANY",
    "T_LIST",
    "T_DICT",
    "T_CONTEXT",
    "MemoryAtom",
    "MemoryMolecule",
    "CompressedContext",
    "ExpandedContext",
    "ContextStore",
    "InMemoryContextStore",
    "ExpanderFunctor",
    "IncrementalExpander",
    "ContextQuery",
    "RelevanceLattice",
    "StreamingExpander",
    "ExpansionChunk",
    "ContextMerkleTree",
}


def test_every_exported_name_exists_and_is_listed_once() -> None:
    assert len(contextfs.__all__) == len(set(contextfs.__all__))
    for name in contextfs.__all__:
        assert getattr(contextfs, name) is not None, name


def test_the_seed_vocabulary_is_importable_from_the_package() -> None:
    assert set(contextfs.__all__) >= SEED_VOCABULARY


def test_nothing_private_leaks_into_the_surface() -> None:
    public = {name for name in vars(contextfs) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(contextfs, name)).__name__ == "module"}
    assert public - modules - {"annotations"} == set(contextfs.__all__)
