"""Ref names and the symbolic HEAD.

Branches live under ``refs/heads/``, tags under ``refs/tags/``. ``HEAD`` holds
``ref: refs/heads/<branch>`` or, detached, a commit id. Names follow git's
check-ref-format rules closely enough that no name can be mistaken for a
revision expression or smuggle control characters into output.
"""

from __future__ import annotations

import re

from ..errors import InvalidInputError

HEAD = "HEAD"
HEADS = "refs/heads/"
TAGS = "refs/tags/"
#: ``refs/remotes/<remote>/<branch>``: where a remote's branch was when last fetched.
REMOTES = "refs/remotes/"
#: ``refs/oplog/<session>``: the latest commit crystallised from a session's op log.
OPLOG = "refs/oplog/"
STAGE = "STAGE"
#: The commit the stage was built on (the empty tree's id when the branch was unborn), so
#: a commit can carry staged changes over commits another writer made meanwhile.
STAGE_BASE = "STAGE_BASE"
MERGE_HEAD = "MERGE_HEAD"
MERGE_STATE = "MERGE_STATE"
SYMBOLIC_PREFIX = "ref: "
DEFAULT_BRANCH = "main"
MAX_NAME_LENGTH = 200

_ALLOWED = re.compile(r"[A-Za-z0-9._/+-]+")


def check_short_name(name: object, what: str = "branch") -> str:
    """Return ``name`` if it is a valid branch or tag name, else raise.

    Refused: empty, over-long, characters outside ``A-Z a-z 0-9 . _ / + -``, a
    leading ``-`` or ``.``, ``..``, ``//``, a trailing ``/``, ``.`` or ``.lock``,
    and the reserved ``HEAD``.
    """
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"{what} name must not be empty")
    problem = None
    if len(name) > MAX_NAME_LENGTH:
        problem = f"longer than {MAX_NAME_LENGTH} characters"
    elif not _ALLOWED.fullmatch(name):
        problem = "only letters, digits and . _ / + - are allowed"
    elif name[0] in "-./" or name.endswith(("/", ".", ".lock")):
        problem = "it may not start with - . / or end with / . .lock"
    elif ".." in name or "//" in name or "/." in name:
        problem = "it may not contain .. // or /."
    elif name in (HEAD, STAGE, STAGE_BASE, MERGE_HEAD, MERGE_STATE):
        problem = "that name is reserved"
    if problem:
        raise InvalidInputError(f"invalid {what} name {name!r}: {problem}")
    return name


def branch_ref(name: str) -> str:
    """Return the full ref of branch ``name`` (validated)."""
    return HEADS + check_short_name(name, "branch")


def tag_ref(name: str) -> str:
    """Return the full ref of tag ``name`` (validated)."""
    return TAGS + check_short_name(name, "tag")


def symbolic(target: str) -> str:
    """Return the value of a symbolic ref pointing at ``target``."""
    return SYMBOLIC_PREFIX + target


def symbolic_target(value: str | None) -> str | None:
    """Return the ref a symbolic value points at, or None for an id or absence."""
    if value is not None and value.startswith(SYMBOLIC_PREFIX):
        return value[len(SYMBOLIC_PREFIX) :]
    return None


def remote_ref(remote: str, branch: str) -> str:
    """Return the remote-tracking ref of ``remote``'s ``branch`` (both validated)."""
    check_short_name(remote, "remote")
    if "/" in remote:
        raise InvalidInputError(f"remote name must not contain '/': {remote!r}")
    return f"{REMOTES}{remote}/{check_short_name(branch, 'branch')}"
