"""Showing that memory is what it claims to be: proofs, verification, and purges that keep both.

Every snapshot node's id is an RFC 6962 Merkle root, so a memory's presence
(or absence) in a version is a chain of inclusion proofs up to the commit id
(:mod:`contextfs.integrity.proofs`); :meth:`Integrity.verify` re-hashes the
store; and :meth:`Integrity.purge` erases an atom's text everywhere the store
controls while every id still verifies.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import InvalidInputError, MissingObjectError, StoreError
from ..history.commits import check_author
from ..integrity.fsck import VerifyReport, verify_store
from ..integrity.gc import DEFAULT_GRACE_SECONDS, GcReport, collect_garbage
from ..integrity.proofs import Proof
from ..integrity.proofs import prove as prove_key
from ..integrity.prune import PruneReport, prune_workspaces
from ..integrity.purge import (
    PurgeRecord,
    compact_store,
    purge_atom,
    purgeable_text,
    read_purge_record,
)
from ..model import refs as refnames
from ..model.ids import ID_HEX_LENGTH, from_hex, is_hex_prefix
from ..model.objects import ATOM, MemoryAtom
from ..model.timeutil import now_micros
from ..store.base import DerivedStore, ServerStore
from .indexes import Indexes
from .objects import ObjectReader
from .oplogs import OpLogSessions
from .refs import Refs
from .storage import Storage


class Integrity:
    """Membership proofs, whole-store verification and purges."""

    def __init__(
        self,
        storage: Storage,
        objects: ObjectReader,
        refs: Refs,
        indexes: Indexes,
        oplogs: OpLogSessions | None = None,
    ) -> None:
        self.store = storage.store
        self._oplogs = oplogs
        self.trees = storage.trees
        self._objects = objects
        self._refs = refs
        self._indexes = indexes

    def prove(self, ref: str | MemoryAtom, revision: str = refnames.HEAD) -> Proof:
        """Prove that a memory is, or is not, in ``revision``.

        Returns a :class:`~contextfs.integrity.proofs.MembershipProof` when it
        is and a :class:`~contextfs.integrity.proofs.NonMembershipProof` when it
        is not; either checks, from the commit's id alone, with
        :func:`contextfs.integrity.proofs.verify` -- a chain of RFC 6962
        inclusion proofs, one per tree level, that any verifier can follow.

        Args:
            ref: the memory (a MemoryAtom, a full id, or a unique prefix of a
                stored atom or molecule id).
            revision: the version to prove it against.
        """
        commit_id = self._refs.resolve_id(revision)
        stored = self.store.get_object(commit_id)
        if stored is None:
            raise MissingObjectError(f"commit {commit_id.hex()} is missing")
        key = ref.digest if isinstance(ref, MemoryAtom) else self._objects.memory_key(ref)
        return prove_key(self.trees, stored.data, key)

    def verify(self) -> VerifyReport:
        """Re-hash every object and check every link and ref; name each problem.

        See :func:`contextfs.integrity.fsck.verify_store`. Purged atoms (with
        their purge records) are listed, not reported as damage; a vector kept
        for an absent or purged atom is.
        """
        _, vectors = self._indexes.every()
        return verify_store(self.store, vectors=vectors)

    def gc(
        self,
        *,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        dry_run: bool = False,
        repack: bool = True,
        now: int | None = None,
    ) -> GcReport:
        """Remove every object no ref, recent reflog entry or context reaches; then compact.

        See :func:`contextfs.integrity.gc.collect_garbage`: one transaction
        holding the write lock (a writer waits; a crash leaves the store as it
        was), index rows of removed atoms go too, reflog entries older than
        ``grace_seconds`` expire, and the store is repacked (tree deltas,
        dictionaries) unless ``repack`` is false. ``dry_run`` reports what would go.
        """
        search, vectors = self._indexes.every()
        return collect_garbage(
            self.store,
            grace_seconds=grace_seconds,
            now=now,
            dry_run=dry_run,
            repack=repack,
            search=search,
            vectors=vectors,
            extra_roots=self._checkpointed(),
        )

    def _checkpointed(self) -> list[bytes]:
        """The commits and snapshots every op-log session's checkpoints name."""
        if self._oplogs is None:
            return []
        try:
            sessions = self._oplogs.sessions()
        except InvalidInputError:
            return []  # a repository in memory keeps no sessions of its own
        named: list[bytes] = []
        for session in sessions:
            for checkpoint in self._oplogs.oplog(session).checkpoints():
                for value in (checkpoint.get("commit"), checkpoint.get("snapshot_id")):
                    full = isinstance(value, str) and len(value) == ID_HEX_LENGTH
                    if full and isinstance(value, str) and is_hex_prefix(value):
                        named.append(from_hex(value))
        return named

    def prune_workspaces(self, *, dry_run: bool = False) -> PruneReport:
        """Drop the workspaces of checkouts on this machine that are gone; keep the rest.

        See :func:`contextfs.integrity.prune.prune_workspaces`: a shared store
        keeps one workspace per folder made with ``init --store``, and one
        whose folder was deleted holds its stage forever. ``gc`` afterwards
        collects what only those stages reached.

        Raises:
            InvalidInputError: the store keeps no workspaces.
        """
        return prune_workspaces(self.store, dry_run=dry_run)

    def purge(self, ref: str, *, author: str, reason: str = "") -> PurgeRecord:
        """Erase an atom's content from every version, op log, index, vector and free page.

        Every commit id, snapshot root and op-log root still verifies (they
        cover the atom's id, or an op's recorded leaf, not its text);
        expansion leaves the atom out, or shows it as ``[purged]`` when asked.
        The purge is recorded: who, when, which id, why. In order: the store
        must be free to compact (else nothing changes); every op log's ops
        holding the text are redacted; the record, the erasure and the index
        and vector removals land in one transaction; the store is compacted.
        If compaction fails after that (another process took the store in
        between), running the purge again finishes it. Must not run inside a
        transaction.

        Raises:
            PurgeError: the id names no atom, is already purged, or a copy of
                its text is held where it cannot be erased.
            StoreError: another connection holds the store (nothing changed),
                or compaction failed after the purge (run it again to finish).
        """
        check_author(author)
        oid = self._objects.memory_key(ref, (ATOM,))
        done = read_purge_record(self.store, oid)
        if done is not None and self._finish_compaction():
            return done  # an interrupted purge, finished now
        content = purgeable_text(self.store, oid)  # every refusal before anything changes
        if isinstance(self.store, ServerStore) and not self.store.ready_to_compact():
            raise StoreError(
                "another process is reading or writing the store, so a purge could not"
                " erase every copy of the text now; nothing was changed: retry when it is idle"
            )
        self._redact_oplogs(content)
        index, vectors = self._indexes.every()  # None: no such index, nothing to forget
        record = purge_atom(
            self.store,
            oid,
            author=author,
            reason=reason,
            when=now_micros(),
            index=index,
            vectors=vectors,
            compact=False,
        )
        self._mark_compaction(pending=True)
        compact_store(self.store)
        self._mark_compaction(pending=False)
        return record

    def erase_copies(self, texts: Iterable[str]) -> None:
        """Finish purges that arrived from elsewhere: redact op logs of ``texts``, then compact.

        A fetch or push that applies another store's purge records erases the
        atoms' text from this store's tables in its transaction
        (:func:`contextfs.remote.objects.receive`); this reaches the copies
        beyond them: op logs, and the store's files. If compaction fails (a
        reader took the store), the next purge of anything finishes it.
        """
        erased = [text for text in texts if text]
        if not erased:
            return
        for text in erased:
            self._redact_oplogs(text)
        self._mark_compaction(pending=True)
        if isinstance(self.store, ServerStore) and not self.store.in_transaction():
            compact_store(self.store)
            self._mark_compaction(pending=False)

    def _redact_oplogs(self, content: str) -> int:
        """Redact ``content`` from every session's op log; return how many ops changed.

        Every session is checked first, so an op that cannot be redacted in
        place stops the purge before any log changes.
        """
        if self._oplogs is None:
            return 0
        try:
            sessions = self._oplogs.sessions()
        except InvalidInputError:
            return 0  # a repository in memory keeps no sessions of its own
        logs = [self._oplogs.oplog(session) for session in sessions]
        for log in logs:
            log.redact(content, dry_run=True)
        return sum(log.redact(content) for log in logs)

    def _mark_compaction(self, *, pending: bool) -> None:
        """Remember, across processes, that a purge committed but its compaction did not run."""
        if isinstance(self.store, DerivedStore):
            self.store.write_derived(_UNCOMPACTED, b"1" if pending else None)

    def _finish_compaction(self) -> bool:
        """Compact if a purge was left uncompacted; True if one was."""
        if (
            not isinstance(self.store, DerivedStore)
            or self.store.read_derived(_UNCOMPACTED) is None
        ):
            return False
        compact_store(self.store)
        self._mark_compaction(pending=False)
        return True


#: The derived-data key set while a committed purge still waits for compaction.
_UNCOMPACTED = "purge_uncompacted"


__all__ = ["Integrity"]
