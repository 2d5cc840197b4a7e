"""The version-control tools an MCP client calls: history, diff, branches, merge, revert, proofs.

Thin calls into :class:`~contextfs.repo.Repository`, as :mod:`.tools` is for
memories. Every client of a repository shares its checkout (HEAD), as the
processes of one git working tree do: ``switch`` moves it for all of them.
A merge never stops half-way here: on conflicts it is abandoned, nothing
changes, and the conflicts are returned so the client can pick a side.
"""

from __future__ import annotations

import itertools
import json
from typing import Annotated, Literal

from pydantic import Field

from ..errors import InvalidInputError, VerificationError
from ..integrity.proofs import verify as verify_proof
from ..model import refs as refnames
from ..repo import Repository
from .shapes import (
    MAX_LIMIT,
    BranchEntry,
    BranchResult,
    DiffResult,
    HistoryResult,
    MemoryRef,
    MergeOutcome,
    Message,
    ProveResult,
    RevertResult,
    Revision,
    SwitchResult,
    VerifyResult,
    change_entry,
    commit_entry,
    conflict_entry,
    verify_result,
)
from .writer import SessionWriter

BranchName = Annotated[
    str, Field(min_length=1, max_length=255, description="A branch name, e.g. research.")
]


class HistoryTools:
    """History and branches of one repository, writing as the writer's actor."""

    def __init__(self, repo: Repository, writer: SessionWriter) -> None:
        self.repo = repo
        self.writer = writer

    def history(
        self,
        revision: Revision = refnames.HEAD,
        limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, description="Most commits.")] = 20,
    ) -> HistoryResult:
        """The commits reachable from a version, newest first (with each one's op-log actors)."""
        if revision == refnames.HEAD and self.repo.head() is None:
            return HistoryResult(revision=revision, commits=[])  # a branch without commits yet
        return HistoryResult(
            revision=revision,
            commits=[commit_entry(info) for info in self.repo.log([revision], limit=limit)],
        )

    def diff(
        self,
        old: Revision,
        new: Revision = refnames.HEAD,
        limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, description="Most changes listed.")] = 100,
    ) -> DiffResult:
        """The memories added, removed or changed from one version to another."""
        changes = self.repo.diff(old, new)
        return DiffResult(
            old=old,
            new=new,
            total=len(changes),
            changes=[change_entry(c) for c in itertools.islice(changes, limit)],
        )

    def branch(
        self,
        name: Annotated[
            BranchName | None, Field(description="A branch to create (omit to list them).")
        ] = None,
        start: Revision = refnames.HEAD,
        delete: Annotated[
            bool, Field(description="Delete branch name instead (only if merged into HEAD).")
        ] = False,
    ) -> BranchResult:
        """List the branches; create one at a version; or delete a merged one."""
        created = deleted = None
        if name is None:
            if delete:
                raise InvalidInputError("delete needs the name of the branch to delete")
        elif delete:
            self.repo.delete_branch(name)
            deleted = name
        else:
            self.repo.create_branch(name, start)
            created = name
        current = self.repo.current_branch
        return BranchResult(
            branches=[
                BranchEntry(name=branch, commit=commit, current=branch == current)
                for branch, commit in sorted(self.repo.branches().items())
            ],
            current=current,
            created=created,
            deleted=deleted,
        )

    def switch(
        self,
        branch: BranchName,
        create: Annotated[bool, Field(description="Create it at HEAD first.")] = False,
    ) -> SwitchResult:
        """Check out a branch, for every client of this repository (they share HEAD)."""
        head = self.repo.switch(branch, create=create)
        return SwitchResult(branch=branch, head=head)

    def merge(
        self,
        revision: Revision,
        strategy: Annotated[
            Literal["ours", "theirs"] | None,
            Field(description="Settle every conflict for this side (omit to be told of them)."),
        ] = None,
        message: Message = None,
    ) -> MergeOutcome:
        """Merge a version (a branch, usually) into the current branch.

        Fast-forwards when it can, else merges three ways and commits. On
        conflicts without a strategy nothing is changed and the conflicting
        memories are returned: merge again with strategy ours or theirs.
        """
        with self.repo.transaction():  # a stopped merge is never seen by other clients
            result = self.repo.merge(
                revision, author=self.writer.actor, message=message, strategy=strategy
            )
            if result.status == "conflicts":
                self.repo.abort_merge()
        return MergeOutcome(
            status=result.status,
            commit=result.commit,
            conflicts=[conflict_entry(c) for c in result.conflicts],
        )

    def revert(
        self,
        actor: Annotated[
            str, Field(min_length=1, max_length=256, description="Whose changes to undo.")
        ],
        since: Annotated[
            Revision | None, Field(description="Keep the changes up to this version.")
        ] = None,
        dry_run: Annotated[bool, Field(description="Report what would be undone only.")] = False,
        strict: Annotated[
            bool, Field(description="Change nothing if anyone else changed the same memories.")
        ] = False,
    ) -> RevertResult:
        """Undo every change one actor made on the current branch, keeping everyone else's.

        Memories another actor changed too are left as they are and listed.
        """
        done = self.repo.revert_actor(
            actor, since, author=self.writer.actor, strict=strict, dry_run=dry_run
        )
        return RevertResult(
            actor=actor,
            commit=done.commit,
            reverted=list(done.reverted),
            conflicts=[c.id for c in done.conflicts],
            dry_run=dry_run,
        )

    def verify(self) -> VerifyResult:
        """Re-hash every object and check every commit, tree, link and ref; name any damage."""
        return verify_result(self.repo.verify())

    def prove(self, id: MemoryRef, revision: Revision = refnames.HEAD) -> ProveResult:
        """Prove that a memory is, or is not, in a version: RFC 6962 proofs up to the commit id.

        ``contextfs verify-proof`` (or any RFC 6962 verifier) checks the proof
        against a commit id the checker trusts.
        """
        proof = self.repo.prove(id, revision)
        commit = proof.commit_id.hex()
        if not verify_proof(proof, commit):
            raise VerificationError(f"the store built a proof that does not verify for {id!r}")
        return ProveResult(
            kind="membership" if proof.kind == "membership" else "non-membership",
            id=proof.key.hex(),
            commit=commit,
            revision=revision,
            verified=True,
            proof=json.loads(proof.to_json()),
        )


__all__ = ["HistoryTools"]
