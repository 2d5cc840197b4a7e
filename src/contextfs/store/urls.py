"""Store locations given as URLs: telling them apart, and printing them without secrets.

Which backend opens a location is decided in one place,
:func:`contextfs.backends.open_store`; these helpers only read URLs.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit

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
    parts = urlsplit(url)
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
