"""``verify_store``: a real repository verifies; each corruption made behind its back is named."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from contextfs import MemoryAtom, MemoryMolecule, Repository, TypeSignature
from contextfs.backends import search_index_for
from contextfs.history.commits import Commit
from contextfs.history.tree import Child, Node, decode_node, encode_node, item_key
from contextfs.integrity.fsck import Problem, VerifyReport, verify_store
from contextfs.integrity.purge import purge_atom
from contextfs.model.ids import object_digest
from contextfs.store import SqliteStore

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z in microseconds
BOGUS = "ab" * 32


@dataclass(frozen=True)
class Built:
    """A closed repository on disk and the ids the tests damage."""

    database: Path
    first_commit: str
    concise: str  # an atom held by several snapshots (not in the molecule)
    molecule: str
    interior: str  # a tree node with children
    leaf: str  # its first child


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Several commits on two branches, a molecule, a merge and a tag; then closed."""
    string = TypeSignature("String")
    with Repository.init(tmp_path_factory.mktemp("built")) as repo:
        concise = repo.add("User prefers concise answers", relevance=0.9, timestamp=T0)
        first = repo.commit("first", author="agent-1")
        repo.create_branch("feature")
        repo.add_atoms(MemoryAtom(f"fact number {i}", string) for i in range(40))
        repo.commit("many facts on main", author="agent-1")
        repo.switch("feature")
        molecule = repo.add_molecule(
            MemoryMolecule(
                (MemoryAtom("Paris", string), MemoryAtom("France", string)),
                {"capital_of": ((0, 1),)},
            )
        )
        repo.add("a feature fact", relevance=0.3, timestamp=T0 + 1)
        repo.commit("feature work", author="agent-2")
        repo.switch("main")
        assert repo.merge("feature", author="agent-1", fast_forward=False).status == "merged"
        repo.create_tag("v1")
        assert isinstance(repo.store, SqliteStore)
        database = repo.store.path
    with SqliteStore.open(database) as store:
        trees = {oid: decode_node(data) for oid, _, data in store.iter_objects("tree")}
    interior = min(oid for oid, node in trees.items() if not node.is_leaf)
    leaf = trees[interior].children[0].id
    return Built(database, first, concise, molecule, interior.hex(), leaf.hex())


@pytest.fixture
def db(built: Built, tmp_path: Path) -> Path:
    """A private copy of the built store for one test to damage."""
    copy = tmp_path / "store.db"
    shutil.copyfile(built.database, copy)
    return copy


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """The database file opened with the plain sqlite3 module, behind ContextFS's back."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def read_data(path: Path, oid: str) -> bytes:
    with raw(path) as conn:
        (data,) = conn.execute(
            "SELECT data FROM objects WHERE id = ?", (bytes.fromhex(oid),)
        ).fetchone()
    assert isinstance(data, bytes)
    return data


def write_data(path: Path, oid: str, data: bytes) -> None:
    with raw(path) as conn:
        conn.execute("UPDATE objects SET data = ? WHERE id = ?", (data, bytes.fromhex(oid)))


def insert(path: Path, oid: bytes, kind: str, data: bytes) -> None:
    with raw(path) as conn:
        conn.execute("INSERT INTO objects (id, kind, data) VALUES (?, ?, ?)", (oid, kind, data))


def set_ref(path: Path, name: str, value: str) -> None:
    with raw(path) as conn:
        conn.execute("UPDATE refs SET value = ? WHERE name = ?", (value, name))


def first_holder(path: Path, key: str, *, child: bool = False) -> str:
    """The lowest-id tree node holding entry ``key`` (with ``child``: linking to node ``key``)."""
    wanted = bytes.fromhex(key)
    with SqliteStore.open(path) as store:
        holders = sorted(
            oid.hex()
            for oid, _, data in store.iter_objects("tree")
            if wanted
            in (
                {c.id for c in decode_node(data).children}
                if child
                else {item_key(i) for i in decode_node(data).items}
            )
        )
    assert holders
    return holders[0]


def verify(path: Path) -> VerifyReport:
    with SqliteStore.open(path) as store:
        return verify_store(store)


def summary_text(size: int, relevance: float, timestamp: int, molecules: int) -> str:
    return (
        f"size={size} max_relevance={relevance!r} max_timestamp={timestamp} molecules={molecules}"
    )


# -- stores that verify -----------------------------------------------------------------


def test_a_real_repository_verifies_and_counts_every_kind(db: Path) -> None:
    with raw(db) as conn:
        trees = conn.execute("SELECT count(*) FROM objects WHERE kind = 'tree'").fetchone()[0]
    report = verify(db)
    assert report.problems == ()
    assert report.ok
    assert report.purged == ()
    assert report.counts == {
        "atom": 44,
        "commit": 4,
        "context": 0,
        "molecule": 1,
        "purge": 0,
        "tree": trees,
    }


def test_an_in_memory_repository_verifies() -> None:
    with Repository.memory() as repo:
        repo.add("one fact")
        repo.commit("one")
        report = verify_store(repo.store)
    assert report.ok
    assert report.counts["commit"] == 1


def test_a_new_repository_with_an_unborn_branch_verifies(tmp_path: Path) -> None:
    with Repository.init(tmp_path) as repo:
        assert verify_store(repo.store).ok


def test_a_purged_atom_with_its_record_is_not_a_problem(db: Path, built: Built) -> None:
    with SqliteStore.open(db) as store:
        purge_atom(
            store,
            bytes.fromhex(built.concise),
            index=search_index_for(store),
            author="dpo",
            reason="asked",
            when=T0,
        )
    report = verify(db)
    assert report.problems == ()
    assert report.purged == (built.concise,)
    assert report.counts["purge"] == 1


# -- objects changed behind the store's back -----------------------------------------------


def test_a_changed_byte_in_an_atom_is_named(db: Path, built: Built) -> None:
    data = read_data(db, built.concise).replace(b"concise", b"concIse")
    write_data(db, built.concise, data)
    actual = object_digest("atom", data).hex()
    assert verify(db).problems == (
        Problem(
            "atom",
            built.concise,
            None,
            f"atom {built.concise} is corrupt: its content hashes to {actual}",
        ),
    )


def test_a_changed_byte_in_a_tree_node_is_named(db: Path, built: Built) -> None:
    data = read_data(db, built.leaf)
    assert data[-1:] == b"\xc0"  # the last entry's overview: nil
    damaged = data[:-1] + b"\xc2"
    write_data(db, built.leaf, damaged)
    actual = encode_node(decode_node(damaged))[0].hex()
    assert verify(db).problems == (
        Problem(
            "tree",
            built.leaf,
            None,
            f"tree {built.leaf} is corrupt: its content hashes to {actual}",
        ),
    )


def test_a_changed_byte_in_a_commit_is_named(db: Path, built: Built) -> None:
    data = read_data(db, built.first_commit)
    assert data.count(b"first") == 1
    damaged = data.replace(b"first", b"First")
    write_data(db, built.first_commit, damaged)
    actual = object_digest("commit", damaged).hex()
    oid = built.first_commit
    assert verify(db).problems == (
        Problem("commit", oid, None, f"commit {oid} is corrupt: its content hashes to {actual}"),
    )


def test_undecodable_bytes_are_named(db: Path, built: Built) -> None:
    write_data(db, built.molecule, b"\xc1")
    problem = verify(db).problems
    assert [(p.kind, p.oid, p.ref) for p in problem] == [("molecule", built.molecule, None)]
    assert problem[0].message.startswith(
        f"molecule {built.molecule} is corrupt: molecule does not decode"
    )


def test_a_deleted_atom_is_named_once_with_who_refers_to_it(db: Path, built: Built) -> None:
    holder = first_holder(db, built.concise)
    with raw(db) as conn:
        conn.execute("DELETE FROM objects WHERE id = ?", (bytes.fromhex(built.concise),))
    assert verify(db).problems == (
        Problem(
            "atom",
            built.concise,
            None,
            f"atom {built.concise} is missing (referred to by tree {holder})",
        ),
    )


def test_a_deleted_molecule_is_named(db: Path, built: Built) -> None:
    holder = first_holder(db, built.molecule)
    with raw(db) as conn:
        conn.execute("DELETE FROM objects WHERE id = ?", (bytes.fromhex(built.molecule),))
    assert verify(db).problems == (
        Problem(
            "molecule",
            built.molecule,
            None,
            f"molecule {built.molecule} is missing (referred to by tree {holder})",
        ),
    )


def test_a_deleted_tree_node_is_named(db: Path, built: Built) -> None:
    parent = first_holder(db, built.leaf, child=True)
    with raw(db) as conn:
        conn.execute("DELETE FROM objects WHERE id = ?", (bytes.fromhex(built.leaf),))
    assert verify(db).problems == (
        Problem(
            "tree", built.leaf, None, f"tree {built.leaf} is missing (referred to by tree {parent})"
        ),
    )


def test_an_erased_atom_without_a_purge_record_is_corrupt(db: Path, built: Built) -> None:
    write_data(db, built.concise, b"")
    report = verify(db)
    assert report.purged == ()
    assert report.problems == (
        Problem(
            "atom",
            built.concise,
            None,
            f"atom {built.concise} is corrupt: its content is gone and no purge record names it",
        ),
    )


def test_an_object_of_unknown_kind_is_named(db: Path) -> None:
    insert(db, bytes.fromhex(BOGUS), "bogus", b"\x00")
    report = verify(db)
    assert report.problems == (
        Problem("bogus", BOGUS, None, f"object {BOGUS} has unknown kind 'bogus'"),
    )
    assert report.counts["bogus"] == 1


# -- well-hashed objects whose links lie ---------------------------------------------------------


def test_a_child_summary_that_lies_is_named(db: Path, built: Built) -> None:
    node = decode_node(read_data(db, built.interior))
    true = node.children[0]
    lie = Child(true.nibble, true.id, true.size + 1, true.max_relevance, true.max_timestamp, 0)
    oid, data = encode_node(Node(node.depth, (), (lie, *node.children[1:])))
    insert(db, oid, "tree", data)
    recorded = summary_text(true.size + 1, true.max_relevance, true.max_timestamp, 0)
    actual = summary_text(true.size, true.max_relevance, true.max_timestamp, true.molecules)
    assert verify(db).problems == (
        Problem(
            "tree",
            oid.hex(),
            None,
            f"tree {oid.hex()} records {recorded} for tree {built.leaf}, which holds {actual}",
        ),
    )


def test_a_wrong_generation_is_named(db: Path, built: Built) -> None:
    parent = bytes.fromhex(built.first_commit)
    commit = Commit(
        tree=bytes.fromhex(built.interior),
        parents=(parent,),
        generation=5,
        author="forger",
        message="skip ahead",
        timestamp=T0,
    )
    insert(db, commit.digest, "commit", commit.encode())
    oid = commit.id
    assert verify(db).problems == (
        Problem("commit", oid, None, f"commit {oid} has generation 5, but its parents make it 2"),
    )


def test_a_commit_naming_a_non_commit_parent_is_named(db: Path, built: Built) -> None:
    commit = Commit(
        tree=bytes.fromhex(built.interior),
        parents=(bytes.fromhex(built.concise),),
        generation=2,
        author="forger",
        message="odd parent",
        timestamp=T0,
    )
    insert(db, commit.digest, "commit", commit.encode())
    oid = commit.id
    assert verify(db).problems == (
        Problem(
            "commit",
            oid,
            None,
            f"commit {oid} refers to {built.concise} as a commit, but it is an atom",
        ),
    )


# -- refs ----------------------------------------------------------------------------------


def test_a_branch_pointing_at_nothing_is_named(db: Path) -> None:
    set_ref(db, "refs/heads/feature", BOGUS)
    message = f"ref refs/heads/feature points at {BOGUS}, which is missing"
    assert verify(db).problems == (Problem("ref", BOGUS, "refs/heads/feature", message),)


def test_head_pointing_at_a_missing_branch_is_named(db: Path) -> None:
    set_ref(db, "HEAD", "ref: refs/heads/nowhere")
    message = "HEAD points at branch refs/heads/nowhere, which does not exist"
    assert verify(db).problems == (Problem("ref", None, "HEAD", message),)


def test_a_tag_pointing_at_a_tree_is_named(db: Path, built: Built) -> None:
    set_ref(db, "refs/tags/v1", built.interior)
    message = f"ref refs/tags/v1 points at {built.interior}, which is a tree, not a commit"
    assert verify(db).problems == (Problem("ref", built.interior, "refs/tags/v1", message),)


def test_a_stage_pointing_at_a_commit_is_named(db: Path, built: Built) -> None:
    with raw(db) as conn:
        conn.execute("INSERT INTO refs (name, value) VALUES ('STAGE', ?)", (built.first_commit,))
    oid = built.first_commit
    message = f"ref STAGE points at {oid}, which is a commit, not a tree"
    assert verify(db).problems == (Problem("ref", oid, "STAGE", message),)


def test_a_ref_holding_garbage_is_named(db: Path) -> None:
    set_ref(db, "refs/heads/feature", "not an id")
    message = "ref refs/heads/feature holds 'not an id', not an object id"
    assert verify(db).problems == (Problem("ref", None, "refs/heads/feature", message),)


# -- states that are easy to get wrong ---------------------------------------------------------


def test_a_merge_stopped_on_conflicts_verifies() -> None:
    with Repository.memory() as repo:
        fact = repo.add("the sky is blue", relevance=0.5, timestamp=T0)
        repo.commit("base")
        repo.create_branch("other")
        repo.update_entry(fact, relevance=0.9)
        repo.commit("ours")
        repo.switch("other")
        repo.update_entry(fact, relevance=0.1)
        repo.commit("theirs")
        repo.switch("main")
        assert repo.merge("other").status == "conflicts"
        assert set(repo.store.list_refs()) >= {"MERGE_HEAD", "MERGE_STATE", "STAGE"}
        assert verify_store(repo.store).problems == ()


def test_verify_reads_one_state_while_another_connection_commits(db: Path) -> None:
    with SqliteStore.open(db) as reader, SqliteStore.open(db) as writer:
        before = reader.count_objects()
        with reader.read_snapshot():
            assert reader.count_objects() == before
            writer.put_objects([(bytes.fromhex(BOGUS), "atom", b"late")])
            assert reader.count_objects() == before
        assert reader.count_objects() == before + 1
