"""What connecting, disconnecting or listing does to one config file, decided before any write.

Pure: each function takes the file's bytes as they are (``None``: no file)
and returns a :class:`Change` (the bytes it should hold, or ``None`` to leave
it alone) or a :class:`Registration` (what it holds). Every refusal is raised
here, so a command plans all its files first and writes none when one fails.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import ConflictError
from .clients import Client, Scope
from .configfile import (
    ConfigFileError,
    decode_text,
    encode_text,
    entry_in,
    merged_entry,
    with_entry,
    without_entry,
)

#: What a connect or disconnect did (or, with a dry run, would do) to one file.
Outcome = Literal[
    "connected", "updated", "replaced", "already connected", "disconnected", "not connected"
]
#: What ``connect --list`` finds in one file.
Status = Literal["connected", "other", "not connected", "no file", "unreadable"]

#: The names of the script ``connect`` writes as an entry's command (lower case).
_SCRIPTS = ("contextfs", "contextfs.exe")
#: Keys that make a client start a server some other way than ``command``: Gemini CLI
#: prefers ``httpUrl`` and ``url`` to ``command``, Windsurf has ``serverUrl``.
_OTHER_TRANSPORTS = ("url", "httpUrl", "serverUrl")


class EntryConflictError(ConflictError):
    """A server that is not ours has the name; replacing or removing it needs --force."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """One server name in one client's config file of one scope.

    A project file that is also the client's user file (a project folder
    that is the home folder) is the user file: ``scope`` is ``user``.
    """

    client: Client
    scope: Scope
    path: Path
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """What one file held and what it will hold (``new is None``: left as it is).

    ``entry`` is what the file holds under the name once the change is made
    (``None`` when it holds nothing there).
    """

    target: Target
    outcome: Outcome
    old: bytes | None
    new: bytes | None
    entry: Mapping[str, Any] | None

    @property
    def writes(self) -> bool:
        """Whether the file is to be written."""
        return self.new is not None

    def diff(self) -> str:
        """The change as a unified diff (empty when nothing changes)."""
        if self.new is None:
            return ""
        where = str(self.target.path)
        old = self.old.decode("utf-8", "replace") if self.old is not None else ""
        lines = difflib.unified_diff(
            old.splitlines(keepends=True),
            self.new.decode("utf-8").splitlines(keepends=True),
            fromfile=where if self.old is not None else "/dev/null",
            tofile=where,
        )
        return "".join(
            line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
            for line in lines
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Registration:
    """What a file holds under the server name, for ``connect --list``.

    ``repo`` and ``actor`` are what a ContextFS entry passes as ``--repo`` and
    ``--actor``; ``reason`` says why an unreadable file could not be read.
    """

    target: Target
    status: Status
    repo: str | None = None
    actor: str | None = None
    reason: str | None = None


def plan_connect(
    target: Target, old: bytes | None, entry: Mapping[str, Any], *, force: bool
) -> Change:
    """Register ``entry`` under the target's name, unless it is there already.

    An entry that has every key of ``entry`` with the same value counts as
    the same (keys the user or the client added, such as ``env``, stay). One
    that runs ContextFS otherwise (another folder, command or actor) is
    ``updated``; any other is ``replaced``, only with ``force``. Either way
    only the keys of ``entry`` change, in place (and keys that would make
    the client start it some other way, such as ``url``, go): the entry's
    other keys stay.

    Raises:
        ConfigFileError: the file is malformed.
        EntryConflictError: an entry that does not run ContextFS has the
            name and ``force`` is off.
        CommentsWouldBeLostError: the file is JSONC with comments and would change.
    """
    client, path = target.client, str(target.path)
    text = decode_text(old, path) if old is not None else None
    current = (
        entry_in(client.format, text, client.servers_key, target.name, path)
        if text is not None
        else None
    )
    if current is not None and all(current.get(k, _MISSING) == v for k, v in entry.items()):
        return Change(target=target, outcome="already connected", old=old, new=None, entry=current)
    ours = current is not None and runs_contextfs(current)
    if current is not None and not ours and not force:
        raise EntryConflictError(
            f"{path} already has a server {target.name!r} that does not run contextfs;"
            " replace it with --force, or choose another name with --name"
        )
    drop = _other_transports(target.client.typed, current or {})
    edited = with_entry(
        client.format, text, client.servers_key, target.name, entry, path, drop=drop
    )
    return Change(
        target=target,
        outcome="connected" if current is None else "updated" if ours else "replaced",
        old=old,
        new=encode_text(edited, path),
        entry=merged_entry(current, entry, drop),
    )


def _other_transports(typed: bool, current: Mapping[str, Any]) -> list[str]:
    """The keys of ``current`` that would start the server other than by its command."""
    drop = [key for key in _OTHER_TRANSPORTS if key in current]
    if not typed and current.get("type", "stdio") != "stdio":
        drop.append("type")  # "sse", "http": a client without types would not run the command
    return drop


def plan_disconnect(target: Target, old: bytes | None, *, force: bool) -> Change:
    """Remove the entry registered under the target's name, if there is one.

    Raises:
        ConfigFileError: the file is malformed.
        EntryConflictError: the entry does not run ContextFS and ``force`` is off.
        CommentsWouldBeLostError: the file is JSONC with comments and has the entry.
    """
    client, path = target.client, str(target.path)
    if old is None:
        return Change(target=target, outcome="not connected", old=None, new=None, entry=None)
    text = decode_text(old, path)
    current = entry_in(client.format, text, client.servers_key, target.name, path)
    if current is None:
        return Change(target=target, outcome="not connected", old=old, new=None, entry=None)
    if not force and not runs_contextfs(current):
        raise EntryConflictError(
            f"the server {target.name!r} in {path} does not run contextfs; remove it anyway"
            " with --force"
        )
    edited = without_entry(client.format, text, client.servers_key, target.name, path)
    return Change(
        target=target, outcome="disconnected", old=old, new=encode_text(edited, path), entry=None
    )


def inspect(target: Target, old: bytes | None) -> Registration:
    """What the file holds under the target's name; a file that cannot be read says why."""
    client, path = target.client, str(target.path)
    if old is None:
        return Registration(target=target, status="no file")
    try:
        text = decode_text(old, path)
        current = entry_in(client.format, text, client.servers_key, target.name, path)
    except ConfigFileError as exc:
        where = f"line {exc.line}: " if exc.line is not None else ""
        return Registration(target=target, status="unreadable", reason=where + exc.problem)
    if current is None:
        return Registration(target=target, status="not connected")
    if not runs_contextfs(current):
        return Registration(target=target, status="other")
    args = _strings(current.get("args"))
    return Registration(
        target=target,
        status="connected",
        repo=_option(args, "--repo"),
        actor=_option(args, "--actor"),
    )


def runs_contextfs(entry: Mapping[str, Any]) -> bool:
    """Whether an entry has the shape of one ``connect`` writes: it runs ``contextfs ... mcp``.

    Its command is the ``contextfs`` script (``contextfs.exe``) or its
    arguments start with ``-m contextfs``, and ``mcp`` is among them. A
    command that merely mentions contextfs (a filesystem server over a folder
    of that name, another project called contextfs) is not ours.
    """
    command = entry.get("command")
    args = entry.get("args", [])
    if not isinstance(command, str) or not isinstance(args, list):
        return False
    script = re.split(r"[\\/]", command)[-1].lower() in _SCRIPTS
    return (script or args[:2] == ["-m", "contextfs"]) and "mcp" in args


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _option(args: list[str], flag: str) -> str | None:
    """The value of ``flag`` in ``args`` (``--flag VALUE`` or ``--flag=VALUE``)."""
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg[len(flag) + 1 :]
    return None


_MISSING = object()

__all__ = [
    "Change",
    "EntryConflictError",
    "Outcome",
    "Registration",
    "Status",
    "Target",
    "inspect",
    "plan_connect",
    "plan_disconnect",
    "runs_contextfs",
]
