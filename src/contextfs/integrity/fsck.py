"""``contextfs verify``: re-hash every object and check every link and ref.

This module owns what "a store verifies" means (DESIGN.md section 6, 11):

* every object decodes canonically and hashes to its id exactly as
  ``docs/FORMAT.md`` says (tree nodes by their RFC 6962 root);
* every commit names a root tree and commits as parents, with generation
  ``1 + max(parents)`` (or 1); every tree node links to trees whose recorded
  summaries (size, best relevance, latest time, molecules) are the truth; every
  entry, molecule, context and purge record names stored objects of the kind
  it expects;
* ``HEAD``, ``refs/heads/*``, ``refs/tags/*``, ``refs/oplog/*``, ``STAGE``, ``MERGE_HEAD``,
  ``MERGE_STATE`` and ``refs/purges/*`` point at objects of the right kind;
* an atom whose bytes are empty is *purged* (information, not a problem) when a
  valid purge record names it, and corrupt otherwise.

Each problem names the object by id and kind. Objects are streamed with
:meth:`Store.iter_objects`; what is kept in memory is a set of ids per kind, a
small summary per tree node and the links of each commit, never the objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final

from ..errors import ContextFSError, InvalidInputError
from ..history.commits import COMMIT, Commit, decode_commit
from ..history.links import entries_of
from ..history.tree import (
    EMPTY_SUMMARY,
    EMPTY_TREE_ID,
    TREE,
    Node,
    Summary,
    decode_node,
    encode_node,
)
from ..model import refs as refnames
from ..model.context import CONTEXT, decode_context
from ..model.ids import ObjectId, from_hex, object_digest, to_hex
from ..model.objects import (
    ATOM,
    MOLECULE,
    AtomEntry,
    decode_atom,
    decode_molecule,
)
from ..search.vectors import VectorIndex
from ..store.base import OBJECT_KINDS, ServerStore, Store
from .purge import PURGE, PURGES, PurgeRecord, decode_purge_record, purge_ref

#: The kind :class:`Problem` gives a ref that points at nothing or at the wrong kind.
REF: Final = "ref"

#: What each ref ContextFS uses must point at; ``refs/purges/*`` holds purge records.
_REF_KINDS: Final = {
    refnames.STAGE: TREE,
    refnames.MERGE_STATE: TREE,
    refnames.MERGE_HEAD: COMMIT,
}
_PREFIX_KINDS: Final = (
    (refnames.HEADS, COMMIT),
    (refnames.TAGS, COMMIT),
    (refnames.OPLOG, COMMIT),
    (refnames.REMOTES, COMMIT),
    (PURGES, PURGE),
)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a store.

    Attributes:
        kind: the kind of the object at fault (``atom``, ``tree``, ...), or
            ``"ref"`` for a ref that points at nothing or at the wrong kind.
        oid: the full id of the object at fault (for a ref, its target), if any.
        ref: the ref at fault, if any.
        message: one line naming the object by kind and id, and what is wrong.
    """

    kind: str
    oid: str | None
    ref: str | None
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyReport:
    """What :func:`verify_store` found."""

    problems: tuple[Problem, ...]
    #: How many objects of each kind the store holds (every known kind, zeros included).
    counts: Mapping[str, int]
    #: Atoms whose content was purged, with a valid record (full ids, sorted).
    purged: tuple[ObjectId, ...] = field(default=())
    #: Vectors kept per embedder id, when the vector index was checked.
    vectors: Mapping[str, int] = field(default_factory=dict)
    #: How the vector index searches (``VectorIndex.search_method``), when checked.
    vector_search: str | None = None

    @property
    def ok(self) -> bool:
        """True when the store verifies: no problem was found."""
        return not self.problems


def verify_store(store: Store, *, vectors: VectorIndex | None = None) -> VerifyReport:
    """Re-hash every object in ``store`` and check every link and ref.

    With ``vectors`` (the vector index beside the store), a vector kept for
    an atom the store does not hold, or holds purged, is a problem too: a
    vector is derived from its atom's text and must go with it.

    Never raises on damaged data: every fault becomes a :class:`Problem`. Reads
    one consistent state of the store while other writers carry on.

    Raises:
        StoreError: the store itself could not be read.
    """
    checker = _Checker(store)
    # One consistent state: a commit landing mid-scan must not look like a missing object.
    snapshot = store.read_snapshot() if isinstance(store, ServerStore) else store.transaction()
    with snapshot:
        for oid, kind, data in store.iter_objects():
            checker.check_object(oid, kind, data)
        checker.check_links()
        checker.check_refs(store.list_refs())
        if vectors is not None:
            checker.check_vectors(vectors.ids())
    report = checker.report()
    if vectors is None:
        return report
    counts = {embedder: vectors.count(embedder) for embedder in vectors.embedders()}
    return replace(report, vectors=counts, vector_search=vectors.search_method())


def _a(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def _why(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _spell(summary: Summary) -> str:
    return (
        f"size={summary.size} max_relevance={summary.max_relevance!r}"
        f" max_timestamp={summary.max_timestamp} molecules={summary.molecules}"
    )


class _Checker:
    """The state of one verification: ids by kind, tree summaries, commit links, problems."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._ids: dict[str, set[bytes]] = {kind: set() for kind in OBJECT_KINDS}
        self._counts: dict[str, int] = dict.fromkeys(sorted(OBJECT_KINDS), 0)
        self._bad: set[bytes] = set()  # present but not decodable or not hashing to their id
        self._trees: dict[bytes, tuple[int, Summary]] = {}  # depth and true summary
        self._commits: dict[bytes, tuple[bytes, tuple[bytes, ...], int]] = {}
        self._records: dict[bytes, PurgeRecord] = {}  # valid purge records by record id
        self._emptied: set[bytes] = set()  # atoms with no bytes left
        self._purged: dict[bytes, bytes] = {}  # purged atom id -> its record's id
        self._missing: set[bytes] = set()  # missing ids already reported
        self._problems: dict[Problem, None] = {}

    def _add(
        self, kind: str, oid: bytes | str | None, message: str, ref: str | None = None
    ) -> None:
        spelled = oid.hex() if isinstance(oid, bytes) else oid
        self._problems.setdefault(Problem(kind, spelled, ref, message))

    def _kind_of(self, oid: bytes) -> str | None:
        for kind, ids in self._ids.items():
            if oid in ids:
                return kind
        return None

    # -- pass 1: every object on its own ------------------------------------------

    def check_object(self, oid: bytes, kind: str, data: bytes) -> None:
        """Decode one object canonically and re-hash it; remember what later checks need."""
        if not isinstance(oid, bytes) or not isinstance(kind, str) or not isinstance(data, bytes):
            # Only a file edited behind the store's back holds a row like this.
            self._add(str(kind), None, f"object {oid!r} of kind {kind!r} is not stored as bytes")
            return
        self._counts[kind] = self._counts.get(kind, 0) + 1
        spelled = oid.hex()
        if kind not in self._ids:
            self._add(kind, oid, f"object {spelled} has unknown kind {kind!r}")
            return
        self._ids[kind].add(oid)
        if len(oid) != 32:
            self._bad.add(oid)
            self._add(kind, oid, f"{kind} {spelled} has a malformed id ({len(oid)} bytes)")
            return
        if kind == ATOM and not data:
            self._emptied.add(oid)  # purged, or damaged: decided once the records are known
            return
        try:
            actual = self._rehash(oid, kind, data)
        except Exception as exc:  # damaged bytes must become a problem, never a crash
            self._bad.add(oid)
            self._add(kind, oid, f"{kind} {spelled} is corrupt: {_why(exc)}")
            return
        if actual != oid:
            self._bad.add(oid)
            self._forget(oid)
            self._add(
                kind, oid, f"{kind} {spelled} is corrupt: its content hashes to {actual.hex()}"
            )

    def _rehash(self, oid: bytes, kind: str, data: bytes) -> bytes:
        """Return the id ``data`` hashes to, decoding it canonically; remember links."""
        actual, value = _identify(kind, data)
        if isinstance(value, Node):
            self._trees[oid] = (value.depth, value.summary)
        elif isinstance(value, Commit):
            self._commits[oid] = (value.tree, value.parents, value.generation)
        elif isinstance(value, PurgeRecord):
            self._records[oid] = value
        return actual

    def _forget(self, oid: bytes) -> None:
        """Drop what was remembered from an object that turned out not to hash to its id."""
        self._trees.pop(oid, None)
        self._commits.pop(oid, None)
        self._records.pop(oid, None)

    # -- pass 2: links between objects --------------------------------------------

    def _need(self, target: bytes, expected: str, kind: str, referrer: bytes) -> bool:
        """Check that ``referrer`` (of ``kind``) names a stored ``expected``; True if it does."""
        actual = self._kind_of(target)
        if actual == expected:
            return True
        if actual is None:
            if target not in self._missing:
                self._missing.add(target)
                by = f"{kind} {referrer.hex()}"
                self._add(
                    expected, target, f"{expected} {target.hex()} is missing (referred to by {by})"
                )
        else:
            self._add(
                kind,
                referrer,
                f"{kind} {referrer.hex()} refers to {target.hex()} as {_a(expected)},"
                f" but it is {_a(actual)}",
            )
        return False

    def check_links(self) -> None:
        """Check every tree, molecule, context, commit and purge record's links."""
        if EMPTY_TREE_ID not in self._ids[TREE]:
            # The repository reads the empty snapshot without storing it.
            self._ids[TREE].add(EMPTY_TREE_ID)
            self._trees[EMPTY_TREE_ID] = (0, EMPTY_SUMMARY)
        for oid, _, data in self._valid(TREE):
            self._check_tree(oid, data)
        for oid, _, data in self._valid(MOLECULE):
            for atom_id in decode_molecule(data).atom_ids:
                self._need(atom_id, ATOM, MOLECULE, oid)
        for oid, _, data in self._valid(CONTEXT):
            base = decode_context(data).base_hash
            if base is None:
                continue
            try:
                self._need(from_hex(base), CONTEXT, CONTEXT, oid)
            except InvalidInputError:
                self._add(CONTEXT, oid, f"context {oid.hex()} names {base!r} as its base")
        for oid in sorted(self._commits):
            self._check_commit(oid)
        self._check_purges()

    def _valid(self, kind: str) -> Iterable[tuple[bytes, str, bytes]]:
        return (obj for obj in self._store.iter_objects(kind) if obj[0] not in self._bad)

    def _check_tree(self, oid: bytes, data: bytes) -> None:
        node = decode_node(data)
        for child in node.children:
            if not self._need(child.id, TREE, TREE, oid) or child.id not in self._trees:
                continue
            depth, actual = self._trees[child.id]
            if depth != node.depth + 1:
                self._add(
                    TREE,
                    oid,
                    f"tree {oid.hex()} links to tree {child.id.hex()} at depth {node.depth + 1},"
                    f" but that node is at depth {depth}",
                )
            recorded = Summary(
                child.size, child.max_relevance, child.max_timestamp, child.molecules
            )
            if recorded != actual:
                self._add(
                    TREE,
                    oid,
                    f"tree {oid.hex()} records {_spell(recorded)} for tree {child.id.hex()},"
                    f" which holds {_spell(actual)}",
                )
        for item in node.items:
            try:
                entries = entries_of(item)
            except Exception as exc:  # a damaged entry is a problem, never a crash
                self._add(TREE, oid, f"tree {oid.hex()} holds a malformed entry: {_why(exc)}")
                continue
            for entry in entries:
                if isinstance(entry, AtomEntry):
                    self._need(entry.atom_id, ATOM, TREE, oid)
                else:
                    self._need(entry.molecule_id, MOLECULE, TREE, oid)

    def _check_commit(self, oid: bytes) -> None:
        tree, parents, generation = self._commits[oid]
        spelled = oid.hex()
        if self._need(tree, TREE, COMMIT, oid) and tree in self._trees:
            depth = self._trees[tree][0]
            if depth != 0:
                self._add(
                    COMMIT,
                    oid,
                    f"commit {spelled} names tree {tree.hex()} as its snapshot,"
                    f" but that node is at depth {depth}",
                )
        if len(set(parents)) != len(parents):
            self._add(COMMIT, oid, f"commit {spelled} lists a parent twice")
        present = [self._need(parent, COMMIT, COMMIT, oid) for parent in parents]
        if not all(present) or not all(parent in self._commits for parent in parents):
            return  # the parents' problems are reported; their generations are unknown
        expected = 1 + max((self._commits[parent][2] for parent in parents), default=0)
        if generation != expected:
            self._add(
                COMMIT,
                oid,
                f"commit {spelled} has generation {generation}, but its parents make it {expected}",
            )

    def _check_purges(self) -> None:
        for record_id in sorted(self._records):
            record = self._records[record_id]
            if not self._need(record.atom_id, ATOM, PURGE, record_id):
                continue
            if record.atom_id in self._emptied:
                self._purged.setdefault(record.atom_id, record_id)
            elif record.atom_id not in self._bad:
                self._add(
                    PURGE,
                    record_id,
                    f"purge {record_id.hex()} records the purge of atom {record.atom_id.hex()},"
                    " which still holds its content",
                )
        for atom_id in sorted(self._emptied - self._purged.keys()):
            self._add(
                ATOM,
                atom_id,
                f"atom {atom_id.hex()} is corrupt: its content is gone"
                " and no purge record names it",
            )

    def check_vectors(self, atom_ids: Iterable[bytes]) -> None:
        """Report vectors of atoms that are absent or purged (their text must be gone too)."""
        for oid in sorted(atom_ids):
            if oid not in self._ids[ATOM]:
                self._add(ATOM, oid, f"a vector is kept for atom {oid.hex()}, which is not stored")
            elif oid in self._purged:
                self._add(
                    ATOM, oid, f"a vector is kept for atom {oid.hex()}, whose content was purged"
                )

    # -- pass 3: refs ---------------------------------------------------------------

    def check_refs(self, refs: Mapping[str, str]) -> None:
        """Check that every ref ContextFS uses points at an object of the right kind."""
        head = refs.get(refnames.HEAD)
        if head is None:
            self._add(REF, None, "HEAD is missing", refnames.HEAD)
        elif (target := refnames.symbolic_target(head)) is not None:
            self._check_head_target(target, refs)
        else:
            self._check_ref(refnames.HEAD, head, COMMIT)
        for name, value in refs.items():
            expected = _REF_KINDS.get(name)
            for prefix, kind in _PREFIX_KINDS:
                if name.startswith(prefix):
                    expected = kind
            if expected is not None:
                self._check_ref(name, value, expected)
        for atom_id, record_id in self._purged.items():
            name = purge_ref(atom_id)
            if name not in refs:
                self._add(
                    REF,
                    record_id,
                    f"ref {name} is missing (purge {record_id.hex()} records atom {atom_id.hex()})",
                    name,
                )

    def _check_head_target(self, target: str, refs: Mapping[str, str]) -> None:
        if not target.startswith(refnames.HEADS):
            self._add(REF, None, f"HEAD points at {target}, which is not a branch", refnames.HEAD)
        elif target not in refs and any(name.startswith(refnames.HEADS) for name in refs):
            # With no branch at all the repository is new and HEAD's branch is unborn.
            self._add(
                REF, None, f"HEAD points at branch {target}, which does not exist", refnames.HEAD
            )

    def _check_ref(self, name: str, value: str, expected: str) -> None:
        try:
            oid = from_hex(value)
        except InvalidInputError:
            self._add(REF, None, f"ref {name} holds {value!r}, not an object id", name)
            return
        actual = self._kind_of(oid)
        if actual is None:
            self._add(REF, oid, f"ref {name} points at {value}, which is missing", name)
        elif actual != expected:
            self._add(
                REF,
                oid,
                f"ref {name} points at {value}, which is {_a(actual)}, not {_a(expected)}",
                name,
            )
        elif expected == PURGE and oid in self._records:
            atom = self._records[oid].atom_id.hex()
            if name != PURGES + atom:
                self._add(
                    REF, oid, f"ref {name} points at purge {value}, which records atom {atom}", name
                )

    def report(self) -> VerifyReport:
        """Return what was found."""
        return VerifyReport(
            problems=tuple(self._problems),
            counts=dict(self._counts),
            purged=tuple(to_hex(oid) for oid in sorted(self._purged)),
        )


def _identify(kind: str, data: bytes) -> tuple[bytes, object]:
    """Decode an object canonically; return the id its bytes hash to and what it decodes to."""
    if kind == TREE:
        node = decode_node(data)
        actual, encoded = encode_node(node)
        if encoded != data:
            raise ValueError("tree node is not in canonical form")
        return actual, node
    value: object = None
    if kind == ATOM:
        value = decode_atom(data)
    elif kind == MOLECULE:
        value = decode_molecule(data)
    elif kind == COMMIT:
        value = decode_commit(data)
    elif kind == CONTEXT:
        value = decode_context(data)
    elif kind == PURGE:
        value = decode_purge_record(data)
    return object_digest(kind, data), value


def rehash(kind: str, data: bytes) -> bytes:
    """Return the id ``data`` hashes to as an object of ``kind``, checking it decodes.

    What a receiver runs on every object another store sends, before storing it;
    empty atom bytes (a purged atom, kept under its id) are taken as they are.

    Raises:
        InvalidInputError: an unknown kind, or bytes that are not a canonical object.
    """
    return identify(kind, data)[0]


def identify(kind: str, data: bytes) -> tuple[bytes, object]:
    """Return the id ``data`` hashes to as ``kind`` and its decoded value, as :func:`rehash`.

    Receivers use the value to check the links of what arrived without decoding twice.

    Raises:
        InvalidInputError: an unknown kind, or bytes that are not a canonical object.
    """
    if kind not in OBJECT_KINDS:
        raise InvalidInputError(f"unknown object kind {kind!r}")
    if kind == ATOM and not data:
        return object_digest(kind, data), None
    try:
        return _identify(kind, data)
    except (ValueError, TypeError, ContextFSError) as exc:
        raise InvalidInputError(f"{_a(kind)} object does not decode: {exc}") from None
