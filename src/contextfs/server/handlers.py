"""What each request does to the repository: message in, message(s) out, no IO.

Every handler is a plain synchronous function the server runs in a worker
thread. One-answer requests return a message; streams return an iterator of
messages (its last one carries the stream's END). Library errors propagate
as they are: the server turns them into ERROR frames with their codes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import InvalidInputError, MissingObjectError, UnknownRevisionError
from ..expand.context import CompressedContext
from ..expand.expander import ExpanderFunctor
from ..expand.tokens import default_tokenizer
from ..history.commits import COMMIT
from ..history.graph import walk
from ..history.tree import TREE, decode_node
from ..integrity.fsck import _entries_of
from ..model.ids import from_hex, to_hex
from ..model.objects import ATOM, MOLECULE, AtomEntry, decode_molecule
from ..model.types import TypeSignature
from ..repo import Repository
from ..session.delta import build_delta, canonical_json
from ..session.tiers import render_payload
from ..store.base import StoredObject
from ..wire.atoms import memory_atom, wire_atom
from ..wire.messages import (
    Ack,
    Expand,
    ExpandResponse,
    Fetch,
    Hit,
    Log,
    LogEntry,
    LogResponse,
    Message,
    Objects,
    OplogAppend,
    Pull,
    Push,
    Query,
    QueryResponse,
    Session,
    SessionResponse,
    Stream,
    StreamChunk,
    StreamEnd,
    WireAtom,
)

#: Objects per OBJECTS frame (each frame stays well under the frame limit).
OBJECTS_PER_FRAME = 256
#: Largest FETCH request.
MAX_FETCH = 10_000


def expand(repo: Repository, request: Expand) -> ExpandResponse:
    """EXPAND: a revision for a budget, or (as the seed) a CompressedContext."""
    if request.context is not None:
        compressed = _compressed(request.context)
        expanded = ExpanderFunctor(repo).expand(compressed)
        return ExpandResponse(
            atoms=[wire_atom(a) for a in expanded.atoms],
            total_tokens=expanded.total_tokens_estimate,
            expansion_path=list(expanded.expansion_path),
            type_summary=dict(expanded.type_summary),
        )
    prompt = repo.context(
        request.revision, budget=request.budget, query=request.query, format=request.format
    )
    return ExpandResponse(
        atoms=[wire_atom(a) for a in prompt.atoms],
        total_tokens=prompt.tokens,
        text=prompt.text,
        commit=prompt.receipt.commit,
    )


def _compressed(data: dict[str, Any]) -> CompressedContext:
    try:
        atoms = [memory_atom(_wire_from_seed(a)) for a in data.get("delta_atoms", [])]
        removed = set(data.get("removed_hashes", []))
        return CompressedContext(
            data.get("base_hash"), atoms, [], removed, data.get("compression_metadata", {})
        )
    except (TypeError, AttributeError, KeyError) as exc:
        raise InvalidInputError(f"context is not a serialised CompressedContext: {exc}") from None


def _wire_from_seed(data: dict[str, Any]) -> WireAtom:
    """The seed's serialised atom (``type_sig`` as a dict) or ours."""
    sig = data.get("type_sig")
    if isinstance(sig, dict):
        sig_value = TypeSignature(str(sig["name"]))
        kept = {k: v for k, v in data.items() if k not in ("type_sig", "relevance_score")}
        return WireAtom(
            content=data["content"],
            type=str(sig_value),
            relevance=float(data.get("relevance_score", 1.0)),
            source=str(kept.get("source_hash", "")),
        )
    return WireAtom(**data)


def stream(repo: Repository, request: Stream) -> Iterator[Message]:
    """STREAM: the seed's chunks, best first, then STREAM_END."""
    count = 0
    for chunk in repo.stream(
        request.revision,
        chunk_size=request.chunk_size,
        max_tokens_per_chunk=request.max_tokens_per_chunk,
        relevance_threshold=request.relevance_threshold,
    ):
        count += 1
        yield StreamChunk(
            chunk_id=chunk.chunk_id,
            atoms=[wire_atom(a) for a in chunk.atoms],
            is_final=chunk.is_final,
            cumulative_tokens=chunk.cumulative_tokens,
            progress=chunk.expansion_progress,
            skipped=list(chunk.skipped),
        )
    yield StreamEnd(chunks=count)


def query(repo: Repository, request: Query) -> QueryResponse:
    """QUERY: full-text search of a revision, best first."""
    hits = repo.search(
        request.query, revision=request.revision, limit=request.limit, mode=request.mode
    )
    return QueryResponse(
        hits=[Hit(atom=wire_atom(h.atom), score=h.score, match=h.match) for h in hits]
    )


def push(repo: Repository, request: Push) -> Ack:
    """PUSH: stage atoms and removals and commit them at once (all or nothing)."""
    atoms = [memory_atom(a) for a in request.atoms]
    with repo.transaction():
        repo.stage(add=atoms, remove=request.remove)
        if request.expect_head is None:
            commit = repo.commit(request.message, author=request.author)
        else:
            commit = repo.commit(
                request.message, author=request.author, expect_head=request.expect_head
            )
    return Ack(hash=commit, result={"commit": commit, "added": len(atoms)})


def session(repo: Repository, request: Session) -> SessionResponse:
    """SESSION: the session payload as a delta against the client's hashes."""
    payload = repo.session_payload(request.revision, budget=request.budget, query=request.query)
    delta, hashes = build_delta(request.hashes, payload, granularity=request.granularity)
    counter = default_tokenizer()
    tokens = {
        "prompt": counter.count(render_payload(payload)),
        "delta": counter.count(canonical_json(delta)),
    }
    return SessionResponse(delta=delta, hashes=hashes, tokens=tokens)


def oplog_append(repo: Repository, request: OplogAppend) -> Ack:
    """OPLOG_APPEND: append ops durably; answers with each op's stored id and stamp."""
    stored = repo.oplog(request.session).append_many(request.ops)  # type: ignore[arg-type]
    return Ack(
        result={"ops": [{"op_id": e["op_id"], "lamport_ts": e["lamport_ts"]} for e in stored]}
    )


def log(repo: Repository, request: Log) -> LogResponse:
    """LOG: ``revision``'s history, newest first, at most ``limit`` commits (1-1000)."""
    if not 1 <= request.limit <= 1000:
        raise InvalidInputError("LOG limit must be from 1 to 1000")
    return LogResponse(
        commits=[
            LogEntry(
                id=info.id,
                parents=list(info.parents),
                author=info.commit.author,
                message=info.commit.message,
                timestamp=info.commit.timestamp,
            )
            for info in repo.log([request.revision], limit=request.limit)
        ]
    )


# -- copying history ----------------------------------------------------------------


def pull(repo: Repository, request: Pull) -> Iterator[Message]:
    """PULL: every object of ``want``'s history that ``have`` does not already reach.

    Commits reachable from a ``have`` commit are skipped, and so is every tree
    node and object their snapshots hold, so only what changed travels.
    """
    head = repo.resolve(request.want)
    haves = [h for h in request.have if _known(repo, h)]
    hidden = {oid for oid, _ in walk(repo.load_commit, [from_hex(h) for h in haves])}
    seen: set[bytes] = set()
    for oid in (from_hex(h) for h in haves):  # what the client holds: never resent
        seen.add(oid)
    known_trees = [repo.load_commit(oid).tree for oid in hidden]
    for tree in known_trees[:64]:
        _mark_tree(repo, tree, seen)
    batch: list[tuple[str, str, bytes]] = []
    for oid, commit in walk(repo.load_commit, [from_hex(head)]):
        if oid in hidden:
            continue
        for item in _commit_objects(repo, oid, commit.tree, seen):
            batch.append(item)
            if len(batch) >= OBJECTS_PER_FRAME:
                yield Objects(objects=batch)
                batch = []
    yield Objects(objects=batch, head=head)


def fetch(repo: Repository, request: Fetch) -> Iterator[Message]:
    """FETCH: objects by full id, in frames of :data:`OBJECTS_PER_FRAME`."""
    if len(request.ids) > MAX_FETCH:
        raise InvalidInputError(f"FETCH asks for more than {MAX_FETCH} objects")
    ids = [from_hex(i) for i in request.ids]
    found = repo.store.get_objects(ids)
    missing = [to_hex(oid) for oid in ids if oid not in found]
    if missing:
        raise UnknownRevisionError(f"no object {missing[0]}")
    rows: list[tuple[str, str, bytes]] = [(oid.hex(), *found[oid]) for oid in ids]
    for start in range(0, max(len(rows), 1), OBJECTS_PER_FRAME):
        yield Objects(objects=rows[start : start + OBJECTS_PER_FRAME])


def _known(repo: Repository, commit: str) -> bool:
    try:
        oid = from_hex(commit)
    except (ValueError, InvalidInputError):
        return False
    stored = repo.store.get_object(oid)
    return stored is not None and stored.kind == COMMIT


def _get(repo: Repository, oid: bytes) -> StoredObject:
    stored = repo.store.get_object(oid)
    if stored is None:
        raise MissingObjectError(f"object {to_hex(oid)} is missing from the store")
    return stored


def _mark_tree(repo: Repository, root: bytes, seen: set[bytes]) -> None:
    for oid, _, _ in _tree_objects(repo, root, seen):
        seen.add(oid)


def _commit_objects(
    repo: Repository, oid: bytes, tree: bytes, seen: set[bytes]
) -> Iterator[tuple[str, str, bytes]]:
    for node, kind, data in _tree_objects(repo, tree, seen):
        yield to_hex(node), kind, data
    if oid not in seen:
        seen.add(oid)
        yield to_hex(oid), COMMIT, _get(repo, oid).data


def _tree_objects(
    repo: Repository, root: bytes, seen: set[bytes]
) -> Iterator[tuple[bytes, str, bytes]]:
    """Yield the tree nodes and objects below ``root`` not in ``seen``, children first."""
    stack = [root]
    while stack:
        node_id = stack.pop()
        if node_id in seen:
            continue
        seen.add(node_id)
        data = _get(repo, node_id).data
        node = decode_node(data)
        stack.extend(child.id for child in node.children)
        for item in node.items:
            for entry in _entries_of(item):
                target = entry.atom_id if isinstance(entry, AtomEntry) else entry.molecule_id
                if target in seen:
                    continue
                seen.add(target)
                target_kind, target_data = _get(repo, target)
                if target_kind == MOLECULE:
                    for atom_id in decode_molecule(target_data).atom_ids:
                        if atom_id not in seen:
                            seen.add(atom_id)
                            yield (atom_id, ATOM, _get(repo, atom_id).data)
                yield target, target_kind, target_data
        yield node_id, TREE, data


__all__ = [
    "expand",
    "fetch",
    "log",
    "oplog_append",
    "pull",
    "push",
    "query",
    "session",
    "stream",
]
