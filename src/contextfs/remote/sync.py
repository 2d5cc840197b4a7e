"""Remotes, as git has them: add, fetch, pull, push and clone between any two stores.

Remote names and URLs live in the repository folder's ``config.json``; where
each remote's branches were when last fetched lives in the store, as
``refs/remotes/<remote>/<branch>``. Every transfer is one pack
(:mod:`contextfs.remote.pack`): the sender offers what the receiver's tips do
not reach and streams it compressed, tree nodes as deltas against the
versions the receiver holds; the receiver unpacks it in one
:func:`~contextfs.remote.objects.receive`, so it lands whole or not at all.

* ``fetch`` copies the remote's branches to the tracking refs (a remote branch
  that was force-pushed moves its tracking ref too, as git's ``+`` refspec
  does; a deleted one is pruned) and its new tags to ``refs/tags/``.
* ``pull`` fetches, then fast-forwards the current branch or merges with the
  three-way merge of :meth:`~contextfs.repo.Repository.merge`.
* ``push`` refuses to drop the remote's commits unless forced; even forced, it
  moves the remote branch only if it still holds the commit read at the
  start (compare-and-swap), so a concurrent push is never overwritten.
* ``clone`` creates a repository, fetches everything and checks out the
  remote's default branch; if anything fails the new repository is removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..backends import url_scheme
from ..config import check_remote_name, read_config, write_config
from ..discovery import REPO_DIR
from ..errors import (
    InvalidInputError,
    NonFastForwardError,
    NothingToDoError,
    RepositoryExistsError,
    RepositoryNotFoundError,
    UnknownRevisionError,
)
from ..history.graph import is_ancestor
from ..history.reflog import log_move, reflog_reason
from ..integrity.purge import PURGES
from ..model import refs as refnames
from ..model.ids import from_hex, short
from ..records import MergeResult
from ..repo import Repository
from ..store.base import Store
from ..store.urls import check_postgres_url, is_postgres_url, redact_url
from .objects import RefUpdate, in_history, known_commits, receive
from .pack import pack_history, receive_pack
from .peers import WIRE_SCHEMES, Peer, open_peer

#: The name ``clone`` gives the remote it copies.
ORIGIN = "origin"
#: Most commits a fetch says it has.
MAX_HAVES = 256


@dataclass
class TransferResult:
    """What a fetch or push moved: refs, and objects counted and measured."""

    remote: str
    updated: list[RefUpdate] = field(default_factory=list)
    #: Objects the pack carried, and the pack's bytes (what travelled).
    objects: int = 0
    bytes: int = 0
    #: Tags the remote has under a name that already names another commit here.
    kept_tags: list[str] = field(default_factory=list)
    #: Atoms (ids) whose text the transfer's purge records erased on the receiving side.
    purged: list[str] = field(default_factory=list)
    #: Purge records the receiving side did not apply (asked not to, or not allowed to).
    ignored_purges: int = 0


@dataclass
class PullResult:
    """A fetch, and what it did to the current branch."""

    fetch: TransferResult
    merge: MergeResult | None
    fast_forward: bool = False
    up_to_date: bool = False


# -- naming remotes -----------------------------------------------------------------


def _folder(repo: Repository) -> Path:
    if repo.path is None:
        raise RepositoryNotFoundError(
            "remotes are kept in a repository folder's config.json; this repository has none"
        )
    return repo.path


def remotes(repo: Repository) -> dict[str, str]:
    """The repository's remotes, name -> URL, sorted by name."""
    return dict(sorted(read_config(repo.path).remotes.items())) if repo.path else {}


def add_remote(repo: Repository, name: str, url: str) -> None:
    """Name the remote at ``url``.

    Raises:
        InvalidInputError: a bad name, an empty URL, or a malformed PostgreSQL URL.
        RepositoryExistsError: a remote of that name exists.
    """
    folder = _folder(repo)
    check_remote_name(name)
    if not url or url != url.strip() or "\n" in url:
        raise InvalidInputError(f"remote URL must be one non-empty line, got {redact_url(url)!r}")
    if is_postgres_url(url):
        check_postgres_url(url)
    config = read_config(folder)
    if name in config.remotes:
        raise RepositoryExistsError(f"remote {name!r} already exists")
    config.remotes[name] = _absolute(url)
    write_config(folder, config)


def _absolute(url: str) -> str:
    """A path remote as an absolute path, so it means the same from any directory."""
    if url.startswith(WIRE_SCHEMES) or url_scheme(url) is not None:
        return url
    return str(Path(url).expanduser().absolute())


def remove_remote(repo: Repository, name: str) -> None:
    """Forget remote ``name`` and its tracking refs.

    Raises:
        UnknownRevisionError: no remote of that name.
    """
    folder = _folder(repo)
    config = read_config(folder)
    if name not in config.remotes:
        raise UnknownRevisionError(f"no remote named {name!r}")
    with repo.transaction(), reflog_reason(f"remote: removed {name}"):
        for ref, value in repo.store.list_refs(f"{refnames.REMOTES}{name}/").items():
            if repo.store.set_ref_if_equals(ref, value, None):
                log_move(repo.store, ref, value, None)
    del config.remotes[name]
    write_config(folder, config)


def remote_url(repo: Repository, name: str) -> str:
    """The URL of remote ``name``.

    Raises:
        UnknownRevisionError: no remote of that name.
    """
    url = remotes(repo).get(name)
    if url is None:
        raise UnknownRevisionError(
            f"no remote named {name!r}; add one with 'contextfs remote add {name} URL'"
        )
    return url


# -- fetch ----------------------------------------------------------------------------


def fetch(
    repo: Repository,
    name: str = ORIGIN,
    *,
    token: str | None = None,
    ca: str | os.PathLike[str] | None = None,
    progress: Callable[[int], None] | None = None,
    purges: bool = True,
) -> TransferResult:
    """Copy remote ``name``'s new commits and move its tracking refs.

    With ``purges`` (the default), purges made on the remote erase this
    repository's copies of their text too (see :func:`fetch_from`).

    Raises:
        UnknownRevisionError: no remote of that name.
        CorruptObjectError: the remote sent damaged objects (nothing was stored).
        StoreError, ConnectionLostError: a store or the connection failed
            (nothing was stored).
    """
    with open_peer(remote_url(repo, name), token=token, ca=ca) as peer:
        return fetch_from(repo, peer, name, progress=progress, purges=purges)


def fetch_from(
    repo: Repository,
    peer: Peer,
    name: str,
    *,
    progress: Callable[[int], None] | None = None,
    purges: bool = True,
) -> TransferResult:
    """Fetch from an open ``peer`` into ``repo``, tracking it as remote ``name``.

    The remote's purge records that this store lacks come along: each erases
    the atom's text here too (object, indexes, vectors, op logs, files), as
    the purge did there; ``purges=False`` leaves them behind (the text stays
    here, and :attr:`TransferResult.ignored_purges` counts them).
    """
    check_remote_name(name)
    store = repo.store
    theirs = _checked_refs(peer)
    prefix = f"{refnames.REMOTES}{name}/"
    tracking = store.list_refs(prefix)
    updates: list[RefUpdate] = []
    for ref, value in theirs.items():
        if ref.startswith(refnames.HEADS):
            local = prefix + ref[len(refnames.HEADS) :]
            if tracking.get(local) != value:
                updates.append(RefUpdate(local, tracking.get(local), value))
    gone = {prefix + r[len(refnames.HEADS) :] for r in theirs if r.startswith(refnames.HEADS)}
    updates += [RefUpdate(ref, value, None) for ref, value in tracking.items() if ref not in gone]
    result = TransferResult(remote=name)
    ours_tags = store.list_refs(refnames.TAGS)
    for ref, value in theirs.items():
        if ref.startswith(refnames.TAGS):
            if ref not in ours_tags:
                updates.append(RefUpdate(ref, None, value))
            elif ours_tags[ref] != value:
                result.kept_tags.append(ref[len(refnames.TAGS) :])
    wants = [from_hex(u.new) for u in updates if u.new is not None]
    wants = [w for w in dict.fromkeys(wants) if w not in store.has_objects([w])]
    lacking = _purges_lacking(theirs, store.list_refs(PURGES))
    if not purges:
        result.ignored_purges = len(lacking)
        lacking = []
    pack = None
    if wants or lacking:
        pack = _counted(peer.fetch_pack(wants, _local_tips(store), lacking), result)
    asked = set(lacking)
    moving = {u.name for u in updates}
    tips = [from_hex(u.new) for u in updates if u.new is not None]
    tips += [from_hex(v) for r, v in tracking.items() if r not in moving]

    def may_erase(atom_id: bytes, record: bytes) -> bool:
        """Only purges asked for, of atoms in the remote's history, erase text here."""
        return record in asked and in_history(store, atom_id, tips)

    with reflog_reason(f"fetch: {name}"):
        if pack is None:  # nothing new to copy: only refs move
            received = receive(store, (), updates, force=True)
        else:
            received = receive_pack(
                store,
                pack,
                updates,
                force=True,
                progress=progress,
                purges=purges,
                may_erase=may_erase,
            )
    result.objects = received.objects
    result.updated = received.updated
    result.purged = sorted(oid.hex() for oid in received.purged)
    result.ignored_purges += received.ignored_purges
    repo.integrity.erase_copies(received.purged.values())
    return result


def _purges_lacking(senders: Mapping[str, str], receivers: Mapping[str, str]) -> list[bytes]:
    """The purge records the sender's refs name for atoms the receiver has not purged."""
    return [
        from_hex(value)
        for ref, value in senders.items()
        if ref.startswith(PURGES) and ref not in receivers
    ]


def _checked_refs(peer: Peer) -> dict[str, str]:
    """The peer's refs, refusing names and values no ContextFS store could hold.

    Raises:
        InvalidInputError: a branch or tag name is malformed, or a value is not an id.
    """
    refs = peer.refs()
    for ref, value in refs.items():
        for prefix, what in ((refnames.HEADS, "branch"), (refnames.TAGS, "tag")):
            if ref.startswith(prefix):
                try:
                    refnames.check_short_name(ref[len(prefix) :], what)
                    from_hex(value)
                except InvalidInputError as exc:
                    raise InvalidInputError(
                        f"{peer.location} offers a malformed ref {ref[:80]!r}: {exc}"
                    ) from None
    return refs


def _local_tips(store: Store) -> list[bytes]:
    """The commits this side's refs point at, branches first: what the other side may skip.

    At most :data:`MAX_HAVES`: haves only save transfer, so a few hundred
    tips are plenty, and a request stays small however many tags there are.
    """
    values: list[str] = []
    for prefix in (refnames.HEADS, refnames.REMOTES, refnames.TAGS):
        values.extend(store.list_refs(prefix).values())
    tips = []
    for value in dict.fromkeys(values):
        with contextlib.suppress(InvalidInputError):
            tips.append(from_hex(value))
    return tips[:MAX_HAVES]


def _counted(chunks: Iterable[bytes], result: TransferResult) -> Iterator[bytes]:
    for chunk in chunks:
        result.bytes += len(chunk)
        yield chunk


# -- pull -----------------------------------------------------------------------------


def pull(
    repo: Repository,
    name: str = ORIGIN,
    branch: str | None = None,
    *,
    author: str,
    token: str | None = None,
    ca: str | os.PathLike[str] | None = None,
    purges: bool = True,
) -> PullResult:
    """Fetch remote ``name``, then bring its ``branch`` into the current branch.

    ``branch`` defaults to the current branch's name. Fast-forwards when the
    current branch is behind, else merges; a merge that stops on conflicts
    is reported in the result (status ``conflicts``), as
    :meth:`~contextfs.repo.Repository.merge` reports it.

    Raises:
        UnknownRevisionError: no such remote, or it has no such branch.
        InvalidInputError: HEAD is detached.
        UncommittedChangesError: something is staged, so a merge cannot start.
    """
    current = repo.current_branch
    if current is None:
        raise InvalidInputError("HEAD is detached; switch to a branch to pull into")
    fetched = fetch(repo, name, token=token, ca=ca, purges=purges)
    branch = branch or current
    tracking = refnames.remote_ref(name, branch)
    theirs = repo.store.read_ref(tracking)
    if theirs is None:
        raise UnknownRevisionError(f"remote {name!r} has no branch {branch!r}")
    ours_ref = refnames.branch_ref(current)
    ours = repo.store.read_ref(ours_ref)
    if ours == theirs:
        return PullResult(fetched, None, up_to_date=True)
    if ours is None:  # an unborn branch: start it where the remote's is
        repo.update_ref(ours_ref, theirs, None)
        return PullResult(fetched, None, fast_forward=True)
    try:
        merged = repo.merge(tracking, author=author, message=f"Merge {name}/{branch}")
    except NothingToDoError:
        return PullResult(fetched, None, up_to_date=True)
    return PullResult(
        fetched,
        merged,
        fast_forward=merged.status == "fast-forward",
        up_to_date=merged.status == "up-to-date",
    )


# -- push -----------------------------------------------------------------------------


def push(
    repo: Repository,
    name: str = ORIGIN,
    branch: str | None = None,
    *,
    force: bool = False,
    token: str | None = None,
    ca: str | os.PathLike[str] | None = None,
) -> TransferResult:
    """Send ``branch`` (default: the current one) to remote ``name``.

    Raises:
        NonFastForwardError: the remote branch has commits this one lacks
            (fetch and merge first, or ``force``).
        ConcurrentUpdateError: someone pushed meanwhile (nothing was stored).
        UnknownRevisionError: no such remote or local branch.
    """
    with open_peer(remote_url(repo, name), token=token, ca=ca) as peer:
        return push_to(repo, peer, name, branch, force=force)


def push_to(
    repo: Repository,
    peer: Peer,
    name: str,
    branch: str | None = None,
    *,
    force: bool = False,
) -> TransferResult:
    """Push to an open ``peer``, tracking it as remote ``name``."""
    branch = branch or repo.current_branch
    if branch is None:
        raise InvalidInputError("HEAD is detached; name the branch to push")
    ref = refnames.branch_ref(branch)
    ours = repo.store.read_ref(ref)
    if ours is None:
        raise UnknownRevisionError(f"no branch {branch!r} here to push")
    theirs_refs = peer.refs()
    theirs = theirs_refs.get(ref)
    result = TransferResult(remote=name)
    lacking = _purges_lacking(repo.store.list_refs(PURGES), theirs_refs)
    if theirs != ours or lacking:
        if theirs not in (None, ours) and not force:
            _check_fast_forward(repo, branch, theirs, ours)
        values = [v for r, v in theirs_refs.items() if r != refnames.HEAD]
        haves = known_commits(repo.store, _ids(values))[:MAX_HAVES]
        pack = pack_history(repo.store, [from_hex(ours)], haves, lacking)
        moves = [RefUpdate(ref, theirs, ours)] if theirs != ours else []
        with reflog_reason("push"):  # as the receiving store logs it (a server says so too)
            received = peer.receive_pack(_counted(pack, result), moves, force=force)
        result.objects = received.objects
        result.updated = received.updated
        result.purged = sorted(oid.hex() for oid in received.purged)
        result.ignored_purges = received.ignored_purges
    tracking = refnames.remote_ref(name, branch)
    old = repo.store.read_ref(tracking)
    if old != ours:
        with repo.transaction(), reflog_reason(f"update by push to {name}"):
            if repo.store.set_ref_if_equals(tracking, old, ours):  # lost: the next fetch fixes it
                log_move(repo.store, tracking, old, ours)
    return result


def _ids(values: Iterable[str]) -> list[bytes]:
    """The values that are object ids (a symbolic ref is not)."""
    ids = []
    for value in values:
        with contextlib.suppress(InvalidInputError):
            ids.append(from_hex(value))
    return ids


def _check_fast_forward(repo: Repository, branch: str, theirs: str, ours: str) -> None:
    old = from_hex(theirs)
    if not repo.store.has_objects([old]):
        raise NonFastForwardError(
            f"the remote's {branch} is at {short(old)}, which is not here; fetch and merge"
            " first, or push with --force"
        )
    if not is_ancestor(repo.load_commit, old, from_hex(ours)):
        raise NonFastForwardError(
            f"the remote's {branch} ({short(old)}) is not an ancestor of yours; fetch and"
            " merge first, or push with --force"
        )


# -- clone ----------------------------------------------------------------------------


def clone(
    url: str,
    path: str | os.PathLike[str],
    *,
    token: str | None = None,
    ca: str | os.PathLike[str] | None = None,
    progress: Callable[[int], None] | None = None,
    purges: bool = True,
) -> Repository:
    """Create a repository in ``path/.contextfs`` holding everything remote ``url`` has.

    The remote becomes ``origin``; its default branch (the one its HEAD names)
    is checked out. The copy is made in a staging folder inside ``path`` and
    renamed into place only once it is whole: if anything fails, or the
    process is killed, no ``.contextfs`` appears, and the next clone into
    ``path`` removes what a killed one left.

    Raises:
        RepositoryExistsError: ``path`` already holds a repository.
    """
    target = Path(path)
    if (target / REPO_DIR).exists():
        raise RepositoryExistsError(
            f"a ContextFS repository already exists in {str(target / REPO_DIR)!r}"
        )
    made = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_clones(target)
    staging = Path(tempfile.mkdtemp(prefix=CLONE_STAGING, dir=target))
    try:
        with _held(staging / CLONE_LOCK):
            _fill_clone(
                Repository.init(staging), url, token=token, ca=ca, progress=progress, purges=purges
            )
            (staging / REPO_DIR).rename(target / REPO_DIR)
    except BaseException:
        shutil.rmtree(target if made else staging, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return Repository.open(target)


#: The prefix of the folder a clone is made in before it is renamed into place.
CLONE_STAGING = ".contextfs-clone-"
#: The lock a clone holds on its staging folder while it runs.
CLONE_LOCK = "clone.lock"


def _fill_clone(
    repo: Repository,
    url: str,
    *,
    token: str | None,
    ca: str | os.PathLike[str] | None,
    progress: Callable[[int], None] | None,
    purges: bool,
) -> None:
    """Fetch everything ``url`` has into the new ``repo`` and check out its default branch."""
    with repo:
        add_remote(repo, ORIGIN, url)
        with open_peer(url, token=token, ca=ca) as peer:
            fetched = fetch_from(repo, peer, ORIGIN, progress=progress, purges=purges)
            head = peer.refs().get(refnames.HEAD)
        default = _default_branch(head, fetched)
        if default is not None:
            tip = repo.store.read_ref(refnames.remote_ref(ORIGIN, default))
            assert tip is not None
            with repo.transaction(), reflog_reason(f"clone: from {redact_url(url)}"):
                repo.update_ref(refnames.branch_ref(default), tip, None)
                repo.switch(default)


@contextlib.contextmanager
def _held(lock: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock`` (made if missing) for the block."""
    with open(lock, "a+b", buffering=0) as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield


def _remove_abandoned_clones(target: Path) -> None:
    """Remove the staging folders of clones into ``target`` whose process is gone.

    A running clone holds the lock in its folder; a killed one does not.
    """
    for folder in target.glob(f"{CLONE_STAGING}*"):
        lock = folder / CLONE_LOCK
        try:
            handle = open(lock, "a+b", buffering=0)  # noqa: SIM115 - held across the check
        except OSError:
            continue
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a clone in progress
            shutil.rmtree(folder, ignore_errors=True)


def _default_branch(head: str | None, fetched: TransferResult) -> str | None:
    """The branch a clone checks out: the remote HEAD's, else main, else the first."""
    prefix = f"{refnames.REMOTES}{ORIGIN}/"
    branches = [u.name[len(prefix) :] for u in fetched.updated if u.name.startswith(prefix)]
    target = refnames.symbolic_target(head)
    if target is not None and target.startswith(refnames.HEADS):
        name = target[len(refnames.HEADS) :]
        if name in branches:
            return name
    if refnames.DEFAULT_BRANCH in branches:
        return refnames.DEFAULT_BRANCH
    return branches[0] if branches else None


__all__ = [
    "ORIGIN",
    "PullResult",
    "TransferResult",
    "add_remote",
    "clone",
    "fetch",
    "fetch_from",
    "pull",
    "push",
    "push_to",
    "remote_url",
    "remotes",
    "remove_remote",
]
