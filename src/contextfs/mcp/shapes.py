"""The typed shapes MCP tools take and return: pydantic models, so clients see JSON schemas.

Inputs refuse unknown fields and convert nothing (a boolean is not a count, a
number is not text), so a client's mistake comes back as a tool error naming
the field instead of being guessed at. Outputs are small, flat and made of
JSON values only: ids in full, times in ISO 8601 UTC.
"""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..integrity.fsck import VerifyReport
from ..model.objects import MemoryAtom, MemoryMolecule
from ..model.timeutil import from_micros
from ..records import Change, CommitInfo, ConflictInfo, Memory

#: Largest token budget a client may ask for (a prompt, not a dump of the store).
MAX_BUDGET = 1_000_000
#: Most memories one ``remember`` call may add.
MAX_MEMORIES = 1_000
#: Most hits, commits or changes one call returns.
MAX_LIMIT = 1_000
#: Longest text shown for a memory in a diff or conflict (the full text is one ``atom`` read away).
PREVIEW = 200


class Shape(BaseModel):
    """A value a tool takes or returns: immutable, closed to unknown fields, no coercion."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


# -- arguments -------------------------------------------------------------------------

Revision = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1000,
        description="A version: HEAD, a branch or tag name, a commit id or unique prefix,"
        " REV~N or REV^N.",
    ),
]
Budget = Annotated[
    int, Field(ge=0, le=MAX_BUDGET, description="Token budget (cl100k_base tokens).")
]
Query = Annotated[
    str,
    Field(
        min_length=1,
        max_length=10_000,
        description='Words to match (any of them by default); "quoted phrases" match as'
        " phrases and a trailing * matches a prefix.",
    ),
]
HalfLife = Annotated[
    float | None,
    Field(
        gt=0,
        description="Weigh memories down by age: half as relevant every this many seconds.",
    ),
]
RetrievalMode = Annotated[
    Literal["lexical", "semantic", "hybrid"] | None,
    Field(
        description="How the query finds memories: by its words, by meaning (the"
        " repository's embedder) or by both (the default when it has an embedder)."
    ),
]
MemoryRef = Annotated[
    str,
    Field(
        min_length=4,
        max_length=64,
        description="A memory id: the full 64 hex digits or a unique prefix.",
    ),
]
Message = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=10_000,
        description="The commit message (default: one naming the session, its ops and actors).",
    ),
]


class MemoryInput(Shape):
    """One memory to remember."""

    content: Annotated[str, Field(min_length=1, description="The memory's text.")]
    type: Annotated[
        str,
        Field(
            min_length=1,
            max_length=1000,
            description="Its type, e.g. String, Fact, Preference, Decision, List[String].",
        ),
    ] = "String"
    relevance: Annotated[float, Field(ge=0, le=1, description="How much it matters, 0 to 1.")] = 1.0
    source: Annotated[str, Field(max_length=1000, description="Where it came from.")] = ""
    tags: Annotated[
        list[str], Field(default_factory=list, max_length=64, description="Labels to filter by.")
    ]
    abstract: Annotated[
        str | None, Field(max_length=1000, description="A one-line summary (session tier l0).")
    ] = None
    overview: Annotated[
        str | None, Field(max_length=10_000, description="A short overview (session tier l1).")
    ] = None


# -- results -----------------------------------------------------------------------------


class MemoryOut(Shape):
    """A memory as a tool returns it: the atom and its entry fields."""

    id: str
    type: str
    content: str
    relevance: float
    timestamp: str
    source: str
    tags: list[str]


class Hit(MemoryOut):
    """A memory a search found: its ``score`` (relevance x recency x match) and ``match``."""

    score: float
    match: float


class RememberResult(Shape):
    """What ``remember`` wrote: the memories' ids, their ops, and the commit if made."""

    ids: list[str]
    ops: list[str]
    session: str
    actor: str
    committed: bool
    commit: str | None
    branch: str | None


class CommitResult(Shape):
    """A crystallisation of the session's pending ops into one commit."""

    commit: str
    session: str
    branch: str | None
    ops: int
    applied: int
    actors: list[str]
    skipped: list[str]


class RecallResult(Shape):
    """Search hits, best first."""

    query: str
    revision: str
    hits: list[Hit]


class ContextResult(Shape):
    """A prompt cut to a budget, and the receipt that re-derives it byte for byte.

    With ``turn``, one agent turn's context built for prompt caches (see the
    fields below the receipt).

    The receipt lists the memories' ids in prompt order (``memory_ids``).
    ``commit`` and ``receipt`` are None for a branch with no commits yet.
    """

    text: str
    tokens: int
    budget: int
    commit: str | None
    receipt: dict[str, Any] | None
    #: With ``turn``: the stable block (cacheable; put it in the system prompt), then
    #: the volatile one (just before the user's message), the state to pass back as
    #: ``previous`` next turn, why the stable block was rebuilt, and the cost.
    blocks: list[dict[str, Any]] | None = None
    state: dict[str, Any] | None = None
    rebuild: str | None = None
    cost: dict[str, float] | None = None


class SessionResult(Shape):
    """A session payload (``full``) or its delta against the client's hash bundle.

    Keep ``hashes`` and send them with the next turn; rebuild the payload with
    ``contextfs.session.apply_delta(previous_payload, delta)``.
    """

    full: bool
    delta: dict[str, Any]
    hashes: dict[str, str]
    tokens: dict[str, int]


class ForgetResult(Shape):
    """What ``forget`` did: removal through the op log, and the purge if asked for."""

    id: str
    removed: bool
    committed: bool
    commit: str | None
    purged: bool
    purge_record: str | None
    oplog_copies: list[str]


class CommitEntry(Shape):
    """One commit of a history; ``session`` and ``actors`` when crystallised from an op log."""

    id: str
    parents: list[str]
    author: str
    message: str
    time: str
    session: str | None
    actors: list[str]


class HistoryResult(Shape):
    """Commits reachable from a revision, newest first."""

    revision: str
    commits: list[CommitEntry]


class ChangeEntry(Shape):
    """One memory that differs between two versions (texts cut to a preview)."""

    status: Literal["added", "removed", "changed"]
    id: str
    kind: Literal["atom", "molecule"]
    type: str
    old: str | None
    new: str | None
    fields: list[str]


class DiffResult(Shape):
    """The changes from ``old`` to ``new``, at most ``limit`` of ``total``."""

    old: str
    new: str
    total: int
    changes: list[ChangeEntry]


class BranchEntry(Shape):
    """A branch and the commit it names."""

    name: str
    commit: str
    current: bool


class BranchResult(Shape):
    """The branches after the call, and what it created or deleted."""

    branches: list[BranchEntry]
    current: str | None
    created: str | None
    deleted: str | None


class SwitchResult(Shape):
    """The branch now checked out and its commit (None while it has none)."""

    branch: str
    head: str | None


class ConflictEntry(Shape):
    """A memory both sides changed differently (texts cut to a preview)."""

    id: str
    ours: str | None
    theirs: str | None


class MergeOutcome(Shape):
    """How a merge ended; on ``conflicts`` nothing was changed."""

    status: Literal["up-to-date", "fast-forward", "merged", "conflicts"]
    commit: str | None
    conflicts: list[ConflictEntry]


class RevertResult(Shape):
    """An actor's changes undone: memories restored, and those left because others changed them."""

    actor: str
    commit: str | None
    reverted: list[str]
    conflicts: list[str]
    dry_run: bool


class ProblemEntry(Shape):
    """One thing ``verify`` found wrong."""

    kind: str
    id: str | None
    ref: str | None
    message: str


class VerifyResult(Shape):
    """Every object re-hashed, every link and ref checked."""

    ok: bool
    counts: dict[str, int]
    purged: list[str]
    problems: list[ProblemEntry]


class ProveResult(Shape):
    """A proof that a memory is (or is not) in a commit, checked before it was returned."""

    kind: Literal["membership", "non-membership"]
    id: str
    commit: str
    revision: str
    verified: bool
    proof: dict[str, Any]


# -- conversions -------------------------------------------------------------------------


def iso(micros: int) -> str:
    """A stored time (microseconds since the epoch) as ISO 8601 UTC."""
    return from_micros(micros).astimezone(UTC).isoformat().replace("+00:00", "Z")


def memory_out(atom: MemoryAtom) -> MemoryOut:
    """An atom and its entry fields."""
    return MemoryOut(**_atom_fields(atom))


def hit_out(atom: MemoryAtom, score: float, match: float) -> Hit:
    """A search hit."""
    return Hit(**_atom_fields(atom), score=score, match=match)


def _atom_fields(atom: MemoryAtom) -> dict[str, Any]:
    return {
        "id": atom.content_hash,
        "type": str(atom.type_sig),
        "content": atom.content,
        "relevance": atom.relevance_score,
        "timestamp": iso(atom.entry.timestamp),
        "source": atom.source_hash,
        "tags": list(atom.tags),
    }


def commit_entry(info: CommitInfo) -> CommitEntry:
    """A commit of a history."""
    record = info.commit.metadata.get("oplog")
    session = record.get("session") if isinstance(record, dict) else None
    actors = record.get("actors") if isinstance(record, dict) else None
    return CommitEntry(
        id=info.id,
        parents=list(info.parents),
        author=info.commit.author,
        message=info.commit.message,
        time=iso(info.commit.timestamp),
        session=session if isinstance(session, str) else None,
        actors=[a for a in actors if isinstance(a, str)] if isinstance(actors, list) else [],
    )


def change_entry(change: Change) -> ChangeEntry:
    """One change of a diff."""
    memory = change.new if change.new is not None else change.old
    return ChangeEntry(
        status=change.status,
        id=change.id,
        kind="molecule" if isinstance(memory, MemoryMolecule) else "atom",
        type=_type_of(memory),
        old=preview(change.old),
        new=preview(change.new),
        fields=list(change.fields),
    )


def conflict_entry(conflict: ConflictInfo) -> ConflictEntry:
    """One merge conflict."""
    return ConflictEntry(
        id=conflict.id, ours=preview(conflict.ours), theirs=preview(conflict.theirs)
    )


def preview(memory: Memory | None) -> str | None:
    """A memory's text cut to :data:`PREVIEW` characters (a molecule: its type and size)."""
    if memory is None:
        return None
    if isinstance(memory, MemoryMolecule):
        return f"<{memory.molecule_type} of {len(memory.atoms)} atoms>"
    text = memory.content
    return text if len(text) <= PREVIEW else text[: PREVIEW - 1] + "…"


def _type_of(memory: Memory | None) -> str:
    if isinstance(memory, MemoryMolecule):
        return str(memory.molecule_type)
    return str(memory.type_sig) if memory is not None else ""


def verify_result(report: VerifyReport) -> VerifyResult:
    """A verification report."""
    return VerifyResult(
        ok=report.ok,
        counts=dict(report.counts),
        purged=list(report.purged),
        problems=[
            ProblemEntry(kind=p.kind, id=p.oid, ref=p.ref, message=p.message)
            for p in report.problems
        ],
    )
