"""Time: stored as integer microseconds since the Unix epoch, UTC; shown local.

Integers give every instant one spelling in the canonical encoding (floats and
ISO strings do not); naive datetimes, as the seed's ``datetime.now()`` makes,
are read as local time and converted, never stored naive.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

from ..errors import InvalidInputError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(moment: datetime) -> int:
    """Return ``moment`` as microseconds since the epoch (naive means local time)."""
    try:
        aware = moment if moment.tzinfo is not None else moment.astimezone()
    except (OverflowError, ValueError):
        raise InvalidInputError(f"time {moment.isoformat()!r} is out of range") from None
    return (aware - _EPOCH) // timedelta(microseconds=1)


def from_micros(micros: int) -> datetime:
    """Return the UTC datetime ``micros`` microseconds after the epoch."""
    try:
        return _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise InvalidInputError(f"time {micros!r} microseconds is out of range") from None


def now_micros() -> int:
    """Return the current time in microseconds since the epoch."""
    return to_micros(datetime.now(UTC))


def format_local(micros: int) -> str:
    """Format a stored instant in the viewer's local time zone, with its offset.

    Instants so close to year 1 or 9999 that the local offset would push them
    out of range are shown in UTC instead.
    """
    moment = from_micros(micros)
    with contextlib.suppress(OverflowError, ValueError):
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S %z")
