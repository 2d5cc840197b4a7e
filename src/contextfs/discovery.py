"""Finding a repository on disk, as git finds ``.git``.

This is the one place in the library that reads the environment: the
``CONTEXTFS_DIR`` variable names the repository directory directly.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import RepositoryNotFoundError

REPO_DIR = ".contextfs"
DATABASE = "store.db"
#: A repository whose store lives elsewhere (PostgreSQL) has this file instead of DATABASE.
CONFIG = "config.json"
ENV_DIR = "CONTEXTFS_DIR"


def find_repository(start: str | os.PathLike[str] | None = None) -> Path:
    """Return the ``.contextfs`` directory for ``start`` (default: the current directory).

    ``CONTEXTFS_DIR`` in the environment names the directory directly; otherwise
    the search walks up from ``start`` as git does.

    Raises:
        RepositoryNotFoundError: no repository was found.
    """
    override = os.environ.get(ENV_DIR)
    if override and start is None:
        candidate = Path(override)
        if not is_repository(candidate):
            raise RepositoryNotFoundError(f"{ENV_DIR}={override!r} is not a ContextFS repository")
        return candidate
    here = Path(start if start is not None else Path.cwd()).resolve()
    if here.name == REPO_DIR and is_repository(here):
        return here
    for folder in (here, *here.parents):
        if is_repository(folder / REPO_DIR):
            return folder / REPO_DIR
    raise RepositoryNotFoundError(
        f"not a ContextFS repository (or any parent up to /): {str(here)!r}; "
        "run 'contextfs init' first"
    )


def is_repository(folder: Path) -> bool:
    """Whether ``folder`` is a repository directory: its own database, or a config naming one."""
    return (folder / DATABASE).is_file() or (folder / CONFIG).is_file()
