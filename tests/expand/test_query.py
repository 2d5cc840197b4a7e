"""Tests for contextfs.expand.query: filters, ordering, limits, validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from contextfs.errors import InvalidInputError
from contextfs.expand.context import ExpandedContext
from contextfs.expand.query import ContextQuery
from contextfs.model.objects import MemoryAtom
from contextfs.model.types import T_ANY, T_DICT, T_INT, T_LIST, T_STRING, TypeSignature

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def atom(
    content: str, relevance: float, type_sig: TypeSignature = T_STRING, age: float = 0.0
) -> MemoryAtom:
    return MemoryAtom(content, type_sig, NOW - timedelta(seconds=age), "src", relevance)


ATOMS = [
    atom("fresh string", 0.4, T_STRING, 10),
    atom("old string", 0.9, T_STRING, 7200),
    atom("a number", 0.95, T_INT, 60),
    atom("names", 0.6, T_LIST(T_STRING), 30),
    atom("table", 0.5, T_DICT(T_STRING, T_INT), 5),
]
EXPANDED = ExpandedContext(list(ATOMS), [], [], 0, {})


def contents(atoms: list[MemoryAtom]) -> list[str]:
    return [a.content for a in atoms]


def test_default_query_returns_everything_most_relevant_first() -> None:
    assert contents(ContextQuery().apply(EXPANDED, NOW)) == [
        "a number",
        "old string",
        "names",
        "table",
        "fresh string",
    ]


def test_min_relevance_is_inclusive() -> None:
    assert contents(ContextQuery(min_relevance=0.9).apply(EXPANDED, NOW)) == [
        "a number",
        "old string",
    ]


def test_type_filter_unifies() -> None:
    assert contents(ContextQuery(type_filter=T_STRING).apply(EXPANDED, NOW)) == [
        "old string",
        "fresh string",
    ]
    assert contents(ContextQuery(type_filter=T_LIST(T_ANY)).apply(EXPANDED, NOW)) == ["names"]
    dict_any = T_DICT(T_ANY, TypeSignature("τv"))
    assert contents(ContextQuery(type_filter=dict_any).apply(EXPANDED, NOW)) == ["table"]
    assert len(ContextQuery(type_filter=T_ANY).apply(EXPANDED, NOW)) == 5


def test_max_age_is_inclusive_and_measured_in_utc() -> None:
    query = ContextQuery(max_age_seconds=60)
    assert contents(query.apply(EXPANDED, NOW)) == ["a number", "names", "table", "fresh string"]
    # The same instant written in another zone, or naive local time, gives the same answer.
    elsewhere = NOW.astimezone(timezone(timedelta(hours=-7)))
    assert query.apply(EXPANDED, elsewhere) == query.apply(EXPANDED, NOW)
    local_naive = NOW.astimezone().replace(tzinfo=None)
    assert query.apply(EXPANDED, local_naive) == query.apply(EXPANDED, NOW)
    assert not ContextQuery(max_age_seconds=59.999).matches(ATOMS[2], NOW)


def test_future_atoms_are_not_too_old() -> None:
    future = atom("later", 0.5, age=-100)
    assert ContextQuery(max_age_seconds=0).matches(future, NOW)


def test_limit_cuts_after_ranking() -> None:
    assert contents(ContextQuery(limit=2).apply(EXPANDED, NOW)) == ["a number", "old string"]
    assert ContextQuery(limit=0).apply(EXPANDED, NOW) == []


def test_filters_combine() -> None:
    query = ContextQuery(T_STRING, 0.3, 3600, 1)
    assert contents(query.apply(EXPANDED, NOW)) == ["fresh string"]


def test_matches_uses_the_clock_by_default() -> None:
    recent = MemoryAtom("now", T_STRING, datetime.now(UTC), "s", 0.5)
    assert ContextQuery(max_age_seconds=3600).matches(recent)
    assert not ContextQuery(max_age_seconds=3600).matches(ATOMS[0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_relevance": 1.5}, "min_relevance must be in [0, 1], got 1.5"),
        ({"min_relevance": -0.1}, "min_relevance must be in [0, 1], got -0.1"),
        ({"min_relevance": float("nan")}, "min_relevance must be in [0, 1], got nan"),
        ({"min_relevance": True}, "min_relevance must be in [0, 1], got True"),
        ({"max_age_seconds": -1}, "max_age_seconds must be >= 0 or None, got -1"),
        ({"max_age_seconds": float("nan")}, "max_age_seconds must be >= 0 or None, got nan"),
        ({"max_age_seconds": "1"}, "max_age_seconds must be >= 0 or None, got '1'"),
        ({"limit": -1}, "limit must be an int >= 0 or None, got -1"),
        ({"limit": 2.0}, "limit must be an int >= 0 or None, got 2.0"),
        ({"type_filter": "String"}, "type_filter must be a TypeSignature or None, got 'String'"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        ContextQuery(**kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_queries_are_frozen_values() -> None:
    assert ContextQuery(T_INT, 0.5) == ContextQuery(type_filter=T_INT, min_relevance=0.5)
    with pytest.raises(AttributeError):
        ContextQuery().limit = 3  # type: ignore[misc]
