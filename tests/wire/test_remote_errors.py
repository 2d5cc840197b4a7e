"""Library errors by name in ERROR frames: the allow-list, the fallback by code, old peers."""

from __future__ import annotations

import msgspec
import pytest

import contextfs.errors
from contextfs.errors import (
    FAMILIES,
    ConcurrentUpdateError,
    ConflictError,
    ContextFSError,
    CorruptObjectError,
    InvalidInputError,
    NothingToDoError,
    PermissionDeniedError,
    RepositoryNotFoundError,
    RevisionError,
    StoreError,
    UnknownRevisionError,
    VerificationError,
)
from contextfs.integrity.purge import NotAnAtomError, PurgeError, UnknownAtomError
from contextfs.session.delta import StaleDeltaError
from contextfs.wire.errors import (
    LIBRARY_ERRORS,
    ErrorCode,
    ProtocolError,
    RemoteError,
    code_for,
    error_name,
    remote_error,
)
from contextfs.wire.messages import Error, MessageType, decode_payload, encode_payload

#: What an ERROR of each code raises when it names no usable class.
FALLBACK = {
    ErrorCode.NOT_FOUND: RevisionError,
    ErrorCode.INVALID: InvalidInputError,
    ErrorCode.CONFLICT: ConflictError,
    ErrorCode.NOTHING_TO_DO: NothingToDoError,
    ErrorCode.STORE: StoreError,
    ErrorCode.VERIFICATION: VerificationError,
    ErrorCode.FORBIDDEN: PermissionDeniedError,
    ErrorCode.UNAUTHORISED: PermissionDeniedError,
}


def test_every_public_error_with_a_family_travels_by_name() -> None:
    public = {
        cls
        for cls in vars(contextfs.errors).values()
        if isinstance(cls, type) and issubclass(cls, ContextFSError) and cls.exit_code in FAMILIES
    }
    assert set(LIBRARY_ERRORS) == public
    assert len({cls.__name__ for cls in LIBRARY_ERRORS}) == len(LIBRARY_ERRORS)


@pytest.mark.parametrize("library", LIBRARY_ERRORS, ids=lambda cls: cls.__name__)
def test_a_named_error_is_raised_as_its_own_class_and_a_remote_error(
    library: type[ContextFSError],
) -> None:
    local = library("what the server said")
    assert error_name(local) == library.__name__
    raised = remote_error(code_for(local), str(local), error_name(local))
    assert isinstance(raised, library)
    assert isinstance(raised, RemoteError)
    assert type(raised).library is library
    assert type(raised).__name__ == f"Remote{library.__name__}"
    assert raised.exit_code == library.exit_code
    assert raised.code == code_for(local)
    assert raised.message == str(raised) == "what the server said"
    assert raised.error == library.__name__


def test_a_leaf_defined_elsewhere_travels_as_its_nearest_listed_base() -> None:
    assert error_name(NotAnAtomError("x")) == "InvalidInputError"
    assert error_name(UnknownAtomError("x")) == "UnknownRevisionError"
    assert error_name(StaleDeltaError("x")) == "InvalidInputError"


@pytest.mark.parametrize(
    "error",
    [ContextFSError("x"), PurgeError("x"), ProtocolError(ErrorCode.INVALID, "x")],
    ids=lambda error: type(error).__name__,
)
def test_errors_outside_the_families_travel_unnamed(error: ContextFSError) -> None:
    assert error_name(error) is None


@pytest.mark.parametrize(
    "error",
    [None, "NoSuchError", "os.system", "__import__('os')", "RemoteError", "ContextFSError", ""],
)
@pytest.mark.parametrize("code", list(FALLBACK), ids=lambda code: code.name)
def test_a_missing_or_unknown_name_falls_back_on_the_family_of_the_code(
    code: ErrorCode, error: str | None
) -> None:
    raised = remote_error(code, "a message", error)
    family = FALLBACK[code]
    assert type(raised).library is family
    assert type(raised).__bases__ == (RemoteError, family)
    assert raised.exit_code == family.exit_code == RemoteError(code, "").exit_code
    assert (raised.code, raised.message, raised.error) == (code, "a message", error)


def test_not_found_falls_back_on_revision_error_not_on_unknown_revision() -> None:
    """An ambiguous prefix is NOT_FOUND too, so a nameless one is no UnknownRevisionError."""
    raised = remote_error(ErrorCode.NOT_FOUND, "revision 'abcd' is ambiguous")
    assert isinstance(raised, RevisionError)
    assert not isinstance(raised, UnknownRevisionError)
    assert raised.exit_code == 4


def test_a_name_that_contradicts_the_code_is_not_believed() -> None:
    raised = remote_error(ErrorCode.CONFLICT, "HEAD moved", "UnknownRevisionError")
    assert type(raised).library is ConflictError
    assert not isinstance(raised, RevisionError)
    assert raised.exit_code == 6


def test_the_repository_location_family_keeps_exit_code_3_under_not_found() -> None:
    raised = remote_error(ErrorCode.NOT_FOUND, "no repository", "RepositoryNotFoundError")
    assert isinstance(raised, RepositoryNotFoundError)
    assert raised.exit_code == 3


@pytest.mark.parametrize(
    "code", [c for c in ErrorCode if c not in FALLBACK] + [99], ids=lambda code: str(code)
)
def test_protocol_level_codes_stay_plain_remote_errors(code: int) -> None:
    for error in (None, "InvalidInputError", "UnknownRevisionError", "StoreError"):
        raised = remote_error(code, "refused", error)
        assert type(raised) is RemoteError
        assert raised.library is None
        assert raised.exit_code == 1
        assert (raised.code, raised.message, raised.error) == (code, "refused", error)


def test_store_and_conflict_names_round_trip() -> None:
    for local in (CorruptObjectError("damaged"), ConcurrentUpdateError("HEAD moved")):
        raised = remote_error(code_for(local), "x", error_name(local))
        assert type(raised).library is type(local)


# -- the frame ----------------------------------------------------------------------


class OldError(msgspec.Struct):
    """ERROR as a peer that predates ``error`` decodes it."""

    code: int
    message: str


def test_the_error_field_is_optional_and_old_peers_ignore_it() -> None:
    named = encode_payload(Error(code=9, message="unknown revision 'x'", error="RevisionError"))
    assert msgspec.msgpack.decode(named, type=OldError) == OldError(9, "unknown revision 'x'")
    bare = encode_payload(Error(code=9, message="unknown revision 'x'"))
    assert msgspec.msgpack.decode(bare) == {"code": 9, "message": "unknown revision 'x'"}
    decoded = decode_payload(MessageType.ERROR, bare)
    assert isinstance(decoded, Error)
    assert decoded.error is None
    later = msgspec.msgpack.encode({"code": 5, "message": "m", "error": "X", "hint": [1]})
    assert decode_payload(MessageType.ERROR, later) == Error(code=5, message="m", error="X")
