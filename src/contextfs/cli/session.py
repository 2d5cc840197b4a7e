"""``contextfs session``: an agent turn's tiered payload, or its delta since the last turn."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..errors import InvalidInputError
from ..expand.tokens import default_tokenizer
from ..files import JSON_LIMIT, read_file_limited, write_atomically
from ..services.assembler import DEFAULT_SESSION_BUDGET, Retrieval
from ..session.delta import apply_delta, build_delta, canonical_json
from ..session.tiers import render_payload
from ..wire.messages import SessionResponse
from .common import (
    emit_json,
    json_option,
    open_remote,
    open_repo,
    remote_options,
    retrieval_option,
)


@click.command()
@click.argument("revision", metavar="[REV]", default="HEAD")
@click.option(
    "--budget",
    type=click.IntRange(min=0),
    default=DEFAULT_SESSION_BUDGET,
    show_default=True,
    help="Tokens of the whole payload (cl100k).",
)
@click.option("--query", "-q", default=None, help="Rank l1 and l2 by, and keep only, matches.")
@click.option(
    "--since",
    "since",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The hash bundle of the client's last turn (JSON); print the delta.",
)
@click.option(
    "--save",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the new hash bundle here (use it as --since next turn).",
)
@click.option(
    "--granularity",
    type=click.Choice(["item", "component"]),
    default="item",
    show_default=True,
    help="Deltas by item and line, or by whole component (as the seed).",
)
@retrieval_option
@remote_options
@json_option("Print the payload or delta, the hashes and token counts as JSON.")
@click.pass_context
def session(
    ctx: click.Context,
    revision: str,
    budget: int,
    query: str | None,
    since: Path | None,
    save: Path | None,
    granularity: Any,
    retrieval: Retrieval | None,
    remote: str | None,
    token: str | None,
    ca: Path | None,
    as_json: bool,
) -> None:
    """Print REV's session payload (l0, rich_club, l1, l2) for an agent's turn.

    With --since, print only what changed since the turn whose hash bundle the
    file holds; apply it with contextfs.session.apply_delta. Token counts are
    of the payload and the delta as sent (their JSON).
    """
    previous = _read_bundle(since) if since is not None else {}
    counter = default_tokenizer()
    if remote is not None:
        client = open_remote(ctx, remote, token, ca)

        def ask(hashes: dict[str, str]) -> SessionResponse:
            return client.session(
                revision,
                budget=budget,
                query=query,
                hashes=hashes,
                granularity=granularity,
                retrieval=retrieval,
            )

        answer = ask(previous)
        delta, hashes = answer.delta, answer.hashes
        # Against no hashes the delta is the whole payload; otherwise ask for it whole.
        full_payload = delta if not previous else ask({}).delta
    else:
        payload = open_repo(ctx).session_payload(
            revision, budget=budget, query=query, retrieval=retrieval
        )
        delta, hashes = build_delta(previous, payload, granularity=granularity)
        full_payload = (
            delta if not previous else build_delta({}, payload, granularity=granularity)[0]
        )
    full = apply_delta({}, full_payload)
    tokens = {
        "prompt": counter.count(render_payload(full)),
        "payload": counter.count(canonical_json(full_payload)),
        "delta": counter.count(canonical_json(delta)),
    }
    if save is not None:
        write_atomically(save, (json.dumps(hashes, indent=2) + "\n").encode())
    if as_json:
        body = {"delta": delta} if since is not None else {"payload": full}
        emit_json({**body, "hashes": hashes, "tokens": tokens})
        return
    click.echo(canonical_json(delta) if since is not None else render_payload(full))
    click.echo()
    click.echo(
        f"tokens: prompt {tokens['prompt']}, payload {tokens['payload']},"
        f" delta {tokens['delta']} ({granularity})"
    )
    if save is None:
        click.echo(f"hashes: {canonical_json(hashes)}")


def _read_bundle(path: Path) -> dict[str, str]:
    """Read a hash bundle; a malformed one counts as none (the client gets everything)."""
    try:
        value = json.loads(read_file_limited(path, JSON_LIMIT).decode("utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{path.name}: not valid JSON ({exc.msg})") from None
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path.name}: not UTF-8 text, so not a hash bundle") from None
    if not isinstance(value, dict):
        raise InvalidInputError(f"{path.name}: a hash bundle is a JSON object")
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


__all__ = ["session"]
