"""How objects are kept at rest: zstd frames, trained dictionaries and deltas (store.codec)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from contextfs.errors import CorruptObjectError, StoreError
from contextfs.store import SqliteStore
from contextfs.store.base import StoredObject
from contextfs.store.codec import DELTA, MAX_CHAIN, RAW, ZSTD, Codec, StoredRow, changes
from contextfs.store.sqlite import MIGRATIONS
from contextfs.testing.store_contract import prose

TEXT = b"The user prefers answers that cite the documentation of the standard library. " * 4


def no_fetch(ids: list[bytes]) -> dict[bytes, StoredRow]:
    raise AssertionError(f"nothing should be fetched, asked for {len(ids)}")


def test_text_is_compressed_and_ids_and_incompressible_bytes_are_not() -> None:
    codec = Codec()
    encoding, stored = codec.encode("atom", TEXT)
    assert encoding == ZSTD
    assert len(stored) < len(TEXT) // 3
    assert codec.decode(StoredRow("atom", stored, encoding, None)) == TEXT
    ids = hashlib.sha256(b"x").digest() * 8
    assert codec.encode("atom", ids[:40]) == (RAW, ids[:40])  # would not shrink
    assert codec.encode("tree", TEXT) == (RAW, TEXT)  # no dictionary: left whole


@given(data=st.binary(max_size=3000), base=st.binary(max_size=3000))
def test_any_delta_decodes_to_the_bytes_it_was_made_from(data: bytes, base: bytes) -> None:
    codec = Codec()
    delta = codec.encode_delta(data, base)
    assert codec.decode(StoredRow("tree", delta, DELTA, b"b" * 32), base) == data


def test_a_near_copy_costs_a_few_bytes_as_a_delta() -> None:
    base = b"".join(hashlib.sha256(b"%d" % i).digest() for i in range(30))
    data = base[:480] + hashlib.sha256(b"new").digest() + base[480:]
    delta = Codec().encode_delta(data, base)
    assert len(delta) < 60 < len(data) // 10


def chain(length: int) -> tuple[dict[bytes, StoredRow], list[bytes], list[bytes]]:
    """``length`` versions, each a delta against the next; the last is whole."""
    codec = Codec()
    bodies = [b"version %d " % n + TEXT[: 50 + n] for n in range(length)]
    ids = [hashlib.sha256(body).digest() for body in bodies]
    rows = {ids[-1]: StoredRow("tree", bodies[-1], RAW, None)}
    for n in range(length - 1):
        rows[ids[n]] = StoredRow(
            "tree", codec.encode_delta(bodies[n], bodies[n + 1]), DELTA, ids[n + 1]
        )
    return rows, ids, bodies


def test_resolve_follows_a_chain_through_bases_fetched_on_demand() -> None:
    rows, ids, bodies = chain(12)
    asked: list[list[bytes]] = []

    def fetch(wanted: list[bytes]) -> dict[bytes, StoredRow]:
        asked.append(wanted)
        return {oid: rows[oid] for oid in wanted}

    codec = Codec()
    assert codec.resolve({ids[0]: rows[ids[0]]}, fetch) == {ids[0]: StoredObject("tree", bodies[0])}
    assert len(asked) == 11  # one base per round, down the chain
    # The bases are remembered: the next reader of the chain fetches nothing.
    assert codec.resolve({ids[1]: rows[ids[1]]}, no_fetch)[ids[1]].data == bodies[1]


def test_missing_bases_overlong_chains_and_bad_frames_are_corruption() -> None:
    rows, ids, _ = chain(3)
    with pytest.raises(CorruptObjectError, match="which is missing"):
        Codec().resolve({ids[0]: rows[ids[0]]}, lambda wanted: {})
    long_rows, long_ids, _ = chain(MAX_CHAIN + 3)
    with pytest.raises(CorruptObjectError, match="more than"):
        Codec().resolve(
            {long_ids[0]: long_rows[long_ids[0]]}, lambda w: {o: long_rows[o] for o in w}
        )
    with pytest.raises(CorruptObjectError, match="does not decompress"):
        Codec().decode(StoredRow("atom", b"\x28\xb5\x2f\xfd garbage", ZSTD, None))
    with pytest.raises(CorruptObjectError, match="unknown encoding"):
        Codec().decode(StoredRow("atom", b"x", 9, None))


def test_a_frame_naming_an_unknown_dictionary_is_loaded_or_refused() -> None:
    samples = [data for _, _, data in prose(1200)]
    trained = Codec().train("atom", samples[:900], samples[900:])
    assert trained is not None
    dict_id, dictionary = trained
    writer = Codec([(dict_id, "atom", dictionary)])
    encoding, stored = writer.encode("atom", samples[0])
    assert zstandard.get_frame_parameters(stored).dict_id == dict_id
    reader = Codec(loader=lambda wanted: ("atom", dictionary) if wanted == dict_id else None)
    assert reader.decode(StoredRow("atom", stored, encoding, None)) == samples[0]
    with pytest.raises(CorruptObjectError, match=f"dictionary {dict_id}"):
        Codec().decode(StoredRow("atom", stored, encoding, None))


def test_a_dictionary_that_does_not_pay_is_not_kept() -> None:
    noise = [
        b"".join(hashlib.sha256(b"%d %d" % (n, k)).digest() for k in range(4)) for n in range(400)
    ]
    assert Codec().train("tree", noise[:300], noise[300:]) is None
    assert Codec().train("atom", [TEXT] * 10, [TEXT]) is None  # too few samples


def test_changes_leaves_out_what_is_already_so() -> None:
    a, b, c, gone = (bytes([n]) * 32 for n in range(4))
    current = {
        a: StoredRow("tree", b"x", RAW, None),
        b: StoredRow("tree", b"y", DELTA, a),
        c: StoredRow("tree", b"", RAW, None),  # erased
    }
    plan = [(a, None), (b, a), (a, b), (b, None), (c, a), (gone, a), (a, a)]
    assert changes(plan, current) == [(a, b), (b, None)]


def test_a_store_of_the_previous_schema_migrates_and_its_raw_objects_read(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with sqlite3.connect(path) as conn:  # the schema as step 4 left it, objects stored raw
        conn.execute(
            "CREATE TABLE schema_migrations (step INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at TEXT NOT NULL)"
        )
        for step, name, statements in MIGRATIONS[:4]:
            for sql in statements:
                conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 'then')", (step, name))
        conn.execute(
            "INSERT INTO objects (id, kind, data) VALUES (?, 'atom', ?)", (b"a" * 32, TEXT)
        )
    with SqliteStore.open(path) as store:
        assert store.get_object(b"a" * 32) == StoredObject("atom", TEXT)
        store.put_objects([(b"b" * 32, "atom", TEXT + b"!")])
        assert store.get_object(b"b" * 32) == StoredObject("atom", TEXT + b"!")
    with sqlite3.connect(path) as conn:
        steps = [row[0] for row in conn.execute("SELECT step FROM schema_migrations ORDER BY step")]
        rows = dict(conn.execute("SELECT id, codec FROM objects").fetchall())
    assert steps == [step for step, _, _ in MIGRATIONS]
    assert rows == {b"a" * 32: RAW, b"b" * 32: ZSTD}  # old rows stay as they were until gc


def dictionaries(path: Path) -> tuple[int, list[str]]:
    with sqlite3.connect(path) as conn:
        (count,) = conn.execute("SELECT count(*) FROM dictionaries").fetchone()
        keys = [row[0] for row in conn.execute("SELECT key FROM meta ORDER BY key")]
    conn.close()
    return count, keys


def test_a_bulk_write_of_text_learns_a_dictionary_and_of_noise_remembers_it_did_not_pay(
    tmp_path: Path,
) -> None:
    text = tmp_path / "text.db"
    with SqliteStore.open(text, create=True) as store:
        store.put_objects(prose(1500))
    assert dictionaries(text) == (1, ["format"])
    noise = tmp_path / "noise.db"
    rows = [
        (hashlib.sha256(b"n%d" % n).digest(), "atom", hashlib.sha512(b"%d" % n).digest())
        for n in range(1500)
    ]
    with SqliteStore.open(noise, create=True) as store:
        store.put_objects(rows)
    assert dictionaries(noise) == (0, ["atom_dictionary_unpaid", "format"])
    with SqliteStore.open(noise) as store:  # another process does not try again
        store.put_objects(prose(1500))
        assert store.get_objects([oid for oid, _, _ in rows[:3]]) == {
            oid: StoredObject(kind, data) for oid, kind, data in rows[:3]
        }
    assert dictionaries(noise)[0] == 0


def test_a_dictionary_from_a_write_that_failed_is_not_used_after(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    SqliteStore.open(path, create=True).close()
    with sqlite3.connect(path) as conn:  # the bulk write fails where its dictionary is stored
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON dictionaries"
            " BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    conn.close()
    later = prose(20, tag="later ")
    with SqliteStore.open(path) as store:
        with pytest.raises(StoreError, match="disk full"):
            store.put_objects(prose(1500))
        store.put_objects(later)  # must not be compressed with the dictionary never stored
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER refuse")
    conn.close()
    with SqliteStore.open(path) as store:
        assert store.get_objects([oid for oid, _, _ in later]) == {
            oid: StoredObject(kind, data) for oid, kind, data in later
        }
        store.put_objects(prose(1500, tag="again "))  # a bulk write may train once more
    assert dictionaries(path)[0] == 1
