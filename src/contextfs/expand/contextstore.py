"""Where contexts live: the seed's ``ContextStore`` port, over any ContextFS store.

The seed kept contexts in a dict keyed by a 16-hex-character hash of the base and
atom hashes. Here every context is a ``"context"`` object whose id is the full
SHA-256 of its canonical encoding (DESIGN.md section 2, defects 1 and 2), and
its atoms and molecules are stored beside it as ``"atom"`` and ``"molecule"``
objects, all in one transaction. Lookups accept any unique prefix of at least
four hex characters, as git does, so the seed's 16-character ids still resolve.

Invariant: a stored context's base is always a full id of a stored context, so
every lineage ends at a root and never leaves the store.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol, runtime_checkable

import msgspec

from ..errors import (
    AmbiguousRevisionError,
    CorruptObjectError,
    MissingObjectError,
    UnknownRevisionError,
)
from ..model.context import CONTEXT, CompressedContext, check_context_ref, decode_context
from ..model.ids import (
    ID_HEX_LENGTH,
    MIN_PREFIX_LENGTH,
    ObjectId,
    is_hex_prefix,
    object_digest,
    short,
    to_hex,
)
from ..model.objects import ATOM, MOLECULE, MemoryAtom, atom_body
from ..store.base import Store
from ..store.memory import MemoryStore

__all__ = ["ContextStore", "InMemoryContextStore", "ObjectContextStore"]

# Reads only a stored context's first field (its base); the rest is skipped unparsed.
_base_decoder = msgspec.msgpack.Decoder(
    tuple[str | None, msgspec.Raw, msgspec.Raw, msgspec.Raw, msgspec.Raw]
)


@runtime_checkable
class ContextStore(Protocol):
    """The seed's store of contexts, keyed by context hash."""

    def get(self, hash_key: str) -> CompressedContext | None:
        """Return the context named by ``hash_key``, or None if there is none."""
        ...

    def put(self, context: CompressedContext) -> str:
        """Store ``context`` and return its full hash."""
        ...

    def get_lineage(self, hash_key: str) -> list[str]:
        """Return the context hashes from the root down to ``hash_key``."""
        ...


class ObjectContextStore:
    """A :class:`ContextStore` kept as objects in a ContextFS :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def store(self) -> Store:
        """The object store underneath."""
        return self._store

    def resolve(self, hash_key: str) -> ObjectId | None:
        """Return the full id of the context ``hash_key`` names, or None.

        Args:
            hash_key: A full 64-hex id or a prefix of at least 4 hex characters.
                Objects of other kinds (atoms, molecules) never match.

        Raises:
            InvalidInputError: ``hash_key`` is not 4-64 lowercase hex characters.
            AmbiguousRevisionError: The prefix matches more than one context.
        """
        check_context_ref(hash_key)
        if len(hash_key) == ID_HEX_LENGTH:
            found = self._store.get_object(bytes.fromhex(hash_key))
            return ObjectId(hash_key) if found is not None and found.kind == CONTEXT else None
        matches = self._store.find_ids(hash_key, 5, [CONTEXT])
        if len(matches) > 1:
            names = ", ".join(short(oid) for oid in matches[:4])
            raise AmbiguousRevisionError(
                f"context prefix {hash_key!r} is ambiguous: it matches {names}"
                + (", ..." if len(matches) > 4 else "")
            )
        return to_hex(matches[0]) if matches else None

    def get(self, hash_key: str) -> CompressedContext | None:
        """Return the context named by a full id or unique prefix, or None.

        Raises:
            InvalidInputError: ``hash_key`` is not 4-64 lowercase hex characters.
            AmbiguousRevisionError: The prefix matches more than one context.
            CorruptObjectError: The stored bytes do not match their id or do not decode.
        """
        oid = self.resolve(hash_key)
        if oid is None:
            return None
        return decode_context(self._load(oid))

    def put(self, context: CompressedContext) -> str:
        """Store a context with its atoms and molecules, in one transaction.

        A base given as a unique prefix is stored as the full id, so the returned
        hash is that of the stored form.

        Returns:
            The stored context's full 64-hex id.

        Raises:
            UnknownRevisionError: The base is not a context in this store.
            AmbiguousRevisionError: The base prefix matches more than one context.
        """
        with self._store.transaction():
            if context.base_hash is not None:
                base = self.resolve(context.base_hash)
                if base is None:
                    raise UnknownRevisionError(
                        f"base context {context.base_hash!r} is not in the store; "
                        "put the base before the contexts built on it"
                    )
                if base != context.base_hash:
                    context = dataclasses.replace(context, base_hash=base)
            data = context.encode()
            digest = object_digest(CONTEXT, data)
            self._store.put_objects(_objects_of(context, digest, data))
        return to_hex(digest)

    def get_lineage(self, hash_key: str) -> list[str]:
        """Return the full ids from the root down to the context ``hash_key`` names.

        Walks base links in a loop, reading only each context's base field, so a
        history of any depth works.

        Raises:
            UnknownRevisionError: No context matches ``hash_key``.
            MissingObjectError: A base on the way is not in the store.
        """
        oid = self.resolve(hash_key)
        if oid is None:
            raise UnknownRevisionError(f"no context matches {hash_key!r}")
        lineage: list[str] = [oid]
        seen: set[str] = {oid}
        current: str = oid
        while (base := self._base_of(current)) is not None:
            parent = self.resolve(base)
            if parent is None:
                raise MissingObjectError(
                    f"context {short(current)} names base {base!r}, which is not in the store"
                )
            if parent in seen:  # impossible for honest hashes; refuse to loop forever
                raise CorruptObjectError(f"context {short(parent)} is its own ancestor")
            seen.add(parent)
            lineage.append(parent)
            current = parent
        lineage.reverse()
        return lineage

    def _load(self, oid: str) -> bytes:
        raw = bytes.fromhex(oid)
        found = self._store.get_object(raw)
        if found is None or found.kind != CONTEXT:
            raise MissingObjectError(f"context {oid} is not in the store")
        if object_digest(CONTEXT, found.data) != raw:
            raise CorruptObjectError(f"context {oid} does not hash to its id")
        return found.data

    def _base_of(self, oid: str) -> str | None:
        try:
            base, *_ = _base_decoder.decode(self._load(oid))
        except msgspec.MsgspecError as exc:
            raise CorruptObjectError(f"context {oid} does not decode: {exc}") from None
        if base is not None and (len(base) < MIN_PREFIX_LENGTH or not is_hex_prefix(base)):
            raise CorruptObjectError(f"context {oid} has a malformed base {base!r}")
        return base


def _objects_of(
    context: CompressedContext, digest: bytes, data: bytes
) -> list[tuple[bytes, str, bytes]]:
    """Every object a context brings: its atoms, molecules, their atoms, itself."""
    objects: dict[bytes, tuple[bytes, str, bytes]] = {}

    def add_atom(atom: MemoryAtom) -> None:
        objects[atom.digest] = (atom.digest, ATOM, atom_body(atom.type_sig, atom.content))

    for atom in context.delta_atoms:
        add_atom(atom)
    for molecule in context.delta_molecules:
        for atom in molecule.atoms:
            add_atom(atom)
        objects[molecule.digest] = (molecule.digest, MOLECULE, molecule.encode())
    objects[digest] = (digest, CONTEXT, data)
    return list(objects.values())


class InMemoryContextStore(ObjectContextStore):
    """An :class:`ObjectContextStore` over a fresh :class:`MemoryStore`, as in the seed."""

    def __init__(self) -> None:
        super().__init__(MemoryStore())
