"""Every message of protocol v1: its type code and its payload schema.

A payload is one MessagePack map, decoded straight into the message's
``msgspec.Struct`` so a payload that does not match its schema is refused
where it enters (``docs/PROTOCOL.md`` section 4). Fields a peer does not know
are ignored (later versions may add some); missing required fields and wrong
types are errors here, values out of range in the handler that uses them.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, ClassVar, Literal

import msgspec

from .errors import ErrorCode, ProtocolError


class MessageType(IntEnum):
    """The ``type`` byte of a frame."""

    EXPAND = 0x01
    STREAM = 0x02
    QUERY = 0x03
    PUSH = 0x04
    PULL = 0x05
    FETCH = 0x06
    SESSION = 0x07
    OPLOG_APPEND = 0x08
    OPLOG_SUBSCRIBE = 0x09
    CANCEL = 0x0A
    PING = 0x0B
    WINDOW = 0x0C
    LOG = 0x0D
    REFS = 0x0E
    OFFER = 0x0F
    HELLO = 0x10
    HAVE = 0x11
    UPLOAD = 0x12
    UPDATE_REFS = 0x13
    FETCH_PACK = 0x14
    UPLOAD_PACK = 0x15
    EXPAND_RESPONSE = 0x81
    STREAM_CHUNK = 0x82
    STREAM_END = 0x83
    QUERY_RESPONSE = 0x84
    ACK = 0x85
    OBJECTS = 0x86
    SESSION_RESPONSE = 0x87
    OPLOG_EVENT = 0x88
    PONG = 0x8B
    LOG_RESPONSE = 0x8D
    REFS_RESPONSE = 0x8E
    IDS = 0x8F
    WELCOME = 0x90
    PACK = 0x91
    ERROR = 0xFF


class Message(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Base of every payload; ``TYPE`` is its frame type."""

    TYPE: ClassVar[MessageType]


# -- shared shapes --------------------------------------------------------------------


class WireAtom(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A memory on the wire: content, type (printed and lossless) and entry fields."""

    content: str
    type: str
    type_sig: list[Any] | None = None
    relevance: float = 1.0
    timestamp: int = 0
    source: str = ""
    tags: list[str] = msgspec.field(default_factory=list)
    abstract: str | None = None
    overview: str | None = None
    id: str | None = None


class Hit(msgspec.Struct, kw_only=True):
    """One QUERY result."""

    atom: WireAtom
    score: float
    match: float


# -- connection ---------------------------------------------------------------------


class Hello(Message, kw_only=True, omit_defaults=True):
    """Client -> server, first frame, stream 0: versions spoken, token, wishes."""

    TYPE = MessageType.HELLO
    versions: list[int]
    token: str | None = None
    client: str = ""
    max_frame: int | None = None
    window: int | None = None


class Welcome(Message, kw_only=True, omit_defaults=True):
    """Server -> client, stream 0: the version chosen and the limits that hold."""

    TYPE = MessageType.WELCOME
    version: int
    server: str
    max_frame: int
    window: int
    max_streams: int
    #: What this server does beyond version 1's first requests ("pack": FETCH_PACK, UPLOAD_PACK).
    features: list[str] = msgspec.field(default_factory=list)


class Ping(Message, kw_only=True, omit_defaults=True):
    """Client -> server, stream 0: answered by PONG with the same nonce."""

    TYPE = MessageType.PING
    nonce: int = 0


class Pong(Message, kw_only=True, omit_defaults=True):
    """The answer to PING."""

    TYPE = MessageType.PONG
    nonce: int = 0


class Window(Message, kw_only=True, omit_defaults=True):
    """Client -> server on a stream: may send ``credit`` more payload bytes of data."""

    TYPE = MessageType.WINDOW
    credit: int


class Cancel(Message, kw_only=True, omit_defaults=True):
    """Client -> server on a stream: stop; the server ends it with ERROR CANCELLED."""

    TYPE = MessageType.CANCEL


class Error(Message, kw_only=True, omit_defaults=True):
    """Either way: what failed. On stream 0 the connection closes after it."""

    TYPE = MessageType.ERROR
    code: int
    message: str
    #: The library error's class name (contextfs.wire.errors.LIBRARY_ERRORS), when
    #: it is one; optional, so peers that predate it send and ignore it unharmed.
    error: str | None = None


# -- requests and their answers --------------------------------------------------------

Format = Literal["lines", "markdown", "json", "xml"]
#: How a query finds memories (Repository.search's ``retrieval``); absent: the server's default.
Retrieval = Literal["lexical", "semantic", "hybrid"]


class Expand(Message, kw_only=True, omit_defaults=True):
    """Expand a revision for a budget, or (as the seed) a serialised CompressedContext."""

    TYPE = MessageType.EXPAND
    revision: str = "HEAD"
    budget: int | None = None
    query: str | None = None
    format: Format = "lines"
    context: dict[str, Any] | None = None
    retrieval: Retrieval | None = None


class ExpandResponse(Message, kw_only=True, omit_defaults=True):
    """The prompt and its atoms (the seed's fields, plus the text and commit)."""

    TYPE = MessageType.EXPAND_RESPONSE
    atoms: list[WireAtom]
    total_tokens: int
    text: str = ""
    commit: str | None = None
    expansion_path: list[str] = msgspec.field(default_factory=list)
    type_summary: dict[str, int] = msgspec.field(default_factory=dict)


class Stream(Message, kw_only=True, omit_defaults=True):
    """Stream a revision's atoms best first, in chunks, within flow-control credit."""

    TYPE = MessageType.STREAM
    revision: str = "HEAD"
    chunk_size: int = 10
    max_tokens_per_chunk: int = 500
    relevance_threshold: float = 0.0


class StreamChunk(Message, kw_only=True, omit_defaults=True):
    """One chunk (the seed's ExpansionChunk.to_dict fields)."""

    TYPE = MessageType.STREAM_CHUNK
    chunk_id: int
    atoms: list[WireAtom]
    is_final: bool
    cumulative_tokens: int
    progress: float
    skipped: list[str] = msgspec.field(default_factory=list)


class StreamEnd(Message, kw_only=True, omit_defaults=True):
    """The end of a stream."""

    TYPE = MessageType.STREAM_END
    status: str = "complete"
    chunks: int = 0


class Query(Message, kw_only=True, omit_defaults=True):
    """Full-text search of a revision (the seed's QUERY, implemented)."""

    TYPE = MessageType.QUERY
    query: str
    revision: str = "HEAD"
    limit: int = 10
    mode: Literal["any", "all"] = "any"
    retrieval: Retrieval | None = None


class QueryResponse(Message, kw_only=True, omit_defaults=True):
    """Hits, best first."""

    TYPE = MessageType.QUERY_RESPONSE
    hits: list[Hit]


class Push(Message, kw_only=True, omit_defaults=True):
    """Commit memories: atoms to add and ids to remove, on a branch, as one commit."""

    TYPE = MessageType.PUSH
    atoms: list[WireAtom] = msgspec.field(default_factory=list)
    remove: list[str] = msgspec.field(default_factory=list)
    message: str = "Pushed over the wire"
    author: str = "remote"
    expect_head: str | None = None


class Ack(Message, kw_only=True, omit_defaults=True):
    """A write was done: what it made (a commit id, stored ops...)."""

    TYPE = MessageType.ACK
    hash: str | None = None
    result: dict[str, Any] = msgspec.field(default_factory=dict)


class Pull(Message, kw_only=True, omit_defaults=True):
    """Ask for a revision's history minus what the client has (``have`` commit ids)."""

    TYPE = MessageType.PULL
    want: str = "HEAD"
    have: list[str] = msgspec.field(default_factory=list)


class Fetch(Message, kw_only=True, omit_defaults=True):
    """Ask for objects by id."""

    TYPE = MessageType.FETCH
    ids: list[str]


class Objects(Message, kw_only=True, omit_defaults=True):
    """Stored objects ``[id, kind, bytes]``; a PULL's last OBJECTS has END and ``head``."""

    TYPE = MessageType.OBJECTS
    objects: list[tuple[str, str, bytes]]
    head: str | None = None


class Session(Message, kw_only=True, omit_defaults=True):
    """A session payload delta against the client's hash bundle."""

    TYPE = MessageType.SESSION
    revision: str = "HEAD"
    budget: int = 2000
    query: str | None = None
    hashes: dict[str, str] = msgspec.field(default_factory=dict)
    granularity: Literal["item", "component"] = "item"
    retrieval: Retrieval | None = None
    #: Ask for a turn context (stable and volatile blocks) instead of the tiered payload.
    turn: bool = False
    #: The ``state`` of the previous turn's answer (turn contexts only).
    previous: dict[str, Any] | None = None


class SessionResponse(Message, kw_only=True, omit_defaults=True):
    """The delta, the new hash bundle and token counts; or a turn context's blocks."""

    TYPE = MessageType.SESSION_RESPONSE
    delta: dict[str, Any]
    hashes: dict[str, str]
    tokens: dict[str, int] = msgspec.field(default_factory=dict)
    blocks: list[dict[str, Any]] = msgspec.field(default_factory=list)
    state: dict[str, Any] | None = None
    rebuild: str | None = None
    cost: dict[str, float] = msgspec.field(default_factory=dict)


class OplogAppend(Message, kw_only=True, omit_defaults=True):
    """Append ops (op-log entries) to a session, durably."""

    TYPE = MessageType.OPLOG_APPEND
    session: str
    ops: list[dict[str, Any]]


class OplogSubscribe(Message, kw_only=True, omit_defaults=True):
    """Follow a session's ops live, from op number ``since`` (0: from the start)."""

    TYPE = MessageType.OPLOG_SUBSCRIBE
    session: str
    since: int = 0


class OplogEvent(Message, kw_only=True, omit_defaults=True):
    """Ops appended to a followed session; ``op_count`` is the log's size after them."""

    TYPE = MessageType.OPLOG_EVENT
    ops: list[dict[str, Any]]
    op_count: int


class Log(Message, kw_only=True, omit_defaults=True):
    """The history of a revision, newest first."""

    TYPE = MessageType.LOG
    revision: str = "HEAD"
    limit: int = 20


class LogEntry(msgspec.Struct, kw_only=True):
    """One commit of a LOG_RESPONSE (timestamp in microseconds, UTC)."""

    id: str
    parents: list[str]
    author: str
    message: str
    timestamp: int


class LogResponse(Message, kw_only=True, omit_defaults=True):
    """Commits, newest first."""

    TYPE = MessageType.LOG_RESPONSE
    commits: list[LogEntry]


# -- remotes: copying history between stores -----------------------------------------


class Refs(Message, kw_only=True, omit_defaults=True):
    """Ask for the server's HEAD, branches and tags (what fetch, pull and push compare)."""

    TYPE = MessageType.REFS


class RefsResponse(Message, kw_only=True, omit_defaults=True):
    """``HEAD`` as stored (``ref: refs/heads/<b>`` or an id), and every branch and tag."""

    TYPE = MessageType.REFS_RESPONSE
    refs: dict[str, str]


class Offer(Message, kw_only=True, omit_defaults=True):
    """Ask which objects a client holding ``haves`` may lack for ``wants`` (commit ids)."""

    TYPE = MessageType.OFFER
    wants: list[str]
    haves: list[str] = msgspec.field(default_factory=list)


class Ids(Message, kw_only=True, omit_defaults=True):
    """Object ids: an OFFER's batches (data), or the answer to HAVE."""

    TYPE = MessageType.IDS
    ids: list[str]


class Have(Message, kw_only=True, omit_defaults=True):
    """Ask which of ``ids`` the server holds; answered by IDS."""

    TYPE = MessageType.HAVE
    ids: list[str]


class Upload(Message, kw_only=True, omit_defaults=True):
    """Objects ``[id, kind, bytes]`` for a coming UPDATE_REFS, held by the connection."""

    TYPE = MessageType.UPLOAD
    objects: list[tuple[str, str, bytes]]


class FetchPack(Message, kw_only=True, omit_defaults=True):
    """Ask for the pack of everything a client holding ``haves`` may lack for ``wants``."""

    TYPE = MessageType.FETCH_PACK
    wants: list[str]
    haves: list[str] = msgspec.field(default_factory=list)
    #: Purge records (ids) to send besides: purges made on the server that the
    #: client's copy lacks (an older server ignores this field).
    purges: list[str] = msgspec.field(default_factory=list)


class Pack(Message, kw_only=True, omit_defaults=True):
    """The next bytes of a pack (``docs/FORMAT.md``, "Packs"): FETCH_PACK's answer."""

    TYPE = MessageType.PACK
    data: bytes


class UploadPack(Message, kw_only=True, omit_defaults=True):
    """The next bytes of a pack for the coming UPDATE_REFS, held by the connection."""

    TYPE = MessageType.UPLOAD_PACK
    data: bytes


class RefUpdateSpec(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Move branch or tag ``name`` from ``old`` (nil: absent) to ``new`` (nil: delete)."""

    name: str
    old: str | None = None
    new: str | None = None


class UpdateRefs(Message, kw_only=True, omit_defaults=True):
    """Store the connection's uploaded objects and move refs, all or nothing."""

    TYPE = MessageType.UPDATE_REFS
    updates: list[RefUpdateSpec]
    force: bool = False


MESSAGES: dict[MessageType, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        Hello,
        Welcome,
        Ping,
        Pong,
        Window,
        Cancel,
        Error,
        Expand,
        ExpandResponse,
        Stream,
        StreamChunk,
        StreamEnd,
        Query,
        QueryResponse,
        Push,
        Ack,
        Pull,
        Fetch,
        Objects,
        Session,
        SessionResponse,
        OplogAppend,
        OplogSubscribe,
        OplogEvent,
        Log,
        LogResponse,
        Refs,
        RefsResponse,
        Offer,
        Ids,
        Have,
        Upload,
        UpdateRefs,
        FetchPack,
        Pack,
        UploadPack,
    )
}
#: What a client may open a stream with.
REQUESTS = frozenset(
    {
        MessageType.EXPAND,
        MessageType.STREAM,
        MessageType.QUERY,
        MessageType.PUSH,
        MessageType.PULL,
        MessageType.FETCH,
        MessageType.SESSION,
        MessageType.OPLOG_APPEND,
        MessageType.OPLOG_SUBSCRIBE,
        MessageType.LOG,
        MessageType.REFS,
        MessageType.OFFER,
        MessageType.HAVE,
        MessageType.UPLOAD,
        MessageType.UPDATE_REFS,
        MessageType.FETCH_PACK,
        MessageType.UPLOAD_PACK,
    }
)
#: Server messages that spend the stream's credit (they can be many, or large).
DATA = frozenset(
    {
        MessageType.STREAM_CHUNK,
        MessageType.OBJECTS,
        MessageType.OPLOG_EVENT,
        MessageType.IDS,
        MessageType.PACK,
    }
)
#: Server messages that answer on a stream.
ANSWERS = frozenset(
    {
        MessageType.EXPAND_RESPONSE,
        MessageType.STREAM_CHUNK,
        MessageType.STREAM_END,
        MessageType.QUERY_RESPONSE,
        MessageType.ACK,
        MessageType.OBJECTS,
        MessageType.SESSION_RESPONSE,
        MessageType.OPLOG_EVENT,
        MessageType.LOG_RESPONSE,
        MessageType.REFS_RESPONSE,
        MessageType.IDS,
        MessageType.PACK,
        MessageType.ERROR,
    }
)

_encoder = msgspec.msgpack.Encoder()
_decoders = {code: msgspec.msgpack.Decoder(cls) for code, cls in MESSAGES.items()}


def encode_payload(message: Message) -> bytes:
    """The message's MessagePack payload."""
    return _encoder.encode(message)


def decode_payload(type_code: int, payload: bytes) -> Message:
    """Decode and check a payload against its type's schema.

    Raises:
        ProtocolError: UNKNOWN_TYPE for a type this version lacks, INVALID
            for a payload that does not match its schema.
    """
    try:
        decoder = _decoders[MessageType(type_code)]
    except (ValueError, KeyError):
        raise ProtocolError(
            ErrorCode.UNKNOWN_TYPE, f"unknown message type 0x{type_code:02x}"
        ) from None
    try:
        message: Message = decoder.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        name = MessageType(type_code).name
        raise ProtocolError(ErrorCode.INVALID, f"{name} payload is invalid: {exc}") from None
    return message


__all__ = [
    "ANSWERS",
    "DATA",
    "MESSAGES",
    "REQUESTS",
    "Message",
    "MessageType",
    "decode_payload",
    "encode_payload",
]
