"""Packs: the objects of a transfer in one compressed stream, as git's packs are.

Every clone, fetch, pull and push moves its objects as one pack, whatever
the remote (``docs/FORMAT.md``, "Packs"):

* ``CFSPACK`` and a version byte (2), then one zstd frame whose content is
  the body: one record per object, then an end record;
* a record is a tag byte (the kind's code), the payload's length (LEB128)
  and the payload: the object's canonical bytes. Objects carry no ids: the
  receiver computes each by hashing what it received, as git's index-pack
  does, so a sender cannot name an object falsely and no byte is spent on
  32 random ones per object;
* with tag bit 0x80 the record is a delta: a 32-byte base id comes first,
  naming an object the receiver already holds, and the payload is a zstd
  frame made with the base's canonical bytes as a raw-content dictionary.
  A tree node the receiver holds an older version of (a fetch, a push to a
  remote that has the history) travels as tens of bytes;
* with tag bit 0x40 the id comes first (the only way to send a purged atom,
  whose content, and so whose hash, is gone);
* the end record is a zero byte, the number of records (LEB128) and the
  SHA-256 of every record's bytes, so a pack cut at any byte is refused.

Objects go oldest commits' first, so the versions of a tree node sit close
together in the stream, and the stream is compressed with zstd's
long-distance matching over a 16 MiB window: similar objects within the pack
compress against each other without a delta record. The reader never trusts
a pack: it yields ``(None, kind, canonical bytes)`` rows, and
:func:`~contextfs.remote.objects.receive` hashes, link-checks and stores
them in one transaction; sizes are bounded, so a hostile pack costs memory
in proportion to its objects, never more.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import IO, Any, Final, cast

import zstandard

from ..errors import CorruptObjectError, InvalidInputError, MissingObjectError
from ..integrity.purge import PURGE, PURGES, purge_ref
from ..model.ids import from_hex
from ..store.base import OBJECT_KINDS, Store, StoredObject
from ..store.codec import DELTA, Codec, StoredRow
from .objects import Received, RefUpdate, offer, receive

MAGIC: Final = b"CFSPACK\x02"
#: Kind codes of the tag byte; 0 ends the records.
KIND_CODES: Final = {"atom": 1, "molecule": 2, "tree": 3, "commit": 4, "context": 5, "purge": 6}
KINDS: Final = {code: kind for kind, code in KIND_CODES.items()}
DELTA_FLAG: Final = 0x80  # against an object the receiver holds, by id
NAMED_FLAG: Final = 0x40  # the id is given
EARLIER_FLAG: Final = 0x20  # against an earlier record of the pack, by distance
KIND_MASK: Final = 0x07
END: Final = 0x00
#: Largest payload a record may carry (an object, or a delta).
MAX_PAYLOAD: Final = 64 * 1024 * 1024
#: Most bytes before a record's payload: tag, id, base and a 10-byte length.
HEADER_MAX: Final = 1 + 32 + 32 + 10
#: zstd level of the stream, and its window (log2 bytes): long-distance matching over
#: it finds the older version of an object sent earlier in the pack.
LEVEL: Final = 3
WINDOW_LOG: Final = 24
#: The largest window a reader accepts (log2 bytes): what decoding may cost in memory.
MAX_WINDOW_LOG: Final = 27
#: Bytes of compressed stream the writer yields at a time, and the reader decodes.
CHUNK: Final = 256 * 1024
#: Record bytes the writer hands the compressor at a time.
BATCH_BYTES: Final = 64 * 1024
#: Objects read from the sender's store at a time.
BATCH: Final = 1000
#: A delta is sent only when it is at most this share of the whole object.
DELTA_SHARE: Final = 0.5
#: How far back a delta may reach in the pack: its base and every record after it hold
#: at most this many canonical bytes (what both sides keep decoded).
WINDOW_BYTES: Final = 32 * 1024 * 1024

assert set(KIND_CODES) == OBJECT_KINDS

#: What a pack yields: ``(id or None, kind, canonical bytes)``; None leaves the id to
#: be computed by the receiver.
PackRow = tuple[bytes | None, str, bytes]
#: Reads the canonical bytes of some objects the reader already holds, by id.
BaseReader = Callable[[list[bytes]], Mapping[bytes, bytes]]


def leb128(value: int) -> bytes:
    """``value`` as an unsigned LEB128 varint."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def record(
    kind: str,
    payload: bytes,
    *,
    base: bytes | None = None,
    back: int | None = None,
    oid: bytes | None = None,
) -> bytes:
    """One record's bytes: an object, or (with ``oid``) a named one, or a delta.

    A delta's base is ``base``, an object the receiver holds, or the record
    ``back`` records before this one (1: the one just before).
    """
    tag = KIND_CODES[kind]
    parts = [b"", oid or b"", base or b""]
    if oid is not None:
        tag |= NAMED_FLAG
    if base is not None:
        tag |= DELTA_FLAG
    elif back is not None:
        tag |= EARLIER_FLAG
        parts.append(leb128(back))
    parts[0] = bytes([tag])
    return b"".join((*parts, leb128(len(payload)), payload))


def end_record(count: int, digest: bytes) -> bytes:
    """The end record: the number of records and the SHA-256 of their bytes."""
    return bytes([END]) + leb128(count) + digest


# -- writing ------------------------------------------------------------------------------


def write_pack(records: Iterable[bytes]) -> Iterator[bytes]:
    """Compress ``records`` (from :func:`record`) into a pack, in chunks of about :data:`CHUNK`."""
    params = zstandard.ZstdCompressionParameters.from_level(
        LEVEL, window_log=WINDOW_LOG, enable_ldm=True
    )
    compressor = zstandard.ZstdCompressor(compression_params=params).compressobj()
    digest = hashlib.sha256()
    count = 0
    out = [MAGIC]
    size = len(MAGIC)
    batch: list[bytes] = []
    batch_size = 0
    for rec in records:
        count += 1
        batch.append(rec)
        batch_size += len(rec)
        if batch_size >= BATCH_BYTES:  # a join and a call per batch, not per record
            joined = b"".join(batch)
            digest.update(joined)
            compressed = compressor.compress(joined)
            batch, batch_size = [], 0
            out.append(compressed)
            size += len(compressed)
            if size >= CHUNK:
                yield b"".join(out)
                out, size = [], 0
    joined = b"".join(batch)
    digest.update(joined)
    out += [
        compressor.compress(joined + end_record(count, digest.digest())),
        compressor.flush(),
    ]
    yield b"".join(out)


def pack_objects(
    store: Store, ids: Sequence[bytes], bases: Mapping[bytes, bytes] | None = None
) -> Iterator[bytes]:
    """The pack of ``ids`` from ``store``, in that order.

    ``bases`` maps a tree node to the node it replaced (what a transfer's
    offer pairs them with). A node whose base is not in the pack is one the
    receiver holds, and is sent as a delta against it when that is at most
    half the node; a base in the pack is left to the stream's compression.

    Raises:
        MissingObjectError: an object of ``ids`` is not stored.
    """
    return write_pack(_records(store, ids, bases or {}))


class _Window:
    """The canonical bytes of the last records, as far back as a delta may reach.

    Both sides keep one, so that the sender names only bases the receiver
    still has: a record and those after it hold at most :data:`WINDOW_BYTES`.
    """

    def __init__(self) -> None:
        self._records: deque[tuple[int, bytes | None, bytes]] = deque()
        self._by_id: dict[bytes, int] = {}
        self._size = 0
        self.count = 0

    def add(self, oid: bytes | None, data: bytes) -> None:
        """Append the next record's canonical bytes (and id, when the side knows it)."""
        self._records.append((self.count, oid, data))
        if oid is not None:
            self._by_id[oid] = self.count
        self.count += 1
        self._size += len(data)
        while self._size > WINDOW_BYTES:
            index, dropped, old = self._records.popleft()
            self._size -= len(old)
            if dropped is not None and self._by_id.get(dropped) == index:
                del self._by_id[dropped]

    def back(self, oid: bytes) -> int | None:
        """How many records back ``oid`` is, if it is still in the window."""
        at = self._by_id.get(oid)
        if at is None or at < self.count - len(self._records):
            return None
        return self.count - at

    def data(self, back: int) -> bytes | None:
        """The canonical bytes of the record ``back`` records before the next one."""
        if not 0 < back <= len(self._records):
            return None
        return self._records[len(self._records) - back][2]


def _records(store: Store, ids: Sequence[bytes], bases: Mapping[bytes, bytes]) -> Iterator[bytes]:
    codec = Codec()
    sent = set(ids)
    window = _Window()
    hidden: set[bytes] = set()
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        found = store.get_objects(chunk)
        wanted = [
            base for oid in chunk if (base := bases.get(oid)) is not None and base not in sent
        ]
        held = store.get_objects(wanted) if wanted else {}
        for oid in chunk:
            stored = found.get(oid)
            if stored is None:
                raise MissingObjectError(f"object {oid.hex()} is missing from the store")
            base = bases.get(oid)
            yield _record(codec, window, hidden, oid, stored.kind, stored.data, base, held)


def _record(
    codec: Codec,
    window: _Window,
    hidden: set[bytes],
    oid: bytes,
    kind: str,
    data: bytes,
    base: bytes | None,
    held: Mapping[bytes, StoredObject],
) -> bytes:
    """The record of one object: a delta where it is reachable, needed and pays.

    A base sent whole earlier in the pack needs no delta: the stream's
    compression finds it. One sent as a delta (``hidden``: its bytes are not
    in the stream) or held by the receiver does.
    """
    window_back = window.back(base) if base is not None else None
    window.add(oid, data)
    hidden.discard(oid)
    if not data:  # a purged atom: its id cannot be computed from nothing
        return record(kind, data, oid=oid)
    base_data, back = None, None
    if base is not None and window_back is not None and base in hidden:
        back = window_back
        base_data = window.data(back + 1)  # the window has grown by this record
    elif base is not None and window_back is None and base in held:
        base_data = held[base].data
    if base_data is not None:
        delta = codec.encode_delta(data, base_data)
        if len(delta) <= DELTA_SHARE * len(data):
            hidden.add(oid)
            if back is not None:
                return record(kind, delta, back=back)
            return record(kind, delta, base=base)
    return record(kind, data)


# -- reading ------------------------------------------------------------------------------


class _Source:
    """A file-like view of an iterator of byte chunks (what zstd's stream reader reads).

    A read copies only what it returns, whatever the size of the chunks.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._chunk = b""
        self._at = 0

    def read(self, size: int = -1) -> bytes:
        parts: list[bytes] = []
        wanted = size
        while wanted != 0:
            if self._at >= len(self._chunk):
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._chunk, self._at = chunk, 0
                continue
            end = len(self._chunk) if wanted < 0 else min(len(self._chunk), self._at + wanted)
            parts.append(self._chunk[self._at : end])
            if wanted > 0:
                wanted -= end - self._at
            self._at = end
        return b"".join(parts)


class _Body:
    """The decompressed body, parsed record by record from a bounded buffer."""

    def __init__(self, source: _Source) -> None:
        decompressor = zstandard.ZstdDecompressor(max_window_size=1 << MAX_WINDOW_LOG)
        self._reader = decompressor.stream_reader(
            cast(IO[bytes], source),  # it only calls read()
            read_size=CHUNK,
            read_across_frames=False,
        )
        self._buffer = bytearray()
        self._at = 0
        self._ended = False

    def _fill(self, size: int) -> None:
        """Make ``size`` bytes available after the position, or as many as remain."""
        buffer = self._buffer
        while len(buffer) - self._at < size and not self._ended:
            try:
                more = self._reader.read(CHUNK)
            except zstandard.ZstdError as exc:
                raise CorruptObjectError(f"the pack does not decompress: {exc}") from None
            if not more:
                self._ended = True
                break
            del buffer[: self._at]
            self._at = 0
            buffer += more

    def _need(self, size: int) -> None:
        self._fill(size)
        if len(self._buffer) - self._at < size:
            raise CorruptObjectError("the pack ended early; nothing was stored")

    def records(self, digest: Any) -> Iterator[tuple[int, bytes | None, bytes | None, int, bytes]]:
        """Yield ``(tag, id, base, back, payload)`` per record up to the end record's tag.

        Each record's bytes go into ``digest`` as they are read.
        """
        while True:
            self._fill(HEADER_MAX)
            buffer, at = self._buffer, self._at
            if at >= len(buffer):
                raise CorruptObjectError("the pack ended early; nothing was stored")
            tag = buffer[at]
            if tag == END:
                self._at = at + 1
                return
            first = at
            at += 1
            oid = base = None
            back = 0
            if tag & NAMED_FLAG:
                oid = bytes(buffer[at : at + 32])
                at += 32
            if tag & DELTA_FLAG and tag & EARLIER_FLAG:
                raise CorruptObjectError("the pack holds a record that is two kinds of delta")
            if tag & DELTA_FLAG:
                base = bytes(buffer[at : at + 32])
                at += 32
            elif tag & EARLIER_FLAG:
                back, at = _varint(buffer, at)
                if back == 0:
                    raise CorruptObjectError("the pack holds a delta against itself")
            size, at = _varint(buffer, at)
            if size > MAX_PAYLOAD:
                raise CorruptObjectError(f"the pack holds a record of {size} bytes, too large")
            header = at - first
            self._at = first
            self._need(header + size)  # a refill keeps the record, from its first byte
            buffer, first = self._buffer, self._at
            at = first + header
            payload = bytes(buffer[at : at + size])
            with memoryview(buffer) as view:
                digest.update(view[first : at + size])
            self._at = at + size
            yield tag, oid, base, back, payload

    def end(self) -> tuple[int, bytes]:
        """The end record after its tag: the count and the digest."""
        self._fill(HEADER_MAX)
        count, at = _varint(self._buffer, self._at)
        self._at = at
        self._need(32)
        digest = bytes(self._buffer[self._at : self._at + 32])
        self._at += 32
        return count, digest

    def finished(self) -> bool:
        """Whether nothing follows what was read."""
        self._fill(1)
        return len(self._buffer) <= self._at


def _varint(buffer: bytearray, at: int) -> tuple[int, int]:
    """Read a LEB128 length at ``at``; return it and the position after it."""
    value = shift = 0
    while True:
        if at >= len(buffer):
            raise CorruptObjectError("the pack ended early; nothing was stored")
        byte = buffer[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7
        if shift > 63:
            raise CorruptObjectError("the pack holds a malformed length")


def read_pack(chunks: Iterable[bytes], held: BaseReader | None = None) -> Iterator[PackRow]:
    """Yield the ``(id or None, kind, canonical bytes)`` rows of a pack, in order.

    A delta's base is an object ``held`` returns (what the receiver already
    stores). Nothing is hashed here: the receiver names and checks each row.

    Raises:
        CorruptObjectError: the pack is malformed or cut short, or names a base
            the receiver does not hold, or a delta does not decode.
    """
    source = _Source(chunks)
    if source.read(len(MAGIC)) != MAGIC:
        raise CorruptObjectError("not a ContextFS pack (or a newer version of one)")
    body = _Body(source)
    digest = hashlib.sha256()
    codec = Codec()
    recent = _Window()
    count = 0
    batch: list[tuple[bytes | None, str, bytes, bytes | None, int]] = []
    batch_bytes = 0
    for tag, oid, base, back, payload in body.records(digest):
        kind = KINDS.get(tag & KIND_MASK)
        if kind is None or tag & ~(KIND_MASK | DELTA_FLAG | NAMED_FLAG | EARLIER_FLAG):
            raise CorruptObjectError(f"the pack holds a record of unknown kind {tag}")
        count += 1
        batch.append((oid, kind, payload, base, back))
        batch_bytes += len(payload)
        if len(batch) >= BATCH or batch_bytes >= CHUNK * 16:
            yield from _resolved(batch, held, codec, recent)
            batch, batch_bytes = [], 0
    yield from _resolved(batch, held, codec, recent)
    if body.end() != (count, digest.digest()):
        raise CorruptObjectError("the pack's end record does not match its records")
    if not body.finished():
        raise CorruptObjectError("the pack has bytes after its end record")


def _resolved(
    batch: list[tuple[bytes | None, str, bytes, bytes | None, int]],
    held: BaseReader | None,
    codec: Codec,
    recent: _Window,
) -> Iterator[PackRow]:
    """Decode a batch of records in order, reading every held base in one call."""
    wanted = list(dict.fromkeys(base for _, _, _, base, _ in batch if base is not None))
    fetched = held(wanted) if wanted and held is not None else {}
    for oid, kind, data, base, back in batch:
        base_data: bytes | None = None
        if base is not None:
            base_data = fetched.get(base)
            if base_data is None:
                raise CorruptObjectError(
                    f"the pack sends a {kind} as a delta against {base.hex()},"
                    " which is not stored here"
                )
        elif back:
            base_data = recent.data(back)
            if base_data is None:
                raise CorruptObjectError(
                    f"the pack sends a {kind} as a delta against the record {back} before it,"
                    " which is not in the pack or too far back"
                )
        if base_data is not None:
            try:
                data = codec.decode(
                    StoredRow(kind, data, DELTA, None), base_data, limit=MAX_PAYLOAD
                )
            except CorruptObjectError as exc:
                raise CorruptObjectError(f"the pack holds a delta that is refused: {exc}") from None
        recent.add(oid, data)
        yield oid, kind, data


def pack_history(
    store: Store, wants: Sequence[bytes], haves: Sequence[bytes], purges: Sequence[bytes] = ()
) -> Iterator[bytes]:
    """The pack a receiver holding ``haves`` needs for ``wants``: the sender's half of a transfer.

    Every object :func:`~contextfs.remote.objects.offer` lists, oldest
    commits' first so each tree node can be a delta against the version it
    replaced, then the purge records of purged atoms among them (a purged
    atom travels empty, with its record), then those of ``purges`` this
    store holds (purges the receiver lacks, to erase its copies too). The
    offer is made before this returns, so a missing want fails here, before
    a byte is sent.

    Raises:
        MissingObjectError: a want, or an object below it, is not stored.
    """
    bases: dict[bytes, bytes] = {}
    ids = [oid for batch in offer(store, wants, haves, bases) for oid in batch]
    ids.reverse()
    listed = set(ids)
    asked = [oid for oid, stored in store.get_objects(list(purges)).items() if stored.kind == PURGE]
    for record_id in [*purge_records_for(store.list_refs(PURGES), ids), *sorted(asked)]:
        if record_id not in listed:
            listed.add(record_id)
            ids.append(record_id)
    return pack_objects(store, ids, bases)


def receive_pack(
    store: Store,
    chunks: Iterable[bytes],
    updates: Sequence[RefUpdate],
    *,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
    purges: bool = True,
    may_erase: Callable[[bytes, bytes], bool] | None = None,
) -> Received:
    """Unpack ``chunks`` into ``store`` and move refs: :func:`receive` over a pack.

    Deltas resolve against objects earlier in the pack or already stored.

    Raises:
        CorruptObjectError: the pack is malformed, cut short, or an object in it
            does not hash to its id (nothing was stored); and as :func:`receive`.
    """
    rows = read_pack(chunks, store_bases(store))
    return receive(
        store, rows, updates, force=force, progress=progress, purges=purges, may_erase=may_erase
    )


def purge_records_for(refs: Mapping[str, str], atoms: Iterable[bytes]) -> list[bytes]:
    """The purge records ``refs`` name for any of ``atoms``: what must travel with them."""
    records = []
    for atom_id in atoms:
        value = refs.get(purge_ref(atom_id))
        if value is not None:
            with contextlib.suppress(InvalidInputError):
                records.append(from_hex(value))
    return records


def store_bases(store: Store) -> BaseReader:
    """A :data:`BaseReader` over ``store``: the objects a delta's base may be."""

    def read(ids: list[bytes]) -> dict[bytes, bytes]:
        return {oid: stored.data for oid, stored in store.get_objects(ids).items()}

    return read


__all__ = [
    "KIND_CODES",
    "MAGIC",
    "BaseReader",
    "leb128",
    "pack_history",
    "pack_objects",
    "purge_records_for",
    "read_pack",
    "receive_pack",
    "record",
    "store_bases",
    "write_pack",
]
