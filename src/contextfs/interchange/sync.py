"""Bring a source's memories into a repository: one commit per import, none when unchanged.

A memory's entry names the sources that hold it, one per line of its
``source`` (a source's name, or its name plus ``#anchor`` when the format has
ids of its own). Importing a source again makes the repository hold what the
source holds now: new memories are added; a memory another source already
holds gains this source as well (and the tags it gives); a memory gone from
the source loses it, and is removed once no source holds it. Entries keep
what the formats do not carry (relevance, abstract, overview, time), and a
memory added by hand, a memory whose text is already held under another type
or spacing, and a purged memory are left as they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidInputError, UncommittedChangesError
from ..model.ids import ObjectId, to_hex
from ..model.objects import MemoryAtom
from ..model.timeutil import from_micros, now_micros
from ..model.types import TypeSignature
from ..repo import Repository
from .records import ImportedMemory, ImportFileError

#: Between the sources one entry names.
SOURCE_SEPARATOR = "\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportResult:
    """What an import changed (or, in a dry run, would change)."""

    source: str
    added: tuple[ObjectId, ...]  # memories new to the repository
    updated: tuple[ObjectId, ...]  # entries that gained or lost this source, or changed tags
    removed: tuple[ObjectId, ...]  # gone from the source, and held by no other
    unchanged: int
    elsewhere: int  # added by hand or held under another type or spacing: left alone
    purged: int  # purged in this repository, not brought back
    commit: ObjectId | None  # None: nothing changed, or a dry run

    @property
    def summary(self) -> str:
        return f"{len(self.added)} added, {len(self.updated)} updated, {len(self.removed)} removed"


def file_source(path: Path, root: Path | None) -> str:
    """The source name of a file: relative to the repository's folder when inside it.

    So ``CLAUDE.md``, ``./CLAUDE.md`` and its absolute path are one source,
    and a clone of the project names it the same way. ``%``, ``#`` and line
    breaks are escaped, so a name never reads as another source's anchor.
    """
    resolved = path.resolve()
    if root is not None and resolved.is_relative_to(root.resolve()):
        name = resolved.relative_to(root.resolve()).as_posix()
    else:
        name = resolved.as_posix()
    for char, escaped in (("%", "%25"), ("#", "%23"), ("\n", "%0A"), ("\r", "%0D")):
        name = name.replace(char, escaped)
    return name


def owns(source: str, line: str) -> bool:
    """True when a line of an entry's ``source`` names ``source`` or one of its anchors."""
    return line == source or line.startswith(source + "#")


def sources_of(atom: MemoryAtom) -> list[str]:
    """The sources an entry names, in order."""
    return [line for line in atom.source_hash.split(SOURCE_SEPARATOR) if line]


def to_atoms(
    memories: Iterable[ImportedMemory], source: str, *, label: str, default_time: int
) -> list[MemoryAtom]:
    """The atoms of ``memories``; a memory read twice is one atom with the tags of both.

    Raises:
        ImportFileError: a memory cannot be an atom (names ``label`` and where it was read).
    """
    atoms: dict[bytes, MemoryAtom] = {}
    for memory in memories:
        try:
            atom = MemoryAtom(
                memory.content,
                TypeSignature.parse(memory.type),
                from_micros(memory.timestamp if memory.timestamp is not None else default_time),
                f"{source}#{memory.anchor}" if memory.anchor else source,
                memory.relevance,
                tags=memory.tags,
            )
        except InvalidInputError as exc:
            where = "" if memory.line is not None else f"item {memory.anchor}: "
            raise ImportFileError(label, memory.line, where + " ".join(str(exc).split())) from None
        first = atoms.setdefault(atom.digest, atom)
        if first is not atom and not set(atom.tags) <= set(first.tags):
            atoms[atom.digest] = dataclasses.replace(first, tags=first.tags + atom.tags)
    return list(atoms.values())


def import_atoms(
    repo: Repository,
    source: str,
    atoms: list[MemoryAtom],
    *,
    author: str,
    message: str | None = None,
    dry_run: bool = False,
    mirror: bool = True,
) -> ImportResult:
    """Make ``repo`` hold ``atoms`` as ``source``'s, in one commit (or none).

    Each atom's ``source`` must be ``source`` or ``source#anchor``. With
    ``mirror`` off, only memories the repository does not hold yet come in,
    and nothing is claimed or removed: for files that are a view of the
    repository (what ``export --to markdown`` wrote). With ``dry_run``, say
    what would change and change nothing.

    Raises:
        UncommittedChangesError: something is staged, or a merge is in progress:
            the import's commit would carry it (not raised in a dry run).
    """
    wanted = {atom.digest: atom for atom in atoms}
    with repo.transaction():
        if not dry_run and not repo.status().clean:
            raise UncommittedChangesError(
                "staged changes (or a merge in progress) would be committed with the import;"
                " commit or reset them first"
            )
        held = {m.digest: m for m in repo.snapshot(None) if isinstance(m, MemoryAtom)}
        plan = _Plan(source, held, mirror=mirror)
        for atom in wanted.values():
            plan.want(atom, is_purged=repo.is_purged)
        if mirror:
            plan.drop_missing(wanted)
        commit = None
        changes = plan.added + plan.updated
        if (changes or plan.removed) and not dry_run:
            repo.stage(add=changes, remove=[to_hex(digest) for digest in plan.removed])
            result = plan.result(None)
            commit = repo.commit(message or f"Import {source}: {result.summary}", author=author)
    return plan.result(commit)


class _Plan:
    """What one import changes, decided entry by entry."""

    def __init__(self, source: str, held: dict[bytes, MemoryAtom], *, mirror: bool) -> None:
        self.source = source
        self.held = held
        self.mirror = mirror
        self.added: list[MemoryAtom] = []
        self.updated: list[MemoryAtom] = []
        self.removed: list[bytes] = []
        self.unchanged = self.elsewhere = self.purged = 0
        self.texts = {
            _text_key(atom.content)
            for atom in held.values()
            if not any(owns(source, line) for line in sources_of(atom))
        }

    def want(self, atom: MemoryAtom, *, is_purged: Callable[[bytes], bool]) -> None:
        old = self.held.get(atom.digest)
        if old is not None:
            self._keep(old, atom)
        elif _text_key(atom.content) in self.texts:
            self.elsewhere += 1
        elif is_purged(atom.digest):
            self.purged += 1
        else:
            self.added.append(atom)

    def _keep(self, old: MemoryAtom, new: MemoryAtom) -> None:
        """A memory the repository holds already: this source's, or now also this source's."""
        lines = sources_of(old)
        mine = any(owns(self.source, line) for line in lines)
        if not self.mirror or not lines:  # a view of the repository, or added by hand
            if mine:
                self.unchanged += 1
            else:
                self.elsewhere += 1
            return
        others = [line for line in lines if not owns(self.source, line)]
        if mine:  # this source's line stays where it is
            kept: list[str] = []
            for line in lines:
                value = new.source_hash if owns(self.source, line) else line
                if value not in kept:
                    kept.append(value)
        else:
            kept = [*lines, new.source_hash]
        tags = new.tags if not others else tuple(sorted(set(old.tags) | set(new.tags)))
        source = SOURCE_SEPARATOR.join(kept)
        if (source, tags) == (old.source_hash, old.tags):
            self.unchanged += 1
        else:
            self.updated.append(dataclasses.replace(old, source_hash=source, tags=tags))

    def drop_missing(self, wanted: dict[bytes, MemoryAtom]) -> None:
        for digest, old in self.held.items():
            lines = sources_of(old)
            if digest in wanted or not any(owns(self.source, line) for line in lines):
                continue
            others = [line for line in lines if not owns(self.source, line)]
            if others:
                self.updated.append(
                    dataclasses.replace(old, source_hash=SOURCE_SEPARATOR.join(others))
                )
            else:
                self.removed.append(digest)

    def result(self, commit: ObjectId | None) -> ImportResult:
        return ImportResult(
            source=self.source,
            added=tuple(to_hex(atom.digest) for atom in self.added),
            updated=tuple(to_hex(atom.digest) for atom in self.updated),
            removed=tuple(to_hex(digest) for digest in self.removed),
            unchanged=self.unchanged,
            elsewhere=self.elsewhere,
            purged=self.purged,
            commit=commit,
        )


def _text_key(content: str) -> str:
    """Texts that differ only in spacing (or Markdown's escapes) are one memory to an import."""
    return " ".join(content.replace("\\", "").split())


def import_memories(
    repo: Repository,
    source: str,
    memories: Iterable[ImportedMemory],
    *,
    author: str,
    message: str | None = None,
    dry_run: bool = False,
    mirror: bool = True,
) -> ImportResult:
    """Read ``memories`` as ``source``'s, then :func:`import_atoms` them (now: their default time).

    Raises:
        ImportFileError: a memory cannot be an atom; nothing was imported.
        UncommittedChangesError: as for :func:`import_atoms`.
    """
    atoms = to_atoms(memories, source, label=source, default_time=now_micros())
    return import_atoms(
        repo, source, atoms, author=author, message=message, dry_run=dry_run, mirror=mirror
    )
