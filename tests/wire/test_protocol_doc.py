"""docs/PROTOCOL.md against the code: message and error tables, schemas, limits, examples.

Every worked example is a ```frame block (hex; ``#`` starts a comment) followed
by a ```json block ``{"type", "stream", "flags", "payload"}``; each must decode
to its JSON with the real frame reader and schemas, and encode back to its hex.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest

from contextfs.server.serve import SERVER_NAME, Limits
from contextfs.wire.connection import DEFAULT_MAX_STREAMS, DEFAULT_WINDOW
from contextfs.wire.errors import ErrorCode, RemoteError
from contextfs.wire.frames import (
    DEFAULT_MAX_FRAME,
    FLAG_END,
    HEADER_SIZE,
    LIMIT_MAX_FRAME,
    FrameReader,
    encode_frame,
)
from contextfs.wire.messages import (
    ANSWERS,
    DATA,
    MESSAGES,
    REQUESTS,
    Hit,
    LogEntry,
    MessageType,
    WireAtom,
    decode_payload,
    encode_payload,
)

DOC = Path(__file__).parents[2] / "docs" / "PROTOCOL.md"
TEXT = DOC.read_text(encoding="utf-8")
LINES = TEXT.splitlines()

CLIENT_CONTROL = {MessageType.HELLO, MessageType.PING, MessageType.WINDOW, MessageType.CANCEL}
SHAPES: dict[str, type[msgspec.Struct]] = {"WireAtom": WireAtom, "Hit": Hit, "LogEntry": LogEntry}


def section(number: int) -> str:
    """The text of ``## <number>. ...`` up to the next ``## `` heading."""
    match = re.search(rf"^## {number}\. [^\n]*\n(.*?)(?=^## |\Z)", TEXT, re.M | re.S)
    assert match is not None, f"no section {number}"
    return match.group(1)


def heading_body(heading: str) -> list[str]:
    """The lines under ``heading`` (a whole line) up to the next heading."""
    assert LINES.count(heading) == 1, f"expected exactly one heading {heading!r}"
    start = LINES.index(heading) + 1
    body: list[str] = []
    for line in LINES[start:]:
        if re.match(r"#{1,4} ", line):
            break
        body.append(line)
    return body


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def key_table(body: list[str]) -> list[list[str]] | None:
    """The rows of the first ``| Key | Type | Default | Meaning |`` table, if any."""
    for i, line in enumerate(body):
        if line.startswith("|") and cells(line) == ["Key", "Type", "Default", "Meaning"]:
            rows = []
            for row in body[i + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append(cells(row))
            return rows
    return None


def plain(cell: str) -> str:
    """A cell without code spans, with enum values in a canonical order."""
    text = " ".join(cell.replace("`", "").split())
    if text.startswith("enum: "):
        text = "enum: " + ", ".join(sorted(text[len("enum: ") :].split(", ")))
    return text


def render(kind: mi.Type) -> str:
    """A schema type in the notation of PROTOCOL.md section 4.1."""
    simple = {
        mi.IntType: "int",
        mi.FloatType: "float",
        mi.StrType: "str",
        mi.BoolType: "bool",
        mi.BytesType: "bin",
        mi.AnyType: "any",
        mi.NoneType: "nil",
    }
    for cls, name in simple.items():
        if isinstance(kind, cls):
            return name
    if isinstance(kind, mi.UnionType):
        return " or ".join(render(t) for t in kind.types)
    if isinstance(kind, mi.LiteralType):
        return "enum: " + ", ".join(sorted(str(v) for v in kind.values))
    if isinstance(kind, mi.StructType):
        return kind.cls.__name__
    if isinstance(kind, mi.ListType):
        return f"[{render(kind.item_type)}]"
    if isinstance(kind, mi.TupleType):
        return "[" + ", ".join(render(t) for t in kind.item_types) + "]"
    if isinstance(kind, mi.DictType):
        return f"{{{render(kind.key_type)}: {render(kind.value_type)}}}"
    raise AssertionError(f"no notation for {kind!r}")


def check_schema(struct: type[msgspec.Struct], rows: list[list[str]] | None) -> None:
    info = mi.type_info(struct)
    assert isinstance(info, mi.StructType)
    name = struct.__name__
    if not info.fields:
        assert rows is None, f"{name} has no keys but the doc gives a table"
        return
    assert rows is not None, f"{name}: no | Key | Type | Default | Meaning | table"
    assert [plain(row[0]) for row in rows] == [f.encode_name for f in info.fields], name
    for field, row in zip(info.fields, rows, strict=True):
        where = f"{name}.{field.name}"
        assert plain(row[1]) == render(field.type), where
        if field.required:
            assert row[2] == "required", where
            continue
        default = (
            field.default if field.default is not msgspec.NODEFAULT else field.default_factory()
        )
        expected = msgspec.to_builtins(default)
        documented = json.loads(plain(row[2]).replace("nil", "null"))
        assert documented == expected, where
        assert type(documented) is type(expected), where
        assert row[3], f"{where}: no meaning given"


# -- the worked examples ----------------------------------------------------------------


def examples() -> list[tuple[bytes, dict[str, Any]]]:
    found = re.findall(r"```frame\n(.*?)```\s*```json\n(.*?)```", TEXT, re.S)
    result = []
    for hex_text, json_text in found:
        digits = "".join(line.split("#", 1)[0] for line in hex_text.splitlines())
        result.append((bytes.fromhex("".join(digits.split())), json.loads(json_text)))
    return result


EXAMPLES = examples()


def example_id(example: tuple[bytes, dict[str, Any]]) -> str:
    return f"{example[1]['type']}-stream{example[1]['stream']}"


def test_the_doc_has_the_required_examples() -> None:
    decoded = [(e["type"], e["stream"], e["payload"]) for _, e in EXAMPLES]
    limits = Limits()
    welcome = {
        "version": 1,
        "server": SERVER_NAME,
        "max_frame": limits.max_frame,
        "window": limits.window,
        "max_streams": limits.max_streams,
    }
    assert ("HELLO", 0, {"versions": [1]}) in decoded
    assert ("WELCOME", 0, welcome) in decoded
    assert ("QUERY", 1, {"query": "python", "limit": 3}) in decoded
    assert ("ERROR", 1, {"code": 9, "message": "unknown revision 'nope'"}) in decoded
    assert ("WINDOW", 3, {"credit": 65536}) in decoded
    assert int(ErrorCode.NOT_FOUND) == 9


def test_the_doc_shows_an_error_named_by_its_class() -> None:
    decoded = [(e["type"], e["stream"], e["payload"]) for _, e in EXAMPLES]
    named = {"code": 9, "message": "unknown revision 'nope'", "error": "UnknownRevisionError"}
    assert ("ERROR", 1, named) in decoded
    assert "### 5.1 The error's class" in TEXT


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
def test_example_hex_decodes_to_its_json(example: tuple[bytes, dict[str, Any]]) -> None:
    data, expected = example
    reader = FrameReader()
    reader.receive(data)
    frame = reader.next_frame()
    assert frame is not None, "the hex is not one whole frame"
    assert reader.buffered == 0, "bytes left after the frame"
    assert reader.next_frame() is None
    assert frame.type == MessageType[expected["type"]]
    assert frame.stream == expected["stream"]
    assert frame.flags == expected["flags"]
    assert msgspec.msgpack.decode(frame.payload) == expected["payload"]  # the keys on the wire
    message = decode_payload(frame.type, frame.payload)
    cls = MESSAGES[MessageType[expected["type"]]]
    assert type(message) is cls
    assert message == msgspec.convert(expected["payload"], cls)


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
def test_example_json_encodes_to_its_hex(example: tuple[bytes, dict[str, Any]]) -> None:
    data, expected = example
    kind = MessageType[expected["type"]]
    assert expected["flags"] in (0, FLAG_END)
    message = msgspec.convert(expected["payload"], MESSAGES[kind])
    payload = encode_payload(message)
    frame = encode_frame(kind, expected["stream"], payload, end=bool(expected["flags"] & FLAG_END))
    assert frame.hex() == data.hex()


# -- tables -----------------------------------------------------------------------------


def test_every_message_type_is_in_the_summary_table() -> None:
    rows = {}
    for line in LINES:
        match = re.match(r"\| `0x([0-9A-F]{2})` \| ([A-Z_]+) \| (\w+) \|", line)
        if match:
            rows[int(match.group(1), 16)] = (match.group(2), match.group(3), cells(line)[-1])
    assert {code: row[0] for code, row in rows.items()} == {t.value: t.name for t in MessageType}
    for kind in MessageType:
        name, sender, answer = rows[kind.value]
        if kind is MessageType.ERROR:
            assert sender == "either"
        elif kind in REQUESTS or kind in CLIENT_CONTROL:
            assert sender == "client", name
        else:
            assert sender == "server", name
            assert ("(data)" in answer) == (kind in DATA), name


@pytest.mark.parametrize("kind", list(MessageType), ids=lambda kind: kind.name)
def test_every_message_type_has_its_schema(kind: MessageType) -> None:
    rows = key_table(heading_body(f"#### `0x{kind.value:02X}` {kind.name}"))
    check_schema(MESSAGES[kind], rows)


@pytest.mark.parametrize("name", list(SHAPES))
def test_every_shape_has_its_schema(name: str) -> None:
    check_schema(SHAPES[name], key_table(heading_body(f"#### {name}")))


def test_error_code_table_matches_the_code() -> None:
    rows = {}
    for line in section(5).splitlines():
        match = re.match(r"\| (\d+) \| ([A-Z_]+) \| (0|request|either) \| (\d+) \|", line)
        if match:
            rows[int(match.group(1))] = (match.group(2), int(match.group(4)))
    expected = {int(c): (c.name, RemoteError(int(c), "").exit_code) for c in ErrorCode}
    assert rows == expected


def test_limits_match_the_code() -> None:
    text = section(6)
    documented = {
        m.group(1): float(m.group(2)) for m in re.finditer(r"^\| `(\w+)` \| (\d+)", text, re.M)
    }
    limits = Limits()
    for field in dataclasses.fields(Limits):
        assert documented.get(field.name) == getattr(limits, field.name), field.name
    assert documented["max_frame"] == DEFAULT_MAX_FRAME
    assert documented["window"] == DEFAULT_WINDOW
    assert documented["max_streams"] == DEFAULT_MAX_STREAMS
    assert str(LIMIT_MAX_FRAME) in text
    assert HEADER_SIZE == 14
    assert f"{HEADER_SIZE}-byte header" in TEXT


def test_flow_control_names_the_data_messages() -> None:
    text = section(7)
    for kind in ANSWERS:
        assert kind.name in text, kind.name
    counted = text.strip().split("\n\n")[0].split("Other answers", 1)[0]
    for kind in DATA:
        assert kind.name in counted, kind.name
