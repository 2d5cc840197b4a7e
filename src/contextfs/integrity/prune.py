"""Pruning the workspaces of checkouts that are gone, as ``git worktree prune`` does.

A folder made by ``contextfs init --store postgresql://...`` gets a
workspace in the shared store: its own ``HEAD`` and stage, kept there under
``workspaces/<name>/``, and a record of the folder and machine it was made
on. When the folder is deleted the workspace stays behind, and its stage
keeps memories alive that no one will commit. Pruning drops the workspaces
whose recorded folder, on this machine, no longer holds a repository naming
them; the next ``gc`` collects what only they reached.

Kept: workspaces recorded on another machine (this one cannot look), those
made before folders were recorded (nothing to look at), and the one in use.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from ..config import read_config
from ..errors import ContextFSError, InvalidInputError
from ..store.base import Store, WorkspaceInfo, WorkspaceStore


@dataclass
class PruneReport:
    """What a prune dropped (or would drop), and what it kept and why."""

    pruned: list[WorkspaceInfo] = field(default_factory=list)
    kept: list[tuple[WorkspaceInfo, str]] = field(default_factory=list)
    dry_run: bool = False


def this_machine() -> str:
    """The name workspaces record for the machine they were made on."""
    return socket.gethostname()


def checked_out(info: WorkspaceInfo) -> bool:
    """Whether the workspace's recorded folder still holds a repository that names it."""
    if info.folder is None:
        return True
    folder = Path(info.folder)
    try:
        if not folder.is_dir():
            return False
        return read_config(folder).workspace == info.name
    except (OSError, ContextFSError):
        return True  # unreadable is not gone: never drop what cannot be checked


def prune_workspaces(
    store: Store, *, machine: str | None = None, dry_run: bool = False
) -> PruneReport:
    """Drop the workspaces whose checkout on this machine is gone (see the module).

    Raises:
        InvalidInputError: the store keeps no workspaces (it is not a shared store).
    """
    if not isinstance(store, WorkspaceStore):
        raise InvalidInputError(
            "this repository's store keeps no workspaces; they live in shared"
            " (postgresql://) stores"
        )
    here = machine if machine is not None else this_machine()
    report = PruneReport(dry_run=dry_run)
    for info in store.workspaces():
        if info.name == store.workspace:
            report.kept.append((info, "in use here"))
        elif info.folder is None:
            report.kept.append((info, "its checkout was not recorded"))
        elif info.machine != here:
            report.kept.append((info, f"checked out on {info.machine}"))
        elif checked_out(info):
            report.kept.append((info, "its checkout exists"))
        else:
            report.pruned.append(info)
            if not dry_run:
                store.drop_workspace(info.name)
    return report


__all__ = ["PruneReport", "checked_out", "prune_workspaces", "this_machine"]
