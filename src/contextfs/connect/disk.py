"""Clients' config files on disk: read within a limit, locked, backed up, replaced atomically.

Invariants this module owns:

* runs of ``contextfs connect`` take turns on a file: :func:`locked` holds an
  advisory lock on the file's folder across the read, the plan and the
  write, so concurrent runs each add their entry and none is lost (POSIX;
  on Windows, which has no ``flock``, runs are not serialised);
* a file is written only if it still holds the bytes its change was planned
  on, checked once the new bytes are on disk, right before the rename, so a
  client that rewrote it meanwhile (Claude Code rewrites ``~/.claude.json``
  often) does not lose that write;
* a file without write permission bits is refused, not replaced;
* before an existing file changes, its old bytes are in ``FILE.bak`` with the
  file's permission bits (the file may hold a client's credentials) and, when
  root writes another user's file, its owner;
* the file is replaced whole or not at all, keeping its permission bits and
  owner; a symlinked file (a dotfiles checkout) is written through the link.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import ConflictError, InvalidInputError, PermissionDeniedError
from ..files import JSON_LIMIT, read_limited, sync_folder
from .configfile import ConfigFileError
from .plan import Change

if sys.platform != "win32":
    import fcntl


class ConfigChangedError(ConflictError):
    """A config file changed between reading it and writing it; it was not written."""


class ReadOnlyConfigError(PermissionDeniedError):
    """A config file has no write permission bits, so it is not replaced."""


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


def check_writable(change: Change) -> None:
    """Refuse a change to a file that has no write permission bits.

    Root could replace it anyway (and anyone who may write its folder could
    rename over it), but the bits say its owner wants it left alone.

    Raises:
        ReadOnlyConfigError: the change writes an existing file whose mode
            has no ``w`` bit.
    """
    if change.new is None or change.old is None:
        return
    path = change.target.path
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return  # gone since it was read: apply() reports that
    if mode & 0o222 == 0:
        raise ReadOnlyConfigError(
            f"{path} is read-only (mode {stat.S_IMODE(mode):o}); nothing was written to it:"
            " make it writable to change it"
        )


@contextlib.contextmanager
def locked(paths: Iterable[Path]) -> Iterator[None]:
    """Hold the advisory lock of each file's folder, for a read-plan-write cycle.

    The lock is ``flock`` on the folder (of the file a symlink points to),
    taken in sorted order so two runs over the same files cannot deadlock.
    A missing folder is made first, and removed again on the way out if it
    is still empty. Without ``fcntl`` (Windows) this locks nothing.
    """
    if sys.platform == "win32":
        yield
        return
    folders = sorted({_folder_of(path) for path in paths})
    made: list[Path] = []
    held: list[int] = []
    try:
        for folder in folders:
            held.append(_lock(folder, made))
        yield
    finally:
        for folder in sorted(made, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):  # not empty: a file was written there
                folder.rmdir()
        for descriptor in reversed(held):
            os.close(descriptor)  # releases its lock


def _folder_of(path: Path) -> Path:
    target = path.resolve() if path.is_symlink() else path
    return Path(os.path.realpath(target.parent))


def _lock(folder: Path, made: list[Path]) -> int:
    """Lock ``folder`` (made if missing, its new parts noted in ``made``); return its fd."""
    while True:
        try:
            made.extend(_make_folders(folder))
            descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except FileNotFoundError:
            continue  # another run removed a folder of the path, empty, just now
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            # The folder may have been removed (and made again) while this waited.
            if _same_file(os.fstat(descriptor), folder):
                return descriptor
        except BaseException:
            os.close(descriptor)
            raise
        os.close(descriptor)


def _make_folders(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents; return those this made, outermost first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    made = []
    for part in reversed(missing):
        try:
            part.mkdir()
        except FileExistsError:
            continue
        made.append(part)
    return made


def _same_file(found: os.stat_result, path: Path) -> bool:
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    return (found.st_dev, found.st_ino) == (now.st_dev, now.st_ino)


def apply(change: Change) -> Path | None:
    """Write a planned change; return the backup's path (``None`` for a new file).

    The new bytes and the backup are written to temporary files first; then
    the file is read again and, if it still holds what the change was planned
    on, the backup and the file are renamed into place.

    Raises:
        ConfigChangedError: the file no longer holds what the change was planned on.
        ReadOnlyConfigError: the file has no write permission bits.
        OSError: a folder cannot be made or a file written (the file is as it was).
    """
    if change.new is None:
        raise ValueError("the change writes nothing")
    check_writable(change)
    path = change.target.path
    target = path.resolve() if path.is_symlink() else path
    try:
        existing: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        existing = None
    target.parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        new = _temporary(target, change.new, like=existing)
        written.append(new)
        backup = None
        if change.old is not None:
            backup = backup_path(path)
            written.append(_temporary(backup, change.old, like=existing))
        if read_config(path) != change.old:
            raise ConfigChangedError(f"{path} changed while this ran; nothing was written to it")
        if backup is not None:
            _replace(written[1], backup)
        _replace(new, target)
    except BaseException:
        for temporary in written:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        raise
    sync_folder(target.parent)
    return backup


def _replace(temporary: Path, path: Path) -> None:
    """Rename ``temporary`` over ``path``; an error names ``path``, not the temporary file."""
    try:
        os.replace(temporary, path)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None


def _temporary(path: Path, data: bytes, *, like: os.stat_result | None) -> Path:
    """Write ``data`` to a new file beside ``path``, flushed to disk; return its path.

    With ``like`` (the file being replaced) it gets that file's permission
    bits and, when root writes another user's file, its owner and group;
    without, the bits the umask allows.
    """
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            # 0o600 while the bytes (maybe a client's credentials) go in.
            descriptor = os.open(
                temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if like else 0o666
            )
        except FileExistsError:
            continue
        break
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if like is not None:
            _keep_owner(temporary, like)
            os.chmod(temporary, stat.S_IMODE(like.st_mode))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return temporary


def _keep_owner(path: Path, like: os.stat_result) -> None:
    """Give root's new file the owner and group of the one it replaces (best effort)."""
    if sys.platform == "win32" or os.geteuid() != 0:
        return
    if (like.st_uid, like.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(OSError):
            os.chown(path, like.st_uid, like.st_gid)


__all__ = [
    "ConfigChangedError",
    "ReadOnlyConfigError",
    "apply",
    "backup_path",
    "check_writable",
    "locked",
    "read_config",
]
