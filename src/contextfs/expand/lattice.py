"""The relevance lattice: "this memory matters more than that one", as a DAG.

Edges point from the more relevant atom to the less relevant one. The order
must stay acyclic (a cycle would make two memories each more relevant than the
other), so an edge that would close a cycle is refused. Every walk is a loop
over an explicit stack: graph size, not Python's recursion limit, bounds it.

``above``/``below`` are strict (a node is not above itself); ``meet`` and
``join`` work on the reflexive sets, so ``meet(a, b) == {b}`` when ``a`` is
above ``b``, as in any lattice. The order need not be a true lattice, so
``meet`` and ``join`` return every maximal (or minimal) candidate.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from ..errors import InvalidInputError
from ..model.objects import MemoryAtom, MemoryMolecule
from ..model.types import TypeSignature

__all__ = [
    "LATTICE_RELATION",
    "LATTICE_TYPE",
    "LatticeCycleError",
    "RelevanceLattice",
    "lattice_molecule",
    "lattice_of",
]

#: A snapshot keeps its lattice as a molecule of this type, whose edges are this relation.
LATTICE_TYPE = TypeSignature("RelevanceLattice")
LATTICE_RELATION = "more_relevant"


class LatticeCycleError(InvalidInputError):
    """An edge would make a memory (transitively) more relevant than itself."""


def _check_node(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"lattice nodes must be non-empty strings, got {value!r}")
    return value


def _reach(start: str, edges: Mapping[str, set[str]]) -> set[str]:
    found: set[str] = set()
    stack = [start]
    while stack:
        for neighbour in edges.get(stack.pop(), ()):
            if neighbour not in found:
                found.add(neighbour)
                stack.append(neighbour)
    return found


class RelevanceLattice:
    """A partial order of atom hashes by relevance."""

    def __init__(self) -> None:
        self._down: dict[str, set[str]] = {}  # node -> nodes directly less relevant
        self._up: dict[str, set[str]] = {}  # node -> nodes directly more relevant

    def __contains__(self, node: object) -> bool:
        return node in self._down

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._down))

    def __len__(self) -> int:
        return len(self._down)

    def add_node(self, node: str) -> None:
        """Add ``node`` with no edges (a no-op if present)."""
        _check_node(node)
        self._down.setdefault(node, set())
        self._up.setdefault(node, set())

    def add_edge(self, higher: str, lower: str) -> None:
        """Record that ``higher`` is more relevant than ``lower``.

        Raises:
            LatticeCycleError: ``lower`` is already ``higher`` or above it.
            InvalidInputError: A node is not a non-empty string.
        """
        _check_node(higher)
        _check_node(lower)
        if higher == lower:
            raise LatticeCycleError(f"{higher!r} cannot be more relevant than itself")
        if higher in _reach(lower, self._down):
            raise LatticeCycleError(
                f"edge {higher!r} > {lower!r} would make a cycle: "
                f"{lower!r} is already more relevant than {higher!r}"
            )
        self.add_node(higher)
        self.add_node(lower)
        self._down[higher].add(lower)
        self._up[lower].add(higher)

    def add_relevance_edge(self, higher: str, lower: str) -> None:
        """The seed companion's name for :meth:`add_edge`."""
        self.add_edge(higher, lower)

    def order(self, ranked: Sequence[str]) -> list[str]:
        """Reorder ``ranked`` as little as possible so every edge among its nodes holds.

        A node never comes before one the lattice says is more relevant (among
        the nodes in ``ranked``); otherwise the given order is kept: at each
        step the earliest node whose more-relevant nodes have all been placed
        goes next. Nodes the lattice does not know keep their places in that
        order too. Linear in the nodes plus the edges among them (times a log).
        """
        position = {node: index for index, node in enumerate(ranked)}
        waiting = {
            node: sum(1 for up in _reach(node, self._up) if up in position) for node in ranked
        }
        ready = [index for index, node in enumerate(ranked) if waiting[node] == 0]
        heapq.heapify(ready)
        result: list[str] = []
        while ready:
            node = ranked[heapq.heappop(ready)]
            result.append(node)
            for lower in _reach(node, self._down):
                if lower in position:
                    waiting[lower] -= 1
                    if waiting[lower] == 0:
                        heapq.heappush(ready, position[lower])
        return result

    def edges(self) -> list[tuple[str, str]]:
        """Return every ``(higher, lower)`` edge, sorted."""
        return sorted((h, lo) for h, lows in self._down.items() for lo in lows)

    def above(self, node: str) -> frozenset[str]:
        """Return every node more relevant than ``node`` (empty if unknown)."""
        return frozenset(_reach(node, self._up))

    def below(self, node: str) -> frozenset[str]:
        """Return every node less relevant than ``node`` (empty if unknown)."""
        return frozenset(_reach(node, self._down))

    def meet(self, a: str, b: str) -> frozenset[str]:
        """Return the greatest nodes at or below both ``a`` and ``b``.

        The common lower set is closed downwards, so a node in it is maximal
        exactly when none of its direct parents is in it.
        """
        common = (_reach(a, self._down) | {a}) & (_reach(b, self._down) | {b})
        return frozenset(n for n in common if not self._up.get(n, set()) & common)

    def join(self, a: str, b: str) -> frozenset[str]:
        """Return the least nodes at or above both ``a`` and ``b``."""
        common = (_reach(a, self._up) | {a}) & (_reach(b, self._up) | {b})
        return frozenset(n for n in common if not self._down.get(n, set()) & common)


def lattice_of(molecules: Iterable[MemoryMolecule]) -> RelevanceLattice:
    """Return the lattice the ``RelevanceLattice`` molecules among ``molecules`` record."""
    lattice = RelevanceLattice()
    for molecule in molecules:
        if molecule.molecule_type == LATTICE_TYPE:
            ids = [atom.content_hash for atom in molecule.atoms]
            for node in ids:
                lattice.add_node(node)
            for higher, lower in molecule.relations.get(LATTICE_RELATION, ()):
                lattice.add_edge(ids[higher], ids[lower])
    return lattice


def lattice_molecule(
    lattice: RelevanceLattice, atom: Callable[[str], MemoryAtom]
) -> MemoryMolecule:
    """Return the molecule that records ``lattice``; ``atom`` loads a node's atom by id."""
    nodes = list(lattice)
    index = {node: i for i, node in enumerate(nodes)}
    edges = tuple((index[higher], index[lower]) for higher, lower in lattice.edges())
    return MemoryMolecule(
        tuple(atom(node) for node in nodes), {LATTICE_RELATION: edges}, LATTICE_TYPE, {}
    )
