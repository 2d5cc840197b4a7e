"""mem0 exports: what ``Memory.get_all()`` / ``MemoryClient.get_all()`` return, saved as JSON.

Accepted shapes: a list of memories, or an object whose ``results`` (or
``memories``) is that list. Each memory needs its text in ``memory``; ``id``
becomes the anchor (so re-importing finds it again), ``updated_at`` (else
``created_at``) the timestamp, and ``categories`` plus ``user_id``,
``agent_id`` and ``run_id`` (as ``user:ID``, ...) the tags.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..model.timeutil import to_micros
from .records import ImportedMemory, ImportFileError

#: The type of a memory read from mem0, whose memories are facts about a user or agent.
MEM0_TYPE = "Fact"
_LIST_KEYS = ("results", "memories")
_SCOPES = ("user_id", "agent_id", "run_id")
_decoder = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")


def parse_mem0(text: str, filename: str) -> list[ImportedMemory]:
    """Read the memories of a mem0 export, in file order."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFileError(filename, exc.lineno, f"not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise ImportFileError(filename, None, "nested too deeply to read") from None
    except ValueError as exc:  # a number too long to convert
        raise ImportFileError(filename, None, " ".join(str(exc).split())) from None
    return [
        _memory(value, line, index, filename)
        for index, (line, value) in enumerate(_items(text, filename), 1)
    ]


def _items(text: str, filename: str) -> list[tuple[int, Any]]:
    """The memories of a document already known to be valid JSON, each with its line."""
    pos = _skip(text, 0)
    if text.startswith("[", pos):
        return _array(text, pos)
    if text.startswith("{", pos):
        pos = _skip(text, pos + 1)
        while not text.startswith("}", pos):
            key, pos = _decoder.raw_decode(text, pos)
            pos = _skip(text, _skip(text, pos) + 1)  # past the colon
            if key in _LIST_KEYS and text.startswith("[", pos):
                return _array(text, pos)
            _, pos = _decoder.raw_decode(text, pos)
            pos = _skip(text, pos)
            if text.startswith(",", pos):
                pos = _skip(text, pos + 1)
    raise ImportFileError(
        filename, 1, "not a mem0 export (expected a list of memories, or one under 'results')"
    )


def _array(text: str, pos: int) -> list[tuple[int, Any]]:
    items: list[tuple[int, Any]] = []
    line, counted = 1, 0
    pos = _skip(text, pos + 1)
    while not text.startswith("]", pos):
        line += text.count("\n", counted, pos)
        counted = pos
        value, pos = _decoder.raw_decode(text, pos)
        items.append((line, value))
        pos = _skip(text, pos)
        if text.startswith(",", pos):
            pos = _skip(text, pos + 1)
    return items


def _skip(text: str, pos: int) -> int:
    match = _SPACE.match(text, pos)
    assert match is not None  # the pattern matches the empty string
    return match.end()


def _memory(value: Any, line: int, index: int, filename: str) -> ImportedMemory:
    def fail(problem: str) -> ImportFileError:
        return ImportFileError(filename, line, f"memory {index} {problem}")

    if not isinstance(value, dict):
        raise fail(f"is not an object (got {type(value).__name__})")
    text = value.get("memory")
    if not isinstance(text, str) or not text.strip():
        raise fail("has no text in 'memory'")
    tags: list[str] = []
    categories = value.get("categories") or []
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise fail("has 'categories' that are not a list of strings")
    tags.extend(c.strip() for c in categories if c.strip())
    for scope in _SCOPES:
        owner = value.get(scope)
        if owner is not None and str(owner).strip():
            tags.append(f"{scope.removesuffix('_id')}:{' '.join(str(owner).split())}")
    anchor = value.get("id")
    if anchor is not None and not isinstance(anchor, str | int):
        raise fail("has an 'id' that is neither text nor a number")
    return ImportedMemory(
        content=text.strip(),
        type=MEM0_TYPE,
        line=line,
        tags=tuple(tags),
        timestamp=_timestamp(value, fail),
        anchor=" ".join(str(anchor).split()) if anchor is not None else "",
    )


def _timestamp(value: dict[str, Any], fail: Callable[[str], ImportFileError]) -> int | None:
    for key in ("updated_at", "created_at"):
        stamp = value.get(key)
        if stamp is None:
            continue
        if not isinstance(stamp, str):
            raise fail(f"has a '{key}' that is not text")
        try:
            moment = datetime.fromisoformat(stamp)
        except ValueError:
            raise fail(f"has a '{key}' that is not an ISO 8601 time: {stamp!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return to_micros(moment)
    return None
