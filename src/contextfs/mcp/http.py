"""Streamable HTTP for ``contextfs mcp --http``: the SDK's app behind a token gate, on uvicorn.

Invariants this module owns (DESIGN.md section 11):

* it binds to 127.0.0.1 unless told otherwise, and any address beyond this
  machine needs a token: :func:`check_address` refuses before anything binds;
* with a token, every HTTP request must carry ``Authorization: Bearer
  <token>`` (compared in constant time) or is answered 401 without reaching
  the MCP layer;
* the address is announced only once the socket listens, so a client that
  reads it can connect at once.
"""

from __future__ import annotations

import contextlib
import hmac
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from types import FrameType

import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import InvalidInputError
from ..server.serve import is_loopback

#: Where the MCP endpoint is mounted.
MCP_PATH = "/mcp"


def check_address(host: str, token: str | None) -> None:
    """Refuse to serve beyond this machine without a token.

    Raises:
        InvalidInputError: ``host`` is not a loopback address and no token is set.
    """
    if not is_loopback(host) and not token:
        raise InvalidInputError(
            f"serving MCP on {host!r} (beyond this machine) needs a token: pass --token"
        )


class TokenGate:
    """ASGI middleware: only requests bearing the token reach ``app``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 401 to a request without the token; pass everything else on."""
        if scope["type"] in ("http", "websocket") and not self._allowed(scope):
            refusal = PlainTextResponse(
                "bad or missing token", status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        given = b""
        for name, value in scope.get("headers", ()):
            if name.lower() == b"authorization":
                given = value
        return hmac.compare_digest(given, self._expected)


def url_of(host: str, port: int) -> str:
    """The endpoint's URL (IPv6 addresses in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{MCP_PATH}"


async def serve_http(
    server: MCPServer,
    *,
    host: str,
    port: int,
    token: str | None,
    announce: Callable[[str], None],
) -> None:
    """Serve ``server`` over streamable HTTP until SIGINT or SIGTERM.

    Args:
        port: the TCP port (0: any free one; ``announce`` gets the URL with it).
        announce: called with the endpoint's URL once the socket listens.

    Raises:
        InvalidInputError: a non-loopback host without a token.
        OSError: the address cannot be bound.
    """
    check_address(host, token)
    app: ASGIApp = server.streamable_http_app(streamable_http_path=MCP_PATH, host=host)
    if token:
        app = TokenGate(app, token)
    sock = _listen(host, port)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    announce(url_of(host, sock.getsockname()[1]))
    with _quiet_stop():
        try:
            await uvicorn.Server(config).serve(sockets=[sock])
        finally:
            sock.close()


@contextlib.contextmanager
def _quiet_stop() -> Iterator[None]:
    """Let SIGINT and SIGTERM stop the server and then the process with status 0.

    uvicorn stops gracefully on either and afterwards raises the signal again
    for the handler it found installed; with this no-op one installed, the
    command returns normally, as ``contextfs serve`` does.
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
    """A handler that does nothing (see :func:`_quiet_stop`)."""


def _listen(host: str, port: int) -> socket.socket:
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


__all__ = ["MCP_PATH", "TokenGate", "check_address", "serve_http", "url_of"]
