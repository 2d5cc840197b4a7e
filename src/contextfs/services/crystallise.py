"""Crystallising a session's op log into a commit, in one step that survives a crash.

:meth:`Crystalliser.commit` takes the ops after the session's last checkpoint,
puts them in merge order, collapses the ``context`` ops into a change of the
branch's snapshot and writes one commit:

* its metadata (``metadata["oplog"]``) names the session, every contributing
  actor, how many ops of each domain it covers (ops of other domains are
  counted and stay in the log for their own consumers), the skipped ops, the
  RFC 6962 root of the op ids in merge order, and the attribution tree
  (:mod:`contextfs.history.attribution`);
* its time is the latest ``created_at`` among the ops and its default message
  and author come from the ops (:mod:`contextfs.oplog.crystallise`), so the
  same ops on the same base give the same commit id on every machine,
  whatever order they arrived in;
* the branch and ``refs/oplog/<session>`` move together by compare-and-swap,
  then the checkpoint is written. A log whose writes join the store's
  transaction (:class:`~contextfs.oplog.base.TransactionalOpLog`: the
  PostgreSQL log on the repository's own store) writes the checkpoint in that
  same transaction, so all of it lands or none. Otherwise, if a crash falls
  between the two, the next call finds the ref ahead of the checkpoint, checks
  that the ops after the checkpoint are exactly the commit's (by their root)
  and writes the checkpoint it missed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import partial
from typing import Any

from ..errors import NothingToDoError, StoreError, UncommittedChangesError, UnknownRevisionError
from ..history.attribution import OPLOG_META, encode_attribution, oplog_metadata
from ..history.commits import check_message
from ..history.merge import merge_trees
from ..history.reflog import reflog_reason
from ..history.tree import EMPTY_TREE_ID
from ..model import refs as refnames
from ..model.ids import ObjectId, from_hex, short, to_hex
from ..model.objects import ATOM
from ..oplog.base import OpLogBackend, TransactionalOpLog
from ..oplog.context_ops import CONTEXT_DOMAIN, collapse
from ..oplog.crystallise import OplogCommit, crystal_author, crystal_message, oplog_ref, ops_root
from ..oplog.entry import OpEntry, iso_to_micros, merge_key
from .indexes import Indexes
from .objects import ObjectReader
from .refs import Refs
from .storage import Storage
from .workspace import Workspace


class Crystalliser:
    """Turns a session's pending ops into one commit on a branch, then checkpoints the log."""

    def __init__(
        self,
        storage: Storage,
        objects: ObjectReader,
        refs: Refs,
        workspace: Workspace,
        indexes: Indexes,
    ) -> None:
        self._storage = storage
        self.store = storage.store
        self.trees = storage.trees
        self._objects = objects
        self._refs = refs
        self._workspace = workspace
        self._indexes = indexes

    def commit(
        self, log: OpLogBackend, *, branch: str | None = None, message: str | None = None
    ) -> OplogCommit:
        """Write the session's ops since its checkpoint as one commit, then checkpoint.

        Args:
            branch: the branch to commit to (default: the current one; it is
                created if it does not exist yet).
            message: the commit message (default: one made from the ops).

        Raises:
            NothingToDoError: no ops since the last checkpoint.
            UncommittedChangesError: the branch is checked out with a merge in
                progress, or with staged changes the ops conflict with.
            ConcurrentUpdateError: the branch moved while the commit was written.
        """
        if message is not None:
            check_message(message)
        session = log.session_id()
        # A checkpoint written inside the store transaction of a log that does not
        # join it (files) could outlive a rolled-back commit and lose its ops.
        atomic = isinstance(log, TransactionalOpLog) and log.joins_transactions_of(self.store)
        with log.commit_lock():
            recovered = self._recover(log)
            entries, _, end = log.pending()
            if not entries:
                raise NothingToDoError(f"session {session!r} has no ops since its last checkpoint")
            with self._storage.transaction():
                ref = refnames.branch_ref(branch) if branch is not None else self._refs.head_ref()
                old = self.store.read_ref(ref)
                if old is None and ref != self._refs.head_ref():
                    raise UnknownRevisionError(f"no branch named {branch!r}; create it first")
                commit_id, tree, report = self._write(log, entries, ref, old, message)
                if atomic:
                    checkpoint = log.checkpoint(tree, through=end, commit=commit_id)
            if not atomic:
                checkpoint = log.checkpoint(tree, through=end, commit=commit_id)
        return report(checkpoint=checkpoint, recovered=recovered)

    def _write(
        self,
        log: OpLogBackend,
        entries: Sequence[OpEntry],
        ref: str,
        old: str | None,
        message: str | None,
    ) -> tuple[ObjectId, str, partial[OplogCommit]]:
        """Collapse ``entries`` onto branch ``ref`` (at ``old``) and commit; inside a transaction.

        Returns:
            The commit, its tree, and its report less the checkpoint still to write.
        """
        session = log.session_id()
        ordered = sorted(entries, key=merge_key)
        context = [e for e in ordered if e["domain"] == CONTEXT_DOMAIN]
        others = Counter(e["domain"] for e in ordered if e["domain"] != CONTEXT_DOMAIN)
        actors = tuple(sorted({e["actor_id"] for e in ordered}))
        base_tree = self._objects.commit(from_hex(old)).tree if old else EMPTY_TREE_ID
        change = collapse(context, lambda keys: self.trees.get_many(base_tree, keys))
        held = self.trees.get_many(base_tree, list(change.changes))
        effective = {k: v for k, v in change.changes.items() if held.get(k) != v}
        self.store.put_objects(list({oid: (oid, k, b) for oid, k, b in change.objects}.values()))
        atoms = [oid for oid, kind, _ in change.objects if kind == ATOM]
        if atoms:
            self._indexes.search.defer(atoms)
        tree = self.trees.update(base_tree, effective)
        attribution = (
            to_hex(self.trees.build(encode_attribution(k, change.touched[k]) for k in effective))
            if effective
            else None
        )
        record: dict[str, Any] = {
            "session": session,
            "actors": list(actors),
            "ops": len(entries),
            "ops_root": ops_root(entries),
            "lamport": [ordered[0]["lamport_ts"], ordered[-1]["lamport_ts"]],
            "applied": change.applied,
            "skipped": len(change.skipped),
            "domains": dict(sorted(others.items())),
            "attribution": attribution,
        }
        commit_id = self._workspace.write_commit(
            tree,
            [from_hex(old)] if old else [],
            crystal_author(actors),
            message or crystal_message(session, len(entries), actors, others),
            {OPLOG_META: record},
            timestamp=max(iso_to_micros(e["created_at"]) for e in entries),
        )
        with reflog_reason(f"crystallise: session {session}", crystal_author(actors)):
            self._move_branch(ref, old, commit_id, base_tree, tree)
        session_ref = oplog_ref(session)
        self._refs.move(session_ref, self.store.read_ref(session_ref), commit_id)
        report = partial(
            OplogCommit,
            commit=commit_id,
            session=session,
            branch=ref[len(refnames.HEADS) :] if ref.startswith(refnames.HEADS) else None,
            ops=len(entries),
            applied=change.applied,
            actors=actors,
            skipped=tuple(change.skipped),
            other_domains=dict(sorted(others.items())),
            changed=len(effective),
        )
        return commit_id, to_hex(tree), report

    def _move_branch(
        self, ref: str, old: str | None, new: ObjectId, base: bytes, tree: bytes
    ) -> None:
        """Move ``ref``; if it is checked out, carry staged changes over onto the new commit."""
        checked_out = self._refs.head_ref() == ref
        if checked_out and self._workspace.merge_in_progress():
            raise UncommittedChangesError(
                "a merge is in progress on the branch; commit or abort it first"
            )
        stage_value = self.store.read_ref(refnames.STAGE) if checked_out else None
        self._refs.move(ref, old, new)
        if stage_value is not None:
            outcome = merge_trees(self.trees, base, tree, from_hex(stage_value))
            if outcome.conflicts:
                raise UncommittedChangesError(
                    f"staged changes to {len(outcome.conflicts)} memories conflict with the"
                    " session's ops; commit or reset them first"
                )
            self._workspace.set_stage(stage_value, outcome.tree)

    def _recover(self, log: OpLogBackend) -> bool:
        """Write the checkpoint a crash may have skipped after its commit landed."""
        value = self.store.read_ref(oplog_ref(log.session_id()))
        if value is None:
            return False
        latest = log.read_checkpoint()
        if latest is not None and latest.get("commit") == value:
            return False
        if any(c.get("commit") == value for c in log.checkpoints()):
            return False
        commit = self._objects.commit(from_hex(value))
        meta = oplog_metadata(commit)
        if meta is None or not isinstance(meta.get("ops"), int):
            raise StoreError(
                f"refs/oplog/{log.session_id()} names a commit not made from a session"
            )
        entries, start, _ = log.pending()
        count = meta["ops"]
        if len(entries) < count or ops_root(entries[:count]) != meta.get("ops_root"):
            raise StoreError(
                f"commit {short(from_hex(value))} of session {log.session_id()!r} does not match"
                " the ops after its last checkpoint; the op log or the store was changed"
            )
        log.checkpoint(to_hex(commit.tree), through=log.cut_after(start, count), commit=value)
        return True


__all__ = ["Crystalliser"]
