"""What each object names: the links transfers follow, verify checks and gc keeps alive.

A commit names its snapshot, its parents and, when crystallised from an op
log, its attribution tree; a tree node its children and, through its leaf
items, atoms and molecules (a merge conflict's sides too); a molecule its
atoms. Leaf items are read at fixed offsets where they can be, since
transfers and garbage collection read every entry of every leaf they visit.
"""

from __future__ import annotations

from typing import Final

from ..errors import InvalidInputError
from ..model.ids import from_hex
from ..model.objects import ATOM, MOLECULE, AtomEntry, SnapshotEntry, decode_entry
from .attribution import ATTRIBUTION_ITEM, decode_attribution, oplog_metadata
from .commits import Commit
from .merge import decode_conflict
from .tree import item_key

_CONFLICT_ITEM: Final = 2  # a MERGE_STATE tree item (see contextfs.history.merge)
#: The first bytes of a plain leaf item: a MessagePack array of 8 (an atom entry) or of
#: 2 (a molecule entry), then the 32-byte key; byte 35 is the entry's tag.
_ATOM_HEAD: Final = b"\x98"
_MOLECULE_HEAD: Final = b"\x92"
_ATOM_TAG: Final = b"\x00"
_MOLECULE_TAG: Final = b"\x01"


def attribution_root(commit: Commit) -> bytes | None:
    """The attribution tree a crystallised commit names, if any."""
    meta = oplog_metadata(commit)
    value = meta.get("attribution") if meta else None
    if not isinstance(value, str):
        return None
    try:
        return from_hex(value)
    except InvalidInputError:
        return None


def entries_of(item: bytes) -> list[SnapshotEntry]:
    """Return the entries a leaf item holds: itself, a merge conflict's sides, or none.

    An attribution-tree item (``[key, 3, actors]``) names no object; it is
    decoded so a malformed one is reported.
    """
    if item[:1] == b"\x93" and item[35:36] == bytes([ATTRIBUTION_ITEM]):
        decode_attribution(item)
        return []
    if item[:1] == b"\x95" and item[35:36] == bytes([_CONFLICT_ITEM]):
        conflict = decode_conflict(item)  # [key, 2, base, ours, theirs]
        sides = (conflict.base, conflict.ours, conflict.theirs)
        return [decode_entry(side) for side in sides if side is not None]
    return [decode_entry(item)]


def item_targets(item: bytes) -> list[tuple[bytes, str]]:
    """Return the ``(id, kind)`` of the objects a leaf item names.

    A plain entry's key is the id it names, read at its fixed offset without
    decoding the entry; merge conflicts and attribution items take the full
    decoder. The entry's other fields are checked by ``contextfs verify``.
    """
    head, tag = item[:1], item[35:36]
    if head == _ATOM_HEAD and tag == _ATOM_TAG:
        return [(item_key(item), ATOM)]
    if head == _MOLECULE_HEAD and tag == _MOLECULE_TAG:
        return [(item_key(item), MOLECULE)]
    return [
        (entry.atom_id, ATOM) if isinstance(entry, AtomEntry) else (entry.molecule_id, MOLECULE)
        for entry in entries_of(item)
    ]


__all__ = ["attribution_root", "entries_of", "item_targets"]
