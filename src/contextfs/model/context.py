"""The seed's commit payload, :class:`CompressedContext`, and its identity.

:class:`CompressedContext` is the seed's description of one change: a base, the
atoms and molecules it adds, the ids it removes and free metadata. This module
owns its identity. The seed keyed a context on its base and atom hashes only,
so two contexts differing in removed ids, molecules, entry fields or metadata
shared one key (DESIGN.md section 2, defect 2). Here :meth:`CompressedContext.encode`
is one canonical spelling of *everything* in the value, and
:attr:`CompressedContext.context_hash` is the full SHA-256 over it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import msgspec

from ..errors import CorruptObjectError, InvalidInputError
from . import canonical
from .canonical import Metadata
from .ids import (
    ID_HEX_LENGTH,
    MIN_PREFIX_LENGTH,
    ObjectId,
    is_hex_prefix,
    object_digest,
    to_hex,
)
from .objects import MemoryAtom, MemoryMolecule, Relations
from .timeutil import from_micros, to_micros
from .types import TypeSignature

__all__ = ["CONTEXT", "CompressedContext", "check_context_ref", "decode_context"]

#: The object kind of a stored context; part of its id.
CONTEXT = "context"


def check_context_ref(value: object, what: str = "context hash") -> str:
    """Return ``value`` if it can name a context: 4-64 lowercase hex characters.

    Raises:
        InvalidInputError: ``value`` is not such a string.
    """
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a hex string, got {value!r}")
    if len(value) < MIN_PREFIX_LENGTH or not is_hex_prefix(value):
        raise InvalidInputError(
            f"{what} must be {MIN_PREFIX_LENGTH}-{ID_HEX_LENGTH} lowercase hex characters, "
            f"got {value!r}"
        )
    return value


def _check_full_id(value: object, what: str) -> str:
    if not (isinstance(value, str) and len(value) == ID_HEX_LENGTH and is_hex_prefix(value)):
        raise InvalidInputError(f"{what} must be a full 64-hex id, got {value!r}")
    return value


def _checked_list(values: Iterable[Any], cls: type[Any], what: str) -> list[Any]:
    if isinstance(values, str | bytes):
        raise InvalidInputError(f"{what} must be a list of {cls.__name__}, got {values!r}")
    try:
        result = list(values)
    except TypeError:
        raise InvalidInputError(
            f"{what} must be a list of {cls.__name__}, got {values!r}"
        ) from None
    for value in result:
        if not isinstance(value, cls):
            raise InvalidInputError(f"{what} must hold {cls.__name__} values, got {value!r}")
    return result


@dataclass(frozen=True, slots=True)
class CompressedContext:
    """One change to memory: the seed's commit payload.

    Positional fields are the seed's. Sequences are copied on construction, and
    ``compression_metadata`` is checked and stored with sorted keys.

    Attributes:
        base_hash: The context this one changes (a full id, or a unique prefix of
            one), or None for a root.
        delta_atoms: Atoms added; an atom whose hash is already present replaces
            the old entry (its relevance, time, source...). Later wins.
        delta_molecules: Molecules added.
        removed_hashes: Full ids of atoms or molecules to drop from the base.
        compression_metadata: Free JSON-like metadata.

    Raises:
        InvalidInputError: On construction, if any field is malformed.
    """

    base_hash: str | None
    delta_atoms: list[MemoryAtom] = field(default_factory=list)
    delta_molecules: list[MemoryMolecule] = field(default_factory=list)
    removed_hashes: set[str] = field(default_factory=set)
    compression_metadata: Metadata = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.base_hash is not None:
            check_context_ref(self.base_hash, "base_hash")
        setattr_ = object.__setattr__
        setattr_(self, "delta_atoms", _checked_list(self.delta_atoms, MemoryAtom, "delta_atoms"))
        setattr_(
            self,
            "delta_molecules",
            _checked_list(self.delta_molecules, MemoryMolecule, "delta_molecules"),
        )
        removed = _checked_list(self.removed_hashes, str, "removed_hashes")
        setattr_(self, "removed_hashes", {_check_full_id(h, "removed hash") for h in removed})
        metadata = self.compression_metadata
        if type(metadata) is dict and not metadata:
            metadata = {}  # most deltas carry none: copy without the walk
        else:
            metadata = canonical.normalise_metadata(metadata, what="compression_metadata")
        setattr_(self, "compression_metadata", metadata)

    @property
    def is_root(self) -> bool:
        """Whether this context starts a history (it has no base)."""
        return self.base_hash is None

    @property
    def delta_size(self) -> int:
        """How many things this context changes: atoms + molecules + removals."""
        return len(self.delta_atoms) + len(self.delta_molecules) + len(self.removed_hashes)

    def encode(self) -> bytes:
        """Return the canonical bytes of the whole value.

        The encoding is ``[base, [atom...], [molecule...], sorted removed ids,
        metadata]``; an atom is ``[type, content, relevance, time (UTC micros),
        source, tags, abstract, overview]``, a molecule ``[[atom...], relations,
        type, metadata]``. Atom and molecule order is kept: a later duplicate wins.
        """
        return canonical.encode(
            [
                self.base_hash,
                [_atom_item(atom) for atom in self.delta_atoms],
                [_molecule_item(molecule) for molecule in self.delta_molecules],
                sorted(self.removed_hashes),
                self.compression_metadata,
            ]
        )

    @property
    def digest(self) -> bytes:
        """The raw 32-byte id: SHA-256 over the kind tag and :meth:`encode`."""
        return object_digest(CONTEXT, self.encode())

    @property
    def context_hash(self) -> ObjectId:
        """The full 64-hex id; it changes when anything in the context changes."""
        return to_hex(self.digest)


def _atom_item(atom: MemoryAtom) -> list[object]:
    return [
        atom.type_sig.to_canonical(),
        atom.content,
        atom.relevance_score,
        to_micros(atom.timestamp),
        atom.source_hash,
        list(atom.tags),
        atom.abstract,
        atom.overview,
    ]


def _molecule_item(molecule: MemoryMolecule) -> list[object]:
    relations = molecule.relations
    return [
        [_atom_item(atom) for atom in molecule.atoms],
        [[name, [list(edge) for edge in relations[name]]] for name in sorted(relations)],
        molecule.molecule_type.to_canonical(),
        molecule.metadata,
    ]


# The shape of an encoded context, checked by msgspec in one C pass. Types are
# kept raw so each distinct type is decoded once (see _decode_type); the final
# re-encoding check in decode_context makes every part canonical.
_AtomItem = tuple[msgspec.Raw, str, float, int, str, list[str], str | None, str | None]
_MoleculeItem = tuple[list[_AtomItem], list[tuple[str, list[list[int]]]], msgspec.Raw, Metadata]
_Shape = tuple[str | None, list[_AtomItem], list[_MoleculeItem], list[str], Metadata]
_shape_decoder = msgspec.msgpack.Decoder(_Shape)
_TYPE_CACHE_SIZE = 4096
_type_cache: dict[bytes, TypeSignature] = {}


def _decode_type(raw: msgspec.Raw) -> TypeSignature:
    key = bytes(raw)
    found = _type_cache.get(key)
    if found is None:
        found = TypeSignature.from_canonical(canonical.decode(key, kind="type signature"))
        if len(_type_cache) >= _TYPE_CACHE_SIZE:
            _type_cache.clear()
        _type_cache[key] = found
    return found


def _decode_atom_item(item: _AtomItem) -> MemoryAtom:
    type_raw, content, relevance, micros, source, tags, abstract, overview = item
    return MemoryAtom(
        content,
        _decode_type(type_raw),
        from_micros(micros),
        source,
        relevance,
        tags=tuple(tags),
        abstract=abstract,
        overview=overview,
    )


def _decode_molecule_item(item: _MoleculeItem) -> MemoryMolecule:
    atoms, relations, type_raw, metadata = item
    # MemoryMolecule checks and converts the edges (lists here) into position
    # pairs; a bad one becomes CorruptObjectError.
    return MemoryMolecule(
        tuple(_decode_atom_item(atom) for atom in atoms),
        cast("Relations", dict(relations)),
        _decode_type(type_raw),
        metadata,
    )


def decode_context(data: bytes) -> CompressedContext:
    """Decode bytes made by :meth:`CompressedContext.encode`.

    Args:
        data: The canonical bytes.

    Returns:
        The context; its :meth:`~CompressedContext.encode` gives back ``data``.

    Raises:
        CorruptObjectError: The bytes do not decode to a context, or are not the
            one canonical spelling of the context they decode to.
    """
    try:
        base, atoms, molecules, removed, metadata = _shape_decoder.decode(data)
        context = CompressedContext(
            base,
            [_decode_atom_item(atom) for atom in atoms],
            [_decode_molecule_item(molecule) for molecule in molecules],
            set(removed),
            metadata,
        )
    except msgspec.MsgspecError as exc:
        raise CorruptObjectError(f"context does not decode: {exc}") from None
    except (ValueError, TypeError, OverflowError) as exc:
        # InvalidInputError is a ValueError: a field held a value no constructor accepts.
        raise CorruptObjectError(f"context is malformed: {exc}") from None
    if context.encode() != data:
        raise CorruptObjectError("context is not in canonical form")
    return context
