"""Type signatures: the types that memory atoms and molecules are stored under.

A :class:`TypeSignature` is a frozen value such as ``String``, ``List[String]`` or
``Context[Dict[String, Int]]``. This module owns three invariants:

* **Names are tokens.** A name is non-empty and holds no whitespace, no ``[``, ``]``
  or ``,`` and no control or surrogate characters, so the printed form can always be
  parsed back and the canonical form always encodes as UTF-8. (Only the fixed sets
  Cc and Cs are rejected, never Unicode-version-dependent categories, so a name
  accepted today is accepted by every later Python.)
* **Nesting is bounded.** No signature nests more than :data:`MAX_NESTING` levels of
  parameters, whether built directly, parsed or decoded. Recursive walks over a
  signature are therefore safe, and hostile input can never cause a ``RecursionError``.
* **The canonical form is complete.** :meth:`TypeSignature.to_canonical` covers name,
  kind, parameters and constraints, unlike ``str()``, which prints only names (the
  seed hashed ``str(type_sig)`` and so conflated signatures; see DESIGN.md §2.2).

Everything here is pure: no I/O, no global state.
"""

from __future__ import annotations

import enum
import reprlib
from dataclasses import dataclass, field

from contextfs.errors import TypeSignatureError

__all__ = [
    "MAX_NESTING",
    "T_ANY",
    "T_BOOL",
    "T_CONTEXT",
    "T_DICT",
    "T_FLOAT",
    "T_INT",
    "T_LIST",
    "T_STRING",
    "T_TIMESTAMP",
    "VARIABLE_PREFIX",
    "Kind",
    "TypeSignature",
    "parse_type",
]

MAX_NESTING = 64
"""Deepest allowed nesting of parameter lists (``List[String]`` nests 1 level)."""

VARIABLE_PREFIX = "τ"
"""Names starting with this character (Greek small tau, U+03C4) are type variables."""

_STRUCTURAL = frozenset("[],")
_MAX_QUOTED = 200  # parse errors quote the input whole up to this many characters

# Bounded repr for values of unknown shape: a plain repr of a deeply nested list
# raises RecursionError, and a huge one would flood a one-line error message.
_short_repr = reprlib.Repr()
_short_repr.maxstring = 80
_short_repr.maxother = 80


class Kind(enum.Enum):
    """The kind of a type signature.

    The integer values are part of the stored canonical format: never renumber.
    """

    STAR = 0
    ARROW = 1
    CONSTRAINT = 2
    CONTEXT = 3


# The parser gives known names the kind their library constructor uses.
_KIND_BY_NAME = {"Context": Kind.CONTEXT}
_KIND_BY_VALUE = {kind.value: kind for kind in Kind}


def _is_name_char(ch: str) -> bool:
    # Cc (C0/C1 controls) and Cs (surrogates) are fixed sets in every Unicode version.
    code = ord(ch)
    return not (
        ch in _STRUCTURAL
        or ch.isspace()
        or code < 0x20
        or 0x7F <= code <= 0x9F
        or 0xD800 <= code <= 0xDFFF
    )


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeSignatureError(f"type name must be a str, got {_short_repr.repr(name)}")
    if not name:
        raise TypeSignatureError("type name must not be empty")
    for position, ch in enumerate(name):
        if not _is_name_char(ch):
            raise TypeSignatureError(
                f"type name {name!r} contains {ch!r} at position {position}, "
                "which is not allowed (whitespace, '[', ']', ',' and control characters)"
            )
    return name


@dataclass(frozen=True, slots=True)
class TypeSignature:
    """A type such as ``String`` or ``Dict[String, List[Int]]``.

    Attributes:
        name: The type constructor's name; a name starting with ``τ`` is a type variable.
        kind: The signature's kind.
        parameters: The type arguments (a list is accepted and stored as a tuple).
        constraints: Free-form constraint labels, in the order given.

    Raises:
        TypeSignatureError: On construction, if the name is invalid, a field has the
            wrong type, or parameters nest deeper than :data:`MAX_NESTING` levels.
    """

    name: str
    kind: Kind = Kind.STAR
    parameters: tuple[TypeSignature, ...] = ()
    constraints: tuple[str, ...] = ()
    _nesting: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not isinstance(self.kind, Kind):
            raise TypeSignatureError(
                f"kind of {self.name!r} must be a Kind, got {_short_repr.repr(self.kind)}"
            )
        parameters: object = self.parameters
        if isinstance(parameters, list):
            parameters = tuple(parameters)
            object.__setattr__(self, "parameters", parameters)
        if not isinstance(parameters, tuple):
            raise TypeSignatureError(
                f"parameters of {self.name!r} must be a tuple, got {_short_repr.repr(parameters)}"
            )
        nesting = 0
        for parameter in parameters:
            if not isinstance(parameter, TypeSignature):
                raise TypeSignatureError(
                    f"parameter of {self.name!r} must be a TypeSignature, "
                    f"got {_short_repr.repr(parameter)}"
                )
            nesting = max(nesting, parameter._nesting + 1)
        if nesting > MAX_NESTING:
            raise TypeSignatureError(f"type {self.name!r} nests deeper than {MAX_NESTING} levels")
        object.__setattr__(self, "_nesting", nesting)
        constraints: object = self.constraints
        if isinstance(constraints, list):
            constraints = tuple(constraints)
            object.__setattr__(self, "constraints", constraints)
        if not isinstance(constraints, tuple):
            raise TypeSignatureError(
                f"constraints of {self.name!r} must be a tuple, got {_short_repr.repr(constraints)}"
            )
        for constraint in constraints:
            if not isinstance(constraint, str):
                raise TypeSignatureError(
                    f"constraint of {self.name!r} must be a str, got {_short_repr.repr(constraint)}"
                )

    def __str__(self) -> str:
        """Print the signature as ``Name`` or ``Name[P1, P2]``; kind and constraints are omitted."""
        if not self.parameters:
            return self.name
        return f"{self.name}[{', '.join(str(p) for p in self.parameters)}]"

    @property
    def is_variable(self) -> bool:
        """Whether this signature is a type variable (its name starts with ``τ``)."""
        return self.name.startswith(VARIABLE_PREFIX)

    @classmethod
    def parse(cls, text: str) -> TypeSignature:
        """Parse the printed form, ``Name`` or ``Name[T, T, ...]``.

        Whitespace around tokens is ignored. ``Context`` gets :attr:`Kind.CONTEXT`,
        every other name :attr:`Kind.STAR`, and no constraints are set; so
        ``parse(str(t)) == t`` for every ``t`` whose kinds follow that rule and that
        has no constraints. Use :meth:`to_canonical` for a lossless form.

        Args:
            text: The type string.

        Returns:
            The parsed signature.

        Raises:
            TypeSignatureError: If the text is not a well-formed signature or nests
                deeper than :data:`MAX_NESTING` levels. The message quotes the input
                and names the character position of the problem.
        """
        return _Parser(text).parse()

    def unify(self, other: TypeSignature) -> TypeSignature | None:
        """Unify two signatures, treating ``τ`` names as wildcards.

        A type variable unifies with anything and yields the other side (two
        variables yield ``self``). Otherwise names, kinds and parameter counts must be
        equal and every parameter pair must unify; the result carries the unified
        parameters and the sorted, deduplicated union of both sides' constraints.

        Each occurrence of a variable unifies independently: ``Dict[τ, τ]`` unifies
        with ``Dict[String, Int]``. No consistent binding is kept, as in the seed.

        Args:
            other: The signature to unify with.

        Returns:
            The unified signature, or None if the two do not unify.
        """
        if self.is_variable:
            return self if other.is_variable else other
        if other.is_variable:
            return self
        if (
            self.name != other.name
            or self.kind is not other.kind
            or len(self.parameters) != len(other.parameters)
        ):
            return None
        parameters: list[TypeSignature] = []
        # Recursion depth is bounded by MAX_NESTING, enforced at construction.
        for mine, theirs in zip(self.parameters, other.parameters, strict=True):
            unified = mine.unify(theirs)
            if unified is None:
                return None
            parameters.append(unified)
        constraints = tuple(sorted(set(self.constraints) | set(other.constraints)))
        return TypeSignature(self.name, self.kind, tuple(parameters), constraints)

    def to_canonical(self) -> list[object]:
        """Return the lossless canonical form used for encoding and hashing.

        Returns:
            ``[name, kind.value, [parameter canonical forms...], [constraints...]]``,
            with constraints in their given order.
        """
        return [
            self.name,
            self.kind.value,
            [p.to_canonical() for p in self.parameters],
            list(self.constraints),
        ]

    @classmethod
    def from_canonical(cls, value: object) -> TypeSignature:
        """Decode and validate a canonical form made by :meth:`to_canonical`.

        Args:
            value: A decoded canonical form: lists, a str name, an int kind value.
                Tuples, bools posing as ints and extra or missing items are rejected.

        Returns:
            The signature.

        Raises:
            TypeSignatureError: If the value is malformed in any way.
        """
        return _from_canonical(value, 0)


def _from_canonical(value: object, nesting: int) -> TypeSignature:
    if nesting > MAX_NESTING:
        raise TypeSignatureError(
            f"invalid canonical type signature: nests deeper than {MAX_NESTING} levels"
        )
    if not isinstance(value, list) or len(value) != 4:
        raise TypeSignatureError(
            "invalid canonical type signature: expected a list of 4 items, "
            f"got {_short_repr.repr(value)}"
        )
    name, kind_value, parameters, constraints = value
    name = _check_name(name)
    # bool is an int subclass: True must not pass for Kind.ARROW.
    if type(kind_value) is not int or kind_value not in _KIND_BY_VALUE:
        raise TypeSignatureError(
            f"invalid canonical type signature: unknown kind {_short_repr.repr(kind_value)} "
            f"for {name!r}"
        )
    if not isinstance(parameters, list):
        raise TypeSignatureError(
            f"invalid canonical type signature: parameters of {name!r} must be a list, "
            f"got {_short_repr.repr(parameters)}"
        )
    if not isinstance(constraints, list) or not all(isinstance(c, str) for c in constraints):
        raise TypeSignatureError(
            f"invalid canonical type signature: constraints of {name!r} must be a list of str, "
            f"got {_short_repr.repr(constraints)}"
        )
    return TypeSignature(
        name,
        _KIND_BY_VALUE[kind_value],
        tuple(_from_canonical(p, nesting + 1) for p in parameters),
        tuple(constraints),
    )


class _Parser:
    """An iterative parser for the printed form; open brackets live on an explicit stack."""

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeSignatureError(f"type string must be a str, got {_short_repr.repr(text)}")
        self.text = text
        self.pos = 0

    def fail(self, problem: str, position: int) -> TypeSignatureError:
        text = self.text
        if len(text) > _MAX_QUOTED:
            # Keep the message one readable line even for hostile input.
            quoted = f"{text[:_MAX_QUOTED]!r}... ({len(text)} characters)"
        else:
            quoted = repr(text)
        return TypeSignatureError(
            f"invalid type signature {quoted}: {problem} at position {position}"
        )

    def skip_space(self) -> None:
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos].isspace():
            pos += 1
        self.pos = pos

    def read_name(self, after: str, open_at: int | None) -> str:
        """Read a name; ``after`` is the token before it, ``open_at`` the innermost '['."""
        self.skip_space()
        start = pos = self.pos
        text = self.text
        while pos < len(text) and _is_name_char(text[pos]):
            pos += 1
        if pos > start:
            self.pos = pos
            return text[start:pos]
        if pos >= len(text):
            if open_at is not None:
                raise self.fail("unclosed '['", open_at)
            raise self.fail("expected a type name, found end of input", pos)
        found = text[pos]
        if found == "]" and after == "[":
            raise self.fail("empty parameter list", pos)
        if found == "]" and after == ",":
            raise self.fail("empty parameter", pos)
        if found not in _STRUCTURAL:
            raise self.fail(f"invalid character {found!r}", pos)
        raise self.fail(f"expected a type name, found {found!r}", pos)

    def parse(self) -> TypeSignature:
        # Each frame is an open "Name[": (name, position of '[', parameters so far).
        stack: list[tuple[str, int, list[TypeSignature]]] = []
        after = ""  # the structural token just consumed, for clearer messages
        while True:
            name = self.read_name(after, stack[-1][1] if stack else None)
            self.skip_space()
            if self.pos < len(self.text) and self.text[self.pos] == "[":
                if len(stack) >= MAX_NESTING:
                    raise self.fail(f"nesting deeper than {MAX_NESTING} levels", self.pos)
                stack.append((name, self.pos, []))
                self.pos += 1
                after = "["
                continue
            done = _make(name, ())
            while stack:
                stack[-1][2].append(done)
                self.skip_space()
                pos = self.pos
                if pos >= len(self.text):
                    raise self.fail("unclosed '['", stack[-1][1])
                ch = self.text[pos]
                self.pos += 1
                if ch == ",":
                    after = ","
                    break
                if ch != "]":
                    raise self.fail(f"expected ',' or ']', found {ch!r}", pos)
                outer_name, _, parameters = stack.pop()
                done = _make(outer_name, tuple(parameters))
            else:
                self.skip_space()
                if self.pos < len(self.text):
                    ch = self.text[self.pos]
                    problem = "unmatched ']'" if ch == "]" else f"unexpected {ch!r}"
                    if ch not in _STRUCTURAL and not _is_name_char(ch):
                        problem = f"invalid character {ch!r}"
                    raise self.fail(problem, self.pos)
                return done


def _make(name: str, parameters: tuple[TypeSignature, ...]) -> TypeSignature:
    return TypeSignature(name, _KIND_BY_NAME.get(name, Kind.STAR), parameters)


def parse_type(text: str) -> TypeSignature:
    """Parse a type string; the same as :meth:`TypeSignature.parse`.

    Args:
        text: The type string, such as ``"Dict[String, List[Int]]"``.

    Returns:
        The parsed signature.

    Raises:
        TypeSignatureError: If the text is not a well-formed signature.
    """
    return TypeSignature.parse(text)


T_STRING = TypeSignature("String")
T_INT = TypeSignature("Int")
T_FLOAT = TypeSignature("Float")
T_BOOL = TypeSignature("Bool")
T_TIMESTAMP = TypeSignature("Timestamp")
T_ANY = TypeSignature(VARIABLE_PREFIX)
"""The anonymous type variable ``τ``: unifies with anything."""


def T_LIST(element: TypeSignature) -> TypeSignature:  # noqa: N802
    """Return ``List[element]``.

    Args:
        element: The element type.

    Returns:
        The list signature (:attr:`Kind.STAR`).
    """
    return TypeSignature("List", Kind.STAR, (element,))


def T_DICT(key: TypeSignature, value: TypeSignature) -> TypeSignature:  # noqa: N802
    """Return ``Dict[key, value]``.

    Args:
        key: The key type.
        value: The value type.

    Returns:
        The dict signature (:attr:`Kind.STAR`).
    """
    return TypeSignature("Dict", Kind.STAR, (key, value))


def T_CONTEXT(inner: TypeSignature) -> TypeSignature:  # noqa: N802
    """Return ``Context[inner]`` with :attr:`Kind.CONTEXT`.

    Args:
        inner: The type the context holds.

    Returns:
        The context signature.
    """
    return TypeSignature("Context", Kind.CONTEXT, (inner,))
