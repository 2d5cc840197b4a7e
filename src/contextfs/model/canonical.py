"""The one canonical byte encoding of every ContextFS object.

Objects are MessagePack arrays (see ``docs/FORMAT.md``). MessagePack already has
one spelling for each integer and string length; the rules added here remove the
remaining freedom: floats are always float64, ``-0.0`` is written as ``0.0``,
NaN and infinities are refused, map keys are strings written in sorted order,
and text is UTF-8 exactly as given (no Unicode normalisation). Decoding checks
that re-encoding gives back the same bytes, so a stored object has exactly one
valid spelling.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from ..errors import CorruptObjectError, InvalidInputError

#: A JSON-like value allowed in free metadata.
Metadata = dict[str, Any]

_encoder = msgspec.msgpack.Encoder(order="sorted")
_decoder = msgspec.msgpack.Decoder()

#: Nesting allowed in free metadata; deeper values are refused, never recursed into.
MAX_METADATA_DEPTH = 32


def encode(value: object) -> bytes:
    """Encode an already-normalised value (see :func:`normalise`)."""
    return _encoder.encode(value)


def decode(data: bytes, *, kind: str = "object") -> Any:
    """Decode canonical bytes, refusing anything that is not the one spelling.

    Raises:
        CorruptObjectError: the bytes do not decode, or are not canonical.
    """
    try:
        value = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise CorruptObjectError(f"{kind} does not decode: {exc}") from None
    if _encoder.encode(value) != data:
        raise CorruptObjectError(f"{kind} is not in canonical form")
    return value


def check_text(value: str, what: str) -> str:
    """Return ``value`` if it can be stored as UTF-8 (no lone surrogates), else raise."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"{what} is not valid Unicode text: {value[exc.start : exc.end]!r} "
            f"at position {exc.start}"
        ) from None
    return value


def normalise_float(value: float, *, what: str) -> float:
    """Return ``value`` as a canonical float, refusing NaN and infinities."""
    if not math.isfinite(value):
        raise InvalidInputError(f"{what} must be a finite number, got {value!r}")
    return 0.0 if value == 0 else float(value)


def normalise_metadata(value: object, *, what: str = "metadata") -> Metadata:
    """Check free metadata and return it with every map's keys sorted.

    Allowed values: str, int, float (finite), bool, None, lists and str-keyed
    maps of those, nested at most :data:`MAX_METADATA_DEPTH` deep.

    Raises:
        InvalidInputError: the value holds anything else.
    """
    if not isinstance(value, dict):
        raise InvalidInputError(f"{what} must be a mapping, got {type(value).__name__}")
    result = _normalise_value(value, what, 0)
    assert isinstance(result, dict)
    return result


def _normalise_value(value: object, what: str, depth: int) -> Any:
    if depth > MAX_METADATA_DEPTH:
        raise InvalidInputError(f"{what} is nested deeper than {MAX_METADATA_DEPTH} levels")
    if isinstance(value, str):
        return check_text(value, what)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            raise InvalidInputError(f"{what} holds an integer out of range: {value!r}")
        return value
    if isinstance(value, float):
        return normalise_float(value, what=what)
    if isinstance(value, list | tuple):
        return [_normalise_value(item, what, depth + 1) for item in value]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise InvalidInputError(f"{what} keys must be strings, got {key!r}")
            check_text(key, what)
        return {key: _normalise_value(value[key], what, depth + 1) for key in sorted(value)}
    raise InvalidInputError(f"{what} cannot hold a {type(value).__name__}: {value!r}")
