"""Serving an ASGI app on uvicorn, as ``contextfs mcp --http`` and ``contextfs ui`` do.

Owns what both share: a socket bound before anything is announced (so a
client that reads the address can connect at once), and a stop on SIGINT or
SIGTERM that returns normally, as ``contextfs serve`` does. Needs uvicorn,
which the ``mcp`` and ``ui`` extras bring.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any, Literal


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket listening on ``host``:``port`` (0: any free port)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(host: str, port: int, path: str = "/", *, tls: bool = False) -> str:
    """The URL of ``path`` on a server (IPv6 addresses in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}{path}"


async def serve_asgi(
    app: Any,
    sock: socket.socket,
    *,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    lifespan: Literal["auto", "on", "off"] = "on",
) -> None:
    """Serve ``app`` on ``sock`` until SIGINT or SIGTERM; the socket is closed after."""
    import uvicorn

    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan=lifespan,
        access_log=False,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
    )
    with quiet_stop():
        try:
            await uvicorn.Server(config).serve(sockets=[sock])
        finally:
            sock.close()


@contextlib.contextmanager
def quiet_stop() -> Iterator[None]:
    """Let SIGINT and SIGTERM stop the server and then the process with status 0.

    uvicorn stops gracefully on either and afterwards raises the signal again
    for the handler it found installed; with this no-op one installed, the
    command returns normally.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread; uvicorn leaves them alone too
        return
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore(signum: int, frame: FrameType | None) -> None:
    """A handler that does nothing (see :func:`quiet_stop`)."""


__all__ = ["listen", "quiet_stop", "serve_asgi", "url_of"]
