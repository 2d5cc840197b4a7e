"""Scoped access tokens: what one may do, how it is minted, and how a presented one is checked.

A token is a random secret shown once, at creation; the store keeps only its
SHA-256 (:class:`TokenRecord`), so a copied store or database leaks no usable
token, and a team on a PostgreSQL store shares the same tokens from every
server. A token has a name (the actor its writes are recorded as), a
:class:`Scope`, optionally a glob of the branches it may move, an optional
expiry, and may be revoked. Checking one yields a :class:`Grant`, which the
servers ask before each request.

The secret is 256 random bits, so one SHA-256 suffices (a slow password hash
protects guessable secrets; these are not). Lookups are by digest, and the
digest is compared again in constant time.
"""

from __future__ import annotations

import enum
import fnmatch
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from .errors import InvalidInputError, PermissionDeniedError
from .model import refs as refnames

#: What every secret starts with, so secret scanners and people can tell one.
PREFIX = "cfs_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_GLOB = re.compile(r"[A-Za-z0-9._/*?-]{1,200}")
_DURATION = re.compile(r"([1-9][0-9]{0,5})([mhdw])")
_UNITS = {"m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000, "w": 604_800_000_000}


class Scope(enum.IntEnum):
    """What a token may do; each scope includes those below it."""

    #: Fetch, clone, search, expand, log, subscribe: nothing that changes the store.
    READ = 1
    #: Also push, commit, append ops, merge, revert, create and fast-forward branches.
    WRITE = 2
    #: Also force a branch back, delete branches and tags, and purge.
    ADMIN = 3

    @classmethod
    def parse(cls, text: str) -> Scope:
        """The scope named ``text`` (read, write or admin).

        Raises:
            InvalidInputError: no such scope.
        """
        try:
            return cls[text.upper()]
        except KeyError:
            raise InvalidInputError(f"scope must be read, write or admin, got {text!r}") from None

    @property
    def label(self) -> str:
        """The scope's name as users write it."""
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A token as the store keeps it: never the secret, only its digest.

    Attributes:
        name: Unique in the store; the actor its writes are recorded as.
        digest: SHA-256 of the secret, in hex.
        scope: What it may do.
        branches: A glob (``agents/*``) of the branches it may move, or None for all.
        created: When it was made (µs since the epoch).
        expires: When it stops working (µs), or None.
        revoked: When it was revoked (µs), or None.
        created_by: Who made it.
    """

    name: str
    digest: str
    scope: Scope
    branches: str | None
    created: int
    expires: int | None
    revoked: int | None
    created_by: str

    def live(self, now: int) -> bool:
        """True if it neither expired nor was revoked by ``now`` (µs)."""
        return self.revoked is None and (self.expires is None or now < self.expires)

    def state(self, now: int) -> str:
        """``active``, ``expired`` or ``revoked``, for listings."""
        if self.revoked is not None:
            return "revoked"
        return "active" if self.live(now) else "expired"


@runtime_checkable
class TokenStore(Protocol):
    """What a store adds to keep tokens (by digest), shared by every server on it."""

    def add_token(self, record: TokenRecord) -> None:
        """Keep ``record``, joining the open transaction.

        Raises:
            RepositoryExistsError: a token of that name exists (revoked ones too).
        """
        ...

    def list_tokens(self) -> list[TokenRecord]:
        """Every token, revoked and expired ones too, by name."""
        ...

    def find_token(self, digest: str) -> TokenRecord | None:
        """The token whose secret hashes to ``digest``, or None."""
        ...

    def revoke_token(self, name: str, at: int) -> bool:
        """Mark token ``name`` revoked at ``at`` (µs); False if none is live by that name."""
        ...


@dataclass(frozen=True, slots=True)
class Grant:
    """What the bearer of a checked token may do.

    Attributes:
        name: The token's name, recorded as the author or actor of its writes;
            None for the server's own shared ``--token`` (or no token on a
            loopback server), whose clients name themselves.
        scope: What it may do.
        branches: The glob of branches it may move, or None for all.
    """

    name: str | None
    scope: Scope
    branches: str | None = None

    def require(self, scope: Scope, what: str) -> None:
        """Refuse ``what`` unless this grant's scope reaches ``scope``.

        Raises:
            PermissionDeniedError: it does not.
        """
        if self.scope < scope:
            raise PermissionDeniedError(
                f"{self._who()} is {self.scope.label}-only: it cannot {what}"
                f" (that needs {'an' if scope is Scope.ADMIN else 'a'} {scope.label} token)"
            )

    def may_move(self, ref: str) -> bool:
        """True if this grant may move ``ref`` (a full ref name).

        A grant limited to some branches moves only those, never tags.
        """
        if self.branches is None:
            return True
        if not ref.startswith(refnames.HEADS):
            return False
        return fnmatch.fnmatchcase(ref[len(refnames.HEADS) :], self.branches)

    def require_refs(self, refs: Iterable[str]) -> None:
        """Refuse unless every ref in ``refs`` may be moved.

        Raises:
            PermissionDeniedError: one may not.
        """
        for ref in refs:
            if not self.may_move(ref):
                shown = ref.removeprefix(refnames.HEADS)
                raise PermissionDeniedError(
                    f"{self._who()} may only move branches matching {self.branches!r},"
                    f" not {shown[:80]!r}"
                )

    def _who(self) -> str:
        return f"token {self.name!r}" if self.name else "this token"


#: The grant of the server's own shared token, or of anyone on an open loopback server.
FULL = Grant(None, Scope.ADMIN)


class Gate:
    """Who a server lets in: the bearers of its own shared token and of the store's live tokens.

    A server with neither is open (every client gets :data:`FULL`); the
    exposure rule (:func:`contextfs.tls.check_exposure`) allows that on
    loopback only. A store that has ever had a token (revoked and expired
    ones count) admits nobody without one: creating the first token closes
    a running server from each client's next connection, and revoking the
    last one does not open it again.
    """

    def __init__(self, store: object, shared: str | None = None) -> None:
        self._tokens = store if isinstance(store, TokenStore) else None
        self._shared = shared or None
        self._closed = self._shared is not None

    def closed(self) -> bool:
        """True if clients must present a token."""
        if not self._closed and self._tokens is not None:
            self._closed = bool(self._tokens.list_tokens())
        return self._closed

    def admit(self, presented: str | None) -> Grant | None:
        """The grant of a client presenting ``presented``, or None to refuse it."""
        if presented:
            if self._shared is not None and hmac.compare_digest(
                presented.encode(), self._shared.encode()
            ):
                return FULL
            if self._tokens is not None:
                grant = authenticate(self._tokens, presented)
                if grant is not None:
                    return grant
        return None if self.closed() else FULL


def token_row(record: TokenRecord) -> tuple[object, ...]:
    """A record as a row of the stores' ``tokens`` table (name, digest, scope, ...)."""
    return (
        record.name,
        record.digest,
        int(record.scope),
        record.branches,
        record.created,
        record.expires,
        record.revoked,
        record.created_by,
    )


def token_record(row: Sequence[Any]) -> TokenRecord:
    """A row of a ``tokens`` table as a record."""
    name, token_digest, scope, branches, created, expires, revoked, created_by = row
    return TokenRecord(
        name=str(name),
        digest=str(token_digest),
        scope=Scope(int(scope)),
        branches=None if branches is None else str(branches),
        created=int(created),
        expires=None if expires is None else int(expires),
        revoked=None if revoked is None else int(revoked),
        created_by=str(created_by),
    )


def check_name(name: str) -> str:
    """Return ``name`` if it can name a token (1-64 of A-Z a-z 0-9 . _ -, not starting with . _ -).

    Raises:
        InvalidInputError: it cannot.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInputError(
            f"a token name is 1-64 of A-Z a-z 0-9 . _ - starting with a letter or digit,"
            f" got {name!r}"
        )
    return name


def check_glob(glob: str) -> str:
    """Return ``glob`` if it can limit a token's branches (``agents/*``, ``team-?``).

    Raises:
        InvalidInputError: it holds characters no branch name has.
    """
    if not _GLOB.fullmatch(glob):
        raise InvalidInputError(
            f"a branch glob is 1-200 of A-Z a-z 0-9 . _ / - * ?, got {glob[:80]!r}"
        )
    return glob


def digest(secret: str) -> str:
    """The SHA-256 of a secret, in hex: what the store keeps."""
    return hashlib.sha256(secret.encode()).hexdigest()


def mint(
    name: str,
    scope: Scope,
    *,
    created_by: str,
    branches: str | None = None,
    expires: int | None = None,
    now: int | None = None,
) -> tuple[str, TokenRecord]:
    """A new secret and the record to store for it (the secret is not in the record).

    Raises:
        InvalidInputError: a bad name or glob, or an expiry not in the future.
    """
    created = now if now is not None else time.time_ns() // 1000
    check_name(name)
    if branches is not None:
        check_glob(branches)
    if expires is not None and expires <= created:
        raise InvalidInputError("a token's expiry must be in the future")
    secret = PREFIX + secrets.token_urlsafe(32)
    record = TokenRecord(
        name=name,
        digest=digest(secret),
        scope=scope,
        branches=branches,
        created=created,
        expires=expires,
        revoked=None,
        created_by=created_by,
    )
    return secret, record


def parse_expiry(text: str, now: int) -> int:
    """When a token given ``--expires text`` at ``now`` (µs) stops working, in µs.

    ``text`` is a duration (``90m``, ``12h``, ``30d``, ``8w``) or an ISO 8601
    date or time (``2027-01-31``, ``2027-01-31T12:00Z``; UTC unless it says).

    Raises:
        InvalidInputError: neither, or not in the future.
    """
    found = _DURATION.fullmatch(text.strip())
    if found:
        at = now + int(found.group(1)) * _UNITS[found.group(2)]
    else:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise InvalidInputError(
                f"--expires takes a duration (30d, 12h, 90m, 8w) or an ISO date, got {text!r}"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        at = int(moment.timestamp() * 1_000_000)
    if at <= now:
        raise InvalidInputError(f"--expires {text!r} is not in the future")
    return at


def store_of(repo_store: object) -> TokenStore:
    """The store as one that keeps tokens.

    Raises:
        InvalidInputError: this store keeps none.
    """
    if not isinstance(repo_store, TokenStore):
        raise InvalidInputError("this repository's store cannot keep tokens")
    return repo_store


def revoke(store: TokenStore, name: str, now: int | None = None) -> None:
    """Revoke token ``name``: servers refuse it from the next connection on.

    Raises:
        InvalidInputError: no live token has that name.
    """
    at = now if now is not None else time.time_ns() // 1000
    if not store.revoke_token(check_name(name), at):
        known = {record.name: record for record in store.list_tokens()}
        if name in known:
            raise InvalidInputError(f"token {name!r} is {known[name].state(at)} already")
        raise InvalidInputError(f"no token named {name!r}")


def authenticate(store: TokenStore, presented: str, now: int | None = None) -> Grant | None:
    """The grant of ``presented`` if the store holds it live, else None."""
    if not presented.startswith(PREFIX):
        return None
    wanted = digest(presented)
    record = store.find_token(wanted)
    if record is None or not hmac.compare_digest(record.digest, wanted):
        return None
    if not record.live(now if now is not None else time.time_ns() // 1000):
        return None
    return Grant(record.name, record.scope, record.branches)


__all__ = [
    "FULL",
    "PREFIX",
    "Gate",
    "Grant",
    "Scope",
    "TokenRecord",
    "TokenStore",
    "authenticate",
    "check_glob",
    "check_name",
    "digest",
    "mint",
    "parse_expiry",
    "revoke",
    "store_of",
    "token_record",
    "token_row",
]
