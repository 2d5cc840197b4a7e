"""Repository.prove / verify / purge end to end."""

from __future__ import annotations

import pytest

from contextfs import Repository
from contextfs.errors import UnknownRevisionError
from contextfs.integrity.proofs import MembershipProof, NonMembershipProof, verify
from contextfs.model.objects import MemoryAtom

from ..conftest import RepoBackend


def build(backend: RepoBackend) -> tuple[Repository, str, str]:
    repo = backend.repository()
    secret = repo.add("zebra-secret-7319 is the vault code", relevance=0.9)
    kept = repo.add("The user prefers tea", relevance=0.8)
    repo.commit("first")
    repo.add("Deadline is Friday")
    repo.commit("second")
    return repo, secret, kept


def test_prove_membership_and_absence_against_any_version(repo_backend: RepoBackend) -> None:
    repo, secret, _ = build(repo_backend)
    proof = repo.prove(secret[:10])
    assert isinstance(proof, MembershipProof)
    assert verify(proof, repo.resolve("HEAD"))
    assert not verify(proof, repo.resolve("HEAD~1"))  # tied to its commit
    later = repo.add("only in the third commit")
    repo.commit("third")
    absent = repo.prove(later, "HEAD~1")
    assert isinstance(absent, NonMembershipProof)
    assert verify(absent, repo.resolve("HEAD~1"))
    assert isinstance(repo.prove(later), MembershipProof)
    with pytest.raises(UnknownRevisionError):
        repo.prove("ffffffff")
    repo.close()


def test_purge_keeps_history_verifiable_and_expansion_chooses(repo_backend: RepoBackend) -> None:
    repo, secret, kept = build(repo_backend)
    heads = [c.id for c in repo.log()]
    proof = repo.prove(secret[:10], "HEAD~1")
    record = repo.purge(secret[:10], author="privacy-officer", reason="user request")
    assert (record.atom_id.hex(), record.author, record.reason) == (
        secret,
        "privacy-officer",
        "user request",
    )
    assert [c.id for c in repo.log()] == heads
    report = repo.verify()
    assert report.ok
    assert secret in report.purged
    assert verify(proof, repo.resolve("HEAD~1"))  # old proofs still hold: ids cover no text
    assert "zebra" not in repo.context().text
    shown = repo.context(purged="show")
    assert "[Purged] [purged]" in shown.text
    assert [a.content for a in repo.snapshot() if isinstance(a, MemoryAtom)].count("[purged]") == 1
    assert repo.search("zebra", retrieval="lexical") == []
    assert repo.get(kept[:10], "HEAD").content == "The user prefers tea"  # type: ignore[union-attr]
    for name in ("store.db", "store.db-wal", "store.db-shm"):  # SQLite's files, if any
        path = repo_backend.tmp_path / ".contextfs" / name
        if path.exists():
            assert b"zebra" not in path.read_bytes().lower()
    repo.close()
