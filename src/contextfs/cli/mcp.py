"""``contextfs mcp``: serve the repository to AI clients over the Model Context Protocol.

The MCP SDK is an optional extra: it is imported only when this command runs,
so every other command works without it, and without it this one fails with
one line saying what to install.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import click
from click.core import ParameterSource

from ..errors import ContextFSError
from ..tokens import Gate
from .common import TOKEN_ENV, default_author, open_repo, tls_options

#: The op-log session MCP writes go through unless told otherwise.
DEFAULT_SESSION = "mcp"
#: The TCP port of ``--http`` unless told otherwise.
DEFAULT_HTTP_PORT = 7412
_HTTP_ONLY = ("host", "port", "token", "tls_cert", "tls_key", "insecure")


@click.command(name="mcp")
@click.option("--http", "use_http", is_flag=True, help="Serve streamable HTTP instead of stdio.")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="With --http: the address to listen on."
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_HTTP_PORT,
    show_default=True,
    help="With --http: the TCP port (0: any free one).",
)
@click.option(
    "--token",
    default=None,
    help=f"With --http: a shared bearer token that may do everything, besides the store's"
    f" own tokens (default: ${TOKEN_ENV}).",
)
@click.option(
    "--actor",
    default=None,
    help="Who the clients are, in the op log and in commits (default: $CONTEXTFS_AUTHOR,"
    " else your user name).",
)
@click.option(
    "--session",
    default=DEFAULT_SESSION,
    show_default=True,
    help="The op-log session that writes go through.",
)
@tls_options
@click.pass_context
def mcp(
    ctx: click.Context,
    use_http: bool,
    host: str,
    port: int,
    token: str | None,
    actor: str | None,
    session: str,
    tls_cert: Path | None,
    tls_key: Path | None,
    insecure: bool,
) -> None:
    """Serve the repository to AI clients (MCP), over stdio or streamable HTTP.

    Tools: remember, commit, recall, context, session, forget, history, diff,
    branch, switch, merge, revert, verify, prove; resources: the current
    context and each memory by id. Writes are ops in the session's op log,
    committed at once unless a client stages them.
    """
    if not use_http:
        given = [
            f"--{name.replace('_', '-')}"
            for name in _HTTP_ONLY
            if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT
        ]
        if given:
            raise click.UsageError(f"{', '.join(given)} only apply with --http")
    try:
        import anyio

        from ..mcp.http import check_address, serve_http
        from ..mcp.server import build_server
        from ..mcp.writer import SessionWriter
    except ImportError as exc:
        missing = (exc.name or "a module").split(".")[0]
        raise ContextFSError(
            f"contextfs mcp needs the mcp extra ({missing} is missing):"
            " pip install 'contextfs-vcs[mcp]'"
        ) from None
    token = token or os.environ.get(TOKEN_ENV) or None
    if use_http and tls_key is not None and tls_cert is None:
        raise click.UsageError("--tls-key needs --tls-cert")
    repo = open_repo(ctx)
    gate = Gate(repo.store, token)
    if use_http:
        warning = check_address(host, gate.closed(), tls=tls_cert is not None, insecure=insecure)
        if warning:
            click.echo(warning, err=True)
    writer = SessionWriter(repo, actor=actor or default_author(), session=session)
    ctx.call_on_close(writer.close)
    server = build_server(repo, writer)
    if not use_http:
        anyio.run(server.run_stdio_async)
        return

    def announce(url: str) -> None:
        click.echo(f"serving MCP on {url} (actor {writer.actor}, session {session})", err=True)

    anyio.run(
        functools.partial(
            serve_http,
            server,
            host=host,
            port=port,
            gate=gate,
            announce=announce,
            tls_cert=str(tls_cert) if tls_cert else None,
            tls_key=str(tls_key) if tls_key else None,
            insecure=insecure,
        )
    )


__all__ = ["mcp"]
