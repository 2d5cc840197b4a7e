"""What every ``contextfs`` command shares: error handling, options, output helpers."""

from __future__ import annotations

import getpass
import os
import ssl
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console, RenderableType

from ..errors import ContextFSError
from ..repo import DEFAULT_AUTHOR, Repository
from ..tls import CA_ENV
from . import render

if TYPE_CHECKING:
    from ..client import Client

AUTHOR_ENV = "CONTEXTFS_AUTHOR"
#: Exit status after Ctrl-C, as shells report SIGINT.
EXIT_INTERRUPTED = 130
#: Exit status when the operating system refused a file or folder (as for any other error).
EXIT_OS_ERROR = 1

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Settings:
    """What the group's options say, shared with every command."""

    repo_path: Path | None


class ContextFSGroup(click.Group):
    """A group that turns library and usage errors into one line and an exit code."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; a usage error is one ``error:`` line (exit 2), not a block."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            status = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else prog_name or self.name
            message = " ".join(exc.format_message().split()).rstrip(".")
            click.echo(f"error: {message} (see '{where} --help')", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"error: {' '.join(exc.format_message().split())}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("error: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        sys.exit(status if isinstance(status, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ContextFSError as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            click.echo(f"error: {message}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except click.FileError as exc:  # click opened a file argument and the OS refused
            click.echo(f"error: {exc.format_message()}", err=True)
            ctx.exit(EXIT_OS_ERROR)
        except OSError as exc:  # a file or folder the user named could not be used
            where = f": {exc.filename!s}" if exc.filename else ""
            click.echo(f"error: {exc.strerror or exc}{where}", err=True)
            ctx.exit(EXIT_OS_ERROR)


def json_option(help_text: str = "Print machine-readable JSON on stdout.") -> Callable[[F], F]:
    """The ``--json`` flag, stored as ``as_json``."""
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def author_option(func: F) -> F:
    """The ``--author`` option (default: ``$CONTEXTFS_AUTHOR``, else the OS user)."""
    return click.option(
        "--author",
        metavar="NAME",
        default=None,
        help=f"Who made the change (default: ${AUTHOR_ENV}, else your user name).",
    )(func)


def default_author() -> str:
    """``$CONTEXTFS_AUTHOR``, else the OS user name, else ``anonymous``."""
    name = os.environ.get(AUTHOR_ENV, "").strip()
    if name:
        return name
    try:
        return getpass.getuser() or DEFAULT_AUTHOR
    except (OSError, KeyError, ImportError):  # no user name in the environment or passwd
        return DEFAULT_AUTHOR


def open_repo(ctx: click.Context) -> Repository:
    """Open the repository named by ``--repo`` (or found from the cwd), closed with the command."""
    settings = ctx.find_object(Settings)
    path = settings.repo_path if settings is not None else None
    return ctx.with_resource(Repository.open(path))


def console() -> Console:
    """Rich output on stdout; no colours, no wrapping surprises when piped.

    Markup and emoji codes are off: memory text such as ``[/x]``, ``List[String]``
    or ``:smile:`` is data and prints as written.
    """
    return Console(soft_wrap=True, highlight=False, markup=False, emoji=False)


def err_console() -> Console:
    """Rich output on stderr (progress bars)."""
    return Console(stderr=True, soft_wrap=True, highlight=False, markup=False, emoji=False)


def show(*renderables: RenderableType) -> None:
    """Print for people."""
    out = console()
    for renderable in renderables:
        out.print(renderable)


def emit_json(value: object) -> None:
    """Print a JSON shape on stdout, plainly."""
    click.echo(render.dumps(value))


TOKEN_ENV = "CONTEXTFS_TOKEN"


def tls_options(func: F) -> F:
    """``--tls-cert``, ``--tls-key`` and ``--insecure``: how a server faces the network."""
    func = click.option(
        "--insecure",
        is_flag=True,
        help="Allow serving beyond this machine without TLS (tokens travel in clear text).",
    )(func)
    func = click.option(
        "--tls-key",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="The private key of --tls-cert (PEM; default: in the certificate file).",
    )(func)
    return click.option(
        "--tls-cert",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Serve TLS with this certificate chain (PEM).",
    )(func)


def server_tls(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """The TLS context of ``--tls-cert``/``--tls-key``, or ``None`` without them."""
    if cert is None:
        if key is not None:
            raise click.UsageError("--tls-key needs --tls-cert")
        return None
    from ..tls import server_context

    return server_context(cert, key if key is not None else cert)


def input_name(file: object) -> str:
    """How messages name a file argument click opened: its path, or ``<stdin>``."""
    name = getattr(file, "name", "-")
    return "<stdin>" if name in ("-", "<stdin>") or not isinstance(name, str) else name


def ca_option(func: F) -> F:
    """``--ca FILE``: the CA a ``ctxs://`` server's certificate is verified against."""
    return click.option(
        "--ca",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=f"CA file to trust for a ctxs:// server (default: ${CA_ENV}, else the system's).",
    )(func)


def remote_options(func: F) -> F:
    """``--remote ctx[s]://host:port``, ``--token`` (default ``$CONTEXTFS_TOKEN``) and ``--ca``."""
    func = ca_option(func)
    func = click.option(
        "--token",
        default=None,
        help=f"Token for --remote (default: ${TOKEN_ENV}).",
    )(func)
    return click.option(
        "--remote",
        metavar="URL",
        default=None,
        help="Ask a server (ctx://host:port, ctxs:// with TLS) instead of the local repository.",
    )(func)


def open_remote(ctx: click.Context, url: str, token: str | None, ca: Path | None) -> Client:
    """A blocking client for ``url``, closed with the command."""
    from ..client import Client  # imported late: only remote commands need the client

    client = Client(url, token=token or os.environ.get(TOKEN_ENV), ca=ca)
    ctx.call_on_close(client.close)
    return client


def refuse_with_remote(remote: str | None, **local_only: object) -> None:
    """Refuse options that only work on the local repository when --remote is given."""
    if remote is None:
        return
    given = [name for name, value in local_only.items() if value not in (None, False, (), 0.0)]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise click.UsageError(f"{flags} cannot be used with --remote")


def retrieval_option(func: F) -> F:
    """The ``--retrieval`` option: how a query finds memories."""
    return click.option(
        "--retrieval",
        type=click.Choice(["lexical", "semantic", "hybrid"]),
        default=None,
        help="Find memories by the query's words, by meaning, or by both"
        " (default: hybrid when the repository has an embedder, else lexical).",
    )(func)
