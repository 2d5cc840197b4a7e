"""Object ids: full SHA-256 over a kind tag and an object's canonical bytes.

Ids are never truncated for identity (the seed's 64-bit ids collide by the
birthday bound after about four billion objects and can be forged far sooner).
People see short prefixes, as in git, and any unique prefix resolves.
"""

from __future__ import annotations

import hashlib
import re
from typing import NewType

from ..errors import InvalidInputError

#: A full object id: 64 lowercase hex characters.
ObjectId = NewType("ObjectId", str)

ID_BYTES = 32
ID_HEX_LENGTH = 64
SHORT_LENGTH = 12
#: The shortest prefix accepted when resolving an id, as git's minimum abbreviation.
MIN_PREFIX_LENGTH = 4

_HEX = re.compile(r"[0-9a-f]{1,64}")


def object_digest(kind: str, body: bytes) -> bytes:
    """Return ``SHA-256(kind || 0x00 || body)``, the raw 32-byte id of an object."""
    return hashlib.sha256(kind.encode("ascii") + b"\x00" + body).digest()


def to_hex(digest: bytes) -> ObjectId:
    """Spell a raw 32-byte id as an :data:`ObjectId`."""
    return ObjectId(digest.hex())


def from_hex(oid: str) -> bytes:
    """Parse a full 64-hex id into raw bytes.

    Raises:
        InvalidInputError: ``oid`` is not 64 lowercase hex characters.
    """
    if len(oid) != ID_HEX_LENGTH or not is_hex_prefix(oid):
        raise InvalidInputError(f"not a full object id: {oid!r}")
    return bytes.fromhex(oid)


def is_hex_prefix(text: str) -> bool:
    """Return True if ``text`` is 1-64 lowercase hex characters."""
    return _HEX.fullmatch(text) is not None


def short(oid: str | bytes, length: int = SHORT_LENGTH) -> str:
    """Return the abbreviated spelling of an id for people."""
    spelled = oid.hex() if isinstance(oid, bytes) else oid
    return spelled[:length]
