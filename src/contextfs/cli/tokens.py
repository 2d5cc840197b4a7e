"""``contextfs token create|list|revoke``: scoped tokens for serve and mcp --http, kept hashed."""

from __future__ import annotations

import time
from typing import Any

import click

from ..tokens import Scope, TokenRecord, mint, parse_expiry, revoke, store_of
from .common import default_author, emit_json, json_option, open_repo


def _when(micros: int | None) -> str | None:
    if micros is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(micros / 1_000_000))


def _shape(record: TokenRecord, now: int) -> dict[str, Any]:
    return {
        "name": record.name,
        "scope": record.scope.label,
        "branches": record.branches,
        "state": record.state(now),
        "created": _when(record.created),
        "expires": _when(record.expires),
        "revoked": _when(record.revoked),
        "created_by": record.created_by,
    }


@click.group(name="token")
def token() -> None:
    """Scoped tokens for `contextfs serve` and `contextfs mcp --http`.

    The store keeps only each token's SHA-256, so a team on one PostgreSQL
    store shares them from every server. Once a store has had any token
    (revoked and expired ones count), its servers admit no client without one.
    """


@token.command("create")
@click.argument("name")
@click.option(
    "--scope",
    type=click.Choice(["read", "write", "admin"]),
    required=True,
    help="read: fetch, search, context; write: also push, commit, append ops, merge;"
    " admin: also force, delete refs, purge.",
)
@click.option(
    "--branch",
    "branches",
    metavar="GLOB",
    default=None,
    help="Only move branches matching GLOB (agents/*); never tags.",
)
@click.option(
    "--expires",
    metavar="WHEN",
    default=None,
    help="Stop working after a duration (30d, 12h) or at an ISO date (2027-01-31).",
)
@json_option()
@click.pass_context
def token_create(
    ctx: click.Context,
    name: str,
    scope: str,
    branches: str | None,
    expires: str | None,
    as_json: bool,
) -> None:
    """Create token NAME and print its secret, once: it is not kept and cannot be shown again.

    NAME is recorded as the author or actor of what the token writes.
    """
    store = store_of(open_repo(ctx).store)
    now = time.time_ns() // 1000
    secret, record = mint(
        name,
        Scope.parse(scope),
        created_by=default_author(),
        branches=branches,
        expires=None if expires is None else parse_expiry(expires, now),
        now=now,
    )
    store.add_token(record)
    if as_json:
        emit_json({**_shape(record, now), "token": secret})
        return
    click.echo(secret)
    limits = f" on branches {branches}" if branches else ""
    until = f" until {_when(record.expires)}" if record.expires else ""
    click.echo(
        f"Created {record.scope.label} token {name}{limits}{until}."
        " Keep it now: it is not stored and cannot be shown again.",
        err=True,
    )


@token.command("list")
@json_option()
@click.pass_context
def token_list(ctx: click.Context, as_json: bool) -> None:
    """List the tokens (never their secrets): scope, branches, state, dates."""
    store = store_of(open_repo(ctx).store)
    now = time.time_ns() // 1000
    records = store.list_tokens()
    if as_json:
        emit_json([_shape(record, now) for record in records])
        return
    for record in records:
        shape = _shape(record, now)
        extras = [f"branches {record.branches}"] if record.branches else []
        if record.expires and record.state(now) == "active":
            extras.append(f"expires {shape['expires']}")
        if record.revoked:
            extras.append(f"revoked {shape['revoked']}")
        tail = f"  ({', '.join(extras)})" if extras else ""
        click.echo(f"{record.name}\t{record.scope.label}\t{record.state(now)}{tail}")


@token.command("revoke")
@click.argument("name")
@click.pass_context
def token_revoke(ctx: click.Context, name: str) -> None:
    """Revoke token NAME: every server on this store refuses it from its next connection."""
    revoke(store_of(open_repo(ctx).store), name)
    click.echo(f"Revoked token {name}")


__all__ = ["token"]
