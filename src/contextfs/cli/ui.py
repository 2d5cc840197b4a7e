"""``contextfs ui``: serve a local web view of the repository.

The web stack is the optional ``ui`` extra: it is imported only when this
command runs, so without it this one command fails with one line saying what
to install.
"""

from __future__ import annotations

import os
import webbrowser
from pathlib import Path
from urllib.parse import urlencode

import click

from ..errors import ContextFSError
from ..tls import check_exposure, is_loopback
from ..tokens import Gate
from .common import TOKEN_ENV, default_author, open_repo, tls_options

#: The TCP port of ``contextfs ui`` unless told otherwise.
DEFAULT_UI_PORT = 7413


@click.command(name="ui")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_UI_PORT,
    show_default=True,
    help="The TCP port (0: any free one).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the UI in the web browser.")
@click.option(
    "--write",
    is_flag=True,
    help="Allow changes from the UI (revert an actor or session, branch, merge); each asks"
    " to confirm.",
)
@click.option(
    "--token",
    default=None,
    help=f"A shared token that may do everything, besides the store's own tokens"
    f" (default: ${TOKEN_ENV}).",
)
@tls_options
@click.pass_context
def ui(
    ctx: click.Context,
    host: str,
    port: int,
    open_browser: bool,
    write: bool,
    token: str | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    insecure: bool,
) -> None:
    """Serve the repository as web pages: history, diffs, memories, context, sessions, health.

    On 127.0.0.1 by default; any other address needs a token (and TLS unless
    --insecure). A browser presents a token once as /?token=...; it is kept
    in a cookie. Read-only unless --write.
    """
    try:
        import anyio

        from ..ui.app import build_app
        from ..webserve import listen, serve_asgi, url_of
    except ImportError as exc:
        missing = (exc.name or "a module").split(".")[0]
        raise ContextFSError(
            f"contextfs ui needs the ui extra ({missing} is missing):"
            " pip install 'contextfs-vcs[ui]'"
        ) from None
    if tls_key is not None and tls_cert is None:
        raise click.UsageError("--tls-key needs --tls-cert")
    token = token or os.environ.get(TOKEN_ENV) or None
    repo = open_repo(ctx)
    gate = Gate(repo.store, token)
    tls = tls_cert is not None
    warning = check_exposure(
        host, token=gate.closed(), tls=tls, insecure=insecure, what="serving the UI"
    )
    if warning:
        click.echo(warning, err=True)
    if tls_cert is not None:
        from ..tls import server_context

        server_context(tls_cert, tls_key or tls_cert)  # a bad file fails here, in one line
    loopback_names = ["127.0.0.1", "localhost", "::1", "[::1]"]
    app = build_app(
        repo,
        write=write,
        gate=gate,
        author=default_author(),
        allowed_hosts=loopback_names if is_loopback(host) and ":" not in host else None,
    )
    sock = listen(host, port)
    url = url_of(host, sock.getsockname()[1], "/", tls=tls)
    mode = "read and write" if write else "read-only"
    click.echo(f"serving the UI on {url} ({mode}); Ctrl-C stops it", err=True)
    if open_browser:
        webbrowser.open(f"{url}?{urlencode({'token': token})}" if token else url)
    anyio.run(
        lambda: serve_asgi(
            app,
            sock,
            tls_cert=str(tls_cert) if tls_cert else None,
            tls_key=str(tls_key or tls_cert) if tls_cert else None,
        )
    )


__all__ = ["ui"]
