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
        if not (candidate / DATABASE).is_file():
            raise RepositoryNotFoundError(f"{ENV_DIR}={override!r} is not a ContextFS repository")
        return candidate
    here = Path(start if start is not None else Path.cwd()).resolve()
    if here.name == REPO_DIR and (here / DATABASE).is_file():
        return here
    for folder in (here, *here.parents):
        if (folder / REPO_DIR / DATABASE).is_file():
            return folder / REPO_DIR
    raise RepositoryNotFoundError(
        f"not a ContextFS repository (or any parent up to /): {str(here)!r}; "
        "run 'contextfs init' first"
    )
