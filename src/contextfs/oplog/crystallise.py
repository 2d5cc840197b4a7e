"""What a commit crystallised from a session's op log is made of.

The commit itself is written by :class:`contextfs.services.crystallise.Crystalliser`
(``Repository.commit_oplog``). Here are the pure parts every machine must agree
on, so the same ops on the same base make the same commit id everywhere:

* :func:`ops_root`: the RFC 6962 root of the op ids in merge order, which
  names the op set whatever order the ops arrived in;
* :func:`crystal_author` and :func:`crystal_message`: the default author line
  and message, made from the ops;
* :func:`oplog_ref`: ``refs/oplog/<session>``, the latest commit made from a
  session, which lets a crash between the commit and the checkpoint be
  recovered;
* :class:`OplogCommit`: what crystallising reports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ..model import refs as refnames
from ..model.ids import ObjectId
from ..model.merkle import root as merkle_root
from .entry import OpEntry, OpLogCheckpoint, merge_key

#: Longest author line written for a crystallised commit.
MAX_AUTHOR = 200


@dataclass(frozen=True, slots=True)
class OplogCommit:
    """What crystallising a session wrote (``Repository.commit_oplog``).

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


def crystal_author(actors: Sequence[str]) -> str:
    """The author line of a crystallised commit: its actors, the first three by name."""
    text = ", ".join(actors[:3])
    if len(actors) > 3:
        text += f" and {len(actors) - 3} more"
    if len(text) > MAX_AUTHOR:
        text = text[: MAX_AUTHOR - 1] + "…"
    return text


def crystal_message(session: str, count: int, actors: Sequence[str], others: Counter[str]) -> str:
    """The default message of a crystallised commit: what it took from whom."""
    plural = "s" if count != 1 else ""
    who = f"{len(actors)} actor{'s' if len(actors) != 1 else ''}"
    text = f"Crystallise session {session}: {count} op{plural} from {who}"
    if others:
        text += "\n\nOps of other domains kept in the log: " + ", ".join(
            f"{domain} {n}" for domain, n in sorted(others.items())
        )
    return text


__all__ = [
    "MAX_AUTHOR",
    "OplogCommit",
    "crystal_author",
    "crystal_message",
    "oplog_ref",
    "ops_root",
]
