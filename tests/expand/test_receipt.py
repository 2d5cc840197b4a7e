"""Tests for contextfs.expand.receipt: exact JSON, strict parsing, and re-derivation checks."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contextfs.errors import (
    CorruptObjectError,
    InvalidInputError,
    MissingObjectError,
    UnknownRevisionError,
)
from contextfs.expand.receipt import (
    RECEIPT_VERSION,
    Receipt,
    ReceiptMismatch,
    build_receipt,
    prompt_sha256,
    verify,
    verify_receipt,
)
from contextfs.expand.render import FORMATS, fit
from contextfs.model.objects import MemoryAtom, MemoryMolecule
from contextfs.model.types import T_INT, T_STRING

T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
NOW = 1_704_164_645_000_000
COMMIT = "c0" * 32
ROOT = "5e" * 32
A1 = MemoryAtom("Alice prefers tea.", T_STRING, T0, "chat:1", 0.9)
A2 = MemoryAtom("42", T_INT, T0, "", 0.5)
MOLECULE = MemoryMolecule((A1, A2), {"about": ((1, 0),)})
SELECTION = fit([A1, A2], [MOLECULE], "lines", 100)
PROMPT = "[String] Alice prefers tea.\n[Int] 42\n[Molecule] #2 -about-> #1"


def receipt(**changes: Any) -> Receipt:
    made = build_receipt(
        SELECTION,
        commit=COMMIT,
        snapshot_root=ROOT,
        revision="main",
        budget=100,
        query="tea",
        half_life_seconds=3600,
        now=NOW,
        tokenizer="cl100k_base",
        params={"weights": {"query": 1.0}, "alpha": 2},
    )
    return replace(made, **changes) if changes else made


def fields_json(**changes: Any) -> str:
    value = json.loads(receipt().to_json())
    value.update(changes)
    return json.dumps(value)


# -- building and the JSON form ------------------------------------------------


def test_selection_is_the_prompt() -> None:
    assert SELECTION.text == PROMPT


def test_build_receipt_takes_the_selection() -> None:
    made = receipt()
    assert made.format == "lines"
    assert made.memory_ids == (A1.content_hash, A2.content_hash, MOLECULE.molecule_hash)
    assert made.tokens == SELECTION.tokens
    assert made.prompt_sha256 == hashlib.sha256(PROMPT.encode()).hexdigest()
    assert made.version == RECEIPT_VERSION == 1
    assert made.half_life_seconds == 3600.0
    assert isinstance(made.half_life_seconds, float)
    assert list(made.params) == ["alpha", "weights"]


def test_exact_json() -> None:
    digest = hashlib.sha256(PROMPT.encode()).hexdigest()
    assert receipt().to_json() == (
        '{"version":1,'
        f'"commit":"{COMMIT}","snapshot_root":"{ROOT}","revision":"main",'
        '"budget":100,"query":"tea","format":"lines","half_life_seconds":3600.0,'
        f'"now":{NOW},"params":{{"alpha":2,"weights":{{"query":1.0}}}},'
        '"tokenizer":"cl100k_base",'
        f'"memory_ids":["{A1.content_hash}","{A2.content_hash}","{MOLECULE.molecule_hash}"],'
        f'"tokens":{SELECTION.tokens},"prompt_sha256":"{digest}"}}'
    )


def test_round_trip() -> None:
    made = receipt()
    assert Receipt.from_json(made.to_json()) == made
    assert Receipt.from_json(made.to_json().encode() + b"\n") == made


def test_nulls_and_non_ascii_round_trip() -> None:
    made = receipt(budget=None, query="thé 日本\n\u2028", half_life_seconds=None, params={})
    text = made.to_json()
    assert "\n" not in text
    assert '"query":"thé 日本\\n\u2028"' in text
    assert Receipt.from_json(text) == made


@settings(max_examples=50, deadline=None)
@given(
    budget=st.none() | st.integers(SELECTION.tokens, 2**70),
    query=st.none()
    | st.text(min_size=1).filter(lambda s: not any(0xD800 <= ord(c) < 0xE000 for c in s)),
    half_life=st.none() | st.floats(min_value=1e-9, max_value=1e12),
    now=st.integers(-(10**15), 10**17),
    fmt=st.sampled_from(FORMATS),
)
def test_any_valid_receipt_round_trips(
    budget: int | None, query: str | None, half_life: float | None, now: int, fmt: str
) -> None:
    made = receipt(budget=budget, query=query, half_life_seconds=half_life, now=now, format=fmt)
    assert Receipt.from_json(made.to_json()) == made


# -- strict validation -----------------------------------------------------------

WANTED = {
    "commit": "64 lowercase hex characters",
    "snapshot_root": "64 lowercase hex characters",
    "prompt_sha256": "64 lowercase hex characters",
    "revision": "non-empty text",
    "budget": "a non-negative integer or null",
    "query": "non-empty text or null",
    "format": "one of lines, markdown, json, xml",
    "half_life_seconds": "a positive number of seconds or null",
    "now": "an integer of microseconds since the epoch, within years 1-9999",
    "tokenizer": "non-empty text",
    "memory_ids": "a list of 64-hex ids",
    "tokens": "a non-negative integer",
}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("commit", "abc"),
        ("commit", "C0" * 32),
        ("snapshot_root", 7),
        ("prompt_sha256", None),
        ("revision", ""),
        ("revision", None),
        ("budget", -1),
        ("budget", 100.0),
        ("budget", True),
        ("query", 5),
        ("query", ""),
        ("format", "yaml"),
        ("format", None),
        ("half_life_seconds", 0),
        ("half_life_seconds", -1.5),
        ("half_life_seconds", "60"),
        ("half_life_seconds", False),
        ("now", 1.5),
        ("now", "now"),
        ("now", 10**20),
        ("tokenizer", ""),
        ("memory_ids", "ab"),
        ("memory_ids", {"a": 1}),
        ("tokens", -1),
        ("tokens", None),
    ],
)
def test_each_field_is_checked(field: str, value: object) -> None:
    message = f"receipt field {field!r} must be {WANTED[field]}, got {value!r}"
    with pytest.raises(InvalidInputError) as info:
        Receipt.from_json(fields_json(**{field: value}))
    assert str(info.value) == message
    with pytest.raises(InvalidInputError) as info:
        receipt(**{field: value})
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("params", [], "receipt field 'params' must be a mapping, got list"),
        (
            "params",
            {"a": [1, {"b": None}], "c": 2**64},
            "receipt field 'params' holds an integer out of range: 18446744073709551616",
        ),
        (
            "memory_ids",
            [A1.content_hash, "ab"],
            "receipt field 'memory_ids' holds 'ab', not 64 lowercase hex characters",
        ),
        ("tokens", 101, "receipt field 'tokens' (101) exceeds 'budget' (100)"),
    ],
)
def test_structured_fields_are_checked(field: str, value: object, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        Receipt.from_json(fields_json(**{field: value}))
    assert str(info.value) == message


NOT_JSON = "receipt is not valid JSON:"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", f"{NOT_JSON} Expecting value at line 1 column 1"),
        ("{", f"{NOT_JSON} Expecting property name enclosed in double quotes at line 1 column 2"),
        ("[1]", "receipt must be a JSON object, got [1]"),
        ('{"version": 1, "version": 1}', "receipt has a duplicate key 'version'"),
        ('{"budget": NaN}', f"{NOT_JSON} NaN is not a number"),
        ("[" * 100_000, f"{NOT_JSON} nested too deeply"),
    ],
)
def test_malformed_json_is_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        Receipt.from_json(text)
    assert str(info.value) == message


def test_version_is_checked_first() -> None:
    for version in (2, 0, "1", True, None):
        with pytest.raises(InvalidInputError) as info:
            Receipt.from_json(fields_json(version=version, commit="bad", future=True))
        assert str(info.value) == (
            f"receipt version {version!r} is not supported (this ContextFS reads version 1)"
        )


def test_missing_and_unknown_fields_are_refused() -> None:
    value = json.loads(receipt().to_json())
    del value["tokenizer"]
    with pytest.raises(InvalidInputError) as info:
        Receipt.from_json(json.dumps(value))
    assert str(info.value) == "receipt field 'tokenizer' is missing"
    with pytest.raises(InvalidInputError) as info:
        Receipt.from_json(fields_json(extra=1))
    assert str(info.value) == "receipt has an unknown field 'extra'"


def test_bytes_must_be_utf8() -> None:
    with pytest.raises(InvalidInputError) as info:
        Receipt.from_json(b'{"query": "\xff"}')
    assert str(info.value) == "receipt is not UTF-8: invalid start byte"


def test_long_values_are_shortened_in_messages() -> None:
    with pytest.raises(InvalidInputError) as info:
        Receipt.from_json(fields_json(revision=["x" * 500]))
    message = str(info.value)
    assert message.startswith("receipt field 'revision' must be non-empty text, got ['xxx")
    assert message.endswith("...")
    assert len(message) < 150


# -- verifying ------------------------------------------------------------------


def test_verify_checks_the_prompt_byte_for_byte() -> None:
    made = receipt()
    assert verify(made, PROMPT)
    assert not verify(made, PROMPT + "\n")
    assert not verify(made, PROMPT.replace("tea", "Tea"))
    assert prompt_sha256(PROMPT) == made.prompt_sha256


def test_verify_receipt_ok() -> None:
    made = receipt()
    seen: list[Receipt] = []

    def derive(given: Receipt) -> tuple[str, str]:
        seen.append(given)
        return ROOT, PROMPT

    result = verify_receipt(made, derive)
    assert result.ok
    assert result.mismatches == ()
    assert result.prompt == PROMPT
    assert seen == [made]


def test_verify_receipt_reports_a_different_prompt_with_both_hashes() -> None:
    made = receipt()
    other = PROMPT + " "
    result = verify_receipt(made, lambda _: (ROOT, other))
    assert not result.ok
    assert result.mismatches == (
        ReceiptMismatch(
            kind="prompt_sha256", expected=made.prompt_sha256, actual=prompt_sha256(other)
        ),
    )
    assert result.mismatches[0].describe() == (
        f"prompt differs: receipt sha256 {made.prompt_sha256}, "
        f"re-derived sha256 {prompt_sha256(other)}"
    )


def test_verify_receipt_reports_a_different_snapshot_root() -> None:
    made = receipt()
    result = verify_receipt(made, lambda _: ("ee" * 32, PROMPT))
    assert result.mismatches == (
        ReceiptMismatch(kind="snapshot_root", expected=ROOT, actual="ee" * 32),
    )
    assert result.mismatches[0].describe() == (
        f"snapshot root differs: receipt {ROOT}, store {'ee' * 32}"
    )
    both = verify_receipt(made, lambda _: ("ee" * 32, "x"))
    assert [m.kind for m in both.mismatches] == ["snapshot_root", "prompt_sha256"]


@pytest.mark.parametrize("error", [UnknownRevisionError, MissingObjectError])
def test_verify_receipt_reports_a_missing_commit(error: type[Exception]) -> None:
    def derive(_: Receipt) -> tuple[str, str]:
        raise error("gone")

    result = verify_receipt(receipt(), derive)
    assert not result.ok
    assert result.prompt is None
    assert result.mismatches == (
        ReceiptMismatch(kind="commit_missing", expected=COMMIT, actual=None),
    )
    assert result.mismatches[0].describe() == f"commit {COMMIT} is not in the store"


def test_verify_receipt_lets_other_errors_through() -> None:
    def derive(_: Receipt) -> tuple[str, str]:
        raise CorruptObjectError("damaged")

    with pytest.raises(CorruptObjectError):
        verify_receipt(receipt(), derive)
