"""Reading mem0 exports and LangGraph stores as memories."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from langgraph.store.base import PutOp
from langgraph.store.memory import InMemoryStore
from langgraph.store.sqlite import SqliteStore

from contextfs.interchange import ImportFileError, parse_mem0, read_langgraph_store, to_atoms
from contextfs.interchange.langgraph import PAGE_SIZE, item_text
from contextfs.model.timeutil import to_micros

# The shape of mem0's get_all(): results with ids, times, scopes and categories.
MEM0_EXPORT = {
    "results": [
        {
            "id": "0b6f1a2c-6d1e-4f0e-9a57-3c1d2e3f4a5b",
            "memory": "Prefers vegetarian food",
            "hash": "a1b2c3",
            "metadata": None,
            "categories": ["food", "preferences"],
            "created_at": "2024-07-20T01:30:21.233948-07:00",
            "updated_at": "2024-07-21T09:00:00-07:00",
            "user_id": "alex",
        },
        {
            "id": "5e9c0d4b-1111-4a3b-8c2d-9e8f7a6b5c4d",
            "memory": "Is allergic to peanuts",
            "created_at": "2024-07-22T10:00:00Z",
            "user_id": "alex",
            "agent_id": "diet-bot",
        },
    ],
    "count": 2,
}


def test_mem0_memories_keep_their_ids_times_scopes_and_categories() -> None:
    memories = parse_mem0(json.dumps(MEM0_EXPORT, indent=2), "mem0.json")
    assert [(m.line, m.content, m.anchor, m.tags, m.type) for m in memories] == [
        (
            3,
            "Prefers vegetarian food",
            "0b6f1a2c-6d1e-4f0e-9a57-3c1d2e3f4a5b",
            ("food", "preferences", "user:alex"),
            "Fact",
        ),
        (
            16,
            "Is allergic to peanuts",
            "5e9c0d4b-1111-4a3b-8c2d-9e8f7a6b5c4d",
            ("user:alex", "agent:diet-bot"),
            "Fact",
        ),
    ]
    assert memories[0].timestamp == to_micros(datetime(2024, 7, 21, 16, 0, tzinfo=UTC))
    assert memories[1].timestamp == to_micros(datetime(2024, 7, 22, 10, 0, tzinfo=UTC))


def test_a_bare_list_is_an_export_too() -> None:
    memories = parse_mem0('[{"memory": "one"}, {"memory": "two"}]', "list.json")
    assert [(m.line, m.content, m.anchor, m.timestamp) for m in memories] == [
        (1, "one", "", None),
        (1, "two", "", None),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"results": [\n  {"memory": "ok"},\n  {"memory": 7}\n]}', "3: memory 2 has no text"),
        ('[\n{"memory": "x", "created_at": "yesterday"}\n]', "2: memory 1 has a 'created_at'"),
        ('[\n{"memory": "x", "categories": "food"}\n]', "2: memory 1 has 'categories' that"),
        ('[\n  "just text"\n]', "2: memory 1 is not an object (got str)"),
        ('{"results": [\n  {"memory": "x",}\n]}', "2: not valid JSON"),
        ('{"count": 0}', "1: not a mem0 export"),
    ],
)
def test_bad_mem0_input_names_the_file_and_line(text: str, message: str) -> None:
    with pytest.raises(ImportFileError) as caught:
        parse_mem0(text, "mem0.json")
    assert str(caught.value).startswith(f"mem0.json:{message}")
    assert str(caught.value).endswith("; nothing was imported")


def test_store_items_become_memories() -> None:
    store = InMemoryStore()
    store.put(("users", "ada"), "tone", {"content": "Ada likes short answers"})
    store.put(("users", "ada"), "profile", {"name": "Ada", "city": "Lisbon"})
    store.put(("memories",), "m1", {"kind": "Memory", "content": {"content": "Uses vim"}})
    memories = read_langgraph_store(store)
    assert sorted((m.content, m.tags, m.anchor, m.line) for m in memories) == sorted(
        [
            ("Ada likes short answers", ("users/ada",), "users/ada/tone", None),
            ('{"city": "Lisbon", "name": "Ada"}', ("users/ada",), "users/ada/profile", None),
            ("Uses vim", ("memories",), "memories/m1", None),
        ]
    )
    stamps = [m.timestamp for m in memories]
    assert stamps == sorted(stamps)  # oldest first
    assert read_langgraph_store(store, namespace=("memories",))[0].content == "Uses vim"


def test_every_page_of_a_large_store_is_read(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "store.db", check_same_thread=False, isolation_level=None)
    store = SqliteStore(conn)
    store.setup()
    count = PAGE_SIZE * 2 + 7
    store.batch(
        [PutOp(("notes", str(n % 3)), f"k{n}", {"text": f"note number {n}"}) for n in range(count)]
    )
    memories = read_langgraph_store(store)
    conn.close()
    assert len(memories) == count
    assert {m.content for m in memories} == {f"note number {n}" for n in range(count)}


def test_values_that_are_more_than_text_stay_whole() -> None:
    assert item_text({"content": "x", "source": "chat"}) == '{"content": "x", "source": "chat"}'
    assert item_text({"data": "  spaced  "}) == "spaced"
    assert item_text({"content": ""}) == '{"content": ""}'


def test_json_too_deep_or_numbers_too_long_are_one_line_errors() -> None:
    with pytest.raises(ImportFileError, match=r"^deep.json: nested too deeply to read"):
        parse_mem0('{"results": ' + "[" * 100_000 + "]" * 100_000 + "}", "deep.json")
    with pytest.raises(ImportFileError, match=r"^long.json: .*digits"):
        parse_mem0('[{"memory": "x", "id": ' + "9" * 5000 + "}]", "long.json")


def test_a_memory_read_twice_keeps_the_tags_of_both() -> None:
    memories = parse_mem0(
        '[{"memory": "Prefers dark mode", "user_id": "alice"},'
        ' {"memory": "Prefers dark mode", "user_id": "bob"}]',
        "m.json",
    )
    atoms = to_atoms(memories, "m.json", label="m.json", default_time=0)
    assert [(a.content, a.tags) for a in atoms] == [
        ("Prefers dark mode", ("user:alice", "user:bob"))
    ]
