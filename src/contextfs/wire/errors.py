"""Protocol error codes, and the exceptions the sans-IO core raises.

Every failure a peer can see is an ERROR frame ``{"code", "message"}`` with one
of these codes (``docs/PROTOCOL.md`` section 5). Library errors map onto them
by their exit codes, so a remote call fails the way a local one does.
"""

from __future__ import annotations

from enum import IntEnum

from ..errors import ContextFSError


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


#: Library exit codes (contextfs.errors) to protocol codes.
_BY_EXIT_CODE = {
    3: ErrorCode.NOT_FOUND,
    4: ErrorCode.NOT_FOUND,
    5: ErrorCode.INVALID,
    6: ErrorCode.CONFLICT,
    7: ErrorCode.NOTHING_TO_DO,
    8: ErrorCode.STORE,
    9: ErrorCode.VERIFICATION,
}


def code_for(error: ContextFSError) -> ErrorCode:
    """The protocol code a library error travels as."""
    return _BY_EXIT_CODE.get(error.exit_code, ErrorCode.INTERNAL)


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
    """The server answered a request with an ERROR frame."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.exit_code = _EXIT_BY_CODE.get(code, 1)


_EXIT_BY_CODE = {
    int(ErrorCode.NOT_FOUND): 4,
    int(ErrorCode.INVALID): 5,
    int(ErrorCode.CONFLICT): 6,
    int(ErrorCode.NOTHING_TO_DO): 7,
    int(ErrorCode.STORE): 8,
    int(ErrorCode.VERIFICATION): 9,
}

__all__ = ["ErrorCode", "FatalProtocolError", "ProtocolError", "RemoteError", "code_for"]
