"""The ``context`` domain: op-log operations that edit a memory snapshot.

Four operations, each a JSON object with an ``op`` field:

* ``add_atom``: ``content``, and optionally ``type`` (default ``String``),
  ``relevance``, ``timestamp`` (microseconds, UTC; default: the op's
  ``created_at``), ``source``, ``tags``, ``abstract``, ``overview``. Staging
  an atom already held replaces its entry, as :meth:`Repository.add` does.
* ``remove_atom``: ``id``, the full id of an atom or molecule.
* ``set_fields``: ``id`` and ``fields``, a map of entry fields to new values.
* ``add_molecule``: ``atoms`` (a list of ``add_atom`` bodies), optionally
  ``relations``, ``type`` and ``metadata``.

:func:`collapse` applies ops, already in merge order, to the entries they
touch and returns the change to write: the same ops on the same snapshot give
the same change on every machine. An op that no longer applies (removing or
editing an entry that is gone) is skipped and reported, never an error, since
a concurrent op from another actor can legitimately get there first.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInputError
from ..model.ids import from_hex, is_hex_prefix
from ..model.objects import (
    ATOM,
    MOLECULE,
    AtomEntry,
    MemoryAtom,
    MemoryMolecule,
    MoleculeEntry,
    check_relevance,
    check_tags,
    decode_entry,
)
from ..model.timeutil import from_micros, now_micros
from ..model.types import TypeSignature
from .entry import OpEntry, iso_to_micros

CONTEXT_DOMAIN = "context"
ADD_ATOM = "add_atom"
REMOVE_ATOM = "remove_atom"
SET_FIELDS = "set_fields"
ADD_MOLECULE = "add_molecule"
OP_NAMES = (ADD_ATOM, REMOVE_ATOM, SET_FIELDS, ADD_MOLECULE)

_ATOM_KEYS = frozenset(
    {"content", "type", "relevance", "timestamp", "source", "tags", "abstract", "overview"}
)
_ENTRY_FIELDS = frozenset({"relevance", "timestamp", "source", "tags", "abstract", "overview"})
_OP_KEYS = {
    ADD_ATOM: _ATOM_KEYS | {"op"},
    REMOVE_ATOM: frozenset({"op", "id"}),
    SET_FIELDS: frozenset({"op", "id", "fields"}),
    ADD_MOLECULE: frozenset({"op", "atoms", "relations", "type", "metadata"}),
}

Item = bytes | None
ObjectRecord = tuple[bytes, str, bytes]

#: Types are few and parsing is pure: every op of a session names the same handful.
_parse_type = functools.lru_cache(maxsize=1024)(TypeSignature.parse)


# -- building ops ------------------------------------------------------------------


def add_atom_op(
    content: str,
    type_sig: str = "String",
    *,
    relevance: float = 1.0,
    timestamp: int | None = None,
    source: str = "",
    tags: Iterable[str] = (),
    abstract: str | None = None,
    overview: str | None = None,
) -> dict[str, Any]:
    """Return a checked ``add_atom`` op (``timestamp`` defaults to now)."""
    op: dict[str, Any] = {
        "op": ADD_ATOM,
        "content": content,
        "type": type_sig,
        "relevance": relevance,
        "timestamp": now_micros() if timestamp is None else timestamp,
        "source": source,
        "tags": list(tags),
    }
    if abstract is not None:
        op["abstract"] = abstract
    if overview is not None:
        op["overview"] = overview
    check_context_op(op)
    return op


def remove_atom_op(memory_id: str) -> dict[str, Any]:
    """Return a checked ``remove_atom`` op for an atom or molecule id."""
    op = {"op": REMOVE_ATOM, "id": memory_id}
    check_context_op(op)
    return op


def set_fields_op(atom_id: str, **fields: Any) -> dict[str, Any]:
    """Return a checked ``set_fields`` op: ``set_fields_op(id, relevance=0.9)``."""
    op = {"op": SET_FIELDS, "id": atom_id, "fields": fields}
    check_context_op(op)
    return op


def add_molecule_op(molecule: MemoryMolecule) -> dict[str, Any]:
    """Return a checked ``add_molecule`` op carrying ``molecule`` whole."""
    op = {
        "op": ADD_MOLECULE,
        "atoms": [_atom_body(atom) for atom in molecule.atoms],
        "relations": {name: [list(e) for e in edges] for name, edges in molecule.relations.items()},
        "type": str(molecule.molecule_type),
        "metadata": molecule.metadata,
    }
    check_context_op(op)
    return op


def _atom_body(atom: MemoryAtom) -> dict[str, Any]:
    return {
        "content": atom.content,
        "type": str(atom.type_sig),
        "relevance": atom.relevance_score,
        "timestamp": atom.entry.timestamp,
        "source": atom.source_hash,
        "tags": list(atom.tags),
        "abstract": atom.abstract,
        "overview": atom.overview,
    }


# -- checking and reading ops ------------------------------------------------------


def check_context_op(op: Mapping[str, Any], *, default_timestamp: int = 0) -> None:
    """Raise InvalidInputError unless ``op`` is a well-formed context op.

    Checking builds the very objects applying would, so an op that passes
    always applies (or is skipped as no longer applicable), never fails.
    """
    name = op.get("op")
    if name not in _OP_KEYS:
        raise InvalidInputError(
            f"context op must have 'op' set to one of {', '.join(OP_NAMES)}, got {name!r}"
        )
    extra = op.keys() - _OP_KEYS[name]
    if extra:
        raise InvalidInputError(f"{name} op has unknown field(s): {', '.join(sorted(extra))}")
    if name == ADD_ATOM:
        _atom_from(op, default_timestamp)
    elif name == REMOVE_ATOM:
        _key_of(op)
    elif name == SET_FIELDS:
        _key_of(op)
        _fields_of(op)
    else:
        _molecule_from(op, default_timestamp)


def _key_of(op: Mapping[str, Any]) -> bytes:
    value = op.get("id")
    if not isinstance(value, str) or len(value) != 64 or not is_hex_prefix(value.lower()):
        raise InvalidInputError(f"{op['op']} needs 'id', a full 64-digit memory id, got {value!r}")
    return from_hex(value.lower())


def _atom_from(body: Mapping[str, Any], default_timestamp: int) -> MemoryAtom:
    content = body.get("content")
    if not isinstance(content, str):
        raise InvalidInputError(f"an atom needs 'content' text, got {content!r}")
    type_text = body.get("type", "String")
    if not isinstance(type_text, str):
        raise InvalidInputError(f"atom 'type' must be text, got {type_text!r}")
    timestamp = body.get("timestamp", default_timestamp)
    if not isinstance(timestamp, int) or isinstance(timestamp, bool):
        raise InvalidInputError(f"atom 'timestamp' must be integer microseconds, got {timestamp!r}")
    source = body.get("source", "")
    if not isinstance(source, str):
        raise InvalidInputError(f"atom 'source' must be text, got {source!r}")
    for name in ("abstract", "overview"):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise InvalidInputError(f"atom {name!r} must be text or null, got {value!r}")
    relevance = body.get("relevance", 1.0)
    if isinstance(relevance, bool) or not isinstance(relevance, int | float):
        raise InvalidInputError(f"atom 'relevance' must be a number, got {relevance!r}")
    return MemoryAtom(
        content,
        _parse_type(type_text),
        from_micros(timestamp),
        source,
        check_relevance(float(relevance)),
        tags=check_tags(_list_of(body.get("tags", []), "tags")),
        abstract=body.get("abstract"),
        overview=body.get("overview"),
    )


def _list_of(value: object, what: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise InvalidInputError(f"{what} must be a list, got {value!r}")
    return list(value)


def _fields_of(op: Mapping[str, Any]) -> dict[str, Any]:
    fields = op.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise InvalidInputError("set_fields needs 'fields', a non-empty map of entry fields")
    unknown = fields.keys() - _ENTRY_FIELDS
    if unknown:
        raise InvalidInputError(
            f"set_fields cannot set {', '.join(sorted(unknown))}; "
            f"entry fields are {', '.join(sorted(_ENTRY_FIELDS))}"
        )
    result: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "relevance":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInputError(f"relevance must be a number, got {value!r}")
            result[name] = check_relevance(float(value))
        elif name == "timestamp":
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidInputError(f"timestamp must be integer microseconds, got {value!r}")
            from_micros(value)  # in range
            result[name] = value
        elif name == "tags":
            result[name] = check_tags(_list_of(value, "tags"))
        elif name == "source":
            if not isinstance(value, str):
                raise InvalidInputError(f"source must be text, got {value!r}")
            result[name] = value
        else:
            if value is not None and not isinstance(value, str):
                raise InvalidInputError(f"{name} must be text or null, got {value!r}")
            result[name] = value
    return result


def _molecule_from(op: Mapping[str, Any], default_timestamp: int) -> MemoryMolecule:
    atoms = op.get("atoms")
    if not isinstance(atoms, list) or not atoms:
        raise InvalidInputError("add_molecule needs 'atoms', a non-empty list of atoms")
    built = []
    for body in atoms:
        if not isinstance(body, dict):
            raise InvalidInputError(f"molecule atoms must be objects, got {body!r}")
        extra = body.keys() - _ATOM_KEYS
        if extra:
            raise InvalidInputError(f"molecule atom has unknown field(s): {sorted(extra)}")
        built.append(_atom_from(body, default_timestamp))
    type_text = op.get("type", "Molecule")
    if not isinstance(type_text, str):
        raise InvalidInputError(f"molecule 'type' must be text, got {type_text!r}")
    relations = op.get("relations", {})
    metadata = op.get("metadata", {})
    return MemoryMolecule(tuple(built), relations, _parse_type(type_text), metadata)


# -- collapsing ops into a change -----------------------------------------------------


@dataclass(slots=True)
class ContextChange:
    """What a run of context ops does to a snapshot.

    ``changes`` maps each touched key to its new tree item (None: removed);
    ``objects`` are the atoms and molecules to store; ``touched`` names the
    actors whose ops decided each key; ``skipped`` lists ops that no longer
    applied, with why.
    """

    changes: dict[bytes, Item] = field(default_factory=dict)
    objects: list[ObjectRecord] = field(default_factory=list)
    touched: dict[bytes, set[str]] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    applied: int = 0


def _default_time(entry: OpEntry) -> int:
    """The time an atom without a ``timestamp`` gets: its op's ``created_at``."""
    op = entry["domain_op"]
    bodies = op.get("atoms", []) if op["op"] == ADD_MOLECULE else [op]
    if all("timestamp" in body for body in bodies):
        return 0
    return iso_to_micros(entry["created_at"])


def referenced_keys(entries: Iterable[OpEntry]) -> list[bytes]:
    """Return the existing entries that ``remove_atom`` and ``set_fields`` ops read."""
    keys = {
        _key_of(e["domain_op"])
        for e in entries
        if e["domain_op"].get("op") in (REMOVE_ATOM, SET_FIELDS) and "redacted" not in e
    }
    return sorted(keys)


def collapse(
    entries: Sequence[OpEntry], current: Callable[[list[bytes]], Mapping[bytes, bytes]]
) -> ContextChange:
    """Apply context ops, already in merge order, to the snapshot ``current`` reads.

    Args:
        entries: ops of the ``context`` domain, in :func:`~.entry.merge_key` order.
        current: returns the snapshot's items for the keys asked (absent keys left out).
    """
    result = ContextChange()
    existing = current(referenced_keys(entries))
    state: dict[bytes, Item] = dict(existing)

    def put(key: bytes, item: Item, actor: str) -> None:
        state[key] = item
        result.changes[key] = item
        result.touched.setdefault(key, set()).add(actor)

    for entry in entries:
        if "redacted" in entry:  # its text was purged: nothing left to apply
            result.skipped.append((entry["op_id"], "redacted by a purge"))
            continue
        op, actor = entry["domain_op"], entry["actor_id"]
        name = op["op"]
        default_time = _default_time(entry) if name in (ADD_ATOM, ADD_MOLECULE) else 0
        if name == ADD_ATOM:
            atom = _atom_from(op, default_time)
            result.objects.append((atom.digest, ATOM, atom.body))
            put(atom.digest, atom.entry.encode(), actor)
        elif name == ADD_MOLECULE:
            molecule = _molecule_from(op, default_time)
            result.objects.append((molecule.digest, MOLECULE, molecule.encode()))
            for atom in molecule.atoms:
                result.objects.append((atom.digest, ATOM, atom.body))
                put(atom.digest, atom.entry.encode(), actor)
            put(molecule.digest, MoleculeEntry(molecule.digest).encode(), actor)
        else:
            key = _key_of(op)
            item = state.get(key)
            if item is None:
                result.skipped.append((entry["op_id"], f"{name}: {key.hex()[:12]} is not held"))
                continue
            if name == REMOVE_ATOM:
                put(key, None, actor)
            else:
                held = decode_entry(item)
                if not isinstance(held, AtomEntry):
                    result.skipped.append(
                        (entry["op_id"], f"set_fields: {key.hex()[:12]} is a molecule")
                    )
                    continue
                put(key, dataclasses.replace(held, **_fields_of(op)).encode(), actor)
        result.applied += 1
    return result


__all__ = [
    "ADD_ATOM",
    "ADD_MOLECULE",
    "CONTEXT_DOMAIN",
    "OP_NAMES",
    "REMOVE_ATOM",
    "SET_FIELDS",
    "ContextChange",
    "add_atom_op",
    "add_molecule_op",
    "check_context_op",
    "collapse",
    "remove_atom_op",
    "set_fields_op",
]
