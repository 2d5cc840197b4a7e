"""The ``contextfs`` command: argv to one :class:`~contextfs.repo.Repository` call per command.

This is the only layer that reads argv and the environment (``CONTEXTFS_DIR``
through :meth:`Repository.open`, ``CONTEXTFS_AUTHOR`` here). Every
:class:`~contextfs.errors.ContextFSError` becomes one ``error: <message>`` line
on stderr and the error's ``exit_code`` (see ``docs/CLI.md``); usage errors
exit 2, an interrupt 130. Output for people goes through Rich; ``--json``
output is plain JSON on stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Any, Literal

import click

from .._version import __version__
from ..errors import MergeConflictError, StoreError, VerificationError
from ..expand.query import ContextQuery
from ..expand.receipt import Receipt
from ..expand.render import Format
from ..files import JSON_LIMIT, read_limited, write_atomically
from ..history.reflog import acting_as
from ..integrity.gc import DEFAULT_GRACE_SECONDS
from ..integrity.proofs import proof_from_json
from ..integrity.proofs import verify as verify_proof
from ..model.ids import ID_HEX_LENGTH, is_hex_prefix, short
from ..model.objects import MemoryAtom, check_relevance
from ..model.refs import DEFAULT_BRANCH
from ..model.timeutil import from_micros, now_micros
from ..model.types import TypeSignature
from ..records import SearchHit
from ..repo import Repository
from ..services.assembler import Retrieval
from ..store.urls import redact_url
from ..wire.atoms import memory_atom
from . import render
from .common import (
    EXIT_INTERRUPTED,
    ContextFSGroup,
    F,
    Settings,
    author_option,
    console,
    default_author,
    emit_json,
    input_name,
    json_option,
    open_remote,
    open_repo,
    refuse_with_remote,
    remote_options,
    retrieval_option,
    show,
)
from .connect import connect, disconnect
from .embedding import config, index
from .interchange import export_command, import_command
from .mcp import mcp
from .oplog import oplog
from .remote import clone, fetch, pull, push, remote
from .serve import serve
from .session import session
from .tokens import token
from .turns import print_turn, turn_options
from .ui import ui
from .workspaces import workspace


@click.group(
    name="contextfs", cls=ContextFSGroup, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option(
    "--repo",
    "repo_path",
    metavar="PATH",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The repository (a folder in or above it); default: found from the current "
    "directory, or $CONTEXTFS_DIR.",
)
@click.version_option(__version__, prog_name="contextfs", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, repo_path: Path | None) -> None:
    """Version control for what an AI agent knows.

    Start with `contextfs tour`.
    """
    ctx.obj = Settings(repo_path)
    ctx.with_resource(acting_as(default_author()))  # who the reflog names


# -- setting up and staging ---------------------------------------------------


@cli.command()
@click.argument("path", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--branch", "-b", default=DEFAULT_BRANCH, show_default=True, help="First branch.")
@click.option(
    "--store",
    metavar="URL",
    default=None,
    help="Keep the memories in this PostgreSQL database (postgresql://user@host:port/db)"
    " instead of the folder's own SQLite file; joins the repository already there.",
)
@click.option(
    "--embedder",
    metavar="NAME",
    default=None,
    help="What finds memories by meaning: wordllama (default, offline), none (words"
    " only), openai:MODEL,dimensions=N[,url=URL], sentence-transformers:MODEL,dimensions=N"
    " or fastembed:MODEL,dimensions=N.",
)
@click.pass_context
def init(
    ctx: click.Context, path: Path | None, branch: str, store: str | None, embedder: str | None
) -> None:
    """Create a repository.

    It goes in PATH/.contextfs (PATH default: --repo, else the current directory).
    """
    settings = ctx.find_object(Settings)
    target = path or (settings.repo_path if settings else None) or Path()
    if store is None:
        repo = ctx.with_resource(Repository.init(target, branch=branch, embedder=embedder))
        where = (repo.path or target).resolve()
        click.echo(f"Initialised empty ContextFS repository in {where} (branch {branch})")
        return
    repo = ctx.with_resource(Repository.init(target, branch=branch, store=store, embedder=embedder))
    where = (repo.path or target).resolve()
    click.echo(
        f"Initialised ContextFS repository in {where}, stored in {redact_url(store)}"
        f" (branch {repo.current_branch or 'detached HEAD'})"
    )


@cli.command()
@click.argument("texts", metavar="TEXT...", nargs=-1)
@click.option("--type", "-t", "type_string", default="String", show_default=True, help="Type.")
@click.option("--relevance", "-r", type=float, default=1.0, show_default=True, help="In [0, 1].")
@click.option("--source", "-s", default="", help="Where the memory came from.")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="A tag (repeatable).")
@click.option("--abstract", default=None, help="A one-line summary (tier l0).")
@click.option("--overview", default=None, help="A short overview (tier l1).")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read one memory per line from stdin.")
@json_option("Print the staged atom ids as a JSON list.")
@click.pass_context
def add(
    ctx: click.Context,
    texts: tuple[str, ...],
    type_string: str,
    relevance: float,
    source: str,
    tags: tuple[str, ...],
    abstract: str | None,
    overview: str | None,
    from_stdin: bool,
    as_json: bool,
) -> None:
    """Stage one memory per TEXT.

    All get the same type and entry fields. Adding a staged atom again (same
    type and content) replaces its entry.
    """
    contents = list(texts)
    if from_stdin:
        contents.extend(line.rstrip("\r\n") for line in sys.stdin if line.strip())
    if not contents:
        raise click.UsageError("give at least one TEXT, or --stdin")
    type_sig = TypeSignature.parse(type_string)
    check_relevance(relevance)
    moment = from_micros(now_micros())
    atoms = [
        MemoryAtom(
            text,
            type_sig,
            moment,
            source,
            relevance,
            tags=tags,
            abstract=abstract,
            overview=overview,
        )
        for text in contents
    ]
    ids = open_repo(ctx).add_atoms(atoms)
    if as_json:
        emit_json(ids)
        return
    for oid, atom in zip(ids, atoms, strict=True):
        click.echo(f"staged {short(oid)} [{atom.type_sig}] {_one_line(atom.content)}")


@cli.command()
@click.argument("refs", metavar="ID...", nargs=-1, required=True)
@click.pass_context
def rm(ctx: click.Context, refs: tuple[str, ...]) -> None:
    """Unstage memories by id prefix (they leave the next commit)."""
    for oid in open_repo(ctx).remove(*refs):
        click.echo(f"removed {short(oid)}")


@cli.command()
@json_option()
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show the branch, staged changes and any merge in progress."""
    result = open_repo(ctx).status()
    if as_json:
        emit_json(render.status_json(result))
    else:
        show(render.status_renderable(result))


@cli.command()
@click.option("--message", "-m", required=True, help="Why the memory changed.")
@author_option
@click.option("--allow-empty", is_flag=True, help="Commit even when nothing is staged.")
@click.option(
    "--expect-head",
    metavar="ID",
    default=None,
    help="Commit only if HEAD is still this commit ('none': no commits yet).",
)
@json_option("Print the new commit id as JSON.")
@click.pass_context
def commit(
    ctx: click.Context,
    message: str,
    author: str | None,
    allow_empty: bool,
    expect_head: str | None,
    as_json: bool,
) -> None:
    """Record the stage as a new commit on the current branch."""
    repo = open_repo(ctx)
    kwargs: dict[str, Any] = {}
    if expect_head is not None:
        kwargs["expect_head"] = _expected_head(repo, expect_head)
    oid = repo.commit(message, author=author or default_author(), allow_empty=allow_empty, **kwargs)
    if as_json:
        emit_json({"commit": oid})
    else:
        where = repo.current_branch or "detached HEAD"
        click.echo(f"[{where} {short(oid)}] {message.splitlines()[0] if message else ''}")


def _expected_head(repo: Repository, value: str) -> str | None:
    if value.lower() == "none":
        return None
    if len(value) == ID_HEX_LENGTH and is_hex_prefix(value):
        return value
    return repo.resolve(value)


# -- reading history ----------------------------------------------------------


@cli.command()
@click.argument("revisions", metavar="[REV]...", nargs=-1)
@click.option("--oneline", is_flag=True, help="One line per commit.")
@click.option("--graph", is_flag=True, help="Draw the commit graph (one line per commit).")
@click.option("-n", "--max-count", "limit", type=click.IntRange(min=0), help="Show at most N.")
@remote_options
@json_option()
@click.pass_context
def log(
    ctx: click.Context,
    revisions: tuple[str, ...],
    oneline: bool,
    graph: bool,
    limit: int | None,
    remote: str | None,
    token: str | None,
    ca: Path | None,
    as_json: bool,
) -> None:
    """List commits, newest first.

    Shows the commits reachable from REV... (default HEAD).
    """
    if remote is not None:
        refuse_with_remote(remote, graph=graph)
        if len(revisions) > 1:
            raise click.UsageError("with --remote, give at most one REV")
        entries = open_remote(ctx, remote, token, ca).log(
            revisions[0] if revisions else "HEAD", limit=min(limit or 20, 1000)
        )
        if as_json:
            emit_json([render.remote_commit_json(entry) for entry in entries])
        else:
            for entry in entries:
                click.echo(f"{entry.id[:12]} {entry.message.splitlines()[0]}")
        return
    repo = open_repo(ctx)
    infos = list(repo.log(revisions or ("HEAD",), limit=limit))
    if as_json:
        emit_json([render.commit_json(info) for info in infos])
        return
    labels = render.decorations(repo.head(), repo.current_branch, repo.branches(), repo.tags())
    if graph:
        show(*render.graph_lines(infos, labels))
    elif oneline:
        show(*(render.oneline(info, labels.get(info.id, ())) for info in infos))
    else:
        out = console()
        for n, info in enumerate(infos):
            if n:
                out.print()
            out.print(render.commit_long(info, labels.get(info.id, ())))


@cli.command()
@click.argument("ref", default="HEAD")
@click.option("-n", "--max-count", "limit", type=click.IntRange(min=0), help="Show at most N.")
@json_option()
@click.pass_context
def reflog(ctx: click.Context, ref: str, limit: int | None, as_json: bool) -> None:
    """List every move of REF (HEAD or a branch), newest first, with who and why.

    Like git's reflog: the commits a branch pointed at before a reset or a
    merge can be found here and brought back with `contextfs reset ID`.
    """
    entries = open_repo(ctx).reflog(ref, limit=limit)
    if as_json:
        emit_json([render.reflog_json(ref, n, entry) for n, entry in enumerate(entries)])
        return
    for number, entry in enumerate(entries):
        click.echo(render.reflog_line(ref, number, entry))


@cli.command(name="show")
@click.argument("revision", metavar="[REV]", default="HEAD")
@json_option()
@click.pass_context
def show_command(ctx: click.Context, revision: str, as_json: bool) -> None:
    """Show a commit and the changes it made.

    Changes are against the commit's first parent.
    """
    repo = open_repo(ctx)
    info, changes = repo.show(revision)
    if as_json:
        emit_json(
            {
                "commit": render.commit_json(info),
                "changes": [render.change_json(c) for c in changes],
            }
        )
        return
    labels = render.decorations(repo.head(), repo.current_branch, repo.branches(), repo.tags())
    show(render.commit_long(info, labels.get(info.id, ())))
    if changes:
        show("", render.changes_table(changes))


@cli.command()
@click.argument("old", metavar="REV")
@click.argument("new", metavar="[REV]", required=False)
@json_option()
@click.pass_context
def diff(ctx: click.Context, old: str, new: str | None, as_json: bool) -> None:
    """Show what differs between two versions.

    From the first REV to the second; with one REV, from it to the stage.
    """
    changes = open_repo(ctx).diff(old, new)
    if as_json:
        emit_json([render.change_json(c) for c in changes])
    elif changes:
        show(render.changes_table(changes))
    else:
        click.echo("No differences.")


def half_life_option(func: F) -> F:
    """The ``--half-life`` option: recency decay, in seconds."""
    return click.option(
        "--half-life",
        "half_life",
        type=float,
        default=None,
        metavar="SECONDS",
        help="Weigh memories down by age: half as relevant every SECONDS.",
    )(func)


@cli.command()
@click.argument("revision", metavar="[REV]", default="HEAD")
@click.option("--budget", type=int, default=None, help="Token budget (cl100k tokens).")
@click.option("--query", "-q", default=None, help="Rank by, and keep only, memories matching.")
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(["lines", "markdown", "json", "xml"]),
    default="lines",
    show_default=True,
    help="How the prompt is rendered.",
)
@half_life_option
@retrieval_option
@click.option(
    "--receipt",
    "receipt_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Write a receipt that proves which memory version produced the prompt.",
)
@turn_options
@remote_options
@json_option("Print the atoms, token count, prompt and receipt as JSON.")
@click.pass_context
def expand(
    ctx: click.Context,
    revision: str,
    budget: int | None,
    query: str | None,
    fmt: Format,
    half_life: float | None,
    retrieval: Retrieval | None,
    receipt_path: Path | None,
    turn: bool,
    since: Path | None,
    save: Path | None,
    remote: str | None,
    token: str | None,
    ca: Path | None,
    as_json: bool,
) -> None:
    """Print a version's memory as prompt context (also called `contextfs context`).

    The best memories of REV (default HEAD) that fit --budget tokens, most
    relevant first; with --query only matching memories, ranked by match too
    (--retrieval semantic or hybrid: matching by meaning). With --turn, one
    agent turn's context built for provider prompt caches: a stable block that
    stays byte-identical from turn to turn (--since the state --save wrote last
    turn), then a volatile block for this turn's query.
    """
    if turn or since is not None or save is not None:
        refuse_with_remote(remote, turn=True)
        if fmt != "lines":
            raise click.UsageError("--turn renders lines; leave out --format")
        if budget is None:
            raise click.UsageError("--turn needs --budget")
        print_turn(
            open_repo(ctx),
            revision,
            budget=budget,
            query=query,
            half_life=half_life,
            retrieval=retrieval,
            since=since,
            save=save,
            receipt_path=receipt_path,
            as_json=as_json,
        )
        return
    if remote is not None:
        refuse_with_remote(remote, half_life=half_life, receipt=receipt_path)
        answer = open_remote(ctx, remote, token, ca).expand(
            revision, budget=budget, query=query, format=fmt, retrieval=retrieval
        )
        if as_json:
            emit_json(
                {
                    "budget": budget,
                    "tokens": answer.total_tokens,
                    "atoms": [render.atom_json(memory_atom(a)) for a in answer.atoms],
                    "text": answer.text,
                    "commit": answer.commit,
                }
            )
        elif answer.text:
            click.echo(answer.text)
        return
    context = open_repo(ctx).context(
        revision,
        budget=budget,
        query=query,
        format=fmt,
        half_life_seconds=half_life,
        retrieval=retrieval,
    )
    if receipt_path is not None:
        write_atomically(receipt_path, (context.receipt.to_json() + "\n").encode())
    if as_json:
        emit_json(
            {
                "budget": budget,
                "tokens": context.tokens,
                "atoms": [render.atom_json(atom) for atom in context.atoms],
                "text": context.text,
                "receipt": json.loads(context.receipt.to_json()),
            }
        )
    elif context.text:
        click.echo(context.text)


@cli.command()
@click.argument("query")
@click.option("--rev", "revision", default="HEAD", show_default=True, help="Revision to search.")
@click.option("--type", "-t", "type_string", default=None, help="Keep memories of this type.")
@click.option("--tag", "tags", multiple=True, help="Keep memories with this tag (repeatable).")
@click.option("--source", default=None, help="Keep memories from this source.")
@click.option(
    "--min-relevance", type=float, default=0.0, help="Keep memories at least this relevant."
)
@click.option("--all", "match_all", is_flag=True, help="Require every word, not any.")
@click.option("--limit", "-n", type=int, default=10, show_default=True, help="Most results.")
@half_life_option
@retrieval_option
@remote_options
@json_option("Print the hits as JSON.")
@click.pass_context
def search(
    ctx: click.Context,
    query: str,
    revision: str,
    type_string: str | None,
    tags: tuple[str, ...],
    source: str | None,
    min_relevance: float,
    match_all: bool,
    limit: int,
    half_life: float | None,
    retrieval: Retrieval | None,
    remote: str | None,
    token: str | None,
    ca: Path | None,
    as_json: bool,
) -> None:
    """Search a version's memories, best first.

    Words match in any order (all of them with --all); "quoted phrases" match
    as phrases and a trailing * matches a prefix. --retrieval semantic finds
    memories by meaning instead, and hybrid by both.
    """
    if remote is not None:
        refuse_with_remote(
            remote,
            type=type_string,
            tag=tags,
            source=source,
            min_relevance=min_relevance,
            half_life=half_life,
        )
        found = open_remote(ctx, remote, token, ca).query(
            query,
            revision=revision,
            limit=limit,
            mode="all" if match_all else "any",
            retrieval=retrieval,
        )
        remote_hits = [SearchHit(memory_atom(h.atom), h.score, h.match) for h in found]
        if as_json:
            emit_json(
                [
                    {**render.atom_json(h.atom), "score": h.score, "match": h.match}
                    for h in remote_hits
                ]
            )
        elif remote_hits:
            show(render.hits_table(remote_hits))
        else:
            click.echo("No memories match.")
        return
    where = ContextQuery(
        type_filter=TypeSignature.parse(type_string) if type_string else None,
        min_relevance=min_relevance,
        tags=tags,
        source=source,
    )
    hits = open_repo(ctx).search(
        query,
        revision=revision,
        limit=limit,
        mode="all" if match_all else "any",
        where=where,
        half_life_seconds=half_life,
        retrieval=retrieval,
    )
    if as_json:
        emit_json([{**render.atom_json(h.atom), "score": h.score, "match": h.match} for h in hits])
    elif hits:
        show(render.hits_table(hits))
    else:
        click.echo("No memories match.")


@cli.command()
@click.argument("atom", metavar="ID")
@click.option("--rev", "revision", default="HEAD", show_default=True, help="The version.")
@json_option("Print the proof itself, as JSON.")
@click.pass_context
def prove(ctx: click.Context, atom: str, revision: str, as_json: bool) -> None:
    """Prove that a memory is (or is not) in a version.

    The proof is a chain of RFC 6962 inclusion proofs from the memory up to the
    commit's id; `contextfs verify-proof` (or any RFC 6962 verifier) checks it.
    """
    proof = open_repo(ctx).prove(atom, revision)
    if not verify_proof(proof, proof.commit_id):
        raise VerificationError(f"the store built a proof that does not verify for {atom!r}")
    if as_json:
        click.echo(proof.to_json(indent=2))
        return
    where = f"{revision} (commit {short(proof.commit_id)})"
    if proof.kind == "membership":
        click.echo(
            f"memory {short(proof.key)} is in {where}: "
            f"membership proof over {len(proof.path)} levels, verified"
        )
    else:
        click.echo(f"memory {short(proof.key)} is NOT in {where}: non-membership proof, verified")


@cli.command(name="verify-proof")
@click.argument("file", type=click.File("rb"))
@click.option(
    "--commit", "commit", required=True, metavar="ID", help="The full commit id to trust."
)
@click.pass_context
def verify_proof_command(ctx: click.Context, file: IO[bytes], commit: str) -> None:
    """Check a proof from `contextfs prove --json` against a commit id you trust.

    Needs no repository: only the proof and the id. Exits 0 if it holds, 9 if not.
    """
    proof = proof_from_json(read_limited(file, JSON_LIMIT, input_name(file)))
    if not verify_proof(proof, commit.lower()):
        raise VerificationError(f"the proof does not hold for commit {commit!r}")
    verdict = "is in" if proof.kind == "membership" else "is NOT in"
    click.echo(f"OK: memory {short(proof.key)} {verdict} commit {short(commit.lower())}")


@cli.command()
@json_option("Print the report as JSON.")
@click.pass_context
def verify(ctx: click.Context, as_json: bool) -> None:
    """Re-hash every object and check every commit, tree, link and ref.

    Names each corrupt or missing object by id and kind; exits 8 if any.
    """
    report = open_repo(ctx).verify()
    if as_json:
        emit_json(
            {
                "ok": report.ok,
                "counts": dict(report.counts),
                "purged": list(report.purged),
                "vectors": dict(report.vectors),
                "vector_search": report.vector_search,
                "problems": [
                    {"kind": p.kind, "id": p.oid, "ref": p.ref, "message": p.message}
                    for p in report.problems
                ],
            }
        )
    else:
        for problem in report.problems:
            click.echo(f"{problem.kind} {problem.oid or problem.ref}: {problem.message}")
        counted = ", ".join(f"{n} {kind}" for kind, n in sorted(report.counts.items()) if n)
        purged = f"; {len(report.purged)} purged" if report.purged else ""
        verdict = "OK" if report.ok else f"{len(report.problems)} problem(s)"
        click.echo(f"{verdict}: checked {counted or 'nothing'}{purged}")
        for embedder, count in sorted(report.vectors.items()):
            click.echo(f"vectors: {count} of {embedder}")
        if report.vector_search is not None:
            click.echo(f"vector search: {report.vector_search}")
    if not report.ok:
        raise StoreError(f"the store has {len(report.problems)} problem(s); see above")


@cli.command()
@click.option("--dry-run", is_flag=True, help="Report what would be removed; change nothing.")
@click.option(
    "--grace-days",
    type=click.FloatRange(min=0),
    default=DEFAULT_GRACE_SECONDS / 86_400,
    show_default=True,
    help="Reflog entries younger than this keep their commits; older ones expire.",
)
@click.option(
    "--no-repack", is_flag=True, help="Only remove; leave how objects are stored as it is."
)
@json_option("Print the report as JSON.")
@click.pass_context
def gc(
    ctx: click.Context, dry_run: bool, grace_days: float, no_repack: bool, as_json: bool
) -> None:
    """Remove the objects nothing reaches, repack the rest, and compact the store.

    Abandoned stages, commits left behind by a reset once their reflog
    entries are older than the grace period, and the trees and memories only
    they held go. Then, as git's gc packs, older versions of tree nodes are
    stored as deltas against newer ones and compression dictionaries are
    trained from the store's own memories. One transaction: writers wait, and
    a crash leaves the store as it was.
    """
    report = open_repo(ctx).gc(
        grace_seconds=grace_days * 86_400, dry_run=dry_run, repack=not no_repack
    )
    if as_json:
        emit_json(
            {
                "dry_run": report.dry_run,
                "kept": report.kept,
                "removed": report.removed,
                "removed_bytes": report.removed_bytes,
                "expired_reflog_entries": report.expired,
                "repacked": report.repacked,
                "dictionaries": list(report.dictionaries),
                "bytes_before": report.bytes_before,
                "bytes_after": report.bytes_after,
            }
        )
        return
    kinds = ", ".join(f"{n} {kind}" for kind, n in report.removed.items()) or "nothing"
    verb = "would remove" if dry_run else "removed"
    expired = f"; expired {report.expired} reflog entries" if report.expired else ""
    click.echo(
        f"{verb} {kinds} ({render.byte_size(report.removed_bytes)});"
        f" kept {report.kept} objects{expired}"
    )
    if report.repacked or report.dictionaries:
        trained = (
            f"; new compression dictionary for {', '.join(report.dictionaries)}"
            if report.dictionaries
            else ""
        )
        click.echo(f"repacked {report.repacked} objects{trained}")
    if not dry_run:
        click.echo(
            f"objects: {render.byte_size(report.bytes_before)}"
            f" -> {render.byte_size(report.bytes_after)}"
        )


@cli.command()
@click.argument("atom", metavar="ID")
@author_option
@click.option("--reason", default="", help="Why (kept in the purge record).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def purge(ctx: click.Context, atom: str, author: str | None, reason: str, yes: bool) -> None:
    """Erase a memory's text from every version, index and free page.

    History still verifies (ids cover the text's hash, not the text); the purge
    is recorded with who, when and why. This cannot be undone.
    """
    repo = open_repo(ctx)
    if not yes:
        click.confirm(f"Erase the text of memory {atom!r} from all history?", abort=True)
    record = repo.purge(atom, author=author or default_author(), reason=reason)
    click.echo(f"purged {short(record.atom_id)}; recorded as {short(record.id)}")


@cli.command(name="verify-receipt")
@click.argument("file", type=click.File("rb"))
@json_option("Print the verification as JSON.")
@click.pass_context
def verify_receipt(ctx: click.Context, file: IO[bytes], as_json: bool) -> None:
    """Re-derive a prompt from its receipt and check it byte for byte.

    Exits 0 when the store reproduces the exact prompt, 9 otherwise.
    """
    receipt = Receipt.from_json(read_limited(file, JSON_LIMIT, input_name(file)))
    result = open_repo(ctx).verify_receipt(receipt)
    if as_json:
        emit_json(
            {
                "ok": result.ok,
                "commit": receipt.commit,
                "mismatches": [m.describe() for m in result.mismatches],
            }
        )
    elif result.ok:
        click.echo(f"OK: commit {short(receipt.commit)} reproduces the prompt exactly")
    if not result.ok:
        raise VerificationError(
            "receipt does not verify: " + "; ".join(m.describe() for m in result.mismatches)
        )


# -- branches and tags --------------------------------------------------------


@cli.command()
@click.argument("name", required=False)
@click.argument("start", metavar="[START]", required=False)
@click.option("-d", "--delete", "delete", metavar="NAME", help="Delete a merged branch.")
@click.option("-D", "force_delete", metavar="NAME", help="Delete a branch even if unmerged.")
@click.option("-f", "--force", is_flag=True, help="Move NAME to START if it exists.")
@json_option("List branches as JSON.")
@click.pass_context
def branch(
    ctx: click.Context,
    name: str | None,
    start: str | None,
    delete: str | None,
    force_delete: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """List, create or delete branches.

    With no arguments, list them; with NAME, create it at START (default HEAD).
    """
    repo = open_repo(ctx)
    target = delete or force_delete
    if target is not None:
        if name is not None:
            raise click.UsageError("give either NAME or -d/-D NAME, not both")
        oid = repo.delete_branch(target, force=force_delete is not None or force)
        click.echo(f"Deleted branch {target} (was {short(oid)})")
    elif name is not None:
        oid = repo.create_branch(name, start or "HEAD", force=force)
        click.echo(f"Branch {name} at {short(oid)}")
    elif as_json:
        emit_json(render.branches_json(repo.branches(), repo.current_branch))
    else:
        branches = repo.branches()
        show(render.refs_table(branches, _summaries(repo, branches), repo.current_branch, "branch"))


@cli.command()
@click.argument("name", required=False)
@click.argument("revision", metavar="[REV]", required=False)
@click.option("-d", "--delete", "delete", metavar="NAME", help="Delete a tag.")
@json_option("List tags as JSON.")
@click.pass_context
def tag(
    ctx: click.Context, name: str | None, revision: str | None, delete: str | None, as_json: bool
) -> None:
    """List, create or delete tags.

    With no arguments, list them; with NAME, tag REV (default HEAD).
    """
    repo = open_repo(ctx)
    if delete is not None:
        if name is not None:
            raise click.UsageError("give either NAME or -d NAME, not both")
        click.echo(f"Deleted tag {delete} (was {short(repo.delete_tag(delete))})")
    elif name is not None:
        click.echo(f"Tagged {short(repo.create_tag(name, revision or 'HEAD'))} as {name}")
    elif as_json:
        emit_json(render.tags_json(repo.tags()))
    else:
        tags = repo.tags()
        show(render.refs_table(tags, _summaries(repo, tags), None, "tag"))


def _summaries(repo: Repository, refs: dict[str, Any]) -> dict[str, str]:
    return {name: repo.load_commit(bytes.fromhex(oid)).summary for name, oid in refs.items()}


@cli.command()
@click.argument("name")
@click.option("-c", "--create", is_flag=True, help="Create the branch at HEAD first.")
@click.option("--detach", is_flag=True, help="Check out any revision, detached from branches.")
@click.pass_context
def switch(ctx: click.Context, name: str, create: bool, detach: bool) -> None:
    """Check out a branch.

    Staged changes come along when they apply cleanly to NAME.
    """
    if create and detach:
        raise click.UsageError("--create and --detach cannot be used together")
    oid = open_repo(ctx).switch(name, create=create, detach=detach)
    if detach:
        click.echo(f"HEAD is now at {short(oid or '')} (detached)")
    else:
        click.echo(f"Switched to {'a new ' if create else ''}branch {name!r}")


# -- combining and undoing ----------------------------------------------------


@cli.command()
@click.argument("revision", metavar="[REV]", required=False)
@click.option(
    "--strategy",
    type=click.Choice(["ours", "theirs"]),
    default=None,
    help="Settle every conflict for one side.",
)
@click.option("--no-ff", "no_ff", is_flag=True, help="Make a merge commit even if HEAD could move.")
@click.option("--message", "-m", default=None, help="The merge commit's message.")
@click.option("--abort", is_flag=True, help="Abandon a merge stopped on conflicts.")
@author_option
@json_option("Print the outcome as JSON.")
@click.pass_context
def merge(
    ctx: click.Context,
    revision: str | None,
    strategy: Literal["ours", "theirs"] | None,
    no_ff: bool,
    message: str | None,
    abort: bool,
    author: str | None,
    as_json: bool,
) -> None:
    """Merge REV into the current branch (three-way; conflicts stop it)."""
    repo = open_repo(ctx)
    if abort:
        if revision is not None:
            raise click.UsageError("--abort takes no REV")
        repo.abort_merge()
        click.echo("Merge aborted; the stage matches HEAD again.")
        return
    if revision is None:
        raise click.UsageError("missing argument 'REV'")
    result = repo.merge(
        revision,
        author=author or default_author(),
        message=message,
        strategy=strategy,
        fast_forward=not no_ff,
    )
    if as_json:
        emit_json(render.merge_json(result))
    elif result.status == "up-to-date":
        click.echo("Already up to date.")
    elif result.status == "fast-forward":
        click.echo(f"Fast-forward to {short(result.commit or '')}")
    elif result.status == "merged":
        click.echo(f"Merged {revision} in commit {short(result.commit or '')}")
    else:
        show(render.conflicts_table(result.conflicts))
    if result.status == "conflicts":
        raise MergeConflictError(
            f"merge stopped on {len(result.conflicts)} conflict(s): settle each with "
            "'contextfs resolve ID --ours|--theirs' then commit, or 'contextfs merge --abort'"
        )


@cli.command()
@click.argument("ref", metavar="ID")
@click.option("--ours", "side", flag_value="ours", help="Keep the current branch's version.")
@click.option("--theirs", "side", flag_value="theirs", help="Take the merged-in version.")
@click.pass_context
def resolve(ctx: click.Context, ref: str, side: Literal["ours", "theirs"] | None) -> None:
    """Settle the merge conflict on memory ID by taking one side."""
    if side is None:
        raise click.UsageError("give --ours or --theirs")
    repo = open_repo(ctx)
    oid = repo.resolve_conflict(ref, side)
    left = len(repo.conflicts())
    after = "commit to finish the merge" if not left else f"{left} conflict(s) left"
    click.echo(f"Resolved {short(oid)} with {side}; {after}")


@cli.command()
@click.argument("revision", metavar="[REV]", default="HEAD")
@click.option(
    "--soft", "mode", flag_value="soft", help="Keep the stage (undone commits show staged)."
)
@click.option("--hard", "mode", flag_value="hard", help="Discard staged changes and any merge.")
@click.pass_context
def reset(ctx: click.Context, revision: str, mode: Literal["soft", "hard", "safe"] | None) -> None:
    """Move the current branch to another commit.

    Without --soft or --hard, refuse if anything is staged.
    """
    oid = open_repo(ctx).reset(revision, mode=mode or "safe")
    click.echo(f"HEAD is now at {short(oid)}")


@cli.command()
@click.argument("revision", metavar="[REV]", required=False)
@click.option("--actor", default=None, help="Undo every change this actor made instead.")
@click.option("--session", default=None, help="Undo every change this op-log session made.")
@click.option(
    "--since", default=None, metavar="REV", help="With --actor/--session: keep REV's history."
)
@click.option(
    "--strict", is_flag=True, help="With --actor/--session: write nothing on any conflict."
)
@click.option("--dry-run", is_flag=True, help="With --actor/--session: report, write nothing.")
@author_option
@json_option("Print the result as JSON.")
@click.pass_context
def revert(
    ctx: click.Context,
    revision: str | None,
    actor: str | None,
    session: str | None,
    since: str | None,
    strict: bool,
    dry_run: bool,
    author: str | None,
    as_json: bool,
) -> None:
    """Commit the inverse of REV's changes, or of one actor's or session's.

    With --actor or --session, memories someone else changed too are left as
    they are and reported (exit 6); the rest are restored in one commit.
    """
    chosen = [
        name
        for name, value in (("REV", revision), ("--actor", actor), ("--session", session))
        if value
    ]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of REV, --actor or --session")
    repo = open_repo(ctx)
    who = author or default_author()
    if revision is not None:
        if since or strict or dry_run:
            raise click.UsageError("--since, --strict and --dry-run go with --actor or --session")
        oid = repo.revert(revision, author=who)
        if as_json:
            emit_json({"commit": oid})
        else:
            click.echo(f"Reverted {revision} in commit {short(oid)}")
        return
    if actor is not None:
        result = repo.revert_actor(actor, since, author=who, strict=strict, dry_run=dry_run)
    else:
        assert session is not None
        result = repo.revert_session(session, since, author=who, strict=strict, dry_run=dry_run)
    if as_json:
        emit_json(
            {
                "commit": result.commit,
                "reverted": list(result.reverted),
                "conflicts": [render.conflict_json(c) for c in result.conflicts],
            }
        )
    else:
        verb = "would restore" if dry_run else "restored"
        where = f" in commit {short(result.commit)}" if result.commit else ""
        click.echo(f"{verb} {len(result.reverted)} memories{where}")
        if result.conflicts:
            show(render.conflicts_table(result.conflicts))
    if result.conflicts:
        raise MergeConflictError(
            f"{len(result.conflicts)} memories were changed by others too and were left as they are"
        )


# -- learning -----------------------------------------------------------------


@cli.command()
@click.argument("path", required=False, type=click.Path(file_okay=False, path_type=Path))
def tour(path: Path | None) -> None:
    """Build and show an example store with a merge.

    The store goes in PATH (default: a new temporary folder).
    """
    from .tour import run_tour  # imported late: only the tour needs its sample data

    run_tour(path, console())


def _one_line(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


cli.add_command(import_command)
cli.add_command(export_command)
cli.add_command(oplog)
cli.add_command(index)
cli.add_command(config)
cli.add_command(session)
cli.add_command(expand, name="context")
cli.add_command(serve)
cli.add_command(mcp)
cli.add_command(connect)
cli.add_command(disconnect)
cli.add_command(remote)
cli.add_command(workspace)
cli.add_command(token)
cli.add_command(ui)
cli.add_command(clone)
cli.add_command(fetch)
cli.add_command(pull)
cli.add_command(push)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI (the ``contextfs`` entry point)."""
    try:
        cli.main(args=argv, prog_name="contextfs")
    except KeyboardInterrupt:  # outside a command (while parsing argv)
        click.echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)


__all__ = ["cli", "main"]

if __name__ == "__main__":
    main()
