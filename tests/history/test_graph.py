"""Commit-graph walks and merge bases on histories built from a compact spec."""

from __future__ import annotations

from contextfs.history.commits import Commit
from contextfs.history.graph import is_ancestor, merge_bases, walk
from contextfs.history.tree import EMPTY_TREE_ID


def build(
    spec: dict[str, list[str]], clock: dict[str, int] | None = None
) -> tuple[dict[str, bytes], dict[bytes, Commit]]:
    """Build commits named by ``spec`` (name -> parent names, parents listed first)."""
    ids: dict[str, bytes] = {}
    commits: dict[bytes, Commit] = {}
    for n, (name, parents) in enumerate(spec.items()):
        parent_ids = tuple(ids[p] for p in parents)
        commit = Commit(
            tree=EMPTY_TREE_ID,
            parents=parent_ids,
            generation=1 + max((commits[p].generation for p in parent_ids), default=0),
            author="t",
            message=name,
            timestamp=(clock or {}).get(name, n),
            metadata={},
        )
        ids[name] = commit.digest
        commits[commit.digest] = commit
    return ids, commits


def names(ids: dict[str, bytes], oids: list[bytes]) -> list[str]:
    reverse = {v: k for k, v in ids.items()}
    return [reverse[o] for o in oids]


DIAMOND = {"A": [], "B": ["A"], "C": ["A"], "D": ["B", "C"], "E": ["D"]}


def test_walk_lists_children_before_parents_even_with_skewed_clocks() -> None:
    ids, commits = build(DIAMOND, clock={"A": 50, "B": 10, "C": 40, "D": 0, "E": 5})
    order = names(ids, [oid for oid, _ in walk(commits.__getitem__, [ids["E"]])])
    assert order == ["E", "D", "C", "B", "A"]


def test_ancestry() -> None:
    ids, commits = build(DIAMOND)
    load = commits.__getitem__
    assert is_ancestor(load, ids["A"], ids["E"])
    assert is_ancestor(load, ids["C"], ids["D"])
    assert not is_ancestor(load, ids["B"], ids["C"])
    assert is_ancestor(load, ids["E"], ids["E"])


def test_merge_base_of_a_fork() -> None:
    ids, commits = build({"A": [], "B": ["A"], "C": ["B"], "X": ["B"], "Y": ["X"]})
    assert names(ids, merge_bases(commits.__getitem__, ids["C"], ids["Y"])) == ["B"]
    assert names(ids, merge_bases(commits.__getitem__, ids["C"], ids["B"])) == ["B"]


def test_criss_cross_has_two_best_bases_and_no_redundant_ones() -> None:
    spec = {
        "A": [],
        "B": ["A"],
        "C": ["A"],
        "D": ["B", "C"],
        "E": ["C", "B"],
        "F": ["D"],
        "G": ["E"],
    }
    ids, commits = build(spec)
    assert sorted(names(ids, merge_bases(commits.__getitem__, ids["F"], ids["G"]))) == ["B", "C"]


def test_unrelated_histories_have_no_base() -> None:
    ids, commits = build({"A": [], "B": ["A"], "X": [], "Y": ["X"]})
    assert merge_bases(commits.__getitem__, ids["B"], ids["Y"]) == []
