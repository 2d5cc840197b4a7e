"""Clients for ``contextfs serve``: AsyncClient (asyncio) and Client (blocking)."""

from .client import AsyncClient as AsyncClient
from .client import Client as Client
from .client import ConnectionLostError as ConnectionLostError
from .client import PullResult as PullResult
from .client import ServerAddress as ServerAddress
from .client import parse_url as parse_url

__all__ = [
    "AsyncClient",
    "Client",
    "ConnectionLostError",
    "PullResult",
    "ServerAddress",
    "parse_url",
]
