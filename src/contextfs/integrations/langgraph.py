"""A LangGraph ``BaseStore`` whose every write is a ContextFS commit.

``ContextFSStore`` is a drop-in for LangGraph's ``InMemoryStore`` or
``SqliteStore`` (extra ``contextfs[langgraph]``): ``get``, ``put``,
``delete``, ``search`` and ``list_namespaces``, sync and async, with the
namespace rules LangGraph enforces. What no LangGraph store has: each
``batch`` that writes is one commit (``contextfs log``, ``diff``, ``revert``,
receipts and proofs work on an agent's memory), :meth:`ContextFSStore.history`
lists an item's versions, and :meth:`ContextFSStore.at` reads the store as it
was at any revision.

How items are kept: each item is one atom of type ``LangGraphItem`` whose
content is the canonical JSON of ``{"created_at", "key", "namespace",
"value"}`` and whose entry timestamp is its ``updated_at``; a put replaces
the item's atom, a delete removes it. A search with a ``query`` goes through
the repository's retrieval (words, and meaning when it has an embedder).
The store keeps, per process, a map from ``(namespace, key)`` to the atom
holding it, rebuilt when another process moved HEAD.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)

from ..errors import InvalidInputError, NothingToDoError
from ..model.objects import MemoryAtom
from ..model.refs import HEAD
from ..model.timeutil import from_micros, now_micros
from ..model.types import TypeSignature
from ..repo import Repository
from ..search.query import tokenize as parse_words

#: The type of the atoms that hold LangGraph items.
ITEM_TYPE = TypeSignature("LangGraphItem")
#: The tag every item's entry carries (what `contextfs search --tag` can filter on).
ITEM_TAG = "langgraph"
#: Candidates a query asks the repository for, at least (filters apply after).
MIN_CANDIDATES = 200

_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder()

Namespace = tuple[str, ...]
Address = tuple[Namespace, str]


@dataclass(frozen=True, slots=True)
class _Held:
    """An item of the snapshot, and the id of the atom holding it."""

    atom_id: str
    item: Item


@dataclass(frozen=True, slots=True)
class ItemVersion:
    """One commit that changed an item: its value after it (None: deleted there)."""

    commit: str
    author: str
    message: str
    item: Item | None


class ContextFSStore(BaseStore):
    """A LangGraph store on a ContextFS repository (see the module docstring).

    Args:
        repo: the repository: an open :class:`~contextfs.repo.Repository`, a
            folder or ``postgresql://`` URL to open, or None for a new one in
            memory (as ``InMemoryStore()``).
        author: who the commits are by.
    """

    def __init__(
        self,
        repo: Repository | str | os.PathLike[str] | None = None,
        *,
        author: str = "langgraph",
        revision: str | None = None,
    ) -> None:
        if isinstance(repo, Repository):
            self.repo, self._owned = repo, False
        elif repo is None:
            self.repo, self._owned = Repository.memory(), True
        else:
            self.repo, self._owned = Repository.open(repo), True
        self.author = author
        #: The commit this store reads (and refuses writes at), or None for HEAD.
        self.revision = None if revision is None else self.repo.resolve(revision)
        self._lock = threading.RLock()
        self._version: str | object | None = _UNREAD
        self._items: dict[Address, _Held] = {}

    def close(self) -> None:
        """Close the repository if this store opened it."""
        if self._owned:
            self.repo.close()

    def __enter__(self) -> ContextFSStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the BaseStore contract ---------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Answer reads as the store stands, then apply the writes as one commit."""
        ops = list(ops)
        with self._lock:
            self._refresh()
            results: list[Result] = []
            puts: dict[Address, PutOp] = {}
            for op in ops:
                if isinstance(op, GetOp):
                    held = self._items.get((tuple(op.namespace), op.key))
                    results.append(held.item if held is not None else None)
                elif isinstance(op, SearchOp):
                    results.append(self._search(op))
                elif isinstance(op, ListNamespacesOp):
                    results.append(self._list_namespaces(op))
                elif isinstance(op, PutOp):
                    puts[(tuple(op.namespace), op.key)] = op
                    results.append(None)
                else:
                    raise ValueError(f"Unknown operation type: {type(op).__name__}")
            if puts:
                self._write(puts)
            return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """:meth:`batch` in a worker thread (the repository is thread-safe)."""
        return await asyncio.to_thread(self.batch, list(ops))

    # -- what no LangGraph store has -------------------------------------------------------

    def history(
        self, namespace: Sequence[str], key: str, *, limit: int | None = None
    ) -> list[ItemVersion]:
        """Every commit that changed the item, newest first, with its value after it."""
        address: Address = (tuple(namespace), key)
        found: list[ItemVersion] = []
        for info in self.repo.log([self.revision or HEAD]):
            parent = info.parents[0] if info.parents else None
            changes = self.repo.diff(parent, info.id) if parent else self._added_in(info.id)
            touched, after = False, None
            for change in changes:  # a replaced item is one atom removed and one added
                old, new = _item_of(change.old), _item_of(change.new)
                if old is not None and _address(old) == address:
                    touched = True
                if new is not None and _address(new) == address:
                    touched, after = True, new
            if touched:
                found.append(ItemVersion(info.id, info.commit.author, info.commit.message, after))
            if limit is not None and len(found) >= limit:
                break
        return found

    def at(self, revision: str) -> ContextFSStore:
        """A read-only view of the store as it was at ``revision`` (``HEAD~3``, a tag, an id)."""
        return ContextFSStore(self.repo, author=self.author, revision=revision)

    # -- reading ----------------------------------------------------------------------------

    def _refresh(self) -> None:
        """Rebuild the map of items when the revision read has moved (another writer)."""
        version = self.revision or self.repo.head()
        if version == self._version:
            return
        items: dict[Address, _Held] = {}
        if version is not None:
            for memory in self.repo.snapshot(version):
                item = _item_of(memory)
                if item is not None:
                    items[_address(item)] = _Held(memory.content_hash, item)  # type: ignore[union-attr]
        self._items, self._version = items, version

    def _search(self, op: SearchOp) -> list[SearchItem]:
        prefix = tuple(op.namespace_prefix)
        wanted = [
            held
            for address, held in self._items.items()
            if address[0][: len(prefix)] == prefix and _matches_filter(held.item.value, op.filter)
        ]
        if not op.query or not _has_words(op.query):
            wanted.sort(key=lambda h: (-h.item.updated_at.timestamp(), h.item.key))
            chosen = wanted[op.offset : op.offset + op.limit]
            return [_search_item(held.item, None) for held in chosen]
        by_atom = {held.atom_id: held for held in wanted}
        if not by_atom:
            return []
        asked = min(len(self._items), max(MIN_CANDIDATES, 20 * (op.offset + op.limit)))
        hits = self.repo.search(op.query, revision=self._version or HEAD, limit=asked)  # type: ignore[arg-type]
        ranked = [
            (by_atom[h.atom.content_hash], h.score) for h in hits if h.atom.content_hash in by_atom
        ]
        return [
            _search_item(held.item, score)
            for held, score in ranked[op.offset : op.offset + op.limit]
        ]

    def _list_namespaces(self, op: ListNamespacesOp) -> list[Namespace]:
        namespaces = {address[0] for address in self._items}
        kept = [
            ns
            for ns in namespaces
            if all(_matches_condition(condition, ns) for condition in op.match_conditions or ())
        ]
        if op.max_depth is not None:
            kept = list({ns[: op.max_depth] for ns in kept})
        kept.sort()
        return kept[op.offset : op.offset + op.limit]

    def _added_in(self, commit: str) -> Iterator[_Change]:
        """The first commit's memories, as additions (it has no parent to diff against)."""
        for memory in self.repo.snapshot(commit):
            yield _Change(None, memory)

    # -- writing ----------------------------------------------------------------------------

    def _write(self, puts: dict[Address, PutOp]) -> None:
        """Apply the puts (a None value deletes) as one commit; refused at a past revision."""
        if self.revision is not None:
            raise InvalidInputError(
                f"this store reads revision {self.revision[:12]}: it cannot be written"
            )
        with self.repo.transaction():
            self._refresh()  # the write lock is held: HEAD cannot move meanwhile
            now = from_micros(now_micros())
            add: list[MemoryAtom] = []
            remove: list[str] = []
            written: dict[Address, tuple[MemoryAtom, Item] | None] = {}
            for (namespace, key), op in puts.items():
                held = self._items.get((namespace, key))
                if op.value is None:
                    if held is not None:
                        remove.append(held.atom_id)
                        written[(namespace, key)] = None
                    continue
                created = held.item.created_at if held is not None else now
                item = Item(
                    value=dict(op.value),
                    key=key,
                    namespace=namespace,
                    created_at=created,
                    updated_at=now,
                )
                atom = _atom_of(item)
                if held is not None and held.atom_id != atom.content_hash:
                    remove.append(held.atom_id)
                add.append(atom)
                written[(namespace, key)] = (atom, item)
            if not add and not remove:
                return
            self.repo.stage(add=add, remove=remove)
            try:
                commit = self.repo.commit(_message(puts), author=self.author)
            except NothingToDoError:
                return
        for address, change in written.items():
            if change is None:
                self._items.pop(address, None)
            else:
                self._items[address] = _Held(change[0].content_hash, change[1])
        self._version = commit


_UNREAD = object()


@dataclass(frozen=True, slots=True)
class _Change:
    old: Any
    new: Any


def _atom_of(item: Item) -> MemoryAtom:
    """The atom holding ``item``: its canonical JSON, timestamped with its update."""
    content = _encoder.encode(
        {
            "created_at": item.created_at.isoformat(),
            "key": item.key,
            "namespace": list(item.namespace),
            "value": item.value,
        }
    ).decode()
    return MemoryAtom(content, ITEM_TYPE, item.updated_at, tags=(ITEM_TAG,))


def _item_of(memory: object) -> Item | None:
    """The item a memory holds, or None if it holds none (another kind of memory)."""
    if not isinstance(memory, MemoryAtom) or memory.type_sig != ITEM_TYPE:
        return None
    try:
        shape = _decoder.decode(memory.content)
        return Item(
            value=dict(shape["value"]),
            key=str(shape["key"]),
            namespace=tuple(str(label) for label in shape["namespace"]),
            created_at=datetime.fromisoformat(shape["created_at"]),
            updated_at=memory.timestamp.astimezone(UTC),
        )
    except (msgspec.DecodeError, KeyError, TypeError, ValueError):
        return None


def _has_words(query: str) -> bool:
    """Whether a query holds anything to search by (``"!!!"`` does not: all items match)."""
    return bool(parse_words(query))


def _address(item: Item) -> Address:
    return (tuple(item.namespace), item.key)


def _search_item(item: Item, score: float | None) -> SearchItem:
    return SearchItem(
        namespace=tuple(item.namespace),
        key=item.key,
        value=item.value,
        created_at=item.created_at,
        updated_at=item.updated_at,
        score=score,
    )


def _message(puts: dict[Address, PutOp]) -> str:
    """A commit message naming what the batch wrote."""
    written = [f"{'/'.join(ns)}/{key}" for (ns, key), op in puts.items() if op.value is not None]
    deleted = [f"{'/'.join(ns)}/{key}" for (ns, key), op in puts.items() if op.value is None]
    parts = []
    if written:
        parts.append(
            f"put {', '.join(written[:3])}"
            + (f" and {len(written) - 3} more" if len(written) > 3 else "")
        )
    if deleted:
        parts.append(
            f"delete {', '.join(deleted[:3])}"
            + (f" and {len(deleted) - 3} more" if len(deleted) > 3 else "")
        )
    return "LangGraph store: " + "; ".join(parts)


def _matches_condition(condition: MatchCondition, namespace: Namespace) -> bool:
    """A ``prefix`` or ``suffix`` condition, ``*`` matching any one label."""
    path = tuple(condition.path)
    if len(path) > len(namespace):
        return False
    part = namespace[: len(path)] if condition.match_type == "prefix" else namespace[-len(path) :]
    return all(want in ("*", got) for want, got in zip(path, part, strict=True))


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": lambda a, b: a == b,
    "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: a is not None and a > b,
    "$gte": lambda a, b: a is not None and a >= b,
    "$lt": lambda a, b: a is not None and a < b,
    "$lte": lambda a, b: a is not None and a <= b,
}


def _matches_filter(value: dict[str, Any], wanted: dict[str, Any] | None) -> bool:
    """Whether ``value`` passes a LangGraph search filter (equality, or ``$eq``-style operators)."""
    if not wanted:
        return True
    return all(_matches_value(value.get(key), expected) for key, expected in wanted.items())


def _matches_value(got: Any, expected: Any) -> bool:
    if isinstance(expected, dict):
        if any(str(k).startswith("$") for k in expected):
            try:
                return all(_OPERATORS[op](got, operand) for op, operand in expected.items())
            except KeyError as exc:
                raise ValueError(f"Unsupported operator: {exc.args[0]}") from None
            except TypeError:
                return False
        return isinstance(got, dict) and all(
            _matches_value(got.get(k), v) for k, v in expected.items()
        )
    return bool(got == expected)


__all__ = ["ITEM_TAG", "ITEM_TYPE", "ContextFSStore", "ItemVersion"]
