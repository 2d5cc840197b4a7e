"""Op entries: content-addressed ids, strict checking, safe session ids, context ops."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from contextfs.errors import InvalidInputError
from contextfs.model.objects import MemoryAtom, MemoryMolecule
from contextfs.model.types import TypeSignature
from contextfs.oplog import (
    add_atom_op,
    add_molecule_op,
    check_session_id,
    make_op_entry,
    remove_atom_op,
    set_fields_op,
)
from contextfs.oplog.context_ops import check_context_op
from contextfs.oplog.entry import (
    check_entry,
    compute_op_id,
    decode_line,
    encode_line,
    merge_key,
    restamp,
)

ID = "ab" * 32


def test_op_id_is_sha256_of_the_canonical_identity_as_format_md_says() -> None:
    entry = make_op_entry("alice", "context", {"op": "remove_atom", "id": ID}, 7)
    identity = (
        '{"actor_id":"alice","domain":"context","domain_op":{"id":"' + ID + '",'
        '"op":"remove_atom"},"intent_id":"","lamport_ts":7,"parent_op_ids":[],'
        '"payload_salt":"' + entry["payload_salt"] + '","reservation_id":""}'
    )
    assert entry["op_id"] == hashlib.sha256(identity.encode()).hexdigest()


def test_the_format_md_vector_matches_the_code() -> None:
    text = (Path(__file__).parents[2] / "docs" / "FORMAT.md").read_text(encoding="utf-8")
    block = text.split("```oplog-vector\n", 1)[1].split("```", 1)[0]
    fields = dict(line.split(maxsplit=1) for line in block.splitlines())
    identity = json.loads(fields["identity"])
    assert hashlib.sha256(fields["identity"].encode()).hexdigest() == fields["op_id"]
    del identity["parent_op_ids"]
    entry = make_op_entry(**identity)
    assert entry["op_id"] == fields["op_id"]


def test_op_id_ignores_created_at_and_parent_order() -> None:
    salt = "5a" * 16
    a = make_op_entry("a", "x", {"k": 1}, 3, parent_op_ids=["1" * 64, "2" * 64], payload_salt=salt)
    b = make_op_entry("a", "x", {"k": 1}, 3, parent_op_ids=["2" * 64, "1" * 64], payload_salt=salt)
    assert a["op_id"] == b["op_id"]
    other = make_op_entry("a", "x", {"k": 2}, 3, payload_salt=salt)
    assert other["op_id"] != a["op_id"]
    unsalted = make_op_entry("a", "x", {"k": 1}, 3, parent_op_ids=["1" * 64, "2" * 64])
    assert unsalted["op_id"] != a["op_id"]  # a fresh random salt each time


def test_every_identity_field_changes_the_id() -> None:
    base = {
        "actor_id": "a",
        "domain": "d",
        "domain_op": {"k": 1},
        "lamport_ts": 1,
        "parent_op_ids": [],
        "intent_id": "",
        "reservation_id": "",
    }
    first = compute_op_id(**base)  # type: ignore[arg-type]
    for field, value in [
        ("actor_id", "b"),
        ("domain", "e"),
        ("domain_op", {"k": 2}),
        ("lamport_ts", 2),
        ("parent_op_ids", ["1" * 64]),
        ("intent_id", "i"),
        ("reservation_id", "r"),
    ]:
        assert compute_op_id(**{**base, field: value}) != first, field  # type: ignore[arg-type]


def test_lines_round_trip_and_text_cannot_fake_a_line_boundary() -> None:
    entry = make_op_entry("a\u00e9", "x", {"text": 'evil"}\n{"op_id":"x"}\r\u2028'}, 5)
    line = encode_line(entry)
    assert line.count(b"\n") == 1
    assert line.endswith(b"\n")
    assert decode_line(line[:-1], verify_id=True) == entry
    assert json.loads(line) == entry


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"actor_id": ""}, "actor_id"),
        ({"actor_id": "two\nlines"}, "actor_id"),
        ({"actor_id": "x" * 300}, "actor_id"),
        ({"domain": "Has Space"}, "domain"),
        ({"lamport_ts": 0}, "lamport_ts"),
        ({"lamport_ts": True}, "lamport_ts"),
        ({"lamport_ts": 2**63}, "lamport_ts"),
        ({"parent_op_ids": ["nothex"]}, "parent"),
        ({"parent_op_ids": ["1" * 64, "1" * 64]}, "twice"),
        ({"domain_op": [1]}, "domain_op"),
        ({"domain_op": {"x": float("nan")}}, "non-finite"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"intent_id": 3}, "intent_id"),
    ],
)
def test_malformed_fields_are_refused_naming_the_field(
    change: dict[str, object], message: str
) -> None:
    entry = dict(make_op_entry("a", "x", {"k": 1}, 1))
    entry.update(change)
    with pytest.raises(InvalidInputError, match=message):
        check_entry(entry, verify_id=False)


def test_an_altered_op_no_longer_matches_its_id() -> None:
    entry = dict(make_op_entry("a", "x", {"k": 1}, 1))
    entry["domain_op"] = {"k": 2}
    with pytest.raises(InvalidInputError, match="does not match its content"):
        check_entry(entry)
    entry = dict(make_op_entry("a", "x", {"k": 1}, 1))
    entry["surprise"] = 1
    with pytest.raises(InvalidInputError, match="unknown field"):
        check_entry(entry)
    del entry["surprise"], entry["created_at"]
    with pytest.raises(InvalidInputError, match="lacks field"):
        check_entry(entry)


def test_bad_json_lines_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        decode_line(b'{"op_id": ')


@pytest.mark.parametrize(
    "session",
    ["", "..", "../x", "a/b", "a\x00b", "x" * 129, ".hidden", "-flag", "a..b", "s.lock", "é", 3],
)
def test_unsafe_session_ids_are_refused(session: object) -> None:
    with pytest.raises(InvalidInputError):
        check_session_id(session)


@pytest.mark.parametrize("session", ["s1", "agent-run_2026.11.22", "A", "x" * 128])
def test_safe_session_ids_pass(session: str) -> None:
    assert check_session_id(session) == session


def test_restamp_moves_the_stamp_and_renames_the_op() -> None:
    entry = make_op_entry("a", "x", {"k": 1}, 1)
    moved = restamp(entry, 9, ["3" * 64])
    assert moved["lamport_ts"] == 9
    assert moved["parent_op_ids"] == ["3" * 64]
    assert moved["op_id"] != entry["op_id"]
    assert check_entry(moved) == moved


def test_merge_key_orders_by_stamp_then_actor_then_id() -> None:
    ops = [
        make_op_entry("b", "x", {}, 2),
        make_op_entry("a", "x", {}, 2),
        make_op_entry("z", "x", {}, 1),
    ]
    ordered = sorted(ops, key=merge_key)
    assert [(e["lamport_ts"], e["actor_id"]) for e in ordered] == [(1, "z"), (2, "a"), (2, "b")]


# -- context ops ----------------------------------------------------------------------


def test_context_op_builders_make_checked_ops() -> None:
    op = add_atom_op("User prefers tea", "Preference", relevance=0.5, tags=["b", "a"])
    assert op["op"] == "add_atom"
    assert op["tags"] == ["b", "a"]
    assert remove_atom_op(ID) == {"op": "remove_atom", "id": ID}
    assert set_fields_op(ID, relevance=0.2)["fields"] == {"relevance": 0.2}
    atoms = (MemoryAtom("a", TypeSignature("Fact")), MemoryAtom("b", TypeSignature("Fact")))
    molecule = MemoryMolecule(atoms, {"supports": [(0, 1)]})
    check_context_op(add_molecule_op(molecule))


@pytest.mark.parametrize(
    ("op", "message"),
    [
        ({"op": "explode"}, "one of"),
        ({"op": "add_atom"}, "content"),
        ({"op": "add_atom", "content": "x", "type": "List["}, "type signature"),
        ({"op": "add_atom", "content": "x", "relevance": 2}, "relevance"),
        ({"op": "add_atom", "content": "x", "relevance": "high"}, "relevance"),
        ({"op": "add_atom", "content": "x", "tags": "notalist"}, "tags"),
        ({"op": "add_atom", "content": "x", "timestamp": 1.5}, "timestamp"),
        ({"op": "add_atom", "content": "x", "colour": "red"}, "unknown"),
        ({"op": "remove_atom", "id": "abc"}, "64-digit"),
        ({"op": "set_fields", "id": ID, "fields": {}}, "non-empty"),
        ({"op": "set_fields", "id": ID, "fields": {"content": "new"}}, "cannot set"),
        ({"op": "set_fields", "id": ID, "fields": {"relevance": -1}}, "relevance"),
        ({"op": "add_molecule", "atoms": []}, "non-empty"),
        ({"op": "add_molecule", "atoms": [{"content": "a"}], "relations": {"r": [[0, 5]]}}, "edge"),
    ],
)
def test_malformed_context_ops_are_refused(op: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        check_context_op(op)
