"""The rich club of a memory graph: hub memories densely connected to each other.

Definition used (after Zhou and Mondragón's rich-club coefficient):

* the graph is undirected and simple: its nodes are atoms, and two atoms are
  linked when any molecule relates them (self-relations and repeated edges
  count once);
* for a degree threshold ``k``, the club ``R(k)`` is the nodes of degree
  greater than ``k``, and its density is
  ``phi(k) = 2 E(R(k)) / (|R(k)| (|R(k)| - 1))``, the share of possible links
  among them that exist;
* the rich club is ``R(k*)`` for the smallest ``k* >= 1`` at which the club
  has at least two members and ``phi(k*) >= DENSITY`` (0.5): the largest set of
  hubs (degree 2 or more) that are densely linked to each other. A graph with
  no such set (a star, a tree of separate hubs) has an empty rich club.

Members are listed by degree, most connected first, then by the caller's tie
order. Everything here is pure and deterministic.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import TypeVar

from ..model.objects import MemoryAtom, MemoryMolecule

#: Least density at which a set of hubs counts as a club.
DENSITY = 0.5

Node = TypeVar("Node", bound=Hashable)


def adjacency(edges: Iterable[tuple[Node, Node]]) -> dict[Node, set[Node]]:
    """Return the simple undirected graph of ``edges`` (self-loops dropped)."""
    graph: dict[Node, set[Node]] = {}
    for a, b in edges:
        if a == b:
            continue
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set()).add(a)
    return graph


def club_density(graph: dict[Node, set[Node]], members: set[Node]) -> float:
    """Return the share of possible links among ``members`` that exist (0 for fewer than two)."""
    size = len(members)
    if size < 2:
        return 0.0
    links = sum(len(graph[node] & members) for node in members) // 2
    return 2 * links / (size * (size - 1))


def rich_club(graph: dict[Node, set[Node]], *, density: float = DENSITY) -> list[Node]:
    """Return the rich club's members, most connected first (see the module's definition).

    Ties in degree keep the graph's insertion order, so a caller who inserts
    nodes in a stable order gets a stable answer.
    """
    degrees = {node: len(links) for node, links in graph.items()}
    for threshold in sorted({d for d in degrees.values() if d >= 2}):
        members = {node for node, degree in degrees.items() if degree >= threshold}
        if len(members) >= 2 and club_density(graph, members) >= density:
            order = {node: n for n, node in enumerate(graph)}
            return sorted(members, key=lambda node: (-degrees[node], order[node]))
    return []


def hub_atoms(molecules: Iterable[MemoryMolecule]) -> list[MemoryAtom]:
    """The rich club of the graph the molecules' relations draw between atoms."""
    atoms: dict[str, MemoryAtom] = {}
    edges: list[tuple[str, str]] = []
    for molecule in molecules:
        for atom in molecule.atoms:
            atoms.setdefault(atom.content_hash, atom)
        for pairs in molecule.relations.values():
            edges += [
                (molecule.atoms[i].content_hash, molecule.atoms[j].content_hash) for i, j in pairs
            ]
    edges.sort()  # a stable graph whatever order the molecules came in
    return [atoms[node] for node in rich_club(adjacency(edges))]


__all__ = ["DENSITY", "adjacency", "club_density", "hub_atoms", "rich_club"]
