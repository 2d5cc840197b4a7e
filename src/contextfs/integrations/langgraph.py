"""A LangGraph ``BaseStore`` whose every write is a ContextFS commit.

``ContextFSStore`` is a drop-in for LangGraph's ``InMemoryStore`` or
``SqliteStore`` (extra ``contextfs-vcs[langgraph]``): ``get``, ``put``,
``delete``, ``search`` and ``list_namespaces``, sync and async, with the
namespace rules LangGraph enforces, LangGraph's ``index`` configuration
(its embeddings rank a query) and its TTL configuration (a put's ``ttl``,
refresh on read, ``omit_expired``, :meth:`ContextFSStore.sweep_ttl` and a
sweeper thread; a sweep is a commit, and the times items were last read are
the store's derived data, shared by every process, never history). What
no LangGraph store has: each ``batch`` that writes is one commit
(``contextfs log``, ``diff``, ``revert``, receipts and proofs work on an
agent's memory), :meth:`ContextFSStore.history` lists an item's versions,
:meth:`ContextFSStore.at` reads the store as it was at any revision, and
:meth:`ContextFSStore.context` gives a namespace's best prompt context for a token budget.

How items are kept: each item is one atom of type ``LangGraphItem`` whose
content is the canonical JSON of ``{"created_at", "key", "namespace",
"value"}`` and whose entry timestamp is its ``updated_at``; a put replaces
the item's atom, a delete removes it. A search with a ``query`` goes through
the repository's retrieval (words, and meaning when it has an embedder).
The store keeps, per process, a map from ``(namespace, key)`` to the atom
holding it, moved along the diff when another process moved HEAD. A value is
stored (and read back, by every process) as JSON, so it must be a JSON object
of at most about 1 MB (an atom's limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
import numpy as np
from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
)
from langgraph.store.base.embed import ensure_embeddings, get_text_at_path, tokenize_path

from ..embed.base import Vectors, check_texts, unit_rows
from ..errors import ContextFSError, InvalidInputError, NothingToDoError, UncommittedChangesError
from ..expand.query import ContextQuery
from ..model.objects import MemoryAtom
from ..model.refs import HEAD
from ..model.timeutil import from_micros, now_micros
from ..model.types import TypeSignature
from ..records import PromptContext
from ..repo import Repository
from ..search.query import tokenize as parse_words
from ..store.base import DerivedStore

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
    """An item of the snapshot, the id of the atom holding it, and its put's ``index``."""

    atom_id: str
    item: Item
    index: Literal[False] | list[str] | None = None
    #: Minutes of life after its last write or read (None: it never expires).
    ttl: float | None = None


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
        index: LangGraph's ``IndexConfig`` (``dims``, ``embed``: LangChain
            ``Embeddings``, a function or a provider string; ``fields``): a
            query is then ranked by those embeddings of those fields, as
            LangGraph's stores rank it. Without one, by the repository's own
            retrieval (words, and meaning with its embedder).
        author: who the commits are by.
        revision: read the store as it was at this revision (see :meth:`at`).

    Raises:
        ValueError: ``index`` with a repository already open (its embedder is chosen).
    """

    #: LangGraph's flag: this store honours a put's ``ttl`` and the TTL configuration.
    supports_ttl = True

    def __init__(
        self,
        repo: Repository | str | os.PathLike[str] | None = None,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        author: str = "langgraph",
        revision: str | None = None,
    ) -> None:
        #: The index configuration, as LangGraph's stores keep it (None: the repository's).
        self.index_config = index
        #: LangGraph's TTL configuration (``default_ttl`` minutes, ``refresh_on_read``,
        #: ``omit_expired``, ``sweep_interval_minutes``), or None.
        self.ttl_config = ttl
        embedder = IndexEmbedder(index) if index is not None else None
        if isinstance(repo, Repository):
            if embedder is not None and revision is None:
                raise ValueError(
                    "pass index= with a path or URL: an open repository's embedder is chosen"
                )
            self.repo, self._owned = repo, False
        elif repo is None:
            self.repo, self._owned = Repository.memory(embedder=embedder), True
        else:
            self.repo, self._owned = Repository.open(repo, embedder=embedder), True
        self.author = author
        # When each item with a TTL was last read (µs, by atom id): derived data, not history.
        self._touched: dict[str, int] | None = None
        self._sweeper: threading.Thread | None = None
        self._stop_sweeping = threading.Event()
        #: The commit this store reads (and refuses writes at), or None for HEAD.
        self.revision = None if revision is None else self.repo.resolve(revision)
        self._lock = threading.RLock()
        self._embedder = embedder
        # With an index config: each item's vectors, one per field (by atom id).
        self._field_vectors: dict[str, Vectors] = {}
        self._version: str | object | None = _UNREAD
        self._items: dict[Address, _Held] = {}
        # The same items by namespace, so a search reads only the namespaces it names.
        self._by_namespace: dict[Namespace, dict[str, _Held]] = {}

    def close(self) -> None:
        """Stop the TTL sweeper; close the repository if this store opened it."""
        self.stop_ttl_sweeper()
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
            if self.ttl_config and self.ttl_config.get("omit_expired"):
                self._touched = None  # expiry depends on every process's reads
            results: list[Result] = []
            puts: dict[Address, PutOp] = {}
            read: list[_Held] = []
            for op in ops:
                if isinstance(op, GetOp):
                    held = self._items.get((tuple(op.namespace), op.key))
                    if held is not None and self._omitted(held):
                        held = None
                    if held is not None and op.refresh_ttl:
                        read.append(held)
                    results.append(held.item if held is not None else None)
                elif isinstance(op, SearchOp):
                    found = self._search(op)
                    if op.refresh_ttl:
                        read += [self._items[(r.namespace, r.key)] for r in found]
                    results.append(found)
                elif isinstance(op, ListNamespacesOp):
                    results.append(self._list_namespaces(op))
                elif isinstance(op, PutOp):
                    puts[(tuple(op.namespace), op.key)] = op
                    results.append(None)
                else:
                    raise ValueError(f"Unknown operation type: {type(op).__name__}")
            self._touch(read)
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

    def context(
        self, namespace_prefix: Sequence[str], query: str | None = None, *, budget: int = 2000
    ) -> PromptContext:
        """The best prompt context of the items under ``namespace_prefix`` for ``budget`` tokens.

        The repository's context assembly (ranked by ``query`` when given,
        cut to the budget, with a receipt that proves which version made it,
        :meth:`~contextfs.repo.Repository.context`), over these items only.
        """
        tag = _namespace_tag(tuple(namespace_prefix)) if namespace_prefix else ITEM_TAG
        return self.repo.context(
            self.revision or HEAD,
            budget=budget,
            query=query,
            where=ContextQuery(type_filter=ITEM_TYPE, tags=(tag,)),
        )

    def at(self, revision: str) -> ContextFSStore:
        """A read-only view of the store as it was at ``revision`` (``HEAD~3``, a tag, an id)."""
        return ContextFSStore(
            self.repo,
            index=self.index_config,
            ttl=self.ttl_config,
            author=self.author,
            revision=revision,
        )

    # -- reading ----------------------------------------------------------------------------

    def _refresh(self) -> None:
        """Rebuild the map of items when the revision read has moved (another writer)."""
        version = self.revision or self.repo.head()
        if version == self._version:
            return
        if isinstance(self._version, str) and version is not None and self._follow(version):
            return
        items: dict[Address, _Held] = {}
        if version is not None:
            for memory in self.repo.snapshot(version):
                held = _held_of(memory)
                if held is not None:
                    items[_address(held.item)] = held
        self._items, self._version = items, version
        self._by_namespace = {}
        for (namespace, key), held in items.items():
            self._by_namespace.setdefault(namespace, {})[key] = held
        live = {held.atom_id for held in items.values()}
        self._field_vectors = {a: v for a, v in self._field_vectors.items() if a in live}

    def _follow(self, version: str) -> bool:
        """Move the map to ``version`` by its diff from the one read; False if it cannot."""
        assert isinstance(self._version, str)
        try:
            changes = self.repo.diff(self._version, version)
        except ContextFSError:
            return False  # gone (gc) or unrelated: rebuild
        for change in changes:
            old, new = _held_of(change.old), _held_of(change.new)
            if old is not None:
                held = self._items.get(_address(old.item))
                if held is not None and held.atom_id == old.atom_id:
                    self._forget(_address(old.item))
            if new is not None:
                self._remember(new)
        self._version = version
        return True

    def _remember(self, held: _Held) -> None:
        namespace, key = _address(held.item)
        previous = self._items.get((namespace, key))
        if previous is not None and previous.atom_id != held.atom_id:
            self._field_vectors.pop(previous.atom_id, None)
        self._items[(namespace, key)] = held
        self._by_namespace.setdefault(namespace, {})[key] = held

    def _forget(self, address: Address) -> None:
        held = self._items.pop(address, None)
        if held is not None:
            self._field_vectors.pop(held.atom_id, None)
        entries = self._by_namespace.get(address[0], {})
        entries.pop(address[1], None)
        if not entries:
            self._by_namespace.pop(address[0], None)

    def _search(self, op: SearchOp) -> list[SearchItem]:
        prefix = tuple(op.namespace_prefix)
        wanted = [
            held
            for namespace, entries in self._by_namespace.items()
            if namespace[: len(prefix)] == prefix
            for held in entries.values()
            if _matches_filter(held.item.value, op.filter) and not self._omitted(held)
        ]

        def newest(held: _Held) -> tuple[float, str]:
            return (-held.item.updated_at.timestamp(), held.item.key)

        if not op.query or (self.index_config is None and not _has_words(op.query)):
            if op.offset >= 0 and op.limit >= 0:  # only the page is ordered
                chosen = heapq.nsmallest(op.offset + op.limit, wanted, key=newest)[op.offset :]
            else:
                chosen = sorted(wanted, key=newest)[op.offset : op.offset + op.limit]
            return [_search_item(held.item, None) for held in chosen]
        wanted.sort(key=newest)
        by_atom = {held.atom_id: held for held in wanted}
        if not by_atom:
            return []
        if self.index_config is not None:
            ranked = self._nearest(op.query, by_atom)
        else:
            asked = min(len(self._items), max(MIN_CANDIDATES, 20 * (op.offset + op.limit)))
            ranked = self._retrieved(op.query, by_atom, asked)
        ranked_ids = {held.atom_id for held, _ in ranked}
        # Items with no vector (put with index=False) come after, unscored, as LangGraph's do.
        filler: list[tuple[_Held, float | None]] = [
            (held, None) for held in wanted if held.atom_id not in ranked_ids
        ]
        page = [*ranked, *filler][op.offset : op.offset + op.limit]
        return [_search_item(held.item, score) for held, score in page]

    def _nearest(self, query: str, by_atom: dict[str, _Held]) -> list[tuple[_Held, float | None]]:
        """The indexed items by their best field's cosine to ``query``, as LangGraph scores them.

        Each field of an item is embedded on its own (once per process, kept
        by atom id); an item scores as its nearest field.
        """
        embedder = self._embedder
        assert embedder is not None
        indexed = [held for held in by_atom.values() if held.index is not False]
        self._embed_fields([h for h in indexed if h.atom_id not in self._field_vectors])
        query_row = embedder.embed([query])[0]
        scored: list[tuple[_Held, float | None]] = []
        for held in indexed:
            vectors = self._field_vectors.get(held.atom_id)
            if vectors is not None and len(vectors):
                scored.append((held, float(np.max(vectors @ query_row))))
        scored.sort(key=lambda pair: -(pair[1] or 0.0))
        return scored

    def _embed_fields(self, items: list[_Held]) -> None:
        """Embed the fields of ``items`` (one batch) into the per-field vector cache."""
        embedder = self._embedder
        if embedder is None or not items:
            return
        texts: list[str] = []
        spans: list[tuple[str, int, int]] = []
        for held in items:
            fields = embedder.field_texts(held.item.value, held.index)
            spans.append((held.atom_id, len(texts), len(texts) + len(fields)))
            texts += fields
        rows = embedder.embed_documents(texts)
        for atom_id, start, end in spans:
            self._field_vectors[atom_id] = rows[start:end]

    def _retrieved(
        self, query: str, by_atom: dict[str, _Held], asked: int
    ) -> list[tuple[_Held, float | None]]:
        """The items the repository's own retrieval finds for ``query``, best first."""
        hits = self.repo.search(query, revision=self._version or HEAD, limit=asked)  # type: ignore[arg-type]
        return [
            (by_atom[h.atom.content_hash], h.score)
            for h in hits
            if h.atom.content_hash in by_atom and h.score > 0
        ]

    def _list_namespaces(self, op: ListNamespacesOp) -> list[Namespace]:
        namespaces = {
            namespace
            for namespace, entries in self._by_namespace.items()
            if any(not self._omitted(held) for held in entries.values())
        }
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

    # -- time to live -------------------------------------------------------------------------

    def sweep_ttl(self) -> int:
        """Delete every expired item in one commit; return how many went (as LangGraph's)."""
        with self._lock:
            self._refresh()
            self._touched = None  # other processes' reads count: read them again
            seen = {a: h.atom_id for a, h in self._items.items() if self._expired(h)}
            if not seen:
                return 0
            return self._write(
                {a: PutOp(a[0], a[1], None) for a in seen},
                message="LangGraph store: expire {} item(s)",
                expiring=seen,
            )

    def start_ttl_sweeper(self, sweep_interval_minutes: float | None = None) -> threading.Thread:
        """Sweep in a daemon thread every ``sweep_interval_minutes`` (default: the config's)."""
        minutes = sweep_interval_minutes
        if minutes is None and self.ttl_config:
            minutes = self.ttl_config.get("sweep_interval_minutes")
        if minutes is None or minutes <= 0:
            raise ValueError("a TTL sweeper needs sweep_interval_minutes above 0")
        if self._sweeper is not None and self._sweeper.is_alive():
            return self._sweeper
        self._stop_sweeping.clear()
        interval = float(minutes) * 60

        def sweep() -> None:
            while not self._stop_sweeping.wait(interval):
                with contextlib.suppress(ContextFSError):
                    self.sweep_ttl()

        self._sweeper = threading.Thread(target=sweep, name="contextfs-ttl-sweeper", daemon=True)
        self._sweeper.start()
        return self._sweeper

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper thread; True once it has stopped."""
        self._stop_sweeping.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout)
            return not self._sweeper.is_alive()
        return True

    def _expired(self, held: _Held) -> bool:
        if held.ttl is None:
            return False
        touched = max(_micros(held.item.updated_at), self._touches().get(held.atom_id, 0))
        return touched + int(held.ttl * 60_000_000) <= now_micros()

    def _omitted(self, held: _Held) -> bool:
        """Whether reads leave ``held`` out: expired, with ``omit_expired`` configured."""
        return bool(self.ttl_config and self.ttl_config.get("omit_expired")) and self._expired(held)

    def _touches(self) -> dict[str, int]:
        if self._touched is None:
            store = self.repo.store
            data = store.read_derived(_TOUCHED) if isinstance(store, DerivedStore) else None
            self._touched = dict(_touch_decoder.decode(data)) if data else {}
        return self._touched

    def _touch(self, read: list[_Held]) -> None:
        """Refresh the TTL of items just read (best effort: derived data, never a commit)."""
        living = [held for held in read if held.ttl is not None]
        if not living or self.revision is not None:
            return
        self._touched = None  # merge with what other processes' reads recorded meanwhile
        touches, now = self._touches(), now_micros()
        for held in living:
            touches[held.atom_id] = now
        alive = {held.atom_id for held in self._items.values() if held.ttl is not None}
        kept = {atom: at for atom, at in touches.items() if atom in alive}
        self._touched = kept
        store = self.repo.store
        if isinstance(store, DerivedStore):
            with contextlib.suppress(ContextFSError):  # busy or read-only: a later read retries
                store.write_derived(_TOUCHED, _touch_encoder.encode(kept))

    def _write(
        self,
        puts: dict[Address, PutOp],
        *,
        message: str | None = None,
        expiring: dict[Address, str] | None = None,
    ) -> int:
        """Apply the puts (a None value deletes) as one commit; refused at a past revision."""
        if self.revision is not None:
            raise InvalidInputError(
                f"this store reads revision {self.revision[:12]}: it cannot be written"
            )
        with self.repo.transaction():
            if self.repo.status().changes:
                raise UncommittedChangesError(
                    "the repository has staged changes that a store write would commit with"
                    " its own; commit or reset them (or give the store a repository of its own)"
                )
            self._refresh()  # the write lock is held: HEAD cannot move meanwhile
            if expiring is not None:  # a sweep: only what is still that atom, still expired
                self._touched = None
                puts = {
                    address: op
                    for address, op in puts.items()
                    if (held := self._items.get(address)) is not None
                    and held.atom_id == expiring[address]
                    and self._expired(held)
                }
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
                    value=_json_value(op.value),
                    key=key,
                    namespace=namespace,
                    created_at=created,
                    updated_at=now,
                )
                atom = _atom_of(item, op.index, _minutes(op.ttl))
                if held is not None and held.atom_id != atom.content_hash:
                    remove.append(held.atom_id)
                add.append(atom)
                written[(namespace, key)] = (atom, item)
            if not add and not remove:
                return 0
            self.repo.stage(add=add, remove=remove)
            text = message.format(len(written)) if message else _message(puts)
            try:
                commit = self.repo.commit(text, author=self.author)
            except NothingToDoError:
                return 0
        for address, change in written.items():
            if change is None:
                self._forget(address)
            else:
                put = puts[address]
                self._remember(
                    _Held(change[0].content_hash, change[1], put.index, _minutes(put.ttl))
                )
        self._version = commit
        return len(written)


_UNREAD = object()
#: The derived-data key of the last-read times of items with a TTL.
_TOUCHED = "langgraph-ttl-touched"
_touch_encoder = msgspec.msgpack.Encoder()
_touch_decoder = msgspec.msgpack.Decoder(dict[str, int])


@dataclass(frozen=True, slots=True)
class _Change:
    old: Any
    new: Any


def _atom_of(
    item: Item, index: Literal[False] | list[str] | None = None, ttl: float | None = None
) -> MemoryAtom:
    """The atom holding ``item``: its canonical JSON, timestamped with its update.

    ``index`` (a put's): False keeps the item out of vector search; a list
    names the fields to embed instead of the index's (kept in the JSON, so
    the embedder reads it).
    """
    shape: dict[str, Any] = {
        "created_at": item.created_at.isoformat(),
        "key": item.key,
        "namespace": list(item.namespace),
        "value": item.value,
    }
    if index is not None:
        shape["index"] = index
    if ttl is not None:
        shape["ttl"] = ttl
    content = _encoder.encode(shape).decode()
    prefixes = [
        _namespace_tag(item.namespace[:depth]) for depth in range(1, len(item.namespace) + 1)
    ]
    return MemoryAtom(content, ITEM_TYPE, item.updated_at, tags=(ITEM_TAG, *prefixes))


def _namespace_tag(namespace: Namespace) -> str:
    """The tag every item under ``namespace`` carries (labels hold no ``.``: LangGraph's rule)."""
    return f"{ITEM_TAG}:{_encoder.encode(list(namespace)).decode()}"


def _item_of(memory: object) -> Item | None:
    """The item a memory holds, or None if it holds none (another kind of memory)."""
    held = _held_of(memory)
    return held.item if held is not None else None


def _held_of(memory: object) -> _Held | None:
    """The item a memory holds, with its put's ``index`` and ``ttl`` (one decode), or None."""
    if not isinstance(memory, MemoryAtom) or memory.type_sig != ITEM_TYPE:
        return None
    try:
        shape = _decoder.decode(memory.content)
        item = Item(
            value=dict(shape["value"]),
            key=str(shape["key"]),
            namespace=tuple(str(label) for label in shape["namespace"]),
            created_at=datetime.fromisoformat(shape["created_at"]),
            updated_at=memory.timestamp.astimezone(UTC),
        )
    except (msgspec.DecodeError, KeyError, TypeError, ValueError):
        return None
    chosen = shape.get("index")
    index: Literal[False] | list[str] | None = None
    if chosen is False:
        index = False
    elif isinstance(chosen, list):
        index = [str(field) for field in chosen]
    minutes = shape.get("ttl")
    ttl = float(minutes) if isinstance(minutes, int | float) else None
    return _Held(memory.content_hash, item, index, ttl)


class IndexEmbedder:
    """An :class:`~contextfs.embed.Embedder` made of a LangGraph ``IndexConfig``.

    It embeds an item's atom (its JSON) by the text at the index's fields
    (or the put's own), with the configured embeddings' ``embed_documents``;
    anything else (a query) with ``embed_query``. An item put with
    ``index=False`` gets a zero vector, which matches nothing.
    """

    def __init__(self, config: IndexConfig) -> None:
        if "dims" not in config or "embed" not in config:
            raise ValueError("an index config needs dims and embed")
        self._embeddings = ensure_embeddings(config["embed"])
        self._dims = int(config["dims"])
        self._fields = list(config.get("fields") or ["$"])
        self._id = f"langgraph:{_model_name(config['embed'])}-{self._dims}@{','.join(self._fields)}"

    @property
    def id(self) -> str:
        """The embeddings' class, dimensions and fields (vectors are kept per id)."""
        return self._id

    @property
    def dimensions(self) -> int:
        """The configured ``dims``."""
        return self._dims

    def _async_only(self) -> bool:
        """An async embedding function alone (LangGraph wraps it with no sync one)."""
        return getattr(self._embeddings, "afunc", None) is not None and (
            getattr(self._embeddings, "func", None) is None
        )

    def _documents(self, texts: list[str]) -> list[list[float]]:
        if self._async_only():  # this runs in a worker thread (abatch), without a loop
            return asyncio.run(self._embeddings.aembed_documents(texts))
        return self._embeddings.embed_documents(texts)

    def _query(self, text: str) -> list[float]:
        if self._async_only():
            return asyncio.run(self._embeddings.aembed_query(text))
        return self._embeddings.embed_query(text)

    def field_texts(self, value: dict[str, Any], index: object) -> list[str]:
        """The texts an item is embedded by, one per field path (``index``: the put's own)."""
        if index is False:
            return []
        found: list[str] = []
        for field in index if isinstance(index, list) else self._fields:
            path = str(field)
            found += get_text_at_path(value, path if path == "$" else tokenize_path(path))
        return found

    def embed_documents(self, texts: list[str]) -> Vectors:
        """Unit rows for document texts, with the configured embeddings."""
        if not texts:
            return np.zeros((0, self._dims), dtype=np.float32)
        raw = self._documents(texts)
        return unit_rows(np.asarray(raw, dtype=np.float32), len(texts), self._dims, self._id)

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One unit row per text: items by their fields, queries as they are."""
        rows = np.zeros((len(texts), self._dims), dtype=np.float32)
        documents: list[tuple[int, str]] = []
        for number, text in enumerate(check_texts(texts)):
            fields = self._document_text(text)
            if fields is None:
                rows[number] = self._query(text)
            elif fields:
                documents.append((number, fields))
        if documents:
            vectors = self._documents([text for _, text in documents])
            for (number, _), vector in zip(documents, vectors, strict=True):
                rows[number] = vector
        return unit_rows(rows, len(texts), self._dims, self._id)

    def _document_text(self, text: str) -> str | None:
        """The text to embed for an item's atom ("" for none), or None if ``text`` is no item."""
        try:
            shape = _decoder.decode(text)
        except msgspec.DecodeError:
            return None
        if not isinstance(shape, dict) or not {"key", "namespace", "value"} <= shape.keys():
            return None
        return " ".join(self.field_texts(shape["value"], shape.get("index")))


def _model_name(embed: object) -> str:
    """What identifies the embeddings' model, for the vectors' embedder id."""
    if isinstance(embed, str):
        return embed  # a provider string: "openai:text-embedding-3-small"
    for attribute in ("model", "model_name", "model_id"):
        value = getattr(embed, attribute, None)
        if isinstance(value, str) and value:
            return f"{type(embed).__name__}:{value}"
    function = getattr(embed, "__qualname__", None) or type(embed).__qualname__
    module = getattr(embed, "__module__", None) or type(embed).__module__
    return f"{module}.{function}"


def _has_words(query: str) -> bool:
    """Whether a query holds anything to search by (``"!!!"`` does not: all items match)."""
    return bool(parse_words(query))


def _minutes(ttl: object) -> float | None:
    """A put's TTL in minutes, or None (no TTL, or LangGraph's "not provided")."""
    return float(ttl) if isinstance(ttl, int | float) and not isinstance(ttl, bool) else None


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _json_value(value: object) -> dict[str, Any]:
    """``value`` as every reader will see it: through JSON, as it is stored.

    Raises:
        InvalidInputError: it is not a JSON object (keys not text, a value JSON cannot carry).
    """
    try:
        decoded = _decoder.decode(_encoder.encode(value))
    except (TypeError, msgspec.EncodeError) as exc:
        raise InvalidInputError(f"a stored value must be a JSON object: {exc}") from None
    if not isinstance(decoded, dict):
        raise InvalidInputError("a stored value must be a JSON object")
    return decoded


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


__all__ = ["ITEM_TAG", "ITEM_TYPE", "ContextFSStore", "IndexEmbedder", "ItemVersion"]
