"""The memory tools an MCP client calls: remember, commit, recall, context, session, forget.

Each tool is one thin call into :class:`~contextfs.repo.Repository` (reads) or
into the session's op log (writes, through :class:`~.writer.SessionWriter`),
with typed arguments (:mod:`.shapes`, which the SDK turns into JSON schemas)
and a small structured result. Library errors propagate as they are; the
server turns them into tool errors carrying their one-line message.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field

from ..errors import InvalidInputError, RevisionError, UnknownRevisionError
from ..expand.query import ContextQuery
from ..expand.render import Format
from ..expand.tokens import default_tokenizer
from ..model import refs as refnames
from ..model.ids import ID_HEX_LENGTH, from_hex, is_hex_prefix, to_hex
from ..model.objects import ATOM, atom_digest, decode_atom
from ..model.types import TypeSignature
from ..oplog.context_ops import add_atom_op, remove_atom_op
from ..repo import Repository
from ..services.assembler import DEFAULT_SESSION_BUDGET
from ..session.delta import Granularity, build_delta, canonical_json
from ..session.tiers import render_payload
from .shapes import (
    MAX_LIMIT,
    MAX_MEMORIES,
    Budget,
    CommitResult,
    ContextResult,
    ForgetResult,
    HalfLife,
    MemoryInput,
    MemoryRef,
    Message,
    Query,
    RecallResult,
    RememberResult,
    RetrievalMode,
    Revision,
    SessionResult,
    hit_out,
)
from .writer import Crystal, SessionWriter

#: Tokens of ``context`` (and the ``contextfs://context`` resource) unless told otherwise.
DEFAULT_CONTEXT_BUDGET = 4_000

#: The session payload of an empty memory (what ``session_payload`` gives an empty snapshot).
EMPTY_PAYLOAD: dict[str, Any] = {"l0": "", "l1": "", "l2": [], "rich_club": ""}

Text = Annotated[str, Field(max_length=1000)]


class MemoryTools:
    """Remember, recall and forget memories of one repository, as one actor of one session."""

    def __init__(self, repo: Repository, writer: SessionWriter) -> None:
        self.repo = repo
        self.writer = writer

    # -- writing -------------------------------------------------------------------------

    def remember(
        self,
        memories: Annotated[
            list[MemoryInput],
            Field(min_length=1, max_length=MAX_MEMORIES, description="The memories to add."),
        ],
        commit: Annotated[
            bool,
            Field(
                description="Commit at once (default). False stages them in the session's op"
                " log; the next commit from any client of the session takes them."
            ),
        ] = True,
        message: Message = None,
    ) -> RememberResult:
        """Add memories: ops in the session's op log, then (by default) one commit.

        A memory is its type plus its text: remembering the same text and type
        again updates its relevance, source, tags and summaries. Returns each
        memory's id, the ops written and the commit. Staged memories are not
        seen by recall or context until committed.
        """
        if message is not None and not commit:
            raise InvalidInputError("message is for a commit: drop it, or set commit to true")
        ops = [
            add_atom_op(
                m.content,
                m.type,
                relevance=m.relevance,
                source=m.source,
                tags=m.tags,
                abstract=m.abstract,
                overview=m.overview,
            )
            for m in memories
        ]
        ids: list[str] = [
            to_hex(atom_digest(TypeSignature.parse(m.type), m.content)) for m in memories
        ]
        stored = self.writer.append(ops)
        crystal = self.writer.commit_appended(message) if commit else None
        return RememberResult(
            ids=ids,
            ops=[e["op_id"] for e in stored],
            session=self.writer.session,
            actor=self.writer.actor,
            committed=crystal is not None,
            commit=crystal.commit if crystal else None,
            branch=crystal.branch if crystal else None,
        )

    def commit(self, message: Message = None) -> CommitResult:
        """Commit every pending op of the session (staged by any client) as one commit.

        Fails when nothing is pending.
        """
        return _commit_result(self.writer.session, self.writer.commit(message))

    def forget(
        self,
        id: MemoryRef,
        purge: Annotated[
            bool,
            Field(
                description="Also erase the memory's text from every version of history"
                " (cannot be undone; needs confirm)."
            ),
        ] = False,
        confirm: Annotated[
            str | None, Field(max_length=64, description="For purge: the memory's id again.")
        ] = None,
        reason: Annotated[
            str, Field(max_length=1000, description="For purge: why (kept in the purge record).")
        ] = "",
        commit: Annotated[bool, Field(description="Commit the removal at once (default).")] = True,
    ) -> ForgetResult:
        """Remove a memory from the current branch (history keeps it), or purge it.

        Removal is an op in the session's op log, committed at once by
        default. With ``purge`` the memory's text is erased from every version
        and index too (ids still verify; the purge is recorded); ``confirm``
        must repeat the id. ``oplog_copies`` names the op-log sessions whose
        ops held the text; the purge redacted them.
        """
        if not purge and (confirm is not None or reason):
            raise InvalidInputError("confirm and reason are for purge: set purge to true")
        key = self._full_id(id)
        held = self._held(key)
        if not purge and not held:
            where = self.repo.current_branch or "HEAD"
            raise UnknownRevisionError(
                f"memory {id!r} is not in {where} nor pending in session {self.writer.session!r}"
            )
        record, copies = None, []
        if purge:
            if confirm is None or confirm.lower() not in (id.lower(), key):
                raise InvalidInputError(
                    f"purge erases memory {key} from all history and cannot be undone;"
                    " pass confirm with its id to go ahead"
                )
            copies = self._oplog_copies(key)
            record = self.repo.purge(key, author=self.writer.actor, reason=reason)
        crystal: Crystal | None = None
        if held:
            self.writer.append([remove_atom_op(key)])
            if commit:
                crystal = self.writer.commit_appended()
        return ForgetResult(
            id=key,
            removed=held,
            committed=crystal is not None,
            commit=crystal.commit if crystal else None,
            purged=record is not None,
            purge_record=record.id if record is not None else None,
            oplog_copies=copies,
        )

    def _full_id(self, ref: str) -> str:
        """The full id ``ref`` names: as given when complete (it may be pending only)."""
        text = ref.lower()
        if len(text) == ID_HEX_LENGTH and is_hex_prefix(text):
            return text
        return self.repo.memory_id(ref)

    def _held(self, key: str) -> bool:
        """Whether the memory is in HEAD, or added by an op still pending in the session."""
        try:
            self.repo.get(key, refnames.HEAD)
        except RevisionError:
            return from_hex(key) in self.writer.pending_keys()
        return True

    def _oplog_copies(self, key: str) -> list[str]:
        stored = self.repo.store.get_object(from_hex(key))
        if stored is None or stored.kind != ATOM or not stored.data:
            return []
        type_sig, content = decode_atom(stored.data)
        return self.writer.sessions_holding(type_sig, content)

    # -- reading -------------------------------------------------------------------------

    def _unborn(self, revision: str) -> bool:
        """Whether ``revision`` is HEAD of a branch without commits: an empty memory, no error."""
        return revision == refnames.HEAD and self.repo.head() is None

    def recall(
        self,
        query: Query,
        limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, description="Most hits.")] = 10,
        type: Annotated[
            str | None,
            Field(min_length=1, max_length=1000, description="Keep memories of this type."),
        ] = None,
        tags: Annotated[
            list[Text] | None, Field(max_length=64, description="Keep memories with all these.")
        ] = None,
        source: Annotated[
            str | None, Field(max_length=1000, description="Keep memories from this source.")
        ] = None,
        min_relevance: Annotated[
            float, Field(ge=0, le=1, description="Keep memories at least this relevant.")
        ] = 0.0,
        match: Annotated[
            Literal["any", "all"], Field(description="Match any word (default) or all of them.")
        ] = "any",
        revision: Revision = refnames.HEAD,
        half_life_seconds: HalfLife = None,
        retrieval: RetrievalMode = None,
    ) -> RecallResult:
        """Search memories by their words or meaning, best first (relevance x recency x match)."""
        if self._unborn(revision):
            return RecallResult(query=query, revision=revision, hits=[])
        filtered = type is not None or tags or source is not None or min_relevance > 0
        where = (
            ContextQuery(
                type_filter=TypeSignature.parse(type) if type is not None else None,
                min_relevance=min_relevance,
                tags=tuple(tags or ()),
                source=source,
            )
            if filtered
            else None
        )
        hits = self.repo.search(
            query,
            revision=revision,
            limit=limit,
            mode=match,
            where=where,
            half_life_seconds=half_life_seconds,
            retrieval=retrieval,
        )
        return RecallResult(
            query=query,
            revision=revision,
            hits=[hit_out(h.atom, h.score, h.match) for h in hits],
        )

    def context(
        self,
        budget: Budget = DEFAULT_CONTEXT_BUDGET,
        query: Annotated[
            Query | None, Field(description="Rank by, and keep only, memories matching this.")
        ] = None,
        revision: Revision = refnames.HEAD,
        format: Annotated[
            Format, Field(description="lines ([Type] text), markdown, json or xml.")
        ] = "lines",
        half_life_seconds: HalfLife = None,
        retrieval: RetrievalMode = None,
        turn: Annotated[
            bool,
            Field(
                description="One agent turn's context for prompt caches: a stable block that"
                " stays byte-identical from turn to turn, then a volatile one."
            ),
        ] = False,
        previous: Annotated[
            dict[str, Any] | None,
            Field(description="The state the previous turn returned (implies turn)."),
        ] = None,
    ) -> ContextResult:
        """The best prompt a version of memory gives within a token budget, with its receipt.

        The receipt names the commit, the parameters and the prompt's hash:
        ``contextfs verify-receipt`` re-derives the prompt from it byte for byte.
        With ``turn``, the blocks of one agent turn instead (see ``blocks``).
        """
        if self._unborn(revision):
            return ContextResult(text="", tokens=0, budget=budget, commit=None, receipt=None)
        if turn or previous is not None:
            if format != "lines":
                raise InvalidInputError("a turn context renders lines; leave format out")
            built = self.repo.turn_context(
                query,
                budget=budget,
                previous=previous,
                revision=revision,
                half_life_seconds=half_life_seconds,
                retrieval=retrieval,
            )
            return ContextResult(
                text=built.text,
                tokens=built.tokens,
                budget=budget,
                commit=built.receipt.commit,
                receipt=json.loads(built.receipt.to_json()),
                blocks=built.blocks_json(),
                state=built.state,
                rebuild=built.rebuild,
                cost=built.cost_json(),
            )
        prompt = self.repo.context(
            revision,
            budget=budget,
            query=query,
            format=format,
            half_life_seconds=half_life_seconds,
            retrieval=retrieval,
        )
        return ContextResult(
            text=prompt.text,
            tokens=prompt.tokens,
            budget=budget,
            commit=prompt.receipt.commit,
            receipt=json.loads(prompt.receipt.to_json()),
        )

    def session(
        self,
        budget: Budget = DEFAULT_SESSION_BUDGET,
        query: Annotated[
            Query | None, Field(description="Rank l1 and l2 by, and keep only, matches.")
        ] = None,
        revision: Revision = refnames.HEAD,
        hashes: Annotated[
            dict[str, str] | None,
            Field(
                description="The hash bundle the previous turn returned; omit on the first"
                " turn to get the whole payload."
            ),
        ] = None,
        granularity: Annotated[
            Granularity,
            Field(description="Deltas by item (default) or by whole component."),
        ] = "item",
        retrieval: RetrievalMode = None,
    ) -> SessionResult:
        """An agent turn's tiered payload (l0, rich_club, l1, l2), or only what changed.

        Without ``hashes`` the delta is the whole payload. With the bundle of
        the previous turn, unchanged tiers are left out and a changed memory
        costs one item; apply it with ``contextfs.session.apply_delta``.
        """
        payload = (
            EMPTY_PAYLOAD
            if self._unborn(revision)
            else self.repo.session_payload(
                revision, budget=budget, query=query, retrieval=retrieval
            )
        )
        delta, new_hashes = build_delta(hashes or {}, payload, granularity=granularity)
        counter = default_tokenizer()
        return SessionResult(
            full=not hashes,
            delta=delta,
            hashes=new_hashes,
            tokens={
                "prompt": counter.count(render_payload(payload)),
                "delta": counter.count(canonical_json(delta)),
            },
        )


def _commit_result(session: str, crystal: Crystal) -> CommitResult:
    return CommitResult(
        commit=crystal.commit,
        session=session,
        branch=crystal.branch,
        ops=crystal.ops,
        applied=crystal.applied,
        actors=list(crystal.actors),
        skipped=[f"{op_id[:16]}: {why}" for op_id, why in crystal.skipped],
    )


__all__ = ["DEFAULT_CONTEXT_BUDGET", "EMPTY_PAYLOAD", "MemoryTools"]
