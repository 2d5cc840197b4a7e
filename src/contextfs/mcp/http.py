"""Streamable HTTP for ``contextfs mcp --http``: the SDK's app behind a token gate, on uvicorn.

Invariants this module owns (DESIGN.md section 11):

* it binds to 127.0.0.1 unless told otherwise, and any address beyond this
  machine needs a token, and TLS unless told ``insecure``:
  :func:`check_address` refuses before anything binds;
* with a shared token or live tokens in the store, every HTTP request must
  carry ``Authorization: Bearer <token>`` that the
  :class:`~contextfs.tokens.Gate` admits, or is answered 401 without reaching
  the MCP layer;
* the address is announced only once the socket listens, so a client that
  reads it can connect at once.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
from mcp.server.mcpserver import MCPServer
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ..tls import check_exposure, server_context
from ..tokens import Gate
from ..webserve import listen, serve_asgi
from ..webserve import url_of as page_url
from .access import GRANT_KEY

#: Where the MCP endpoint is mounted.
MCP_PATH = "/mcp"


def check_address(
    host: str, token: bool, *, tls: bool = False, insecure: bool = False
) -> str | None:
    """Refuse to serve beyond this machine without a token, or without TLS unless ``insecure``.

    Returns:
        The warning to show when serving beyond this machine without TLS.

    Raises:
        InvalidInputError: ``host`` is not a loopback address and no token is
            set, or there is no TLS and not ``insecure``.
    """
    return check_exposure(host, token=bool(token), tls=tls, insecure=insecure, what="serving MCP")


class TokenGate:
    """ASGI middleware: only requests bearing a token the gate admits reach ``app``.

    The admitted :class:`~contextfs.tokens.Grant` travels on in the request's
    scope (:data:`~contextfs.mcp.access.GRANT_KEY`), so each tool call runs
    as its own token allows, and as its name.
    """

    def __init__(self, app: ASGIApp, gate: Gate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 401 to a request without an admitted token; pass everything else on."""
        if scope["type"] in ("http", "websocket"):
            grant = await anyio.to_thread.run_sync(self.gate.admit, _bearer(scope))
            if grant is None:
                refusal = PlainTextResponse(
                    "bad or missing token",
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await refusal(scope, receive, send)
                return
            scope = {**scope, GRANT_KEY: grant}
        await self.app(scope, receive, send)


def _bearer(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if there is one."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if kind.lower() == "bearer" and token.strip() else None
    return None


def url_of(host: str, port: int, *, tls: bool = False) -> str:
    """The endpoint's URL (IPv6 addresses in brackets)."""
    return page_url(host, port, MCP_PATH, tls=tls)


async def serve_http(
    server: MCPServer,
    *,
    host: str,
    port: int,
    gate: Gate,
    announce: Callable[[str], None],
    tls_cert: str | None = None,
    tls_key: str | None = None,
    insecure: bool = False,
) -> None:
    """Serve ``server`` over streamable HTTP (HTTPS with ``tls_cert``) until SIGINT or SIGTERM.

    Args:
        port: the TCP port (0: any free one; ``announce`` gets the URL with it).
        announce: called with the endpoint's URL once the socket listens.
        tls_cert: a PEM certificate chain; ``tls_key`` its key (default: in
            the same file).

    Raises:
        InvalidInputError: a non-loopback host without a token, or without TLS
            and not ``insecure``; TLS files that cannot be used.
        OSError: the address cannot be bound.
    """
    check_address(host, gate.closed(), tls=tls_cert is not None, insecure=insecure)
    if tls_cert is not None:
        tls_key = tls_key or tls_cert
        server_context(tls_cert, tls_key)  # a bad file fails here, in one line
    app: ASGIApp = server.streamable_http_app(streamable_http_path=MCP_PATH, host=host)
    app = TokenGate(app, gate)
    sock = listen(host, port)
    announce(url_of(host, sock.getsockname()[1], tls=tls_cert is not None))
    await serve_asgi(app, sock, tls_cert=tls_cert, tls_key=tls_key)


__all__ = ["MCP_PATH", "TokenGate", "check_address", "serve_http", "url_of"]
