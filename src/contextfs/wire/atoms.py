"""Memories on the wire: :class:`~contextfs.wire.messages.WireAtom` to and from MemoryAtom."""

from __future__ import annotations

from ..errors import InvalidInputError
from ..model.objects import MemoryAtom
from ..model.timeutil import from_micros, to_micros
from ..model.types import TypeSignature
from .messages import WireAtom


def wire_atom(atom: MemoryAtom) -> WireAtom:
    """A memory as it travels."""
    return WireAtom(
        content=atom.content,
        type=str(atom.type_sig),
        type_sig=atom.type_sig.to_canonical(),
        relevance=atom.relevance_score,
        timestamp=to_micros(atom.timestamp),
        source=atom.source_hash,
        tags=list(atom.tags),
        abstract=atom.abstract,
        overview=atom.overview,
        id=atom.content_hash,
    )


def memory_atom(wire: WireAtom) -> MemoryAtom:
    """A memory from the wire, checked as any input is (its id, if given, must match)."""
    sig = (
        TypeSignature.from_canonical(wire.type_sig)
        if wire.type_sig is not None
        else TypeSignature.parse(wire.type)
    )
    atom = MemoryAtom(
        wire.content,
        sig,
        from_micros(wire.timestamp),
        wire.source,
        wire.relevance,
        tags=tuple(wire.tags),
        abstract=wire.abstract,
        overview=wire.overview,
    )
    if wire.id is not None and wire.id != atom.content_hash:
        raise InvalidInputError(f"atom id {wire.id[:16]} does not match its type and content")
    return atom


__all__ = ["memory_atom", "wire_atom"]
