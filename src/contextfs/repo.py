"""The Repository: the one facade that the CLI, servers and users call.

A :class:`Repository` is a :class:`~contextfs.store.base.Store` and the
services composed over it, each with one job (``docs/ARCHITECTURE.md``):

=================  ========================================  ===================================
attribute          service                                   holds
=================  ========================================  ===================================
``objects``        :class:`~.services.objects.ObjectReader`  commits, memories, snapshots, diffs
``refs``           :class:`~.services.refs.Refs`             HEAD, branches, tags, revisions, CAS
``workspace``      :class:`~.services.workspace.Workspace`   stage, commit, switch, reset, merge
``assembler``      :class:`~.services.assembler.ContextAssembler`  search, context, sessions
``oplogs``         :class:`~.services.oplogs.OpLogSessions`  op logs, crystallising, actor reverts
``integrity``      :class:`~.services.integrity.Integrity`   proofs, verify, purge
=================  ========================================  ===================================

The facade opens and closes repositories and groups calls in transactions;
every other method is a one-line delegate to a service, with the service's
documentation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

from .backends import open_store, url_scheme
from .config import RepoConfig, read_config, write_config
from .discovery import DATABASE, REPO_DIR, find_repository, is_repository
from .embed import Embedder, default_embedder
from .embed.names import check_embedder_name, default_embedder_name, embedder_named
from .errors import (
    InvalidInputError,
    RepositoryExistsError,
    RepositoryNotFoundError,
    StoreError,
)
from .expand.context import ExpandedContext
from .expand.lattice import RelevanceLattice
from .expand.query import ContextQuery
from .expand.receipt import Receipt, ReceiptVerification
from .expand.render import Format
from .expand.stream import ExpansionChunk, iter_chunks
from .expand.tokens import Tokenizer
from .history.commits import Commit
from .history.tree import EMPTY_TREE_DATA, EMPTY_TREE_ID, TREE, Scorer, SnapshotTrees
from .integrity.fsck import VerifyReport
from .integrity.gc import DEFAULT_GRACE_SECONDS, GcReport
from .integrity.proofs import Proof
from .integrity.prune import PruneReport, this_machine
from .integrity.purge import PurgeRecord
from .model import refs as refnames
from .model.canonical import Metadata
from .model.context import CompressedContext
from .model.ids import ObjectId
from .model.objects import MemoryAtom, MemoryMolecule
from .model.types import TypeSignature
from .oplog.base import OpLogBackend
from .oplog.crystallise import OplogCommit
from .records import (
    Change,
    CommitInfo,
    ConflictInfo,
    Memory,
    MergeResult,
    PromptContext,
    SearchHit,
    Status,
    TurnContext,
)
from .search.base import SearchIndex
from .search.query import Mode
from .services.assembler import (
    DEFAULT_PATIENCE,
    DEFAULT_SESSION_BUDGET,
    ContextAssembler,
    Purged,
    Retrieval,
)
from .services.crystallise import Crystalliser
from .services.embeddings import Embeddings, Progress
from .services.indexes import Indexes
from .services.integrity import Integrity
from .services.objects import ObjectReader
from .services.oplogs import ActorRevert, OpLogSessions
from .services.refs import Refs
from .services.storage import Storage
from .services.workspace import DEFAULT_AUTHOR, UNSET, ProgressCallback, Side, Workspace
from .session.tiers import IDENTITY_TYPES, SessionPayload, Summariser, TierBudgets
from .session.turns import EPOCH_TURNS, STALE_TURNS, CostWeights
from .store.base import ReflogEntry, Store, WorkspaceStore
from .store.memory import MemoryStore
from .store.sqlite import SqliteStore
from .store.urls import STORE_URL_ENV

_F = TypeVar("_F", bound=Callable[..., object])


def _doc(source: Callable[..., object]) -> Callable[[_F], _F]:
    """Give a delegate the documentation of the service method it calls."""

    def apply(delegate: _F) -> _F:
        delegate.__doc__ = source.__doc__
        return delegate

    return apply


class Repository:
    """Version control for an agent's memory: stage, commit, branch, merge, expand, prove."""

    def __init__(
        self, store: Store, *, path: Path | None = None, embedder: Embedder | str | None = None
    ) -> None:
        """Compose the services over an open ``store``; use :meth:`init`, :meth:`open` instead.

        Args:
            store: the store, which the repository now owns (closed by :meth:`close`).
            path: the ``.contextfs`` folder, where a file op log and config live.
            embedder: what turns memories into vectors for finding them by
                meaning, or its name (:func:`contextfs.embed.embedder_named`;
                ``"none"``: words only); default
                :func:`contextfs.embed.default_embedder`, offline. Loaded on
                the first query that needs it.

        Raises:
            InvalidInputError: ``embedder`` is a name that names no embedder.
        """
        chosen: Embedder | None
        try:
            if embedder is None:
                chosen = default_embedder()
            elif isinstance(embedder, str):
                chosen = embedder_named(embedder)
            else:
                chosen = embedder
        except BaseException:
            store.close()  # the repository owns the store, even when it cannot be made
            raise
        self.store = store
        self.path = path
        self.storage = Storage(store)
        self.trees: SnapshotTrees = self.storage.trees
        self.indexes = index = Indexes(store)
        self.objects = ObjectReader(self.storage)
        self.refs = Refs(self.storage, self.objects)
        self.embeddings = Embeddings(self.storage, index, chosen)
        self.workspace = Workspace(self.storage, self.objects, self.refs, index)
        self.assembler = ContextAssembler(
            self.storage, self.objects, self.refs, self.workspace, index, self.embeddings
        )
        crystalliser = Crystalliser(self.storage, self.objects, self.refs, self.workspace, index)
        self.oplogs = OpLogSessions(
            self.storage, self.objects, self.refs, self.workspace, crystalliser, path
        )
        self.integrity = Integrity(self.storage, self.objects, self.refs, index, self.oplogs)

    # -- opening and closing ---------------------------------------------------------

    @classmethod
    def init(
        cls,
        path: str | os.PathLike[str] = ".",
        *,
        branch: str = refnames.DEFAULT_BRANCH,
        store: str | None = None,
        embedder: str | None = None,
    ) -> Self:
        """Create a repository in ``path/.contextfs`` and return it open.

        With ``store`` (a ``postgresql://`` URL) the memories live in that
        database and the folder only records where: a store that already holds
        a repository is joined, not re-initialised, so every machine of a team
        runs the same ``init --store``. ``embedder`` names what finds memories
        by meaning (:func:`contextfs.embed.embedder_named`; ``"none"`` for
        words only; default :func:`~contextfs.embed.names.default_embedder_name`,
        offline); the folder's config records it.

        Raises:
            RepositoryExistsError: the folder is a repository already.
            InvalidInputError: ``branch`` or ``embedder`` is not a valid name.
            StoreError: the store cannot be created or reached.
        """
        refnames.branch_ref(branch)  # refuse a bad name before touching the disk
        embedder = (
            check_embedder_name(embedder) if embedder is not None else default_embedder_name()
        )
        folder = Path(path) / REPO_DIR
        if is_repository(folder):
            raise RepositoryExistsError(f"a ContextFS repository already exists in {str(folder)!r}")
        if store is not None:
            return cls._init_shared(folder, store, branch, embedder)
        database = folder / DATABASE
        # Build the store under a temporary name and rename it into place, so a
        # crash never leaves a half-initialised repository that blocks `init`.
        scratch = folder / f".{DATABASE}.{os.getpid()}.init"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            cls.create(SqliteStore.open(scratch, create=True), branch=branch).close()
            write_config(folder, RepoConfig(embedder=embedder))  # before the store appears
            os.replace(scratch, database)
        except OSError as exc:
            raise StoreError(
                f"cannot create a repository in {str(folder)!r}: {exc.strerror}"
            ) from None
        finally:
            for leftover in (scratch, Path(f"{scratch}-wal"), Path(f"{scratch}-shm")):
                with contextlib.suppress(OSError):
                    leftover.unlink(missing_ok=True)
        return cls(SqliteStore.open(database), path=folder, embedder=embedder)

    @classmethod
    def _init_shared(cls, folder: Path, url: str, branch: str, embedder: str) -> Self:
        """Initialise (or join) the repository in the store at ``url``; record it in the folder.

        The folder gets a workspace of its own in the store, so its HEAD and
        stage are its own while branches, tags and history are shared.
        """
        if url_scheme(url) is None:
            raise InvalidInputError(
                "--store takes a postgresql:// URL (the default store is the folder's own"
                " SQLite file)"
            )
        with cls(open_store(url, create=True)) as shared:
            if shared.store.read_ref(refnames.HEAD) is None:
                with contextlib.suppress(RepositoryExistsError):  # another machine won the race
                    shared._initialise(branch)
        workspace = secrets.token_hex(8)
        repo = cls(open_store(url, workspace=workspace), path=folder, embedder=embedder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            write_config(folder, RepoConfig(store=url, workspace=workspace, embedder=embedder))
            if isinstance(repo.store, WorkspaceStore):  # so a prune can tell when it is gone
                repo.store.register_workspace(str(folder.resolve()), this_machine())
        except OSError as exc:
            repo.close()
            raise StoreError(
                f"cannot create a repository in {str(folder)!r}: {exc.strerror}"
            ) from None
        return repo

    @classmethod
    def open(
        cls, path: str | os.PathLike[str] | None = None, *, embedder: Embedder | str | None = None
    ) -> Self:
        """Open the repository at ``path``: a folder at or below it, or a store URL.

        ``path`` may be a ``postgresql://`` URL. Without ``path``,
        ``CONTEXTFS_STORE_URL`` names the store if set; otherwise the folder is
        found from the current directory (``CONTEXTFS_DIR`` overrides), and its
        ``config.json`` may point at a PostgreSQL store and the folder's
        workspace in it (its own HEAD and stage). ``embedder`` overrides the
        one the folder's config names (see :meth:`__init__`).
        """
        if url_scheme(path) is not None:
            assert isinstance(path, str)
            return cls(open_store(path), embedder=embedder)
        url = os.environ.get(STORE_URL_ENV) if path is None else None
        if url:
            folder: Path | None = None
            with contextlib.suppress(RepositoryNotFoundError):
                folder = find_repository()
            config = read_config(folder) if folder is not None else RepoConfig()
            return cls(
                open_store(url, workspace=config.workspace),
                path=folder,
                embedder=embedder if embedder is not None else config.embedder,
            )
        folder = find_repository(path)
        config = read_config(folder)
        chosen = embedder if embedder is not None else config.embedder
        if config.store is not None:
            store = open_store(config.store, workspace=config.workspace)
            return cls(store, path=folder, embedder=chosen)
        return cls(SqliteStore.open(folder / DATABASE), path=folder, embedder=chosen)

    @classmethod
    def memory(
        cls, *, branch: str = refnames.DEFAULT_BRANCH, embedder: Embedder | str | None = None
    ) -> Self:
        """Return a new repository held in memory only (tests, scratch work)."""
        return cls.create(MemoryStore(), branch=branch, embedder=embedder)

    @classmethod
    def create(
        cls,
        store: Store,
        *,
        branch: str = refnames.DEFAULT_BRANCH,
        embedder: Embedder | str | None = None,
    ) -> Self:
        """Initialise a repository in the empty ``store`` and return it open.

        The repository owns the store from here on: it is closed with the
        repository, or at once if initialising fails.

        Raises:
            RepositoryExistsError: the store holds a repository already.
        """
        repo = cls(store, embedder=embedder)
        try:
            repo._initialise(branch)
        except BaseException:
            repo.close()
            raise
        return repo

    def _initialise(self, branch: str) -> None:
        target = refnames.branch_ref(branch)
        with self.transaction():
            self.store.put_objects([(EMPTY_TREE_ID, TREE, EMPTY_TREE_DATA)])
            if not self.store.set_ref_if_equals(refnames.HEAD, None, refnames.symbolic(target)):
                raise RepositoryExistsError("the store already holds a repository")

    def transaction(self) -> AbstractContextManager[None]:
        """Group repository calls so they land together, durably, or not at all.

        Every mutating method runs in one already; nest them in an outer one
        to make several calls atomic (``with repo.transaction(): repo.add_atoms(...);
        repo.commit(...)``). Tree nodes written along the way are discarded if
        the block fails, so nothing half-built reaches the store.
        """
        return self.storage.transaction()

    def close(self) -> None:
        """Close the underlying store; safe to call twice."""
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def search_index(self) -> SearchIndex:
        """The full-text index beside this repository's store (made on first use)."""
        return self.indexes.search

    # -- finding by meaning ------------------------------------------------------------

    @property
    def embedder(self) -> Embedder | None:
        """What finds this repository's memories by meaning (``None``: by words only)."""
        return self.embeddings.embedder

    def set_embedder(self, name: str) -> int:
        """Make the embedder ``name`` names this repository's, from now on.

        The folder's config records it, so every later open uses it. The
        vectors of other embedders are dropped, since nothing reads them any
        more; the new one's are made lazily, by the next query by meaning or
        by :meth:`index`. Returns how many vectors were dropped.

        Raises:
            InvalidInputError: ``name`` names no embedder, or the repository
                has no folder to record it in (pass ``embedder=`` to
                :meth:`open` instead).
        """
        name = check_embedder_name(name)
        chosen = embedder_named(name)
        if self.path is None:
            raise InvalidInputError(
                "only a repository folder records its embedder; pass embedder= when"
                " opening a store by URL"
            )
        write_config(self.path, dataclasses.replace(read_config(self.path), embedder=name))
        return self.embeddings.replace(chosen)

    def index(self, revision: str = refnames.HEAD, *, progress: Progress | None = None) -> int:
        """Make the vectors ``revision``'s memories lack now, not on the next query.

        Returns how many memories were embedded; ``progress`` hears
        ``(done, total)`` after every batch.

        Raises:
            InvalidInputError: the repository has no embedder.
        """
        self.embeddings.required()
        return self.embeddings.catch_up(self.refs.tree(revision), progress)

    # -- objects -----------------------------------------------------------------------

    @_doc(ObjectReader.commit)
    def load_commit(self, oid: bytes) -> Commit:
        return self.objects.commit(oid)

    @_doc(ObjectReader.is_purged)
    def is_purged(self, atom_id: bytes | str) -> bool:
        return self.objects.is_purged(atom_id)

    @_doc(ObjectReader.memory_id)
    def memory_id(self, ref: str) -> ObjectId:
        return self.objects.memory_id(ref)

    def log(
        self, revisions: Iterable[str] = (refnames.HEAD,), *, limit: int | None = None
    ) -> Iterator[CommitInfo]:
        """Yield commits reachable from ``revisions``, newest generation first."""
        return self.objects.log([self.refs.resolve_id(rev) for rev in revisions], limit=limit)

    def show(self, revision: str = refnames.HEAD) -> tuple[CommitInfo, list[Change]]:
        """Return a commit and the changes it made against its first parent."""
        return self.objects.show(self.refs.resolve_id(revision))

    def compressed(self, revision: str = refnames.HEAD) -> CompressedContext:
        """Return ``revision``'s change as the seed's ``CompressedContext``.

        See :meth:`ObjectReader.compressed <contextfs.services.objects.ObjectReader.compressed>`:
        expanding it with ``ExpanderFunctor(repo)`` gives the commit's own snapshot.
        """
        return self.objects.compressed(self.refs.resolve_id(revision))

    def diff(self, old: str, new: str | None = None) -> list[Change]:
        """Return the entries that differ from revision ``old`` to ``new`` (None: the stage)."""
        return self.objects.changes(self.refs.tree(old), self.workspace.tree_of(new))

    def snapshot(self, revision: str | None = refnames.HEAD) -> list[Memory]:
        """Return every memory in ``revision`` (None: the stage), in id order."""
        return self.objects.snapshot(self.workspace.tree_of(revision))

    def count(self, revision: str | None = refnames.HEAD) -> int:
        """Return how many entries ``revision`` (None: the stage) holds."""
        return self.objects.count(self.workspace.tree_of(revision))

    def get(self, ref: str, revision: str | None = None) -> Memory:
        """Return the memory whose id starts with ``ref`` in ``revision`` (None: the stage)."""
        if revision is None:
            return self.workspace.staged(ref)
        return self.objects.get(ref, self.refs.tree(revision), revision)

    # -- refs --------------------------------------------------------------------------

    @property
    def current_branch(self) -> str | None:
        """The checked-out branch's short name, or None when HEAD is detached."""
        return self.refs.current_branch

    @_doc(Refs.head)
    def head(self) -> ObjectId | None:
        return self.refs.head()

    @_doc(Refs.resolve)
    def resolve(self, revision: str) -> ObjectId:
        return self.refs.resolve(revision)

    @_doc(Refs.branches)
    def branches(self) -> dict[str, ObjectId]:
        return self.refs.branches()

    @_doc(Refs.reflog)
    def reflog(self, ref: str = refnames.HEAD, *, limit: int | None = None) -> list[ReflogEntry]:
        return self.refs.reflog(ref, limit=limit)

    @_doc(Refs.tags)
    def tags(self) -> dict[str, ObjectId]:
        return self.refs.tags()

    @_doc(Refs.create_branch)
    def create_branch(
        self, name: str, start: str = refnames.HEAD, *, force: bool = False
    ) -> ObjectId:
        return self.refs.create_branch(name, start, force=force)

    @_doc(Refs.delete_branch)
    def delete_branch(self, name: str, *, force: bool = False) -> ObjectId:
        return self.refs.delete_branch(name, force=force)

    @_doc(Refs.create_tag)
    def create_tag(self, name: str, revision: str = refnames.HEAD) -> ObjectId:
        return self.refs.create_tag(name, revision)

    @_doc(Refs.delete_tag)
    def delete_tag(self, name: str) -> ObjectId:
        return self.refs.delete_tag(name)

    @_doc(Refs.update_ref)
    def update_ref(self, name: str, new: str | None, expected_old: str | None) -> None:
        return self.refs.update_ref(name, new, expected_old)

    # -- the workspace -----------------------------------------------------------------

    @_doc(Workspace.add)
    def add(
        self,
        memory: str | MemoryAtom,
        type_sig: str | TypeSignature = "String",
        *,
        relevance: float = 1.0,
        source: str = "",
        tags: Iterable[str] = (),
        timestamp: int | None = None,
        abstract: str | None = None,
        overview: str | None = None,
    ) -> ObjectId:
        return self.workspace.add(
            memory,
            type_sig,
            relevance=relevance,
            source=source,
            tags=tags,
            timestamp=timestamp,
            abstract=abstract,
            overview=overview,
        )

    @_doc(Workspace.add_atoms)
    def add_atoms(
        self, atoms: Iterable[MemoryAtom], *, progress: ProgressCallback | None = None
    ) -> list[ObjectId]:
        return self.workspace.add_atoms(atoms, progress=progress)

    @_doc(Workspace.stage)
    def stage(
        self,
        *,
        add: Iterable[MemoryAtom] = (),
        remove: Iterable[str] = (),
        progress: ProgressCallback | None = None,
    ) -> tuple[list[ObjectId], list[ObjectId]]:
        return self.workspace.stage(add=add, remove=remove, progress=progress)

    @_doc(Workspace.add_molecule)
    def add_molecule(self, molecule: MemoryMolecule) -> ObjectId:
        return self.workspace.add_molecule(molecule)

    @_doc(Workspace.remove)
    def remove(self, *refs: str) -> list[ObjectId]:
        return self.workspace.remove(*refs)

    @_doc(Workspace.update_entry)
    def update_entry(
        self,
        ref: str,
        *,
        relevance: float | object = UNSET,
        source: str | object = UNSET,
        tags: Iterable[str] | object = UNSET,
        abstract: str | object | None = UNSET,
        overview: str | object | None = UNSET,
    ) -> ObjectId:
        return self.workspace.update_entry(
            ref, relevance=relevance, source=source, tags=tags, abstract=abstract, overview=overview
        )

    @_doc(Workspace.status)
    def status(self) -> Status:
        return self.workspace.status()

    @_doc(Workspace.commit)
    def commit(
        self,
        message: str,
        *,
        author: str = DEFAULT_AUTHOR,
        allow_empty: bool = False,
        metadata: Metadata | None = None,
        expect_head: str | object | None = UNSET,
    ) -> ObjectId:
        return self.workspace.commit(
            message,
            author=author,
            allow_empty=allow_empty,
            metadata=metadata,
            expect_head=expect_head,
        )

    @_doc(Workspace.switch)
    def switch(self, name: str, *, create: bool = False, detach: bool = False) -> ObjectId | None:
        return self.workspace.switch(name, create=create, detach=detach)

    @_doc(Workspace.reset)
    def reset(
        self, revision: str = refnames.HEAD, *, mode: Literal["soft", "hard", "safe"] = "safe"
    ) -> ObjectId:
        return self.workspace.reset(revision, mode=mode)

    @_doc(Workspace.revert)
    def revert(self, revision: str, *, author: str = DEFAULT_AUTHOR, mainline: int = 1) -> ObjectId:
        return self.workspace.revert(revision, author=author, mainline=mainline)

    @_doc(Workspace.merge)
    def merge(
        self,
        revision: str,
        *,
        author: str = DEFAULT_AUTHOR,
        message: str | None = None,
        strategy: Side | None = None,
        fast_forward: bool = True,
    ) -> MergeResult:
        return self.workspace.merge(
            revision, author=author, message=message, strategy=strategy, fast_forward=fast_forward
        )

    @_doc(Workspace.conflicts)
    def conflicts(self) -> tuple[ConflictInfo, ...]:
        return self.workspace.conflicts()

    @_doc(Workspace.resolve_conflict)
    def resolve_conflict(self, ref: str, side: Side) -> ObjectId:
        return self.workspace.resolve_conflict(ref, side)

    @_doc(Workspace.abort_merge)
    def abort_merge(self) -> None:
        return self.workspace.abort_merge()

    # -- context assembly --------------------------------------------------------------

    @_doc(ContextAssembler.ranked_atoms)
    def ranked_atoms(
        self, revision: str = refnames.HEAD, *, score: Scorer | None = None, batch: int = 64
    ) -> Iterator[MemoryAtom]:
        return self.assembler.ranked_atoms(revision, score=score, batch=batch)

    @_doc(ContextAssembler.search)
    def search(
        self,
        query: str,
        *,
        revision: str = refnames.HEAD,
        limit: int = 10,
        mode: Mode = "any",
        where: ContextQuery | None = None,
        half_life_seconds: float | None = None,
        now: int | None = None,
        retrieval: Retrieval | None = None,
    ) -> list[SearchHit]:
        return self.assembler.search(
            query,
            revision=revision,
            limit=limit,
            mode=mode,
            where=where,
            half_life_seconds=half_life_seconds,
            now=now,
            retrieval=retrieval,
        )

    @_doc(ContextAssembler.context)
    def context(
        self,
        revision: str = refnames.HEAD,
        *,
        budget: int | None = None,
        query: str | None = None,
        mode: Mode = "any",
        format: Format = "lines",
        half_life_seconds: float | None = None,
        now: int | None = None,
        where: ContextQuery | None = None,
        compact: bool = True,
        patience: int | None = DEFAULT_PATIENCE,
        tokenizer: Tokenizer | None = None,
        purged: Purged = "omit",
        retrieval: Retrieval | None = None,
    ) -> PromptContext:
        return self.assembler.context(
            revision,
            budget=budget,
            query=query,
            mode=mode,
            format=format,
            half_life_seconds=half_life_seconds,
            now=now,
            where=where,
            compact=compact,
            patience=patience,
            tokenizer=tokenizer,
            purged=purged,
            retrieval=retrieval,
        )

    @_doc(ContextAssembler.expand)
    def expand(
        self,
        revision: str = refnames.HEAD,
        *,
        budget: int | None = None,
        query: str | None = None,
        half_life_seconds: float | None = None,
        now: int | None = None,
        where: ContextQuery | None = None,
        tokenizer: Tokenizer | None = None,
        retrieval: Retrieval | None = None,
    ) -> ExpandedContext:
        return self.assembler.expand(
            revision,
            budget=budget,
            query=query,
            half_life_seconds=half_life_seconds,
            now=now,
            where=where,
            tokenizer=tokenizer,
            retrieval=retrieval,
        )

    def stream(
        self,
        revision: str = refnames.HEAD,
        *,
        chunk_size: int = 10,
        max_tokens_per_chunk: int = 500,
        relevance_threshold: float = 0.0,
        half_life_seconds: float | None = None,
        tokenizer: Tokenizer | None = None,
        now: datetime | None = None,
    ) -> Iterator[ExpansionChunk]:
        """Stream ``revision``'s atoms best first in chunks that respect both limits, lazily.

        The first chunk costs about ``chunk_size`` atom reads whatever the
        snapshot's size. For an asyncio consumer with backpressure across a
        thread, use :class:`~contextfs.expand.stream.StreamingExpander`.
        """
        return iter_chunks(
            self,
            revision,
            chunk_size=chunk_size,
            max_tokens_per_chunk=max_tokens_per_chunk,
            relevance_threshold=relevance_threshold,
            half_life_seconds=half_life_seconds,
            tokenizer=tokenizer,
            now=now,
        )

    @_doc(ContextAssembler.session_payload)
    def session_payload(
        self,
        revision: str = refnames.HEAD,
        *,
        budget: int = DEFAULT_SESSION_BUDGET,
        query: str | None = None,
        budgets: TierBudgets | None = None,
        summariser: Summariser | None = None,
        identity_types: Iterable[str] = IDENTITY_TYPES,
        half_life_seconds: float | None = None,
        now: int | None = None,
        tokenizer: Tokenizer | None = None,
        retrieval: Retrieval | None = None,
    ) -> SessionPayload:
        return self.assembler.session_payload(
            revision,
            budget=budget,
            query=query,
            budgets=budgets,
            summariser=summariser,
            identity_types=identity_types,
            half_life_seconds=half_life_seconds,
            now=now,
            tokenizer=tokenizer,
            retrieval=retrieval,
        )

    @_doc(ContextAssembler.turn_context)
    def turn_context(
        self,
        query: str | None = None,
        *,
        budget: int,
        previous: Mapping[str, Any] | None = None,
        revision: str = refnames.HEAD,
        cost_weights: CostWeights | Mapping[str, float] | None = None,
        half_life_seconds: float | None = None,
        now: int | None = None,
        retrieval: Retrieval | None = None,
        identity_types: Iterable[str] = IDENTITY_TYPES,
        epoch_turns: int = EPOCH_TURNS,
        stale_turns: int = STALE_TURNS,
        tokenizer: Tokenizer | None = None,
    ) -> TurnContext:
        return self.assembler.turn_context(
            query,
            budget=budget,
            previous=previous,
            revision=revision,
            cost_weights=cost_weights,
            half_life_seconds=half_life_seconds,
            now=now,
            retrieval=retrieval,
            identity_types=identity_types,
            epoch_turns=epoch_turns,
            stale_turns=stale_turns,
            tokenizer=tokenizer,
        )

    @_doc(ContextAssembler.verify_receipt)
    def verify_receipt(self, receipt: Receipt) -> ReceiptVerification:
        return self.assembler.verify_receipt(receipt)

    @_doc(ContextAssembler.molecules)
    def molecules(self, revision: str | None = refnames.HEAD) -> list[MemoryMolecule]:
        return self.assembler.molecules(revision)

    @_doc(ContextAssembler.relevance_lattice)
    def relevance_lattice(self, revision: str | None = refnames.HEAD) -> RelevanceLattice:
        return self.assembler.relevance_lattice(revision)

    @_doc(ContextAssembler.add_relevance_edge)
    def add_relevance_edge(self, higher: str, lower: str) -> ObjectId:
        return self.assembler.add_relevance_edge(higher, lower)

    # -- live sessions -----------------------------------------------------------------

    @_doc(OpLogSessions.oplog)
    def oplog(self, session: str) -> OpLogBackend:
        return self.oplogs.oplog(session)

    @_doc(OpLogSessions.sessions)
    def oplog_sessions(self) -> list[str]:
        return self.oplogs.sessions()

    @_doc(OpLogSessions.commit)
    def commit_oplog(
        self,
        session: str | OpLogBackend,
        *,
        branch: str | None = None,
        message: str | None = None,
    ) -> OplogCommit:
        return self.oplogs.commit(session, branch=branch, message=message)

    @_doc(OpLogSessions.revert_actor)
    def revert_actor(
        self,
        actor: str,
        since: str | None = None,
        *,
        author: str = DEFAULT_AUTHOR,
        strict: bool = False,
        dry_run: bool = False,
    ) -> ActorRevert:
        return self.oplogs.revert_actor(actor, since, author=author, strict=strict, dry_run=dry_run)

    @_doc(OpLogSessions.revert_session)
    def revert_session(
        self,
        session: str,
        since: str | None = None,
        *,
        author: str = DEFAULT_AUTHOR,
        strict: bool = False,
        dry_run: bool = False,
    ) -> ActorRevert:
        return self.oplogs.revert_session(
            session, since, author=author, strict=strict, dry_run=dry_run
        )

    # -- integrity ---------------------------------------------------------------------

    @_doc(Integrity.prove)
    def prove(self, ref: str | MemoryAtom, revision: str = refnames.HEAD) -> Proof:
        return self.integrity.prove(ref, revision)

    @_doc(Integrity.verify)
    def verify(self) -> VerifyReport:
        return self.integrity.verify()

    @_doc(Integrity.gc)
    def gc(
        self,
        *,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        dry_run: bool = False,
        repack: bool = True,
        now: int | None = None,
    ) -> GcReport:
        return self.integrity.gc(
            grace_seconds=grace_seconds, dry_run=dry_run, repack=repack, now=now
        )

    @_doc(Integrity.prune_workspaces)
    def prune_workspaces(self, *, dry_run: bool = False) -> PruneReport:
        return self.integrity.prune_workspaces(dry_run=dry_run)

    @_doc(Integrity.purge)
    def purge(self, ref: str, *, author: str, reason: str = "") -> PurgeRecord:
        return self.integrity.purge(ref, author=author, reason=reason)


__all__ = ["DEFAULT_AUTHOR", "Repository"]
