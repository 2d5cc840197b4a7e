"""How a store keeps objects at rest: whole, zstd-compressed, or as a delta against another.

An object's id always hashes its canonical bytes; what a store writes to disk
is one of three encodings, named by a small integer beside the bytes:

* :data:`RAW` (0): the canonical bytes as they are (every store before
  compression, small objects that do not shrink, and an erased atom's empty
  content);
* :data:`ZSTD` (1): one zstd frame of the canonical bytes. When the frame's
  header names a dictionary, it is the store's dictionary of that id, trained
  from the store's own objects of one kind (:meth:`Codec.train`): short texts
  share most of their vocabulary and their framing, which a per-object
  compressor cannot see on its own;
* :data:`DELTA` (2): one zstd frame made with another object's canonical
  bytes (its *base*) as a raw-content dictionary (``zstd --patch-from``).
  Successive versions of a snapshot's tree node differ in an entry or two,
  so the older version costs tens of bytes. Only ``contextfs gc`` writes
  deltas (:mod:`contextfs.integrity.repack`), and only for tree nodes; chains
  are at most :data:`MAX_CHAIN` long, and the newest version stays whole.

Nothing here touches a database: the stores hand rows in and take objects out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Final, NamedTuple, cast

import zstandard

from ..errors import CorruptObjectError
from .base import StoredObject

RAW: Final = 0
ZSTD: Final = 1
DELTA: Final = 2
CODECS: Final = frozenset({RAW, ZSTD, DELTA})

#: zstd's level: its default, a good balance of speed and size for kilobyte objects.
LEVEL: Final = 3
#: Most deltas between an object and a whole one (git's pack.depth is 50).
MAX_CHAIN: Final = 50
ATOM: Final = "atom"
#: Kinds compressed on write even without a dictionary (text shrinks; ids do not).
ALWAYS_COMPRESSED: Final = frozenset({ATOM})
#: Trained dictionary ids start here: zstd reserves the ids below for public registration.
FIRST_DICTIONARY_ID: Final = 32768
#: A trained dictionary is adopted only if it shrinks a held-out sample at least this much.
PAYS: Final = 0.9
#: Most objects sampled to train a dictionary (a quarter judge it), and fewest it needs.
MAX_SAMPLES: Final = 10_000
MIN_SAMPLES: Final = 200
#: Largest dictionary trained: more of a store's recurring text fits, at no cost per read.
MAX_DICTIONARY: Final = 256 * 1024
#: Canonical bytes of delta bases kept decoded, so chains sharing a base decode it once.
BASE_CACHE_BYTES: Final = 32 * 1024 * 1024
#: Atoms in one write that train the store's first atom dictionary (a bulk ingest),
#: and most of them it learns from.
AUTO_TRAIN: Final = 1000
AUTO_SAMPLES: Final = 2000
#: The kinds that get dictionaries: text. A tree node is mostly ids, which no
#: dictionary predicts; its old versions become deltas instead.
TRAINED_KINDS: Final = frozenset({"atom"})
#: Ids read from a store at a time by a pass over every delta.
BATCH_IDS: Final = 500
#: Largest object a frame may expand to: larger claims are corruption, not content.
MAX_OBJECT: Final = 1 << 30


class StoredRow(NamedTuple):
    """One object as a store's table holds it."""

    kind: str
    data: bytes
    codec: int
    base: bytes | None


Fetch = Callable[[list[bytes]], Mapping[bytes, StoredRow]]
#: A row as a store's table returns it: ``(id, kind, data, codec, base)``.
Row = tuple[bytes, str, bytes, int, "bytes | None"]
#: Reads a dictionary by id from the store (one trained elsewhere since the codec was made).
Loader = Callable[[int], "tuple[str, bytes] | None"]


class Codec:
    """Encodes and decodes one store's objects with that store's dictionaries.

    Safe to share between threads: the zstd contexts, which are not, are kept
    per thread.
    """

    def __init__(
        self, dictionaries: Iterable[tuple[int, str, bytes]] = (), *, loader: Loader | None = None
    ) -> None:
        self._dictionaries: dict[int, zstandard.ZstdCompressionDict] = {}
        self._by_kind: dict[str, int] = {}  # kind -> the newest dictionary trained for it
        self._loader = loader
        self._local = threading.local()
        self._bases: OrderedDict[bytes, bytes] = OrderedDict()  # id -> canonical bytes
        self._bases_size = 0
        self._bases_lock = threading.Lock()
        for dict_id, kind, data in dictionaries:
            self.add_dictionary(dict_id, kind, data)

    def add_dictionary(self, dict_id: int, kind: str, data: bytes) -> None:
        """Make a stored dictionary known; the newest of a kind compresses new objects."""
        self._dictionaries[dict_id] = zstandard.ZstdCompressionDict(data)
        if dict_id >= self._by_kind.get(kind, 0):
            self._by_kind[kind] = dict_id

    def knows(self, dict_id: int) -> bool:
        """Whether the dictionary ``dict_id`` was added."""
        return dict_id in self._dictionaries

    def dictionary_for(self, kind: str) -> int | None:
        """The id of the dictionary new objects of ``kind`` are compressed with, if any."""
        return self._by_kind.get(kind)

    def next_dictionary_id(self) -> int:
        """An id no dictionary of this store has."""
        return max(self._dictionaries, default=FIRST_DICTIONARY_ID - 1) + 1

    # -- whole objects ----------------------------------------------------------

    def encode(self, kind: str, data: bytes) -> tuple[int, bytes]:
        """Return ``(codec, stored bytes)`` for an object written whole.

        Compressed with its kind's dictionary if there is one, or when its kind
        is text; kept raw when compressing does not make it smaller.
        """
        dict_id = self._by_kind.get(kind)
        if dict_id is None and kind not in ALWAYS_COMPRESSED:
            return RAW, data
        packed = self._compressor(dict_id or 0).compress(data)
        return (ZSTD, packed) if len(packed) < len(data) else (RAW, data)

    def _compressor(self, dict_id: int) -> zstandard.ZstdCompressor:
        cache = cast(dict[int, zstandard.ZstdCompressor], self._cache("compressors"))
        compressor = cache.get(dict_id)
        if compressor is None:
            dictionary = self._dictionaries[dict_id] if dict_id else None
            compressor = cache[dict_id] = zstandard.ZstdCompressor(
                level=LEVEL, dict_data=dictionary, write_checksum=False
            )
        return compressor

    def _decompressor(self, dict_id: int) -> zstandard.ZstdDecompressor:
        cache = cast(dict[int, zstandard.ZstdDecompressor], self._cache("decompressors"))
        decompressor = cache.get(dict_id)
        if decompressor is None:
            if dict_id and dict_id not in self._dictionaries and self._loader is not None:
                loaded = self._loader(dict_id)
                if loaded is not None:
                    self.add_dictionary(dict_id, *loaded)
            dictionary = self._dictionaries.get(dict_id) if dict_id else None
            if dict_id and dictionary is None:
                raise CorruptObjectError(f"an object names zstd dictionary {dict_id}, not stored")
            decompressor = cache[dict_id] = zstandard.ZstdDecompressor(
                dict_data=dictionary, max_window_size=1 << 27
            )
        return decompressor

    def _cache(self, name: str) -> dict[int, object]:
        """This thread's zstd contexts of one sort, by dictionary id."""
        cache = cast(dict[int, object] | None, getattr(self._local, name, None))
        if cache is None:
            cache = {}
            setattr(self._local, name, cache)
        return cache

    # -- deltas -------------------------------------------------------------------

    def encode_delta(self, data: bytes, base: bytes) -> bytes:
        """Return ``data`` as a zstd frame made with ``base`` as its raw-content dictionary."""
        dictionary = zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        return zstandard.ZstdCompressor(
            level=LEVEL, dict_data=dictionary, write_checksum=False, write_dict_id=False
        ).compress(data)

    def rewrites(
        self,
        plan: Iterable[tuple[bytes, bytes | None]],
        current: Mapping[bytes, StoredRow],
        canonical: Mapping[bytes, StoredObject],
    ) -> list[tuple[int, bytes, bytes | None, bytes]]:
        """The ``(codec, data, base, id)`` updates that make ``plan`` true of ``current``.

        ``plan`` lists ``(object, base)`` pairs (base None: whole), as
        :func:`changes` filtered them; ``canonical`` holds every object and base
        they name. A delta no smaller than the object compressed whole is not
        kept: the object is kept whole instead.
        """
        updates = []
        for oid, base in plan:
            kind, data = canonical[oid]
            encoding, stored = self.encode(kind, data)
            kept_base = None
            if base is not None and base in canonical:
                delta = self.encode_delta(data, canonical[base].data)
                if len(delta) < len(stored):
                    encoding, stored, kept_base = DELTA, delta, base
            if current[oid].codec == DELTA or kept_base is not None:
                updates.append((encoding, stored, kept_base, oid))
        return updates

    # -- reading ----------------------------------------------------------------------

    def decode(
        self, row: StoredRow, base: bytes | None = None, *, limit: int = MAX_OBJECT
    ) -> bytes:
        """Return the canonical bytes of ``row`` (``base``: its base's, for a delta).

        ``limit`` is the most bytes it may decode to: a frame that claims or
        makes more is refused before the memory is taken.

        Raises:
            CorruptObjectError: the stored bytes do not decode, or to more than ``limit``.
        """
        if row.codec == RAW:
            return row.data
        if row.codec == ZSTD:
            return self._unframe(row.kind, row.data, limit)
        if row.codec == DELTA and base is not None:
            dictionary = zstandard.ZstdCompressionDict(
                base, dict_type=zstandard.DICT_TYPE_RAWCONTENT
            )
            decompressor = zstandard.ZstdDecompressor(dict_data=dictionary)
            return _bounded(decompressor, row.kind, row.data, limit)
        raise CorruptObjectError(f"a stored {row.kind} has unknown encoding {row.codec}")

    def objects(self, rows: Iterable[Row], fetch: Fetch) -> dict[bytes, StoredObject]:
        """Decode stored ``(id, kind, data, codec, base)`` rows; deltas' bases through ``fetch``.

        The common rows, raw or one frame, take no more than a decompression.

        Raises:
            CorruptObjectError: as :meth:`resolve`.
        """
        out: dict[bytes, StoredObject] = {}
        deltas: dict[bytes, StoredRow] = {}
        for oid, kind, data, codec, base in rows:
            if codec == RAW:
                out[oid] = StoredObject(kind, data)
            elif codec == ZSTD:
                out[oid] = StoredObject(kind, self._unframe(kind, data))
            else:
                deltas[oid] = StoredRow(kind, data, codec, base)
        if deltas:
            out.update(self.resolve(deltas, fetch))
        return out

    def _unframe(self, kind: str, data: bytes, limit: int = MAX_OBJECT) -> bytes:
        try:
            params = zstandard.get_frame_parameters(data)
        except zstandard.ZstdError as exc:
            raise CorruptObjectError(f"a stored {kind} does not decompress: {exc}") from None
        return _bounded(self._decompressor(params.dict_id), kind, data, limit, params)

    def resolve(self, rows: Mapping[bytes, StoredRow], fetch: Fetch) -> dict[bytes, StoredObject]:
        """Decode ``rows``, reading the bases of deltas (and theirs) with ``fetch``.

        Raises:
            CorruptObjectError: a base is missing, a chain is longer than
                :data:`MAX_CHAIN` (or loops), or bytes do not decode.
        """
        known: dict[bytes, StoredRow] = dict(rows)
        decoded: dict[bytes, bytes] = {}
        for oid, row in rows.items():  # decoded before as the base of another: no chain to read
            if row.codec == DELTA and (cached := self._cached(oid)) is not None:
                decoded[oid] = cached
        wanted = [
            row.base
            for oid, row in rows.items()
            if row.codec == DELTA and row.base and oid not in decoded
        ]
        for _ in range(MAX_CHAIN + 1):
            missing = []
            for oid in dict.fromkeys(wanted):
                if oid in known or oid in decoded:
                    continue
                cached = self._cached(oid)
                if cached is None:
                    missing.append(oid)
                else:
                    decoded[oid] = cached
            if not missing:
                break
            found = fetch(missing)
            known.update(found)
            wanted = [
                base
                for oid in missing
                if oid in found and found[oid].codec == DELTA and (base := found[oid].base)
            ]
        for oid in rows:
            self._decode_chain(oid, known, decoded)
        for row in known.values():  # the bases this call decoded, for the next reader
            if row.codec == DELTA and row.base is not None and row.base in decoded:
                self._remember(row.base, decoded[row.base])
        return {oid: StoredObject(row.kind, decoded[oid]) for oid, row in rows.items()}

    def _decode_chain(
        self, oid: bytes, known: Mapping[bytes, StoredRow], decoded: dict[bytes, bytes]
    ) -> bytes:
        chain: list[bytes] = []
        at: bytes | None = oid
        while at is not None and at not in decoded:
            cached = self._cached(at)  # decoded before as the base of another
            if cached is not None:
                decoded[at] = cached
                break
            row = known.get(at)
            if row is None:
                raise CorruptObjectError(
                    f"object {chain[-1].hex()} is stored as a delta against {at.hex()},"
                    " which is missing; run contextfs verify"
                )
            chain.append(at)
            if len(chain) > MAX_CHAIN + 1:
                raise CorruptObjectError(
                    f"object {oid.hex()} is stored behind more than {MAX_CHAIN} deltas"
                )
            at = row.base if row.codec == DELTA else None
            if row.codec == DELTA and at is None:
                raise CorruptObjectError(f"object {chain[-1].hex()} is a delta without a base")
        for step in reversed(chain):
            row = known[step]
            decoded[step] = self.decode(row, decoded[row.base] if row.base else None)
        return decoded[oid]

    def _cached(self, oid: bytes) -> bytes | None:
        with self._bases_lock:
            data = self._bases.get(oid)
            if data is not None:
                self._bases.move_to_end(oid)
            return data

    def _remember(self, oid: bytes, data: bytes) -> None:
        with self._bases_lock:
            if oid in self._bases:
                return
            self._bases[oid] = data
            self._bases_size += len(data)
            while self._bases_size > BASE_CACHE_BYTES:
                _, dropped = self._bases.popitem(last=False)
                self._bases_size -= len(dropped)

    # -- dictionaries -----------------------------------------------------------------

    def train(
        self, kind: str, samples: list[bytes], held_out: list[bytes]
    ) -> tuple[int, bytes] | None:
        """Train a dictionary for ``kind``; return ``(id, bytes)`` if it pays on ``held_out``.

        It pays when compressing ``held_out`` with it takes at most :data:`PAYS`
        of the bytes the kind's current encoding takes.
        """
        if len(samples) < MIN_SAMPLES or not held_out:
            return None
        size = min(MAX_DICTIONARY, sum(map(len, samples)) // 8)
        try:
            trained = zstandard.train_dictionary(
                size, [*samples], dict_id=self.next_dictionary_id(), level=LEVEL
            )
        except zstandard.ZstdError:
            return None  # too few or too uniform samples to learn from
        with_it = zstandard.ZstdCompressor(level=LEVEL, dict_data=trained, write_checksum=False)
        proposed = sum(len(with_it.compress(data)) for data in held_out)
        current = sum(len(self.encode(kind, data)[1]) for data in held_out)
        if proposed > PAYS * current:
            return None
        return trained.dict_id(), trained.as_bytes()


def _bounded(
    decompressor: zstandard.ZstdDecompressor,
    kind: str,
    data: bytes,
    limit: int,
    params: zstandard.FrameParameters | None = None,
) -> bytes:
    """Decompress one frame to at most ``limit`` bytes, checking its claimed size first."""
    try:
        if params is None:
            params = zstandard.get_frame_parameters(data)
        claimed = params.content_size
        if claimed != zstandard.CONTENTSIZE_UNKNOWN and claimed > limit:
            raise CorruptObjectError(
                f"a {kind} claims {claimed} bytes, more than the {limit} allowed"
            )
        out = decompressor.decompress(data, max_output_size=limit)
    except zstandard.ZstdError as exc:
        raise CorruptObjectError(f"a {kind} does not decompress: {exc}") from None
    except MemoryError:
        raise CorruptObjectError(f"a {kind} does not decompress: out of memory") from None
    if len(out) > limit:
        raise CorruptObjectError(f"a {kind} decompresses to more than the {limit} allowed")
    return out


def changes(
    plan: Iterable[tuple[bytes, bytes | None]], current: Mapping[bytes, StoredRow]
) -> list[tuple[bytes, bytes | None]]:
    """The pairs of ``plan`` that ``current`` (the stored rows) does not already satisfy.

    Left out: objects not stored, erased ones, objects planned as their own
    base, wholes already whole, and deltas already on the planned base.
    """
    return [
        (oid, base)
        for oid, base in plan
        if oid != base
        and (row := current.get(oid)) is not None
        and row.data
        and (row.codec == DELTA or base is not None)
        and (row.codec != DELTA or row.base != base)
    ]


def walk_deltas(
    codec: Codec,
    pairs: Iterable[tuple[bytes, bytes]],
    fetch: Fetch,
    wholes: Callable[[list[bytes]], Mapping[bytes, StoredObject]],
) -> Iterator[tuple[bytes, str, bytes]]:
    """Decode every delta of a store once each, bases first: a pass over all of them.

    ``pairs`` are the stored ``(delta, base)`` ids; ``fetch`` reads delta rows
    and ``wholes`` the objects chains start from. Level by level down the
    chains, each delta is decoded with its base's bytes from the level above,
    so a full pass costs one decode per delta, not one per delta per link.

    Raises:
        CorruptObjectError: a chain starts from nothing stored, loops, or is
            longer than :data:`MAX_CHAIN`.
    """
    children: dict[bytes, list[bytes]] = {}
    deltas: set[bytes] = set()
    for oid, base in pairs:
        children.setdefault(base, []).append(oid)
        deltas.add(oid)
    roots = [base for base in children if base not in deltas]
    seen = 0
    level: dict[bytes, bytes] = {}
    for start in range(0, len(roots), BATCH_IDS):
        chunk = roots[start : start + BATCH_IDS]
        found = wholes(chunk)
        for root in chunk:
            if root not in found:
                raise CorruptObjectError(
                    f"object {children[root][0].hex()} is stored as a delta against"
                    f" {root.hex()}, which is missing; run contextfs verify"
                )
            level[root] = found[root].data
    for _ in range(MAX_CHAIN):
        below = [child for base in level for child in children.get(base, ())]
        if not below:
            break
        next_level: dict[bytes, bytes] = {}
        for start in range(0, len(below), BATCH_IDS):
            chunk = below[start : start + BATCH_IDS]
            rows = fetch(chunk)
            for oid in chunk:
                row = rows[oid]
                data = codec.decode(row, level.get(row.base) if row.base else None)
                seen += 1
                if oid in children:
                    next_level[oid] = data
                yield oid, row.kind, data
        level = next_level
    if seen != len(deltas):
        raise CorruptObjectError(
            f"{len(deltas) - seen} objects are stored as deltas in chains that loop or run"
            f" past {MAX_CHAIN}; run contextfs verify"
        )


class Learner:
    """The atoms a store object writes while the store has no atom dictionary.

    Once :data:`AUTO_TRAIN` of them have been written, in one bulk ingest or
    over many small commits, they are the sample the store's first dictionary
    is trained on: every later atom is then smaller and faster to write and to
    read, long before the first gc. One attempt per store object (again after
    a rollback, which may have undone it).
    """

    def __init__(self) -> None:
        self.sample: list[bytes] = []
        self.tried = False

    def offer(self, codec: Codec, rows: Iterable[tuple[bytes, str, bytes]]) -> list[bytes]:
        """Note a write's atoms; return the sample to train on once there is enough."""
        if self.tried or codec.dictionary_for(ATOM) is not None:
            return []
        room = AUTO_SAMPLES - len(self.sample)
        self.sample += [data for _, kind, data in rows if kind == ATOM and data][:room]
        if len(self.sample) < AUTO_TRAIN:
            return []
        sample, self.sample, self.tried = self.sample, [], True
        return sample

    def reset(self) -> None:
        """Forget the attempt (its transaction rolled back)."""
        self.sample, self.tried = [], False


def split_sample(sample: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Split a sample into what a dictionary learns from and what judges it (3 to 1)."""
    cut = len(sample) * 3 // 4
    return sample[:cut], sample[cut:]


__all__ = [
    "CODECS",
    "DELTA",
    "MAX_CHAIN",
    "RAW",
    "ZSTD",
    "Codec",
    "Fetch",
    "Learner",
    "Loader",
    "Row",
    "StoredRow",
    "changes",
    "split_sample",
    "walk_deltas",
]
