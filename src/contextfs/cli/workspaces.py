"""``contextfs workspace``: the checkouts' workspaces in a shared store, and pruning them."""

from __future__ import annotations

from typing import Any

import click

from ..errors import InvalidInputError
from ..integrity.prune import PruneReport
from ..store.base import WorkspaceInfo, WorkspaceStore
from .common import emit_json, json_option, open_repo


def _shape(info: WorkspaceInfo) -> dict[str, Any]:
    return {"name": info.name, "folder": info.folder, "machine": info.machine, "refs": info.refs}


@click.group()
def workspace() -> None:
    """The workspaces of a shared store: one per folder made with init --store."""


@workspace.command("list")
@json_option()
@click.pass_context
def workspace_list(ctx: click.Context, as_json: bool) -> None:
    """List the store's workspaces: where each is checked out and what its HEAD is."""
    store = open_repo(ctx).store
    if not isinstance(store, WorkspaceStore):
        raise InvalidInputError(
            "this repository's store keeps no workspaces; they live in shared"
            " (postgresql://) stores"
        )
    found = store.workspaces()
    if as_json:
        emit_json([_shape(info) for info in found])
        return
    for info in found:
        here = " (this one)" if info.name == store.workspace else ""
        where = f"{info.machine}:{info.folder}" if info.folder else "(checkout not recorded)"
        click.echo(f"{info.name}  {where}  HEAD {info.refs.get('HEAD', '(none)')}{here}")


@workspace.command("prune")
@click.option("--dry-run", is_flag=True, help="Report what would be pruned; change nothing.")
@json_option()
@click.pass_context
def workspace_prune(ctx: click.Context, dry_run: bool, as_json: bool) -> None:
    """Drop the workspaces whose checkout on this machine is gone.

    A deleted folder leaves its workspace (HEAD and stage) in the store;
    this drops those of folders on this machine that no longer hold the
    repository. Run gc afterwards to collect what only their stages held.
    """
    report = open_repo(ctx).prune_workspaces(dry_run=dry_run)
    if as_json:
        emit_json(_report_shape(report))
        return
    verb = "would prune" if dry_run else "pruned"
    for info in report.pruned:
        click.echo(f"{verb} {info.name} ({info.folder} on {info.machine} is gone)")
    for info, why in report.kept:
        click.echo(f"kept {info.name}: {why}")
    if not report.pruned:
        click.echo("nothing to prune")


def _report_shape(report: PruneReport) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run,
        "pruned": [_shape(info) for info in report.pruned],
        "kept": [{**_shape(info), "why": why} for info, why in report.kept],
    }
