"""Clients' config files on disk: read within a limit, backed up, replaced atomically.

Invariants this module owns:

* a file is written only if it still holds the bytes its change was planned
  on, so a client that rewrote it meanwhile (Claude Code rewrites
  ``~/.claude.json`` often) does not lose that write;
* before an existing file changes, its old bytes are in ``FILE.bak`` with the
  file's permission bits (the file may hold a client's credentials);
* the file is replaced whole or not at all, keeping its permission bits; a
  symlinked file (a dotfiles checkout) is written through the link.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import ConflictError, InvalidInputError
from ..files import JSON_LIMIT, read_limited, write_atomically
from .configfile import ConfigFileError
from .plan import Change


class ConfigChangedError(ConflictError):
    """A config file changed between reading it and writing it; nothing was written."""


def read_config(path: Path) -> bytes | None:
    """The bytes of the config file at ``path``, or ``None`` if there is none.

    Raises:
        ConfigFileError: it is larger than the limit for one JSON document.
        OSError: it cannot be read (a folder, no permission).
    """
    try:
        with path.open("rb") as source:
            return read_limited(source, JSON_LIMIT, str(path))
    except FileNotFoundError:
        return None
    except InvalidInputError:
        limit = JSON_LIMIT >> 20
        raise ConfigFileError(str(path), f"larger than {limit} MiB, the most this reads") from None


def backup_path(path: Path) -> Path:
    """Where the old bytes of ``path`` go before it changes: ``FILE.bak`` beside it."""
    return path.with_name(path.name + ".bak")


def apply(change: Change) -> Path | None:
    """Write a planned change; return the backup's path (``None`` for a new file).

    Raises:
        ConfigChangedError: the file no longer holds what the change was planned on.
        OSError: a folder cannot be made or a file written (the file is as it was).
    """
    if change.new is None:
        raise ValueError("the change writes nothing")
    path = change.target.path
    if read_config(path) != change.old:
        raise ConfigChangedError(f"{path} changed while this ran; nothing was written to it")
    target = path.resolve() if path.is_symlink() else path
    backup = None
    if change.old is not None:
        backup = backup_path(path)
        write_atomically(backup, change.old, mode=stat.S_IMODE(os.stat(target).st_mode))
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, change.new)
    return backup


__all__ = ["ConfigChangedError", "apply", "backup_path", "read_config"]
