"""The other end of a transfer: another store on this machine or a database, or a server.

A :class:`Peer` is what fetch, pull, push and clone need of a remote, and no
more: its refs, the pack of what a receiver lacks for a want/have pair, and
an all-or-nothing receive of a pack. :class:`StorePeer` answers from a store
it opens directly (a repository folder, a SQLite file, a ``postgresql://``
database); :class:`~contextfs.remote.wire.WirePeer` asks a ``contextfs
serve`` over the wire protocol. Both run the same :mod:`contextfs.remote.pack`
functions on the far side.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol, Self

from ..backends import open_store, url_scheme
from ..config import read_config
from ..discovery import DATABASE, REPO_DIR, is_repository
from ..errors import InvalidInputError, MissingObjectError, RepositoryNotFoundError
from ..integrity.purge import PURGES, compact_store
from ..model import refs as refnames
from ..repo import Repository
from ..store.base import Store
from ..store.urls import redact_url
from .objects import BATCH, ObjectRow, Received, RefUpdate
from .pack import pack_history, receive_pack

#: The URL schemes of a ``contextfs serve`` server: plain, and behind TLS.
WIRE_SCHEMES = ("ctx://", "ctxs://")


class Peer(Protocol):
    """What a transfer needs of the other end."""

    #: Where the peer is, without credentials, for messages.
    location: str

    def refs(self) -> dict[str, str]:
        """``HEAD`` (as stored: ``ref: refs/heads/<b>`` or an id), branches, tags, purges."""
        ...

    def fetch_pack(
        self, wants: Sequence[bytes], haves: Sequence[bytes], purges: Sequence[bytes] = ()
    ) -> Iterator[bytes]:
        """The pack of every object a receiver holding ``haves`` may lack for ``wants``.

        ``purges``: purge records (ids) to send besides, for the receiver's copies.
        """
        ...

    def receive_pack(
        self, pack: Iterable[bytes], updates: Sequence[RefUpdate], *, force: bool
    ) -> Received:
        """Store the objects of ``pack`` and apply ``updates`` all together, or nothing."""
        ...

    def close(self) -> None:
        """Release the connection or store."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


def shared_refs(store: Store) -> dict[str, str]:
    """What a store shows a peer: ``HEAD``, branches, tags and purge records."""
    refs: dict[str, str] = {}
    head = store.read_ref(refnames.HEAD)
    if head is not None:
        refs[refnames.HEAD] = head
    refs.update(store.list_refs(refnames.HEADS))
    refs.update(store.list_refs(refnames.TAGS))
    refs.update(store.list_refs(PURGES))
    return refs


def stored_rows(store: Store, ids: Sequence[bytes]) -> Iterator[ObjectRow]:
    """Yield ``(id, kind, data)`` for ``ids`` in batches.

    Raises:
        MissingObjectError: an id is not stored.
    """
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        found = store.get_objects(chunk)
        for oid in chunk:
            stored = found.get(oid)
            if stored is None:
                raise MissingObjectError(f"object {oid.hex()} is missing from the store")
            yield oid, stored.kind, stored.data


class StorePeer:
    """A peer whose store this process opens itself (within its repository, when it has one).

    Purges a push brings erase the receiving repository's copies beyond the
    store's tables too (its op logs, its files), as a server's do.
    """

    def __init__(self, store: Store, location: str, repo: Repository | None = None) -> None:
        self.store = store
        self.location = location
        self.repo = repo

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def refs(self) -> dict[str, str]:
        """``HEAD``, branches and tags of the store."""
        return shared_refs(self.store)

    def fetch_pack(
        self, wants: Sequence[bytes], haves: Sequence[bytes], purges: Sequence[bytes] = ()
    ) -> Iterator[bytes]:
        """Run the sender's half of a transfer on the store."""
        return pack_history(self.store, wants, haves, purges)

    def receive_pack(
        self, pack: Iterable[bytes], updates: Sequence[RefUpdate], *, force: bool
    ) -> Received:
        """Take the pack's objects and ``updates`` into the store in one transaction."""
        received = receive_pack(self.store, pack, updates, force=force)
        if received.purged:
            if self.repo is not None:
                self.repo.integrity.erase_copies(received.purged.values())
            else:
                compact_store(self.store)
        return received

    def close(self) -> None:
        """Close the repository, or the store."""
        if self.repo is not None:
            self.repo.close()
        else:
            self.store.close()


def open_peer(
    url: str, *, token: str | None = None, ca: str | os.PathLike[str] | None = None
) -> Peer:
    """Open the remote at ``url``: ``ctx[s]://host:port``, ``postgresql://...`` or a path.

    ``token`` and ``ca`` (the CA file a ``ctxs://`` server is verified
    against) apply to servers only.

    A path names a repository folder (holding ``.contextfs``), a ``.contextfs``
    folder, or a SQLite store file.

    Raises:
        InvalidInputError: ``url`` is empty.
        RepositoryNotFoundError: a path that holds no repository.
        StoreError, ConnectionLostError: the remote cannot be reached.
    """
    if not url:
        raise InvalidInputError("remote URL must not be empty")
    if url.startswith(WIRE_SCHEMES):
        from .wire import WirePeer  # imported late: only wire remotes need the client

        return WirePeer(url, token=token, ca=ca)
    if url_scheme(url) is not None:
        store = open_store(url)
        return StorePeer(store, redact_url(url), _peer_repository(store, None))
    path = Path(url)
    if path.is_file():
        return StorePeer(open_store(path), url)
    folder = _repository_folder(path)
    config = read_config(folder)
    store = open_store(config.store if config.store is not None else folder / DATABASE)
    return StorePeer(store, url, _peer_repository(store, folder))


def _peer_repository(store: Store, folder: Path | None) -> Repository:
    """The repository of a peer's store: exactly this folder's, never one found above it.

    No embedder: a transfer reads and writes objects, and what a purge
    erases from the vectors is the store's, whatever embedder made them.
    """
    return Repository(store, path=folder, embedder="none")


def _repository_folder(path: Path) -> Path:
    """The ``.contextfs`` folder a path names: a repository folder or the ``.contextfs`` itself.

    Raises:
        RepositoryNotFoundError: the path holds no repository.
    """
    for folder in (path / REPO_DIR, path):
        if is_repository(folder):
            return folder
    raise RepositoryNotFoundError(f"no ContextFS repository at {str(path)!r}")
