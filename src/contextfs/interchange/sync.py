"""Bring a source's memories into a repository: one commit per import, none when unchanged.

A source (a file, a store) owns the memories whose atom source is its name,
or its name plus ``#anchor``. Importing it again makes the repository hold
exactly what the source holds now: new memories are added, changed entries
updated, memories gone from the source removed, and nothing else touched. A
memory whose text the repository already holds from elsewhere (another
source, or added by hand, under any type) stays as it is, so a file that
``export --to markdown`` wrote reads back as nothing new; a purged memory is
not brought back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidInputError, UncommittedChangesError
from ..model.ids import ObjectId, to_hex
from ..model.objects import MemoryAtom
from ..model.timeutil import from_micros, now_micros
from ..model.types import TypeSignature
from ..repo import Repository
from .records import ImportedMemory, ImportFileError


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportResult:
    """What an import changed."""

    source: str
    added: tuple[ObjectId, ...]  # new memories, and memories whose entry changed
    removed: tuple[ObjectId, ...]  # gone from the source since the last import
    unchanged: int
    elsewhere: int  # already held from another source, left as they are
    purged: int  # purged in this repository, not brought back
    commit: ObjectId | None  # None: nothing changed, nothing committed

    @property
    def changed(self) -> bool:
        return self.commit is not None


def file_source(path: Path, root: Path | None) -> str:
    """The source name of a file: relative to the repository's folder when inside it.

    So ``CLAUDE.md``, ``./CLAUDE.md`` and its absolute path are one source,
    and a clone of the project names it the same way.
    """
    resolved = path.resolve()
    if root is not None and resolved.is_relative_to(root.resolve()):
        return resolved.relative_to(root.resolve()).as_posix()
    return resolved.as_posix()


def owns(source: str, atom_source: str) -> bool:
    """True when ``atom_source`` names ``source`` or one of its anchors."""
    return atom_source == source or atom_source.startswith(source + "#")


def to_atoms(
    memories: Iterable[ImportedMemory], source: str, *, label: str, default_time: int
) -> list[MemoryAtom]:
    """The atoms of ``memories``, the first of any duplicate kept.

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
        atoms.setdefault(atom.digest, atom)
    return list(atoms.values())


def import_atoms(
    repo: Repository,
    source: str,
    atoms: list[MemoryAtom],
    *,
    author: str,
    message: str | None = None,
    dry_run: bool = False,
) -> ImportResult:
    """Make ``repo`` hold exactly ``atoms`` for ``source``, in one commit (or none).

    With ``dry_run``, say what would change and change nothing.

    Raises:
        UncommittedChangesError: something is staged, or a merge is in progress:
            the import's commit would carry it.
    """
    wanted = {atom.digest: atom for atom in atoms}
    with repo.transaction():
        if not repo.status().clean:
            raise UncommittedChangesError(
                "staged changes (or a merge in progress) would be committed with the import;"
                " commit or reset them first"
            )
        held = {m.digest: m for m in repo.snapshot(None) if isinstance(m, MemoryAtom)}
        ours = {digest: atom for digest, atom in held.items() if owns(source, atom.source_hash)}
        texts = {atom.content for digest, atom in held.items() if digest not in ours}
        add: list[MemoryAtom] = []
        unchanged = elsewhere = purged = 0
        for digest, atom in wanted.items():
            if digest in ours:
                if _same_entry(ours[digest], atom):
                    unchanged += 1
                else:
                    add.append(atom)
            elif digest in held or atom.content in texts:
                elsewhere += 1
            elif repo.is_purged(digest):
                purged += 1
            else:
                add.append(atom)
        remove = [to_hex(digest) for digest in ours if digest not in wanted]
        commit = None
        if (add or remove) and not dry_run:
            repo.stage(add=add, remove=remove)
            summary = f"{len(add)} added or updated, {len(remove)} removed"
            commit = repo.commit(message or f"Import {source}: {summary}", author=author)
    return ImportResult(
        source=source,
        added=tuple(to_hex(atom.digest) for atom in add),
        removed=tuple(ObjectId(r) for r in remove),
        unchanged=unchanged,
        elsewhere=elsewhere,
        purged=purged,
        commit=commit,
    )


def import_memories(
    repo: Repository,
    source: str,
    memories: Iterable[ImportedMemory],
    *,
    author: str,
    message: str | None = None,
    dry_run: bool = False,
) -> ImportResult:
    """Read ``memories`` as ``source``'s, then :func:`import_atoms` them (now: their default time).

    Raises:
        ImportFileError: a memory cannot be an atom; nothing was imported.
        UncommittedChangesError: as for :func:`import_atoms`.
    """
    atoms = to_atoms(memories, source, label=source, default_time=now_micros())
    return import_atoms(repo, source, atoms, author=author, message=message, dry_run=dry_run)


def _same_entry(old: MemoryAtom, new: MemoryAtom) -> bool:
    """Entries that differ only in time are the same memory, read again."""
    return (old.source_hash, old.tags, old.relevance_score) == (
        new.source_hash,
        new.tags,
        new.relevance_score,
    )
