"""``contextfs import`` and ``contextfs export``: memories in and out, in our format and others'.

``--from jsonl`` (the default) stages atoms of our own JSON Lines format.
The other formats are sources the repository mirrors: rules files
(``markdown``: CLAUDE.md, AGENTS.md, GEMINI.md, .cursorrules, Cursor .mdc),
mem0 exports (``mem0``) and LangGraph SQLite stores (``langgraph``). Each
such import is one commit naming its source, and none when nothing changed.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click

from ..errors import ConcurrentUpdateError, InvalidInputError
from ..files import DATA_LIMIT, read_limited, write_atomically
from ..interchange import (
    ImportedMemory,
    ImportFileError,
    ImportResult,
    export_markdown,
    file_source,
    import_atoms,
    parse_markdown,
    parse_mem0,
    read_langgraph_store,
    to_atoms,
)
from ..interchange.export import EXPORT_MARK
from ..interchange.records import decode_text
from ..model.ids import short
from ..model.objects import MemoryAtom
from ..model.timeutil import now_micros, to_micros
from ..repo import Repository
from . import render
from .common import author_option, default_author, emit_json, err_console, input_name, json_option
from .common import open_repo as open_repository
from .jsonl import encode_atom, read_atoms

if TYPE_CHECKING:
    from langgraph.store.base import BaseStore

#: What ``--from`` takes, and the reader of each (the aliases name the files users have).
FORMATS = (
    "jsonl", "markdown", "claude-md", "agents-md", "gemini-md", "cursor", "mem0", "langgraph",
)  # fmt: skip
_MARKDOWN_ALIASES = frozenset({"markdown", "claude-md", "agents-md", "gemini-md", "cursor"})
#: How long reading a LangGraph store waits for an agent's write to finish.
LOCK_WAIT_SECONDS = 2.0
LANGGRAPH_SQLITE_MISSING = (
    "reading a LangGraph SQLite store needs langgraph-checkpoint-sqlite:"
    " pip install 'contextfs-vcs[langgraph]'"
)


@dataclass(frozen=True, slots=True)
class _Source:
    """One source, read and checked, ready to import."""

    name: str  # what the atoms' source says
    label: str  # what messages call it
    atoms: list[MemoryAtom]
    mirror: bool = True  # False: a file contextfs wrote, a view that brings in only what is new


@click.command(name="import")
@click.argument("sources", metavar="SOURCE...", nargs=-1, required=True)
@click.option(
    "--from",
    "source_format",
    type=click.Choice(FORMATS),
    default="jsonl",
    show_default=True,
    help="What SOURCE is: jsonl (ours, staged), markdown (CLAUDE.md, AGENTS.md, GEMINI.md,"
    " .cursorrules, .mdc; claude-md, agents-md, gemini-md and cursor say the same), mem0 (an"
    " export's JSON) or langgraph (a LangGraph SqliteStore database).",
)
@click.option("--commit", "and_commit", is_flag=True, help="jsonl: commit right after staging.")
@click.option("--message", "-m", default=None, help="The commit message.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Other formats: say what the import would change, change nothing.",
)
@author_option
@json_option("Print what was imported (ids, commits) as JSON.")
@click.pass_context
def import_command(
    ctx: click.Context,
    sources: tuple[str, ...],
    source_format: str,
    and_commit: bool,
    message: str | None,
    dry_run: bool,
    author: str | None,
    as_json: bool,
) -> None:
    """Bring memories in from SOURCE.

    From jsonl, SOURCE is one file ('-': stdin) whose atoms are staged; every
    line is checked first, and one bad line stages nothing. From any other
    format, each SOURCE is one commit that makes the repository hold exactly
    what the source holds now, under its name: new memories are added, and
    memories gone from it are removed. Importing an unchanged source commits
    nothing. Every source is read and checked before the first commit.
    """
    if source_format == "jsonl":
        if dry_run:
            raise click.UsageError("--dry-run is for imports from other formats than jsonl")
        if len(sources) != 1:
            raise click.UsageError("--from jsonl takes one file")
        _import_jsonl(ctx, sources[0], and_commit, message, author, as_json)
        return
    if and_commit:
        raise click.UsageError("--commit is for jsonl: other formats always commit")
    if "-" in sources:
        raise click.UsageError(f"--from {source_format} reads files, not stdin ('-')")
    repo = open_repository(ctx)
    root = repo.path.parent if repo.path is not None else None
    read = _langgraph_source if source_format == "langgraph" else _file_source(source_format)
    existing = click.Path(exists=True, dir_okay=False, path_type=Path)
    paths = [existing.convert(source, None, ctx) for source in sources]
    for path in paths:
        if not path.is_file():
            raise click.UsageError(f"{path} is not a regular file: a source must be one")
    checked = [read(path, root) for path in paths]
    results = [
        import_atoms(
            repo,
            item.name,
            item.atoms,
            author=author or default_author(),
            message=message,
            dry_run=dry_run,
            mirror=item.mirror,
        )
        for item in checked
    ]
    if as_json:
        emit_json([_result_json(result) for result in results])
        return
    for item, result in zip(checked, results, strict=True):
        click.echo(_summary(repo, item, result, dry_run=dry_run))


def _file_source(source_format: str) -> Callable[[Path, Path | None], _Source]:
    parse = parse_mem0 if source_format == "mem0" else parse_markdown

    def read(path: Path, root: Path | None) -> _Source:
        label = str(path)
        with path.open("rb") as file:
            data = read_limited(file, DATA_LIMIT, label)
            modified = to_micros(datetime.fromtimestamp(path.stat().st_mtime, UTC))
        text = decode_text(data, label)
        memories = parse(text, label)
        written_by_us = False
        if source_format in _MARKDOWN_ALIASES:
            memories = _in_file_order(memories, modified)
            written_by_us = text.startswith("<!--") and EXPORT_MARK in text.split("\n", 1)[0]
        name = file_source(path, root)
        atoms = to_atoms(memories, name, label=label, default_time=modified)
        return _Source(name, label, atoms, mirror=not written_by_us)

    return read


def _in_file_order(memories: list[ImportedMemory], modified: int) -> list[ImportedMemory]:
    """Stamp each memory with the file's time less its position in microseconds.

    Ranking breaks ties by time, newest first, so memories of equal relevance
    keep the order the file gives them.
    """
    return [dataclasses.replace(m, timestamp=modified - n) for n, m in enumerate(memories)]


def _langgraph_source(path: Path, root: Path | None) -> _Source:
    label = str(path)
    name = "langgraph:" + file_source(path, root)
    with _sqlite_store(path, label) as store:
        try:
            memories = read_langgraph_store(store)
        except sqlite3.DatabaseError as exc:
            raise ImportFileError(label, None, f"not a LangGraph SQLite store ({exc})") from None
    now = now_micros()
    return _Source(name, label, to_atoms(memories, name, label=label, default_time=now))


@contextmanager
def _sqlite_store(path: Path, label: str) -> Iterator[BaseStore]:
    """LangGraph's own SqliteStore over a copy of the file, in memory.

    The file is only read (one consistent snapshot, even while an agent
    writes to it); the copy is what LangGraph opens, so a store written by an
    older version is brought up to date by LangGraph's own migrations without
    touching the original.
    """
    try:
        from langgraph.store.sqlite import SqliteStore
    except ImportError:
        raise InvalidInputError(LANGGRAPH_SQLITE_MISSING) from None
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        original = sqlite3.connect(uri, uri=True, timeout=LOCK_WAIT_SECONDS)
        try:
            tables = {row[0] for row in original.execute("SELECT name FROM sqlite_master")}
            data = original.serialize()
        finally:
            original.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise ConcurrentUpdateError(
                f"{label}: the store is locked by another process; try again"
            ) from None
        raise ImportFileError(label, None, f"cannot be read as SQLite ({exc})") from None
    except sqlite3.DatabaseError as exc:
        raise ImportFileError(label, None, f"not a SQLite database ({exc})") from None
    if "store" not in tables:
        raise ImportFileError(label, None, "not a LangGraph SQLite store (it has no 'store' table)")
    copy = sqlite3.connect(":memory:", check_same_thread=False)
    try:
        copy.deserialize(data)
        yield SqliteStore(copy)
    finally:
        copy.close()


def _summary(repo: Repository, item: _Source, result: ImportResult, *, dry_run: bool) -> str:
    counts = f"{result.summary}, {result.unchanged} unchanged"
    if result.elsewhere:
        counts += f", {result.elsewhere} already held otherwise"
    if not item.mirror:
        counts += " (a file contextfs export wrote: only new memories come in)"
    if result.purged:
        counts += f", {result.purged} purged (not brought back)"
    if dry_run:
        return f"{item.label}: would import: {counts}"
    if result.commit is None:
        return f"{item.label}: up to date ({counts}); nothing to commit"
    where = repo.current_branch or "detached HEAD"
    return f"{item.label}: {counts} [{where} {short(result.commit)}]"


def _result_json(result: ImportResult) -> dict[str, object]:
    return {
        "source": result.source,
        "added": list(result.added),
        "updated": list(result.updated),
        "removed": list(result.removed),
        "unchanged": result.unchanged,
        "elsewhere": result.elsewhere,
        "purged": result.purged,
        "commit": result.commit,
    }


def _import_jsonl(
    ctx: click.Context,
    source: str,
    and_commit: bool,
    message: str | None,
    author: str | None,
    as_json: bool,
) -> None:
    if message is not None and not and_commit:
        raise click.UsageError("--message needs --commit")
    repo = open_repository(ctx)
    with click.File("rb").convert(source, None, ctx) as file:
        name = input_name(file)
        lines = read_limited(file, DATA_LIMIT, name).split(b"\n")
    if lines and not lines[-1].strip():
        lines.pop()
    now = datetime.now(UTC)
    commit_text = message or f"Import memories from {Path(name).name}"
    commit_author = author or default_author()
    oid = None
    with render.import_progress(err_console(), len(lines)) as (check, stage):
        atoms = read_atoms(lines, now=now, progress=check, filename=name)
        stage(0, len(atoms))
        with repo.transaction():  # staged and committed together, or not at all
            ids = repo.add_atoms(atoms, progress=lambda n: stage(n, len(atoms)))
            if and_commit:
                oid = repo.commit(commit_text, author=commit_author)
        stage(len(atoms), len(atoms))
    if as_json:
        emit_json({"ids": ids, "commit": oid})
        return
    click.echo(f"Staged {len(ids)} memories from {name}")
    if oid is not None:
        click.echo(f"[{repo.current_branch or 'detached HEAD'} {short(oid)}] committed")


@click.command(name="export")
@click.argument("revision", metavar="[REV]", default="HEAD")
@click.option(
    "--to",
    "target_format",
    type=click.Choice(["jsonl", "markdown"]),
    default="jsonl",
    show_default=True,
    help="jsonl: every atom, in the format import reads; markdown: a CLAUDE.md-style file,"
    " best memories first under headings named by their first tag.",
)
@click.option(
    "--budget",
    type=click.IntRange(min=1),
    default=None,
    metavar="TOKENS",
    help="markdown: write the best memories that fit this many cl100k tokens (default: all).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    default="-",
    help="Write to FILE instead of stdout (replaced only once the export is whole).",
)
@click.pass_context
def export_command(
    ctx: click.Context,
    revision: str,
    target_format: Literal["jsonl", "markdown"],
    budget: int | None,
    output: Path,
) -> None:
    """Write REV's memories out: as JSON Lines, or as a Markdown rules file."""
    repo = open_repository(ctx)
    if target_format == "markdown":
        exported = export_markdown(repo, revision, budget=budget)
        _write(output, exported.text)
        noun = "memory" if exported.written == 1 else "memories"
        click.echo(f"note: wrote {exported.written} {noun} in {exported.tokens} tokens", err=True)
        if exported.escaped:
            click.echo(
                f"note: {exported.escaped} memories have a line escaped with a backslash"
                " (it would read as a code fence or a break)",
                err=True,
            )
        if exported.unwritable:
            click.echo(
                f"note: {exported.unwritable} memories left out: no Markdown bullet reads back"
                " as their text",
                err=True,
            )
        return
    if budget is not None:
        raise click.UsageError("--budget is for --to markdown")
    memories = repo.snapshot(revision)
    atoms = [m for m in memories if isinstance(m, MemoryAtom)]
    _write(output, "".join(encode_atom(atom) + "\n" for atom in atoms))
    skipped = len(memories) - len(atoms)
    if skipped:
        click.echo(f"note: {skipped} molecule(s) not exported (their atoms are)", err=True)


def _write(output: Path, text: str) -> None:
    if str(output) == "-":
        click.echo(text, nl=False)
    else:
        write_atomically(output, text.encode())
