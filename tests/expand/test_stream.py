"""Streaming expansion: limits per chunk, one final chunk, laziness, backpressure, cancellation.

DESIGN.md section 2 defect 4 and section 5: the seed expanded everything before
the first chunk, ignored ``max_tokens_per_chunk`` and had no backpressure.
Nothing here mocks the store: repositories are real (memory, SQLite and
PostgreSQL), and the only wrapper counts the atoms pulled from the real
``ranked_atoms`` iterator.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contextfs import (
    T_INT,
    T_STRING,
    CompressedContext,
    ExpanderFunctor,
    InMemoryContextStore,
    InvalidInputError,
    MemoryAtom,
    MissingObjectError,
    Repository,
    TiktokenTokenizer,
    Tokenizer,
    UnknownRevisionError,
    WordEstimateTokenizer,
)
from contextfs.discovery import DATABASE
from contextfs.expand import ExpansionChunk, StreamingExpander, chunk_atoms, iter_chunks
from contextfs.expand.context import render_line
from contextfs.expand.stream import PRODUCER_THREAD_PREFIX
from contextfs.history.tree import Scorer, recency_scorer
from contextfs.model.timeutil import to_micros
from contextfs.store.postgres import PostgresStore

from ..conftest import RepoBackend

T0 = datetime(2024, 1, 1, tzinfo=UTC)
WAIT = 20.0  # seconds: generous bound for anything a loaded machine must finish


# -- helpers -----------------------------------------------------------------


def atom(i: int, relevance: float = 0.5, *, content: str | None = None) -> MemoryAtom:
    text = content if content is not None else f"fact number {i} about the project"
    return MemoryAtom(text, T_STRING, T0 + timedelta(seconds=i % 7), "test", relevance)


def tokens_of(atoms: Sequence[MemoryAtom], tokenizer: Tokenizer) -> int:
    return tokenizer.count("\n".join(render_line(a) for a in atoms))


def check_stream(
    chunks: list[ExpansionChunk], chunk_size: int, max_tokens: int, tokenizer: Tokenizer
) -> None:
    """The invariants every stream keeps, whatever its input."""
    assert [c.is_final for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert [c.chunk_id for c in chunks] == list(range(len(chunks)))
    cumulative = 0
    progress = 0.0
    for chunk in chunks:
        assert len(chunk.atoms) <= chunk_size
        size = tokens_of(chunk.atoms, tokenizer)
        assert size <= max_tokens
        cumulative += size
        assert chunk.cumulative_tokens == cumulative
        assert progress <= chunk.expansion_progress <= 1.0
        progress = chunk.expansion_progress
        if not chunk.is_final:
            assert chunk.atoms  # only the final chunk may be empty
            assert chunk.skipped == ()
    assert chunks[-1].expansion_progress == 1.0


def ids(atoms: Iterable[MemoryAtom]) -> list[str]:
    return [a.content_hash for a in atoms]


def delivered(chunks: Iterable[ExpansionChunk]) -> list[MemoryAtom]:
    return [a for c in chunks for a in c.atoms]


def producers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith(PRODUCER_THREAD_PREFIX)}


class CountingRepository:
    """A real repository whose ``ranked_atoms`` iterator counts what is pulled from it.

    ``gate``: if set, pulling atom number ``gate_at`` (from 1) first waits for
    the event, standing in for a slow store read.
    """

    def __init__(
        self, repo: Repository, gate: threading.Event | None = None, gate_at: int = 0
    ) -> None:
        self.repo = repo
        self.pulled = 0
        self.gate = gate
        self.gate_at = gate_at
        self.gate_reached = threading.Event()

    def resolve(self, revision: str) -> str:
        return self.repo.resolve(revision)

    def count(self, revision: str) -> int:
        return self.repo.count(revision)

    def snapshot(self, revision: str | None = "HEAD") -> list[MemoryAtom]:
        raise AssertionError("the lazy path must never materialise the snapshot")

    def ranked_atoms(
        self, revision: str, *, score: Scorer | None = None, batch: int = 64
    ) -> Iterator[MemoryAtom]:
        for item in self.repo.ranked_atoms(revision, score=score, batch=batch):
            if self.gate is not None and self.pulled + 1 == self.gate_at:
                self.gate_reached.set()
                assert self.gate.wait(WAIT)
            self.pulled += 1
            yield item


def build(repo: Repository, n: int, relevance: Callable[[int], float]) -> Repository:
    repo.add_atoms(atom(i, relevance(i)) for i in range(n))
    repo.commit(f"{n} atoms")
    return repo


@pytest.fixture
def repo(repo_backend: RepoBackend) -> Iterator[Repository]:
    with repo_backend.repository() as made:
        yield made


@pytest.fixture
def big_repo(db_backend: RepoBackend) -> Iterator[Repository]:
    """5,000 atoms in SQLite or PostgreSQL: the producer does real blocking reads."""
    with db_backend.repository() as made:
        yield build(made, 5000, lambda i: (i * 7919 % 1000) / 1000)


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` on the event loop; fail after a generous bound."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


# -- the chunker ---------------------------------------------------------------

texts = st.text(st.characters(codec="utf-8"), min_size=1, max_size=60).filter(
    lambda s: bool(s.strip())
)


@settings(max_examples=150, deadline=None)
@given(
    contents=st.lists(texts, max_size=25),
    chunk_size=st.integers(1, 6),
    max_tokens=st.integers(1, 40),
    tokenizer=st.sampled_from([TiktokenTokenizer(), WordEstimateTokenizer()]),
    with_total=st.booleans(),
)
def test_every_chunk_holds_both_limits(
    contents: list[str],
    chunk_size: int,
    max_tokens: int,
    tokenizer: Tokenizer,
    with_total: bool,
) -> None:
    atoms = [atom(i, content=f"{i} {text}") for i, text in enumerate(contents)]
    chunks = list(
        chunk_atoms(
            atoms,
            chunk_size=chunk_size,
            max_tokens_per_chunk=max_tokens,
            tokenizer=tokenizer,
            total=len(atoms) if with_total else None,
        )
    )
    check_stream(chunks, chunk_size, max_tokens, tokenizer)
    oversize = [a for a in atoms if tokenizer.count(render_line(a)) > max_tokens]
    # Nothing is lost: every atom is delivered in order, or reported as skipped.
    assert ids(delivered(chunks)) == [a for a in ids(atoms) if a not in set(ids(oversize))]
    assert list(chunks[-1].skipped) == ids(oversize)
    # Chunks are full: the first atom of a chunk did not fit in the one before.
    for before, after in itertools.pairwise(chunks):
        if after.atoms:
            full = len(before.atoms) == chunk_size
            assert full or tokens_of([*before.atoms, after.atoms[0]], tokenizer) > max_tokens


def test_empty_input_gives_one_final_empty_chunk() -> None:
    (only,) = chunk_atoms([], chunk_size=3, max_tokens_per_chunk=10)
    assert only == ExpansionChunk(0, (), True, 0, 1.0, ())


def test_oversize_atoms_are_reported_in_the_final_chunk() -> None:
    big = atom(1, content="word " * 200)
    small = [atom(i) for i in (2, 3, 4)]
    chunks = list(chunk_atoms([small[0], big, *small[1:]], chunk_size=2, max_tokens_per_chunk=30))
    assert [ids(c.atoms) for c in chunks] == [ids(small[:2]), ids(small[2:])]
    assert [c.skipped for c in chunks] == [(), (big.content_hash,)]
    (alone,) = chunk_atoms([big], chunk_size=2, max_tokens_per_chunk=30)
    assert alone.atoms == ()
    assert alone.is_final
    assert alone.skipped == (big.content_hash,)


def test_chunker_reads_one_atom_ahead_at_most() -> None:
    pulled = 0

    def source() -> Iterator[MemoryAtom]:
        nonlocal pulled
        for i in range(100):
            pulled += 1
            yield atom(i)

    chunks = chunk_atoms(source(), chunk_size=4, max_tokens_per_chunk=500)
    assert pulled == 0
    assert len(next(chunks).atoms) == 4
    assert pulled == 5
    next(chunks)
    assert pulled == 9


def test_progress_is_a_share_of_the_total_or_grows_by_chunk() -> None:
    atoms = [atom(i) for i in range(5)]
    known = chunk_atoms(atoms, chunk_size=2, max_tokens_per_chunk=500, total=5)
    assert [c.expansion_progress for c in known] == [0.4, 0.8, 1.0]
    unknown = chunk_atoms(atoms, chunk_size=2, max_tokens_per_chunk=500)
    assert [c.expansion_progress for c in unknown] == [1 / 2, 2 / 3, 1.0]
    too_small = chunk_atoms(atoms, chunk_size=2, max_tokens_per_chunk=500, total=3)
    assert [c.expansion_progress for c in too_small] == [2 / 3, 1.0, 1.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"chunk_size": 0}, "chunk_size must be an int >= 1, got 0"),
        ({"chunk_size": True}, "chunk_size must be an int >= 1, got True"),
        ({"chunk_size": 2.0}, "chunk_size must be an int >= 1, got 2.0"),
        ({"max_tokens_per_chunk": 0}, "max_tokens_per_chunk must be an int >= 1, got 0"),
        ({"total": -1}, "total must be an int >= 0, got -1"),
    ],
)
def test_chunker_rejects_bad_limits_at_call(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        chunk_atoms([], **kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_chunk_to_dict_has_the_seed_shape_with_full_ids() -> None:
    a = atom(1, 0.75)
    chunk = ExpansionChunk(3, [a], False, 12, 0.5)  # type: ignore[arg-type]
    assert chunk.atoms == (a,)
    assert chunk.to_dict() == {
        "chunk_id": 3,
        "atoms": [
            {"content": a.content, "type": "String", "relevance": 0.75, "hash": a.content_hash}
        ],
        "is_final": False,
        "cumulative_tokens": 12,
        "progress": 0.5,
        "skipped": [],
    }
    assert len(a.content_hash) == 64


def test_chunk_rejects_out_of_range_fields() -> None:
    with pytest.raises(InvalidInputError, match=r"expansion_progress must be in \[0, 1\]"):
        ExpansionChunk(0, (), True, 0, 1.5)
    with pytest.raises(InvalidInputError, match="cumulative_tokens must be an int >= 0"):
        ExpansionChunk(0, (), True, -1, 1.0)


# -- the repository path (synchronous) -------------------------------------------


def test_ranking_order_equals_expand_order(repo: Repository) -> None:
    # Few distinct relevances and timestamps: the newest-then-id tie-breaks decide.
    build(repo, 300, lambda i: (i % 4) / 4)
    chunks = list(iter_chunks(repo, chunk_size=7, max_tokens_per_chunk=80))
    check_stream(chunks, 7, 80, TiktokenTokenizer())
    assert ids(delivered(chunks)) == ids(repo.expand().atoms)
    assert len(delivered(chunks)) == 300


def test_empty_revision_gives_one_final_empty_chunk(repo: Repository) -> None:
    repo.commit("nothing", allow_empty=True)
    assert list(iter_chunks(repo)) == [ExpansionChunk(0, (), True, 0, 1.0)]


def test_first_chunk_reads_about_one_chunk(repo: Repository) -> None:
    build(repo, 2000, lambda i: (i % 100) / 100)
    source = CountingRepository(repo)
    chunks = iter_chunks(source, "HEAD", chunk_size=10)
    first = next(chunks)
    assert len(first.atoms) == 10
    assert source.pulled <= 10 + 1
    assert first.expansion_progress == 10 / 2000


def test_threshold_stops_reading_at_the_first_atom_below_it(repo: Repository) -> None:
    build(repo, 500, lambda i: (i % 10) / 10)  # 50 atoms each at 0.0, 0.1, ..., 0.9
    source = CountingRepository(repo)
    chunks = list(iter_chunks(source, relevance_threshold=0.8, chunk_size=10))
    got = delivered(chunks)
    assert {a.relevance_score for a in got} == {0.8, 0.9}
    assert ids(got) == ids(a for a in repo.expand().atoms if a.relevance_score >= 0.8)
    assert source.pulled == 100 + 1  # the passing atoms, and the one that ended the stream
    assert chunks[-1].is_final
    assert chunks[-1].expansion_progress == 1.0


def test_threshold_applies_to_the_recency_decayed_score(repo: Repository) -> None:
    now = T0 + timedelta(days=10)
    day = 86_400.0
    old_but_relevant = MemoryAtom("old and relevant", T_STRING, now - timedelta(days=2), "", 1.0)
    fresh = MemoryAtom("fresh, middling", T_STRING, now, "", 0.6)
    stale = MemoryAtom("stale, middling", T_STRING, now - timedelta(days=1), "", 0.6)
    repo.add_atoms([old_but_relevant, fresh, stale])
    repo.commit("three")
    chunks = list(
        iter_chunks(repo, relevance_threshold=0.3, half_life_seconds=day, now=now, chunk_size=1)
    )
    # Scores: fresh 0.6, stale 0.3, old 1.0 / 4 = 0.25 -- below the threshold by decay alone.
    assert [a.content for a in delivered(chunks)] == ["fresh, middling", "stale, middling"]
    everything = list(iter_chunks(repo, half_life_seconds=day, now=now))
    score = recency_scorer(day, to_micros(now))
    expected = sorted(
        repo.expand().atoms,
        key=lambda a: (
            -score(a.relevance_score, to_micros(a.timestamp)),
            -to_micros(a.timestamp),
            a.content_hash,
        ),
    )
    assert ids(delivered(everything)) == ids(expected)


def test_a_revision_is_pinned_when_the_stream_is_made(repo: Repository) -> None:
    build(repo, 5, lambda i: 0.5)
    chunks = iter_chunks(repo, "HEAD")
    repo.add("added after the stream was made", relevance=1.0)
    repo.commit("later")
    assert len(delivered(chunks)) == 5


def test_unknown_revision_fails_at_call(repo: Repository) -> None:
    with pytest.raises(UnknownRevisionError):
        iter_chunks(repo, "no-such-branch")


def test_bad_source_target_and_parameters_are_refused_at_call(repo: Repository) -> None:
    store = InMemoryContextStore()
    with pytest.raises(InvalidInputError, match="streaming revision 'HEAD' needs a Repository"):
        iter_chunks(store, "HEAD")
    with pytest.raises(InvalidInputError, match="source must be a ContextStore or a Repository"):
        iter_chunks(object(), "HEAD")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="target must be a CompressedContext"):
        iter_chunks(repo, 42)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="relevance_threshold must be a number"):
        iter_chunks(repo, relevance_threshold=float("nan"))
    with pytest.raises(InvalidInputError, match="half-life must be a positive number"):
        iter_chunks(repo, half_life_seconds=0)
    with pytest.raises(InvalidInputError, match="queue_chunks must be an int >= 1, got 0"):
        StreamingExpander(repo, queue_chunks=0)
    with pytest.raises(InvalidInputError, match="max_tokens_per_chunk must be an int >= 1"):
        StreamingExpander(store, 10, 0)


# -- the seed path -----------------------------------------------------------------


def seed_chain() -> tuple[InMemoryContextStore, CompressedContext]:
    store = InMemoryContextStore()
    first = [atom(i, i / 10) for i in range(10)]
    root = store.put(CompressedContext(None, first))
    extra = [MemoryAtom(f"count {i}", T_INT, T0, "", 0.55) for i in range(3)]
    return store, CompressedContext(root, extra, [], {first[9].content_hash, first[0].content_hash})


def test_seed_context_streams_its_expansion_in_rank_order() -> None:
    store, delta = seed_chain()
    expected = ExpanderFunctor(store).expand(delta).atoms
    chunks = list(iter_chunks(store, delta, chunk_size=3, max_tokens_per_chunk=25))
    check_stream(chunks, 3, 25, TiktokenTokenizer())
    assert ids(delivered(chunks)) == ids(expected)
    assert len(expected) == 11


def test_repository_source_streams_a_commit_delta(repo: Repository) -> None:
    build(repo, 20, lambda i: i / 20)
    repo.add("one more", relevance=0.99)
    repo.commit("more")
    chunks = list(iter_chunks(repo, repo.compressed("HEAD"), chunk_size=4))
    assert ids(delivered(chunks)) == ids(repo.expand().atoms)


# -- async: streaming, backpressure, cancellation, errors ----------------------------


async def collect(stream: AsyncIterator[ExpansionChunk]) -> list[ExpansionChunk]:
    return [chunk async for chunk in stream]


def test_async_stream_equals_the_synchronous_one(repo: Repository) -> None:
    build(repo, 120, lambda i: (i % 9) / 9)
    expander = StreamingExpander(repo, chunk_size=5, max_tokens_per_chunk=60)
    got = asyncio.run(collect(expander.expand_stream("HEAD", 0.3)))
    want = list(iter_chunks(repo, relevance_threshold=0.3, chunk_size=5, max_tokens_per_chunk=60))
    assert got == want
    assert not producers()


def test_async_first_chunk_reads_about_one_chunk(big_repo: Repository) -> None:
    source = CountingRepository(big_repo)
    expander = StreamingExpander(source, chunk_size=10, queue_chunks=1)

    async def main() -> int:
        async with contextlib.aclosing(expander.expand_stream("HEAD")) as stream:
            async for first in stream:
                assert len(first.atoms) == 10
                # Pulled when the first chunk was built, and at most one more chunk
                # for the buffer since: never the whole snapshot.
                return source.pulled
        raise AssertionError("no chunk")

    assert asyncio.run(main()) <= 2 * 10 + 1
    assert not producers()


@pytest.mark.parametrize("queue_chunks", [1, 3])
def test_a_slow_consumer_pauses_the_producer(big_repo: Repository, queue_chunks: int) -> None:
    chunk_size = 10
    source = CountingRepository(big_repo)
    expander = StreamingExpander(source, chunk_size=chunk_size, queue_chunks=queue_chunks)
    bound = (queue_chunks + 2) * chunk_size

    async def main() -> list[MemoryAtom]:
        async with contextlib.aclosing(expander.expand_stream("HEAD")) as stream:
            first = await anext(stream)
            # The producer fills the buffer behind our back...
            await wait_until(
                lambda: source.pulled >= (queue_chunks + 1) * chunk_size, "the buffer to fill"
            )
            # ...and then stops reading while we do not consume.
            for _ in range(30):
                assert source.pulled <= bound
                await asyncio.sleep(0.01)
            rest = [a for chunk in [c async for c in stream] for a in chunk.atoms]
            return [*first.atoms, *rest]

    got = asyncio.run(main())
    assert ids(got) == ids(big_repo.expand().atoms)
    assert source.pulled == 5000
    assert not producers()


def test_breaking_out_stops_the_producer(big_repo: Repository) -> None:
    source = CountingRepository(big_repo)
    expander = StreamingExpander(source, chunk_size=10)

    async def main() -> None:
        async for chunk in expander.expand_stream("HEAD"):
            assert chunk.chunk_id == 0
            break
        # The loop finalises the abandoned generator, which stops and joins its thread.
        await wait_until(lambda: not producers(), "the producer thread to exit")

    asyncio.run(main())
    pulled = source.pulled
    assert pulled <= (2 + 2) * 10
    time.sleep(0.05)
    assert source.pulled == pulled


def test_aclose_stops_and_joins_the_producer_at_once(big_repo: Repository) -> None:
    source = CountingRepository(big_repo)
    expander = StreamingExpander(source, chunk_size=10)

    async def main() -> None:
        stream = expander.expand_stream("HEAD")
        assert not producers()  # nothing runs before the first iteration
        await anext(stream)
        assert len(producers()) == 1
        await stream.aclose()
        assert not producers()  # joined: no waiting needed
        await stream.aclose()  # safe twice

    asyncio.run(main())
    pulled = source.pulled
    time.sleep(0.05)
    assert source.pulled == pulled < 5000


def test_cancelling_a_consumer_parked_outside_the_stream_stops_the_producer(
    big_repo: Repository,
) -> None:
    source = CountingRepository(big_repo)
    expander = StreamingExpander(source, chunk_size=10)

    async def main() -> None:
        got_one = asyncio.Event()

        async def consume() -> None:
            async for _chunk in expander.expand_stream("HEAD"):
                got_one.set()
                await asyncio.Event().wait()  # a consumer busy elsewhere, forever

        task = asyncio.create_task(consume())
        await asyncio.wait_for(got_one.wait(), WAIT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await wait_until(lambda: not producers(), "the producer thread to exit")

    asyncio.run(main())
    pulled = source.pulled
    time.sleep(0.05)
    assert source.pulled == pulled < 5000


def test_cancelling_a_consumer_waiting_on_a_slow_store_stops_the_producer(
    big_repo: Repository,
) -> None:
    gate = threading.Event()
    source = CountingRepository(big_repo, gate=gate, gate_at=25)
    expander = StreamingExpander(source, chunk_size=10, queue_chunks=1)

    async def main() -> None:
        received: list[ExpansionChunk] = []

        async def consume() -> None:
            async for chunk in expander.expand_stream("HEAD"):
                received.append(chunk)

        task = asyncio.create_task(consume())
        # Chunks 0 and 1 are out; building chunk 2, the producer is stuck in a read.
        await wait_until(lambda: source.gate_reached.is_set() and len(received) == 2, "a stall")
        task.cancel()
        await asyncio.sleep(0.02)
        assert not task.done()  # it waits for the producer to unwind, without blocking the loop
        gate.set()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT)
        assert not producers()

    asyncio.run(main())
    assert source.pulled == 25  # the read in flight finished; no further atom was read


def delete_object(repo: Repository, oid: bytes) -> None:
    """Delete an object behind the store's back, as a damaged database would lose it."""
    if isinstance(repo.store, PostgresStore):
        with psycopg.connect(repo.store.url, autocommit=True) as pg:
            pg.execute("DELETE FROM objects WHERE id = %s", (oid,))
        return
    assert repo.path is not None
    with sqlite3.connect(repo.path / DATABASE) as db:
        db.execute("DELETE FROM objects WHERE id = ?", (oid,))
    db.close()


def test_an_error_mid_stream_reaches_the_consumer(db_backend: RepoBackend) -> None:
    with db_backend.repository() as repo:  # a database, which can lose a row
        build(repo, 300, lambda i: i / 300)
        last = repo.expand().atoms[-1]  # the lowest-ranked atom is read last
        delete_object(repo, last.digest)
        expander = StreamingExpander(repo, chunk_size=10)
        received: list[ExpansionChunk] = []

        async def main() -> None:
            async for chunk in expander.expand_stream("HEAD"):
                received.append(chunk)

        with pytest.raises(MissingObjectError) as caught:
            asyncio.run(main())
        assert str(caught.value) == f"atom {last.content_hash} is missing"
        assert len(received) >= 10  # the failure came mid-stream, after good chunks
        assert not any(c.is_final for c in received)
        assert not producers()
        with pytest.raises(MissingObjectError):
            list(iter_chunks(repo))


def test_an_unknown_revision_fails_on_first_iteration(repo: Repository) -> None:
    expander = StreamingExpander(repo)
    with pytest.raises(UnknownRevisionError):
        asyncio.run(collect(expander.expand_stream("nowhere")))
    assert not producers()


def test_concurrent_seed_streams_share_one_expander() -> None:
    store, delta = seed_chain()
    expander = StreamingExpander(store, chunk_size=2)
    expected = ids(ExpanderFunctor(store).expand(delta).atoms)

    async def main() -> list[list[ExpansionChunk]]:
        return await asyncio.gather(*(collect(expander.expand_stream(delta)) for _ in range(4)))

    for chunks in asyncio.run(main()):
        assert ids(delivered(chunks)) == expected
    assert not producers()
