"""Op-log records: the seed's ``OpEntry`` and ``OpLogCheckpoint``, encoded and checked.

One op is one line of ``ops.jsonl``: a JSON object with its keys sorted, no
whitespace, UTF-8, newlines inside strings escaped (so no text can fake a line
boundary). Its ``op_id`` is the SHA-256 of the canonical JSON of the fields
that say what the op *is* (``created_at`` is informational and left out, as in
the seed), so the same op has the same id on every replica and merges dedupe
by id. ``docs/FORMAT.md`` has a test vector.

Everything read from a file or another replica passes :func:`check_entry`:
a bad line is an error that names it, never an op silently skipped.

Redaction (what a purge does to ops that hold the purged text): a line is
replaced, at the same length, by its redacted form, whose ``domain_op`` is
empty, whose ``created_at`` and ``payload_salt`` are gone and whose
``redacted`` field records the RFC 6962 leaf hash of the line it replaced
(base64url, padded with spaces to the old length). The log's leaves are
:func:`op_leaf`: the hash of an ordinary line, the recorded hash of a
redacted one, so every root, checkpoint and proof stays valid and no byte
offset moves. Ops made here carry a random ``payload_salt`` inside their id,
so once it is erased neither the id nor the leaf of a redacted op can
confirm a guess of its text; ops written before salts existed keep ids
derived from their text alone.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict

import msgspec

from ..errors import InvalidInputError
from ..model.merkle import leaf_hash

#: Longest actor id, intent id or reservation id accepted.
MAX_NAME_LENGTH = 256
#: Largest encoded ``domain_op`` accepted (one op is one line; keep lines sane).
MAX_OP_BYTES = 1 << 20
#: Most causal parents one op may name.
MAX_PARENTS = 1024
#: Largest Lamport stamp (a signed 64-bit integer, as every store can hold).
MAX_LAMPORT = 2**63 - 1
MAX_SESSION_LENGTH = 128

_SESSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_DOMAIN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_OP_ID = re.compile(r"[0-9a-f]{64}")
_FIELDS = frozenset(
    {
        "op_id",
        "actor_id",
        "lamport_ts",
        "parent_op_ids",
        "domain",
        "domain_op",
        "created_at",
        "intent_id",
        "reservation_id",
    }
)
#: Fields an op may have besides those: its salt, or (once redacted) the leaf it had.
_OPTIONAL = frozenset({"payload_salt", "redacted"})
_SALT = re.compile(r"[0-9a-f]{32}")
_REDACTED = re.compile(r"[A-Za-z0-9_-]{43} *")

_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder()


class OpEntry(TypedDict):
    """One operation in a session's log (the seed's fields, unchanged).

    ``op_id`` is content-addressed; ``lamport_ts`` orders ops across actors;
    ``parent_op_ids`` are causal dependencies; ``domain_op`` is the operation
    itself, a JSON object whose meaning belongs to ``domain``; ``created_at``
    is an ISO 8601 UTC wall-clock time, informational only.
    """

    op_id: str
    actor_id: str
    lamport_ts: int
    parent_op_ids: list[str]
    domain: str
    domain_op: dict[str, Any]
    created_at: str
    intent_id: str
    reservation_id: str
    payload_salt: NotRequired[str]
    redacted: NotRequired[str]


class OpLogCheckpoint(TypedDict, total=False):
    """What a session's log looked like when it crystallised into a commit.

    The seed's fields (``session_id``, ``snapshot_id``, ``lamport_ts``,
    ``op_count``, ``created_at``) plus what makes the cut exact and checkable:
    the ops in it are exactly the first ``op_count`` lines (``log_bytes``
    bytes) of ``ops.jsonl``, whose RFC 6962 root is ``log_root``; ``frontier``
    lets the next checkpoint extend the root without rereading the log;
    ``commit`` is the commit written from them, if any.
    """

    session_id: str
    snapshot_id: str
    lamport_ts: int
    op_count: int
    created_at: str
    log_bytes: int
    log_root: str
    frontier: list[str]
    commit: str | None


def check_session_id(session_id: object) -> str:
    """Return ``session_id`` if it is safe as a folder and ref name, else raise.

    Allowed: 1-128 characters from ``A-Z a-z 0-9 . _ -``, starting with a
    letter or digit, without ``..`` and not ending in ``.lock`` -- so it can
    never climb out of the op-log folder or fake a ref.
    """
    if not isinstance(session_id, str) or not session_id:
        raise InvalidInputError("session id must be non-empty text")
    if len(session_id) > MAX_SESSION_LENGTH:
        raise InvalidInputError(f"session id is longer than {MAX_SESSION_LENGTH} characters")
    if not _SESSION.fullmatch(session_id) or ".." in session_id or session_id.endswith(".lock"):
        raise InvalidInputError(
            f"invalid session id {session_id!r}: use letters, digits and . _ - "
            "(starting with a letter or digit, no '..')"
        )
    return session_id


def now_iso() -> str:
    """Return the current UTC time as ISO 8601 with microseconds and ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_to_micros(text: str) -> int:
    """Return an ISO 8601 time as microseconds since the epoch (naive means UTC)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"created_at is not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds


def compute_op_id(
    actor_id: str,
    domain: str,
    domain_op: Mapping[str, Any],
    lamport_ts: int,
    parent_op_ids: Iterable[str],
    intent_id: str,
    reservation_id: str,
    payload_salt: str | None = None,
) -> str:
    """Return the content address of an op: SHA-256 of its canonical JSON identity.

    The salt, when the op has one, is part of the identity (ops written before
    salts existed have none, and keep their ids).
    """
    identity = {
        "actor_id": actor_id,
        "domain": domain,
        "domain_op": domain_op,
        "intent_id": intent_id,
        "lamport_ts": lamport_ts,
        "parent_op_ids": sorted(parent_op_ids),
        "reservation_id": reservation_id,
    }
    if payload_salt is not None:
        identity["payload_salt"] = payload_salt
    return hashlib.sha256(_encoder.encode(identity)).hexdigest()


def make_op_entry(
    actor_id: str,
    domain: str,
    domain_op: Mapping[str, Any],
    lamport_ts: int,
    *,
    parent_op_ids: Iterable[str] | None = None,
    intent_id: str = "",
    reservation_id: str = "",
    payload_salt: str | None = None,
) -> OpEntry:
    """Build a checked :class:`OpEntry` with its content-addressed ``op_id``.

    ``payload_salt`` defaults to 16 fresh random bytes (hex): the same op made
    twice gets two ids, and once redacted, neither reveals its text.

    Raises:
        InvalidInputError: any field is malformed (see :func:`check_entry`).
    """
    parents = list(parent_op_ids or [])
    operation: Any = dict(domain_op) if isinstance(domain_op, Mapping) else domain_op
    fields: dict[str, Any] = {
        "actor_id": actor_id,
        "lamport_ts": lamport_ts,
        "parent_op_ids": parents,
        "domain": domain,
        "domain_op": operation,
        "created_at": now_iso(),
        "intent_id": intent_id,
        "reservation_id": reservation_id,
        "payload_salt": payload_salt if payload_salt is not None else secrets.token_hex(16),
    }
    _check_fields(fields)
    if not _SALT.fullmatch(fields["payload_salt"]):
        raise InvalidInputError("payload_salt must be 32 lowercase hex digits")
    fields["op_id"] = compute_op_id(
        actor_id,
        domain,
        operation,
        lamport_ts,
        parents,
        intent_id,
        reservation_id,
        fields["payload_salt"],
    )
    return fields  # type: ignore[return-value]


def restamp(entry: OpEntry, lamport_ts: int, parent_op_ids: list[str] | None = None) -> OpEntry:
    """Return ``entry`` moved to another stamp (and parents), with its new ``op_id``."""
    moved = entry.copy()
    moved["lamport_ts"] = lamport_ts
    if parent_op_ids is not None:
        moved["parent_op_ids"] = parent_op_ids
    moved["op_id"] = compute_op_id(
        entry["actor_id"],
        entry["domain"],
        entry["domain_op"],
        lamport_ts,
        moved["parent_op_ids"],
        entry["intent_id"],
        entry["reservation_id"],
        entry.get("payload_salt"),
    )
    return moved


def reattribute(entries: Iterable[object], actor: str) -> list[OpEntry]:
    """Return ``entries`` as written by ``actor``, each with its new ``op_id``.

    A server that knows who is writing (a named token) records that name,
    whatever the ops claimed. An op naming an earlier op of the same batch as
    its parent is rewritten to name that op's new id.

    Raises:
        InvalidInputError: an op is malformed, or ``actor`` cannot be one.
    """
    _check_name(actor, "actor_id", allow_empty=False)
    renamed: dict[str, str] = {}
    done: list[OpEntry] = []
    for value in entries:
        entry = check_entry(value)
        if "redacted" in entry:
            raise InvalidInputError(f"op {entry['op_id'][:16]} is redacted: it cannot be written")
        moved = entry.copy()
        moved["actor_id"] = actor
        moved["parent_op_ids"] = [renamed.get(p, p) for p in entry["parent_op_ids"]]
        moved["op_id"] = compute_op_id(
            actor,
            entry["domain"],
            entry["domain_op"],
            entry["lamport_ts"],
            moved["parent_op_ids"],
            entry["intent_id"],
            entry["reservation_id"],
            entry.get("payload_salt"),
        )
        renamed[entry["op_id"]] = moved["op_id"]
        done.append(moved)
    return done


def check_entry(value: object, *, verify_id: bool = True) -> OpEntry:
    """Return ``value`` as an :class:`OpEntry` if every field is well formed.

    With ``verify_id``, the ``op_id`` must be the content address of the
    other fields (an op from another replica that was altered is refused).

    Raises:
        InvalidInputError: naming the first field that is wrong.
    """
    if not isinstance(value, dict):
        raise InvalidInputError(f"an op must be a JSON object, got {type(value).__name__}")
    missing = _FIELDS - value.keys()
    if missing:
        raise InvalidInputError(f"op lacks field(s): {', '.join(sorted(missing))}")
    extra = value.keys() - _FIELDS - _OPTIONAL
    if extra:
        raise InvalidInputError(f"op has unknown field(s): {', '.join(sorted(extra))}")
    redacted = "redacted" in value
    if redacted:
        _check_redacted(value)
    _check_fields(value, redacted=redacted)
    op_id = value["op_id"]
    if not isinstance(op_id, str) or not _OP_ID.fullmatch(op_id):
        raise InvalidInputError(f"op_id must be 64 lowercase hex digits, got {op_id!r}")
    salt = value.get("payload_salt")
    if salt is not None and (not isinstance(salt, str) or not _SALT.fullmatch(salt)):
        raise InvalidInputError(f"payload_salt must be 32 lowercase hex digits, got {salt!r}")
    if verify_id and not redacted:  # a redacted op's id is vouched for by its leaf
        expected = compute_op_id(
            value["actor_id"],
            value["domain"],
            value["domain_op"],
            value["lamport_ts"],
            value["parent_op_ids"],
            value["intent_id"],
            value["reservation_id"],
            salt,
        )
        if expected != op_id:
            raise InvalidInputError(
                f"op {op_id[:16]} does not match its content (expected id {expected[:16]})"
            )
    return value  # type: ignore[return-value]


def _check_redacted(value: Mapping[str, Any]) -> None:
    """A redacted op: its recorded leaf, an empty payload, no salt and no time."""
    mark = value["redacted"]
    if not isinstance(mark, str) or not _REDACTED.fullmatch(mark):
        raise InvalidInputError("redacted must be a leaf hash in base64url (43 characters)")
    if value["domain_op"] != {} or "payload_salt" in value or value["created_at"] != "":
        raise InvalidInputError("a redacted op keeps no payload, salt or time")


def _check_fields(value: Mapping[str, Any], *, redacted: bool = False) -> None:
    _check_name(value["actor_id"], "actor_id", allow_empty=False)
    _check_name(value["intent_id"], "intent_id", allow_empty=True)
    _check_name(value["reservation_id"], "reservation_id", allow_empty=True)
    domain = value["domain"]
    if not isinstance(domain, str) or not _DOMAIN.fullmatch(domain):
        raise InvalidInputError(
            f"domain must be 1-64 characters of a-z 0-9 . _ - (starting a-z0-9), got {domain!r}"
        )
    stamp = value["lamport_ts"]
    if not isinstance(stamp, int) or isinstance(stamp, bool) or not 1 <= stamp <= MAX_LAMPORT:
        raise InvalidInputError(f"lamport_ts must be an integer from 1 to 2^63-1, got {stamp!r}")
    parents = value["parent_op_ids"]
    if not isinstance(parents, list) or len(parents) > MAX_PARENTS:
        raise InvalidInputError(f"parent_op_ids must be a list of at most {MAX_PARENTS} op ids")
    for parent in parents:
        if not isinstance(parent, str) or not _OP_ID.fullmatch(parent):
            raise InvalidInputError(f"parent op id must be 64 lowercase hex digits: {parent!r}")
    if len(set(parents)) != len(parents):
        raise InvalidInputError("parent_op_ids names the same op twice")
    created = value["created_at"]
    if not isinstance(created, str) or len(created) > 64:
        raise InvalidInputError(f"created_at must be an ISO 8601 time, got {created!r}")
    if not redacted:
        iso_to_micros(created)
    op = value["domain_op"]
    if not isinstance(op, dict):
        raise InvalidInputError(f"domain_op must be a JSON object, got {type(op).__name__}")
    _check_json(op, 0)
    if len(_encoder.encode(op)) > MAX_OP_BYTES:
        raise InvalidInputError(f"domain_op is larger than {MAX_OP_BYTES} bytes")


def _check_name(value: object, what: str, *, allow_empty: bool) -> None:
    if not isinstance(value, str) or (not value and not allow_empty):
        raise InvalidInputError(f"{what} must be {'' if allow_empty else 'non-empty '}text")
    if len(value) > MAX_NAME_LENGTH or any(ch in value for ch in "\n\r\x00"):
        raise InvalidInputError(
            f"{what} must be one line of at most {MAX_NAME_LENGTH} characters, got {value[:40]!r}"
        )
    _check_unicode(value, what)


def _check_unicode(value: str, what: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError(f"{what} is not valid Unicode text") from None


def _check_json(value: object, depth: int) -> None:
    """Refuse what JSON cannot carry exactly: NaN, infinities, non-text keys, lone surrogates."""
    if depth > 32:
        raise InvalidInputError("domain_op is nested deeper than 32 levels")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInputError(f"domain_op keys must be text, got {key!r}")
            _check_unicode(key, "domain_op key")
            _check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)
    elif isinstance(value, str):
        _check_unicode(value, "domain_op text")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"domain_op holds a non-finite number: {value!r}")
    elif isinstance(value, int) and not isinstance(value, bool):
        if not -(2**63) <= value < 2**64:
            raise InvalidInputError(f"domain_op holds an integer out of range: {value!r}")
    elif value is not None and not isinstance(value, bool):
        raise InvalidInputError(f"domain_op cannot hold a {type(value).__name__}")


def encode_line(entry: OpEntry) -> bytes:
    """Return the entry as one canonical JSON line (newline included)."""
    return _encoder.encode(entry) + b"\n"


def decode_line(line: bytes, *, verify_id: bool = False) -> OpEntry:
    """Decode one line of ``ops.jsonl`` (without its newline) and check it.

    Raises:
        InvalidInputError: the line is not a well-formed op.
    """
    try:
        value = _decoder.decode(line)
    except msgspec.DecodeError as exc:
        raise InvalidInputError(f"not valid JSON ({exc})") from None
    return check_entry(value, verify_id=verify_id)


def op_leaf(line: bytes) -> bytes:
    """The RFC 6962 leaf hash of one log line (without its newline).

    An ordinary line's own hash; a redacted line's recorded one (the hash of
    the line it replaced), so redaction changes no root.
    """
    if b'"redacted":' in line:
        value = _decoder.decode(line)
        if isinstance(value, dict) and isinstance(value.get("redacted"), str):
            return base64.urlsafe_b64decode(value["redacted"].rstrip() + "=")
    return leaf_hash(line)


def decode_mapping(line: bytes) -> dict[str, Any]:
    """A log line as a plain mapping (``{}`` if it does not decode: then it holds nothing)."""
    try:
        value = _decoder.decode(line)
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def holds_text(entry: Mapping[str, Any], text: str) -> bool:
    """True if any string in the op's payload is ``text`` (what a purge of it redacts)."""
    return _holds(entry.get("domain_op"), text, 0)


def _holds(value: object, text: str, depth: int) -> bool:
    if isinstance(value, str):
        return value == text
    if depth > 32:
        return False
    if isinstance(value, dict):
        return any(_holds(item, text, depth + 1) for item in value.values())
    if isinstance(value, list):
        return any(_holds(item, text, depth + 1) for item in value)
    return False


def quoted(text: str) -> bytes:
    """``text`` as a JSON string (quotes included): how a log line spells it."""
    return _encoder.encode(text)


def redact_line(line: bytes) -> bytes:
    """The redacted form of one log line (without its newline), exactly as long.

    Raises:
        InvalidInputError: the line is already redacted, or its redacted form
            would be longer (an op written before salts, of another domain, whose
            payload is shorter than the marker: it cannot be redacted in place).
    """
    entry = _decoder.decode(line)
    if not isinstance(entry, dict) or "redacted" in entry:
        raise InvalidInputError("the op is redacted already")
    leaf = base64.urlsafe_b64encode(leaf_hash(line)).rstrip(b"=").decode()
    redacted = {k: v for k, v in entry.items() if k != "payload_salt"}
    redacted.update(domain_op={}, created_at="", redacted=leaf)
    shorter = _encoder.encode(redacted)
    room = len(line) - len(shorter)
    if room < 0:
        raise InvalidInputError(
            f"op {str(entry.get('op_id'))[:16]} is too short to redact in place"
        )
    redacted["redacted"] = leaf + " " * room
    done = _encoder.encode(redacted)
    assert len(done) == len(line)
    return done


def merge_key(entry: OpEntry) -> tuple[int, str, str]:
    """The deterministic total order of merged ops: Lamport stamp, then actor, then id.

    It extends causality (a parent always has a lower stamp than its child)
    and is the same on every machine whatever order the ops arrived in.
    """
    return entry["lamport_ts"], entry["actor_id"], entry["op_id"]


def encode_json(value: object) -> bytes:
    """Canonical JSON bytes (sorted keys, no whitespace) for checkpoint files."""
    return _encoder.encode(value)


def decode_json(data: bytes) -> Any:
    """Decode JSON bytes written by :func:`encode_json`."""
    return _decoder.decode(data)


__all__ = [
    "OpEntry",
    "OpLogCheckpoint",
    "check_entry",
    "check_session_id",
    "compute_op_id",
    "decode_line",
    "encode_line",
    "make_op_entry",
    "merge_key",
    "restamp",
]
