"""CompressedContext (contextfs.model.context) and ExpandedContext (contextfs.expand.context).

Whole-value identity, round trips, budgeted rendering.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contextfs.errors import CorruptObjectError, InvalidInputError
from contextfs.expand.context import ExpandedContext, fit_lines, rank_key, render_line
from contextfs.expand.tokens import TiktokenTokenizer, WordEstimateTokenizer
from contextfs.model.context import CompressedContext, decode_context
from contextfs.model.objects import MemoryAtom, MemoryMolecule
from contextfs.model.types import T_INT, T_LIST, T_STRING, Kind, TypeSignature

T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
TIKTOKEN = TiktokenTokenizer()


def atom(content: str, relevance: float = 0.5, *, at: datetime = T0) -> MemoryAtom:
    return MemoryAtom(content, T_STRING, at, "src", relevance)


def expanded(atoms: list[MemoryAtom]) -> ExpandedContext:
    return ExpandedContext(atoms, [], [], 0, {})


# -- CompressedContext --------------------------------------------------------


def test_positional_construction_like_the_seed() -> None:
    a1, a2 = atom("one"), atom("two")
    root = CompressedContext(None, [a1, a2], [], set(), {"version": 1})
    assert root.is_root
    assert root.delta_size == 2
    delta = CompressedContext("ab" * 32, [], [], {a1.content_hash}, {})
    assert not delta.is_root
    assert delta.delta_size == 1
    assert delta.removed_hashes == {a1.content_hash}


def test_keyword_construction_and_defaults() -> None:
    ctx = CompressedContext(
        base_hash=None,
        delta_atoms=[atom("x")],
        delta_molecules=[],
        removed_hashes=set(),
        compression_metadata={},
    )
    assert ctx == CompressedContext(None, [atom("x")])
    assert CompressedContext(None).delta_size == 0


def test_fields_are_copied_and_metadata_sorted() -> None:
    atoms = [atom("x")]
    removed = {"cd" * 32}
    metadata = {"b": 1, "a": {"d": 2.5, "c": [1, "x"]}}
    ctx = CompressedContext(None, atoms, [], removed, metadata)
    atoms.append(atom("y"))
    removed.add("ef" * 32)
    assert ctx.delta_atoms == [atom("x")]
    assert ctx.removed_hashes == {"cd" * 32}
    assert list(ctx.compression_metadata) == ["a", "b"]
    assert list(ctx.compression_metadata["a"]) == ["c", "d"]
    empty: dict[str, object] = {}
    bare = CompressedContext(None, [], [], set(), empty)
    empty["late"] = 1
    assert bare.compression_metadata == {}


def test_tuples_and_frozensets_are_accepted() -> None:
    ctx = CompressedContext(None, (atom("x"),), (), frozenset({"cd" * 32}), {})  # type: ignore[arg-type]
    assert ctx.delta_atoms == [atom("x")]
    assert ctx.removed_hashes == {"cd" * 32}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"base_hash": "abc"},
            "base_hash must be 4-64 lowercase hex characters, got 'abc'",
        ),
        (
            {"base_hash": "ABCD"},
            "base_hash must be 4-64 lowercase hex characters, got 'ABCD'",
        ),
        ({"base_hash": 7}, "base_hash must be a hex string, got 7"),
        (
            {"base_hash": None, "removed_hashes": {"abcd"}},
            "removed hash must be a full 64-hex id, got 'abcd'",
        ),
        (
            {"base_hash": None, "removed_hashes": "ab" * 32},
            "removed_hashes must be a list of str, got '" + "ab" * 32 + "'",
        ),
        (
            {"base_hash": None, "delta_atoms": ["text"]},
            "delta_atoms must hold MemoryAtom values, got 'text'",
        ),
        (
            {"base_hash": None, "compression_metadata": {"x": float("nan")}},
            "compression_metadata must be a finite number, got nan",
        ),
        (
            {"base_hash": None, "compression_metadata": [1]},
            "compression_metadata must be a mapping, got list",
        ),
    ],
)
def test_bad_fields_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        CompressedContext(**kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_known_encoding_vectors() -> None:
    empty = CompressedContext(None)
    assert empty.encode().hex() == "95c090909080"
    assert empty.context_hash == "a8a29bda47bc3d0e0562797cd19e721642681503812d793a95857b55618f30fd"
    one = CompressedContext(None, [atom("Deadline is Friday", 0.7)], [], set(), {"version": 1})
    assert one.encode().hex() == (
        "95c0"  # array of 5; base nil
        "91"  # one atom
        "98"  # [type, content, relevance, micros, source, tags, abstract, overview]
        "94a6537472696e67009090"  # ["String", 0, [], []]
        "b2446561646c696e6520697320467269646179"  # "Deadline is Friday"
        "cb3fe6666666666666"  # 0.7 as float64
        "cf00060dedc04dd340"  # 2024-01-02T03:04:05Z in microseconds
        "a3737263"  # "src"
        "90c0c0"  # no tags, no abstract, no overview
        "90"  # no molecules
        "90"  # nothing removed
        "81a776657273696f6e01"  # {"version": 1}
    )
    assert one.context_hash == "689606065c3eec8d8fc826fe84748f89741a326fd8074eb67f7e49d87de2eb8a"


def test_context_hash_is_full_sha256_over_kind_and_encoding() -> None:
    ctx = CompressedContext(None, [atom("x")], [], set(), {"k": "v"})
    expected = hashlib.sha256(b"context\x00" + ctx.encode()).hexdigest()
    assert ctx.context_hash == expected
    assert ctx.digest == bytes.fromhex(expected)


def _rich_context() -> CompressedContext:
    tagged = MemoryAtom(
        "Tagged",
        TypeSignature("Note", Kind.STAR, (), ("c2", "c1")),
        T0 - timedelta(days=3),
        "src9",
        0.25,
        tags=("b", "a"),
        abstract="short",
        overview="longer",
    )
    molecule = MemoryMolecule(
        (atom("m1"), MemoryAtom("42", T_INT, T0, "s", 1.0)),
        {"causes": ((0, 1),), "about": ((1, 0), (0, 0))},
        TypeSignature("Story"),
        {"z": None, "a": [True, 1.5]},
    )
    return CompressedContext(
        "12" * 32,
        [tagged, MemoryAtom("x", T_LIST(T_STRING), T0, "", 0.0)],
        [molecule],
        {"ff" * 32, "00" * 32},
        {"version": 2, "nested": {"b": -0.0}},
    )


def test_round_trip_keeps_everything() -> None:
    ctx = _rich_context()
    data = ctx.encode()
    back = decode_context(data)
    assert back == ctx
    assert back.encode() == data
    assert back.context_hash == ctx.context_hash
    assert back.delta_molecules[0].relations == {"about": ((1, 0), (0, 0)), "causes": ((0, 1),)}
    assert back.delta_atoms[0].type_sig.constraints == ("c2", "c1")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00", "context does not decode: Expected `array`, got `int`"),
        (b"\x94\xc0\x90\x90\x90", "context does not decode: Expected `array` of length 5, got 4"),
        (
            b"\x95\xc0\x90\x90\x91\xa4abcd\x80",
            "context is malformed: removed hash must be a full 64-hex id, got 'abcd'",
        ),
    ],
)
def test_decode_refuses_malformed_bytes(data: bytes, message: str) -> None:
    with pytest.raises(CorruptObjectError) as info:
        decode_context(data)
    assert str(info.value) == message


def test_decode_refuses_a_second_spelling() -> None:
    # Tags written unsorted decode to the same value, so they are not canonical.
    ctx = CompressedContext(None, [MemoryAtom("x", T_STRING, T0, "s", 0.5, tags=("a", "b"))])
    value = msgspec.msgpack.decode(ctx.encode())
    value[1][0][5] = ["b", "a"]
    with pytest.raises(CorruptObjectError, match=r"^context is not in canonical form$"):
        decode_context(msgspec.msgpack.encode(value))
    value[1][0][5] = ["a", "b"]
    value[1][0][2] = 1  # relevance as an int, not a float64
    ctx_one = msgspec.msgpack.encode(value)
    with pytest.raises(CorruptObjectError, match=r"^context is not in canonical form$"):
        decode_context(ctx_one)


# -- ranking and rendering --------------------------------------------------------


def test_rank_key_orders_by_relevance_then_newest_then_hash() -> None:
    old = atom("old", 0.5, at=T0 - timedelta(seconds=1))
    new = atom("new", 0.5)
    top = atom("top", 0.9)
    twin_a, twin_b = sorted([atom("p", 0.5), atom("q", 0.5)], key=lambda a: a.content_hash)
    ranked = sorted([old, twin_b, new, top, twin_a], key=rank_key)
    assert ranked[0] == top
    assert ranked[-1] == old
    assert ranked[1:4] == sorted([new, twin_a, twin_b], key=lambda a: a.content_hash)


def test_render_line_prints_type_and_content() -> None:
    assert render_line(MemoryAtom("x y", T_LIST(T_STRING), T0)) == "[List[String]] x y"


def test_prompt_is_most_relevant_first() -> None:
    ctx = expanded([atom("low", 0.1), atom("high", 0.9), atom("mid", 0.5)])
    assert ctx.to_prompt_context() == "[String] high\n[String] mid\n[String] low"


def test_budget_skips_a_big_atom_and_takes_smaller_ones() -> None:
    big = atom("word " * 50, 0.9)
    ctx = expanded([big, atom("small one", 0.5), atom("small two", 0.4)])
    assert TIKTOKEN.count("[String] small one") == 4
    assert TIKTOKEN.count("[String] small one\n[String] small two") == 9
    assert ctx.to_prompt_context(9) == "[String] small one\n[String] small two"
    assert ctx.to_prompt_context(8) == "[String] small one"
    assert ctx.to_prompt_context(4) == "[String] small one"
    assert ctx.to_prompt_context(3) == ""
    assert ctx.to_prompt_context(0) == ""


def test_budget_with_the_word_estimate() -> None:
    ctx = expanded([atom("a b c", 0.9), atom("d", 0.5)])
    # "[String] a b c" is 4 words -> 5; "[String] d" is 2 words -> 2; both: 6 words -> 7.
    assert ctx.to_prompt_context(6, WordEstimateTokenizer()) == "[String] a b c"
    assert ctx.to_prompt_context(7, WordEstimateTokenizer()) == "[String] a b c\n[String] d"


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_bad_budget_is_refused(bad: object) -> None:
    with pytest.raises(InvalidInputError) as info:
        expanded([atom("x")]).to_prompt_context(bad)  # type: ignore[arg-type]
    assert str(info.value) == f"max_tokens must be a non-negative int, got {bad!r}"


class _CharsOverThree:
    """Not additive over lines (floor division), to exercise the exact fallback."""

    name = "chars//3"

    def count(self, text: str) -> int:
        return len(text) // 3


def _greedy_reference(lines: list[str], budget: int, tokenizer: object) -> str:
    count = tokenizer.count  # type: ignore[attr-defined]
    text = ""
    for line in lines:
        candidate = f"{text}\n{line}" if text else line
        if count(candidate) <= budget:
            text = candidate
    return text


def test_non_additive_tokenizer_falls_back_to_exact_greedy() -> None:
    lines = ["[S] aa", "[S] b", "[S] cccc", "[S] d"]
    tokenizer = _CharsOverThree()
    for budget in range(12):
        text = fit_lines(lines, budget, tokenizer)
        assert tokenizer.count(text) <= budget
        assert text == _greedy_reference(lines, budget, tokenizer)


_content = st.text(
    alphabet=st.sampled_from(list("ab .,!?'\n\t []0123<|>é日"))
    | st.characters(exclude_categories=["Cs"]),
    min_size=1,
    max_size=30,
).filter(lambda text: bool(text.strip()))


@settings(max_examples=150, deadline=None)
@given(
    contents=st.lists(_content, min_size=0, max_size=8),
    budget=st.integers(min_value=0, max_value=40),
)
def test_prompt_never_exceeds_budget(contents: list[str], budget: int) -> None:
    atoms = [atom(content, (i % 5) / 5) for i, content in enumerate(contents)]
    ctx = expanded(atoms)
    text = ctx.to_prompt_context(budget)
    assert TIKTOKEN.count(text) <= budget
    lines = [render_line(a) for a in sorted(atoms, key=rank_key)]
    assert text == _greedy_reference(lines, budget, TIKTOKEN)
