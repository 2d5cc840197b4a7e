"""The contract every :class:`~contextfs.store.base.Store` backend must pass.

Subclass :class:`StoreContract` in a ``Test*`` class and override
:meth:`~StoreContract.make_store`; backends whose data outlives the store object
also mix in :class:`PersistentStoreContract` and override ``reopen_store``::

    class TestSqliteStore(StoreContract, PersistentStoreContract):
        def make_store(self) -> Store:
            return SqliteStore.open(self.tmp_path / "store.db", create=True)

        def reopen_store(self, store: Store) -> Store:
            return SqliteStore.open(self.tmp_path / "store.db")

The suite needs pytest; the library never imports this module.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from contextfs.errors import InvalidInputError, StoreError
from contextfs.store.base import (
    OBJECT_KINDS,
    CollectableStore,
    DerivedStore,
    PackedStore,
    ReflogEntry,
    ReflogStore,
    Store,
    StoredObject,
)
from contextfs.tokens import Scope, TokenStore, digest, mint

COUNTER = "refs/test/counter"


def make_id(seed: object) -> bytes:
    """Return a deterministic 32-byte id for ``seed`` (the store does not re-hash)."""
    return hashlib.sha256(f"store-contract:{seed}".encode()).digest()


def make_objects(count: int, kind: str = "atom", tag: str = "") -> list[tuple[bytes, str, bytes]]:
    """Return ``count`` distinct ``(id, kind, data)`` triples."""
    return [(make_id(f"{kind}:{tag}{i}"), kind, f"{kind} {tag}{i}".encode()) for i in range(count)]


def counter_value(n: int) -> str:
    """Spell ``n`` as a ref value shaped like an object id."""
    return f"{n:064x}"


def increment(store: Store, times: int, name: str = COUNTER) -> None:
    """Add ``times`` to the counter ref by read / compare-and-swap / retry."""
    for _ in range(times):
        while True:
            current = store.read_ref(name)
            assert current is not None
            if store.set_ref_if_equals(name, current, counter_value(int(current, 16) + 1)):
                break


class _AbortError(Exception):
    """Raised by :func:`abandoned` to abandon a transaction."""


@contextmanager
def abandoned(store: Store) -> Iterator[None]:
    """Run the block in a transaction, then abandon it by raising (and swallow that)."""
    with pytest.raises(_AbortError), store.transaction():  # noqa: PT012
        yield
        raise _AbortError


class _StoreFixtures:
    """The fixture plumbing shared by both contract classes."""

    tmp_path: Path
    request: pytest.FixtureRequest
    store: Store
    _opened: list[Store]

    def make_store(self) -> Store:
        """Return a new, empty store; override in the backend's test class."""
        raise NotImplementedError

    @pytest.fixture(autouse=True)
    def _store_contract_setup(
        self, tmp_path: Path, request: pytest.FixtureRequest
    ) -> Iterator[None]:
        self.tmp_path = tmp_path
        self.request = request
        self._opened = []
        self.store = self.track(self.make_store())
        yield
        for store in reversed(self._opened):
            store.close()

    def track(self, store: Store) -> Store:
        """Close ``store`` when the test ends."""
        self._opened.append(store)
        return store


class StoreContract(_StoreFixtures):
    """What every backend promises: objects, refs, transactions and thread safety.

    Transaction semantics held here: nested transactions join the outermost; only
    its exit commits, or rolls back every object put and ref move if its body
    raised. An exception escaping an inner block is just an exception: caught
    inside the outer block, the writes made before it commit with the outer block.
    """

    # -- objects -------------------------------------------------------------

    def test_is_a_store(self) -> None:
        assert isinstance(self.store, Store)

    def test_put_get_round_trip_every_kind(self) -> None:
        objects = [(make_id(kind), kind, f"{kind} \x00\xff".encode()) for kind in OBJECT_KINDS]
        self.store.put_objects(objects)
        for oid, kind, data in objects:
            assert self.store.get_object(oid) == StoredObject(kind, data)

    def test_put_is_idempotent_and_keeps_the_first_bytes(self) -> None:
        oid = make_id("one")
        self.store.put_objects([(oid, "atom", b"first")])
        self.store.put_objects([(oid, "atom", b"first"), (oid, "atom", b"second")])
        assert self.store.count_objects() == 1
        assert self.store.get_object(oid) == StoredObject("atom", b"first")

    def test_put_keeps_the_first_of_duplicates_in_one_batch(self) -> None:
        oid = make_id("dup")
        self.store.put_objects([(oid, "tree", b"first"), (oid, "atom", b"second")])
        assert self.store.get_objects([oid]) == {oid: StoredObject("tree", b"first")}

    def test_put_accepts_any_iterable_and_empty_batches(self) -> None:
        self.store.put_objects([])
        self.store.put_objects(obj for obj in make_objects(3))
        assert self.store.count_objects() == 3

    @pytest.mark.parametrize(
        ("bad", "message"),
        [
            ((b"short", "atom", b"x"), "object id must be 32 bytes, got b'short'"),
            ((make_id(0), "blob", b"x"), "unknown object kind 'blob'"),
            ((make_id(0), "atom", "text"), "object data must be bytes, got str"),
        ],
    )
    def test_put_refuses_a_malformed_batch_whole(
        self, bad: tuple[bytes, str, bytes], message: str
    ) -> None:
        with pytest.raises(InvalidInputError, match=f"^{re.escape(message)}$"):
            self.store.put_objects([*make_objects(2), bad])
        assert self.store.count_objects() == 0

    def test_get_absent_is_none(self) -> None:
        assert self.store.get_object(make_id("absent")) is None
        assert self.store.get_object(b"") is None

    def test_get_and_has_objects_with_present_and_absent_ids(self) -> None:
        objects = make_objects(1200)  # more than one batch of lookups
        self.store.put_objects(objects[::2])
        asked = [oid for oid, _, _ in objects] + [objects[0][0]]
        expected = {oid: StoredObject(kind, data) for oid, kind, data in objects[::2]}
        assert self.store.get_objects(asked) == expected
        assert self.store.has_objects(asked) == set(expected)
        assert self.store.get_objects([]) == {}
        assert self.store.has_objects([]) == set()

    def test_iter_objects_is_sorted_by_id_and_filters_by_kind(self) -> None:
        atoms, commits = make_objects(1500, "atom"), make_objects(700, "commit")
        self.store.put_objects(atoms + commits)
        assert list(self.store.iter_objects()) == sorted(atoms + commits)
        assert list(self.store.iter_objects("commit")) == sorted(commits)
        assert list(self.store.iter_objects("tree")) == []

    def test_count_objects(self) -> None:
        assert self.store.count_objects() == 0
        self.store.put_objects(make_objects(7))
        self.store.put_objects(make_objects(9))
        assert self.store.count_objects() == 9

    @pytest.mark.parametrize("length", [0, 1, 2, 3, 5, 63, 64])
    def test_find_ids_by_prefix(self, length: int) -> None:
        oids = sorted(oid for oid, _, _ in make_objects(600))
        self.store.put_objects((oid, "atom", b"x") for oid in oids)
        prefix = oids[123].hex()[:length]
        expected = [oid for oid in oids if oid.hex().startswith(prefix)]
        assert self.store.find_ids(prefix, 1000) == expected
        assert self.store.find_ids(prefix, 2) == expected[:2]
        assert self.store.find_ids(prefix, 0) == []

    def test_find_ids_can_keep_only_some_kinds(self) -> None:
        oids = sorted(oid for oid, _, _ in make_objects(64))
        kinds = ["atom", "commit", "tree", "molecule"]
        self.store.put_objects((oid, kinds[i % 4], b"x") for i, oid in enumerate(oids))
        commits = [oid for i, oid in enumerate(oids) if i % 4 == 1]
        assert self.store.find_ids("", 100, ["commit"]) == commits
        assert self.store.find_ids(commits[3].hex()[:6], 100, ["commit"]) == [commits[3]]
        assert self.store.find_ids(commits[3].hex()[:6], 100, ["atom", "tree"]) == []
        both = [oid for i, oid in enumerate(oids) if i % 4 in (0, 3)]
        assert self.store.find_ids("", 100, ["molecule", "atom"]) == both
        with pytest.raises(InvalidInputError, match="unknown object kind"):
            self.store.find_ids("", 10, ["blob"])

    def test_find_ids_at_the_ends_of_the_id_space(self) -> None:
        low, high = bytes(32), b"\xff" * 32
        self.store.put_objects([(low, "atom", b"low"), (high, "atom", b"high")])
        for prefix in ("f", "ff", "fff", "f" * 64):
            assert self.store.find_ids(prefix, 10) == [high]
        for prefix in ("0", "00", "000", "0" * 64):
            assert self.store.find_ids(prefix, 10) == [low]
        assert self.store.find_ids("", 10) == [low, high]
        assert self.store.find_ids("1", 10) == []

    @pytest.mark.parametrize("prefix", ["A", "g", "0x", " ", "0" * 65])
    def test_find_ids_refuses_a_malformed_prefix(self, prefix: str) -> None:
        message = f"id prefix must be 0-64 lowercase hex digits, got {prefix!r}"
        with pytest.raises(InvalidInputError, match=f"^{re.escape(message)}$"):
            self.store.find_ids(prefix, 10)

    # -- refs ------------------------------------------------------------------

    def test_create_read_move_and_delete_a_ref(self) -> None:
        name, a, b = "refs/heads/main", counter_value(1), counter_value(2)
        assert self.store.read_ref(name) is None
        assert self.store.set_ref_if_equals(name, None, a)
        assert self.store.read_ref(name) == a
        assert self.store.set_ref_if_equals(name, a, b)
        assert self.store.read_ref(name) == b
        assert self.store.set_ref_if_equals(name, b, None)
        assert self.store.read_ref(name) is None

    def test_failed_compare_and_swap_changes_nothing(self) -> None:
        name, a, b = "refs/heads/main", counter_value(1), counter_value(2)
        assert not self.store.set_ref_if_equals(name, a, b)  # absent, old given
        assert not self.store.set_ref_if_equals(name, a, None)
        assert self.store.read_ref(name) is None
        assert self.store.set_ref_if_equals(name, None, a)
        assert not self.store.set_ref_if_equals(name, None, b)  # exists, create refused
        assert not self.store.set_ref_if_equals(name, b, counter_value(3))
        assert not self.store.set_ref_if_equals(name, b, None)
        assert self.store.read_ref(name) == a

    def test_swap_to_the_same_value_and_none_to_none(self) -> None:
        name, a = "refs/heads/main", counter_value(1)
        assert self.store.set_ref_if_equals(name, None, None)  # "absent" holds
        assert self.store.set_ref_if_equals(name, None, a)
        assert self.store.set_ref_if_equals(name, a, a)
        assert not self.store.set_ref_if_equals(name, None, None)
        assert self.store.read_ref(name) == a

    def test_symbolic_ref_values_are_stored_verbatim(self) -> None:
        assert self.store.set_ref_if_equals("HEAD", None, "ref: refs/heads/main")
        assert self.store.read_ref("HEAD") == "ref: refs/heads/main"

    def test_list_refs_by_prefix_in_name_order(self) -> None:
        names = ["refs/heads/main", "refs/heads/a_b", "refs/heads/é", "refs/heads/Z", "HEAD"]
        names += ["refs/heads/\U0001f600", "refs/tags/v1", "refs/heads%x", "refs/headsX"]
        for i, name in enumerate(names):
            assert self.store.set_ref_if_equals(name, None, counter_value(i))
        everything = {name: counter_value(i) for i, name in enumerate(names)}
        listed = self.store.list_refs()
        assert listed == everything
        assert list(listed) == sorted(names)
        heads = self.store.list_refs("refs/heads/")
        assert list(heads) == sorted(n for n in names if n.startswith("refs/heads/"))
        assert heads == {n: everything[n] for n in heads}
        assert list(self.store.list_refs("refs/heads/a_")) == ["refs/heads/a_b"]
        assert self.store.list_refs("refs/heads/_") == {}
        assert self.store.list_refs("refs/heads%") == {"refs/heads%x": everything["refs/heads%x"]}

    # -- transactions ----------------------------------------------------------

    def test_transaction_commits_objects_and_refs_together(self) -> None:
        objects = make_objects(5)
        with self.store.transaction():
            self.store.put_objects(objects)
            assert self.store.set_ref_if_equals("refs/heads/main", None, counter_value(1))
        assert self.store.count_objects() == 5
        assert self.store.read_ref("refs/heads/main") == counter_value(1)

    def test_rollback_undoes_object_puts_and_every_ref_move(self) -> None:
        before = make_objects(3, tag="before-")
        self.store.put_objects(before)
        for name in ("refs/heads/moved", "refs/heads/deleted"):
            assert self.store.set_ref_if_equals(name, None, counter_value(1))
        refs = self.store.list_refs()
        with abandoned(self.store):
            self.store.put_objects(make_objects(4, tag="during-") + before)
            assert self.store.set_ref_if_equals("refs/heads/moved", counter_value(1), "x")
            assert self.store.set_ref_if_equals("refs/heads/moved", "x", counter_value(2))
            assert self.store.set_ref_if_equals("refs/heads/deleted", counter_value(1), None)
            assert self.store.set_ref_if_equals("refs/heads/created", None, counter_value(3))
        assert list(self.store.iter_objects()) == sorted(before)
        assert self.store.list_refs() == refs

    def test_rollback_on_base_exception(self) -> None:
        def interrupted() -> None:
            with self.store.transaction():
                self.store.put_objects(make_objects(2))
                assert self.store.set_ref_if_equals("HEAD", None, "ref: refs/heads/main")
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            interrupted()
        assert self.store.count_objects() == 0
        assert self.store.list_refs() == {}

    def test_reads_inside_a_transaction_see_its_writes(self) -> None:
        objects = make_objects(3)
        oid = objects[0][0]
        with self.store.transaction():
            self.store.put_objects(objects)
            assert self.store.get_object(oid) == StoredObject("atom", objects[0][2])
            assert self.store.get_objects([oid]) == {oid: StoredObject("atom", objects[0][2])}
            assert self.store.has_objects([oid]) == {oid}
            assert self.store.find_ids(oid.hex()[:7], 5) == [oid]
            assert list(self.store.iter_objects()) == sorted(objects)
            assert self.store.count_objects() == 3
            assert self.store.set_ref_if_equals("refs/heads/main", None, oid.hex())
            assert self.store.read_ref("refs/heads/main") == oid.hex()
            assert self.store.list_refs() == {"refs/heads/main": oid.hex()}

    def test_in_transaction_says_whether_one_is_open(self) -> None:
        assert not self.store.in_transaction()
        with self.store.transaction():
            assert self.store.in_transaction()
            with self.store.transaction():
                assert self.store.in_transaction()
            assert self.store.in_transaction()
        assert not self.store.in_transaction()
        with abandoned(self.store):
            assert self.store.in_transaction()
        assert not self.store.in_transaction()

    def test_nested_transaction_joins_the_outer_one(self) -> None:
        with abandoned(self.store):
            with self.store.transaction():
                self.store.put_objects(make_objects(2))
                assert self.store.set_ref_if_equals("refs/heads/main", None, counter_value(1))
            assert self.store.count_objects() == 2  # the inner exit committed nothing yet
        assert self.store.count_objects() == 0
        assert self.store.read_ref("refs/heads/main") is None

    def test_exception_caught_inside_the_outer_transaction_keeps_inner_writes(self) -> None:
        with self.store.transaction():
            with abandoned(self.store):  # an inner transaction that raises
                self.store.put_objects(make_objects(2))
                assert self.store.set_ref_if_equals("refs/heads/main", None, counter_value(1))
            self.store.put_objects(make_objects(3))
        assert self.store.count_objects() == 3
        assert self.store.read_ref("refs/heads/main") == counter_value(1)

    def test_failed_compare_and_swap_does_not_abort_a_transaction(self) -> None:
        with self.store.transaction():
            assert self.store.set_ref_if_equals("refs/heads/main", None, counter_value(1))
            assert not self.store.set_ref_if_equals("refs/heads/main", None, counter_value(2))
            self.store.put_objects(make_objects(1))
        assert self.store.read_ref("refs/heads/main") == counter_value(1)
        assert self.store.count_objects() == 1

    def test_a_new_transaction_after_a_rollback_works(self) -> None:
        with abandoned(self.store):
            self.store.put_objects(make_objects(1, tag="lost"))
        with self.store.transaction():
            self.store.put_objects(make_objects(1, tag="kept"))
        assert [oid for oid, _, _ in self.store.iter_objects()] == [make_id("atom:kept0")]

    # -- threads ---------------------------------------------------------------

    def test_concurrent_compare_and_swap_loses_no_update(self) -> None:
        assert self.store.set_ref_if_equals(COUNTER, None, counter_value(0))
        with ThreadPoolExecutor(8) as pool:
            for future in [pool.submit(increment, self.store, 50) for _ in range(8)]:
                future.result()
        assert self.store.read_ref(COUNTER) == counter_value(400)

    def test_concurrent_transactions_stay_atomic(self) -> None:
        assert self.store.set_ref_if_equals(COUNTER, None, counter_value(0))

        def work(worker: int) -> None:
            for i in range(10):
                with self.store.transaction():
                    self.store.put_objects(make_objects(1, tag=f"{worker}-{i}-"))
                    increment(self.store, 1)

        with ThreadPoolExecutor(4) as pool:
            for future in [pool.submit(work, n) for n in range(4)]:
                future.result()
        assert self.store.read_ref(COUNTER) == counter_value(40)
        assert self.store.count_objects() == 40

    # -- lifecycle -------------------------------------------------------------

    def test_close_is_idempotent_and_later_use_fails(self) -> None:
        self.store.close()
        self.store.close()
        with pytest.raises(StoreError):
            self.store.get_object(make_id(0))
        with pytest.raises(StoreError):
            self.store.put_objects(make_objects(1))
        with pytest.raises(StoreError):
            self.store.set_ref_if_equals("HEAD", None, "x")
        with pytest.raises(StoreError), self.store.transaction():
            pass


class DerivedStoreContract(_StoreFixtures):
    """What a backend that keeps derived data promises (:class:`DerivedStore`)."""

    def derived(self, store: Store | None = None) -> DerivedStore:
        """The store as a :class:`DerivedStore`."""
        chosen = store if store is not None else self.store
        assert isinstance(chosen, DerivedStore)
        return chosen

    def test_a_blob_is_kept_replaced_and_forgotten(self) -> None:
        store = self.derived()
        assert store.read_derived("columns") is None
        blob = bytes(range(256)) * 4096  # a megabyte, every byte value
        store.write_derived("columns", blob)
        assert store.read_derived("columns") == blob
        store.write_derived("columns", b"\x00smaller")
        assert store.read_derived("columns") == b"\x00smaller"
        assert store.read_derived("other") is None
        store.write_derived("columns", None)
        assert store.read_derived("columns") is None
        store.write_derived("columns", None)  # forgetting twice is fine

    def test_a_blob_joins_the_transaction(self) -> None:
        store = self.derived()
        store.write_derived("columns", b"first")
        with abandoned(self.store):
            store.write_derived("columns", b"second")
            store.write_derived("other", b"new")
            assert store.read_derived("columns") == b"second"
        assert store.read_derived("columns") == b"first"
        assert store.read_derived("other") is None
        with self.store.transaction():
            store.write_derived("columns", None)
        assert store.read_derived("columns") is None


def reflog_entry(ref: str, n: int, why: str = "commit") -> ReflogEntry:
    """A reflog entry moving ``ref`` from commit ``n - 1`` to commit ``n``."""
    old = counter_value(n - 1) if n else None
    return ReflogEntry(ref, old, counter_value(n), "tester", 1_700_000_000_000_000 + n, why)


class ReflogStoreContract(_StoreFixtures):
    """What a backend that keeps a reflog promises (:class:`ReflogStore`)."""

    def reflog(self, store: Store | None = None) -> ReflogStore:
        """The store as a :class:`ReflogStore`."""
        chosen = store if store is not None else self.store
        assert isinstance(chosen, ReflogStore)
        return chosen

    def test_entries_come_back_per_ref_newest_first(self) -> None:
        store = self.reflog()
        assert store.read_reflog("HEAD") == []
        main = [reflog_entry("refs/heads/main", n) for n in range(3)]
        head = [reflog_entry("HEAD", n, "checkout: moving from a to b") for n in range(2)]
        store.append_reflog([main[0], head[0]])
        store.append_reflog([])
        store.append_reflog([main[1], main[2], head[1]])
        assert store.read_reflog("refs/heads/main") == main[::-1]
        assert store.read_reflog("HEAD") == head[::-1]
        assert store.read_reflog("refs/heads/main", 2) == main[:0:-1]
        assert store.read_reflog("refs/heads/main", 0) == []
        assert store.read_reflog("refs/heads/other") == []

    def test_a_deletion_and_unusual_text_round_trip(self) -> None:
        store = self.reflog()
        entry = ReflogEntry(
            "refs/heads/x", counter_value(1), None, "ágent \u2603", 0, "branch: deleted 'x' ✓"
        )
        store.append_reflog([entry])
        assert store.read_reflog("refs/heads/x") == [entry]

    def test_entries_join_the_transaction(self) -> None:
        store = self.reflog()
        store.append_reflog([reflog_entry("HEAD", 0)])
        with abandoned(self.store):
            store.append_reflog([reflog_entry("HEAD", 1)])
            assert len(store.read_reflog("HEAD")) == 2
        assert store.read_reflog("HEAD") == [reflog_entry("HEAD", 0)]


_SENTENCE = (
    "the agent remembers that the user prefers short answers about python decorators"
    " and keeps a note of every decision made during the review of the storage layer"
)


def prose(count: int, tag: str = "") -> list[tuple[bytes, str, bytes]]:
    """``count`` atoms of short, varied English prose: what a dictionary can learn from."""
    words = _SENTENCE.split()
    rows = []
    for i in range(count):
        text = " ".join(words[(i * 7 + j * 3) % len(words)] for j in range(12 + i % 9))
        data = f"{tag}memory {i}: {text}.".encode()
        rows.append((make_id(f"prose:{tag}{i}"), "atom", data))
    return rows


def versions(count: int) -> list[tuple[bytes, str, bytes]]:
    """``count`` tree-like objects, each the previous one with a line more (as versions are)."""
    rows, body = [], b""
    for i in range(count):
        body += hashlib.sha256(b"entry %d" % i).digest() + b" relevance %d\n" % i
        rows.append((make_id(f"version:{i}"), "tree", body))
    return rows


class PackedStoreContract(_StoreFixtures):
    """What a backend that keeps objects compressed and as deltas promises (:class:`PackedStore`).

    Whatever the encoding, every read returns the bytes that were written.
    """

    def packed(self, store: Store | None = None) -> PackedStore:
        """The store as a :class:`PackedStore`."""
        chosen = store if store is not None else self.store
        assert isinstance(chosen, PackedStore)
        return chosen

    def test_deltas_read_back_whole_and_chains_follow_their_bases(self) -> None:
        rows = versions(30)
        self.store.put_objects(rows)
        newest_first = [oid for oid, _, _ in reversed(rows)]
        plan: list[tuple[bytes, bytes | None]] = [(newest_first[0], None)]
        plan += zip(newest_first[1:], newest_first, strict=False)
        assert self.packed().set_delta_bases(plan) == 29
        assert self.packed().set_delta_bases(plan) == 0  # already so
        assert self.store.get_objects([oid for oid, _, _ in rows]) == {
            oid: StoredObject(kind, data) for oid, kind, data in rows
        }
        assert sorted(self.store.iter_objects("tree")) == sorted(rows)
        oid, kind, data = rows[0]  # the oldest: 29 deltas from the whole one
        assert self.store.get_object(oid) == StoredObject(kind, data)

    def test_a_node_read_as_a_base_reads_again_after_it_becomes_a_delta(self) -> None:
        rows = versions(3)
        self.store.put_objects(rows)
        (v0, _, d0), (v1, _, d1), (v2, _, d2) = rows
        self.packed().set_delta_bases([(v0, v1)])
        assert self.store.get_object(v0) == StoredObject("tree", d0)  # v1 decoded as a base
        self.packed().set_delta_bases([(v2, None), (v1, v2)])
        assert self.store.get_object(v1) == StoredObject("tree", d1)
        assert self.store.get_objects([v0, v1, v2]) == {
            v0: StoredObject("tree", d0),
            v1: StoredObject("tree", d1),
            v2: StoredObject("tree", d2),
        }

    def test_deleting_a_base_keeps_its_deltas_whole(self) -> None:
        rows = versions(4)
        self.store.put_objects(rows)
        ids = [oid for oid, _, _ in rows]
        self.packed().set_delta_bases([(ids[3], None), (ids[2], ids[3]), (ids[1], ids[2])])
        assert isinstance(self.store, CollectableStore)
        assert self.store.delete_objects([ids[2], ids[3]]) == 2
        assert self.store.get_objects(ids) == {
            ids[n]: StoredObject("tree", rows[n][2]) for n in (0, 1)
        }

    def test_a_dictionary_is_kept_when_it_pays_and_reads_survive_reopening(self) -> None:
        rows = prose(900)
        for start in range(0, len(rows), 300):  # too few atoms for one to be learnt on writing
            self.store.put_objects(rows[start : start + 300])
        assert self.packed().train_dictionary("atom")
        self.store.put_objects(prose(50, tag="after "))  # compressed with the new dictionary
        assert not self.packed().train_dictionary("commit")  # nothing to learn from
        expected = {oid: StoredObject(kind, data) for oid, kind, data in rows + prose(50, "after ")}
        assert self.store.get_objects(list(expected)) == expected
        if isinstance(self, PersistentStoreContract):
            other = self.track(self.reopen_store(self.store))
            assert other.get_objects(list(expected)) == expected

    def test_a_dictionary_trained_in_an_abandoned_transaction_is_forgotten(self) -> None:
        for start in range(0, 900, 300):
            self.store.put_objects(prose(900)[start : start + 300])
        with abandoned(self.store):
            assert self.packed().train_dictionary("atom")
        later = prose(20, tag="later ")
        self.store.put_objects(later)  # must not use the dictionary that was rolled back
        if isinstance(self, PersistentStoreContract):
            other = self.track(self.reopen_store(self.store))
            assert other.get_objects([oid for oid, _, _ in later]) == {
                oid: StoredObject(kind, data) for oid, kind, data in later
            }

    def test_a_bulk_write_learns_the_first_dictionary_once(self) -> None:
        rows = prose(1500)
        self.store.put_objects(rows)  # a bulk ingest: its atoms teach the dictionary
        assert not self.packed().train_dictionary("atom")  # it has one that pays already
        assert self.store.get_objects([oid for oid, _, _ in rows]) == {
            oid: StoredObject(kind, data) for oid, kind, data in rows
        }

    def test_many_small_writes_learn_it_too(self) -> None:
        rows = prose(1200)
        for start in range(0, len(rows), 40):  # an agent's commits, a few memories each
            self.store.put_objects(rows[start : start + 40])
        assert not self.packed().train_dictionary("atom")  # learnt after the first thousand
        assert self.store.get_objects([oid for oid, _, _ in rows]) == {
            oid: StoredObject(kind, data) for oid, kind, data in rows
        }


class TokenStoreContract(_StoreFixtures):
    """What a backend that keeps access tokens promises (:class:`~contextfs.tokens.TokenStore`)."""

    def tokens(self, store: Store | None = None) -> TokenStore:
        """The store as a :class:`~contextfs.tokens.TokenStore`."""
        chosen = store if store is not None else self.store
        assert isinstance(chosen, TokenStore)
        return chosen

    def test_tokens_are_kept_by_name_and_found_by_digest_only(self) -> None:
        store = self.tokens()
        assert store.list_tokens() == []
        secret, writer = mint("ci-bot", Scope.WRITE, created_by="ops", branches="agents/*", now=10)
        _, reader = mint("reader", Scope.READ, created_by="ops", expires=99, now=10)
        store.add_token(writer)
        store.add_token(reader)
        assert store.list_tokens() == [writer, reader]
        assert store.find_token(digest(secret)) == writer
        assert store.find_token(secret) is None  # the secret itself is no key
        assert store.find_token(digest("cfs_guess")) is None

    def test_a_name_is_taken_for_good(self) -> None:
        store = self.tokens()
        _, first = mint("bot", Scope.READ, created_by="ops", now=1)
        store.add_token(first)
        assert store.revoke_token("bot", 5)
        assert not store.revoke_token("bot", 6)  # revoked already
        assert not store.revoke_token("nobody", 6)
        _, again = mint("bot", Scope.ADMIN, created_by="ops", now=7)
        with pytest.raises(InvalidInputError, match="exists already"):
            store.add_token(again)
        (kept,) = store.list_tokens()
        assert kept.revoked == 5
        assert kept.scope is Scope.READ

    def test_tokens_join_the_transaction(self) -> None:
        store = self.tokens()
        _, kept = mint("kept", Scope.READ, created_by="ops", now=1)
        store.add_token(kept)
        with abandoned(self.store):
            _, lost = mint("lost", Scope.ADMIN, created_by="ops", now=1)
            store.add_token(lost)
            assert store.revoke_token("kept", 2)
        assert store.list_tokens() == [kept]


class PersistentStoreContract(_StoreFixtures):
    """What a backend whose data outlives the store object promises on top."""

    def reopen_store(self, store: Store) -> Store:
        """Open another handle on the data ``store`` holds (``store`` may still be open)."""
        raise NotImplementedError

    def reopen(self) -> Store:
        """Close the main store and open it again."""
        self.store.close()
        self.store = self.track(self.reopen_store(self.store))
        return self.store

    def test_objects_and_refs_survive_reopening(self) -> None:
        objects = make_objects(50)
        self.store.put_objects(objects)
        assert self.store.set_ref_if_equals("HEAD", None, "ref: refs/heads/main")
        with self.store.transaction():
            assert self.store.set_ref_if_equals("refs/heads/main", None, counter_value(9))
        store = self.reopen()
        assert list(store.iter_objects()) == sorted(objects)
        assert store.list_refs() == {
            "HEAD": "ref: refs/heads/main",
            "refs/heads/main": counter_value(9),
        }

    def test_an_abandoned_transaction_leaves_nothing_after_reopening(self) -> None:
        self.store.put_objects(make_objects(2, tag="kept"))
        with abandoned(self.store):
            self.store.put_objects(make_objects(300, tag="lost"))
            assert self.store.set_ref_if_equals("refs/heads/main", None, counter_value(1))
        store = self.reopen()
        assert list(store.iter_objects()) == sorted(make_objects(2, tag="kept"))
        assert store.list_refs() == {}

    def test_two_handles_see_each_others_commits_only(self) -> None:
        other = self.track(self.reopen_store(self.store))
        oid = make_id("shared")
        with self.store.transaction():
            self.store.put_objects([(oid, "atom", b"shared")])
            assert self.store.set_ref_if_equals("refs/heads/main", None, oid.hex())
            assert other.get_object(oid) is None
            assert other.read_ref("refs/heads/main") is None
        assert other.get_object(oid) == StoredObject("atom", b"shared")
        assert other.read_ref("refs/heads/main") == oid.hex()
        assert other.set_ref_if_equals("refs/heads/main", oid.hex(), None)
        assert self.store.read_ref("refs/heads/main") is None

    def test_derived_blobs_survive_reopening_and_other_handles_see_them(self) -> None:
        if not isinstance(self.store, DerivedStore):
            return  # the backend keeps no derived data: nothing to survive
        other = self.track(self.reopen_store(self.store))
        assert isinstance(other, DerivedStore)
        self.store.write_derived("columns", b"kept")
        assert other.read_derived("columns") == b"kept"
        store = self.reopen()
        assert isinstance(store, DerivedStore)
        assert store.read_derived("columns") == b"kept"

    def test_the_reflog_survives_reopening(self) -> None:
        if not isinstance(self.store, ReflogStore):
            return  # the backend keeps no reflog: nothing to survive
        entries = [reflog_entry("refs/heads/main", n) for n in range(3)]
        self.store.append_reflog(entries)
        store = self.reopen()
        assert isinstance(store, ReflogStore)
        assert store.read_reflog("refs/heads/main") == entries[::-1]

    def test_tokens_survive_reopening_and_other_handles_see_them(self) -> None:
        if not isinstance(self.store, TokenStore):
            return  # the backend keeps no tokens
        other = self.track(self.reopen_store(self.store))
        secret, record = mint("shared", Scope.WRITE, created_by="ops", now=1)
        self.store.add_token(record)
        assert isinstance(other, TokenStore)
        assert other.find_token(digest(secret)) == record
        store = self.reopen()
        assert isinstance(store, TokenStore)
        assert store.list_tokens() == [record]

    def test_compare_and_swap_is_exclusive_across_handles(self) -> None:
        other = self.track(self.reopen_store(self.store))
        assert self.store.set_ref_if_equals(COUNTER, None, counter_value(0))
        assert not other.set_ref_if_equals(COUNTER, None, counter_value(0))
        handles = [self.store, other] * 2
        with ThreadPoolExecutor(len(handles)) as pool:
            for future in [pool.submit(increment, store, 25) for store in handles]:
                future.result()
        assert self.store.read_ref(COUNTER) == counter_value(100)
        assert other.read_ref(COUNTER) == counter_value(100)
