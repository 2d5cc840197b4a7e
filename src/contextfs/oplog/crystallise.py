"""Crystallising a session's op log into a commit, in one step that survives a crash.

:func:`commit_oplog` takes the ops after the session's last checkpoint, puts
them in merge order, collapses the ``context`` ops into a change of the
branch's snapshot and writes one commit:

* its metadata (``metadata["oplog"]``) names the session, every contributing
  actor, how many ops of each domain it covers (ops of other domains are
  counted and stay in the log for their own consumers), the skipped ops, the
  RFC 6962 root of the op ids in merge order, and the attribution tree
  (:mod:`contextfs.history.attribution`);
* its time is the latest ``created_at`` among the ops and its default message
  and author come from the ops, so the same ops on the same base give the
  same commit id on every machine, whatever order they arrived in;
* the branch and ``refs/oplog/<session>`` move together by compare-and-swap,
  then the checkpoint is written. A log whose writes join the store's
  transaction (:class:`~.base.TransactionalOpLog`: the PostgreSQL log on the
  repository's own store) writes the checkpoint in that same transaction, so
  all of it lands or none. Otherwise, if a crash falls between the two, the
  next call finds the ref ahead of the checkpoint, checks that the ops after
  the checkpoint are exactly the commit's (by their root) and writes the
  checkpoint it missed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import (
    NothingToDoError,
    StoreError,
    UncommittedChangesError,
    UnknownRevisionError,
)
from ..history.attribution import OPLOG_META, encode_attribution, oplog_metadata
from ..history.commits import check_message
from ..history.merge import merge_trees
from ..history.tree import EMPTY_TREE_ID
from ..model import refs as refnames
from ..model.ids import ObjectId, from_hex, short, to_hex
from ..model.merkle import root as merkle_root
from ..model.objects import ATOM
from .base import OpLogBackend, TransactionalOpLog
from .context_ops import CONTEXT_DOMAIN, collapse
from .entry import OpEntry, OpLogCheckpoint, iso_to_micros, merge_key

if TYPE_CHECKING:
    from ..core import RepositoryCore

#: Longest author line written for a crystallised commit.
MAX_AUTHOR = 200


@dataclass(frozen=True, slots=True)
class OplogCommit:
    """What :func:`commit_oplog` wrote.

    ``ops`` counts every op crystallised (all domains); ``applied`` the
    context ops that changed the snapshot; ``skipped`` the context ops that no
    longer applied, as ``(op_id, why)``; ``other_domains`` the ops of other
    domains by domain; ``recovered`` is True when a checkpoint missed by a
    crash was written first.
    """

    commit: ObjectId
    session: str
    branch: str | None
    ops: int
    applied: int
    actors: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    other_domains: dict[str, int]
    checkpoint: OpLogCheckpoint
    recovered: bool = False
    changed: int = 0


def oplog_ref(session: str) -> str:
    """The ref naming the latest commit crystallised from ``session``."""
    return refnames.OPLOG + session


def ops_root(entries: Sequence[OpEntry]) -> str:
    """RFC 6962 root (hex) of the op ids in merge order: the op set, independent of arrival."""
    ordered = sorted(entries, key=merge_key)
    return merkle_root([bytes.fromhex(e["op_id"]) for e in ordered]).hex()


def commit_oplog(
    repo: RepositoryCore,
    log: OpLogBackend,
    *,
    branch: str | None = None,
    message: str | None = None,
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
    atomic = isinstance(log, TransactionalOpLog) and log.joins_transactions_of(repo.store)
    with log.commit_lock():
        recovered = _recover(repo, log)
        entries, _, end = log.pending()
        if not entries:
            raise NothingToDoError(f"session {session!r} has no ops since its last checkpoint")
        ordered = sorted(entries, key=merge_key)
        context = [e for e in ordered if e["domain"] == CONTEXT_DOMAIN]
        others = Counter(e["domain"] for e in ordered if e["domain"] != CONTEXT_DOMAIN)
        actors = tuple(sorted({e["actor_id"] for e in ordered}))
        with repo.transaction():
            ref = refnames.branch_ref(branch) if branch is not None else repo._head_ref()
            old = repo.store.read_ref(ref)
            if old is None and ref != repo._head_ref():
                raise UnknownRevisionError(f"no branch named {branch!r}; create it first")
            base_tree = repo.load_commit(from_hex(old)).tree if old else EMPTY_TREE_ID

            def current(keys: list[bytes]) -> dict[bytes, bytes]:
                return repo.trees.get_many(base_tree, keys)

            change = collapse(context, current)
            held = repo.trees.get_many(base_tree, list(change.changes))
            effective = {k: v for k, v in change.changes.items() if held.get(k) != v}
            repo.store.put_objects(
                list({oid: (oid, k, b) for oid, k, b in change.objects}.values())
            )
            atoms = [oid for oid, kind, _ in change.objects if kind == ATOM]
            if atoms:
                repo.search_index.defer(atoms)
            tree = repo.trees.update(base_tree, effective)
            attribution = (
                to_hex(
                    repo.trees.build(encode_attribution(k, change.touched[k]) for k in effective)
                )
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
            commit_id = repo._write_commit(
                tree,
                [from_hex(old)] if old else [],
                _author(actors),
                message or _message(session, len(entries), actors, others),
                {OPLOG_META: record},
                timestamp=max(iso_to_micros(e["created_at"]) for e in entries),
            )
            _move_branch(repo, ref, old, commit_id, base_tree, tree)
            session_ref = oplog_ref(session)
            repo._move_ref(session_ref, repo.store.read_ref(session_ref), commit_id)
            if atomic:
                checkpoint = log.checkpoint(to_hex(tree), through=end, commit=commit_id)
        if not atomic:
            checkpoint = log.checkpoint(to_hex(tree), through=end, commit=commit_id)
    return OplogCommit(
        commit=commit_id,
        session=session,
        branch=ref[len(refnames.HEADS) :] if ref.startswith(refnames.HEADS) else None,
        ops=len(entries),
        applied=change.applied,
        actors=actors,
        skipped=tuple(change.skipped),
        other_domains=dict(sorted(others.items())),
        checkpoint=checkpoint,
        recovered=recovered,
        changed=len(effective),
    )


def _move_branch(
    repo: RepositoryCore, ref: str, old: str | None, new: ObjectId, base: bytes, tree: bytes
) -> None:
    """Move ``ref``; if it is checked out, carry staged changes over onto the new commit."""
    checked_out = repo._head_ref() == ref
    if checked_out and repo.store.read_ref(refnames.MERGE_HEAD) is not None:
        raise UncommittedChangesError(
            "a merge is in progress on the branch; commit or abort it first"
        )
    stage_value = repo.store.read_ref(refnames.STAGE) if checked_out else None
    repo._move_ref(ref, old, new)
    if stage_value is not None:
        outcome = merge_trees(repo.trees, base, tree, from_hex(stage_value))
        if outcome.conflicts:
            raise UncommittedChangesError(
                f"staged changes to {len(outcome.conflicts)} memories conflict with the"
                " session's ops; commit or reset them first"
            )
        repo._set_stage(stage_value, outcome.tree)


def _recover(repo: RepositoryCore, log: OpLogBackend) -> bool:
    """Write the checkpoint a crash may have skipped after its commit landed."""
    value = repo.store.read_ref(oplog_ref(log.session_id()))
    if value is None:
        return False
    latest = log.read_checkpoint()
    if latest is not None and latest.get("commit") == value:
        return False
    if any(c.get("commit") == value for c in log.checkpoints()):
        return False
    commit = repo.load_commit(from_hex(value))
    meta = oplog_metadata(commit)
    if meta is None or not isinstance(meta.get("ops"), int):
        raise StoreError(f"refs/oplog/{log.session_id()} names a commit not made from a session")
    entries, start, _ = log.pending()
    count = meta["ops"]
    if len(entries) < count or ops_root(entries[:count]) != meta.get("ops_root"):
        raise StoreError(
            f"commit {short(from_hex(value))} of session {log.session_id()!r} does not match"
            " the ops after its last checkpoint; the op log or the store was changed"
        )
    log.checkpoint(to_hex(commit.tree), through=log.cut_after(start, count), commit=value)
    return True


def _author(actors: Sequence[str]) -> str:
    text = ", ".join(actors[:3])
    if len(actors) > 3:
        text += f" and {len(actors) - 3} more"
    if len(text) > MAX_AUTHOR:
        text = text[: MAX_AUTHOR - 1] + "…"
    return text


def _message(session: str, count: int, actors: Sequence[str], others: Counter[str]) -> str:
    plural = "s" if count != 1 else ""
    who = f"{len(actors)} actor{'s' if len(actors) != 1 else ''}"
    text = f"Crystallise session {session}: {count} op{plural} from {who}"
    if others:
        text += "\n\nOps of other domains kept in the log: " + ", ".join(
            f"{domain} {n}" for domain, n in sorted(others.items())
        )
    return text


__all__ = ["OplogCommit", "commit_oplog", "oplog_ref", "ops_root"]
