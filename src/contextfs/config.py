"""A repository's settings file, ``.contextfs/config.json``: its store, embedder and remotes.

Like git's ``config``, it holds what is local to one checkout and never
travels: the URL of the store when it is not the folder's own SQLite file,
the embedder that finds memories by meaning when it is not the default, and
the remotes ``contextfs remote add`` names. It is rewritten whole
(temporary file, ``fsync``, rename), so a crash leaves the old or the new
file, never half of one. The file is private to its owner (mode 0600),
because a URL may carry a password; prefer ``~/.pgpass`` for those.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from .embed.names import check_embedder_name
from .errors import CorruptObjectError, InvalidInputError
from .model.refs import check_short_name

CONFIG_FILE: Final = "config.json"


@dataclass
class RepoConfig:
    """What ``config.json`` says; missing keys take these defaults."""

    store: str | None = None
    workspace: str | None = None
    embedder: str | None = None
    remotes: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """The file's bytes: sorted keys, two-space indent, one trailing newline."""
        shape: dict[str, object] = {"remotes": dict(sorted(self.remotes.items()))}
        if self.store is not None:
            shape["store"] = self.store
        if self.workspace is not None:
            shape["workspace"] = self.workspace
        if self.embedder is not None:
            shape["embedder"] = self.embedder
        return (json.dumps(shape, indent=2, sort_keys=True) + "\n").encode()


def read_config(folder: Path) -> RepoConfig:
    """Return the settings of the repository in ``folder`` (defaults if it has no file).

    Raises:
        CorruptObjectError: the file is not the JSON object this module writes.
    """
    path = folder / CONFIG_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return RepoConfig()
    try:
        shape = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptObjectError(f"{str(path)!r} is not valid JSON: {exc}") from None
    store = shape.get("store") if isinstance(shape, dict) else None
    workspace = shape.get("workspace") if isinstance(shape, dict) else None
    embedder = shape.get("embedder") if isinstance(shape, dict) else None
    remotes = shape.get("remotes", {}) if isinstance(shape, dict) else None
    if (
        not isinstance(shape, dict)
        or not (store is None or isinstance(store, str))
        or not (workspace is None or isinstance(workspace, str))
        or not (embedder is None or isinstance(embedder, str))
        or not isinstance(remotes, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in remotes.items())
    ):
        raise CorruptObjectError(
            f"{str(path)!r} must be an object with optional strings 'store', 'workspace'"
            " and 'embedder' and a 'remotes' object of name -> URL strings"
        )
    if embedder is not None:
        try:
            check_embedder_name(embedder)
        except InvalidInputError as exc:
            raise CorruptObjectError(f"{str(path)!r} names a bad embedder: {exc}") from None
    return RepoConfig(store=store, workspace=workspace, embedder=embedder, remotes=dict(remotes))


def write_config(folder: Path, config: RepoConfig) -> None:
    """Replace ``folder``'s settings file atomically and durably, readable by its owner only."""
    path = folder / CONFIG_FILE
    scratch = folder / f".{CONFIG_FILE}.{os.getpid()}.tmp"
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(config.to_json())
            out.flush()
            os.fsync(out.fileno())
        os.replace(scratch, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            scratch.unlink()
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def check_remote_name(name: object) -> str:
    """Return ``name`` if it can name a remote (the rules of a branch name).

    Raises:
        InvalidInputError: it cannot.
    """
    if not isinstance(name, str):
        raise InvalidInputError(f"remote name must be a string, got {name!r}")
    if "/" in name:
        raise InvalidInputError(f"remote name must not contain '/': {name!r}")
    return check_short_name(name, "remote")
