"""Context receipts: proof of which memory version, and which settings, produced a prompt.

A :class:`Receipt` records everything that determines a rendered prompt -- the
commit (never only the revision, which may move), the snapshot root it holds,
budget, query, format, ranking parameters including the clock reading used for
recency, and the tokenizer -- plus the SHA-256 of the prompt's UTF-8 bytes.
Anyone holding the store can re-derive the prompt from those values and compare
it byte for byte (:func:`verify_receipt`).

The JSON form (:meth:`Receipt.to_json`) is one line with a fixed key order, and
:meth:`Receipt.from_json` accepts nothing else: a receipt is evidence, so a
malformed one is refused with a message naming the field rather than guessed at.
This module knows nothing of repositories: the caller passes in how to re-derive.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, TypeGuard

from ..errors import InvalidInputError, MissingObjectError, UnknownRevisionError
from ..model.canonical import Metadata, check_text, normalise_metadata
from ..model.ids import ID_HEX_LENGTH, is_hex_prefix
from ..model.timeutil import from_micros
from .render import Format, Selection, is_format

__all__ = [
    "RECEIPT_VERSION",
    "Receipt",
    "ReceiptMismatch",
    "ReceiptVerification",
    "build_receipt",
    "prompt_sha256",
    "verify",
    "verify_receipt",
]

#: The receipt format this module writes and the only one it reads.
RECEIPT_VERSION = 1
_REPR_LIMIT = 80


def prompt_sha256(prompt: str) -> str:
    """Return the hex SHA-256 of ``prompt`` encoded as UTF-8: what a receipt pins.

    Raises:
        InvalidInputError: ``prompt`` is not a str or holds a lone surrogate.
    """
    if not isinstance(prompt, str):
        raise InvalidInputError(f"prompt must be text, got {type(prompt).__name__}")
    return hashlib.sha256(check_text(prompt, "prompt").encode("utf-8")).hexdigest()


def _show(value: object) -> str:
    # Messages stay one line and short even for a huge or multi-line value.
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def _bad(name: str, wanted: str, value: object) -> InvalidInputError:
    return InvalidInputError(f"receipt field {name!r} must be {wanted}, got {_show(value)}")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_id(value: object) -> bool:
    return isinstance(value, str) and len(value) == ID_HEX_LENGTH and is_hex_prefix(value)


def _text(name: str, value: object, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        wanted = "non-empty text or null" if optional else "non-empty text"
        raise _bad(name, wanted, value)
    return check_text(value, f"receipt field {name!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """What produced one prompt, and the prompt's hash.

    Attributes:
        version: The receipt format, :data:`RECEIPT_VERSION`.
        commit: The full id of the commit expanded.
        snapshot_root: The full id of that commit's snapshot root.
        revision: The revision as the caller gave it (informational: it may move;
            re-derivation uses ``commit``).
        budget: The token budget, or None for no budget.
        query: The text query that ranked the atoms, or None.
        format: The rendering.
        half_life_seconds: The recency half-life, or None for no recency decay.
        now: The clock reading recency was measured from, in microseconds since
            the epoch (UTC); recorded so the ranking can be re-derived exactly.
        params: Further ranking knobs, as JSON-like values with sorted keys.
        tokenizer: The name of the tokenizer that counted the budget.
        memory_ids: Full ids of the chosen atoms in prompt order, then of the
            chosen molecules.
        tokens: The prompt's token count.
        prompt_sha256: Hex SHA-256 of the prompt's UTF-8 bytes.

    Raises:
        InvalidInputError: On construction, naming the first malformed field.
    """

    version: int = RECEIPT_VERSION
    commit: str
    snapshot_root: str
    revision: str
    budget: int | None
    query: str | None
    format: Format
    half_life_seconds: float | None
    now: int
    params: Metadata = field(default_factory=dict)
    tokenizer: str
    memory_ids: tuple[str, ...]
    tokens: int
    prompt_sha256: str

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if self.version != RECEIPT_VERSION or not _is_int(self.version):
            raise _bad("version", str(RECEIPT_VERSION), self.version)
        for name in ("commit", "snapshot_root", "prompt_sha256"):
            if not _is_id(getattr(self, name)):
                raise _bad(name, "64 lowercase hex characters", getattr(self, name))
        _text("revision", self.revision)
        if self.budget is not None and not (_is_int(self.budget) and self.budget >= 0):
            raise _bad("budget", "a non-negative integer or null", self.budget)
        _text("query", self.query, optional=True)
        if not is_format(self.format):
            raise _bad("format", "one of lines, markdown, json, xml", self.format)
        set_(self, "half_life_seconds", _half_life(self.half_life_seconds))
        _check_now(self.now)
        set_(self, "params", normalise_metadata(self.params, what="receipt field 'params'"))
        _text("tokenizer", self.tokenizer)
        set_(self, "memory_ids", _ids(self.memory_ids))
        if not (_is_int(self.tokens) and self.tokens >= 0):
            raise _bad("tokens", "a non-negative integer", self.tokens)
        if self.budget is not None and self.tokens > self.budget:
            raise InvalidInputError(
                f"receipt field 'tokens' ({self.tokens}) exceeds 'budget' ({self.budget})"
            )

    def to_json(self) -> str:
        """Return the receipt as one line of JSON, keys in field order."""
        value = {f.name: getattr(self, f.name) for f in fields(self)}
        value["memory_ids"] = list(self.memory_ids)
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Receipt:
        """Parse what :meth:`to_json` wrote, checking every field.

        Raises:
            InvalidInputError: The text is not JSON, not an object, has a
                duplicate, missing or unknown key, or a malformed field; the
                message is one line naming the problem.
        """
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidInputError(f"receipt is not UTF-8: {exc.reason}") from None
        if not isinstance(text, str):
            raise InvalidInputError(f"receipt must be JSON text, got {type(text).__name__}")
        try:
            value = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(
                f"receipt is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        except RecursionError:
            raise InvalidInputError("receipt is not valid JSON: nested too deeply") from None
        if not isinstance(value, dict):
            raise InvalidInputError(f"receipt must be a JSON object, got {_show(value)}")
        if "version" not in value:
            raise InvalidInputError("receipt field 'version' is missing")
        if value["version"] != RECEIPT_VERSION or not _is_int(value["version"]):
            # Checked first: a newer receipt's other fields may mean something else.
            raise InvalidInputError(
                f"receipt version {_show(value['version'])} is not supported "
                f"(this ContextFS reads version {RECEIPT_VERSION})"
            )
        names = [f.name for f in fields(cls)]
        for name in names:
            if name not in value:
                raise InvalidInputError(f"receipt field {name!r} is missing")
        for key in value:
            if key not in names:
                raise InvalidInputError(f"receipt has an unknown field {_show(key)}")
        return cls(**value)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, item in pairs:
        if key in result:
            raise InvalidInputError(f"receipt has a duplicate key {_show(key)}")
        result[key] = item
    return result


def _no_constant(name: str) -> object:
    raise InvalidInputError(f"receipt is not valid JSON: {name} is not a number")


def _half_life(value: object) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise _bad("half_life_seconds", "a positive number of seconds or null", value)
    return float(value)


def _check_now(value: object) -> None:
    wanted = "an integer of microseconds since the epoch, within years 1-9999"
    if not _is_int(value):
        raise _bad("now", wanted, value)
    try:
        from_micros(value)
    except InvalidInputError:
        raise _bad("now", wanted, value) from None


def _ids(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise _bad("memory_ids", "a list of 64-hex ids", value)
    for item in value:
        if not _is_id(item):
            raise InvalidInputError(
                f"receipt field 'memory_ids' holds {_show(item)}, not 64 lowercase hex characters"
            )
    return tuple(value)


def build_receipt(
    selection: Selection,
    *,
    commit: str,
    snapshot_root: str,
    revision: str,
    budget: int | None,
    query: str | None,
    half_life_seconds: float | None,
    now: int,
    tokenizer: str,
    params: Mapping[str, Any] | None = None,
) -> Receipt:
    """Return the receipt for a prompt :func:`~contextfs.expand.render.fit` produced.

    The format, memory ids, token count and prompt hash come from ``selection``;
    the rest says how it was produced and must be what re-derivation will use.

    Raises:
        InvalidInputError: A value is malformed (see :class:`Receipt`).
    """
    return Receipt(
        commit=commit,
        snapshot_root=snapshot_root,
        revision=revision,
        budget=budget,
        query=query,
        format=selection.format,
        half_life_seconds=half_life_seconds,
        now=now,
        params=dict(params or {}),
        tokenizer=tokenizer,
        memory_ids=(
            *(atom.content_hash for atom in selection.atoms),
            *(molecule.molecule_hash for molecule in selection.molecules),
        ),
        tokens=selection.tokens,
        prompt_sha256=prompt_sha256(selection.text),
    )


def verify(receipt: Receipt, prompt: str) -> bool:
    """Return True if ``prompt`` is byte for byte the prompt ``receipt`` pins."""
    return hmac.compare_digest(prompt_sha256(prompt), receipt.prompt_sha256)


MismatchKind = Literal["commit_missing", "snapshot_root", "prompt_sha256"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiptMismatch:
    """One way the store disagrees with a receipt.

    Attributes:
        kind: ``commit_missing`` (the store lacks the commit, so nothing could
            be re-derived), ``snapshot_root`` (the commit holds another
            snapshot) or ``prompt_sha256`` (the re-derived prompt differs).
        expected: The receipt's value (the commit id for ``commit_missing``).
        actual: The value re-derived from the store; None for ``commit_missing``.
    """

    kind: MismatchKind
    expected: str
    actual: str | None

    def describe(self) -> str:
        """Return a one-line account of the mismatch, for people."""
        if self.kind == "commit_missing":
            return f"commit {self.expected} is not in the store"
        if self.kind == "snapshot_root":
            return f"snapshot root differs: receipt {self.expected}, store {self.actual}"
        return f"prompt differs: receipt sha256 {self.expected}, re-derived sha256 {self.actual}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiptVerification:
    """The outcome of :func:`verify_receipt`.

    Attributes:
        receipt: The receipt checked.
        mismatches: Every disagreement found; empty when the receipt holds.
        prompt: The re-derived prompt, or None when the commit is missing.
    """

    receipt: Receipt
    mismatches: tuple[ReceiptMismatch, ...]
    prompt: str | None

    @property
    def ok(self) -> bool:
        """Whether the store reproduces the receipt's prompt exactly."""
        return not self.mismatches


#: Re-derives a receipt's prompt from a store: returns ``(snapshot_root, prompt)``.
Derive = Callable[[Receipt], tuple[str, str]]


def verify_receipt(receipt: Receipt, derive: Derive) -> ReceiptVerification:
    """Re-derive the prompt a receipt describes and compare it byte for byte.

    Args:
        receipt: The receipt to check.
        derive: Expands ``receipt.commit`` with the receipt's parameters (budget,
            query, format, half-life, ``now``, params, tokenizer) and returns the
            commit's snapshot root and the rendered prompt. It raises
            :class:`~contextfs.errors.UnknownRevisionError` or
            :class:`~contextfs.errors.MissingObjectError` when the commit is not
            in the store; any other error propagates.

    Returns:
        The verification: ``ok``, or every mismatch found.
    """
    try:
        root, prompt = derive(receipt)
    except (UnknownRevisionError, MissingObjectError):
        missing = ReceiptMismatch(kind="commit_missing", expected=receipt.commit, actual=None)
        return ReceiptVerification(receipt=receipt, mismatches=(missing,), prompt=None)
    mismatches: list[ReceiptMismatch] = []
    if root != receipt.snapshot_root:
        mismatches.append(
            ReceiptMismatch(kind="snapshot_root", expected=receipt.snapshot_root, actual=root)
        )
    digest = prompt_sha256(prompt)
    if digest != receipt.prompt_sha256:
        mismatches.append(
            ReceiptMismatch(kind="prompt_sha256", expected=receipt.prompt_sha256, actual=digest)
        )
    return ReceiptVerification(receipt=receipt, mismatches=tuple(mismatches), prompt=prompt)
