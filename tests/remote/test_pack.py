"""Packs: the documented format, round trips, and packs cut or damaged anywhere refused whole."""

from __future__ import annotations

import hashlib
import re
import struct
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contextfs import MemoryAtom, Repository, TypeSignature
from contextfs.errors import CorruptObjectError, InvalidInputError
from contextfs.integrity.fsck import identify
from contextfs.model.ids import from_hex
from contextfs.remote import sync
from contextfs.remote.objects import RefUpdate
from contextfs.remote.pack import (
    MAGIC,
    end_record,
    leb128,
    pack_history,
    read_pack,
    receive_pack,
    record,
    write_pack,
)
from contextfs.server import handlers
from contextfs.store.codec import Codec
from contextfs.wire.messages import RefUpdateSpec, UpdateRefs

FORMAT = Path(__file__).parents[2] / "docs" / "FORMAT.md"
FACT = TypeSignature("Fact")


def pack_vectors() -> dict[str, dict[str, list[str]]]:
    block = FORMAT.read_text().split("```pack-vectors\n", 1)[1].split("```", 1)[0]
    vectors: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in block.splitlines():
        match = re.fullmatch(r"\s+(\w+)\s+([0-9a-f]+)", line)
        if match:
            current.setdefault(match.group(1), []).append(match.group(2))
        else:
            current = vectors[line.strip()] = {}
    return vectors


def test_the_documented_packs_decode_and_the_body_is_what_the_writer_makes() -> None:
    vectors = pack_vectors()
    whole = vectors["records"]
    rows = list(read_pack([bytes.fromhex(whole["pack"][0])]))
    named = [(identify(kind, data)[0] if data else oid, kind) for oid, kind, data in rows]
    assert [(oid.hex() if oid else None, kind) for oid, kind in named] == [
        (whole["atom"][0], "atom"),
        (whole["tree"][0], "tree"),
        (whole["commit"][0], "commit"),
        (whole["purged"][0], "atom"),
    ]
    assert [oid for oid, _, _ in rows][:3] == [None, None, None]  # ids are the receiver's
    assert rows[3][2] == b""  # the purged atom: named, empty
    records = [record(kind, data, oid=oid) for (oid, kind, data) in rows]
    body = b"".join(records)
    body += end_record(len(records), hashlib.sha256(body).digest())
    assert body.hex() == whole["body"][0]
    ours = b"".join(write_pack(records))
    assert ours.startswith(MAGIC)
    frame = zstandard.ZstdDecompressor().decompressobj().decompress(ours[len(MAGIC) :])
    assert frame.hex() == whole["body"][0]
    delta = vectors["delta"]
    base = bytes.fromhex(delta["base"][0])
    with pytest.raises(CorruptObjectError, match="not stored here"):
        list(read_pack([bytes.fromhex(delta["pack"][0])], lambda ids: {}))
    held = next(data for _, kind, data in rows if kind == "tree")
    assert identify("tree", held)[0] == base
    decoded = list(read_pack([bytes.fromhex(delta["pack"][0])], lambda ids: {base: held}))
    assert [(oid, kind) for oid, kind, _ in decoded] == [(None, "tree"), (None, "tree")]
    assert [data.hex() for _, _, data in decoded] == delta["data"]
    assert [identify("tree", data)[0].hex() for _, _, data in decoded] == delta["tree"]


OBJECTS = st.lists(
    st.tuples(
        st.sampled_from(["atom", "tree", "commit", "molecule", "context", "purge"]),
        st.binary(max_size=600),
        st.integers(min_value=-1, max_value=8),  # a held object to be a delta of, or none
    ),
    max_size=20,
)
HELD = [hashlib.sha512(b"held %d" % n).digest() * (n + 1) for n in range(9)]
HELD_IDS = [hashlib.sha256(data).digest() for data in HELD]


@given(objects=OBJECTS, split=st.integers(min_value=1, max_value=50))
def test_any_records_round_trip_in_any_parts(
    objects: list[tuple[str, bytes, int]], split: int
) -> None:
    codec = Codec()
    records, expected = [], []
    for n, (kind, data, base_at) in enumerate(objects):
        if base_at >= 0:
            delta = codec.encode_delta(data, HELD[base_at])
            records.append(record(kind, delta, base=HELD_IDS[base_at]))
        elif expected and n % 2:  # against the record before it
            delta = codec.encode_delta(data, expected[-1][2])
            records.append(record(kind, delta, back=1))
        else:
            records.append(record(kind, data))
        expected.append((None, kind, data))
    pack = b"".join(write_pack(records))
    parts = [pack[start : start + split] for start in range(0, len(pack), split)]
    held = dict(zip(HELD_IDS, HELD, strict=True))
    assert list(read_pack(parts, lambda ids: {i: held[i] for i in ids if i in held})) == expected


def history(folder: Path, rounds: int) -> Repository:
    repo = Repository.init(folder, embedder="none")
    for n in range(rounds):
        repo.add_atoms(
            [
                MemoryAtom(
                    f"Round {n}, note {k}: the agent moved the {k}th review to Friday.", FACT
                )
                for k in range(9)
            ]
        )
        repo.commit(f"round {n}")
    return repo


def objects_of(repo: Repository) -> dict[bytes, tuple[str, bytes]]:
    return {oid: (kind, data) for oid, kind, data in repo.store.iter_objects()}


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rounds=st.integers(min_value=1, max_value=12), known=st.integers(min_value=0, max_value=12))
def test_a_history_packed_against_what_the_receiver_has_lands_whole(
    tmp_path_factory: pytest.TempPathFactory, rounds: int, known: int
) -> None:
    work = tmp_path_factory.mktemp("pack")
    with history(work / "origin", rounds) as origin:
        heads = [info.id for info in origin.log()][::-1]
        with Repository.init(work / "copy", embedder="none") as copy:
            have = min(known, rounds) - 1
            updates = []
            if have >= 0:  # the receiver first holds an older commit, got by its own pack
                receive_pack(
                    copy.store, pack_history(origin.store, [from_hex(heads[have])], []), []
                )
            head = str(heads[-1])
            haves = [from_hex(heads[have])] if have >= 0 else []
            pack = b"".join(pack_history(origin.store, [from_hex(head)], haves))
            updates = [RefUpdate("refs/heads/main", None, head)]
            received = receive_pack(copy.store, [pack], updates)
            assert (received.objects > 0) == (have < rounds - 1)  # empty when it has the head
            assert objects_of(copy) == objects_of(origin)  # everything, and nothing else
            assert copy.verify().ok


def test_deltas_make_the_pack_a_fraction_of_the_objects(tmp_path: Path) -> None:
    with history(tmp_path / "origin", 30) as origin:
        pack = b"".join(pack_history(origin.store, [from_hex(str(origin.head()))], []))
        raw = sum(len(data) for _, _, data in origin.store.iter_objects())
        assert len(pack) < raw / 3


def state(repo: Repository) -> tuple[dict[bytes, tuple[str, bytes]], dict[str, str]]:
    return objects_of(repo), repo.store.list_refs()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.floats(min_value=0.0, max_value=1.0, exclude_max=True), flip=st.booleans())
def test_a_pack_cut_or_damaged_anywhere_leaves_the_receiver_as_it_was(
    tmp_path_factory: pytest.TempPathFactory, cut: float, flip: bool
) -> None:
    work = tmp_path_factory.mktemp("cut")
    with history(work / "origin", 4) as origin, Repository.init(work / "copy") as copy:
        head = str(origin.head())
        pack = b"".join(pack_history(origin.store, [from_hex(head)], []))
        at = int(cut * len(pack))
        damaged = pack[:at] + bytes([pack[at] ^ 0x5A]) + pack[at + 1 :] if flip else pack[:at]
        before = state(copy)
        with pytest.raises(CorruptObjectError):
            receive_pack(copy.store, [damaged], [RefUpdate("refs/heads/main", None, head)])
        assert state(copy) == before
        assert copy.verify().ok


def test_malformed_packs_are_refused_in_one_line(tmp_path: Path) -> None:
    oid = hashlib.sha256(b"x").digest()

    def pack_of(body: bytes) -> bytes:
        return MAGIC + zstandard.ZstdCompressor().compress(body)

    def ended(records: bytes, count: int) -> bytes:
        return pack_of(records + end_record(count, hashlib.sha256(records).digest()))

    one = record("atom", b"data")
    end = end_record(1, hashlib.sha256(one).digest())
    tree = record("tree", b"t" * 100)
    # A frame that claims 32 TiB: refused before any memory is taken.
    claim = b"\x28\xb5\x2f\xfd\xe0" + struct.pack("<Q", 1 << 45) + b"\x09\x00\x00x"
    # A small delta that would make 65 MiB: refused, however well it compresses.
    bomb = zstandard.ZstdCompressor().compress(bytes(65 * 1024 * 1024))
    zero = bytes([0x21]) + leb128(0) + leb128(4) + b"data"  # a delta of itself
    both = bytes([0xA1]) + oid + leb128(1) + leb128(4) + b"data"  # two kinds of delta
    assert list(read_pack([pack_of(one + end)])) == [(None, "atom", b"data")]
    delta = record("tree", b"delta", base=oid)  # against an object not held
    early = record("tree", b"delta", back=1)  # against a record before the first
    cases = {
        b"not a pack": "not a ContextFS pack",
        pack_of(bytes([0x09, 0x00]) + end): "unknown kind",
        pack_of(one + end + b"\x00"): "after its end record",
        pack_of(one + end_record(2, hashlib.sha256(one).digest())): "does not match",
        pack_of(bytes([0x01]) + b"\xff\xff\xff\xff\x7f"): "too large",
        pack_of(delta + end_record(1, hashlib.sha256(delta).digest())): "not stored here",
        pack_of(early + end_record(1, hashlib.sha256(early).digest())): "too far back",
        pack_of(one): "ended early",
        ended(tree + record("tree", claim, back=1), 2): "claims",
        ended(tree + record("tree", bomb, back=1), 2): "claims|more than",
        ended(zero, 1): "against itself",
        ended(both, 1): "two kinds of delta",
        MAGIC + b"\x28\xb5\x2f\xfd garbage": "does not decompress|ended early",
    }
    for pack, message in cases.items():
        with pytest.raises(CorruptObjectError, match=message):
            list(read_pack([pack]))


def test_an_uploaded_pack_spills_to_disk_and_goes_with_the_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(handlers, "PACK_IN_MEMORY", 1024)
    uploads = handlers.Uploads(limit=1 << 20)
    assert uploads.add_pack(b"x" * 800) == 800
    assert uploads.pack is not None
    assert not uploads.pack._rolled  # still in memory
    assert uploads.add_pack(b"y" * 800) == 1600
    assert uploads.pack._rolled  # now a temporary file
    rows, pack = uploads.take()
    assert rows == []
    assert pack is not None
    with pack:
        assert pack.read() == b"x" * 800 + b"y" * 800
    uploads.add_pack(b"z")
    held = uploads.pack
    uploads.clear()  # what the server does when the connection ends
    assert held is not None
    assert held.closed
    with pytest.raises(Exception, match="limit"):
        uploads.add_pack(b"w" * (2 << 20))


def test_clone_and_fetch_carry_packs_far_smaller_than_the_objects(tmp_path: Path) -> None:
    with history(tmp_path / "origin", 20) as origin:
        url = str(tmp_path / "origin")
        with sync.clone(url, tmp_path / "copy") as copy:
            raw = sum(len(data) for _, _, data in copy.store.iter_objects())
            for n in range(3):
                origin.add_atoms([MemoryAtom(f"later note {n}", FACT)])
                origin.commit(f"later {n}")
            fetched = sync.fetch(copy, "origin")
            assert 0 < fetched.bytes < 4000
            assert fetched.objects >= 3 + 3
            assert objects_of(copy).keys() >= objects_of(origin).keys()
        clone_bytes = sync.clone(url, tmp_path / "again")
        with clone_bytes as again:
            assert again.verify().ok
    assert raw > 0


def test_a_pushed_pack_that_unpacks_past_the_limit_is_refused(tmp_path: Path) -> None:
    with history(tmp_path / "origin", 10) as origin, Repository.init(tmp_path / "server") as server:
        head = str(origin.head())
        pack = b"".join(pack_history(origin.store, [from_hex(head)], []))
        unpacked = sum(len(data) for _, _, data in read_pack([pack]))
        assert unpacked > 2 * len(pack)
        uploads = handlers.Uploads(limit=2 * len(pack))
        uploads.add_pack(pack)  # under the limit on the wire, twice over it unpacked
        before = state(server)
        request = UpdateRefs(updates=[RefUpdateSpec(name="refs/heads/main", new=head)])
        with pytest.raises(InvalidInputError, match="unpacks to more than"):
            handlers.update_refs(server, uploads, request)
        assert state(server) == before
        uploads.close()
        with pytest.raises(InvalidInputError, match="has ended"):
            uploads.add_pack(b"more")
