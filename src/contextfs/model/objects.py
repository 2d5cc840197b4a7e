"""Memory objects: atoms, their snapshot entries, and molecules.

Identity rules (DESIGN.md section 3): an atom *is* its type and content, so the
same fact stated twice is one atom. Relevance, time, source, tags and the tier
texts are the atom's :class:`AtomEntry` in a snapshot -- changing them changes
the snapshot, not the atom. Every id covers the object's whole canonical
encoding, including the type's kind and constraints (the seed hashed
``str(type)`` and so lost both).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, lru_cache
from typing import Any

import msgspec

from ..errors import CorruptObjectError, InvalidInputError
from . import canonical
from .canonical import Metadata, check_text
from .ids import ObjectId, object_digest, to_hex
from .timeutil import from_micros, now_micros, to_micros
from .types import TypeSignature

ATOM = "atom"
MOLECULE = "molecule"
_ATOM_ITEM = 0
_MOLECULE_ITEM = 1

#: Longest content accepted for one atom, in characters.
MAX_CONTENT_LENGTH = 1_000_000


def check_content(content: object) -> str:
    """Return ``content`` if it is acceptable atom text, else raise."""
    if not isinstance(content, str):
        raise InvalidInputError(f"content must be text, got {type(content).__name__}")
    check_text(content, "content")
    if not content.strip():
        raise InvalidInputError("content must not be empty")
    if len(content) > MAX_CONTENT_LENGTH:
        raise InvalidInputError(
            f"content is {len(content)} characters; the limit is {MAX_CONTENT_LENGTH}"
        )
    return content


def check_relevance(value: object, *, upper: float | None = 1.0) -> float:
    """Return ``value`` as a canonical relevance, else raise.

    Stored relevance lives in [0, 1]. A bare :class:`MemoryAtom` -- the seed's
    value type, whose demos score atoms up to 1.4 -- only needs a finite,
    non-negative score (``upper=None``); the repository checks the bound when
    the atom is staged.
    """
    span = f"in [0, {upper:g}]" if upper is not None else "finite and >= 0"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"relevance must be a number {span}, got {value!r}")
    if not (math.isfinite(value) and value >= 0.0 and (upper is None or value <= upper)):
        raise InvalidInputError(f"relevance must be {span}, got {value!r}")
    return 0.0 if value == 0 else float(value)


def check_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Return tags sorted and deduplicated; each must be non-empty single-line text."""
    if isinstance(tags, str):
        raise InvalidInputError(f"tags must be a list of strings, got {tags!r}")
    result = set()
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip() or "\n" in tag:
            raise InvalidInputError(f"tag must be non-empty single-line text, got {tag!r}")
        check_text(tag, "tag")
        result.add(tag)
    return tuple(sorted(result))


def _check_optional_text(value: object, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be text or None, got {type(value).__name__}")
    return check_text(value, what)


def atom_body(type_sig: TypeSignature, content: str) -> bytes:
    """Return the canonical bytes of the atom (type, content)."""
    return canonical.encode([type_sig.to_canonical(), content])


def atom_digest(type_sig: TypeSignature, content: str) -> bytes:
    """Return the raw id of the atom (type, content)."""
    return object_digest(ATOM, atom_body(type_sig, content))


_atom_decoder = msgspec.msgpack.Decoder(tuple[msgspec.Raw, str])


@lru_cache(maxsize=4096)
def _decode_type(raw: bytes) -> TypeSignature:
    """Decode a type's canonical bytes; memoised because few types recur often."""
    return TypeSignature.from_canonical(canonical.decode(raw, kind="type"))


def decode_atom(data: bytes) -> tuple[TypeSignature, str]:
    """Decode an atom object's bytes into its type and content."""
    try:
        raw_type, content = _atom_decoder.decode(data)
        type_sig = _decode_type(bytes(raw_type))
    except (msgspec.DecodeError, CorruptObjectError, InvalidInputError) as exc:
        raise CorruptObjectError(f"atom is not [type, content]: {exc}") from None
    if atom_body(type_sig, content) != data:
        raise CorruptObjectError("atom is not in canonical form")
    return type_sig, content


@dataclass(frozen=True, slots=True, kw_only=True)
class AtomEntry:
    """An atom's place in a snapshot: which atom, and how it is held there."""

    atom_id: bytes
    relevance: float = 1.0
    timestamp: int = 0
    source: str = ""
    tags: tuple[str, ...] = ()
    abstract: str | None = None
    overview: str | None = None

    def encode(self) -> bytes:
        """Return the entry's canonical bytes: its tree item."""
        return canonical.encode(
            [
                self.atom_id,
                _ATOM_ITEM,
                self.relevance,
                self.timestamp,
                self.source,
                list(self.tags),
                self.abstract,
                self.overview,
            ]
        )

    @property
    def key(self) -> bytes:
        """The snapshot key: the atom's id."""
        return self.atom_id


@dataclass(frozen=True, slots=True)
class MoleculeEntry:
    """A molecule's place in a snapshot (molecules carry no entry fields)."""

    molecule_id: bytes

    def encode(self) -> bytes:
        """Return the entry's canonical bytes: its tree item."""
        return canonical.encode([self.molecule_id, _MOLECULE_ITEM])

    @property
    def key(self) -> bytes:
        """The snapshot key: the molecule's id."""
        return self.molecule_id


SnapshotEntry = AtomEntry | MoleculeEntry


#: The rank of an entry that has none (a molecule): below every atom.
NO_RANK = (-1.0, -(2**63))
_RELEVANCE_AT = 36  # 0x98, bin8 header (2), key (32), kind 0 -> float64 marker here
_INT_FORMATS = {
    0xCC: ">B",
    0xCD: ">H",
    0xCE: ">I",
    0xCF: ">Q",
    0xD0: ">b",
    0xD1: ">h",
    0xD2: ">i",
    0xD3: ">q",
}


def is_molecule_item(item: bytes) -> bool:
    """Return True if an encoded entry holds a molecule (read without decoding)."""
    return item[0] == 0x92 and item[35] == _MOLECULE_ITEM


def entry_rank(item: bytes) -> tuple[float, int]:
    """Return ``(relevance, timestamp)`` of an encoded entry without decoding it.

    Tree nodes summarise their subtrees by these two values, which must be
    read for every item written; the canonical layout puts them at fixed
    places (see docs/FORMAT.md), so a few byte reads replace a full decode.
    Molecule entries have no rank and get :data:`NO_RANK`.
    """
    if item[0] != 0x98 or item[35] != _ATOM_ITEM or item[_RELEVANCE_AT] != 0xCB:
        return NO_RANK
    (relevance,) = struct.unpack_from(">d", item, _RELEVANCE_AT + 1)
    marker = item[_RELEVANCE_AT + 9]
    if marker <= 0x7F:
        return relevance, marker
    if marker >= 0xE0:
        return relevance, marker - 0x100
    (timestamp,) = struct.unpack_from(_INT_FORMATS[marker], item, _RELEVANCE_AT + 10)
    return relevance, timestamp


def decode_entry(data: bytes) -> SnapshotEntry:
    """Decode a tree item into the entry it encodes."""
    value = canonical.decode(data, kind="entry")
    if not isinstance(value, list) or len(value) < 2 or not isinstance(value[0], bytes):
        raise CorruptObjectError("snapshot entry is malformed")
    if value[1] == _MOLECULE_ITEM and len(value) == 2:
        return MoleculeEntry(value[0])
    if value[1] != _ATOM_ITEM or len(value) != 8:
        raise CorruptObjectError("snapshot entry has an unknown shape")
    _, _, relevance, timestamp, source, tags, abstract, overview = value
    if not (
        isinstance(relevance, float)
        and isinstance(timestamp, int)
        and isinstance(source, str)
        and isinstance(tags, list)
        and all(isinstance(tag, str) for tag in tags)
        and (abstract is None or isinstance(abstract, str))
        and (overview is None or isinstance(overview, str))
    ):
        raise CorruptObjectError("snapshot entry has a field of the wrong type")
    return AtomEntry(
        atom_id=value[0],
        relevance=relevance,
        timestamp=timestamp,
        source=source,
        tags=tuple(tags),
        abstract=abstract,
        overview=overview,
    )


@dataclass(frozen=True)
class MemoryAtom:
    """One typed piece of memory, with the entry fields it is held with.

    The positional fields are the seed's: ``MemoryAtom(content, type_sig,
    timestamp, source_hash, relevance_score)``. A naive ``timestamp`` is read
    as local time and kept in UTC.
    """

    content: str
    type_sig: TypeSignature
    timestamp: datetime = field(default_factory=lambda: from_micros(now_micros()))
    source_hash: str = ""
    relevance_score: float = 1.0
    tags: tuple[str, ...] = field(default=(), kw_only=True)
    abstract: str | None = field(default=None, kw_only=True)
    overview: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        check_content(self.content)
        if not isinstance(self.type_sig, TypeSignature):
            raise InvalidInputError(f"type_sig must be a TypeSignature, got {self.type_sig!r}")
        if not isinstance(self.timestamp, datetime):
            raise InvalidInputError(f"timestamp must be a datetime, got {self.timestamp!r}")
        if not isinstance(self.source_hash, str):
            raise InvalidInputError(f"source must be text, got {self.source_hash!r}")
        check_text(self.source_hash, "source")
        object.__setattr__(self, "timestamp", from_micros(to_micros(self.timestamp)))
        object.__setattr__(
            self, "relevance_score", check_relevance(self.relevance_score, upper=None)
        )
        object.__setattr__(self, "tags", check_tags(self.tags))
        _check_optional_text(self.abstract, "abstract")
        _check_optional_text(self.overview, "overview")

    @cached_property
    def body(self) -> bytes:
        """The atom's canonical bytes (type and content)."""
        return atom_body(self.type_sig, self.content)

    @cached_property
    def digest(self) -> bytes:
        """The raw 32-byte atom id."""
        return object_digest(ATOM, self.body)

    @property
    def content_hash(self) -> ObjectId:
        """The atom's full id (type + content), as the seed names it."""
        return to_hex(self.digest)

    @property
    def entry(self) -> AtomEntry:
        """The entry this atom is held with in a snapshot."""
        return AtomEntry(
            atom_id=self.digest,
            relevance=self.relevance_score,
            timestamp=to_micros(self.timestamp),
            source=self.source_hash,
            tags=self.tags,
            abstract=self.abstract,
            overview=self.overview,
        )

    @classmethod
    def from_entry(cls, type_sig: TypeSignature, content: str, entry: AtomEntry) -> MemoryAtom:
        """Rebuild the atom held by ``entry``, from values decoded out of a store.

        The values were checked when they were decoded (canonical form, field
        types) and the id is the entry's key, so the constructor's checks and
        re-hashing are skipped: reading a snapshot must not cost a validation
        per atom. ``verify`` is what re-hashes stored objects.
        """
        atom = object.__new__(cls)
        fields = atom.__dict__
        fields["content"] = content
        fields["type_sig"] = type_sig
        fields["timestamp"] = from_micros(entry.timestamp)
        fields["source_hash"] = entry.source
        fields["relevance_score"] = entry.relevance
        fields["tags"] = entry.tags
        fields["abstract"] = entry.abstract
        fields["overview"] = entry.overview
        fields["digest"] = entry.atom_id
        return atom

    def typed_as(self, type_sig: TypeSignature) -> MemoryAtom | None:
        """Return this memory viewed at ``type_sig`` if the types unify, else None."""
        unified = self.type_sig.unify(type_sig)
        if unified is None:
            return None
        return MemoryAtom(
            self.content,
            unified,
            self.timestamp,
            self.source_hash,
            self.relevance_score,
            tags=self.tags,
            abstract=self.abstract,
            overview=self.overview,
        )


Relations = dict[str, tuple[tuple[int, int], ...]]


def _check_relations(relations: Mapping[str, Iterable[Sequence[int]]], size: int) -> Relations:
    if not isinstance(relations, Mapping):
        raise InvalidInputError(f"relations must be a mapping, got {type(relations).__name__}")
    result: Relations = {}
    for name in sorted(relations):
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"relation name must be non-empty text, got {name!r}")
        pairs = []
        for pair in relations[name]:
            if len(pair) != 2 or not all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i < size for i in pair
            ):
                raise InvalidInputError(
                    f"relation {name!r} has a bad edge {pair!r}: "
                    f"expected two atom positions in [0, {size})"
                )
            pairs.append((pair[0], pair[1]))
        result[name] = tuple(pairs)
    return result


@dataclass(frozen=True)
class MemoryMolecule:
    """Atoms bound together by named relations between their positions."""

    atoms: tuple[MemoryAtom, ...]
    relations: Relations = field(default_factory=dict)
    molecule_type: TypeSignature = field(default_factory=lambda: TypeSignature("Molecule"))
    metadata: Metadata = field(default_factory=dict)

    def __post_init__(self) -> None:
        atoms = tuple(self.atoms)
        if not atoms:
            raise InvalidInputError("a molecule needs at least one atom")
        for atom in atoms:
            if not isinstance(atom, MemoryAtom):
                raise InvalidInputError(f"molecule atoms must be MemoryAtoms, got {atom!r}")
        object.__setattr__(self, "atoms", atoms)
        object.__setattr__(self, "relations", _check_relations(self.relations, len(atoms)))
        object.__setattr__(self, "metadata", canonical.normalise_metadata(self.metadata))

    @cached_property
    def digest(self) -> bytes:
        """The raw 32-byte molecule id."""
        return object_digest(MOLECULE, self.encode())

    @property
    def molecule_hash(self) -> ObjectId:
        """The molecule's full id."""
        return to_hex(self.digest)

    @property
    def complexity(self) -> int:
        """Atoms plus relation edges: a rough size of the structure."""
        return len(self.atoms) + sum(len(edges) for edges in self.relations.values())

    def encode(self) -> bytes:
        """Return the molecule's canonical bytes (atom ids, relations, type, metadata)."""
        return molecule_body(
            [atom.digest for atom in self.atoms],
            self.relations,
            self.molecule_type,
            self.metadata,
        )

    def project(self, type_filter: TypeSignature) -> MemoryMolecule | None:
        """Keep the atoms whose type unifies with ``type_filter``, and their relations.

        Returns None when no atom is left.
        """
        kept = [i for i, atom in enumerate(self.atoms) if atom.type_sig.unify(type_filter)]
        if not kept:
            return None
        position = {old: new for new, old in enumerate(kept)}
        relations = {
            name: tuple(
                (position[i], position[j]) for i, j in edges if i in position and j in position
            )
            for name, edges in self.relations.items()
        }
        return MemoryMolecule(
            tuple(self.atoms[i] for i in kept),
            {name: edges for name, edges in relations.items() if edges},
            self.molecule_type,
            dict(self.metadata),
        )


def molecule_body(
    atom_ids: Sequence[bytes],
    relations: Relations,
    molecule_type: TypeSignature,
    metadata: Metadata,
) -> bytes:
    """Return a molecule's canonical bytes."""
    return canonical.encode(
        [
            list(atom_ids),
            [[name, [list(edge) for edge in relations[name]]] for name in sorted(relations)],
            molecule_type.to_canonical(),
            metadata,
        ]
    )


@dataclass(frozen=True, slots=True)
class StoredMolecule:
    """A molecule as stored: atom ids rather than atoms."""

    atom_ids: tuple[bytes, ...]
    relations: Relations
    molecule_type: TypeSignature
    metadata: Metadata


def decode_molecule(data: bytes) -> StoredMolecule:
    """Decode a molecule object's bytes."""
    value: Any = canonical.decode(data, kind=MOLECULE)
    try:
        atom_ids, relations, type_value, metadata = value
        ids = tuple(atom_ids)
        if not all(isinstance(i, bytes) and len(i) == 32 for i in ids):
            raise ValueError("bad atom id")
        rels = _check_relations(dict(relations), len(ids))
        return StoredMolecule(ids, rels, TypeSignature.from_canonical(type_value), metadata)
    except (ValueError, TypeError) as exc:
        raise CorruptObjectError(f"molecule is malformed: {exc}") from None
