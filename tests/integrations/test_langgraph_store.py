"""ContextFSStore keeps LangGraph's store contract, and versions every write.

The behaviours of LangGraph's own store tests (``libs/checkpoint/tests/test_store.py``),
written anew for our store, then what only a versioned store can do.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings
from langgraph.store.base import InvalidNamespaceError, PutOp

from contextfs.errors import InvalidInputError, UncommittedChangesError
from contextfs.integrations.langgraph import ContextFSStore, IndexEmbedder
from contextfs.repo import Repository


@pytest.fixture
def store() -> Iterator[ContextFSStore]:
    with ContextFSStore() as opened:
        yield opened


def _fill(store: ContextFSStore, namespaces: list[tuple[str, ...]]) -> None:
    for i, ns in enumerate(namespaces):
        store.put(ns, f"id_{i}", {"data": f"value_{i:02d}"})


def test_list_namespaces_by_prefix_suffix_depth_and_page(store: ContextFSStore) -> None:
    _fill(
        store,
        [
            ("a", "b", "c"),
            ("a", "b", "d", "e"),
            ("a", "b", "d", "i"),
            ("a", "b", "f"),
            ("a", "c", "f"),
            ("b", "a", "f"),
            ("users", "123"),
            ("users", "456", "settings"),
            ("admin", "users", "789"),
        ],
    )
    ab = [("a", "b", "c"), ("a", "b", "d", "e"), ("a", "b", "d", "i"), ("a", "b", "f")]
    assert store.list_namespaces(prefix=("a", "b")) == ab
    assert store.list_namespaces(suffix=("f",)) == [
        ("a", "b", "f"),
        ("a", "c", "f"),
        ("b", "a", "f"),
    ]
    assert store.list_namespaces(prefix=("a",), suffix=("f",)) == [("a", "b", "f"), ("a", "c", "f")]
    assert store.list_namespaces(prefix=("a", "b"), max_depth=3) == [
        ("a", "b", "c"),
        ("a", "b", "d"),
        ("a", "b", "f"),
    ]
    assert store.list_namespaces(prefix=("a", "b"), limit=2) == ab[:2]
    assert store.list_namespaces(prefix=("a", "b"), offset=2) == ab[2:]
    assert store.list_namespaces(prefix=("a", "*", "f")) == [("a", "b", "f"), ("a", "c", "f")]
    assert store.list_namespaces(suffix=("*", "f")) == [
        ("a", "b", "f"),
        ("a", "c", "f"),
        ("b", "a", "f"),
    ]
    assert store.list_namespaces(prefix=("nonexistent",)) == []
    assert store.list_namespaces(prefix=("users", "123")) == [("users", "123")]
    assert store.list_namespaces(max_depth=1) == [("a",), ("admin",), ("b",), ("users",)]


def test_list_namespaces_when_empty_and_paged(store: ContextFSStore) -> None:
    assert store.list_namespaces() == []
    for i in range(20):
        store.put(("namespace", f"sub_{i:02d}"), f"id_{i:02d}", {"data": i})
    page = store.list_namespaces(prefix=("namespace",), limit=5, offset=15)
    assert page == [("namespace", f"sub_{i:02d}") for i in range(15, 20)]


def test_namespace_rules_are_langgraphs(store: ContextFSStore) -> None:
    doc = {"foo": "bar"}
    for bad in [(), ("the", "thing.about"), ("some", "fun", ""), ("langgraph", "foo")]:
        with pytest.raises(InvalidNamespaceError):
            store.put(bad, "foo", doc)
        with pytest.raises(InvalidNamespaceError):
            asyncio.run(store.aput(bad, "foo", doc))
    store.put(("foo", "langgraph", "foo"), "bar", doc)
    assert store.get(("foo", "langgraph", "foo"), "bar").value == doc  # type: ignore[union-attr]
    store.batch([PutOp(("langgraph", "foo"), "bar", doc)])  # past the public API, as LangGraph's
    assert store.get(("langgraph", "foo"), "bar").value == doc  # type: ignore[union-attr]


def test_put_get_update_delete_keep_the_times(store: ContextFSStore) -> None:
    store.put(("users", "u1"), "prefs", {"tone": "short"})
    first = store.get(("users", "u1"), "prefs")
    assert first is not None
    assert first.value == {"tone": "short"}
    assert first.created_at == first.updated_at
    store.put(("users", "u1"), "prefs", {"tone": "long"})
    second = store.get(("users", "u1"), "prefs")
    assert second is not None
    assert second.value == {"tone": "long"}
    assert second.created_at == first.created_at  # created once, updated since
    assert second.updated_at >= first.updated_at
    store.delete(("users", "u1"), "prefs")
    assert store.get(("users", "u1"), "prefs") is None
    assert store.get(("users", "u1"), "missing") is None


def test_search_filters_pages_and_ranks(store: ContextFSStore) -> None:
    docs = {
        "doc1": {"text": "short text", "n": 1},
        "doc2": {"text": "longer text document", "n": 2},
        "doc3": {"text": "longest text document here", "n": 3},
        "doc4": {"description": "text in description field", "n": 4},
    }
    for key, value in docs.items():
        store.put(("test",), key, value)
    store.put(("other",), "doc9", {"text": "longer text document", "n": 9})
    assert {r.key for r in store.search(("test",))} == set(docs)
    assert [r.key for r in store.search(("test",), filter={"n": 2})] == ["doc2"]
    assert sorted(r.key for r in store.search(("test",), filter={"n": {"$gte": 3}})) == [
        "doc3",
        "doc4",
    ]
    assert [r.key for r in store.search(("test",), filter={"n": {"$ne": 1}}, limit=1)] != []
    found = store.search(("test",), query="longest document")
    assert found[0].key == "doc3"
    assert found[0].score is not None
    assert all(r.namespace == ("test",) for r in found)
    everything = store.search((), limit=10)
    assert len(everything) == 5
    assert len(store.search((), limit=2, offset=4)) == 1


def test_async_calls_answer_as_the_sync_ones(store: ContextFSStore) -> None:
    async def main() -> None:
        await asyncio.gather(
            store.aput(("test",), "same", {"value": "same"}),
            store.aput(("test",), "different", {"value": "different"}),
        )
        same, again, different = await asyncio.gather(
            store.aget(("test",), "same"),
            store.aget(("test",), "same"),
            store.aget(("test",), "different"),
        )
        assert same == again
        assert same is not None
        assert same.value == {"value": "same"}
        assert different is not None
        assert different.value == {"value": "different"}
        hits = await store.asearch(("test",), filter={"value": "same"})
        assert [h.key for h in hits] == ["same"]
        assert await store.alist_namespaces() == [("test",)]
        await store.adelete(("test",), "same")
        assert await store.aget(("test",), "same") is None

    asyncio.run(main())


def test_every_batch_that_writes_is_one_commit_with_history(tmp_path: Path) -> None:
    with ContextFSStore(Repository.init(tmp_path / "r"), author="agent-1") as store:
        store.batch(
            [
                PutOp(("users", "u1"), "prefs", {"tone": "short"}),
                PutOp(("users", "u1"), "name", {"name": "Ada"}),
            ]
        )
        store.put(("users", "u1"), "prefs", {"tone": "long"})
        store.delete(("users", "u1"), "name")
        store.get(("users", "u1"), "prefs")  # reads commit nothing
        log = list(store.repo.log())
        assert [c.commit.author for c in log] == ["agent-1"] * 3
        assert log[0].commit.message == "LangGraph store: delete users/u1/name"
        versions = store.history(("users", "u1"), "prefs")
        assert [v.item.value for v in versions if v.item] == [{"tone": "long"}, {"tone": "short"}]
        name = store.history(("users", "u1"), "name")
        assert next(v.item for v in name) is None  # deleted last
        past = store.at("HEAD~2")
        assert past.get(("users", "u1"), "prefs").value == {"tone": "short"}  # type: ignore[union-attr]
        assert past.get(("users", "u1"), "name").value == {"name": "Ada"}  # type: ignore[union-attr]
        with pytest.raises(Exception, match="cannot be written"):
            past.put(("users", "u1"), "prefs", {"tone": "changed"})
    with ContextFSStore(tmp_path / "r") as reopened:  # it persists, found by path
        assert reopened.get(("users", "u1"), "prefs").value == {"tone": "long"}  # type: ignore[union-attr]
        assert reopened.repo.verify().ok


_WRITER = """
import sys
from contextfs.integrations.langgraph import ContextFSStore
with ContextFSStore(sys.argv[1], author=sys.argv[2]) as store:
    for i in range(15):
        store.put(("agents", sys.argv[2]), f"note-{i}", {"i": i})
"""


def test_writers_in_several_processes_lose_nothing(tmp_path: Path) -> None:
    Repository.init(tmp_path / "r").close()
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path / "r"), name])
        for name in ("a", "b", "c")
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0, 0]
    with ContextFSStore(tmp_path / "r") as store:
        for name in ("a", "b", "c"):
            assert len(store.search(("agents", name), limit=100)) == 15
        assert len(list(store.repo.log())) == 45


def test_a_langgraph_agent_writes_commits_that_the_cli_shows_and_reverts(tmp_path: Path) -> None:
    """A small StateGraph whose node reads and writes memories through the store."""
    from typing import TypedDict

    from click.testing import CliRunner
    from langgraph.graph import END, START, StateGraph
    from langgraph.store.base import BaseStore

    from contextfs.cli.main import cli

    class State(TypedDict):
        user: str
        said: str
        known: list[str]

    def remember(state: State, *, store: BaseStore) -> dict[str, list[str]]:
        namespace = ("users", state["user"], "facts")
        known = [item.value["fact"] for item in store.search(namespace)]
        store.put(namespace, f"fact-{len(known)}", {"fact": state["said"]})
        return {"known": known}

    builder = StateGraph(State)
    builder.add_node("remember", remember)
    builder.add_edge(START, "remember")
    builder.add_edge("remember", END)
    Repository.init(tmp_path / "memory").close()
    with ContextFSStore(tmp_path / "memory", author="support-agent") as store:
        graph = builder.compile(store=store)
        graph.invoke({"user": "ada", "said": "prefers short answers", "known": []})
        second = graph.invoke({"user": "ada", "said": "works in Paris", "known": []})
        assert second["known"] == ["prefers short answers"]
    runner = CliRunner()
    base = ["--repo", str(tmp_path / "memory")]
    shown = runner.invoke(cli, [*base, "log", "--json"])
    assert shown.exit_code == 0, shown.output
    commits = __import__("json").loads(shown.stdout)
    assert [c["message"] for c in commits] == [
        "LangGraph store: put users/ada/facts/fact-1",
        "LangGraph store: put users/ada/facts/fact-0",
    ]
    assert {c["author"] for c in commits} == {"support-agent"}
    undone = runner.invoke(cli, [*base, "revert", commits[0]["id"]])
    assert undone.exit_code == 0, undone.output
    with ContextFSStore(tmp_path / "memory") as store:
        facts = [i.value["fact"] for i in store.search(("users", "ada", "facts"))]
        assert facts == ["prefers short answers"]


# -- an index config, as LangGraph's stores take one --------------------------------------


class LetterEmbeddings(Embeddings):
    """A LangChain Embeddings: each text as the counts of its letters (deterministic)."""

    dims = 26

    def _vector(self, text: str) -> list[float]:
        counts = [0.0] * self.dims
        for char in text.lower():
            if "a" <= char <= "z":
                counts[ord(char) - ord("a")] += 1.0
        return counts

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


@pytest.fixture
def indexed() -> Iterator[ContextFSStore]:
    with ContextFSStore(index={"dims": 26, "embed": LetterEmbeddings()}) as opened:
        yield opened


def test_an_index_config_ranks_by_its_embeddings(indexed: ContextFSStore) -> None:
    assert indexed.index_config is not None
    indexed.put(("test",), "doc1", {"text": "zany zebra Xerxes"})
    indexed.put(("test",), "doc2", {"text": "something about dogs"})
    indexed.put(("test",), "doc3", {"text": "text about birds"})
    first = indexed.search(("test",), query="Zany Xerxes")
    assert first[0].key == "doc1"
    before = first[0].score
    assert before is not None
    indexed.put(("test",), "doc1", {"text": "new text about dogs"})
    after = next(r.score for r in indexed.search(("test",), query="Zany Xerxes") if r.key == "doc1")
    assert after is not None
    assert after < before
    indexed.put(("test",), "doc4", {"text": "new text about dogs"}, index=False)
    found = indexed.search(("test",), query="new text about dogs", limit=3)
    assert "doc4" not in [r.key for r in found]
    everything = indexed.search(("test",), query="new text about dogs", limit=10)
    assert everything[-1].key == "doc4"  # unindexed: last, unscored
    assert everything[-1].score is None


def test_index_fields_filters_and_pages(tmp_path: Path) -> None:
    Repository.init(tmp_path / "r").close()
    config = {"dims": 26, "embed": LetterEmbeddings(), "fields": ["title"]}
    with ContextFSStore(tmp_path / "r", index=config) as store:  # type: ignore[arg-type]
        docs = [
            ("doc1", {"title": "red apple", "color": "red", "score": 4.5}),
            ("doc2", {"title": "red car", "color": "red", "score": 3.0}),
            ("doc3", {"title": "green apple", "color": "green", "score": 4.0}),
            ("doc4", {"title": "blue car", "color": "blue", "score": 3.5}),
        ]
        for key, value in docs:
            store.put(("test",), key, value)
        red = store.search(("test",), query="apple", filter={"color": "red"})
        assert next(r.key for r in red) == "doc1"
        assert len(red) == 2
        high = store.search(("test",), query="bbbbluuu", filter={"score": {"$gt": 3.2}})
        assert len(high) == 3
        assert high[0].key == "doc4"
        one = store.search(
            ("test",), query="apple", filter={"score": {"$gte": 4.0}, "color": "green"}
        )
        assert [r.key for r in one] == ["doc3"]
        page1 = store.search(("test",), query="car", limit=2)
        page2 = store.search(("test",), query="car", limit=2, offset=2)
        assert len(page1) == len(page2) == 2
        assert {r.key for r in page1}.isdisjoint(r.key for r in page2)
        for query in ("", None, "test " * 100, "test!@#$%^&*()"):
            assert len(store.search(("test",), query=query)) == 4
    with pytest.raises(ValueError, match="open repository"):
        ContextFSStore(Repository.memory(), index=config)  # type: ignore[arg-type]


def test_a_budgeted_context_of_one_namespace(store: ContextFSStore) -> None:
    store.put(("users", "ada"), "prefs", {"likes": "short answers about trains"})
    store.put(("users", "ada"), "city", {"lives in": "Paris"})
    store.put(("users", "bob"), "prefs", {"likes": "long answers about trains"})
    prompt = store.context(("users", "ada"), "trains", budget=200)
    assert "short answers" in prompt.text
    assert "Bob" not in prompt.text
    assert "long answers" not in prompt.text
    assert 0 < prompt.tokens <= 200
    assert store.repo.verify_receipt(prompt.receipt).ok  # the version that made it, proven


def test_each_field_is_embedded_on_its_own_and_the_best_one_scores() -> None:
    """As LangGraph's stores score: an item is as near as its nearest field."""
    config = {"dims": 26, "embed": LetterEmbeddings(), "fields": ["key0", "key1", "key3"]}
    with ContextFSStore(index=config) as store:  # type: ignore[arg-type]
        store.put(("test",), "doc1", {"key0": "aaa", "key1": "xxx", "key3": "zzz"})
        store.put(("test",), "doc2", {"key0": "uuu", "key1": "vvv", "key3": "xxx"})
        store.put(("test",), "doc3", {"key0": "qqq"}, index=["key0"])
        found = {r.key: r.score for r in store.search(("test",), query="xxx")}
        assert found["doc1"] == pytest.approx(1.0)
        assert found["doc2"] == pytest.approx(1.0)
        assert found["doc3"] == pytest.approx(0.0)  # scored, though nothing alike
        assert store.search(("test",), query="qqq")[0].key == "doc3"


def test_a_write_never_commits_someone_elses_staged_changes(tmp_path: Path) -> None:
    with Repository.init(tmp_path / "r") as repo:
        repo.add("A note the user staged and has not committed", "Fact")
        store = ContextFSStore(repo)
        with pytest.raises(UncommittedChangesError, match="staged changes"):
            store.put(("users", "u1"), "prefs", {"tone": "short"})
        assert repo.head() is None
        repo.commit("the user's note")
        store.put(("users", "u1"), "prefs", {"tone": "short"})
        assert next(c.commit.message for c in repo.log()).startswith("LangGraph store: put")


# -- time to live (real time: TTLs of a fraction of a second) -------------------------------

SHORT = 0.5 / 60  # half a second, in minutes


def test_expired_items_are_omitted_and_swept_in_one_commit(tmp_path: Path) -> None:
    Repository.init(tmp_path / "r").close()
    config = {"default_ttl": SHORT, "omit_expired": True}
    with ContextFSStore(tmp_path / "r", ttl=config) as store:  # type: ignore[arg-type]
        assert store.supports_ttl
        store.put(("s",), "short", {"v": 1})  # the default TTL
        store.put(("s",), "forever", {"v": 2}, ttl=None)
        assert store.get(("s",), "short") is not None
        time.sleep(0.7)
        assert store.get(("s",), "short") is None  # expired: omitted before any sweep
        assert [r.key for r in store.search(("s",))] == ["forever"]
        assert store.sweep_ttl() == 1
        assert store.sweep_ttl() == 0
        assert next(store.repo.log()).commit.message == "LangGraph store: expire 1 item(s)"
        assert store.get(("s",), "forever") is not None


def test_a_read_refreshes_the_ttl_for_every_store_on_the_repository(tmp_path: Path) -> None:
    Repository.init(tmp_path / "r").close()
    with ContextFSStore(tmp_path / "r") as reader, ContextFSStore(tmp_path / "r") as sweeper:
        reader.put(("s",), "read", {"v": 1}, ttl=SHORT * 2)  # one second
        reader.put(("s",), "unread", {"v": 2}, ttl=SHORT * 2)
        time.sleep(0.6)
        assert reader.get(("s",), "read") is not None  # refreshed here
        time.sleep(0.6)  # 1.2 s after the puts, 0.6 s after the read
        assert sweeper.sweep_ttl() == 1  # another store sees the refresh
        assert [r.key for r in sweeper.search(("s",), refresh_ttl=False)] == ["read"]
        assert reader.get(("s",), "read", refresh_ttl=False) is not None


def test_the_sweeper_thread_sweeps_until_stopped() -> None:
    with ContextFSStore(ttl={"default_ttl": SHORT, "sweep_interval_minutes": 0.2 / 60}) as store:
        store.put(("s",), "k", {"v": 1})
        store.start_ttl_sweeper()
        deadline = time.monotonic() + 10
        while store.search(("s",), refresh_ttl=False) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert store.stop_ttl_sweeper(timeout=5)
        assert store.search(("s",)) == []


# -- what a review found --------------------------------------------------------------------


def test_a_sweep_never_deletes_what_changed_since_it_looked(tmp_path: Path) -> None:
    Repository.init(tmp_path / "r").close()
    with ContextFSStore(tmp_path / "r") as store:
        store.put(("s",), "k", {"v": "old"}, ttl=SHORT)
        time.sleep(0.7)
        # What a sweep saw before another writer re-put the key: an atom that is gone now.
        store.put(("s",), "k", {"v": "fresh"}, ttl=60)
        address = (("s",), "k")
        deleted = store._write(  # the sweep's own write, with what it saw
            {address: PutOp(("s",), "k", None)}, message="expire {}", expiring={address: "0" * 64}
        )
        assert deleted == 0
        assert store.get(("s",), "k").value == {"v": "fresh"}  # type: ignore[union-attr]


def test_values_read_back_as_every_reader_sees_them(tmp_path: Path) -> None:
    Repository.init(tmp_path / "r").close()
    with ContextFSStore(tmp_path / "r") as store:
        store.put(("s",), "k", {"pair": (1, 2), "nested": {"n": [1.5]}})
        assert store.get(("s",), "k").value == {"pair": [1, 2], "nested": {"n": [1.5]}}  # type: ignore[union-attr]
        with pytest.raises(InvalidInputError, match="JSON object"):
            store.put(("s",), "bad", {1: "a key that is not text"})  # type: ignore[dict-item]
    with ContextFSStore(tmp_path / "r") as again:
        assert again.get(("s",), "k").value == {"pair": [1, 2], "nested": {"n": [1.5]}}  # type: ignore[union-attr]


def test_namespace_labels_may_hold_any_text_langgraph_allows(store: ContextFSStore) -> None:
    store.put(("a\nb", "c"), "k", {"v": 1})
    assert store.get(("a\nb", "c"), "k") is not None
    assert store.list_namespaces(prefix=("a\nb",)) == [("a\nb", "c")]
    assert "v" in store.context(("a\nb",), budget=100).text


def test_another_process_write_is_followed_not_rebuilt(tmp_path: Path) -> None:
    Repository.init(tmp_path / "r").close()
    with ContextFSStore(tmp_path / "r") as first, ContextFSStore(tmp_path / "r") as second:
        for i in range(30):
            first.put(("s",), f"k{i}", {"i": i})
        assert len(second.search(("s",), limit=100)) == 30
        first.put(("s",), "k0", {"i": "changed"})
        first.delete(("s",), "k1")
        assert second.get(("s",), "k0").value == {"i": "changed"}  # type: ignore[union-attr]
        assert second.get(("s",), "k1") is None
        assert len(second.search(("s",), limit=100)) == 29


def test_async_embedding_functions_and_model_ids(tmp_path: Path) -> None:
    async def letters(texts: list[str]) -> list[list[float]]:
        return LetterEmbeddings().embed_documents(texts)

    async def main() -> None:
        with ContextFSStore(index={"dims": 26, "embed": letters}) as store:
            await store.aput(("t",), "z", {"text": "zzz zebra"})
            await store.aput(("t",), "a", {"text": "aaa apple"})
            found = await store.asearch(("t",), query="zebra")
            assert found[0].key == "z"

    asyncio.run(main())
    one = IndexEmbedder({"dims": 26, "embed": letters})
    other = IndexEmbedder({"dims": 26, "embed": LetterEmbeddings()})
    assert one.id != other.id  # another model: its vectors are never mixed up


def test_close_stops_the_sweeper_and_old_vectors_are_let_go() -> None:
    store = ContextFSStore(
        index={"dims": 26, "embed": LetterEmbeddings()},
        ttl={"sweep_interval_minutes": 1},
    )
    for round_ in range(20):
        store.put(("t",), "k", {"text": f"version {round_}"})
        store.search(("t",), query="version")
    assert len(store._field_vectors) == 1
    sweeper = store.start_ttl_sweeper()
    store.close()
    assert not sweeper.is_alive()
