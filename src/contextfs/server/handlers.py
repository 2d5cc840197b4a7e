"""What each request does to the repository: message in, message(s) out, no IO.

Every handler is a plain synchronous function the server runs in a worker
thread. One-answer requests return a message; streams return an iterator of
messages (its last one carries the stream's END). Library errors propagate
as they are: the server turns them into ERROR frames with their codes.
"""

from __future__ import annotations

import itertools
import tempfile
import threading
from collections.abc import Iterable, Iterator
from typing import IO, Any

from ..errors import (
    CorruptObjectError,
    InvalidInputError,
    UnknownRevisionError,
    shape_problem,
)
from ..expand.expander import ExpanderFunctor
from ..expand.tokens import default_tokenizer
from ..history.reflog import reflog_reason
from ..model import refs as refnames
from ..model.context import CompressedContext
from ..model.ids import from_hex, to_hex
from ..model.types import TypeSignature
from ..remote.objects import RefUpdate, known_commits, receive
from ..remote.objects import offer as offer_ids
from ..remote.pack import PackRow, pack_history, read_pack, store_bases
from ..remote.peers import shared_refs, stored_rows
from ..repo import Repository
from ..session.delta import build_delta, canonical_json
from ..session.tiers import render_payload
from ..wire.atoms import memory_atom, wire_atom
from ..wire.frames import DEFAULT_MAX_FRAME
from ..wire.messages import (
    Ack,
    Expand,
    ExpandResponse,
    Fetch,
    FetchPack,
    Have,
    Hit,
    Ids,
    Log,
    LogEntry,
    LogResponse,
    Message,
    Objects,
    Offer,
    OplogAppend,
    Pack,
    Pull,
    Push,
    Query,
    QueryResponse,
    Refs,
    RefsResponse,
    Session,
    SessionResponse,
    Stream,
    StreamChunk,
    StreamEnd,
    UpdateRefs,
    Upload,
    UploadPack,
    WireAtom,
)

#: Most objects per OBJECTS frame.
OBJECTS_PER_FRAME = 256
#: Object bytes after which an OBJECTS frame is closed (a larger object goes alone).
OBJECT_BYTES_PER_FRAME = 512 * 1024
#: Most ids per IDS frame of an OFFER (about 33 KB).
IDS_PER_FRAME = 500
#: Largest FETCH request.
MAX_FETCH = 10_000
#: Room left in a frame for a PACK map around its bytes.
FRAME_HEADROOM = 1024
#: Bytes of an uploaded pack held in memory; more go to a temporary file.
PACK_IN_MEMORY = 8 * 1024 * 1024
#: Bytes of a held pack read back at a time.
PACK_PART = 256 * 1024


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
        request.revision,
        budget=request.budget,
        query=request.query,
        format=request.format,
        retrieval=request.retrieval,
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
        raise InvalidInputError(
            f"context is not a serialised CompressedContext: {shape_problem(exc)}"
        ) from None


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
        request.query,
        revision=request.revision,
        limit=request.limit,
        mode=request.mode,
        retrieval=request.retrieval,
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
    """SESSION: the session payload as a delta against the client's hashes, or a turn context."""
    if request.turn or request.previous is not None:
        turn = repo.turn_context(
            request.query,
            budget=request.budget,
            previous=request.previous,
            revision=request.revision,
            retrieval=request.retrieval,
        )
        return SessionResponse(
            delta={},
            hashes={},
            tokens={"prompt": turn.tokens},
            blocks=turn.blocks_json(),
            state=turn.state,
            rebuild=turn.rebuild,
            cost=turn.cost_json(),
        )
    payload = repo.session_payload(
        request.revision, budget=request.budget, query=request.query, retrieval=request.retrieval
    )
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

    The objects :func:`~contextfs.remote.objects.offer` lists for the want and
    haves, in frames; the last carries the head. Clients that can ask which
    objects they lack use OFFER and FETCH instead and receive only those.
    """
    head = repo.resolve(request.want)
    haves = [oid for h in request.have if (oid := _maybe_id(h)) is not None]
    ids = [oid for batch in offer_ids(repo.store, [from_hex(head)], haves) for oid in batch]
    rows = ((oid.hex(), kind, data) for oid, kind, data in stored_rows(repo.store, ids))
    previous: list[tuple[str, str, bytes]] = []
    for number, frame in enumerate(_object_frames(rows)):
        if number:
            yield Objects(objects=previous)
        previous = frame
    yield Objects(objects=previous, head=head)


def fetch(repo: Repository, request: Fetch) -> Iterator[Message]:
    """FETCH: objects by full id, in frames of at most :data:`OBJECTS_PER_FRAME`."""
    if len(request.ids) > MAX_FETCH:
        raise InvalidInputError(f"FETCH asks for more than {MAX_FETCH} objects")
    ids = [from_hex(i) for i in request.ids]
    found = repo.store.get_objects(ids)
    missing = [to_hex(oid) for oid in ids if oid not in found]
    if missing:
        raise UnknownRevisionError(f"no object {missing[0]}")
    rows = ((oid.hex(), *found[oid]) for oid in ids)
    sent = False
    for frame in _object_frames(rows):
        sent = True
        yield Objects(objects=frame)
    if not sent:
        yield Objects(objects=[])


def _object_frames(
    rows: Iterable[tuple[str, str, bytes]],
) -> Iterator[list[tuple[str, str, bytes]]]:
    """Group rows into OBJECTS payloads of about :data:`OBJECT_BYTES_PER_FRAME` at most.

    A larger object travels in a frame of its own, up to the default frame limit.

    Raises:
        InvalidInputError: one object alone is too large for a frame.
    """
    frame: list[tuple[str, str, bytes]] = []
    size = 0
    for row in rows:
        cost = len(row[2]) + 96  # the hex id, the kind and MessagePack framing
        if cost > DEFAULT_MAX_FRAME - 1024:  # alone in a frame, it must still fit
            raise InvalidInputError(
                f"{row[1]} {row[0][:16]} is {len(row[2])} bytes, too large for one frame"
            )
        if frame and (size + cost > OBJECT_BYTES_PER_FRAME or len(frame) >= OBJECTS_PER_FRAME):
            yield frame
            frame, size = [], 0
        frame.append(row)
        size += cost
    if frame:
        yield frame


def refs(repo: Repository, request: Refs) -> RefsResponse:
    """REFS: HEAD, branches and tags, as a remote shows them to fetch, pull and push."""
    return RefsResponse(refs=shared_refs(repo.store))


def offer(repo: Repository, request: Offer) -> Iterator[Message]:
    """OFFER: the ids a client holding ``haves`` may lack for ``wants``, in IDS batches."""
    wants, haves = _wants_and_haves(repo, request.wants, request.haves, "OFFER")
    sent = False
    for batch in offer_ids(repo.store, wants, haves):
        for start in range(0, len(batch), IDS_PER_FRAME):
            sent = True
            yield Ids(ids=[oid.hex() for oid in batch[start : start + IDS_PER_FRAME]])
    if not sent:
        yield Ids(ids=[])


def _wants_and_haves(
    repo: Repository, wants: list[str], haves: list[str], what: str
) -> tuple[list[bytes], list[bytes]]:
    """A request's wants (each a commit the server holds) and its well-formed haves.

    Raises:
        InvalidInputError: more than :data:`MAX_FETCH` of either, or a malformed want.
        UnknownRevisionError: a want the server does not hold as a commit.
    """
    if len(wants) > MAX_FETCH or len(haves) > MAX_FETCH:
        raise InvalidInputError(f"{what} lists more than {MAX_FETCH} commits")
    wanted = [_object_id(w) for w in wants]
    known = set(known_commits(repo.store, wanted))
    for want in wanted:
        if want not in known:
            raise UnknownRevisionError(f"no commit {want.hex()}")
    return wanted, [oid for h in haves if (oid := _maybe_id(h)) is not None]


def have(repo: Repository, request: Have) -> Ids:
    """HAVE: which of the ids the server holds."""
    if len(request.ids) > MAX_FETCH:
        raise InvalidInputError(f"HAVE asks about more than {MAX_FETCH} objects")
    asked = [_object_id(i) for i in request.ids]
    present = repo.store.has_objects(asked)
    return Ids(ids=[oid.hex() for oid in asked if oid in present])


class Uploads:
    """What a connection uploaded for its next UPDATE_REFS: held, never stored alone.

    Objects (UPLOAD) are held in memory; a pack (UPLOAD_PACK) in memory until
    it passes :data:`PACK_IN_MEMORY` bytes, then in a temporary file. They
    reach the store only inside UPDATE_REFS's transaction, so a client that
    disconnects, or whose update is refused, leaves the store as it was.
    ``frame`` is the connection's frame limit, which answers must fit.
    """

    def __init__(self, limit: int, frame: int = DEFAULT_MAX_FRAME) -> None:
        self.limit = limit
        self.frame = frame
        #: Whether the connection's token may push purge records (admin only).
        self.purges = True
        self.rows: list[tuple[bytes, str, bytes]] = []
        self.size = 0
        self.pack: tempfile.SpooledTemporaryFile[bytes] | None = None
        self.closed = False
        self._lock = threading.Lock()

    def add(self, rows: list[tuple[str, str, bytes]]) -> int:
        """Hold ``rows``; return how many objects are held now.

        Only the ids are parsed here: UPDATE_REFS re-hashes every object once,
        in :func:`~contextfs.remote.objects.receive`, before anything is stored.

        Raises:
            InvalidInputError: an id is malformed, or the uploads would pass the
                connection's limit.
        """
        checked = [(_object_id(oid), kind, data) for oid, kind, data in rows]
        size = sum(len(data) for _, _, data in checked)
        with self._lock:
            self._make_room(size)
            self.rows.extend(checked)
            self.size += size
            return len(self.rows)

    def add_pack(self, data: bytes) -> int:
        """Append ``data`` to the held pack; return the pack bytes held now.

        Raises:
            InvalidInputError: the uploads would pass the connection's limit.
        """
        with self._lock:
            self._make_room(len(data))
            if self.pack is None:
                # Closed by take()'s caller or by clear(), when the connection ends.
                self.pack = tempfile.SpooledTemporaryFile(max_size=PACK_IN_MEMORY)  # noqa: SIM115
            self.pack.write(data)
            self.size += len(data)
            return self.pack.tell()

    def _make_room(self, size: int) -> None:
        if self.closed:
            raise InvalidInputError("the connection has ended")
        if self.size + size > self.limit:
            self._drop()
            raise InvalidInputError(
                f"uploads pass the server's limit of {self.limit} bytes per push; they were dropped"
            )

    def take(self) -> tuple[list[tuple[bytes, str, bytes]], IO[bytes] | None]:
        """Hand over every held object and the held pack (rewound), emptying the area."""
        with self._lock:
            rows, pack = self.rows, self.pack
            self.rows, self.pack, self.size = [], None, 0
        if pack is not None:
            pack.seek(0)
        return rows, pack

    def clear(self) -> None:
        """Drop everything held."""
        with self._lock:
            self._drop()

    def close(self) -> None:
        """Drop everything held and refuse more: the connection has ended."""
        with self._lock:
            self._drop()
            self.closed = True

    def _drop(self) -> None:
        if self.pack is not None:
            self.pack.close()
        self.rows, self.pack, self.size = [], None, 0


def upload(repo: Repository, uploads: Uploads, request: Upload) -> Ack:
    """UPLOAD: hold objects for the connection's next UPDATE_REFS."""
    del repo  # nothing is stored before UPDATE_REFS
    return Ack(result={"held": uploads.add(request.objects)})


def upload_pack(repo: Repository, uploads: Uploads, request: UploadPack) -> Ack:
    """UPLOAD_PACK: hold the next bytes of a pack for the connection's next UPDATE_REFS."""
    del repo  # nothing is read before UPDATE_REFS
    return Ack(result={"held": uploads.add_pack(request.data)})


def fetch_pack(repo: Repository, uploads: Uploads, request: FetchPack) -> Iterator[Message]:
    """FETCH_PACK: the pack of what a client holding ``haves`` may lack, in PACK frames."""
    wants, haves = _wants_and_haves(repo, request.wants, request.haves, "FETCH_PACK")
    if len(request.purges) > MAX_FETCH:
        raise InvalidInputError(f"FETCH_PACK lists more than {MAX_FETCH} purge records")
    purges = [_object_id(p) for p in request.purges]
    budget = max(1, uploads.frame - FRAME_HEADROOM)
    for chunk in pack_history(repo.store, wants, haves, purges):
        for start in range(0, len(chunk), budget):
            yield Pack(data=chunk[start : start + budget])


def update_refs(repo: Repository, uploads: Uploads, request: UpdateRefs) -> Ack:
    """UPDATE_REFS: store the uploads and move branches and tags, all or nothing."""
    updates = [RefUpdate(_pushable(u.name), u.old, u.new) for u in request.updates]
    rows, pack = uploads.take()
    try:
        with reflog_reason("push"):
            if pack is None:
                received = receive(
                    repo.store, rows, updates, force=request.force, purges=uploads.purges
                )
            else:
                with pack:
                    unpacked = read_pack(_parts(pack), store_bases(repo.store))
                    objects = itertools.chain(rows, _within(unpacked, uploads.limit))
                    received = receive(
                        repo.store, objects, updates, force=request.force, purges=uploads.purges
                    )
    except CorruptObjectError as exc:  # the client's uploads are at fault, not the store
        raise InvalidInputError(str(exc)) from None
    repo.integrity.erase_copies(received.purged.values())  # op logs and files, beyond tables
    return Ack(
        result={
            "objects": received.objects,
            "bytes": received.bytes,
            "updated": [u.name for u in received.updated],
            "purged": sorted(oid.hex() for oid in received.purged),
            "ignored_purges": received.ignored_purges,
        }
    )


def _within(rows: Iterable[PackRow], limit: int) -> Iterator[PackRow]:
    """The rows of an uploaded pack, refused once they decode to more than ``limit`` bytes.

    A pack compresses well, so its size on the wire says little about what it
    makes: the upload limit holds for what it unpacks to as well.

    Raises:
        InvalidInputError: the pack unpacks to more than ``limit`` bytes.
    """
    total = 0
    for row in rows:
        total += len(row[2])
        if total > limit:
            raise InvalidInputError(
                f"the pack unpacks to more than the server's limit of {limit} bytes per push;"
                " nothing was stored"
            )
        yield row


def _parts(pack: IO[bytes]) -> Iterator[bytes]:
    """A held pack, read back a part at a time."""
    while part := pack.read(PACK_PART):
        yield part


def _pushable(name: str) -> str:
    """Only branches and tags move from outside; HEAD, the stage and records never do."""
    for prefix, what in ((refnames.HEADS, "branch"), (refnames.TAGS, "tag")):
        if name.startswith(prefix):
            refnames.check_short_name(name[len(prefix) :], what)
            return name
    raise InvalidInputError(f"only branches and tags can be pushed, not {name[:80]!r}")


def _object_id(text: str) -> bytes:
    try:
        return from_hex(text)
    except InvalidInputError:
        raise InvalidInputError(f"not an object id: {text[:80]!r}") from None


def _maybe_id(text: str) -> bytes | None:
    try:
        return from_hex(text)
    except InvalidInputError:
        return None


__all__ = [
    "expand",
    "fetch",
    "fetch_pack",
    "have",
    "log",
    "offer",
    "oplog_append",
    "pull",
    "push",
    "query",
    "refs",
    "session",
    "stream",
    "update_refs",
    "upload",
    "upload_pack",
]
