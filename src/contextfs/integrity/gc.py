"""``contextfs gc``: remove the objects nothing can reach, then compact the store.

Kept (the roots, as git keeps them):

* every ref's target: HEAD, branches, tags, remote-tracking branches, the
  stage and its base, a stopped merge, op-log session refs, purge records,
  and every PostgreSQL workspace's private refs;
* the commits the reflog names in entries younger than the grace period, so
  ``HEAD@{n}`` keeps resolving and a reset can be undone;
* every context object (their users keep them by id, not from refs), and
  the commits op-log checkpoints name (given by the caller, who reads the
  sessions);
* everything those reach: a commit's tree, parents and attribution tree; a
  tree node's children and the atoms and molecules its entries name; a
  molecule's atoms; a purge record's atom.

Everything else goes, with its full-text and vector index rows, in one
transaction that holds the store's write lock (SQLite's ``BEGIN IMMEDIATE``;
on PostgreSQL an advisory lock every write transaction shares), so a
concurrent writer waits, and a crash at any point leaves the store as it was
before or after, never between. Reflog entries older than the grace period
expire with it. In the same transaction the store is repacked, as git's gc
packs: compression dictionaries are trained from the store's own atoms and
tree nodes where they pay, and every older version of a tree node becomes a
delta against the version that replaced it (:mod:`.repack`). Then the store
is compacted so the bytes leave the files.

A writer that read a commit before the collection and names it in a ref after
it is refused: every ref move checks, in its transaction, that the object it
names is still stored (the move waits for the collection's lock first).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from ..errors import CorruptObjectError, InvalidInputError, MissingObjectError
from ..history.commits import COMMIT, decode_commit
from ..history.links import attribution_root, item_targets
from ..history.tree import EMPTY_TREE_ID, TREE, decode_node
from ..model.context import CONTEXT
from ..model.ids import from_hex
from ..model.objects import ATOM, MOLECULE, decode_atom, decode_molecule
from ..model.timeutil import now_micros
from ..search.base import SearchIndex
from ..search.vectors import VectorIndex
from ..store.base import CollectableStore, PackedStore, ReflogStore, ServerStore, Store
from .purge import PURGE, decode_purge_record
from .repack import plan_deltas

#: Reflog entries younger than this keep their commits, as git's gc.reflogExpire.
DEFAULT_GRACE_SECONDS: Final = 30 * 86_400
#: Objects read from the store at a time while walking.
BATCH: Final = 1000
#: The kinds a repack trains compression dictionaries for: text (tree nodes get deltas).
PACKED_KINDS: Final = (ATOM,)


@dataclass(frozen=True, slots=True)
class GcReport:
    """What a collection kept and removed (or, in a dry run, would remove).

    Attributes:
        kept: Objects reachable from the roots.
        removed: Objects removed, by kind.
        removed_bytes: Their stored bytes.
        expired: Reflog entries older than the grace period, removed.
        dry_run: Nothing was changed.
        repacked: Objects whose encoding the repack changed (to or from a delta).
        dictionaries: The kinds that got a new compression dictionary.
        bytes_before: The stored bytes of every object before the collection.
        bytes_after: After it (equal to ``bytes_before`` in a dry run).
    """

    kept: int
    removed: dict[str, int]
    removed_bytes: int
    expired: int
    dry_run: bool
    repacked: int = 0
    dictionaries: tuple[str, ...] = ()
    bytes_before: int = 0
    bytes_after: int = 0

    @property
    def removed_total(self) -> int:
        """Objects removed, of every kind."""
        return sum(self.removed.values())


def collect_garbage(
    store: Store,
    *,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    now: int | None = None,
    dry_run: bool = False,
    repack: bool = True,
    search: SearchIndex | None = None,
    vectors: VectorIndex | None = None,
    extra_roots: Iterable[bytes] = (),
) -> GcReport:
    """Remove every object no root reaches (see the module), repack, then compact.

    ``search`` and ``vectors``, the indexes beside the store, lose the rows of
    the atoms removed, in the same transaction. ``extra_roots`` are kept too
    (the commits op-log checkpoints name; those not stored are ignored).
    Without ``repack`` objects keep their encodings (a store that cannot be
    repacked, such as the in-memory one, is never repacked).

    Raises:
        InvalidInputError: the grace period is negative, the store cannot be
            collected, or it is a PostgreSQL workspace (collect the store itself,
            whose refs include every workspace's).
        MissingObjectError: a root or an object below it is missing: the store
            needs ``contextfs verify`` first; nothing is removed.
    """
    if not (grace_seconds >= 0 and math.isfinite(grace_seconds)):
        raise InvalidInputError(
            f"the grace period must be a finite number of seconds >= 0, got {grace_seconds!r}"
        )
    if not isinstance(store, CollectableStore):
        raise InvalidInputError(f"{type(store).__name__} cannot be garbage-collected")
    if getattr(store, "workspace", None) is not None:
        raise InvalidInputError(
            "collect garbage from the store itself, not from a workspace: "
            "a workspace does not see the others' stages"
        )
    moment = now if now is not None else now_micros()
    cutoff = max(moment - int(grace_seconds * 1_000_000), -(2**63))  # stays a 64-bit integer
    with store.transaction():
        lock = getattr(store, "lock_for_collection", None)
        if lock is not None:
            lock()
        extra = list(dict.fromkeys(extra_roots))
        roots = _roots(store, cutoff) | store.has_objects(extra)
        reachable = reach(store, roots)
        sizes = list(store.object_sizes())
        garbage = [
            (oid, kind, size)
            for oid, kind, size in sizes
            if oid not in reachable and kind != CONTEXT and oid != EMPTY_TREE_ID
        ]
        removed: dict[str, int] = {}
        for _, kind, _ in garbage:
            removed[kind] = removed.get(kind, 0) + 1
        expired, repacked = 0, 0
        trained: tuple[str, ...] = ()
        bytes_before = bytes_after = sum(size for _, _, size in sizes)
        if not dry_run:
            atoms = [oid for oid, kind, _ in garbage if kind == ATOM]
            _forget_indexed(atoms, store, search, vectors)
            store.delete_objects([oid for oid, _, _ in garbage])
            if isinstance(store, ReflogStore):
                expired = store.expire_reflog(cutoff)
            if repack and isinstance(store, PackedStore):
                kept = [(oid, kind) for oid, kind, _ in sizes if oid in reachable]
                trained, repacked = _repack(store, store, kept)
            bytes_after = sum(size for _, _, size in store.object_sizes())
    changed = garbage or repacked or trained
    if not dry_run and changed and isinstance(store, ServerStore) and not store.in_transaction():
        store.compact()  # inside a caller's transaction, the next gc or purge compacts
    return GcReport(
        kept=len(reachable),
        removed=dict(sorted(removed.items())),
        removed_bytes=sum(size for _, _, size in garbage),
        expired=expired,
        dry_run=dry_run,
        repacked=repacked,
        dictionaries=trained,
        bytes_before=bytes_before,
        bytes_after=bytes_after,
    )


def _repack(
    store: Store, packer: PackedStore, kept: list[tuple[bytes, str]]
) -> tuple[tuple[str, ...], int]:
    """Train dictionaries where they pay, then make old tree versions deltas of new ones."""
    trained = tuple(kind for kind in PACKED_KINDS if packer.train_dictionary(kind))
    commits = [oid for oid, kind in kept if kind == COMMIT]
    trees = [oid for oid, kind in kept if kind == TREE]
    return trained, packer.set_delta_bases(plan_deltas(store, commits, trees))


def _roots(store: Store, cutoff: int) -> set[bytes]:
    """Every ref's target and the commits of reflog entries made at ``cutoff`` or later."""
    values = list(store.list_refs().values())
    if isinstance(store, ReflogStore):
        for entry in store.reflog_since(cutoff):
            values += [v for v in (entry.old, entry.new) if v is not None]
    roots = set()
    for value in values:
        if value.startswith("ref: "):
            continue  # a symbolic ref: its target is a ref listed too
        roots.add(from_hex(value))
    return roots


def reach(store: Store, roots: Iterable[bytes]) -> set[bytes]:
    """The ids of every object ``roots`` reach, themselves included, walking a batch at a time.

    Raises:
        MissingObjectError: an object is named but not stored.
    """
    seen: set[bytes] = {EMPTY_TREE_ID}
    todo = deque(oid for oid in dict.fromkeys(roots) if oid not in seen)
    seen.update(todo)
    while todo:
        batch = [todo.popleft() for _ in range(min(BATCH, len(todo)))]
        found = store.get_objects(batch)
        for oid in batch:
            stored = found.get(oid)
            if stored is None:
                raise MissingObjectError(
                    f"object {oid.hex()} is named but missing; run contextfs verify"
                    " (nothing was removed)"
                )
            for target in _links(stored.kind, stored.data):
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
    return seen


def _links(kind: str, data: bytes) -> list[bytes]:
    """The ids an object names (what it keeps alive)."""
    if kind == COMMIT:
        commit = decode_commit(data)
        root = attribution_root(commit)
        return [commit.tree, *commit.parents, *([root] if root is not None else [])]
    if kind == TREE:
        node = decode_node(data)
        return [child.id for child in node.children] + [
            target for item in node.items for target, _ in item_targets(item)
        ]
    if kind == MOLECULE:
        return list(decode_molecule(data).atom_ids)
    if kind == PURGE:
        return [decode_purge_record(data).atom_id]
    return []  # atoms and contexts name nothing they need kept


def _forget_indexed(
    atoms: list[bytes], store: Store, search: SearchIndex | None, vectors: VectorIndex | None
) -> None:
    """Take removed atoms out of the full-text and vector indexes beside the store."""
    for start in range(0, len(atoms), BATCH):
        found = store.get_objects(atoms[start : start + BATCH])
        for oid, stored in found.items():
            if vectors is not None:
                vectors.forget(oid)
            if search is None or not stored.data:
                continue  # a purged atom's words left the index then
            try:
                _, content = decode_atom(stored.data)
            except CorruptObjectError:
                continue  # never indexed
            search.forget(oid, content)


__all__ = ["DEFAULT_GRACE_SECONDS", "GcReport", "collect_garbage", "reach"]
