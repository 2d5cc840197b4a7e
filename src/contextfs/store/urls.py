"""Store locations given as URLs: telling them apart, and printing them without secrets.

Which backend opens a location is decided in one place,
:func:`contextfs.backends.open_store`; these helpers only read URLs.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..errors import InvalidInputError

#: The environment variable naming the store every command uses (it wins over the folder's).
STORE_URL_ENV: Final = "CONTEXTFS_STORE_URL"

POSTGRES_SCHEMES: Final = ("postgresql://", "postgres://")


def is_postgres_url(location: object) -> bool:
    """Return whether ``location`` is a ``postgresql://`` (or ``postgres://``) URL."""
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


def redact_url(url: str) -> str:
    """Return ``url`` without its password, for messages and logs.

    The password goes from the user part and from a ``password=`` parameter;
    other parameters stay (a ``search_path`` option tells two stores in one
    database apart).
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # malformed: no parser to trust, so cut the secrets by hand
        return _redact_roughly(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    user = f"{parts.username}@" if parts.username else ""
    query = [(k, v) for k, v in parse_qsl(parts.query) if k.lower() not in _SECRET_PARAMETERS]
    tail = f"?{urlencode(query)}" if query else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}{tail}"


_SECRET_PARAMETERS: Final = frozenset({"password", "sslpassword"})
_SECRET_QUERY: Final = re.compile(r"((?:^|[?&;])(?:ssl)?password=)[^&;]*", re.IGNORECASE)


def _redact_roughly(url: str) -> str:
    """``url`` without what may be a password, for a URL no parser accepts.

    Everything between the scheme and the last ``@`` before the path is the
    user part: only the name before its first ``:`` is kept.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _SECRET_QUERY.sub(r"\1***", url)
    authority, slash, path = rest.partition("/")
    user, at, host = authority.rpartition("@")
    if at:
        authority = f"{user.split(':', 1)[0]}@{host}"
    return _SECRET_QUERY.sub(r"\1***", f"{scheme}://{authority}{slash}{path}")


def check_postgres_url(url: str) -> None:
    """Refuse a PostgreSQL URL no parser accepts, in one line and without its password.

    Raises:
        InvalidInputError: the URL is malformed (an unclosed ``[``, a bad port...).
    """
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        raise InvalidInputError(f"not a valid PostgreSQL URL: {redact_url(url)} ({exc})") from None
