"""``contextfs serve``: serve the repository over protocol v1 until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import click

from ..server.serve import Limits, Server
from .common import open_repo, server_tls, tls_options

TOKEN_ENV = "CONTEXTFS_TOKEN"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=7411,
    show_default=True,
    help="TCP port (0: any free one).",
)
@click.option(
    "--token",
    default=None,
    help=f"A shared token that may do everything, besides the store's own tokens"
    f" (default: ${TOKEN_ENV}).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=128,
    show_default=True,
    help="Connections at once.",
)
@click.option(
    "--idle-timeout",
    type=click.FloatRange(min=0.1),
    default=300.0,
    show_default=True,
    help="Seconds before an idle connection is closed.",
)
@tls_options
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    token: str | None,
    max_connections: int,
    idle_timeout: float,
    tls_cert: Path | None,
    tls_key: Path | None,
    insecure: bool,
) -> None:
    """Serve the repository to ContextFS clients (ctx://HOST:PORT, ctxs:// with TLS).

    Beyond this machine (a --host that is not loopback) it needs a token, and
    TLS (--tls-cert, --tls-key) unless --insecure. Prints the address once
    listening. SIGTERM or Ctrl-C stops accepting, lets requests in flight
    finish, and exits 0.
    """
    tls = server_tls(tls_cert, tls_key)
    limits = Limits(max_connections=max_connections, idle_timeout=idle_timeout)
    token = token or os.environ.get(TOKEN_ENV) or None
    repo = open_repo(ctx)
    server = Server(
        repo, host=host, port=port, token=token, limits=limits, tls=tls, insecure=insecure
    )
    if server.warning:
        click.echo(server.warning, err=True)
    asyncio.run(_run(server))


async def _run(server: Server) -> None:
    await server.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    click.echo(f"serving {server.url}", err=True)
    serving = asyncio.create_task(server.serve_forever())
    await stop.wait()
    click.echo("stopping: finishing requests in flight", err=True)
    await server.aclose()
    serving.cancel()
    await asyncio.gather(serving, return_exceptions=True)


__all__ = ["serve"]
