"""Who is calling an MCP tool, and whether their token lets them.

Over HTTP each request's bearer token is checked by
:class:`~contextfs.mcp.http.TokenGate`, which leaves the resulting
:class:`~contextfs.tokens.Grant` in the request's ASGI scope. Before a tool
runs, :func:`granted` puts it in :data:`CURRENT` (a context variable, which
the SDK's worker threads inherit), :func:`check_tool` refuses tools beyond
it, and :func:`acting_as` makes a named token's writes its own: each client
with its own token is its own actor in the op log and in commits. Over stdio
there is no token and everything runs as the server's actor.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from ..errors import PermissionDeniedError
from ..model import refs as refnames
from ..repo import Repository
from ..tokens import Grant, Scope

#: The ASGI scope key under which the HTTP gate leaves a request's grant.
GRANT_KEY = "contextfs.grant"
#: The grant of the tool call running now (None: stdio, or HTTP without tokens).
CURRENT: ContextVar[Grant | None] = ContextVar("contextfs_mcp_grant", default=None)

#: What each tool needs; a tool not listed needs admin.
TOOL_SCOPES: Mapping[str, Scope] = {
    "recall": Scope.READ,
    "context": Scope.READ,
    "session": Scope.READ,
    "history": Scope.READ,
    "diff": Scope.READ,
    "verify": Scope.READ,
    "prove": Scope.READ,
    "remember": Scope.WRITE,
    "commit": Scope.WRITE,
    "branch": Scope.WRITE,
    "switch": Scope.WRITE,
    "merge": Scope.WRITE,
    "revert": Scope.WRITE,
    "forget": Scope.WRITE,
}


def grant_of(asgi_scope: Mapping[str, Any] | None) -> Grant | None:
    """The grant the HTTP gate left in a request's scope, if any."""
    if asgi_scope is None:
        return None
    grant = asgi_scope.get(GRANT_KEY)
    return grant if isinstance(grant, Grant) else None


@contextlib.contextmanager
def granted(grant: Grant | None) -> Iterator[None]:
    """Run the block as ``grant``'s bearer."""
    token = CURRENT.set(grant)
    try:
        yield
    finally:
        CURRENT.reset(token)


def acting_as(default: str) -> str:
    """Who the running call writes as: its token's name, else ``default``."""
    grant = CURRENT.get()
    return grant.name if grant is not None and grant.name else default


def check_tool(name: str, arguments: Mapping[str, Any], repo: Repository) -> None:
    """Refuse tool ``name`` with ``arguments`` unless the running call's grant covers it.

    Reads need any token; writes a write token whose branches cover the
    current branch (and the branch a ``branch`` or ``switch`` names); a purge
    (``forget`` with ``purge``) needs admin.

    Raises:
        PermissionDeniedError: it does not.
    """
    grant = CURRENT.get()
    if grant is None:
        return
    needed, named = _needs(name, arguments)
    grant.require(needed, f"use {name}" + _detail(name, arguments))
    if needed is Scope.READ or grant.branches is None:
        return
    current = repo.current_branch
    if current is None:
        raise PermissionDeniedError(
            f"HEAD is detached; token {grant.name!r} may only move branches matching"
            f" {grant.branches!r}"
        )
    moved = [refnames.branch_ref(current)]
    if named is not None:
        moved.append(refnames.branch_ref(named))
    grant.require_refs(moved)


def _needs(name: str, arguments: Mapping[str, Any]) -> tuple[Scope, str | None]:
    """The scope tool ``name`` needs with ``arguments``, and the branch it names, if any."""
    if name == "forget" and arguments.get("purge"):
        return Scope.ADMIN, None
    if name == "branch":
        target = arguments.get("name")
        if not isinstance(target, str):
            return Scope.READ, None  # a listing
        return (Scope.ADMIN if arguments.get("delete") else Scope.WRITE), target
    if name == "switch":
        target = arguments.get("branch")
        return Scope.WRITE, target if isinstance(target, str) else None
    return TOOL_SCOPES.get(name, Scope.ADMIN), None


def _detail(name: str, arguments: Mapping[str, Any]) -> str:
    if name == "forget" and arguments.get("purge"):
        return " with purge"
    if name == "branch" and arguments.get("delete"):
        return " to delete a branch"
    return ""


__all__ = ["CURRENT", "GRANT_KEY", "TOOL_SCOPES", "acting_as", "check_tool", "grant_of", "granted"]
