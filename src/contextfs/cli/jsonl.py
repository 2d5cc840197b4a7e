"""The JSON Lines format of ``import`` and ``export``: one atom per line.

Each line is a JSON object::

    {"id": "...", "type": "String", "content": "...", "relevance": 0.9,
     "timestamp": "2024-05-01T12:00:00.000000Z", "source": "", "tags": [],
     "abstract": null, "overview": null}

Only ``content`` is required. ``type`` defaults to ``String`` and is a type
string, or -- for a signature whose kind or constraints its printed form cannot
carry -- the canonical list of :meth:`TypeSignature.to_canonical`. A naive
``timestamp`` is UTC; a missing one is the import's time. ``id`` is optional
and, when present, must be the id the type and content hash to, so an edited
export cannot silently become different atoms. Unknown keys are refused.

:func:`encode_atom` and :func:`decode_line` are exact inverses on every atom:
an export imported again gives the same atom ids and the same entries.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from ..errors import InvalidInputError
from ..model.objects import MemoryAtom, check_relevance
from ..model.types import TypeSignature
from .render import iso_utc

FIELDS = (
    "id",
    "type",
    "content",
    "relevance",
    "timestamp",
    "source",
    "tags",
    "abstract",
    "overview",
)
DEFAULT_TYPE = "String"


class ImportLineError(InvalidInputError):
    """A line of an import file is not an acceptable atom."""

    def __init__(self, line: int, problem: str, filename: str | None = None) -> None:
        where = f"{filename}: line {line}" if filename else f"line {line}"
        super().__init__(f"{where}: {problem}; nothing was imported")
        self.line = line
        self.problem = problem


def type_value(type_sig: TypeSignature) -> str | list[object]:
    """Return the printed type if it parses back to ``type_sig``, else the canonical list."""
    printed = str(type_sig)
    if TypeSignature.parse(printed) == type_sig:
        return printed
    return type_sig.to_canonical()


def encode_atom(atom: MemoryAtom) -> str:
    """Return the one JSON Lines record (without newline) for ``atom``."""
    record = {
        "id": atom.content_hash,
        "type": type_value(atom.type_sig),
        "content": atom.content,
        "relevance": atom.relevance_score,
        "timestamp": iso_utc(atom.timestamp),
        "source": atom.source_hash,
        "tags": list(atom.tags),
        "abstract": atom.abstract,
        "overview": atom.overview,
    }
    return json.dumps(record, ensure_ascii=False)


def decode_line(
    raw: bytes | str,
    line: int,
    *,
    now: datetime,
    types: dict[str, TypeSignature] | None = None,
    filename: str | None = None,
) -> MemoryAtom | None:
    """Parse line number ``line``; None for a blank line.

    Args:
        raw: The line's bytes (UTF-8) or text, without its newline.
        line: Its 1-based number, for the error message.
        now: The timestamp of an atom that gives none.
        types: A cache of parsed type strings, shared across lines.
        filename: The file's name, for the error message.

    Raises:
        ImportLineError: the line is not valid UTF-8, not a JSON object, or
            not an acceptable atom; the message names the line and the problem.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise ImportLineError(line, f"not valid UTF-8 (byte {exc.start})", filename) from None
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportLineError(
            line, f"not valid JSON: {exc.msg} at column {exc.colno}", filename
        ) from None
    except ValueError as exc:  # e.g. an integer longer than Python's digit limit
        raise ImportLineError(line, f"not valid JSON: {exc}", filename) from None
    except RecursionError:
        raise ImportLineError(line, "not valid JSON: nested too deeply", filename) from None
    if not isinstance(value, dict):
        raise ImportLineError(line, f"expected a JSON object, got {_json_type(value)}", filename)
    try:
        return _atom(value, now, types if types is not None else {})
    except (InvalidInputError, OverflowError) as exc:
        # OverflowError: a timestamp whose offset moves it outside datetime's range.
        raise ImportLineError(line, str(exc), filename) from None


def read_atoms(
    lines: Iterable[bytes | str],
    *,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
    filename: str | None = None,
) -> list[MemoryAtom]:
    """Parse every line, in order; stops at the first bad line.

    ``progress`` is called with the number of lines read, every 1,000 lines.

    Raises:
        ImportLineError: naming the first bad line.
    """
    moment = now if now is not None else datetime.now(UTC)
    types: dict[str, TypeSignature] = {}
    atoms: list[MemoryAtom] = []
    for number, raw in enumerate(lines, 1):
        atom = decode_line(raw, number, now=moment, types=types, filename=filename)
        if atom is not None:
            atoms.append(atom)
        if progress is not None and number % 1000 == 0:
            progress(number)
    return atoms


def _atom(value: dict[str, object], now: datetime, types: dict[str, TypeSignature]) -> MemoryAtom:
    unknown = sorted(set(value) - set(FIELDS))
    if unknown:
        raise InvalidInputError(f"unknown field {unknown[0]!r} (known: {', '.join(FIELDS)})")
    if "content" not in value:
        raise InvalidInputError("'content' is required")
    atom = MemoryAtom(
        _text(value["content"], "content"),
        _type(value.get("type", DEFAULT_TYPE), types),
        _timestamp(value.get("timestamp"), now),
        _text(value.get("source", ""), "source"),
        _relevance(value.get("relevance", 1.0)),
        tags=_tags(value.get("tags", [])),
        abstract=_optional_text(value.get("abstract"), "abstract"),
        overview=_optional_text(value.get("overview"), "overview"),
    )
    expected = value.get("id")
    if expected is not None and expected != atom.content_hash:
        raise InvalidInputError(
            f"'id' is {expected!r} but the type and content hash to {atom.content_hash!r}"
        )
    return atom


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{what!r} must be a string, got {_json_type(value)}")
    return value


def _optional_text(value: object, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"{what!r} must be a string or null, got {_json_type(value)}")
    return value


def _type(value: object, types: dict[str, TypeSignature]) -> TypeSignature:
    if isinstance(value, str):
        found = types.get(value)
        if found is None:
            found = types[value] = TypeSignature.parse(value)
        return found
    if isinstance(value, list):
        return TypeSignature.from_canonical(value)
    raise InvalidInputError(
        f"'type' must be a type string or a canonical type list, got {_json_type(value)}"
    )


def _timestamp(value: object, now: datetime) -> datetime:
    if value is None:
        return now
    if not isinstance(value, str):
        raise InvalidInputError(f"'timestamp' must be an ISO 8601 string, got {_json_type(value)}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(f"'timestamp' is not an ISO 8601 time: {value!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _relevance(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"'relevance' must be a number in [0, 1], got {value!r}")
    if isinstance(value, int) and not 0 <= value <= 1:
        # Checked here: float() of a huge integer would overflow before the range check.
        raise InvalidInputError(f"relevance must be in [0, 1], got {value!r}")
    return check_relevance(value)


def _tags(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise InvalidInputError(f"'tags' must be an array of strings, got {value!r}")
    return tuple(value)
