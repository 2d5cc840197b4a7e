"""Session deltas: exact reconstruction for every pair of payloads, at both granularities."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contextfs.errors import InvalidInputError
from contextfs.session import (
    COMPONENTS,
    StaleDeltaError,
    apply_delta,
    build_delta,
    hash_component,
    hashes_of,
)
from contextfs.session.delta import canonical_json

# Text with newlines, carriage returns, Unicode line separators and the empty string.
text = st.lists(
    st.sampled_from(["a", "b", " ", "\n", "\r", "\u2028", "é", "\x85", "line"]), max_size=12
).map("".join)
item_lists = st.lists(text, max_size=8)
component = st.one_of(st.none(), text, item_lists)
payloads = st.dictionaries(st.sampled_from([*COMPONENTS, "extra"]), component, max_size=5)
granularities = st.sampled_from(["item", "component"])


@given(previous=payloads, current=payloads, granularity=granularities)
def test_any_payload_is_rebuilt_exactly_from_any_previous_one(
    previous: dict[str, Any], current: dict[str, Any], granularity: Any
) -> None:
    bundle = hashes_of(previous, granularity)
    delta, new_hashes = build_delta(bundle, current, granularity=granularity)
    assert apply_delta(previous, delta) == current
    assert new_hashes == hashes_of(current, granularity)


@given(base=item_lists, data=st.data())
def test_edits_to_a_list_travel_as_a_patch_and_rebuild_exactly(
    base: list[str], data: st.DataObject
) -> None:
    items = [f"memory number {i}: " + "detail " * 20 for i in range(20)] + base
    edited = list(items)
    data.draw(st.randoms()).shuffle(edited)
    position = data.draw(st.integers(0, len(edited)))
    edited.insert(position, "a brand new memory")
    edited.pop(data.draw(st.integers(0, len(edited) - 1)))
    previous = {"l2": items}
    delta, _ = build_delta(hashes_of(previous), {"l2": edited})
    assert apply_delta(previous, delta)["l2"] == edited
    assert len(canonical_json(delta)) < len(canonical_json(edited))


@given(
    previous=payloads,
    current=payloads,
    garbage=st.dictionaries(
        st.sampled_from([*COMPONENTS, "l2#items", "l1#items", "removed"]),
        st.one_of(st.text(max_size=40), st.integers(), st.none(), st.lists(st.integers())),
    ),
)
def test_garbage_or_stale_hashes_get_full_components(
    previous: dict[str, Any], current: dict[str, Any], garbage: dict[str, Any]
) -> None:
    """A client whose bundle is nonsense gets what it needs to rebuild from nothing."""
    delta, _ = build_delta(garbage, current)
    try:
        rebuilt = apply_delta({}, delta)
    except StaleDeltaError:
        return  # a patch against a copy it does not hold: the client asks again
    assert rebuilt == current


def test_the_seeds_defects_are_gone() -> None:
    assert hash_component(None) != hash_component("")
    assert hash_component(["a\nb"]) != hash_component(["a", "b"])
    assert hash_component([]) != hash_component("")
    previous = {"l0": "", "l1": "x", "l2": ["a\nb"], "rich_club": "r"}
    current = {"l0": None, "l1": "x", "l2": ["a", "b"]}
    delta, _ = build_delta(hashes_of(previous), current)
    assert delta["l0"] is None
    assert delta["l2"] == ["a", "b"]
    assert delta["removed"] == ["rich_club"]
    assert apply_delta(previous, delta) == current


def test_unchanged_components_cost_only_their_hash() -> None:
    payload = {"l0": "me", "l1": "overview\n", "l2": ["a", "b"], "rich_club": "hubs"}
    delta, bundle = build_delta(hashes_of(payload), payload)
    assert delta == {}
    assert set(bundle) == {*COMPONENTS, "l0#items", "l1#items", "l2#items", "rich_club#items"}
    assert all(len(bundle[k]) == 16 for k in COMPONENTS)


def test_the_seeds_bundle_shape_is_accepted() -> None:
    """A seed client's hashes (16 hex of its own flattening) are unknown: full components."""
    payload = {"l0": "me", "l1": "o", "l2": ["a", "b"], "rich_club": "h"}
    seed_bundle = dict.fromkeys(COMPONENTS, "0123456789abcdef")
    delta, _ = build_delta(seed_bundle, payload)
    assert delta == payload
    assert build_delta({}, payload)[0] == payload
    assert build_delta(None, payload)[0] == payload


def test_one_changed_item_costs_one_item() -> None:
    items = [f"memory {i}: " + "words " * 30 for i in range(30)]
    previous = {"l0": "me", "l1": "\n".join(items[:5]) + "\n", "l2": items, "rich_club": ""}
    current = dict(previous, l2=[*items[:7], "memory 7 was edited", *items[8:]])
    delta, _ = build_delta(hashes_of(previous), current)
    assert delta["l2"]["patch"] == [[0, 7], "memory 7 was edited", [8, 22]]
    assert set(delta) == {"l2"}
    component_delta, _ = build_delta(
        hashes_of(previous, "component"), current, granularity="component"
    )
    assert component_delta["l2"] == current["l2"]
    assert len(canonical_json(delta)) * 10 < len(canonical_json(component_delta))


def test_a_patch_that_does_not_fit_raises_stale() -> None:
    items = [f"memory {i}: " + "words " * 30 for i in range(10)]
    delta, _ = build_delta(hashes_of({"l2": items}), {"l2": [*items, "new"]})
    with pytest.raises(StaleDeltaError):
        apply_delta({"l2": items[:3]}, delta)
    with pytest.raises(StaleDeltaError):
        apply_delta({"l2": [*items[:-1], "tampered"]}, delta)


@pytest.mark.parametrize(
    "payload",
    [{"l0": 3}, {"l2": ["a", 1]}, {"removed": "x"}, {"l2#items": "x"}],
)
def test_bad_payloads_are_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        build_delta({}, payload)


def test_bad_deltas_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        apply_delta({}, {"removed": "l0"})
    with pytest.raises(InvalidInputError):
        apply_delta({}, {"l2": {"patch": "nope", "hash": "x", "text": False}})
    with pytest.raises(InvalidInputError):
        build_delta({}, {}, granularity="bytes")  # type: ignore[arg-type]
