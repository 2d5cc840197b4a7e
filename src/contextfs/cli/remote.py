"""``contextfs remote|clone|fetch|pull|push``: copying history between stores, as git does."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from ..errors import MergeConflictError
from ..remote import sync
from ..remote.objects import RefUpdate
from ..repo import Repository
from ..store.urls import redact_url
from . import render
from .common import (
    TOKEN_ENV,
    Settings,
    author_option,
    ca_option,
    default_author,
    emit_json,
    json_option,
    open_repo,
    show,
)


def _token_option(func: Any) -> Any:
    """``--token`` and ``--ca``: what a ``ctx[s]://`` remote needs."""
    func = ca_option(func)
    return click.option(
        "--token", default=None, help=f"Token for a ctx:// remote (default: ${TOKEN_ENV})."
    )(func)


def _token(token: str | None) -> str | None:
    return token or os.environ.get(TOKEN_ENV)


def _shown(url: str) -> str:
    """A remote URL as printed: PostgreSQL URLs lose their password."""
    return redact_url(url) if url.startswith(("postgresql://", "postgres://")) else url


def _update_shape(update: RefUpdate) -> dict[str, Any]:
    return {"ref": update.name, "old": update.old, "new": update.new}


def _describe(update: RefUpdate) -> str:
    old = update.old[:12] if update.old else "(new)"
    new = update.new[:12] if update.new else "(deleted)"
    return f"  {update.name}: {old} -> {new}"


def _transfer_shape(result: sync.TransferResult) -> dict[str, Any]:
    return {
        "remote": result.remote,
        "updated": [_update_shape(u) for u in result.updated],
        "objects": result.objects,
        "bytes": result.bytes,
        "kept_tags": result.kept_tags,
        "purged": result.purged,
        "ignored_purges": result.ignored_purges,
    }


def _purges_option(func: Any) -> Any:
    return click.option(
        "--ignore-purges",
        is_flag=True,
        help="Keep text here that the remote purged (its purge records are not applied).",
    )(func)


def _report_purges(verb: str, result: sync.TransferResult) -> None:
    where = "here" if verb != "Pushed" else f"on {result.remote}"
    if result.purged:
        click.echo(f"Erased {len(result.purged)} purged memor(y/ies) {where}:")
        for atom in result.purged:
            click.echo(f"  {atom[:12]}")
    if result.ignored_purges:
        why = "--ignore-purges" if verb != "Pushed" else "they need an admin token"
        click.echo(f"Left {result.ignored_purges} purge(s) unapplied {where} ({why})")


def _report(verb: str, result: sync.TransferResult) -> None:
    _report_purges(verb, result)
    if not result.updated:
        click.echo(f"Everything up to date with {result.remote}")
        return
    click.echo(
        f"{verb} {result.objects} object(s) in a pack of {result.bytes} bytes;"
        f" {len(result.updated)} ref(s) updated:"
    )
    for update in result.updated:
        click.echo(_describe(update))
    for tag in result.kept_tags:
        click.echo(f"  kept local tag {tag} (the remote's names another commit)")


@click.group()
def remote() -> None:
    """Name other stores to fetch from and push to."""


@remote.command("add")
@click.argument("name")
@click.argument("url")
@click.pass_context
def remote_add(ctx: click.Context, name: str, url: str) -> None:
    """Name the remote at URL: ctx://HOST:PORT, postgresql://..., or a path."""
    sync.add_remote(open_repo(ctx), name, url)
    click.echo(f"Added remote {name} ({_shown(url)})")


@remote.command("remove")
@click.argument("name")
@click.pass_context
def remote_remove(ctx: click.Context, name: str) -> None:
    """Forget a remote and where its branches were."""
    sync.remove_remote(open_repo(ctx), name)
    click.echo(f"Removed remote {name}")


@remote.command("list")
@json_option()
@click.pass_context
def remote_list(ctx: click.Context, as_json: bool) -> None:
    """List the remotes and their URLs."""
    named = sync.remotes(open_repo(ctx))
    if as_json:
        emit_json({name: _shown(url) for name, url in named.items()})
        return
    for name, url in named.items():
        click.echo(f"{name}\t{_shown(url)}")


@click.command()
@click.argument("url")
@click.argument(
    "path", required=False, type=click.Path(file_okay=False, path_type=Path), default=None
)
@_token_option
@_purges_option
@json_option()
@click.pass_context
def clone(
    ctx: click.Context,
    url: str,
    path: Path | None,
    token: str | None,
    ca: Path | None,
    ignore_purges: bool,
    as_json: bool,
) -> None:
    """Copy the repository at URL into PATH/.contextfs (default: --repo, else here).

    The remote is named origin; its default branch is checked out. If the
    copy fails or is interrupted, nothing is left behind.
    """
    settings = ctx.find_object(Settings)
    target = path or (settings.repo_path if settings else None) or Path()
    repo = ctx.with_resource(
        sync.clone(url, target, token=_token(token), ca=ca, purges=not ignore_purges)
    )
    branches = repo.branches()
    if as_json:
        emit_json({"path": str(repo.path), "branch": repo.current_branch, "branches": branches})
        return
    where = (repo.path or target).resolve()
    click.echo(
        f"Cloned {_shown(url)} into {where}: {len(branches)} branch(es),"
        f" on {repo.current_branch or 'no branch'}"
    )


@click.command()
@click.argument("name", default=sync.ORIGIN)
@_token_option
@_purges_option
@json_option()
@click.pass_context
def fetch(
    ctx: click.Context,
    name: str,
    token: str | None,
    ca: Path | None,
    ignore_purges: bool,
    as_json: bool,
) -> None:
    """Copy NAME's new commits (default: origin) and update refs/remotes/NAME/*."""
    result = sync.fetch(open_repo(ctx), name, token=_token(token), ca=ca, purges=not ignore_purges)
    if as_json:
        emit_json(_transfer_shape(result))
    else:
        _report("Fetched", result)


@click.command()
@click.argument("name", default=sync.ORIGIN)
@click.argument("branch", required=False)
@_token_option
@_purges_option
@author_option
@json_option()
@click.pass_context
def pull(
    ctx: click.Context,
    name: str,
    branch: str | None,
    token: str | None,
    ca: Path | None,
    ignore_purges: bool,
    author: str | None,
    as_json: bool,
) -> None:
    """Fetch NAME, then fast-forward or merge its BRANCH into the current branch."""
    repo: Repository = open_repo(ctx)
    result = sync.pull(
        repo,
        name,
        branch,
        author=author or default_author(),
        token=_token(token),
        ca=ca,
        purges=not ignore_purges,
    )
    merge = result.merge
    stopped = merge is not None and merge.status == "conflicts"
    if as_json:
        emit_json(
            {
                "fetch": _transfer_shape(result.fetch),
                "up_to_date": result.up_to_date,
                "fast_forward": result.fast_forward,
                "merge": None
                if merge is None
                else {
                    "status": merge.status,
                    "commit": merge.commit,
                    "conflicts": len(merge.conflicts),
                },
            }
        )
    else:
        _say_pulled(repo, result)
    if stopped:
        assert merge is not None
        raise MergeConflictError(
            f"merge stopped on {len(merge.conflicts)} conflict(s): settle each with "
            "'contextfs resolve ID --ours|--theirs' then commit, or 'contextfs merge --abort'"
        )


def _say_pulled(repo: Repository, result: sync.PullResult) -> None:
    merge = result.merge
    _report("Fetched", result.fetch)
    if result.up_to_date:
        click.echo("Already up to date.")
    elif merge is None or merge.status == "fast-forward":
        click.echo(f"Fast-forwarded {repo.current_branch} to {repo.head()}")
    elif merge.status == "conflicts":
        show(render.conflicts_table(merge.conflicts))
    else:
        click.echo(f"Merged into {repo.current_branch}: {merge.commit}")


@click.command()
@click.argument("name", default=sync.ORIGIN)
@click.argument("branch", required=False)
@click.option(
    "--force", is_flag=True, help="Replace the remote branch even if it has commits this one lacks."
)
@_token_option
@json_option()
@click.pass_context
def push(
    ctx: click.Context,
    name: str,
    branch: str | None,
    force: bool,
    token: str | None,
    ca: Path | None,
    as_json: bool,
) -> None:
    """Send BRANCH (default: the current one) to NAME (default: origin).

    Refused if the remote branch has commits this one lacks, unless --force;
    even then the remote branch moves only if nobody pushed since it was read.
    """
    result = sync.push(open_repo(ctx), name, branch, force=force, token=_token(token), ca=ca)
    if as_json:
        emit_json(_transfer_shape(result))
    else:
        _report("Pushed", result)
