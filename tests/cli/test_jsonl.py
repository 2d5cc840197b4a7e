"""The import/export line format as pure functions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from contextfs.cli.jsonl import ImportLineError, decode_line, encode_atom, read_atoms
from contextfs.model.objects import MemoryAtom
from contextfs.model.types import Kind, TypeSignature

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def decode(text: str) -> MemoryAtom:
    atom = decode_line(text, 7, now=NOW)
    assert atom is not None
    return atom


def test_minimal_line_takes_the_defaults() -> None:
    atom = decode('{"content": "The user likes tea."}')
    assert atom == MemoryAtom("The user likes tea.", TypeSignature("String"), NOW)
    assert atom.relevance_score == 1.0
    assert atom.tags == ()
    assert atom.abstract is None


def test_every_field() -> None:
    atom = decode(
        json.dumps(
            {
                "content": "Deploy on Fridays is banned.",
                "type": "List[String]",
                "relevance": 0.25,
                "source": "meeting-42",
                "tags": ["ops", "policy"],
                "timestamp": "2024-02-03T04:05:06.123456+02:00",
                "abstract": "no Friday deploys",
                "overview": "Ops policy since February.",
            }
        )
    )
    assert str(atom.type_sig) == "List[String]"
    assert atom.relevance_score == 0.25
    assert atom.source_hash == "meeting-42"
    assert atom.tags == ("ops", "policy")
    assert atom.timestamp == datetime(2024, 2, 3, 2, 5, 6, 123456, tzinfo=UTC)
    assert (atom.abstract, atom.overview) == ("no Friday deploys", "Ops policy since February.")


def test_naive_timestamp_is_utc() -> None:
    atom = decode('{"content": "x", "timestamp": "2024-01-01T00:00:00"}')
    assert atom.timestamp == datetime(2024, 1, 1, tzinfo=UTC)


def test_blank_lines_are_skipped() -> None:
    assert decode_line("   ", 1, now=NOW) is None
    assert decode_line(b"", 1, now=NOW) is None


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"\xff\xfe", "line 7: not valid UTF-8 (byte 0)"),
        ("{", "line 7: not valid JSON: Expecting property name enclosed in double quotes"),
        ("[1, 2]", "line 7: expected a JSON object, got an array"),
        ('{"type": "String"}', "line 7: 'content' is required"),
        ('{"content": ""}', "line 7: content must not be empty"),
        ('{"content": 5}', "line 7: 'content' must be a string, got a number"),
        ('{"content": "x", "colour": "red"}', "line 7: unknown field 'colour'"),
        ('{"content": "x", "relevance": 1.5}', "line 7: relevance must be in [0, 1], got 1.5"),
        ('{"content": "x", "relevance": 10000}', "line 7: relevance must be in [0, 1], got 10000"),
        ('{"content": "x", "relevance": true}', "line 7: 'relevance' must be a number"),
        ('{"content": "x", "relevance": NaN}', "line 7: relevance must be in [0, 1], got nan"),
        ('{"content": "x", "type": "List["}', "line 7: invalid type signature 'List['"),
        ('{"content": "x", "type": 3}', "line 7: 'type' must be a type string"),
        ('{"content": "x", "tags": "a"}', "line 7: 'tags' must be an array of strings"),
        ('{"content": "x", "tags": [""]}', "line 7: tag must be non-empty single-line text"),
        ('{"content": "x", "timestamp": "noon"}', "line 7: 'timestamp' is not an ISO 8601 time"),
        ('{"content": "x", "timestamp": 5}', "line 7: 'timestamp' must be an ISO 8601 string"),
        ('{"content": "x", "abstract": 1}', "line 7: 'abstract' must be a string or null"),
        ('{"content": "x", "id": "00"}', "line 7: 'id' is '00' but the type and content hash"),
        ("[" * 100_000, "line 7: not valid JSON"),
    ],
)
def test_bad_lines_name_the_line_and_the_problem(line: str | bytes, problem: str) -> None:
    with pytest.raises(ImportLineError) as caught:
        decode_line(line, 7, now=NOW)
    message = str(caught.value)
    assert message.startswith(problem), message
    assert message.endswith("; nothing was imported")
    assert "\n" not in message
    assert caught.value.line == 7


def test_error_names_the_file() -> None:
    with pytest.raises(ImportLineError, match=r"^memories\.jsonl: line 2: 'content' is required"):
        read_atoms([b'{"content": "ok"}', b"{}"], now=NOW, filename="memories.jsonl")


@pytest.mark.parametrize(
    "atom",
    [
        MemoryAtom("plain", TypeSignature("String"), NOW),
        MemoryAtom(
            'ünïcödé \u2028 and\nnewlines\t"quotes"',
            TypeSignature.parse("Dict[String, List[Int]]"),
            datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
            "src",
            0.1 + 0.2,
            tags=("b", "a"),
            abstract="",
            overview="over",
        ),
        MemoryAtom("ctx", TypeSignature.parse("Context[String]"), NOW),
        MemoryAtom("odd", TypeSignature("Fact", Kind.ARROW, (), ("verified",)), NOW, "", 0.0),
        MemoryAtom("ancient", TypeSignature("String"), datetime(1, 1, 1, tzinfo=UTC)),
    ],
)
def test_encode_decode_round_trip(atom: MemoryAtom) -> None:
    line = encode_atom(atom)
    assert "\n" not in line
    again = decode_line(line, 1, now=NOW)
    assert again == atom
    assert again is not None
    assert again.content_hash == atom.content_hash
    assert json.loads(line)["id"] == atom.content_hash


def test_types_that_print_lossily_are_written_canonically() -> None:
    sig = TypeSignature("Fact", Kind.ARROW, (), ("verified",))
    assert json.loads(encode_atom(MemoryAtom("x", sig, NOW)))["type"] == sig.to_canonical()
    assert json.loads(encode_atom(MemoryAtom("x", TypeSignature("Fact"), NOW)))["type"] == "Fact"


def test_read_atoms_reports_progress() -> None:
    seen: list[int] = []
    atoms = read_atoms([b'{"content": "m%d"}' % i for i in range(2500)], progress=seen.append)
    assert len(atoms) == 2500
    assert seen == [1000, 2000]
