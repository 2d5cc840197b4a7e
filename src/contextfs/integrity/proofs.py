"""Membership and non-membership proofs for a key in a commit's snapshot tree.

A snapshot tree node's id is the RFC 6962 Merkle Tree Hash of its leaf list
``[header, item_1, ..., item_n]`` (see ``docs/FORMAT.md``), so a proof that a
key is (or is not) in a commit is a chain of plain RFC 6962 inclusion proofs,
one per tree level, anchored at the commit:

* the commit's canonical bytes hash to the commit id the verifier trusts, and
  name the tree's root;
* each interior step proves, under the node id the step above established, a
  child entry whose nibble is the key's nibble at that depth; the entry names
  the child's id, which anchors the next step;
* a membership proof ends with the entry itself, proven in its leaf node;
* a non-membership proof ends with the complete leaf list of the deepest node
  on the key's path, which the verifier hashes to that node's id: an interior
  node with no child for the key's nibble, or a leaf without the key.

The verifiers use nothing but :mod:`hashlib`, :mod:`contextfs.model.merkle`
and the canonical decoder, treat every proof as untrusted, and answer False,
never raising, for anything malformed. The proof format is specified in
``docs/FORMAT.md`` (section *Proofs*).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import ContextFSError, CorruptObjectError, InvalidInputError
from ..history.commits import decode_commit
from ..history.tree import (
    FANOUT,
    MAX_DEPTH,
    Node,
    SnapshotTrees,
    item_key,
    node_header,
    node_leaves,
)
from ..model import canonical
from ..model.merkle import inclusion_proof_from_hashes, leaf_hash, root, verify_inclusion

PROOF_FORMAT = "contextfs-proof"
PROOF_VERSION = 1
MEMBERSHIP = "membership"
NON_MEMBERSHIP = "non-membership"

_KEY_SIZE = 32
_COMMIT_PREFIX = b"commit\x00"  # a commit id is SHA-256("commit" || 0x00 || body)
_MAX_PATH = MAX_DEPTH + 1  # one step per level, the root at depth 0
_MAX_HASHES = 64  # an RFC 6962 path in a tree of under 2**64 leaves
_MAX_LEAVES = 1 << 16  # far above any node's size (32 items, 16 children)
# What decoding hostile bytes can raise; the verifiers turn each into False.
_REJECTED = (ContextFSError, ValueError, TypeError, IndexError, OverflowError, RecursionError)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProofStep:
    """One tree level of a proof: an RFC 6962 inclusion proof inside one node.

    Attributes:
        header: the node's header leaf, ``encode(["tree", is_interior, depth])``.
        index: the position of the proven entry in the node's leaf list
            (the header is position 0, so entries start at 1).
        size: how many leaves the node has (its entries plus the header).
        hashes: the inclusion proof of the entry, from the leaf up.
        child: on an interior node, the proven child entry
            ``encode([nibble, child_id, count, max_relevance, max_timestamp, molecules])``;
            None on the leaf node of a membership proof, whose entry is the item.
    """

    header: bytes
    index: int
    size: int
    hashes: tuple[bytes, ...]
    child: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MembershipProof:
    """Proof that ``item``, the entry under ``key``, is in the commit's snapshot.

    Attributes:
        commit: the commit's canonical bytes (they hash to its id and name its tree).
        key: the entry's 32-byte key (an atom or molecule id).
        item: the entry's encoded bytes, as the leaf node holds them.
        path: one step per level, from the leaf node up to the root.
    """

    kind: ClassVar[str] = MEMBERSHIP

    commit: bytes
    key: bytes
    item: bytes
    path: tuple[ProofStep, ...]

    @property
    def commit_id(self) -> bytes:
        """The id of the commit the proof carries (check it against one you trust)."""
        return _commit_digest(self.commit)

    def verify(self, commit_id: bytes | str) -> bool:
        """Return :func:`verify_membership` of this proof against ``commit_id``."""
        return verify_membership(self, commit_id)

    def to_json(self, *, indent: int | None = None) -> str:
        """Encode the proof as JSON (bytes as lowercase hex); see docs/FORMAT.md."""
        document = _document(self, {"item": self.item.hex()})
        return json.dumps(document, indent=indent)


@dataclass(frozen=True, slots=True, kw_only=True)
class NonMembershipProof:
    """Proof that no entry under ``key`` is in the commit's snapshot.

    Attributes:
        commit: the commit's canonical bytes.
        key: the absent 32-byte key.
        path: one interior step per level above the deepest node on the key's
            path, from that node's parent up to the root (empty when the
            deepest node is the root).
        leaves: the deepest node's complete leaf list, header first: an
            interior node's child entries (none has the key's nibble) or a
            leaf's items (none has the key).
    """

    kind: ClassVar[str] = NON_MEMBERSHIP

    commit: bytes
    key: bytes
    path: tuple[ProofStep, ...]
    leaves: tuple[bytes, ...]

    @property
    def commit_id(self) -> bytes:
        """The id of the commit the proof carries (check it against one you trust)."""
        return _commit_digest(self.commit)

    def verify(self, commit_id: bytes | str) -> bool:
        """Return :func:`verify_non_membership` of this proof against ``commit_id``."""
        return verify_non_membership(self, commit_id)

    def to_json(self, *, indent: int | None = None) -> str:
        """Encode the proof as JSON (bytes as lowercase hex); see docs/FORMAT.md."""
        document = _document(self, {"leaves": [leaf.hex() for leaf in self.leaves]})
        return json.dumps(document, indent=indent)


Proof = MembershipProof | NonMembershipProof


# -- building ------------------------------------------------------------------------


def prove(trees: SnapshotTrees, commit_bytes: bytes, key: bytes) -> Proof:
    """Prove that ``key`` is, or is not, in the snapshot of a commit.

    Reads the nodes on the key's path (one per level) and builds a membership
    proof if the snapshot holds an entry under ``key``, else a non-membership
    proof.

    Args:
        trees: the snapshot trees of the store holding the commit.
        commit_bytes: the commit's canonical bytes (as stored).
        key: the 32-byte atom or molecule id.

    Raises:
        InvalidInputError: ``key`` is not 32 bytes.
        CorruptObjectError: the commit or a node on the path is damaged.
        MissingObjectError: a node on the path is not in the store.
    """
    if not isinstance(key, bytes) or len(key) != _KEY_SIZE:
        raise InvalidInputError(f"a proof key must be a 32-byte id, got {key!r}")
    node_id = decode_commit(commit_bytes).tree
    levels: list[tuple[list[bytes], int]] = []  # (leaf list, proven index) per interior level
    while True:
        node = trees.load(node_id)
        leaves = _node_leaves(node_id, node, len(levels))
        if node.is_leaf:
            position = next((i for i, item in enumerate(node.items) if item_key(item) == key), None)
            break
        nibble = _key_nibble(key, node.depth)
        position = next((i for i, c in enumerate(node.children) if c.nibble == nibble), None)
        if position is None:
            break
        levels.append((leaves, position + 1))
        node_id = node.children[position].id
    path = [_step(level_leaves, index, child=True) for level_leaves, index in reversed(levels)]
    if node.is_leaf and position is not None:
        leaf_step = _step(leaves, position + 1, child=False)
        return MembershipProof(
            commit=commit_bytes, key=key, item=leaves[position + 1], path=(leaf_step, *path)
        )
    return NonMembershipProof(commit=commit_bytes, key=key, path=tuple(path), leaves=tuple(leaves))


def _node_leaves(node_id: bytes, node: Node, depth: int) -> list[bytes]:
    """Return a node's Merkle leaf list, checking it hashes to the node's id."""
    if node.depth != depth:
        raise CorruptObjectError(f"tree {node_id.hex()} says depth {node.depth}, found at {depth}")
    leaves = node_leaves(node)
    if root(leaves) != node_id:
        raise CorruptObjectError(f"tree {node_id.hex()} does not hash to its id")
    return leaves


def _step(leaves: list[bytes], index: int, *, child: bool) -> ProofStep:
    hashes = [leaf_hash(leaf) for leaf in leaves]
    return ProofStep(
        header=leaves[0],
        index=index,
        size=len(leaves),
        hashes=tuple(inclusion_proof_from_hashes(hashes, index)),
        child=leaves[index] if child else None,
    )


# -- verifying -----------------------------------------------------------------------


def verify_membership(proof: MembershipProof, commit_id: bytes | str) -> bool:
    """Check that ``proof`` shows its item under its key in commit ``commit_id``.

    Args:
        proof: the proof, untrusted.
        commit_id: the commit id you trust: 32 bytes, or 64 lowercase hex digits.

    Returns:
        True if the commit bytes hash to ``commit_id``, the item carries the
        key, and every step is a valid RFC 6962 inclusion proof linking the
        item to the commit's tree root along the key's nibbles; False
        otherwise, for malformed input too (it never raises).
    """
    try:
        return _check_membership(proof, commit_id)
    except _REJECTED:
        return False


def verify_non_membership(proof: NonMembershipProof, commit_id: bytes | str) -> bool:
    """Check that ``proof`` shows its key absent from commit ``commit_id``.

    Returns:
        True if the commit bytes hash to ``commit_id``, the interior steps link
        the commit's tree root along the key's nibbles to the deepest node,
        that node's complete leaf list hashes to its id, and it has no child
        for the key's next nibble (interior) or no item with the key (leaf);
        False otherwise, for malformed input too (it never raises).
    """
    try:
        return _check_non_membership(proof, commit_id)
    except _REJECTED:
        return False


def verify(proof: Proof, commit_id: bytes | str) -> bool:
    """Check either kind of proof against ``commit_id`` (never raises)."""
    if isinstance(proof, MembershipProof):
        return verify_membership(proof, commit_id)
    if isinstance(proof, NonMembershipProof):
        return verify_non_membership(proof, commit_id)
    return False


def _check_membership(proof: object, commit_id: object) -> bool:
    if not isinstance(proof, MembershipProof):
        return False
    tree, key, item, path = _tree_root(proof.commit, commit_id), proof.key, proof.item, proof.path
    if tree is None or not _is_key(key) or not isinstance(item, bytes):
        return False
    if _entry_key(item) != key or not isinstance(path, tuple | list):
        return False
    if not 1 <= len(path) <= _MAX_PATH:
        return False
    *interior, leaf = reversed(path)
    node_id = _descend(interior, key, tree)
    return node_id is not None and _check_step(leaf, len(interior), item, node_id, interior=False)


def _check_non_membership(proof: object, commit_id: object) -> bool:
    if not isinstance(proof, NonMembershipProof):
        return False
    tree, key, path, leaves = (
        _tree_root(proof.commit, commit_id),
        proof.key,
        proof.path,
        proof.leaves,
    )
    if tree is None or not _is_key(key) or not isinstance(path, tuple | list):
        return False
    if len(path) > MAX_DEPTH or not isinstance(leaves, tuple | list) or not leaves:
        return False
    if not all(isinstance(leaf, bytes) for leaf in leaves) or len(leaves) > _MAX_LEAVES:
        return False
    node_id = _descend(list(reversed(path)), key, tree)
    if node_id is None:
        return False
    depth = len(path)
    if leaves[0] == _header(True, depth):
        absent = _no_child_for(leaves[1:], _key_nibble(key, depth))
    elif leaves[0] == _header(False, depth):
        absent = _no_item_for(leaves[1:], key)
    else:
        return False
    # The complete list must hash to the node id the chain established.
    return absent and root(leaves) == node_id


def _descend(steps: Sequence[object], key: bytes, node_id: bytes) -> bytes | None:
    """Check interior steps from the root down; return the id of the node they lead to."""
    for depth, step in enumerate(steps):
        if not (isinstance(step, ProofStep) and isinstance(step.child, bytes)):
            return None
        if not _check_step(step, depth, step.child, node_id, interior=True):
            return None
        link = _child_link(step.child)
        if link is None or link[0] != _key_nibble(key, depth):
            return None  # the child is not the one the key's nibble leads to
        node_id = link[1]
    return node_id


def _check_step(step: object, depth: int, entry: bytes, node_id: bytes, *, interior: bool) -> bool:
    """Check one level: the expected header, and ``entry`` included under ``node_id``."""
    if not isinstance(step, ProofStep) or step.header != _header(interior, depth):
        return False
    if not interior and step.child is not None:
        return False
    if not isinstance(step.index, int) or step.index < 1:
        return False  # position 0 is the header, never an entry
    if not isinstance(step.hashes, tuple | list):
        return False
    return verify_inclusion(leaf_hash(entry), step.index, step.size, step.hashes, node_id)


def _no_child_for(entries: Sequence[bytes], nibble: int) -> bool:
    """True if ``entries`` are well-formed child entries in nibble order, none for ``nibble``."""
    nibbles = []
    for entry in entries:
        link = _child_link(entry)
        if link is None:
            return False
        nibbles.append(link[0])
    return bool(nibbles) and nibbles == sorted(set(nibbles)) and nibble not in nibbles


def _no_item_for(entries: Sequence[bytes], key: bytes) -> bool:
    """True if ``entries`` are entries in strictly increasing key order, none under ``key``."""
    keys: list[bytes] = []
    for entry in entries:
        found = _entry_key(entry)
        if found is None:
            return False
        keys.append(found)
    return keys == sorted(set(keys)) and key not in keys


def _tree_root(commit: object, commit_id: object) -> bytes | None:
    """Return the tree root named by ``commit`` if it hashes to ``commit_id``."""
    trusted = _parse_commit_id(commit_id)
    if trusted is None or not isinstance(commit, bytes) or _commit_digest(commit) != trusted:
        return None
    value = canonical.decode(commit, kind="commit")
    if not isinstance(value, list) or len(value) != 7 or not _is_key(value[0]):
        return None
    tree: bytes = value[0]
    return tree


def _parse_commit_id(commit_id: object) -> bytes | None:
    if isinstance(commit_id, bytes):
        return commit_id if len(commit_id) == _KEY_SIZE else None
    if isinstance(commit_id, str) and _HEX.fullmatch(commit_id) and len(commit_id) == 64:
        return bytes.fromhex(commit_id)
    return None


def _child_link(entry: bytes) -> tuple[int, bytes] | None:
    """Return ``(nibble, child_id)`` of an encoded child entry, or None if malformed."""
    value = canonical.decode(entry, kind="tree child")
    if not isinstance(value, list) or len(value) != 6:
        return None
    nibble, child_id = value[0], value[1]
    if not (isinstance(nibble, int) and not isinstance(nibble, bool) and 0 <= nibble < FANOUT):
        return None
    if not _is_key(child_id):
        return None
    return nibble, child_id


def _entry_key(entry: bytes) -> bytes | None:
    """Return the key of an encoded snapshot entry, or None if malformed."""
    value = canonical.decode(entry, kind="entry")
    if not isinstance(value, list) or len(value) < 2 or not _is_key(value[0]):
        return None
    key: bytes = value[0]
    return key


_header = node_header


def _key_nibble(key: bytes, depth: int) -> int:
    byte = key[depth >> 1]
    return byte >> 4 if depth % 2 == 0 else byte & 0x0F


def _is_key(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == _KEY_SIZE


def _commit_digest(commit: bytes) -> bytes:
    return hashlib.sha256(_COMMIT_PREFIX + commit).digest()


# -- JSON ----------------------------------------------------------------------------

_HEX = re.compile(r"(?:[0-9a-f]{2})*")
_COMMON_FIELDS = {"format", "version", "kind", "commit_id", "commit", "key", "path"}
_STEP_FIELDS = {"header", "index", "size", "hashes", "child"}


def _document(proof: Proof, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": PROOF_FORMAT,
        "version": PROOF_VERSION,
        "kind": proof.kind,
        "commit_id": proof.commit_id.hex(),
        "key": proof.key.hex(),
        "commit": proof.commit.hex(),
        **extra,
        "path": [
            {
                "header": step.header.hex(),
                "index": step.index,
                "size": step.size,
                "hashes": [h.hex() for h in step.hashes],
                "child": None if step.child is None else step.child.hex(),
            }
            for step in proof.path
        ],
    }


def proof_from_json(text: str | bytes) -> Proof:
    """Decode a proof written by ``to_json``, validating its structure strictly.

    Structure only: a decoded proof must still be checked with :func:`verify`
    against a commit id you trust.

    Raises:
        InvalidInputError: the text is not JSON, a field is missing, unknown,
            of the wrong type, not lowercase hex, or out of range, or
            ``commit_id`` is not the hash of ``commit``.
    """
    try:
        document = json.loads(text)
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidInputError(f"proof is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidInputError(f"a proof must be a JSON object, got {type(document).__name__}")
    kind = document.get("kind")
    if kind == MEMBERSHIP:
        _expect_fields(document, _COMMON_FIELDS | {"item"}, "proof")
    elif kind == NON_MEMBERSHIP:
        _expect_fields(document, _COMMON_FIELDS | {"leaves"}, "proof")
    else:
        raise InvalidInputError(
            f"proof kind must be {MEMBERSHIP!r} or {NON_MEMBERSHIP!r}, got {kind!r}"
        )
    if document["format"] != PROOF_FORMAT or document["version"] != PROOF_VERSION:
        raise InvalidInputError(
            f"not a {PROOF_FORMAT} version {PROOF_VERSION} proof: "
            f"format {document['format']!r}, version {document['version']!r}"
        )
    commit = _hex_field(document["commit"], "commit")
    claimed = _hex_field(document["commit_id"], "commit_id", _KEY_SIZE)
    if claimed != _commit_digest(commit):
        raise InvalidInputError(
            f"proof names commit {claimed.hex()!r} but its commit bytes hash to "
            f"{_commit_digest(commit).hex()!r}"
        )
    key = _hex_field(document["key"], "key", _KEY_SIZE)
    path = tuple(
        _step_from_json(step, n)
        for n, step in enumerate(_list(document["path"], "path", _MAX_PATH))
    )
    if kind == MEMBERSHIP:
        item = _hex_field(document["item"], "item")
        return MembershipProof(commit=commit, key=key, item=item, path=path)
    raw_leaves = _list(document["leaves"], "leaves", _MAX_LEAVES)
    leaves = tuple(_hex_field(leaf, f"leaves[{n}]") for n, leaf in enumerate(raw_leaves))
    return NonMembershipProof(commit=commit, key=key, path=path, leaves=leaves)


def _step_from_json(value: object, number: int) -> ProofStep:
    where = f"path[{number}]"
    if not isinstance(value, dict):
        raise InvalidInputError(f"{where} must be an object, got {value!r}")
    _expect_fields(value, _STEP_FIELDS, where)
    hashes = _list(value["hashes"], f"{where}.hashes", _MAX_HASHES)
    child = value["child"]
    return ProofStep(
        header=_hex_field(value["header"], f"{where}.header"),
        index=_count(value["index"], f"{where}.index"),
        size=_count(value["size"], f"{where}.size"),
        hashes=tuple(
            _hex_field(h, f"{where}.hashes[{n}]", _KEY_SIZE) for n, h in enumerate(hashes)
        ),
        child=None if child is None else _hex_field(child, f"{where}.child"),
    )


def _expect_fields(value: dict[str, Any], fields: set[str], where: str) -> None:
    missing, unknown = fields - value.keys(), value.keys() - fields
    if missing or unknown:
        raise InvalidInputError(
            f"{where} fields do not match: missing {sorted(missing)!r}, unknown {sorted(unknown)!r}"
        )


def _list(value: object, where: str, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidInputError(f"{where} must be a list, got {value!r}")
    if len(value) > limit:
        raise InvalidInputError(f"{where} has {len(value)} elements; at most {limit} are allowed")
    return value


def _hex_field(value: object, where: str, length: int | None = None) -> bytes:
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise InvalidInputError(f"{where} must be lowercase hex, got {value!r}")
    data = bytes.fromhex(value)
    if length is not None and len(data) != length:
        raise InvalidInputError(f"{where} must be {length} bytes, got {len(data)}")
    return data


def _count(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 64:
        raise InvalidInputError(f"{where} must be a non-negative integer, got {value!r}")
    return value
