"""Mirroring a source into a repository from Python: one commit, then none."""

from __future__ import annotations

import pytest

from contextfs import Repository
from contextfs.errors import UncommittedChangesError
from contextfs.interchange import ImportedMemory, ImportFileError, import_memories


def memory(text: str, *, anchor: str = "", tags: tuple[str, ...] = ()) -> ImportedMemory:
    return ImportedMemory(content=text, type="Fact", line=None, anchor=anchor, tags=tags)


def test_a_source_is_mirrored_in_one_commit_and_then_left_alone() -> None:
    with Repository.memory() as repo:
        first = import_memories(
            repo, "crm", [memory("Ada is a customer", anchor="c1")], author="sync"
        )
        assert first.commit is not None
        assert next(iter(repo.log())).commit.summary == "Import crm: 1 added, 0 updated, 0 removed"
        assert next(iter(repo.log())).commit.author == "sync"
        again = import_memories(
            repo, "crm", [memory("Ada is a customer", anchor="c1")], author="sync"
        )
        assert (again.commit, again.unchanged) == (None, 1)

        dry = import_memories(repo, "crm", [], author="sync", dry_run=True)
        assert (len(dry.removed), dry.commit, repo.count()) == (1, None, 1)
        moved = import_memories(
            repo, "crm", [memory("Ada is a customer", anchor="c2")], author="sync"
        )
        assert (len(moved.updated), moved.removed) == (1, ())  # a new anchor: an updated entry
        assert repo.snapshot()[0].source_hash == "crm#c2"


def test_a_bad_memory_or_a_dirty_stage_changes_nothing() -> None:
    with Repository.memory() as repo:
        repo.add("staged by hand")
        with pytest.raises(UncommittedChangesError):
            import_memories(repo, "crm", [memory("fine")], author="sync")
        repo.commit("by hand", author="me")
        with pytest.raises(ImportFileError, match=r"^crm: item c9: tag must be non-empty"):
            import_memories(repo, "crm", [memory("x", anchor="c9", tags=(" ",))], author="s")
        assert [info.commit.summary for info in repo.log()] == ["by hand"]
