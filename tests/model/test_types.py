"""Tests for contextfs.model.types: printing, parsing, unification, canonical form."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contextfs.errors import TypeSignatureError
from contextfs.model.types import (
    MAX_NESTING,
    T_ANY,
    T_BOOL,
    T_CONTEXT,
    T_DICT,
    T_FLOAT,
    T_INT,
    T_LIST,
    T_STRING,
    T_TIMESTAMP,
    Kind,
    TypeSignature,
    parse_type,
)

NAMES = ["String", "Int", "List", "Dict", "Context", "τ", "τkey", "Ünï_1.x"]


def _signatures(
    kinds: st.SearchStrategy[Kind | None], constraints: st.SearchStrategy[tuple[str, ...]]
) -> st.SearchStrategy[TypeSignature]:
    def build(
        name: str, kind: Kind | None, params: list[TypeSignature], cs: tuple[str, ...]
    ) -> TypeSignature:
        kind = kind or (Kind.CONTEXT if name == "Context" else Kind.STAR)
        return TypeSignature(name, kind, tuple(params), cs)

    names = st.sampled_from(NAMES)
    leaf = st.builds(build, names, kinds, st.just([]), constraints)
    return st.recursive(
        leaf,
        lambda inner: st.builds(
            build, names, kinds, st.lists(inner, min_size=1, max_size=3), constraints
        ),
        max_leaves=20,
    )


# Kinds follow the parser's rule and there are no constraints: what parse(str(t)) rebuilds.
parseable = _signatures(st.none(), st.just(()))
any_signature = _signatures(
    st.sampled_from(Kind), st.lists(st.sampled_from(["", "b", "a", "ü"]), max_size=3).map(tuple)
)


def _nested(levels: int) -> TypeSignature:
    sig = T_STRING
    for _ in range(levels):
        sig = T_LIST(sig)
    return sig


def test_kind_values_are_a_stored_format() -> None:
    assert {k.name: k.value for k in Kind} == {"STAR": 0, "ARROW": 1, "CONSTRAINT": 2, "CONTEXT": 3}


def test_constants_and_constructors() -> None:
    assert [str(t) for t in (T_STRING, T_INT, T_FLOAT, T_BOOL, T_TIMESTAMP, T_ANY)] == [
        "String", "Int", "Float", "Bool", "Timestamp", "τ",
    ]  # fmt: skip
    assert T_ANY.is_variable
    assert not T_STRING.is_variable
    assert TypeSignature("τkey").is_variable
    assert T_LIST(T_STRING) == TypeSignature("List", Kind.STAR, (T_STRING,))
    assert T_DICT(T_STRING, T_INT) == TypeSignature("Dict", Kind.STAR, (T_STRING, T_INT))
    assert T_CONTEXT(T_INT) == TypeSignature("Context", Kind.CONTEXT, (T_INT,))


def test_str_prints_names_only() -> None:
    assert str(T_STRING) == "String"
    assert str(T_LIST(T_STRING)) == "List[String]"
    assert str(T_DICT(T_STRING, T_LIST(T_INT))) == "Dict[String, List[Int]]"
    assert str(TypeSignature("Int", Kind.ARROW, (), ("positive",))) == "Int"


def test_construction_accepts_lists_and_keywords() -> None:
    sig = TypeSignature("List", parameters=[T_INT], constraints=["a"])  # type: ignore[arg-type]
    assert sig.parameters == (T_INT,)
    assert sig.constraints == ("a",)
    assert sig == TypeSignature("List", Kind.STAR, (T_INT,), ("a",))
    assert hash(sig) == hash(TypeSignature("List", Kind.STAR, (T_INT,), ("a",)))
    assert sig != TypeSignature("List", Kind.ARROW, (T_INT,), ("a",))
    assert sig != TypeSignature("List", Kind.STAR, (T_INT,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        sig.name = "Other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "position"),
    [("a b", 1), ("List[x", 4), ("a]", 1), ("a,b", 1), ("a\x00", 1), ("\x85", 0), ("\ud800", 0)],
)
def test_invalid_name_characters(name: str, position: int) -> None:
    with pytest.raises(TypeSignatureError) as info:
        TypeSignature(name)
    assert str(info.value) == (
        f"type name {name!r} contains {name[position]!r} at position {position}, which is not "
        "allowed (whitespace, '[', ']', ',' and control characters)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("",), "type name must not be empty"),
        ((3,), "type name must be a str, got 3"),
        (("a", 0), "kind of 'a' must be a Kind, got 0"),
        (("a", Kind.STAR, "Int"), "parameters of 'a' must be a tuple, got 'Int'"),
        (("a", Kind.STAR, ("Int",)), "parameter of 'a' must be a TypeSignature, got 'Int'"),
        (("a", Kind.STAR, (), "xy"), "constraints of 'a' must be a tuple, got 'xy'"),
        (("a", Kind.STAR, (), (1,)), "constraint of 'a' must be a str, got 1"),
    ],
)
def test_invalid_construction(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(TypeSignatureError) as info:
        TypeSignature(*args)  # type: ignore[arg-type]
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def test_construction_bounds_nesting() -> None:
    assert str(_nested(MAX_NESTING)).count("[") == 64
    with pytest.raises(TypeSignatureError, match=r"^type 'List' nests deeper than 64 levels$"):
        T_LIST(_nested(MAX_NESTING))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("String", T_STRING),
        ("  List [ String ]  ", T_LIST(T_STRING)),
        ("Dict[String,List[Int]]", T_DICT(T_STRING, T_LIST(T_INT))),
        ("Context[τ]", T_CONTEXT(T_ANY)),
        ("Context", TypeSignature("Context", Kind.CONTEXT)),
        ("\tMap[\nτ ,\u3000Bool ]", TypeSignature("Map", Kind.STAR, (T_ANY, T_BOOL))),
    ],
)
def test_parse(text: str, expected: TypeSignature) -> None:
    assert parse_type(text) == expected
    assert TypeSignature.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "expected a type name, found end of input at position 0"),
        ("   ", "expected a type name, found end of input at position 3"),
        ("List[", "unclosed '[' at position 4"),
        ("Dict[String, List[Int]", "unclosed '[' at position 4"),
        ("Dict[String,", "unclosed '[' at position 4"),
        ("List[]", "empty parameter list at position 5"),
        ("Dict[String,]", "empty parameter at position 12"),
        ("Dict[,String]", "expected a type name, found ',' at position 5"),
        ("List]String", "unmatched ']' at position 4"),
        ("List[String]]", "unmatched ']' at position 12"),
        ("List[String] x", "unexpected 'x' at position 13"),
        ("List String", "unexpected 'S' at position 5"),
        ("List[String,", "unclosed '[' at position 4"),
        ("List[A B]", "expected ',' or ']', found 'B' at position 7"),
        ("[String]", "expected a type name, found '[' at position 0"),
        ("List[[String]]", "expected a type name, found '[' at position 5"),
        ("Li\x00st", "invalid character '\\x00' at position 2"),
        ("List[\x7f]", "invalid character '\\x7f' at position 5"),
    ],
)
def test_parse_errors(text: str, problem: str) -> None:
    with pytest.raises(TypeSignatureError) as info:
        parse_type(text)
    assert str(info.value) == f"invalid type signature {text!r}: {problem}"


def test_parse_rejects_deep_nesting_without_recursion_error() -> None:
    assert parse_type(str(_nested(MAX_NESTING))) == _nested(MAX_NESTING)
    text = "List[" * 10000
    with pytest.raises(TypeSignatureError) as info:
        parse_type(text)
    assert str(info.value) == (
        f"invalid type signature {text[:200]!r}... (50000 characters): "
        "nesting deeper than 64 levels at position 324"
    )


@given(parseable)
def test_parse_round_trips_str(sig: TypeSignature) -> None:
    assert parse_type(str(sig)) == sig
    spaced = str(sig).replace("[", " [ ").replace(",", " , ").replace("]", " ] ")
    assert parse_type(f" {spaced} ") == sig


@given(any_signature)
def test_canonical_round_trip(sig: TypeSignature) -> None:
    canonical = sig.to_canonical()
    assert TypeSignature.from_canonical(canonical) == sig
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(canonical))
    assert TypeSignature.from_canonical(decoded) == sig


def test_canonical_form_is_exact() -> None:
    sig = TypeSignature("Context", Kind.CONTEXT, (T_DICT(T_STRING, T_INT),), ("z", "a", "z"))
    assert sig.to_canonical() == [
        "Context",
        3,
        [["Dict", 0, [["String", 0, [], []], ["Int", 0, [], []]], []]],
        ["z", "a", "z"],
    ]


PREFIX = "invalid canonical type signature: "


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("String", "expected a list of 4 items, got 'String'"),
        (("a", 0, [], []), "expected a list of 4 items, got ('a', 0, [], [])"),
        (["a", 0, []], "expected a list of 4 items, got ['a', 0, []]"),
        (["a", True, [], []], "unknown kind True for 'a'"),
        (["a", 4, [], []], "unknown kind 4 for 'a'"),
        (["a", 0.0, [], []], "unknown kind 0.0 for 'a'"),
        (["a", 0, (), []], "parameters of 'a' must be a list, got ()"),
        (["a", 0, [], ["x", 1]], "constraints of 'a' must be a list of str, got ['x', 1]"),
        (["a", 0, [["b", 0, []]], []], "expected a list of 4 items, got ['b', 0, []]"),
    ],
)
def test_from_canonical_rejects_malformed(value: object, problem: str) -> None:
    with pytest.raises(TypeSignatureError) as info:
        TypeSignature.from_canonical(value)
    assert str(info.value) == PREFIX + problem


def test_from_canonical_rejects_bad_names_and_deep_values() -> None:
    with pytest.raises(TypeSignatureError, match=r"^type name 'a b' contains ' '"):
        TypeSignature.from_canonical(["a b", 0, [], []])
    with pytest.raises(TypeSignatureError, match=r"^type name must be a str, got 5$"):
        TypeSignature.from_canonical([5, 0, [], []])
    assert TypeSignature.from_canonical(_nested(64).to_canonical()) == _nested(64)
    deep: list[object] = ["String", 0, [], []]
    for _ in range(10000):
        deep = ["List", 0, [deep], []]
    with pytest.raises(TypeSignatureError, match=r"nests deeper than 64 levels$"):
        TypeSignature.from_canonical(deep)
    hostile: list[object] = []
    for _ in range(10000):
        hostile = [hostile]
    with pytest.raises(TypeSignatureError, match=r"^invalid canonical type signature: expected"):
        TypeSignature.from_canonical(hostile)


def test_unify_variables() -> None:
    tau_x = TypeSignature("τx")
    assert T_ANY.unify(T_LIST(T_INT)) == T_LIST(T_INT)
    assert T_LIST(T_INT).unify(T_ANY) == T_LIST(T_INT)
    assert T_ANY.unify(tau_x) is T_ANY
    assert tau_x.unify(T_ANY) is tau_x
    # Each occurrence unifies on its own: no consistent binding of τ is kept.
    assert T_DICT(T_ANY, T_ANY).unify(T_DICT(T_STRING, T_INT)) == T_DICT(T_STRING, T_INT)


def test_unify_nested_and_mismatches() -> None:
    pattern = T_DICT(T_STRING, T_LIST(T_ANY))
    assert pattern.unify(T_DICT(T_STRING, T_LIST(T_BOOL))) == T_DICT(T_STRING, T_LIST(T_BOOL))
    assert T_LIST(T_ANY).unify(T_LIST(T_LIST(T_INT))) == T_LIST(T_LIST(T_INT))
    assert pattern.unify(T_DICT(T_STRING, T_CONTEXT(T_BOOL))) is None
    assert T_STRING.unify(T_INT) is None
    assert T_LIST(T_INT).unify(TypeSignature("List", Kind.ARROW, (T_INT,))) is None
    assert T_DICT(T_STRING, T_INT).unify(TypeSignature("Dict", Kind.STAR, (T_STRING,))) is None
    assert T_LIST(T_INT).unify(T_LIST(T_STRING)) is None


def test_unify_unions_constraints() -> None:
    left = TypeSignature("Int", Kind.STAR, (), ("positive", "even", "even"))
    right = TypeSignature("Int", Kind.STAR, (), ("even", "bounded"))
    expected = TypeSignature("Int", Kind.STAR, (), ("bounded", "even", "positive"))
    assert left.unify(right) == expected
    assert T_LIST(left).unify(T_LIST(right)) == T_LIST(expected)


@given(parseable)
def test_unify_is_reflexive(sig: TypeSignature) -> None:
    assert sig.unify(sig) == sig
    assert T_ANY.unify(sig) == (T_ANY if sig.is_variable else sig)
