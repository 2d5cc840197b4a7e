"""Expansion: materialise a context by replaying its chain of deltas.

Replaying follows the seed: start from the root, and at each context drop the
removed ids, add the delta atoms (a re-added id replaces the old entry) and add
the molecules. Three of the seed's defects are fixed here (DESIGN.md section 2):

* **No recursion** (defect 7). The chain is walked back to the root (or to the
  nearest cached state) in a loop, then applied forward, so history depth is
  bounded by memory, not by Python's stack. The cache is a bounded LRU.
* **Compaction never merges different memories** (defect 8). The seed keyed
  "type compaction" on ``content[:100]``; here two atoms are duplicates only if
  their types are equal and their contents are equal after Unicode NFC,
  case folding and whitespace collapsing. Compaction is applied when rendering,
  never to the stored state, so removing one copy never loses the other.
* **Real token counts** (defect 9), from a pluggable :class:`Tokenizer`.
"""

from __future__ import annotations

import unicodedata
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol, runtime_checkable

from ..errors import (
    ConflictError,
    ContextFSError,
    CorruptObjectError,
    InvalidInputError,
    UnknownRevisionError,
)
from ..model.context import CompressedContext
from ..model.ids import ID_HEX_LENGTH, short
from ..model.objects import MemoryAtom, MemoryMolecule
from ..model.types import TypeSignature
from .context import ExpandedContext, rank_key, render_line
from .contextstore import ContextStore
from .tokens import Tokenizer, default_tokenizer

__all__ = [
    "ExpanderFunctor",
    "IncrementalExpander",
    "compact_atoms",
    "compaction_key",
    "distinct",
]


def compaction_key(atom: MemoryAtom) -> tuple[TypeSignature, str]:
    """Return what makes two atoms true duplicates: type and normalised content.

    Content is normalised by Unicode NFC, case folding and collapsing every run
    of whitespace to one space (leading and trailing whitespace dropped). Whole
    content is compared: never a prefix.
    """
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", atom.content).casefold())
    return atom.type_sig, " ".join(folded.split())


def distinct(atoms: Iterable[MemoryAtom]) -> Iterator[MemoryAtom]:
    """Drop true duplicates (see :func:`compaction_key`) lazily, keeping the first of each."""
    seen: set[tuple[TypeSignature, str]] = set()
    for atom in atoms:
        key = compaction_key(atom)
        if key not in seen:
            seen.add(key)
            yield atom


def compact_atoms(atoms: Iterable[MemoryAtom]) -> list[MemoryAtom]:
    """Rank atoms most relevant first and drop true duplicates.

    Of atoms with one :func:`compaction_key`, the first in :func:`rank_key` order
    is kept: the most relevant, then the newest, then the smallest id.
    """
    seen: set[tuple[TypeSignature, str]] = set()
    kept: list[MemoryAtom] = []
    for atom in sorted(atoms, key=rank_key):
        key = compaction_key(atom)
        if key not in seen:
            seen.add(key)
            kept.append(atom)
    return kept


@runtime_checkable
class SnapshotSource(Protocol):
    """What expansion needs from a repository: revisions and their memories.

    :class:`~contextfs.repo.Repository` is one; with it, an expander expands
    revisions and commit ids, and a CompressedContext's ``base_hash`` names a
    commit rather than a stored context.
    """

    def resolve(self, revision: str) -> str:
        """Return the full commit id ``revision`` names."""
        ...

    def snapshot(self, revision: str | None = ...) -> Sequence[MemoryAtom | MemoryMolecule]:
        """Return every memory ``revision`` holds."""
        ...


class _State:
    """The raw (uncompacted) contents of one expanded context."""

    __slots__ = ("atoms", "molecules", "path")

    def __init__(self) -> None:
        self.atoms: dict[str, MemoryAtom] = {}
        self.molecules: dict[str, MemoryMolecule] = {}
        self.path: list[str] = []

    @classmethod
    def of_snapshot(cls, source: SnapshotSource, revision: str) -> _State:
        state = cls()
        commit = source.resolve(revision)
        for memory in source.snapshot(commit):
            if isinstance(memory, MemoryAtom):
                state.atoms[memory.content_hash] = memory
            else:
                state.molecules[memory.molecule_hash] = memory
        state.path.append(commit)
        return state

    def copy(self) -> _State:
        twin = _State()
        twin.atoms = dict(self.atoms)
        twin.molecules = dict(self.molecules)
        twin.path = list(self.path)
        return twin

    def apply(self, context: CompressedContext, context_id: str) -> None:
        for removed in context.removed_hashes:
            self.atoms.pop(removed, None)
            self.molecules.pop(removed, None)
        for atom in context.delta_atoms:
            # Pop first so a replaced entry moves to the end, as a fresh add would.
            self.atoms.pop(atom.content_hash, None)
            self.atoms[atom.content_hash] = atom
        for molecule in context.delta_molecules:
            self.molecules.pop(molecule.molecule_hash, None)
            self.molecules[molecule.molecule_hash] = molecule
        self.path.append(context_id)


class ExpanderFunctor:
    """Expands contexts from a :class:`ContextStore` or a repository, caching recent results.

    Not thread-safe: give each thread its own expander.

    Args:
        store: Where base contexts are read from: a seed :class:`ContextStore`
            (only ``get`` is used), or a :class:`SnapshotSource` such as a
            ``Repository``, whose commits serve as bases and which also expands
            revisions directly at a cost independent of history depth.
        cache_size: How many expanded states to keep (least recently used are
            dropped); 0 disables the cache.
        tokenizer: Counts ``total_tokens_estimate``; cl100k_base by default.
        compact: Drop true duplicates (see :func:`compact_atoms`); with False
            every atom is kept.

    Raises:
        InvalidInputError: ``cache_size`` is not a non-negative int.
    """

    def __init__(
        self,
        store: ContextStore | SnapshotSource,
        cache_size: int = 128,
        *,
        tokenizer: Tokenizer | None = None,
        compact: bool = True,
    ) -> None:
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise InvalidInputError(f"cache_size must be a non-negative int, got {cache_size!r}")
        self.store = store
        self.cache_size = cache_size
        self.tokenizer = tokenizer or default_tokenizer()
        self.compact = compact
        self._cache: OrderedDict[str, _State] = OrderedDict()

    def expand(self, compressed: CompressedContext | str) -> ExpandedContext:
        """Materialise ``compressed`` on top of its base chain.

        ``compressed`` itself need not be stored; its bases must be. With a
        repository as the store, ``compressed`` may also be a revision or
        commit id, and a context's ``base_hash`` names a commit.

        Returns:
            The atoms (ranked, compacted), molecules, the path of context ids
            from the root to ``compressed``, and token counts.

        Raises:
            UnknownRevisionError: A base is not in the store.
            CorruptObjectError: The chain of bases loops.
        """
        return self._render(self._build(compressed))

    def cache_info(self) -> tuple[int, int]:
        """Return ``(entries, capacity)`` of the state cache."""
        return len(self._cache), self.cache_size

    def clear_cache(self) -> None:
        """Forget every cached state."""
        self._cache.clear()

    def _cached(self, context_id: str) -> _State | None:
        state = self._cache.get(context_id)
        if state is not None:
            self._cache.move_to_end(context_id)
        return state

    def _remember(self, context_id: str, state: _State) -> None:
        if self.cache_size == 0:
            return
        self._cache[context_id] = state
        self._cache.move_to_end(context_id)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def _build(self, compressed: CompressedContext | str) -> _State:
        """Return the state of ``compressed``; a cached one must not be mutated."""
        if isinstance(compressed, str):
            if not isinstance(self.store, SnapshotSource):
                raise InvalidInputError("only a repository-backed expander expands revisions")
            commit = self.store.resolve(compressed)
            state = self._cached(commit) or _State.of_snapshot(self.store, commit)
            self._remember(commit, state)
            return state
        target = compressed.context_hash
        cached = self._cached(target)
        if cached is not None:
            return cached
        if isinstance(self.store, SnapshotSource):
            source = self.store
            base = compressed.base_hash
            if base is None:
                state = _State()
            else:
                commit = source.resolve(base)
                cached_base = self._cached(commit)
                state = cached_base.copy() if cached_base else _State.of_snapshot(source, commit)
            state.apply(compressed, target)
            self._remember(target, state)
            return state
        chain: list[tuple[str, CompressedContext]] = [(target, compressed)]
        seen: set[str] = {target}
        start: _State | None = None
        base = compressed.base_hash
        while base is not None:
            if len(base) == ID_HEX_LENGTH and (start := self._cached(base)) is not None:
                break
            context = self.store.get(base)
            if context is None:
                raise UnknownRevisionError(f"base context {base!r} is not in the store")
            # A full id names its context; only a prefix needs the hash computed.
            context_id = base if len(base) == ID_HEX_LENGTH else context.context_hash
            if len(base) != ID_HEX_LENGTH and (start := self._cached(context_id)) is not None:
                break
            if context_id in seen:
                raise CorruptObjectError(f"context {short(context_id)} is its own ancestor")
            seen.add(context_id)
            chain.append((context_id, context))
            base = context.base_hash
        state = start.copy() if start is not None else _State()
        for context_id, context in reversed(chain):
            state.apply(context, context_id)
        self._remember(target, state)
        return state

    def _render(self, state: _State) -> ExpandedContext:
        if self.compact:
            atoms = compact_atoms(state.atoms.values())
        else:
            atoms = sorted(state.atoms.values(), key=rank_key)
        counts = Counter(str(atom.type_sig) for atom in atoms)
        text = "\n".join(render_line(atom) for atom in atoms)
        return ExpandedContext(
            atoms,
            list(state.molecules.values()),
            list(state.path),
            self.tokenizer.count(text),
            {name: counts[name] for name in sorted(counts)},
        )


class IncrementalExpander:
    """Keeps one expanded context and moves it forward one delta at a time.

    Applying a delta costs the delta plus re-ranking, never a replay of history.

    Args:
        store: Where base contexts are read from by :meth:`initialize`.
        tokenizer: Counts ``total_tokens_estimate``; cl100k_base by default.
        compact: As for :class:`ExpanderFunctor`.
    """

    def __init__(
        self,
        store: ContextStore,
        *,
        tokenizer: Tokenizer | None = None,
        compact: bool = True,
    ) -> None:
        # No cache: the state built by initialize() is ours to mutate.
        self._expander = ExpanderFunctor(store, 0, tokenizer=tokenizer, compact=compact)
        self._state: _State | None = None

    @property
    def head(self) -> str | None:
        """The id of the context the current state is, or None before initialize()."""
        return self._state.path[-1] if self._state is not None else None

    def initialize(self, compressed: CompressedContext) -> ExpandedContext:
        """Expand ``compressed`` fully and make it the current state.

        Raises:
            UnknownRevisionError: A base is not in the store.
        """
        self._state = self._expander._build(compressed)
        return self._expander._render(self._state)

    def apply_delta(self, delta: CompressedContext) -> ExpandedContext:
        """Apply ``delta`` to the current state and return the new expansion.

        Raises:
            ContextFSError: :meth:`initialize` has not been called.
            ConflictError: ``delta.base_hash`` is not the current head's full id;
                the state is left unchanged.
        """
        if self._state is None:
            raise ContextFSError("IncrementalExpander has no state: call initialize() first")
        head = self._state.path[-1]
        if delta.base_hash != head:
            raise ConflictError(
                f"delta is based on {delta.base_hash!r}, not on the current head {head!r}"
            )
        self._state.apply(delta, delta.context_hash)
        return self._expander._render(self._state)
