"""``contextfs connect`` and ``contextfs disconnect``: register ``contextfs mcp`` in AI clients.

Thin: this reads argv and the environment (which script runs, the home
folder, ``XDG_CONFIG_HOME``, ``APPDATA``, ``CODEX_HOME``,
``CONTEXTFS_STORE_URL``), finds the repository, and hands the rest to
:mod:`contextfs.connect`. Every file is read and planned, under its lock,
before any is written, so a refusal leaves every file as it was; an OS
error while writing may leave earlier files of the run written (each whole,
with its backup).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import click
from rich.table import Table

from ..config import read_config as read_repo_config
from ..connect import (
    CLIENTS,
    Change,
    Client,
    ConfigFileError,
    Host,
    Registration,
    Scope,
    Target,
    apply,
    backup_path,
    check_writable,
    client_named,
    inspect,
    locked,
    plan_connect,
    plan_disconnect,
    read_config,
    server_command,
)
from ..discovery import ENV_DIR, find_repository
from ..errors import InvalidInputError, RepositoryLocationError, RepositoryNotFoundError
from ..history.commits import check_author
from ..oplog.entry import MAX_NAME_LENGTH
from ..repo import Repository
from ..store.urls import STORE_URL_ENV
from .common import F, Settings, emit_json, json_option, open_repo, show

#: The server name an entry is registered under unless --name says otherwise.
DEFAULT_NAME = "contextfs"
#: What a server name may be: every client's format takes it as a bare key.
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
#: What to install when the MCP SDK is missing (the server needs it, connect does not).
MCP_EXTRA = "pip install 'contextfs-vcs[mcp]'"
#: The hint after a project-level file is written: it is not portable.
MACHINE_PATHS_HINT = (
    "project-level files name paths on this machine (the contextfs command, the"
    " repository's folder): teammates run 'contextfs connect' themselves, so keep them"
    " out of version control, or share them knowingly"
)
_VERBS = {
    "connected": ("connected in", "would connect in"),
    "updated": ("updated the entry in", "would update the entry in"),
    "replaced": ("replaced the entry in", "would replace the entry in"),
    "already connected": ("already connected in", "already connected in"),
    "disconnected": ("disconnected from", "would disconnect from"),
    "not connected": ("not connected in", "not connected in"),
}


def _clients(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[Client, ...]:
    """The clients CLIENT... names (ids or aliases, any case), each once, in order."""
    try:
        chosen = [client_named(value) for value in values]
    except InvalidInputError as exc:
        raise click.BadParameter(str(exc)) from None
    return tuple({client.id: client for client in chosen}.values())


def _check_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not NAME_PATTERN.fullmatch(value):
        raise click.BadParameter(
            f"{value!r} is not a server name: a letter, then letters, digits, '_' or '-'"
        )
    return value


def _check_actor(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        check_author(value)
    except InvalidInputError as exc:
        raise click.BadParameter(str(exc)) from None
    if len(value) > MAX_NAME_LENGTH:
        raise click.BadParameter(f"longer than {MAX_NAME_LENGTH} characters")
    return value


def _shared_options(func: F) -> F:
    """``--project``, ``--user``, ``--name``, ``--dry-run`` and ``--json``."""
    decorators: list[Callable[[F], F]] = [
        click.option(
            "--project",
            is_flag=True,
            help="The project's config file (default for clients that have one).",
        ),
        click.option("--user", is_flag=True, help="The config file in your user profile."),
        click.option(
            "--name",
            metavar="NAME",
            default=DEFAULT_NAME,
            show_default=True,
            callback=_check_name,
            help="The server's name in the config file.",
        ),
        click.option(
            "--dry-run", is_flag=True, help="Print each file's change as a diff; write nothing."
        ),
        json_option("Print the result as JSON."),
    ]
    for decorate in reversed(decorators):
        func = decorate(func)
    return func


@click.command()
@click.argument("clients", metavar="CLIENT...", nargs=-1, callback=_clients)
@click.option(
    "--list", "listing", is_flag=True, help="Show every client's config files and status."
)
@_shared_options
@click.option(
    "--actor",
    metavar="NAME",
    default=None,
    callback=_check_actor,
    help="Who the server's writes are recorded as (default per client: cursor, gemini-cli, ...).",
)
@click.option("--force", is_flag=True, help="Replace a different entry of that name.")
@click.pass_context
def connect(
    ctx: click.Context,
    clients: tuple[Client, ...],
    listing: bool,
    project: bool,
    user: bool,
    name: str,
    dry_run: bool,
    as_json: bool,
    actor: str | None,
    force: bool,
) -> None:
    """Register this repository's MCP server in AI clients' config files.

    CLIENT: claude-code, claude-desktop, cursor, vscode, windsurf, gemini or
    codex. The entry runs 'contextfs --repo FOLDER mcp --actor ACTOR'. Other
    servers and settings in the file are kept; a changed file is backed up
    to FILE.bak first. An entry of ours that differs is updated; any other
    entry of that name is replaced only with --force.
    """
    scope = _scope(project, user)
    if listing:
        if actor is not None or dry_run or force:
            raise click.UsageError("--list cannot be used with --actor, --dry-run or --force")
        _show_list(ctx, clients or CLIENTS, scope, name, as_json)
        return
    if not clients:
        raise click.UsageError("give at least one CLIENT, or --list")
    chosen = _scoped(clients, scope)
    _refuse_other_store(ctx)
    folder = _project_folder(open_repo(ctx))
    host = _host()
    command = server_command(sys.argv[0], sys.executable)
    entries = {
        client.id: client.entry(
            [*command, "--repo", str(folder), "mcp", "--actor", actor or client.actor]
        )
        for client, _ in chosen
    }
    _carry_out(
        [_target(client, where, name, folder, host) for client, where in chosen],
        lambda target, old: plan_connect(target, old, entries[target.client.id], force=force),
        dry_run=dry_run,
        as_json=as_json,
    )
    if importlib.util.find_spec("mcp") is None:
        click.echo(f"note: the server needs the MCP SDK: {MCP_EXTRA}", err=True)


@click.command()
@click.argument("clients", metavar="CLIENT...", nargs=-1, required=True, callback=_clients)
@_shared_options
@click.option("--force", is_flag=True, help="Remove the entry even if it does not run contextfs.")
@click.pass_context
def disconnect(
    ctx: click.Context,
    clients: tuple[Client, ...],
    project: bool,
    user: bool,
    name: str,
    dry_run: bool,
    as_json: bool,
    force: bool,
) -> None:
    """Remove the MCP server entry from AI clients' config files.

    Removes the entry named --name (default contextfs) that connect wrote,
    keeping everything else; the file is backed up to FILE.bak first.
    """
    chosen = _scoped(clients, _scope(project, user))
    folder = None
    if any(where == "project" for _, where in chosen):
        folder = _project_folder(open_repo(ctx))
    host = _host()
    _carry_out(
        [_target(client, where, name, folder, host) for client, where in chosen],
        lambda target, old: plan_disconnect(target, old, force=force),
        dry_run=dry_run,
        as_json=as_json,
    )


# -- choosing files --------------------------------------------------------------------


def _scope(project: bool, user: bool) -> Scope | None:
    if project and user:
        raise click.UsageError("--project and --user cannot be used together")
    return "project" if project else "user" if user else None


def _scoped(clients: Sequence[Client], scope: Scope | None) -> list[tuple[Client, Scope]]:
    """Each client with the scope it is asked for, refusing a scope it does not read."""
    chosen = []
    for client in clients:
        where = scope or client.default_scope
        if where not in client.scopes:
            raise click.UsageError(
                f"{client.id} has no project-level config file (it reads only"
                f" {client.user_file(_host())}); leave out --project"
            )
        chosen.append((client, where))
    return chosen


def _target(client: Client, scope: Scope, name: str, folder: Path | None, host: Host) -> Target:
    """The file of ``scope``; a project file that is the user file (a project at home) is that."""
    path = client.path(scope, folder=folder, host=host)
    if scope == "project":
        user = client.path("user", folder=None, host=host)
        if os.path.realpath(path) == os.path.realpath(user):
            scope, path = "user", user
    return Target(client=client, scope=scope, path=path, name=name)


def _project_folder(repo: Repository) -> Path:
    """The folder that holds the repository's ``.contextfs``, absolute, symlinks kept."""
    if repo.path is None:
        raise RepositoryLocationError(
            "this repository has no folder (it was opened by URL), and the MCP server needs"
            " one to open: give --repo the folder that holds its .contextfs"
        )
    return Path(os.path.abspath(repo.path)).parent


def _refuse_other_store(ctx: click.Context) -> None:
    """Refuse when the CLI works on ``$CONTEXTFS_STORE_URL`` but the server would not.

    The entry passes ``--repo FOLDER``, and a server opened that way reads the
    folder's own config, not the environment of this shell.
    """
    url = os.environ.get(STORE_URL_ENV)
    settings = ctx.find_object(Settings)
    if not url or (settings is not None and settings.repo_path is not None):
        return
    try:
        found = find_repository()
    except RepositoryNotFoundError:
        return  # no folder at all: _project_folder says so
    if read_repo_config(found).store == url:
        return
    raise RepositoryLocationError(
        f"{STORE_URL_ENV} is set, so this command works on that store, but the entry's --repo"
        f" {found.parent} would make the server open that folder's own store; unset"
        f" {STORE_URL_ENV}, or connect a folder whose store is that URL (made with"
        " 'contextfs init FOLDER --store URL')"
    )


def _host() -> Host:
    return Host(home=Path.home(), environ=dict(os.environ), platform=sys.platform)


# -- writing and reporting -------------------------------------------------------------


def _carry_out(
    targets: Sequence[Target],
    plan: Callable[[Target, bytes | None], Change],
    *,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Plan every file, then write (or, in a dry run, show) each change, and report each file.

    Runs that write hold the files' locks from the first read to the last
    write, so concurrent runs take turns. When a write fails after others
    were made, what was done is still reported (``--json``: the list of
    files done) before the error propagates.
    """
    with contextlib.nullcontext() if dry_run else locked(t.path for t in targets):
        changes = []
        for target in targets:
            change = plan(target, read_config(target.path))
            check_writable(change)
            changes.append(change)
        results: list[tuple[Change, Path | None]] = []
        try:
            for change in changes:
                backup = apply(change) if change.writes and not dry_run else None
                results.append((change, backup))
                if as_json:
                    continue
                if dry_run and change.writes:
                    click.echo(change.diff(), nl=False)
                click.echo(_line(change, backup, dry_run=dry_run))
        except BaseException:
            if as_json and any(change.writes for change, _ in results):
                emit_json([_change_json(c, b, dry_run=dry_run) for c, b in results])
            raise
    if as_json:
        emit_json([_change_json(c, b, dry_run=dry_run) for c, b in results])
        return
    hints = [hint for change in changes if not dry_run for hint in _hints(change)]
    for hint in dict.fromkeys(hints):
        click.echo(f"hint: {hint}")


def _line(change: Change, backup: Path | None, *, dry_run: bool) -> str:
    target = change.target
    verb = _VERBS[change.outcome][1 if dry_run else 0]
    named = f" as {target.name!r}" if target.name != DEFAULT_NAME else ""
    line = f"{target.client.id}: {verb} {target.path}{named}"
    if backup is not None:
        line += f" (backup: {backup})"
    elif change.writes and change.old is None:
        line += " (new file)"
    elif dry_run and change.writes:
        line += f" (backup: {backup_path(target.path)})"
    elif change.old is None:
        line += " (no file)"
    return line


def _client_hint(change: Change) -> str | None:
    """What the client needs once the file is written (approval, trust, a restart)."""
    if change.outcome not in ("connected", "updated", "replaced"):
        return None
    return change.target.client.hints.get(change.target.scope)


def _hints(change: Change) -> list[str]:
    """The client's hint, and for a project-level file written, that it is not portable."""
    hint = _client_hint(change)
    hints = [hint] if hint is not None else []
    if change.writes and change.target.scope == "project" and change.outcome != "disconnected":
        hints.append(MACHINE_PATHS_HINT)
    return hints


def _change_json(change: Change, backup: Path | None, *, dry_run: bool) -> dict[str, object]:
    target = change.target
    shape: dict[str, object] = {
        "client": target.client.id,
        "scope": target.scope,
        "path": str(target.path),
        "name": target.name,
        "outcome": change.outcome,
        "written": change.writes and not dry_run,
        "backup": str(backup) if backup is not None else None,
        "entry": dict(change.entry) if change.entry is not None else None,
        "hint": None if dry_run else _client_hint(change),
        "hints": [] if dry_run else _hints(change),
    }
    if dry_run:
        shape["diff"] = change.diff()
    return shape


# -- listing ---------------------------------------------------------------------------


def _show_list(
    ctx: click.Context, clients: Sequence[Client], scope: Scope | None, name: str, as_json: bool
) -> None:
    folder, why = _listing_folder(ctx)
    if folder is None and scope == "project":
        click.echo(f"note: {why}: no project files to list", err=True)
    host = _host()
    targets = [
        _target(client, where, name, folder, host)
        for client in clients
        for where in client.scopes
        if (scope is None or where == scope) and (where == "user" or folder is not None)
    ]
    unique: dict[tuple[str, str, Path], Target] = {}
    for target in targets:  # a project file that is the user file (a project at home): once
        unique.setdefault((target.client.id, target.scope, target.path), target)
    found = [_registration(target) for target in unique.values()]
    if as_json:
        emit_json([_registration_json(r) for r in found])
        return
    if not found:
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("client", "scope", "status", "actor"):
        table.add_column(column, no_wrap=True)
    for column in ("repository", "file"):  # long paths fold onto more lines rather than vanish
        table.add_column(column, overflow="fold")
    for r in found:
        status = f"unreadable: {r.reason}" if r.status == "unreadable" else r.status
        table.add_row(
            r.target.client.id,
            r.target.scope,
            status,
            r.actor or "",
            r.repo or "",
            str(r.target.path),
        )
    show(table)


def _listing_folder(ctx: click.Context) -> tuple[Path | None, str]:
    """The project folder, or ``None`` and why (only user files are listed then)."""
    settings = ctx.find_object(Settings)
    named = (settings is not None and settings.repo_path is not None) or ENV_DIR in os.environ
    try:
        return _project_folder(open_repo(ctx)), ""
    except RepositoryNotFoundError:
        if named:  # a repository asked for by name must be there
            raise
        return None, "not in a repository"
    except RepositoryLocationError:  # opened by URL ($CONTEXTFS_STORE_URL): no folder
        return None, "the repository has no folder (it was opened by URL)"


def _registration(target: Target) -> Registration:
    try:
        data = read_config(target.path)
    except ConfigFileError as exc:
        return Registration(target=target, status="unreadable", reason=exc.problem)
    except OSError as exc:
        return Registration(target=target, status="unreadable", reason=exc.strerror or str(exc))
    return inspect(target, data)


def _registration_json(found: Registration) -> dict[str, object]:
    return {
        "client": found.target.client.id,
        "scope": found.target.scope,
        "path": str(found.target.path),
        "name": found.target.name,
        "status": found.status,
        "repo": found.repo,
        "actor": found.actor,
        "reason": found.reason,
    }


__all__ = ["connect", "disconnect"]
