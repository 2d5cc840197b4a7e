"""``contextfs index`` and ``contextfs config``: the embedder that finds memories by meaning."""

from __future__ import annotations

from typing import Any

import click

from ..config import RepoConfig, read_config
from ..embed.names import default_embedder_name
from ..errors import InvalidInputError
from ..store.urls import redact_url
from . import render
from .common import emit_json, err_console, json_option, open_repo

#: The keys ``contextfs config`` can set; the others are set by ``init`` and ``remote``.
SETTABLE = ("embedder",)


@click.command()
@click.argument("revision", default="HEAD")
@json_option()
@click.pass_context
def index(ctx: click.Context, revision: str, as_json: bool) -> None:
    """Embed REVISION's memories now (default HEAD), instead of on the next query by meaning.

    Vectors are derived data, like the full-text index: made once per memory
    and embedder, never on the way in. Run this after a large import so the
    first query by meaning is as fast as the rest.
    """
    repo = open_repo(ctx)
    with render.count_progress(err_console(), "embedding") as tick:
        made = repo.index(revision, progress=tick)  # without an embedder: a one-line error
    embedder = repo.embedder
    assert embedder is not None  # index() refused a repository without one
    if as_json:
        emit_json({"embedder": embedder.id, "embedded": made})
        return
    click.echo(f"Embedded {made} memor{'y' if made == 1 else 'ies'} with {embedder.id}")


@click.command()
@click.argument("key", required=False)
@click.argument("value", required=False)
@json_option()
@click.pass_context
def config(ctx: click.Context, key: str | None, value: str | None, as_json: bool) -> None:
    """Show the repository's settings, or one of them, or set KEY to VALUE.

    \b
    contextfs config                    every setting
    contextfs config embedder           which embedder finds memories by meaning
    contextfs config embedder none      words only (or wordllama, openai:MODEL,...,
                                        sentence-transformers:MODEL,..., fastembed:MODEL,...)

    Changing the embedder drops the old one's vectors; the new one embeds on
    the next query by meaning, or at once with ``contextfs index``.
    """
    repo = open_repo(ctx)
    settings = _settings(read_config(repo.path) if repo.path is not None else RepoConfig())
    if key is not None and key not in settings:
        *first, last = settings
        raise InvalidInputError(f"no setting {key!r}; settings are {', '.join(first)} and {last}")
    if value is not None:
        assert key is not None
        if key not in SETTABLE:
            raise InvalidInputError(
                f"{key!r} is set by `contextfs init` or `contextfs remote`, not by config"
            )
        dropped = repo.set_embedder(value)
        click.echo(
            f"Embedder is now {value.strip()}"
            + (f"; dropped {dropped} vectors of the old one" if dropped else "")
        )
        return
    if key is not None:
        if as_json:
            emit_json(settings[key])
        else:
            click.echo(_format(settings[key]))
        return
    if as_json:
        emit_json(settings)
        return
    for name, shown in settings.items():
        click.echo(f"{name} = {_format(shown)}")


def _settings(found: RepoConfig) -> dict[str, Any]:
    """Every setting as shown: defaults filled in, passwords out of URLs."""
    return {
        "embedder": found.embedder or default_embedder_name(),
        "store": redact_url(found.store) if found.store else "sqlite (the folder's own file)",
        "workspace": found.workspace,
        "remotes": {
            name: redact_url(url) if url.startswith(("postgresql:", "postgres:")) else url
            for name, url in sorted(found.remotes.items())
        },
    }


def _format(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "(none)"
    return "(none)" if value is None else str(value)


__all__ = ["config", "index"]
