"""The companion module's (``contextfs_expander``) demo, run with only its imports changed.

DESIGN.md section 1: the seeds' demos must run against ContextFS with only the
import lines changed.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contextfs import (
    T_STRING,
    CompressedContext,
    ContextQuery,
    ExpanderFunctor,
    InMemoryContextStore,
    MemoryAtom,
)


def demo() -> tuple[list[MemoryAtom], list[str]]:
    store = InMemoryContextStore()
    now = datetime.now()
    a1 = MemoryAtom("User prefers concise answers", T_STRING, now, "src1", 0.9)
    a2 = MemoryAtom("Project uses Python 3.11", T_STRING, now, "src2", 0.95)
    a3 = MemoryAtom("Deadline is Friday", T_STRING, now, "src3", 0.7)

    root = CompressedContext(None, [a1, a2], [], set(), {"version": 1})
    root_hash = store.put(root)
    delta = CompressedContext(root_hash, [a3], [], {a1.content_hash}, {"version": 2})
    delta_hash = store.put(delta)

    expander = ExpanderFunctor(store)
    expanded = expander.expand(delta)
    print(expanded.to_prompt_context())

    query = ContextQuery(min_relevance=0.9)
    results = query.apply(expanded)
    for atom in results:
        print(f"{atom.content} ({atom.relevance_score})")
    return results, [root_hash, delta_hash, *expanded.expansion_path]


def test_seed_demo_output(capsys: pytest.CaptureFixture[str]) -> None:
    results, hashes = demo()
    assert capsys.readouterr().out.splitlines() == [
        "[String] Project uses Python 3.11",
        "[String] Deadline is Friday",
        "Project uses Python 3.11 (0.95)",
    ]
    assert [(a.content, a.source_hash, a.relevance_score) for a in results] == [
        ("Project uses Python 3.11", "src2", 0.95)
    ]
    root_hash, delta_hash, *path = hashes
    assert path == [root_hash, delta_hash]
    assert all(len(h) == 64 for h in path)


def test_seed_demo_timestamps_are_kept_in_utc() -> None:
    results, _ = demo()
    # The demo's naive datetime.now() is read as local time and stored in UTC.
    assert results[0].timestamp.tzinfo is UTC
