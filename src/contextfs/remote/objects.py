"""Which objects a transfer moves, and taking them in safely.

Both ends of every transfer (store to store, or over the wire) run these two
functions; only how the ids and bytes travel differs.

The sender's :func:`offer` is the "want/have" half of git's negotiation. It
lists the commits reachable from the receiver's *wants* but not from its
*haves*, and below each the tree nodes, atoms and molecules its snapshot
adds to its first parent's. Trees are content-addressed tries keyed by
nibbles, so the two snapshots are walked in step and an unchanged subtree,
having the same id in both, is skipped without being read: the offer (and
the work) grows with the change, not with the history. The receiver then
asks only for the offered ids it lacks (``has_objects``).

The receiver's :func:`receive` is all or nothing. Inside one store
transaction it re-hashes every object (a sender cannot slip in bytes that do
not match their id), checks that everything the new objects link to is
present, checks each ref update (fast-forward unless forced) and moves the
refs by compare-and-swap. An atom whose content was purged on the sending
side travels empty, with its purge record, and stays purged here (its
``refs/purges/`` ref is made); a purge never erases content the receiver
already holds. Any failure, or an interrupted connection, rolls
the whole transaction back: no object and no ref of a failed transfer
remains.

Invariant relied on: a store that holds a tree node holds everything below
it, and a store that holds a commit holds its ancestors. Every local write
and every :func:`receive` keeps it.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

from ..backends import search_index_for, vector_index_for
from ..errors import (
    ConcurrentUpdateError,
    CorruptObjectError,
    InvalidInputError,
    MissingObjectError,
    NonFastForwardError,
)
from ..history.commits import COMMIT, Commit, decode_commit
from ..history.graph import is_ancestor, walk
from ..history.links import attribution_root, item_targets
from ..history.reflog import log_move
from ..history.tree import EMPTY_TREE_ID, TREE, Node, SnapshotTrees, decode_node
from ..integrity.fsck import identify
from ..integrity.purge import PURGES, PurgeRecord, purge_ref
from ..model.ids import from_hex, short
from ..model.objects import ATOM, MOLECULE, StoredMolecule, decode_atom, decode_molecule
from ..store.base import Store

#: Ids per offered batch, and objects per stored batch.
BATCH: Final = 1000
#: Bytes of received objects held before they are stored (in the open transaction).
BATCH_BYTES: Final = 64 * 1024 * 1024

ObjectRow = tuple[bytes, str, bytes]
#: A received object: ``(id, kind, data)``, or ``(None, kind, data)`` when the sender
#: left the id for the receiver to compute (as a pack does).
ReceivedRow = tuple[bytes | None, str, bytes]


@dataclass(frozen=True, slots=True)
class RefUpdate:
    """Move ``name`` from ``old`` (what the sender last saw; None: absent) to ``new``."""

    name: str
    old: str | None
    new: str | None


@dataclass
class Received:
    """What :func:`receive` stored: how many objects, how many bytes, which refs moved."""

    objects: int = 0
    bytes: int = 0
    updated: list[RefUpdate] = field(default_factory=list)
    #: Atoms whose text a received purge record erased here, with the text erased
    #: (so the repository can redact its op logs of it too).
    purged: dict[builtins.bytes, str] = field(default_factory=dict)
    #: Purge records received and not applied (the receiver did not take purges).
    ignored_purges: int = 0


class _Commits:
    """Commits read from a store once each (the walks below revisit them)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[bytes, Commit] = {}

    def __call__(self, oid: bytes) -> Commit:
        commit = self._cache.get(oid)
        if commit is None:
            stored = self._store.get_object(oid)
            if stored is None or stored.kind != COMMIT:
                raise MissingObjectError(f"commit {oid.hex()} is missing from the store")
            commit = self._cache[oid] = decode_commit(stored.data)
        return commit


def known_commits(store: Store, ids: Iterable[bytes]) -> list[bytes]:
    """Return the ids among ``ids`` that name commits in ``store``, in order, once each."""
    unique = list(dict.fromkeys(ids))
    found = store.get_objects(unique)
    return [oid for oid in unique if oid in found and found[oid].kind == COMMIT]


def offer(
    store: Store,
    wants: Sequence[bytes],
    haves: Sequence[bytes],
    bases: dict[bytes, bytes] | None = None,
) -> Iterator[list[bytes]]:
    """Yield, in batches, the ids of every object the receiver may lack for ``wants``.

    Args:
        store: the sender's store.
        wants: commits the receiver asks for (each must be in ``store``).
        haves: commits the receiver holds; ids ``store`` does not know are ignored.
        bases: filled, as the batches are made, with each offered tree node's
            counterpart: the node at the same place of the first parent's
            snapshot, which the receiver holds or is offered too (what a pack
            sends the node as a delta against).

    Raises:
        MissingObjectError: a wanted commit, or an object below it, is missing.
    """
    load = _Commits(store)
    for want in wants:
        load(want)  # a missing want is the caller's error, reported before anything is sent
    haves = known_commits(store, haves)
    hidden = {oid for oid, _ in walk(load, haves)}
    new = [(oid, commit) for oid, commit in walk(load, wants) if oid not in hidden]
    offered: set[bytes] = {EMPTY_TREE_ID}
    batch: list[bytes] = []
    for oid, _ in new:
        offered.add(oid)
        batch.append(oid)
    # Each snapshot is diffed against its first parent's, which the receiver holds
    # (or is being sent whole): equal subtrees are skipped without being read.
    pairs = [
        (commit.tree, load(commit.parents[0]).tree if commit.parents else None) for _, commit in new
    ]
    pairs += [(root, None) for _, commit in new if (root := attribution_root(commit))]
    for ids in _tree_closure(store, pairs, offered, bases):
        batch.extend(ids)
        while len(batch) >= BATCH:
            yield batch[:BATCH]
            batch = batch[BATCH:]
    if batch:
        yield batch


def _read_nodes(store: Store, ids: list[bytes]) -> dict[bytes, Node]:
    found = store.get_objects(ids)
    nodes = {}
    for oid in ids:
        stored = found.get(oid)
        if stored is None or stored.kind != TREE:
            raise MissingObjectError(f"tree {oid.hex()} is missing from the store")
        nodes[oid] = decode_node(stored.data)
    return nodes


def _tree_closure(
    store: Store,
    pairs: list[tuple[bytes, bytes | None]],
    offered: set[bytes],
    bases: dict[bytes, bytes] | None = None,
) -> Iterator[list[bytes]]:
    """Yield the ids of tree nodes, atoms and molecules below new roots, not in ``offered``.

    ``pairs`` are ``(new root, old root or None)``. Both tries are walked in
    step, one level per store call: a child whose id equals the old node's
    child at the same nibble is skipped whole, and in a leaf only the entries
    the old leaf lacks count. Everything yielded is added to ``offered``.
    """
    level = pairs
    molecules: list[bytes] = []
    while level:
        todo: dict[bytes, bytes | None] = {}
        for new, old in level:
            if new not in offered and new != old:
                todo.setdefault(new, old)
        if not todo:
            break
        offered.update(todo)
        olds = [old for old in dict.fromkeys(todo.values()) if old is not None]
        nodes = _read_nodes(store, list(dict.fromkeys([*todo, *olds])))
        out = list(todo)
        level = []
        for new, old in todo.items():
            if bases is not None and old is not None:
                bases[new] = old
            node, before = nodes[new], nodes[old] if old is not None else None
            previous = {c.nibble: c.id for c in before.children} if before else {}
            level.extend((child.id, previous.get(child.nibble)) for child in node.children)
            kept = set(before.items) if before is not None else set()
            for item in node.items:
                if item in kept:
                    continue
                for target, kind in item_targets(item):
                    if target not in offered:
                        offered.add(target)
                        out.append(target)
                        if kind == MOLECULE:
                            molecules.append(target)
        yield out
    for start in range(0, len(molecules), BATCH):
        chunk = molecules[start : start + BATCH]
        found = store.get_objects(chunk)
        atoms = [
            atom_id
            for oid in chunk
            if oid in found
            for atom_id in decode_molecule(found[oid].data).atom_ids
            if atom_id not in offered
        ]
        offered.update(atoms)
        yield atoms


def receive(
    store: Store,
    objects: Iterable[ReceivedRow],
    updates: Sequence[RefUpdate],
    *,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
    purges: bool = True,
    may_erase: Callable[[bytes, bytes], bool] | None = None,
) -> Received:
    """Store ``objects`` and move refs as ``updates`` say, all in one transaction, or nothing.

    Args:
        store: the receiving store.
        objects: ``(id, kind, data)`` rows as the sender sent them; an id of None
            is computed here (every other is checked against what it hashes to).
        updates: the refs to move, by compare-and-swap against ``old``.
        force: allow an update that is not a fast-forward (the compare-and-swap
            against ``old`` still holds, so a ref someone else moved meanwhile
            is never overwritten).
        progress: called with the number of objects taken so far.
        purges: let purge records erase the text of their atoms held here
            (:attr:`Received.purged`); when False such records are left aside
            (counted in :attr:`Received.ignored_purges`) and the text stays.
            Atoms that arrive purged keep their records either way.
        may_erase: asked ``(atom id, record id)`` before a record erases text
            held here (a fetch lets only the purges it asked for, of atoms in
            the remote's history, erase anything); None: every record may.

    Raises:
        CorruptObjectError: an object does not hash to its id or does not decode;
            or it names an object neither sent nor already stored.
        NonFastForwardError: an update would drop commits, without ``force``.
        ConcurrentUpdateError: a ref no longer holds ``old``.
    """
    result = Received()
    links = _Links()
    with store.transaction():
        rows: list[ObjectRow] = []
        pending = 0
        for oid, kind, data in objects:
            rows.append(_checked(oid, kind, data, links))
            result.objects += 1
            result.bytes += len(data)
            pending += len(data)
            if len(rows) >= BATCH or pending >= BATCH_BYTES:  # memory follows the bytes too
                store.put_objects(rows)
                rows, pending = [], 0
                if progress is not None:
                    progress(result.objects)
        store.put_objects(rows)
        links.check(store)
        atoms = [oid for oid, kind in links.received.items() if kind == ATOM]
        if atoms:  # searchable like atoms added here (indexed before the next query)
            search_index_for(store).defer(atoms)
        for atom_id, record in links.purge_records(store).items():
            allowed = purges and (may_erase is None or may_erase(atom_id, record))
            _apply_purge(store, atom_id, record, result, erase=allowed)
        _erase_purged_arrivals(store, links, result)
        load = _Commits(store)
        for update in updates:
            _apply(store, load, update, force)
            result.updated.append(update)
    return result


def _apply_purge(
    store: Store, atom_id: bytes, record: bytes, result: Received, *, erase: bool
) -> None:
    """Take a received purge record: erase the atom's text here too, and name the record.

    A purge made elsewhere reaches this store as its record; the text this
    store holds goes (object, full-text index, vectors) in the receive's
    transaction. Without ``erase`` a record for text held here is left aside
    (counted in :attr:`Received.ignored_purges`; the text stays, unpurged).
    An atom purged here already keeps its own record.

    Raises:
        CorruptObjectError: this store's purge ref names a record it lacks.
    """
    name = purge_ref(atom_id)
    held = store.read_ref(name)
    if held is not None:
        if not store.has_objects([from_hex(held)]):
            raise CorruptObjectError(f"{name} names a missing record; nothing was stored")
        return
    stored = store.get_object(atom_id)
    if stored is not None and stored.kind == ATOM and stored.data:
        if not erase:
            result.ignored_purges += 1
            return
        _erase(store, atom_id, result)
    store.set_ref_if_equals(name, None, record.hex())


def _erase_purged_arrivals(store: Store, links: _Links, result: Received) -> None:
    """Erase atoms that arrived whole although this store holds their purge record.

    A record can arrive first (a purge propagated before the text reached
    this store); text arriving later from a remote that never purged it must
    not come back.
    """
    arrived = [oid for oid, kind in links.received.items() if kind == ATOM]
    if not arrived:
        return
    purged = store.list_refs(PURGES)
    for atom_id in arrived:
        if atom_id in result.purged or purge_ref(atom_id) not in purged:
            continue
        _erase(store, atom_id, result)


def _erase(store: Store, atom_id: bytes, result: Received) -> None:
    """Erase a held atom's text from the object, the full-text index and the vectors."""
    stored = store.get_object(atom_id)
    if stored is None or stored.kind != ATOM or not stored.data:
        return
    try:
        text: str | None = decode_atom(stored.data)[1]
    except CorruptObjectError:
        text = None
    store.erase_object(atom_id)
    if text is not None:
        search_index_for(store).forget(atom_id, text)
        result.purged[atom_id] = text
    vector_index_for(store).forget(atom_id)


def in_history(store: Store, atom_id: bytes, tips: Iterable[bytes], limit: int = 100_000) -> bool:
    """True if a snapshot of some commit reachable from ``tips`` holds the atom.

    Walks at most ``limit`` commits; a purge received for an atom outside the
    sender's history (that it never held) must not erase anything.
    """
    trees = SnapshotTrees(store)
    load = _Commits(store)
    for count, (_, commit) in enumerate(walk(load, list(tips))):
        if count >= limit:
            return False
        if trees.get(commit.tree, atom_id) is not None:
            return True
    return False


def _checked(oid: bytes | None, kind: str, data: bytes, links: _Links) -> ObjectRow:
    """Re-hash one received object (naming it, if the sender did not); note its links."""
    named = oid is None or (isinstance(oid, bytes) and len(oid) == 32)
    if not named or not isinstance(data, bytes):
        raise CorruptObjectError("a received object is malformed; nothing was stored")
    if kind == ATOM and not data:  # purged on the sending side: its record must come along
        if oid is None:
            raise CorruptObjectError("a received atom is empty and unnamed; nothing was stored")
        links.emptied.add(oid)
        links.received[oid] = ATOM
        return oid, kind, data
    try:
        actual, value = identify(kind, data)
    except InvalidInputError as exc:
        what = oid.hex() if oid is not None else "object"
        raise CorruptObjectError(
            f"received {kind} {what} does not decode ({exc}); nothing was stored"
        ) from None
    if oid is None:
        oid = actual
    elif actual != oid:
        raise CorruptObjectError(
            f"received {kind} {oid.hex()} hashes to {actual.hex()}; nothing was stored"
        )
    links.note(oid, kind, value)
    return oid, kind, data


class _Links:
    """What the received objects name, checked against the store once they are all in."""

    def __init__(self) -> None:
        self.received: dict[bytes, str] = {}
        self.needed: dict[bytes, tuple[str, bytes]] = {}  # target -> (kind, referrer)
        self.emptied: set[bytes] = set()  # atoms that arrived purged
        self.records: dict[bytes, bytes] = {}  # purge record -> the atom it names

    def note(self, oid: bytes, kind: str, value: object) -> None:
        self.received[oid] = kind
        if isinstance(value, Commit):
            self._need(value.tree, TREE, oid)
            for parent in value.parents:
                self._need(parent, COMMIT, oid)
            root = attribution_root(value)
            if root is not None:
                self._need(root, TREE, oid)
        elif isinstance(value, Node):
            for child in value.children:
                self._need(child.id, TREE, oid)
            for item in value.items:
                for target, kind in item_targets(item):
                    self._need(target, kind, oid)
        elif isinstance(value, StoredMolecule):
            for atom_id in value.atom_ids:
                self._need(atom_id, ATOM, oid)
        elif isinstance(value, PurgeRecord):
            self.records[oid] = value.atom_id

    def _need(self, target: bytes, kind: str, referrer: bytes) -> None:
        if target != EMPTY_TREE_ID:
            self.needed.setdefault(target, (kind, referrer))

    def purge_records(self, store: Store) -> dict[bytes, bytes]:
        """The purge record received for each atom, by atom (the first, by record id).

        A record may come alone (a purge made on the sending side, reaching
        this store's copy); an atom that arrived empty needs one, received or
        held here already.

        Raises:
            CorruptObjectError: an atom arrived purged without any record.
        """
        by_atom: dict[bytes, bytes] = {}
        for record, atom_id in sorted(self.records.items()):
            by_atom.setdefault(atom_id, record)
        for atom_id in sorted(self.emptied - by_atom.keys()):
            if store.read_ref(purge_ref(atom_id)) is None:
                raise CorruptObjectError(
                    f"received atom {atom_id.hex()} without its content and without a purge"
                    " record; nothing was stored"
                )
        return by_atom

    def check(self, store: Store) -> None:
        """Raise unless every named object was received or is stored, with the right kind."""
        for target, (kind, referrer) in self.needed.items():
            got = self.received.get(target)
            if got is not None and got != kind:
                raise CorruptObjectError(
                    f"received object {referrer.hex()} names {target.hex()} as a {kind},"
                    f" but it is a {got}; nothing was stored"
                )
        elsewhere = [t for t in self.needed if t not in self.received]
        for start in range(0, len(elsewhere), BATCH):
            chunk = elsewhere[start : start + BATCH]
            found = store.get_objects(chunk)
            for target in chunk:
                kind, referrer = self.needed[target]
                if target not in found:
                    raise CorruptObjectError(
                        f"received object {referrer.hex()} names {kind} {target.hex()},"
                        " which was neither sent nor already stored; nothing was stored"
                    )
                if found[target].kind != kind:
                    raise CorruptObjectError(
                        f"received object {referrer.hex()} names {target.hex()} as a {kind},"
                        f" but it is a {found[target].kind}; nothing was stored"
                    )


def _apply(store: Store, load: _Commits, update: RefUpdate, force: bool) -> None:
    """Check one ref update and move the ref by compare-and-swap."""
    now = store.read_ref(update.name)
    if now != update.old:
        raise _moved(update, now)
    if update.new is not None:
        try:
            target = from_hex(update.new)
        except InvalidInputError:
            raise InvalidInputError(f"{update.name} cannot be set to {update.new!r}") from None
        stored = store.get_object(target)
        if stored is None or stored.kind != COMMIT:
            raise InvalidInputError(
                f"{update.name} cannot point at {short(target)}: no such commit here;"
                " nothing was stored"
            )
        if update.old is not None and not force:
            old = from_hex(update.old)
            if not is_ancestor(load, old, target):
                raise NonFastForwardError(
                    f"{update.name}: {short(target)} does not contain {short(old)};"
                    " fetch and merge first, or force it"
                )
    elif not force:
        raise NonFastForwardError(f"deleting {update.name} needs force")
    if not store.set_ref_if_equals(update.name, update.old, update.new):
        raise _moved(update, store.read_ref(update.name))
    if update.new is not None and not store.has_objects([from_hex(update.new)]):
        raise MissingObjectError(  # garbage-collected since it was checked
            f"{update.name} cannot point at {short(update.new)}: it is no longer stored;"
            " nothing was stored"
        )
    log_move(store, update.name, update.old, update.new)


def _moved(update: RefUpdate, now: str | None) -> ConcurrentUpdateError:
    return ConcurrentUpdateError(
        f"{update.name} moved to {now[:12] if now else 'nothing'} meanwhile"
        f" (expected {update.old[:12] if update.old else 'nothing'}); nothing was stored"
    )
