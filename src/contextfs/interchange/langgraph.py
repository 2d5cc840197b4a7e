"""LangGraph stores, read through LangGraph's own store API (any ``BaseStore``).

Each item is one memory: its text is the value's ``content`` (or ``text``,
``memory``, ``data``; LangMem's ``{"kind": ..., "content": {"content": ...}}``
too) when the value holds nothing else, else the value as JSON, so nothing is
lost. The namespace is the tag, ``namespace/key`` the anchor, and the item's
``updated_at`` the timestamp.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..model.timeutil import to_micros
from .records import ImportedMemory

if TYPE_CHECKING:
    from langgraph.store.base import BaseStore, Item

#: The type of a memory read from a LangGraph store: its values are free JSON.
LANGGRAPH_TYPE = "String"
#: How many items one search reads.
PAGE_SIZE = 1000
_TEXT_KEYS = ("content", "text", "memory", "data")
_LABEL_KEYS = frozenset({"kind", "type"})


def read_store(store: BaseStore, *, namespace: tuple[str, ...] = ()) -> list[ImportedMemory]:
    """Every item under ``namespace`` (default: the whole store), oldest first."""
    items: dict[tuple[tuple[str, ...], str], Item] = {}
    offset = 0
    while True:
        page = store.search(namespace, limit=PAGE_SIZE, offset=offset)
        for item in page:
            items.setdefault((item.namespace, item.key), item)
        if len(page) < PAGE_SIZE:
            break
        offset += PAGE_SIZE
    ordered = sorted(items.values(), key=lambda i: (i.updated_at, i.namespace, i.key))
    return [_memory(item) for item in ordered]


def _memory(item: Item) -> ImportedMemory:
    path = "/".join(item.namespace)
    return ImportedMemory(
        content=item_text(item.value),
        type=LANGGRAPH_TYPE,
        line=None,
        tags=(path,) if path else (),
        timestamp=to_micros(item.updated_at),
        anchor=f"{path}/{item.key}" if path else item.key,
    )


def item_text(value: dict[str, Any]) -> str:
    """The value's text when it is only text (and a label), else the value as JSON."""
    rest = set(value) - _LABEL_KEYS
    if len(rest) == 1:
        (key,) = rest
        inner = value[key]
        if key in _TEXT_KEYS and isinstance(inner, str) and inner.strip():
            return inner.strip()
        if key in _TEXT_KEYS and isinstance(inner, dict):
            return item_text(inner)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
