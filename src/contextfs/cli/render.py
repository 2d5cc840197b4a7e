"""Output for the CLI: JSON shapes for scripts, Rich renderables for people.

The JSON shapes are a public contract (documented in ``docs/CLI.md``): full
ids, UTC ISO-8601 timestamps ending in ``Z`` with six fractional digits, and
lists rather than tables. Adding a key is compatible; renaming one is not.
Everything here is pure: values in, JSON-ready values or Rich objects out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime

from rich.console import Console, Group, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..history.commits import Commit
from ..model.ids import short
from ..model.objects import MemoryAtom, MemoryMolecule
from ..model.timeutil import format_local, from_micros, to_micros
from ..records import Change, CommitInfo, ConflictInfo, Memory, MergeResult, SearchHit, Status
from ..store.base import ReflogEntry
from ..wire.messages import LogEntry
from .graph import graph_rows

#: Imports with more lines than this show a progress bar even when stderr is not a terminal.
PROGRESS_LINES = 10_000

JSONValue = object
JSONObject = dict[str, object]

# An entry field's name in a Change, and the MemoryAtom attribute that holds it.
_ENTRY_ATTRS = {
    "relevance": "relevance_score",
    "timestamp": "timestamp",
    "source": "source_hash",
    "tags": "tags",
    "abstract": "abstract",
    "overview": "overview",
}
_STATUS_MARK = {"added": ("+", "green"), "removed": ("-", "red"), "changed": ("~", "yellow")}


def dumps(value: JSONValue) -> str:
    """Serialise a JSON shape the one way every ``--json`` output uses."""
    return json.dumps(value, ensure_ascii=False, indent=2)


def iso_utc(moment: int | datetime) -> str:
    """Spell an instant (epoch microseconds or an aware datetime) as ``...T..:..:...ffffffZ``."""
    micros = moment if isinstance(moment, int) else to_micros(moment)
    # isoformat, unlike strftime, always spells the year with four digits.
    return from_micros(micros).isoformat(timespec="microseconds").replace("+00:00", "Z")


# -- JSON shapes -------------------------------------------------------------


def byte_size(count: int) -> str:
    """A byte count as people read it: ``812 B``, ``4.2 KiB``, ``1.5 MiB``."""
    if count < 1024:
        return f"{count} B"
    size = count / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def reflog_json(ref: str, number: int, entry: ReflogEntry) -> JSONObject:
    """One reflog entry, with the selector git would show for it (``HEAD@{0}``)."""
    return {
        "selector": f"{ref}@{{{number}}}",
        "ref": entry.ref,
        "old": entry.old,
        "new": entry.new,
        "who": entry.who,
        "at": iso_utc(entry.at),
        "why": entry.why,
    }


def reflog_line(ref: str, number: int, entry: ReflogEntry) -> str:
    """One reflog entry as git prints it, with who and when after."""
    commit = entry.new[:12] if entry.new else "(deleted)   "
    return f"{commit} {ref}@{{{number}}}: {entry.why}  ({entry.who}, {format_local(entry.at)})"


def atom_json(atom: MemoryAtom) -> JSONObject:
    """An atom and its entry fields."""
    return {
        "id": atom.content_hash,
        "kind": "atom",
        "type": str(atom.type_sig),
        "content": atom.content,
        "relevance": atom.relevance_score,
        "timestamp": iso_utc(atom.timestamp),
        "source": atom.source_hash,
        "tags": list(atom.tags),
        "abstract": atom.abstract,
        "overview": atom.overview,
    }


def molecule_json(molecule: MemoryMolecule) -> JSONObject:
    """A molecule: its atoms' ids in order, relations between positions, type, metadata."""
    return {
        "id": molecule.molecule_hash,
        "kind": "molecule",
        "type": str(molecule.molecule_type),
        "atoms": [atom.content_hash for atom in molecule.atoms],
        "relations": {
            name: [list(edge) for edge in edges] for name, edges in molecule.relations.items()
        },
        "metadata": molecule.metadata,
    }


def memory_json(memory: Memory | None) -> JSONObject | None:
    """An atom or a molecule (None stays None)."""
    if memory is None:
        return None
    if isinstance(memory, MemoryAtom):
        return atom_json(memory)
    return molecule_json(memory)


def commit_json(info: CommitInfo) -> JSONObject:
    """A commit with its full id, parents and UTC time."""
    commit = info.commit
    return {
        "id": info.id,
        "parents": list(info.parents),
        "author": commit.author,
        "timestamp": iso_utc(commit.timestamp),
        "summary": commit.summary,
        "message": commit.message,
        "snapshot": commit.tree.hex(),
        "generation": commit.generation,
        "metadata": commit.metadata,
    }


def remote_commit_json(entry: LogEntry) -> JSONObject:
    """A commit from a server's LOG_RESPONSE, in the shape of :func:`commit_json`."""
    return {
        "id": entry.id,
        "parents": list(entry.parents),
        "author": entry.author,
        "message": entry.message,
        "timestamp": iso_utc(entry.timestamp),
    }


def change_json(change: Change) -> JSONObject:
    """One differing entry: status, id, the entry fields that changed, both sides."""
    return {
        "status": change.status,
        "id": change.id,
        "fields": list(change.fields),
        "old": memory_json(change.old),
        "new": memory_json(change.new),
    }


def conflict_json(conflict: ConflictInfo) -> JSONObject:
    """An unresolved merge conflict: the memory at the base and on each side."""
    return {
        "id": conflict.id,
        "base": memory_json(conflict.base),
        "ours": memory_json(conflict.ours),
        "theirs": memory_json(conflict.theirs),
    }


def status_json(status: Status) -> JSONObject:
    """Where HEAD is, what is staged, and any merge in progress."""
    return {
        "branch": status.branch,
        "head": status.head,
        "clean": status.clean,
        "merging": status.merging,
        "changes": [change_json(c) for c in status.changes],
        "conflicts": [conflict_json(c) for c in status.conflicts],
    }


def merge_json(result: MergeResult) -> JSONObject:
    """How a merge ended."""
    return {
        "status": result.status,
        "commit": result.commit,
        "conflicts": [conflict_json(c) for c in result.conflicts],
    }


def branches_json(branches: Mapping[str, str], current: str | None) -> list[JSONObject]:
    """Branches sorted by name, each marked ``current`` or not."""
    return [
        {"name": name, "commit": branches[name], "current": name == current}
        for name in sorted(branches)
    ]


def tags_json(tags: Mapping[str, str]) -> list[JSONObject]:
    """Tags sorted by name."""
    return [{"name": name, "commit": tags[name]} for name in sorted(tags)]


# -- people: memories and changes --------------------------------------------


def describe(memory: Memory) -> tuple[str, str]:
    """Return a memory's type and a one-line text for tables."""
    if isinstance(memory, MemoryAtom):
        return str(memory.type_sig), memory.content
    return str(memory.molecule_type), f"molecule of {len(memory.atoms)} atoms"


def _field_value(atom: MemoryAtom, name: str) -> str:
    value = getattr(atom, _ENTRY_ATTRS[name])
    if isinstance(value, datetime):
        return format_local(to_micros(value))
    if isinstance(value, tuple):
        return ", ".join(value) or "(none)"
    if value is None or value == "":
        return "(none)"
    return str(value)


def change_detail(change: Change) -> str:
    """Describe a changed entry's fields as ``relevance 0.9 → 0.5``."""
    old, new = change.old, change.new
    if not (isinstance(old, MemoryAtom) and isinstance(new, MemoryAtom)):
        return ""
    return "; ".join(
        f"{name} {_field_value(old, name)} → {_field_value(new, name)}" for name in change.fields
    )


def changes_table(changes: Sequence[Change], title: str | None = None) -> Table:
    """A table of changes: mark, short id, type, memory, changed fields."""
    table = Table(title=title, show_header=True, header_style="bold", title_justify="left")
    table.add_column("", no_wrap=True)
    table.add_column("id", style="yellow", no_wrap=True)
    table.add_column("type", style="cyan")
    table.add_column("memory")
    table.add_column("change")
    for change in changes:
        mark, colour = _STATUS_MARK[change.status]
        memory = change.new if change.new is not None else change.old
        assert memory is not None
        type_name, text = describe(memory)
        detail = change.status if change.status != "changed" else change_detail(change)
        table.add_row(
            Text(mark, style=colour), short(change.id), Text(type_name), Text(text), Text(detail)
        )
    return table


def conflicts_table(conflicts: Sequence[ConflictInfo]) -> Table:
    """A table of unresolved conflicts: what each side holds where they differ."""
    table = Table(title="Unresolved conflicts", header_style="bold", title_justify="left")
    table.add_column("id", style="yellow", no_wrap=True)
    table.add_column("memory")
    table.add_column("ours")
    table.add_column("theirs")
    for conflict in conflicts:
        sides = [m for m in (conflict.ours, conflict.theirs, conflict.base) if m is not None]
        text = describe(sides[0])[1] if sides else ""
        fields = _differing(conflict.ours, conflict.theirs)
        table.add_row(
            short(conflict.id),
            Text(text),
            Text(_side(conflict.ours, fields)),
            Text(_side(conflict.theirs, fields)),
        )
    return table


_CONFLICT_FIELDS = ("relevance", "tags", "source", "abstract", "overview", "timestamp")


def _differing(ours: Memory | None, theirs: Memory | None) -> tuple[str, ...]:
    if not (isinstance(ours, MemoryAtom) and isinstance(theirs, MemoryAtom)):
        return ("relevance",)
    differing = tuple(
        name for name in _CONFLICT_FIELDS if _field_value(ours, name) != _field_value(theirs, name)
    )
    return differing or ("relevance",)


def _side(memory: Memory | None, fields: Sequence[str]) -> str:
    if memory is None:
        return "removed"
    if isinstance(memory, MemoryAtom):
        return ", ".join(f"{name} {_field_value(memory, name)}" for name in fields)
    return "molecule"


def hits_table(hits: Sequence[SearchHit]) -> Table:
    """A table of search hits: short id, type, memory, score."""
    table = Table(show_header=True, header_style="bold")
    table.add_column("id", style="yellow", no_wrap=True)
    table.add_column("type", style="cyan")
    table.add_column("memory")
    table.add_column("score", justify="right")
    for hit in hits:
        type_name, text = describe(hit.atom)
        table.add_row(short(hit.atom.content_hash), Text(type_name), Text(text), f"{hit.score:.3f}")
    return table


def status_renderable(status: Status) -> RenderableType:
    """``status`` for people: branch line, merge state, staged changes."""
    parts: list[RenderableType] = []
    if status.branch is not None:
        parts.append(Text.assemble("On branch ", (status.branch, "bold green")))
    else:
        parts.append(Text(f"HEAD detached at {short(status.head or '')}", style="bold red"))
    if status.head is None:
        parts.append(Text("No commits yet"))
    if status.merging is not None:
        note = (
            f"Merging {short(status.merging)}: {len(status.conflicts)} conflict(s) to resolve "
            "(contextfs resolve ID --ours|--theirs), then contextfs commit"
            if status.conflicts
            else f"Merging {short(status.merging)}: all conflicts resolved; run contextfs commit"
        )
        parts.append(Text(note, style="yellow"))
    if status.conflicts:
        parts.append(conflicts_table(status.conflicts))
    if status.changes:
        parts.append(changes_table(status.changes, title="Changes to be committed"))
    elif status.merging is None:
        parts.append(Text("Nothing staged; the stage matches HEAD."))
    return Group(*parts)


def refs_table(
    refs: Mapping[str, str], messages: Mapping[str, str], current: str | None, what: str
) -> Table:
    """Branches or tags: name, short commit id, the commit's summary."""
    table = Table(header_style="bold", show_edge=False, box=None, pad_edge=False)
    table.add_column("", no_wrap=True)
    table.add_column(what, no_wrap=True)
    table.add_column("commit", style="yellow", no_wrap=True)
    table.add_column("summary")
    for name in sorted(refs):
        mark = Text("*", style="bold green") if name == current else Text("")
        style = "bold green" if name == current else ""
        table.add_row(
            mark, Text(name, style=style), short(refs[name]), Text(messages.get(name, ""))
        )
    return table


# -- people: commits -------------------------------------------------------


def decorations(
    head: str | None,
    current_branch: str | None,
    branches: Mapping[str, str],
    tags: Mapping[str, str],
) -> dict[str, list[str]]:
    """Map commit ids to git-style ref labels: ``HEAD -> main``, ``tag: v1``, ``research``."""
    labels: dict[str, list[str]] = {}
    if head is not None and current_branch is None:
        labels.setdefault(head, []).append("HEAD")
    for name in sorted(branches, key=lambda n: (n != current_branch, n)):
        label = f"HEAD -> {name}" if name == current_branch else name
        labels.setdefault(branches[name], []).append(label)
    for name in sorted(tags):
        labels.setdefault(tags[name], []).append(f"tag: {name}")
    return labels


def _decoration(labels: Iterable[str]) -> Text:
    labels = list(labels)
    if not labels:
        return Text("")
    text = Text(" (", style="yellow")
    for n, label in enumerate(labels):
        if n:
            text.append(", ", style="yellow")
        if label.startswith("HEAD"):
            style = "bold cyan"
        elif label.startswith("tag: "):
            style = "bold yellow"
        else:
            style = "bold green"
        text.append(label, style=style)
    text.append(")", style="yellow")
    return text


def oneline(info: CommitInfo, labels: Iterable[str] = ()) -> Text:
    """``<short id> (refs) summary``."""
    text = Text(info.short_id, style="yellow")
    text.append_text(_decoration(labels))
    text.append(" " + info.commit.summary)
    return text


def commit_header(info: CommitInfo, labels: Iterable[str] = ()) -> Text:
    """The full header, as ``git log``: id and refs, merge parents, author, date."""
    commit: Commit = info.commit
    text = Text("commit ", style="yellow")
    text.append(info.id, style="yellow")
    text.append_text(_decoration(labels))
    if len(info.parents) > 1:
        text.append("\nMerge:  " + " ".join(short(p) for p in info.parents))
    text.append(f"\nAuthor: {commit.author}")
    text.append(f"\nDate:   {format_local(commit.timestamp)}")
    return text


def commit_long(info: CommitInfo, labels: Iterable[str] = ()) -> Text:
    """The header, a blank line and the message indented by four spaces."""
    text = commit_header(info, labels)
    text.append("\n")
    for line in info.commit.message.split("\n"):
        text.append("\n    " + line if line else "\n")
    return text


def graph_lines(infos: Sequence[CommitInfo], labels: Mapping[str, list[str]]) -> list[Text]:
    """``log --graph``: the lanes of :func:`.graph.graph_rows` beside one-line commits."""
    by_id: dict[str, CommitInfo] = {info.id: info for info in infos}
    lines: list[Text] = []
    for prefix, oid in graph_rows([(info.id, info.parents) for info in infos]):
        line = Text(prefix, style="red" if oid is None else "")
        if oid is not None:
            line.append(" ")
            line.append_text(oneline(by_id[oid], labels.get(oid, ())))
        lines.append(line)
    return lines


# -- people: progress -------------------------------------------------------


Tick = Callable[[int], None]
StageTick = Callable[[int, int], None]


def _progress(err: Console, *, transient: bool) -> Progress:
    """Bars with a label, the bar, done of total, and the time taken."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=err, transient=transient)


@contextmanager
def import_progress(err: Console, total_lines: int) -> Iterator[tuple[Tick, StageTick]]:
    """Progress bars on ``err`` for checking and staging an import, when worth showing.

    Shown when ``err`` is a terminal or the file has over :data:`PROGRESS_LINES`
    lines. Yields ``check(lines_done)`` and ``stage(atoms_done, atoms_total)``.
    On an error the bar vanishes, so the error stays the only line.
    """
    if not (err.is_terminal or total_lines > PROGRESS_LINES):
        yield (lambda n: None), (lambda n, total: None)
        return
    bar = _progress(err, transient=err.is_terminal)
    checking = bar.add_task("checking", total=total_lines)
    staging = bar.add_task("staging", total=None, start=False)

    def check(done: int) -> None:
        bar.update(checking, completed=done)

    def stage(done: int, total: int) -> None:
        bar.update(checking, completed=total_lines)
        bar.start_task(staging)
        bar.update(staging, completed=done, total=total)

    bar.start()
    try:
        yield check, stage
    except BaseException:
        # An error is one line on stderr: stop without leaving a final bar behind.
        bar.live.transient = True
        bar.live.stop()
        raise
    bar.stop()


@contextmanager
def count_progress(err: Console, description: str) -> Iterator[StageTick]:
    """One progress bar on ``err`` while a count grows to its total, on a terminal only.

    Yields ``tick(done, total)``. On an error the bar vanishes, so the error
    stays the only line.
    """
    if not err.is_terminal:
        yield lambda done, total: None
        return
    bar = _progress(err, transient=True)
    task = bar.add_task(description, total=None)

    def tick(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    bar.start()
    try:
        yield tick
    finally:
        bar.stop()
