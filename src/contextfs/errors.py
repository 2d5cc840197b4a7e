"""The error family of ContextFS.

Every error a user can cause derives from :class:`ContextFSError` and carries an
``exit_code``: the CLI prints ``error: <message>`` on one line and exits with it.
Messages name the offending value with ``!r`` so they can be acted on without a
traceback. Leaf errors live here so the CLI, server and library agree on them.

Each exit code has one family class (:data:`FAMILIES`): every error with that
code derives from it, so ``except InvalidInputError`` catches every error that
exits 5, wherever the error is defined. A leaf that also belongs to another
family (a purge error that is invalid input) derives from both.

Exit codes (also listed in ``docs/CLI.md``):

== ============================================================
1  any other ContextFS error (the CLI also uses it when the OS refuses a file)
2  command-line usage error (unknown option, missing argument)
3  not a ContextFS repository, or one already exists
4  unknown or ambiguous revision, branch or tag
5  invalid input: type string, relevance, content, import line
6  conflict: a concurrent update, merge conflicts, or a stage
   that would be overwritten
7  nothing to do: empty commit, nothing to merge
8  the store is damaged or unreadable
9  a verification failed: a receipt the store does not reproduce,
   an op log that does not check out
10 not allowed: the token's scope or branches do not cover the request,
   or the store is read-only here
== ============================================================
"""

from __future__ import annotations


class ContextFSError(Exception):
    """Root of every error ContextFS raises on purpose."""

    exit_code = 1


class RepositoryLocationError(ContextFSError):
    """A folder or URL does not hold a repository as the command needs it to."""

    exit_code = 3


class RepositoryNotFoundError(RepositoryLocationError):
    """No ``.contextfs`` directory was found where one was expected."""


class RepositoryExistsError(RepositoryLocationError):
    """``init`` was asked to create a repository where one already is."""


class RevisionError(ContextFSError):
    """A revision, branch or tag name does not name exactly one object."""

    exit_code = 4


class UnknownRevisionError(RevisionError):
    """Nothing matches the revision."""


class AmbiguousRevisionError(RevisionError):
    """An id prefix matches more than one object."""


class InvalidInputError(ContextFSError, ValueError):
    """A value given by the caller is malformed or out of range."""

    exit_code = 5


class TypeSignatureError(InvalidInputError):
    """A type string could not be parsed."""


class ConflictError(ContextFSError):
    """The operation would lose someone's work, so it was refused."""

    exit_code = 6


class ConcurrentUpdateError(ConflictError):
    """A ref moved between our read and our compare-and-swap."""


class MergeConflictError(ConflictError):
    """A merge stopped with entries changed differently on both sides."""


class UncommittedChangesError(ConflictError):
    """Staged changes would be overwritten."""


class NothingToDoError(ContextFSError):
    """The operation would not change anything (for example an empty commit)."""

    exit_code = 7


class NonFastForwardError(ConflictError):
    """A push would drop commits the remote has; fetch and merge first, or force it."""


class StoreError(ContextFSError):
    """The backing store failed or holds damaged data."""

    exit_code = 8


class CorruptObjectError(StoreError):
    """A stored object does not hash to its id or does not decode."""


class CorruptLogError(StoreError):
    """An op-log file holds a line that is not a well-formed record (named by line)."""


class MissingObjectError(StoreError):
    """An object that history refers to is not in the store."""


class VerificationError(ContextFSError):
    """Something checked against the store did not match (a receipt, a proof)."""

    exit_code = 9


class PermissionDeniedError(ContextFSError):
    """The request is beyond what its token allows, or the store cannot be written here."""

    exit_code = 10


class ReadOnlyStoreError(PermissionDeniedError, StoreError):
    """A write to a store that can only be read here (a read-only folder, a full disk).

    Also a :class:`StoreError`, so code that skips an optional write when the
    store refuses it (derived data, index catch-up) skips this one too.
    """


def shape_problem(exc: Exception) -> str:
    """What is wrong with a JSON value, from the error reading it raised, in user words.

    A ``KeyError`` names the missing field; Python's own wording of a type
    error (``'int' object has no attribute 'get'``) never reaches users.
    """
    if isinstance(exc, KeyError) and exc.args:
        return f"it lacks {str(exc.args[0])[:80]!r}"
    return "a field has the wrong type or value"


#: The family class of each exit code but 1: whatever exits with the code derives from it.
FAMILIES: dict[int, type[ContextFSError]] = {
    RepositoryLocationError.exit_code: RepositoryLocationError,
    RevisionError.exit_code: RevisionError,
    InvalidInputError.exit_code: InvalidInputError,
    ConflictError.exit_code: ConflictError,
    NothingToDoError.exit_code: NothingToDoError,
    StoreError.exit_code: StoreError,
    VerificationError.exit_code: VerificationError,
    PermissionDeniedError.exit_code: PermissionDeniedError,
}
