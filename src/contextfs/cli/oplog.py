"""``contextfs oplog``: write, read, merge, crystallise and verify a session's op log."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import IO, Any

import click
from rich.table import Table

from ..errors import InvalidInputError, VerificationError
from ..files import DATA_LIMIT, read_limited
from ..oplog.base import OpLogBackend
from ..oplog.context_ops import CONTEXT_DOMAIN, add_atom_op, remove_atom_op
from ..oplog.entry import OpEntry, make_op_entry
from ..oplog.log import LogVerification
from ..repo import Repository
from .common import default_author, emit_json, input_name, json_option, open_repo, show

#: Longest op summary shown in a table cell.
SUMMARY_WIDTH = 60


@click.group()
def oplog() -> None:
    """Live sessions: append ops, merge replicas, crystallise them into commits.

    Each session's log is .contextfs/oplog/SESSION/ops.jsonl, or, for a
    repository stored in PostgreSQL, rows in that database shared by every
    machine. Many agents and processes may append to one session at once.
    """


def _log(ctx: click.Context, session: str) -> tuple[Repository, OpLogBackend]:
    repo = open_repo(ctx)
    log = repo.oplog(session)
    ctx.call_on_close(log.close)
    for repair in log.repairs:
        click.echo(
            f"warning: cut off a torn line {repair.line} ({repair.dropped_bytes} bytes) "
            f"of {repair.file} left by a crash",
            err=True,
        )
    return repo, log


def _load_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{where}: not valid JSON ({exc.msg})") from None


def _parse_op(text: str, where: str) -> dict[str, Any]:
    value = _load_json(text, where)
    if not isinstance(value, dict):
        raise InvalidInputError(f"{where}: an op must be a JSON object")
    return value


@oplog.command()
@click.argument("session")
@click.argument("ops", metavar="[OP_JSON]...", nargs=-1)
@click.option("--actor", "-a", default=None, help="Who made the ops (default: your user name).")
@click.option("--domain", "-d", default=CONTEXT_DOMAIN, show_default=True, help="The ops' domain.")
@click.option("--add", "add_texts", multiple=True, metavar="TEXT", help="Add a memory (context).")
@click.option("--type", "-t", "type_string", default="String", show_default=True, help="For --add.")
@click.option("--remove", "remove_ids", multiple=True, metavar="ID", help="Remove a memory by id.")
@click.option("--parent", "parents", multiple=True, metavar="OP_ID", help="A causal parent op.")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read one op (JSON) per line of stdin.")
@json_option("Print the ops as stored, as JSON.")
@click.pass_context
def append(
    ctx: click.Context,
    session: str,
    ops: tuple[str, ...],
    actor: str | None,
    domain: str,
    add_texts: tuple[str, ...],
    type_string: str,
    remove_ids: tuple[str, ...],
    parents: tuple[str, ...],
    from_stdin: bool,
    as_json: bool,
) -> None:
    """Append ops to SESSION, durably, all or none.

    Each OP_JSON is one domain op, e.g. '{"op": "add_atom", "content": "..."}';
    --add and --remove build context ops for you. Prints each op's id and
    Lamport stamp.
    """
    repo, log = _log(ctx, session)
    operations = [_parse_op(text, f"op {n}") for n, text in enumerate(ops, 1)]
    if from_stdin:
        operations += [
            _parse_op(line, f"stdin line {n}")
            for n, line in enumerate(sys.stdin, 1)
            if line.strip()
        ]
    if (add_texts or remove_ids) and domain != CONTEXT_DOMAIN:
        raise click.UsageError("--add and --remove make context ops; drop --domain")
    operations += [add_atom_op(text, type_string) for text in add_texts]
    for ref in remove_ids:
        operations.append(remove_atom_op(repo.memory_id(ref)))
    if not operations:
        raise click.UsageError("nothing to append: give OP_JSON, --add, --remove or --stdin")
    who = actor or default_author()
    entries = []
    for n, operation in enumerate(operations):
        entry = make_op_entry(
            who,
            domain,
            operation,
            log.next_lamport_ts(),
            parent_op_ids=list(parents) if n == 0 else [],
        )
        entries.append(entry)
    stored = log.append_many(entries)
    if as_json:
        emit_json(stored)
        return
    for entry in stored:
        click.echo(f"appended {entry['op_id'][:16]} at lamport {entry['lamport_ts']}")


@oplog.command(name="show")
@click.argument("session")
@click.option("--pending", is_flag=True, help="Only ops not yet in a checkpoint, in merge order.")
@click.option("--domain", "-d", default=None, help="Only ops of this domain.")
@click.option("--actor", "-a", default=None, help="Only ops by this actor.")
@click.option("--limit", "-n", type=click.IntRange(min=0), default=None, help="At most N ops.")
@json_option("Print the ops as a JSON list.")
@click.pass_context
def show_ops(
    ctx: click.Context,
    session: str,
    pending: bool,
    domain: str | None,
    actor: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """List SESSION's ops (file order; --pending: merge order)."""
    _, log = _log(ctx, session)
    if not log.exists():
        raise InvalidInputError(f"session {session!r} has no op log")
    entries: Iterable[OpEntry] = log.replay_since_checkpoint() if pending else log.read_all()
    chosen = [
        e
        for e in entries
        if (domain is None or e["domain"] == domain) and (actor is None or e["actor_id"] == actor)
    ][:limit]
    if as_json:
        emit_json(chosen)
        return
    table = Table(box=None, pad_edge=False)
    for column in ("lamport", "op", "actor", "domain", "operation"):
        table.add_column(column, no_wrap=column != "operation")
    for entry in chosen:
        table.add_row(
            str(entry["lamport_ts"]),
            entry["op_id"][:16],
            entry["actor_id"],
            entry["domain"],
            _summary(entry["domain_op"]),
        )
    show(table)


def _summary(operation: dict[str, Any]) -> str:
    name = str(operation.get("op", ""))
    rest = {k: v for k, v in operation.items() if k != "op"}
    detail = str(rest.get("content") or rest.get("id") or json.dumps(rest, ensure_ascii=False))
    text = " ".join(f"{name} {detail}".split())
    return text if len(text) <= SUMMARY_WIDTH else text[: SUMMARY_WIDTH - 1] + "…"


@oplog.command()
@json_option("Print the sessions as JSON.")
@click.pass_context
def sessions(ctx: click.Context, as_json: bool) -> None:
    """List the sessions with an op log, with their op and checkpoint counts."""
    repo = open_repo(ctx)
    rows = []
    for name in repo.oplog_sessions():
        log = repo.oplog(name)
        try:
            checkpoint = log.read_checkpoint()
            rows.append(
                {
                    "session": name,
                    "ops": log.end().ops,
                    "checkpointed": checkpoint["op_count"] if checkpoint else 0,
                    "commit": checkpoint.get("commit") if checkpoint else None,
                }
            )
        finally:
            log.close()
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no sessions")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("session", "ops", "pending", "last commit"):
        table.add_column(column)
    for row in rows:
        commit = row["commit"]
        table.add_row(
            str(row["session"]),
            str(row["ops"]),
            str(int(str(row["ops"])) - int(str(row["checkpointed"]))),
            str(commit)[:12] if commit else "-",
        )
    show(table)


@oplog.command()
@click.argument("session")
@click.argument("file", type=click.File("rb"))
@json_option("Print what was merged as JSON.")
@click.pass_context
def merge(ctx: click.Context, session: str, file: IO[bytes], as_json: bool) -> None:
    """Merge another replica's ops (FILE: its ops.jsonl, a JSON list, or '-') into SESSION.

    Ops already here are skipped; ops whose causal parents are missing are
    held back and reported. Nothing is written if any op is malformed.
    """
    _, log = _log(ctx, session)
    name = input_name(file)
    entries = _read_entries(read_limited(file, DATA_LIMIT, name), name)
    result = log.receive(entries)
    if as_json:
        emit_json(
            {
                "added": len(result.added),
                "duplicates": result.duplicates,
                "held": [e["op_id"] for e in result.held],
            }
        )
    else:
        click.echo(
            f"merged {len(result.added)} op(s); {result.duplicates} already here;"
            f" {len(result.held)} held back (causal parents missing)"
        )


def _read_entries(data: bytes, name: str) -> list[Any]:
    try:
        text = data.decode("utf-8", errors="strict") if data else ""
    except UnicodeDecodeError:
        raise InvalidInputError(f"{name}: not UTF-8 text, so not ops") from None
    stripped = text.lstrip()
    if stripped.startswith("["):
        value = _load_json(text, name)
        if not isinstance(value, list):
            raise InvalidInputError(f"{name}: expected a JSON list of ops")
        return value
    return [
        _parse_op(line, f"{name} line {n}")
        for n, line in enumerate(text.splitlines(), 1)
        if line.strip()
    ]


@oplog.command()
@click.argument("session")
@click.option("--branch", "-b", default=None, help="Commit to this branch (default: current).")
@click.option("--message", "-m", default=None, help="Commit message (default: made from the ops).")
@json_option("Print the commit and checkpoint as JSON.")
@click.pass_context
def checkpoint(
    ctx: click.Context, session: str, branch: str | None, message: str | None, as_json: bool
) -> None:
    """Crystallise SESSION's ops since its last checkpoint into one commit.

    Context ops change the snapshot; ops of other domains are counted and
    stay in the log. The commit and the checkpoint are written in one step.
    """
    repo, log = _log(ctx, session)
    result = repo.commit_oplog(log, branch=branch, message=message)
    if as_json:
        emit_json(
            {
                "commit": result.commit,
                "branch": result.branch,
                "ops": result.ops,
                "applied": result.applied,
                "changed": result.changed,
                "actors": list(result.actors),
                "skipped": [{"op_id": op, "why": why} for op, why in result.skipped],
                "other_domains": result.other_domains,
                "checkpoint": dict(result.checkpoint),
                "recovered": result.recovered,
            }
        )
        return
    if result.recovered:
        click.echo("note: wrote a checkpoint a crash had skipped", err=True)
    where = f" on {result.branch}" if result.branch else ""
    click.echo(
        f"[{result.commit[:12]}]{where} {result.ops} op(s) from {len(result.actors)} actor(s):"
        f" {result.changed} memories changed"
    )
    for op_id, why in result.skipped:
        click.echo(f"skipped {op_id[:16]}: {why}")
    for domain, count in result.other_domains.items():
        click.echo(f"kept {count} {domain} op(s) in the log")


@oplog.command(name="verify")
@click.argument("session")
@click.option(
    "--trusted",
    metavar="SIZE:ROOT",
    default=None,
    help="A log size and root remembered earlier; check the log still extends it.",
)
@json_option("Print the report as JSON.")
@click.pass_context
def verify_log(ctx: click.Context, session: str, trusted: str | None, as_json: bool) -> None:
    """Check SESSION's log: every line and op id, causal order, and every checkpoint.

    Each checkpoint's RFC 6962 root must match the log, and consistency proofs
    between checkpoints must show the log only grew. Exits 9 on any problem.
    """
    _, log = _log(ctx, session)
    if not log.exists():
        raise InvalidInputError(f"session {session!r} has no op log")
    report = log.verify(trusted=_parse_trusted(trusted) if trusted else None)
    _print_verification(report, as_json)
    if not report.ok:
        raise VerificationError(f"op log {session!r} has {len(report.problems)} problem(s)")


def _parse_trusted(text: str) -> tuple[int, str]:
    size, _, root = text.partition(":")
    if not size.isdigit() or len(root) != 64:
        raise click.UsageError("--trusted takes SIZE:ROOT, e.g. 120:3f2a... (64 hex digits)")
    return int(size), root.lower()


def _print_verification(report: LogVerification, as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "ok": report.ok,
                "session": report.session_id,
                "ops": report.ops,
                "checkpoints": report.checkpoints,
                "root": report.root,
                "problems": list(report.problems),
            }
        )
        return
    for problem in report.problems:
        click.echo(problem)
    verdict = "OK" if report.ok else f"{len(report.problems)} problem(s)"
    click.echo(
        f"{verdict}: {report.ops} op(s), {report.checkpoints} checkpoint(s), root {report.root}"
    )


__all__ = ["oplog"]
