"""Packs: the objects of a transfer in one compressed stream, tree nodes as deltas.

Every clone, fetch, pull and push moves its objects as one pack, whatever
the remote (``docs/FORMAT.md``, "Packs"):

* ``CFSPACK`` and a version byte (1), then one zstd frame (no checksum)
  whose content is the body: one record per object, then an end record;
* a record is a tag byte (the kind's code; with bit 0x80 a delta), the raw
  32-byte id, for a delta the 32-byte id of its base, the payload's length
  (LEB128) and the payload: the canonical bytes, or a zstd frame made with
  the base's canonical bytes as a raw-content dictionary;
* the end record is a zero byte, the number of records (LEB128) and the
  SHA-256 of every record's bytes, so a pack cut at any byte is refused.

The stream is compressed as a whole, so similar objects compress against
each other, and a tree node that differs from the version the receiver
holds by an entry travels as tens of bytes. The reader never trusts a
pack: it yields ``(id, kind, canonical bytes)`` rows, which
:func:`~contextfs.remote.objects.receive` re-hashes, link-checks and stores
in one transaction; sizes are bounded, so a hostile pack costs memory in
proportion to its objects, never more.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import IO, Final, cast

import zstandard

from ..errors import CorruptObjectError, InvalidInputError, MissingObjectError
from ..history.tree import TREE
from ..integrity.purge import PURGES, purge_ref
from ..model.ids import from_hex
from ..store.base import OBJECT_KINDS, Store
from ..store.codec import DELTA, Codec, StoredRow
from .objects import Received, RefUpdate, offer, receive

MAGIC: Final = b"CFSPACK\x01"
#: Kind codes of the tag byte; 0 ends the records.
KIND_CODES: Final = {"atom": 1, "molecule": 2, "tree": 3, "commit": 4, "context": 5, "purge": 6}
KINDS: Final = {code: kind for kind, code in KIND_CODES.items()}
DELTA_FLAG: Final = 0x80
END: Final = 0x00
#: Largest payload a record may carry (an object, or a delta).
MAX_PAYLOAD: Final = 64 * 1024 * 1024
#: zstd level of the stream: fast to write, and most redundancy is already in deltas.
LEVEL: Final = 3
#: Bytes of compressed stream the writer yields at a time, and the reader decodes.
CHUNK: Final = 256 * 1024
#: Objects read from the sender's store at a time.
BATCH: Final = 1000
#: Canonical bytes of recent objects kept to serve as bases (each side).
RECENT_BYTES: Final = 64 * 1024 * 1024
#: A delta is sent only when it is at most this share of the whole object.
DELTA_SHARE: Final = 0.5

assert set(KIND_CODES) == OBJECT_KINDS

ObjectRow = tuple[bytes, str, bytes]
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


def record(oid: bytes, kind: str, payload: bytes, base: bytes | None = None) -> bytes:
    """One record's bytes: a whole object, or (with ``base``) a delta against it."""
    tag = KIND_CODES[kind] | (DELTA_FLAG if base is not None else 0)
    return b"".join((bytes([tag]), oid, base or b"", leb128(len(payload)), payload))


def end_record(count: int, digest: bytes) -> bytes:
    """The end record: the number of records and the SHA-256 of their bytes."""
    return bytes([END]) + leb128(count) + digest


# -- writing ------------------------------------------------------------------------------


class _Recent:
    """Canonical bytes of recent tree nodes, by id, up to :data:`RECENT_BYTES`."""

    def __init__(self) -> None:
        self._items: OrderedDict[bytes, bytes] = OrderedDict()
        self._size = 0

    def get(self, oid: bytes) -> bytes | None:
        data = self._items.get(oid)
        if data is not None:
            self._items.move_to_end(oid)
        return data

    def add(self, oid: bytes, data: bytes) -> None:
        if oid in self._items:
            return
        self._items[oid] = data
        self._size += len(data)
        while self._size > RECENT_BYTES:
            _, dropped = self._items.popitem(last=False)
            self._size -= len(dropped)


def write_pack(records: Iterable[bytes]) -> Iterator[bytes]:
    """Compress ``records`` (from :func:`record`) into a pack, in chunks of about :data:`CHUNK`."""
    compressor = zstandard.ZstdCompressor(level=LEVEL, write_checksum=False).compressobj()
    digest = hashlib.sha256()
    count = 0
    pending = [MAGIC]
    size = len(MAGIC)
    for rec in records:
        digest.update(rec)
        count += 1
        out = compressor.compress(rec)
        if out:
            pending.append(out)
            size += len(out)
            if size >= CHUNK:
                yield b"".join(pending)
                pending, size = [], 0
    pending += [compressor.compress(end_record(count, digest.digest())), compressor.flush()]
    yield b"".join(pending)


def pack_objects(
    store: Store, ids: Sequence[bytes], bases: Mapping[bytes, bytes] | None = None
) -> Iterator[bytes]:
    """The pack of ``ids`` from ``store``, in that order, tree nodes as deltas where they pay.

    ``bases`` maps a tree node to the node it replaced (what a transfer's
    offer pairs them with). A node is sent as a delta against that base when
    the receiver holds it: the base was sent earlier in this pack, or it is
    not among ``ids`` at all (the receiver had it already), and when the
    delta is at most half the node.

    Raises:
        MissingObjectError: an object of ``ids`` is not stored.
    """
    return write_pack(_records(store, ids, bases or {}))


def _records(store: Store, ids: Sequence[bytes], bases: Mapping[bytes, bytes]) -> Iterator[bytes]:
    codec = Codec()
    unsent = set(ids)
    recent = _Recent()
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        found = store.get_objects(chunk)
        wanted = [
            base
            for oid in chunk
            if (base := bases.get(oid)) is not None
            and base not in unsent
            and recent.get(base) is None
        ]
        held = store.get_objects(wanted) if wanted else {}
        for oid in chunk:
            stored = found.get(oid)
            if stored is None:
                raise MissingObjectError(f"object {oid.hex()} is missing from the store")
            kind, data = stored
            unsent.discard(oid)
            base = bases.get(oid)
            base_data = None
            if base is not None and base not in unsent:
                base_data = recent.get(base)
                if base_data is None and base in held:
                    base_data = held[base].data
            if kind == TREE:
                recent.add(oid, data)
            if base_data is not None and data:
                delta = codec.encode_delta(data, base_data)
                if len(delta) <= DELTA_SHARE * len(data):
                    yield record(oid, kind, delta, base)
                    continue
            yield record(oid, kind, data)


# -- reading ------------------------------------------------------------------------------


class _Source:
    """A file-like view of an iterator of byte chunks (what zstd's stream reader reads)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""
        self.total = 0

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self.total += len(chunk)
            self._buffer += chunk
        if size < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


class _Body:
    """The decompressed body, read exactly, a bounded chunk at a time."""

    def __init__(self, source: _Source) -> None:
        self._reader = zstandard.ZstdDecompressor(max_window_size=1 << 27).stream_reader(
            cast(IO[bytes], source),  # it only calls read()
            read_size=CHUNK,
            read_across_frames=False,
        )
        self._buffer = bytearray()
        self._at = 0

    def take(self, size: int) -> bytes:
        while len(self._buffer) - self._at < size:
            try:
                more = self._reader.read(CHUNK)
            except zstandard.ZstdError as exc:
                raise CorruptObjectError(f"the pack does not decompress: {exc}") from None
            if not more:
                raise CorruptObjectError("the pack ended early; nothing was stored")
            del self._buffer[: self._at]
            self._at = 0
            self._buffer += more
        out = bytes(self._buffer[self._at : self._at + size])
        self._at += size
        return out

    def varint(self) -> int:
        value = shift = 0
        while True:
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise CorruptObjectError("the pack holds a malformed length")

    def finished(self) -> bool:
        """Whether nothing follows what was taken."""
        if len(self._buffer) > self._at:
            return False
        try:
            return not self._reader.read(1)
        except zstandard.ZstdError:
            return False


class _Entry:
    __slots__ = ("base", "data", "kind", "oid")

    def __init__(self, oid: bytes, kind: str, data: bytes, base: bytes | None) -> None:
        self.oid, self.kind, self.data, self.base = oid, kind, data, base


def read_pack(chunks: Iterable[bytes], held: BaseReader | None = None) -> Iterator[ObjectRow]:
    """Yield the ``(id, kind, canonical bytes)`` rows of a pack, in order.

    A delta's base is an object sent earlier in the pack or one ``held``
    returns (what the receiver already stores). Nothing is re-hashed here.

    Raises:
        CorruptObjectError: the pack is malformed, cut short, or names a base
            that is neither in it nor held; or a delta does not decode.
    """
    source = _Source(chunks)
    if source.read(len(MAGIC)) != MAGIC:
        raise CorruptObjectError("not a ContextFS pack (or a newer version of one)")
    body = _Body(source)
    digest = hashlib.sha256()
    codec = Codec()
    recent = _Recent()
    count = 0
    window: list[_Entry] = []
    window_bytes = 0
    while True:
        tag = body.take(1)[0]
        if tag == END:
            break
        kind = KINDS.get(tag & ~DELTA_FLAG)
        if kind is None:
            raise CorruptObjectError(f"the pack holds a record of unknown kind {tag}")
        oid = body.take(32)
        base = body.take(32) if tag & DELTA_FLAG else None
        size = body.varint()
        if size > MAX_PAYLOAD:
            raise CorruptObjectError(f"the pack holds a {kind} of {size} bytes, too large")
        payload = body.take(size)
        digest.update(record(oid, kind, payload, base))
        count += 1
        window.append(_Entry(oid, kind, payload, base))
        window_bytes += size
        if len(window) >= BATCH or window_bytes >= CHUNK * 16:
            yield from _resolved(window, recent, held, codec)
            window, window_bytes = [], 0
    yield from _resolved(window, recent, held, codec)
    if body.varint() != count or body.take(32) != digest.digest():
        raise CorruptObjectError("the pack's end record does not match its records")
    if not body.finished():
        raise CorruptObjectError("the pack has bytes after its end record")


def _resolved(
    window: list[_Entry], recent: _Recent, held: BaseReader | None, codec: Codec
) -> Iterator[ObjectRow]:
    """Decode a window of records: deltas against earlier records or held objects."""
    inside = {entry.oid for entry in window}
    outside = [
        entry.base
        for entry in window
        if entry.base is not None and entry.base not in inside and recent.get(entry.base) is None
    ]
    fetched = held(list(dict.fromkeys(outside))) if outside and held is not None else {}
    for entry in window:
        data = entry.data
        if entry.base is not None:
            base = recent.get(entry.base)
            if base is None:
                base = fetched.get(entry.base)
            if base is None:
                raise CorruptObjectError(
                    f"the pack sends {entry.oid.hex()} as a delta against {entry.base.hex()},"
                    " which is neither in the pack before it nor stored here"
                )
            data = codec.decode(StoredRow(entry.kind, data, DELTA, entry.base), base)
        recent.add(entry.oid, data)
        yield entry.oid, entry.kind, data


def pack_history(store: Store, wants: Sequence[bytes], haves: Sequence[bytes]) -> Iterator[bytes]:
    """The pack a receiver holding ``haves`` needs for ``wants``: the sender's half of a transfer.

    Every object :func:`~contextfs.remote.objects.offer` lists, oldest
    commits' first so each tree node can be a delta against the version it
    replaced, then the purge records of purged atoms among them (a purged
    atom travels empty, with its record). The offer is made before this
    returns, so a missing want fails here, before a byte is sent.

    Raises:
        MissingObjectError: a want, or an object below it, is not stored.
    """
    bases: dict[bytes, bytes] = {}
    ids = [oid for batch in offer(store, wants, haves, bases) for oid in batch]
    ids.reverse()
    listed = set(ids)
    for record_id in purge_records_for(store.list_refs(PURGES), ids):
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
) -> Received:
    """Unpack ``chunks`` into ``store`` and move refs: :func:`receive` over a pack.

    Deltas resolve against objects earlier in the pack or already stored.

    Raises:
        CorruptObjectError: the pack is malformed, cut short, or an object in it
            does not hash to its id (nothing was stored); and as :func:`receive`.
    """
    rows = read_pack(chunks, store_bases(store))
    return receive(store, rows, updates, force=force, progress=progress)


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
    """A :data:`BaseReader` over ``store`` (in the receiving transaction it sees its writes)."""

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
