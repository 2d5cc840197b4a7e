"""Hybrid fusion: each side scaled by its best, weighted, rounded; weak candidates move no one."""

from __future__ import annotations

import pytest

from contextfs.expand.ranking import fused_scores

A, B, C, D = b"a" * 32, b"b" * 32, b"c" * 32, b"d" * 32


def test_each_side_is_scaled_by_its_best_then_weighted() -> None:
    fused = fused_scores({A: 0.5, B: 0.25}, {A: 0.2, C: 0.8}, 0.3)
    assert fused == {
        A: round(0.3 * 1.0 + 0.7 * 0.25, 6),
        B: round(0.3 * 0.5, 6),
        C: round(0.7 * 1.0, 6),
    }


def test_a_weak_candidate_does_not_move_the_others() -> None:
    before = fused_scores({A: 1.0}, {A: 0.6, B: 0.3}, 0.5)
    after = fused_scores({A: 1.0}, {A: 0.6, B: 0.3, C: 0.01}, 0.5)
    assert {k: after[k] for k in before} == before  # min-max would have rescaled A and B


def test_negative_cosines_count_as_nothing_and_empty_sides_are_fine() -> None:
    assert fused_scores({}, {A: -0.2, B: 0.4}, 0.5) == {A: 0.0, B: 0.5}
    assert fused_scores({}, {A: -0.2}, 0.5) == {A: 0.0}
    assert fused_scores({D: 2.0}, {}, 0.25) == {D: 0.25}
    assert fused_scores({}, {}, 0.5) == {}


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_a_weight_at_either_end_keeps_one_side(weight: float) -> None:
    fused = fused_scores({A: 1.0}, {B: 1.0}, weight)
    assert fused == {A: weight, B: 1.0 - weight}
