"""The seed's ``ContextMerkleTree``, rebuilt on RFC 6962 without the seed's defects.

The seed's tree (DESIGN.md section 2, defect 6) hashed hex strings with no
leaf/node domain separation, so an interior node's preimage could pass as a
leaf; padded to a power of two with a fixed ``"0" * 16`` leaf, so ``[a]`` and
``[a, pad]`` had one root; truncated every hash to 64 bits; and, with the same
atom twice, proved only the first copy. Here:

* the leaves are the atoms' full 32-byte ids, each id once, in first-seen
  order (a duplicate adds nothing, so every atom has exactly one proof);
* hashing is :mod:`contextfs.model.merkle` (RFC 6962: ``0x00`` leaf and
  ``0x01`` node prefixes, the split at the largest power of two, no padding);
* every hash is the full SHA-256, spelled as 64 hex digits.

The API keeps the seed's shapes: ``root_hash`` is hex, ``get_proof`` returns
``(sibling_hex, sibling_is_left)`` pairs from the leaf up, and
``verify_proof(atom_hash, proof, root_hash)`` takes the atom's hex id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..errors import InvalidInputError
from ..model.merkle import HASH_SIZE, inclusion_path, leaf_hash, node_hash, root_of_hashes
from ..model.objects import MemoryAtom

#: A seed proof: ``(sibling hash as hex, True if the sibling is on the left)``, leaf up.
SeedProof = list[tuple[str, bool]]

_FULL_HEX = re.compile(r"[0-9a-fA-F]{64}")
#: A tree of at most 2**64 leaves has a path of at most 64 siblings.
_MAX_PROOF_LENGTH = 64


def _parse_hash(value: object) -> bytes | None:
    if isinstance(value, str) and _FULL_HEX.fullmatch(value):
        return bytes.fromhex(value)
    return None


class ContextMerkleTree:
    """An RFC 6962 Merkle tree over a list of atoms' ids.

    Args:
        atoms: the atoms, in order; an atom given twice (same id) is one leaf.

    Raises:
        InvalidInputError: an element is not a :class:`MemoryAtom`.
    """

    def __init__(self, atoms: Iterable[MemoryAtom]) -> None:
        self.atoms = list(atoms)
        positions: dict[bytes, int] = {}
        for atom in self.atoms:
            if not isinstance(atom, MemoryAtom):
                raise InvalidInputError(f"ContextMerkleTree takes MemoryAtoms, got {atom!r}")
            positions.setdefault(atom.digest, len(positions))
        self._positions = positions
        self._hashes = [leaf_hash(digest) for digest in positions]
        self._root = root_of_hashes(self._hashes)

    @property
    def leaves(self) -> tuple[bytes, ...]:
        """The leaf data: each distinct atom id (32 bytes), in first-seen order."""
        return tuple(self._positions)

    @property
    def root(self) -> bytes:
        """The raw 32-byte root (``SHA-256("")`` for no atoms)."""
        return self._root

    @property
    def root_hash(self) -> str:
        """The root as 64 hex digits."""
        return self._root.hex()

    def __len__(self) -> int:
        return len(self._hashes)

    def get_proof(self, atom: MemoryAtom) -> SeedProof:
        """Return the proof that ``atom`` is a leaf of this tree.

        Returns:
            ``(sibling_hash_hex, sibling_is_left)`` pairs from the leaf up to
            the root: the RFC 6962 audit path with each sibling's side.

        Raises:
            InvalidInputError: ``atom`` is not in the tree.
        """
        digest = atom.digest if isinstance(atom, MemoryAtom) else None
        index = self._positions.get(digest) if digest is not None else None
        if index is None:
            name = atom.content_hash if isinstance(atom, MemoryAtom) else atom
            raise InvalidInputError(f"atom {name!r} is not in this Merkle tree")
        return [
            (sibling.hex(), is_left) for sibling, is_left in inclusion_path(self._hashes, index)
        ]

    @staticmethod
    def verify_proof(atom_hash: str, proof: SeedProof, root_hash: str) -> bool:
        """Check that the atom with id ``atom_hash`` is a leaf under ``root_hash``.

        Args:
            atom_hash: the atom's full id as hex (``atom.content_hash``).
            proof: what :meth:`get_proof` returned.
            root_hash: the trusted root as hex.

        Returns:
            True if folding the proof from the atom's leaf hash gives the root;
            False for anything else, malformed input included (it never raises).
        """
        atom_id, expected = _parse_hash(atom_hash), _parse_hash(root_hash)
        if (
            atom_id is None
            or expected is None
            or not isinstance(proof, list | tuple)
            or len(proof) > _MAX_PROOF_LENGTH
        ):
            return False
        current = leaf_hash(atom_id)  # the 0x00 prefix: a node hash can never pass as an atom
        for step in proof:
            if not isinstance(step, list | tuple) or len(step) != 2:
                return False
            sibling, is_left = _parse_hash(step[0]), step[1]
            if sibling is None or len(sibling) != HASH_SIZE or not isinstance(is_left, bool):
                return False
            current = node_hash(sibling, current) if is_left else node_hash(current, sibling)
        return current == expected
