"""The rich club on graphs whose answer is known."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from contextfs.session.richclub import adjacency, club_density, rich_club


def complete(nodes: list[str]) -> list[tuple[str, str]]:
    return list(itertools.combinations(nodes, 2))


def test_a_star_has_no_club() -> None:
    """One hub and its leaves: the hub links to nobody of its own degree."""
    assert rich_club(adjacency([("hub", f"leaf{i}") for i in range(10)])) == []


def test_separate_hubs_are_not_a_club() -> None:
    edges = [("a", f"a{i}") for i in range(5)] + [("b", f"b{i}") for i in range(5)]
    assert rich_club(adjacency(edges)) == []


def test_a_clique_of_hubs_with_pendant_leaves_is_the_club() -> None:
    core = ["c1", "c2", "c3", "c4"]
    edges = complete(core) + [(c, f"{c}-leaf{i}") for c in core for i in range(3)]
    assert set(rich_club(adjacency(edges))) == set(core)


def test_hubs_inside_a_sparse_ring_are_found_at_a_higher_degree() -> None:
    """A ring of 20 (degree 2) with 5 fully linked hubs, each tied to 4 ring nodes."""
    ring = [f"r{i}" for i in range(20)]
    hubs = [f"h{i}" for i in range(5)]
    edges = [(ring[i], ring[(i + 1) % 20]) for i in range(20)] + complete(hubs)
    edges += [(h, ring[4 * n + k]) for n, h in enumerate(hubs) for k in range(4)]
    graph = adjacency(edges)
    club = rich_club(graph)
    assert set(club) == set(hubs)
    assert club_density(graph, set(ring) | set(hubs)) < 0.5


def test_members_come_most_connected_first() -> None:
    edges = [*complete(["a", "b", "c"]), ("a", "x"), ("a", "y"), ("b", "z")]
    assert rich_club(adjacency(edges)) == ["a", "b", "c"]


def test_self_loops_and_repeated_edges_count_once() -> None:
    graph = adjacency([("a", "a"), ("a", "b"), ("b", "a"), ("a", "b")])
    assert graph == {"a": {"b"}, "b": {"a"}}
    assert rich_club(graph) == []  # two nodes of degree 1 are no hubs


@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), max_size=60))
def test_the_club_is_dense_and_its_members_outrank_everyone_left_out(
    edges: list[tuple[int, int]],
) -> None:
    graph = adjacency(edges)
    club = rich_club(graph)
    if not club:
        return
    members = set(club)
    assert len(members) >= 2
    assert club_density(graph, members) >= 0.5
    lowest = min(len(graph[n]) for n in members)
    assert lowest >= 2
    assert all(len(graph[n]) < lowest for n in graph if n not in members)
