"""Session-payload deltas: send only what changed, and rebuild the payload exactly.

The seed's API (``COMPONENTS``, ``hash_component``, ``build_delta``,
``apply_delta``) with its defects fixed (DESIGN.md section 2, defect 10):

* a component's hash covers its canonical JSON, so ``None`` and ``""`` differ,
  and ``["a\\nb"]`` and ``["a", "b"]`` differ;
* any unknown, stale or malformed hash (or bundle) gets the full component;
* a component the client holds and the payload no longer has is named in
  ``delta["removed"]``, so removals travel too;
* with ``granularity="item"`` (the default) a list component travels item by
  item, and a text component line by line: the hash bundle also holds one
  hash per item (``"<component>#items"``, 8 hex digits each), and the delta
  carries a *patch*: the new items in order, each either a run copied from
  the client's previous list (``[start, count]``) or a new item's text. An
  unchanged component costs nothing but its hash.

``apply_delta(previous, build_delta(hashes(previous), current)[0]) == current``
for every pair of payloads. A patch names the hash of the component it
builds; :func:`apply_delta` checks it and raises :class:`StaleDeltaError` if
the client's copy was not what its hashes said (the client then asks again
with an empty bundle and gets everything).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..errors import InvalidInputError

HASH_LEN = 16
#: Hex digits of an item hash: a collision only costs a retry, since every
#: rebuilt component is checked against its full hash.
ITEM_HASH_LEN = 8
COMPONENTS = ("l0", "l1", "l2", "rich_club")
#: Suffix of the bundle key holding a component's item hashes.
ITEMS_SUFFIX = "#items"
#: The delta key listing components the client must drop.
REMOVED = "removed"
PATCH = "patch"
#: What a bundle holds for one of COMPONENTS the payload does not have (never a hash).
ABSENT = "-"

Granularity = Literal["component", "item"]
Component = str | list[str] | None
Payload = dict[str, Any]


class StaleDeltaError(InvalidInputError):
    """A patch does not apply to the client's copy: ask again with an empty bundle."""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:HASH_LEN]


def canonical_json(value: object) -> str:
    """The one JSON spelling hashed and counted: no whitespace, keys sorted, UTF-8."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def hash_component(value: Component) -> str:
    """Return the 16-hex hash of a component (text, list of texts or None).

    Unlike the seed it hashes the canonical JSON of the value, so ``None``,
    ``""`` and ``[]`` all differ, and list items cannot run into each other.
    """
    return _digest(canonical_json(value).encode("utf-8", "surrogatepass"))


def hash_item(item: str) -> str:
    """Return the 8-hex hash of one list item or line."""
    return hashlib.sha256(b"i" + item.encode("utf-8", "surrogatepass")).hexdigest()[:ITEM_HASH_LEN]


def items_of(value: Component) -> list[str] | None:
    """Split a component into the items a patch copies: list items, or lines of text.

    Text splits on ``\n`` and joins back with it, which is exact for any text.
    """
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return value.split("\n")
    return None


def hashes_of(payload: Mapping[str, Any], granularity: Granularity = "item") -> dict[str, str]:
    """Return the hash bundle a client holding ``payload`` sends (see :func:`build_delta`)."""
    return build_delta({}, payload, granularity=granularity)[1]


def _keys(payload: Mapping[str, Any], previous: Mapping[str, str]) -> list[str]:
    extra = {k for k in payload if isinstance(k, str)} | {
        k for k in previous if isinstance(k, str) and ITEMS_SUFFIX not in k
    }
    return list(COMPONENTS) + sorted(extra - set(COMPONENTS))


def _check_component(key: str, value: object) -> Component:
    if key == REMOVED or ITEMS_SUFFIX in key:
        raise InvalidInputError(f"{key!r} cannot name a payload component")
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise InvalidInputError(
        f"payload component {key!r} must be text, a list of texts or None, got {value!r:.60}"
    )


def build_delta(
    previous_hashes: Mapping[str, str] | None,
    current_payload: Mapping[str, Any],
    *,
    granularity: Granularity = "item",
) -> tuple[Payload, dict[str, str]]:
    """Return ``(delta, new_hashes)`` for a client that last saw ``previous_hashes``.

    Args:
        previous_hashes: the bundle the client holds (``{}`` or None on the first turn;
            anything malformed counts as unknown).
        current_payload: the payload now, component name -> text, list of texts or None.
        granularity: ``"item"`` patches lists and text by item and line;
            ``"component"`` resends a changed component whole, as the seed does.

    Raises:
        InvalidInputError: a component is not text, a list of texts or None,
            or ``granularity`` is unknown.
    """
    if granularity not in ("item", "component"):
        raise InvalidInputError(f"granularity must be 'item' or 'component', got {granularity!r}")
    previous = previous_hashes if isinstance(previous_hashes, Mapping) else {}
    delta: Payload = {}
    new_hashes: dict[str, str] = {}
    removed: list[str] = []
    for key in _keys(current_payload, previous):
        if key not in current_payload:
            if key in COMPONENTS:
                new_hashes[key] = ABSENT
            if (key in previous or key in COMPONENTS) and previous.get(key) != ABSENT:
                removed.append(key)
            continue
        value = _check_component(key, current_payload[key])
        digest = hash_component(value)
        new_hashes[key] = digest
        items = items_of(value) if granularity == "item" else None
        if items is not None:
            new_hashes[key + ITEMS_SUFFIX] = "".join(hash_item(item) for item in items)
        known = previous.get(key)
        if isinstance(known, str) and known == digest:
            continue
        old_items = previous.get(key + ITEMS_SUFFIX)
        patch = (
            _patch(items, old_items, digest, isinstance(value, str))
            if items is not None and isinstance(known, str) and isinstance(old_items, str)
            else None
        )
        if patch is not None and len(canonical_json(patch)) < len(canonical_json(value)):
            delta[key] = patch
        else:
            delta[key] = value
    if removed:
        delta[REMOVED] = removed
    return delta, new_hashes


def _patch(
    items: Sequence[str], old_hashes: str, digest: str, is_text: bool
) -> dict[str, Any] | None:
    """Express ``items`` as runs copied from the client's items plus new items."""
    if len(old_hashes) % ITEM_HASH_LEN:
        return None
    positions: dict[str, int] = {}
    for index in range(len(old_hashes) // ITEM_HASH_LEN):
        positions.setdefault(old_hashes[index * ITEM_HASH_LEN : (index + 1) * ITEM_HASH_LEN], index)
    ops: list[Any] = []
    for item in items:
        at = positions.get(hash_item(item))
        if at is None:
            ops.append(item)
        elif ops and isinstance(ops[-1], list) and ops[-1][0] + ops[-1][1] == at:
            ops[-1][1] += 1
        else:
            ops.append([at, 1])
    return {PATCH: ops, "hash": digest, "text": is_text}


def apply_delta(previous: Mapping[str, Any], delta: Mapping[str, Any]) -> Payload:
    """Return the payload ``delta`` makes of ``previous`` (the client side).

    Raises:
        StaleDeltaError: a patch does not apply to ``previous`` (its result
            does not hash to what the server sent).
        InvalidInputError: the delta is malformed.
    """
    if not isinstance(delta, Mapping):
        raise InvalidInputError("a delta must be a mapping")
    merged = dict(previous)
    for key, value in delta.items():
        if key == REMOVED:
            if not isinstance(value, list):
                raise InvalidInputError("delta 'removed' must be a list of component names")
            for name in value:
                merged.pop(name, None)
        elif isinstance(value, dict):
            merged[key] = _apply_patch(key, merged.get(key), value)
        else:
            merged[key] = _check_component(key, value)
    return merged


def _apply_patch(key: str, old: Component, patch: Mapping[str, Any]) -> Component:
    ops, digest, is_text = patch.get(PATCH), patch.get("hash"), patch.get("text")
    if not isinstance(ops, list) or not isinstance(digest, str) or not isinstance(is_text, bool):
        raise InvalidInputError(f"the patch of {key!r} is malformed")
    source = items_of(old) or []
    result: list[str] = []
    for op in ops:
        if isinstance(op, str):
            result.append(op)
        elif (
            isinstance(op, list)
            and len(op) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) for n in op)
            and op[0] >= 0
            and op[1] >= 1
            and op[0] + op[1] <= len(source)
        ):
            result.extend(source[op[0] : op[0] + op[1]])
        else:
            raise StaleDeltaError(f"the patch of {key!r} does not fit the copy held")
    value: Component = "\n".join(result) if is_text else result
    if hash_component(value) != digest:
        raise StaleDeltaError(
            f"component {key!r} rebuilt from the delta does not match; ask again with no hashes"
        )
    return value


__all__ = [
    "COMPONENTS",
    "HASH_LEN",
    "Granularity",
    "StaleDeltaError",
    "apply_delta",
    "build_delta",
    "canonical_json",
    "hash_component",
    "hashes_of",
]
