"""Protocol error codes, the exceptions the sans-IO core raises, and remote errors.

Every failure a peer can see is an ERROR frame ``{"code", "message", "error"}``
with one of these codes (``docs/PROTOCOL.md`` section 5). Library errors map
onto codes by their exit codes, and travel with their class name in ``error``,
so a remote call fails the way a local one does: the client raises the same
library class (see :func:`remote_error`). Names are looked up in an explicit
allow-list, never imported or evaluated: the network chooses among classes
this module lists, nothing else.
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar, cast

from ..errors import (
    AmbiguousRevisionError,
    ConcurrentUpdateError,
    ConflictError,
    ContextFSError,
    CorruptLogError,
    CorruptObjectError,
    InvalidInputError,
    MergeConflictError,
    MissingObjectError,
    NonFastForwardError,
    NothingToDoError,
    PermissionDeniedError,
    ReadOnlyStoreError,
    RepositoryExistsError,
    RepositoryLocationError,
    RepositoryNotFoundError,
    RevisionError,
    StoreError,
    TypeSignatureError,
    UncommittedChangesError,
    UnknownRevisionError,
    VerificationError,
)


class ErrorCode(IntEnum):
    """What went wrong, as the ERROR frame's ``code``."""

    PROTOCOL = 1  #: a frame broke the protocol (fatal on stream 0)
    UNSUPPORTED_VERSION = 2
    UNAUTHORISED = 3
    UNKNOWN_TYPE = 4
    INVALID = 5  #: a payload that does not match its schema, or a bad argument
    TOO_LARGE = 6
    TOO_MANY_STREAMS = 7
    FLOW_CONTROL = 8  #: the peer sent more than its credit
    NOT_FOUND = 9  #: unknown revision, memory, session or object
    CONFLICT = 10
    NOTHING_TO_DO = 11
    CANCELLED = 12
    BUSY = 13  #: the server is at its connection limit
    TIMEOUT = 14
    SHUTTING_DOWN = 15
    VERIFICATION = 16
    STORE = 17  #: the repository is damaged or unreadable
    INTERNAL = 18  #: a bug on the server: the message says no more
    FORBIDDEN = 19  #: the token's scope or branches do not cover the request


#: Library exit codes (contextfs.errors) to protocol codes.
_BY_EXIT_CODE = {
    3: ErrorCode.NOT_FOUND,
    4: ErrorCode.NOT_FOUND,
    5: ErrorCode.INVALID,
    6: ErrorCode.CONFLICT,
    7: ErrorCode.NOTHING_TO_DO,
    8: ErrorCode.STORE,
    9: ErrorCode.VERIFICATION,
    10: ErrorCode.FORBIDDEN,
}

#: The library family an ERROR of each code belongs to when its ``error`` names no
#: listed class (an older server sends none). NOT_FOUND carries exit codes 3 and 4;
#: it falls back on RevisionError (4, as before names travelled), not on
#: UnknownRevisionError, because an ambiguous id prefix travels as NOT_FOUND too.
_FAMILY_BY_CODE: dict[int, type[ContextFSError]] = {
    ErrorCode.NOT_FOUND: RevisionError,
    ErrorCode.INVALID: InvalidInputError,
    ErrorCode.CONFLICT: ConflictError,
    ErrorCode.NOTHING_TO_DO: NothingToDoError,
    ErrorCode.STORE: StoreError,
    ErrorCode.VERIFICATION: VerificationError,
    ErrorCode.FORBIDDEN: PermissionDeniedError,
    ErrorCode.UNAUTHORISED: PermissionDeniedError,
}

#: The library errors that travel by name: the allow-list of ERROR's ``error``.
#: A leaf defined next to its code (a purge error, StaleDeltaError) travels as its
#: nearest listed base, which has its exit code; no request raises one today, so
#: list it here when one does. Exit-code-1 errors travel as INTERNAL, unnamed.
LIBRARY_ERRORS: tuple[type[ContextFSError], ...] = (
    RepositoryLocationError,
    RepositoryNotFoundError,
    RepositoryExistsError,
    RevisionError,
    UnknownRevisionError,
    AmbiguousRevisionError,
    InvalidInputError,
    TypeSignatureError,
    ConflictError,
    ConcurrentUpdateError,
    MergeConflictError,
    UncommittedChangesError,
    NonFastForwardError,
    NothingToDoError,
    StoreError,
    CorruptObjectError,
    CorruptLogError,
    MissingObjectError,
    VerificationError,
    PermissionDeniedError,
    ReadOnlyStoreError,
)
_LISTED = frozenset(LIBRARY_ERRORS)
#: The exit code of a plain RemoteError of each code (what the fallback family exits with).
_EXIT_BY_CODE = {code: family.exit_code for code, family in _FAMILY_BY_CODE.items()}


def code_for(error: ContextFSError) -> ErrorCode:
    """The protocol code a library error travels as."""
    return _BY_EXIT_CODE.get(error.exit_code, ErrorCode.INTERNAL)


def error_name(error: ContextFSError) -> str | None:
    """The ``error`` name a library error travels with, or None (exit code 1: unnamed).

    It is the error's own class if listed, else its nearest listed base (which
    shares its exit code), so a peer learns no class names beyond
    :data:`LIBRARY_ERRORS`.
    """
    for cls in type(error).__mro__:
        if cls in _LISTED:
            return cls.__name__ if cls.exit_code == error.exit_code else None
    return None


class ProtocolError(ContextFSError):
    """A peer or this side broke the protocol; ``code`` says how."""

    exit_code = 1

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message


class FatalProtocolError(ProtocolError):
    """The connection cannot go on (its byte stream can no longer be trusted)."""


class RemoteError(ContextFSError):
    """The server answered a request with an ERROR frame.

    For a library error the client raises a subclass that is also the library
    class (:func:`remote_error`), so ``except UnknownRevisionError`` catches a
    remote unknown revision as it does a local one, and ``except RemoteError``
    catches every remote failure. A plain RemoteError is a protocol-level
    failure (UNAUTHORISED, BUSY, TIMEOUT, CANCELLED, INTERNAL, ...).
    """

    #: The library class this remote error is; None for a protocol-level failure.
    library: ClassVar[type[ContextFSError] | None] = None

    def __init__(self, code: int, message: str, *, error: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        #: The ``error`` name the server sent, as sent (None when it sent none).
        self.error = error
        if self.library is not None:
            self.exit_code = self.library.exit_code
        else:
            self.exit_code = _EXIT_BY_CODE.get(code, 1)


def _remote_class(library: type[ContextFSError]) -> type[RemoteError]:
    """``library`` as the client raises it: a subclass of both it and RemoteError."""
    namespace = {
        "library": library,
        "__module__": __name__,
        "__doc__": f"A {library.__name__} raised by the server.",
    }
    cls = type(f"Remote{library.__name__}", (RemoteError, library), namespace)
    return cast("type[RemoteError]", cls)


#: The allow-list: ``error`` name -> the class the client raises.
_REMOTE_BY_NAME: dict[str, type[RemoteError]] = {
    cls.__name__: _remote_class(cls) for cls in LIBRARY_ERRORS
}
_REMOTE_BY_CODE: dict[int, type[RemoteError]] = {
    code: _REMOTE_BY_NAME[family.__name__] for code, family in _FAMILY_BY_CODE.items()
}


def _code_of(cls: type[RemoteError]) -> ErrorCode | None:
    return None if cls.library is None else _BY_EXIT_CODE.get(cls.library.exit_code)


def remote_error(code: int, message: str, error: str | None = None) -> RemoteError:
    """The exception the client raises for an ERROR frame.

    Args:
        code: the frame's ``code``.
        message: the frame's ``message``, kept as the server wrote it.
        error: the frame's ``error`` name, if it has one.

    Returns:
        A RemoteError that is also the library class ``error`` names, when it is
        listed and belongs to ``code``'s family; else also the family class of
        ``code`` (NOT_FOUND: RevisionError); else (a protocol-level code) a
        plain RemoteError.
    """
    cls = _REMOTE_BY_NAME.get(error) if error is not None else None
    if cls is None or _code_of(cls) != code:  # unknown, or a name that contradicts the code
        cls = _REMOTE_BY_CODE.get(code, RemoteError)
    return cls(code, message, error=error)


__all__ = [
    "LIBRARY_ERRORS",
    "ErrorCode",
    "FatalProtocolError",
    "ProtocolError",
    "RemoteError",
    "code_for",
    "error_name",
    "remote_error",
]
