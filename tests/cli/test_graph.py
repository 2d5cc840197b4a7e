"""The lane drawing of ``log --graph`` on known history shapes."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from contextfs.cli.graph import graph_rows, render_graph


def draw(commits: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    return render_graph(commits, lambda oid: oid)


def test_empty_history_draws_nothing() -> None:
    assert draw([]) == []


def test_linear_history_is_a_plain_column() -> None:
    assert draw([("C", ["B"]), ("B", ["A"]), ("A", [])]) == ["* C", "* B", "* A"]


def test_branch_and_merge() -> None:
    assert draw([("M", ["A", "B"]), ("A", ["C"]), ("B", ["C"]), ("C", [])]) == [
        "*   M",
        "|\\",
        "* | A",
        "| * B",
        "|/",
        "* C",
    ]


def test_second_parent_listed_first() -> None:
    assert draw([("M", ["B", "A"]), ("A", ["C"]), ("B", ["C"]), ("C", [])]) == [
        "*   M",
        "|\\",
        "| * A",
        "* | B",
        "|/",
        "* C",
    ]


def test_two_merges_of_overlapping_branches() -> None:
    history = [
        ("M2", ["M1", "D"]),
        ("D", ["C"]),
        ("M1", ["A", "B"]),
        ("B", ["C"]),
        ("A", ["C"]),
        ("C", []),
    ]
    assert draw(history) == [
        "*   M2",
        "|\\",
        "| * D",
        "* |   M1",
        "|\\ \\",
        "| * | B",
        "| |/",
        "* | A",
        "|/",
        "* C",
    ]


def test_octopus_merge() -> None:
    history = [("O", ["A", "B", "C"]), ("A", ["R"]), ("B", ["R"]), ("C", ["R"]), ("R", [])]
    assert draw(history) == [
        "*     O",
        "|\\",
        "| |\\",
        "* | | A",
        "| * | B",
        "|/ /",
        "| * C",
        "|/",
        "* R",
    ]


def test_two_tips_sharing_a_parent() -> None:
    assert draw([("X", ["B"]), ("Y", ["B"]), ("B", [])]) == ["* X", "| * Y", "|/", "* B"]


def test_unrelated_roots() -> None:
    assert draw([("X", ["A"]), ("Y", ["B"]), ("A", []), ("B", [])]) == [
        "* X",
        "| * Y",
        "* | A",
        " /",
        "* B",
    ]


def test_history_cut_short_keeps_lanes_open() -> None:
    assert draw([("M", ["A", "B"]), ("A", ["C"])]) == ["*   M", "|\\", "* | A"]


def test_rows_mark_commits_and_transitions() -> None:
    rows = graph_rows([("M", ["A", "B"]), ("A", ["C"]), ("B", ["C"]), ("C", [])])
    assert [oid for _, oid in rows] == ["M", None, "A", "B", None, "C"]


@pytest.mark.parametrize("width", [1, 2, 5, 12])
def test_many_parallel_tips_collapse_into_one(width: int) -> None:
    tips = [(f"T{i}", ["R"]) for i in range(width)]
    lines = draw([*tips, ("R", [])])
    assert lines[-1] == "* R"
    assert all(set(line) <= set("*|/\\ T0123456789R") for line in lines)
    assert sum(1 for line in lines if "*" in line) == width + 1
