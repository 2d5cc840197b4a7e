"""Every error is in the family of its exit code, wherever in the package it is defined.

So ``except InvalidInputError`` catches every error that exits 5, and a new
error class that sets an exit code without its family fails here.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import pytest

import contextfs
from contextfs.errors import (
    FAMILIES,
    ConflictError,
    ContextFSError,
    InvalidInputError,
    NothingToDoError,
    PermissionDeniedError,
    RepositoryExistsError,
    RepositoryLocationError,
    RepositoryNotFoundError,
    RevisionError,
    StoreError,
    UnknownRevisionError,
    VerificationError,
)
from contextfs.integrity.purge import (
    AlreadyPurgedError,
    NotAnAtomError,
    PurgeBlockedError,
    PurgeError,
    UnknownAtomError,
)

#: Top-level modules of the optional extras (contextfs-vcs[postgres], contextfs-vcs[mcp]).
OPTIONAL = {"psycopg", "psycopg_binary", "mcp"}


def _skip_if_optional(name: str) -> None:
    """walk_packages' onerror: a package may fail to import only for a missing extra."""
    exc = sys.exception()
    if not (isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] in OPTIONAL):
        raise AssertionError(f"{name} does not import: {exc!r}") from exc


def import_everything() -> list[str]:
    """Import every module of the package; return the names imported."""
    imported = []
    for info in pkgutil.walk_packages(contextfs.__path__, "contextfs.", onerror=_skip_if_optional):
        try:
            importlib.import_module(info.name)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in OPTIONAL:
                raise
            continue
        imported.append(info.name)
    return imported


def error_classes() -> list[type[ContextFSError]]:
    """Every ContextFSError subclass the package defines (after importing all of it)."""
    found: list[type[ContextFSError]] = []
    pending: list[type[ContextFSError]] = [ContextFSError]
    while pending:
        cls = pending.pop()
        if cls.__module__.split(".")[0] == "contextfs" and cls not in found:
            found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_every_error_derives_from_the_family_of_its_exit_code() -> None:
    modules = import_everything()
    assert "contextfs.integrity.purge" in modules
    assert "contextfs.wire.errors" in modules
    classes = error_classes()
    assert NotAnAtomError in classes
    wrong = [
        f"{cls.__module__}.{cls.__qualname__} exits {cls.exit_code} but is not a"
        f" {FAMILIES[cls.exit_code].__name__ if cls.exit_code in FAMILIES else '(no family)'}"
        for cls in classes
        if cls.exit_code != 1
        and not (cls.exit_code in FAMILIES and issubclass(cls, FAMILIES[cls.exit_code]))
    ]
    assert wrong == []


def test_each_exit_code_has_one_family_root() -> None:
    assert {
        3: RepositoryLocationError,
        4: RevisionError,
        5: InvalidInputError,
        6: ConflictError,
        7: NothingToDoError,
        8: StoreError,
        9: VerificationError,
        10: PermissionDeniedError,
    } == FAMILIES
    for code, family in FAMILIES.items():
        assert family.exit_code == code
        assert family.__bases__[0] is ContextFSError  # a root, in no other family
        assert [f for f in FAMILIES.values() if issubclass(family, f)] == [family]


@pytest.mark.parametrize(
    ("cls", "code", "family"),
    [
        (RepositoryNotFoundError, 3, RepositoryLocationError),
        (RepositoryExistsError, 3, RepositoryLocationError),
        (UnknownAtomError, 4, UnknownRevisionError),
        (NotAnAtomError, 5, InvalidInputError),
        (AlreadyPurgedError, 7, NothingToDoError),
        (PurgeBlockedError, 8, StoreError),
    ],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
def test_errors_keep_their_exit_codes_in_their_families(
    cls: type[ContextFSError], code: int, family: type[ContextFSError]
) -> None:
    assert cls.exit_code == code  # what CLI users see does not change
    assert issubclass(cls, family)
    with pytest.raises(family):
        raise cls("x")


def test_purge_errors_stay_purge_errors() -> None:
    for cls in (UnknownAtomError, NotAnAtomError, AlreadyPurgedError, PurgeBlockedError):
        assert issubclass(cls, PurgeError)
    assert PurgeError.exit_code == 1
