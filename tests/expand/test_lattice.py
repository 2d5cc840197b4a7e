"""Tests for contextfs.expand.lattice: acyclic relevance order, meet and join."""

from __future__ import annotations

import itertools

import pytest

from contextfs.errors import InvalidInputError
from contextfs.expand.lattice import LatticeCycleError, RelevanceLattice


def diamond() -> RelevanceLattice:
    """top > left, top > right, left > bottom, right > bottom."""
    lattice = RelevanceLattice()
    lattice.add_edge("top", "left")
    lattice.add_edge("top", "right")
    lattice.add_edge("left", "bottom")
    lattice.add_edge("right", "bottom")
    return lattice


def test_above_and_below_are_strict_reachable_sets() -> None:
    lattice = diamond()
    assert lattice.below("top") == frozenset({"left", "right", "bottom"})
    assert lattice.above("bottom") == frozenset({"left", "right", "top"})
    assert lattice.above("top") == frozenset()
    assert lattice.below("left") == frozenset({"bottom"})
    assert lattice.above("unknown") == frozenset()
    assert lattice.below("unknown") == frozenset()


def test_meet_and_join_in_a_diamond() -> None:
    lattice = diamond()
    assert lattice.meet("left", "right") == frozenset({"bottom"})
    assert lattice.join("left", "right") == frozenset({"top"})
    assert lattice.meet("top", "left") == frozenset({"left"})
    assert lattice.join("top", "left") == frozenset({"top"})
    assert lattice.meet("left", "left") == frozenset({"left"})


def test_meet_returns_every_maximal_candidate() -> None:
    # a and b are both above c and d, which are unrelated: no single greatest element.
    lattice = RelevanceLattice()
    for high in ("a", "b"):
        for low in ("c", "d"):
            lattice.add_edge(high, low)
    lattice.add_edge("c", "e")
    assert lattice.meet("a", "b") == frozenset({"c", "d"})
    assert lattice.join("c", "d") == frozenset({"a", "b"})
    assert lattice.join("e", "d") == frozenset({"a", "b"})


def test_unrelated_nodes_have_no_meet_or_join() -> None:
    lattice = RelevanceLattice()
    lattice.add_edge("a", "b")
    lattice.add_edge("c", "d")
    assert lattice.meet("a", "c") == frozenset()
    assert lattice.join("b", "d") == frozenset()
    assert lattice.meet("x", "y") == frozenset()


def test_cycles_are_refused_and_change_nothing() -> None:
    lattice = diamond()
    with pytest.raises(LatticeCycleError) as info:
        lattice.add_edge("bottom", "top")
    assert str(info.value) == (
        "edge 'bottom' > 'top' would make a cycle: 'top' is already more relevant than 'bottom'"
    )
    with pytest.raises(LatticeCycleError) as self_info:
        lattice.add_edge("left", "left")
    assert str(self_info.value) == "'left' cannot be more relevant than itself"
    assert lattice.edges() == [
        ("left", "bottom"),
        ("right", "bottom"),
        ("top", "left"),
        ("top", "right"),
    ]
    assert isinstance(info.value, InvalidInputError)


def test_nodes_must_be_non_empty_strings() -> None:
    with pytest.raises(InvalidInputError) as info:
        RelevanceLattice().add_edge("", "x")
    assert str(info.value) == "lattice nodes must be non-empty strings, got ''"


def test_container_protocol() -> None:
    lattice = diamond()
    lattice.add_node("alone")
    lattice.add_edge("top", "left")  # a repeated edge is a no-op
    assert len(lattice) == 5
    assert "alone" in lattice
    assert "nope" not in lattice
    assert list(lattice) == ["alone", "bottom", "left", "right", "top"]
    assert len(lattice.edges()) == 4


def test_long_chains_walk_without_recursion() -> None:
    lattice = RelevanceLattice()
    names = [f"n{i}" for i in range(5000)]
    for higher, lower in itertools.pairwise(names):
        lattice.add_edge(higher, lower)
    assert len(lattice.below("n0")) == 4999
    assert lattice.meet("n10", "n20") == frozenset({"n20"})
    assert lattice.join("n10", "n4999") == frozenset({"n10"})
    with pytest.raises(LatticeCycleError):
        lattice.add_edge("n4999", "n0")
