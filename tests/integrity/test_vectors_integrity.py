"""Vectors are derived from atom text: a purge deletes them, and verify reports strays."""

from __future__ import annotations

import numpy as np

from contextfs import Repository
from contextfs.backends import search_index_for
from contextfs.integrity.purge import purge_atom

from ..conftest import RepoBackend

EMBEDDER = "test-embedder@1"
WHEN = 1_760_000_000_000_000


def vector(seed: int) -> np.ndarray:
    row = np.random.default_rng(seed).normal(size=(1, 8)).astype(np.float32)
    return row / np.linalg.norm(row)


def remember(repo: Repository, text: str) -> bytes:
    atom = bytes.fromhex(repo.add(text, "Fact"))
    repo.commit(f"remember {text}")
    repo.indexes.vectors.add(EMBEDDER, [atom], vector(len(text)))
    return atom


def test_a_purge_deletes_the_atoms_vectors(repo_backend: RepoBackend) -> None:
    with repo_backend.repository() as repo:
        secret = remember(repo, "The user's passport number is X1234567")
        kept = remember(repo, "The user prefers tea")
        repo.indexes.vectors.add("another@2", [secret], vector(3)[:, :4] / 1.0)
        assert repo.indexes.vectors.count() == 3
        repo.purge(secret.hex(), author="dpo", reason="user request")
        vectors = repo.indexes.vectors
        assert vectors.missing(EMBEDDER, [secret, kept]) == [secret]
        assert vectors.missing("another@2", [secret]) == [secret]
        assert vectors.count() == 1
        report = repo.verify()
        assert report.ok, report.problems
        assert report.purged == (secret.hex(),)


def test_verify_reports_vectors_of_absent_or_purged_atoms(repo_backend: RepoBackend) -> None:
    with repo_backend.repository() as repo:
        kept = remember(repo, "Deploys happen on Fridays")
        assert repo.verify().ok
        stray = bytes(range(32))
        repo.indexes.vectors.add(EMBEDDER, [stray], vector(1))
        leaked = remember(repo, "A secret that a careless purge leaves behind")
        # purge_atom without the vector index: the vector (and so the text) survives.
        store = repo.store
        purge_atom(store, leaked, author="dpo", reason="", when=WHEN, index=search_index_for(store))
        problems = {(p.kind, p.oid, p.message) for p in repo.verify().problems}
        assert problems == {
            ("atom", stray.hex(), f"a vector is kept for atom {stray.hex()}, which is not stored"),
            (
                "atom",
                leaked.hex(),
                f"a vector is kept for atom {leaked.hex()}, whose content was purged",
            ),
        }
        assert kept not in {bytes.fromhex(p.oid or "") for p in repo.verify().problems}
