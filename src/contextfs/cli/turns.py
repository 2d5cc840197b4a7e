"""``contextfs context --turn``: one agent turn's context, built for provider prompt caches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..errors import InvalidInputError
from ..files import JSON_LIMIT, read_file_limited, write_atomically
from ..repo import Repository
from ..services.assembler import Retrieval
from .common import F, emit_json


def turn_options(func: F) -> F:
    """``--turn``, ``--since STATE`` and ``--save STATE``."""
    for option in reversed(
        [
            click.option(
                "--turn",
                is_flag=True,
                help="Build one agent turn's context: a stable block, then a volatile one.",
            ),
            click.option(
                "--since",
                type=click.Path(dir_okay=False, path_type=Path),
                default=None,
                metavar="STATE",
                help="Last turn's state (written by --save); implies --turn.",
            ),
            click.option(
                "--save",
                type=click.Path(dir_okay=False, path_type=Path),
                default=None,
                metavar="STATE",
                help="Write this turn's state here, for --since next turn; implies --turn.",
            ),
        ]
    ):
        func = option(func)
    return func


def read_state(path: Path) -> dict[str, Any]:
    """A state file --save wrote.

    Raises:
        InvalidInputError: it cannot be read or is not JSON.
    """
    try:
        value = json.loads(read_file_limited(path, JSON_LIMIT).decode("utf-8"))
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path.name}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path.name}: not a turn state (not JSON: {exc})") from None
    if not isinstance(value, dict):
        raise InvalidInputError(f"{path.name}: not a turn state (not a JSON object)")
    return value


def print_turn(
    repo: Repository,
    revision: str,
    *,
    budget: int,
    query: str | None,
    half_life: float | None,
    retrieval: Retrieval | None,
    since: Path | None,
    save: Path | None,
    receipt_path: Path | None,
    as_json: bool,
) -> None:
    """Build the turn, save its state and receipt, and print its text (stats on stderr)."""
    previous = read_state(since) if since is not None else None
    turn = repo.turn_context(
        query,
        budget=budget,
        previous=previous,
        revision=revision,
        half_life_seconds=half_life,
        retrieval=retrieval,
    )
    if save is not None:
        write_atomically(save, (json.dumps(turn.state) + "\n").encode())
    if receipt_path is not None:
        write_atomically(receipt_path, (turn.receipt.to_json() + "\n").encode())
    cost = turn.cost
    if as_json:
        emit_json(turn.to_json())
        return
    if turn.text:
        click.echo(turn.text, nl=False)
    rebuilt = f"; stable block rebuilt ({turn.rebuild})" if turn.rebuild else ""
    click.echo(
        f"tokens: {turn.tokens} (stable {turn.blocks[0].tokens}, volatile "
        f"{turn.blocks[1].tokens}); cache read {cost.cache_read}, written {cost.cache_write},"
        f" uncached {cost.uncached}; billed {cost.billed:g} of {cost.uncached_price:g}{rebuilt}",
        err=True,
    )


__all__ = ["print_turn", "read_state", "turn_options"]
