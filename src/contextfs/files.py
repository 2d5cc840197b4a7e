"""Files the CLI reads and writes for users: read within a limit, replaced atomically.

Two promises the command line keeps for every file it is given:

* a read stops at a clear limit with a one-line error, so ``/dev/zero`` or a
  runaway log cannot take the machine's memory (:func:`read_limited`);
* a write replaces the old file only once the new one is whole and on disk:
  on a full disk, a crash or any error the old file survives untouched and
  no temporary file is left behind (:func:`write_atomically`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO

from .errors import InvalidInputError

#: What one JSON document the CLI reads may weigh (a receipt, a proof, a turn state).
JSON_LIMIT = 64 * 1024 * 1024
#: What a file of many records may weigh (an import, another replica's ops).
DATA_LIMIT = 1024 * 1024 * 1024


def read_limited(source: IO[bytes], limit: int, name: str) -> bytes:
    """Read all of ``source``, refusing it once it passes ``limit`` bytes.

    Raises:
        InvalidInputError: it is larger (nothing more is read).
    """
    data = source.read(limit + 1)
    if len(data) > limit:
        raise InvalidInputError(f"{name} is larger than {_size(limit)}, the most this reads")
    return data


def read_file_limited(path: str | os.PathLike[str], limit: int) -> bytes:
    """Read the file at ``path`` within ``limit`` bytes (see :func:`read_limited`).

    Raises:
        InvalidInputError: it is larger.
        OSError: it cannot be opened or read.
    """
    with open(path, "rb") as source:
        return read_limited(source, limit, repr(os.fspath(path)))


def write_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace the file at ``path`` with ``data``, whole or not at all.

    The bytes go to a temporary file in the same folder, are flushed to disk,
    and only then renamed over ``path`` (keeping an existing file's mode).

    Raises:
        OSError: the folder cannot be written, or the disk is full (the old
            file is untouched and the temporary file removed).
    """
    target = Path(path)
    folder = target.parent
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:  # name the file asked for, not the temporary one
        raise OSError(exc.errno, exc.strerror, str(target)) from None
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temporary, target.stat().st_mode & 0o7777)
        if not target.exists():
            os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    sync_folder(folder)


def _umask() -> int:
    """The process's umask (read by setting it back; the CLI writes from one thread)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sync_folder(folder: Path) -> None:
    """Make the rename durable (POSIX); a folder that cannot be opened is left as it is."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _size(limit: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if limit >= scale:
            return f"{limit / scale:g} {unit}"
    return f"{limit} bytes"


__all__ = [
    "DATA_LIMIT",
    "JSON_LIMIT",
    "read_file_limited",
    "read_limited",
    "sync_folder",
    "write_atomically",
]
