"""Streaming expansion: a version's atoms, most relevant first, in bounded chunks.

The seed's ``StreamingExpander`` expanded everything before sending the first
chunk, ignored ``max_tokens_per_chunk`` and called ``asyncio.sleep(0)``
"backpressure" (DESIGN.md section 2, defect 4). Invariants this module owns:

* **Both limits hold for every chunk.** A chunk holds at most ``chunk_size``
  atoms, and its rendered text (``[Type] content`` lines joined with ``"\\n"``)
  counts at most ``max_tokens_per_chunk`` tokens with the stream's tokenizer.
  An atom whose line alone is over the limit fits no chunk; it is never dropped
  silently: its id is listed in the final chunk's ``skipped``.
* **Exactly one chunk is final, and it is the last**, also for an empty context
  (one final chunk with no atoms).
* **Lazy from a repository.** Atoms come from :meth:`Repository.ranked_atoms`, a
  best-first walk of the snapshot tree, and the chunker reads at most one atom
  ahead of the chunk it is building, so the first chunk costs about
  ``chunk_size`` atom reads, however large the snapshot. (A seed
  :class:`CompressedContext` must be replayed through its chain of bases first,
  so that path materialises the context before its first chunk.)
* **Real backpressure.** :meth:`StreamingExpander.expand_stream` runs the
  blocking producer (store reads, tokenizing) in its own thread and hands chunks
  over through a buffer of ``queue_chunks`` chunks. A slow consumer leaves the
  producer blocked, reading nothing; closing, breaking out of or cancelling the
  consumer stops the producer and ends its thread.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
from collections import deque
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from ..errors import InvalidInputError
from ..history.tree import Scorer, by_relevance, recency_scorer
from ..model.context import CompressedContext
from ..model.objects import MemoryAtom
from ..model.timeutil import now_micros, to_micros
from .context import ExpandedContext, render_line
from .contextstore import ContextStore
from .expander import ExpanderFunctor, SnapshotSource
from .tokens import TiktokenTokenizer, Tokenizer, default_tokenizer

__all__ = [
    "PRODUCER_THREAD_PREFIX",
    "ExpansionChunk",
    "RankedSource",
    "StreamingExpander",
    "chunk_atoms",
    "iter_chunks",
]

#: Producer threads are named ``f"{PRODUCER_THREAD_PREFIX}-{n}"``.
PRODUCER_THREAD_PREFIX = "contextfs-stream"
_HEAD = "HEAD"
_thread_numbers = itertools.count(1)


@dataclass(frozen=True, slots=True)
class ExpansionChunk:
    """One chunk of a streamed expansion; the positional fields are the seed's.

    Attributes:
        chunk_id: Position in the stream, from 0.
        atoms: The chunk's atoms, most relevant first.
        is_final: True on the last chunk only; exactly one chunk of a stream has it.
        cumulative_tokens: Tokens of every chunk so far, this one included; each
            chunk's rendered lines are counted as one text.
        expansion_progress: How far the stream is, in [0, 1]; never decreases,
            and is 1.0 on the final chunk (see :func:`chunk_atoms`).
        skipped: Ids of atoms whose line alone exceeds ``max_tokens_per_chunk``,
            so no chunk could hold them; set on the final chunk only, so nothing
            leaves the stream unreported.

    Raises:
        InvalidInputError: On construction, if a field is out of range.
    """

    chunk_id: int
    atoms: tuple[MemoryAtom, ...]
    is_final: bool
    cumulative_tokens: int
    expansion_progress: float
    skipped: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        atoms = tuple(self.atoms)
        if not all(isinstance(atom, MemoryAtom) for atom in atoms):
            raise InvalidInputError(f"chunk atoms must be MemoryAtom values, got {atoms!r}")
        object.__setattr__(self, "atoms", atoms)
        object.__setattr__(self, "skipped", tuple(self.skipped))
        _check_count(self.chunk_id, "chunk_id", minimum=0)
        _check_count(self.cumulative_tokens, "cumulative_tokens", minimum=0)
        if not 0.0 <= self.expansion_progress <= 1.0:
            raise InvalidInputError(
                f"expansion_progress must be in [0, 1], got {self.expansion_progress!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Return the seed's JSON-ready shape, with full 64-hex ids and ``skipped`` added."""
        return {
            "chunk_id": self.chunk_id,
            "atoms": [
                {
                    "content": atom.content,
                    "type": str(atom.type_sig),
                    "relevance": atom.relevance_score,
                    "hash": atom.content_hash,
                }
                for atom in self.atoms
            ],
            "is_final": self.is_final,
            "cumulative_tokens": self.cumulative_tokens,
            "progress": self.expansion_progress,
            "skipped": list(self.skipped),
        }


def _check_count(value: object, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInputError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


# -- the chunker (pure, synchronous) -------------------------------------------


def chunk_atoms(
    atoms: Iterable[MemoryAtom],
    *,
    chunk_size: int = 10,
    max_tokens_per_chunk: int = 500,
    tokenizer: Tokenizer | None = None,
    total: int | None = None,
) -> Iterator[ExpansionChunk]:
    """Cut ranked atoms into chunks that respect both limits, lazily.

    Atoms keep their order. Input is read at most one atom ahead of the chunk
    being built: a chunk is yielded as soon as the next atom shows it is full
    (or the input ends, which makes it final), so the first chunk of a lazy
    source costs ``chunk_size + 1`` atoms.

    Args:
        atoms: The atoms, in the order they are to be sent.
        chunk_size: Most atoms per chunk.
        max_tokens_per_chunk: Most tokens of a chunk's rendered lines.
        tokenizer: Counts tokens; cl100k_base by default.
        total: How many atoms the input holds, if known. Progress is then the
            share of them delivered or skipped so far (a wrong total is clipped
            to [0, 1]). Without it progress cannot be a share: the n-th chunk
            (from 1) reports ``n / (n + 1)``, growing but below 1.0. Either way
            the final chunk reports 1.0.

    Returns:
        An iterator of chunks; exactly one, the last, has ``is_final``.

    Raises:
        InvalidInputError: ``chunk_size`` or ``max_tokens_per_chunk`` is not an
            int >= 1, or ``total`` is not None or an int >= 0 (raised at once,
            not on first iteration).
    """
    _check_count(chunk_size, "chunk_size", minimum=1)
    _check_count(max_tokens_per_chunk, "max_tokens_per_chunk", minimum=1)
    if total is not None:
        _check_count(total, "total", minimum=0)
    return _chunks(atoms, chunk_size, max_tokens_per_chunk, tokenizer or default_tokenizer(), total)


class _ChunkText:
    """The lines of the chunk being built and their exact token count.

    cl100k_base never merges text across the ``"\\n["`` between two rendered
    lines, so a chunk's count is the sum of its lines counted with their
    newline, plus the last line counted alone (see ``select_lines``); adding a
    line then costs one count of that line. Any other tokenizer may not add up,
    so for it the whole candidate text is counted again.
    """

    __slots__ = ("_additive", "_body", "_text", "_tokenizer", "atoms", "tokens")

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer
        self._additive = type(tokenizer) is TiktokenTokenizer
        self.atoms: list[MemoryAtom] = []
        self.tokens = 0  # exact count of the lines joined with "\n"
        self._body = 0  # additive only: count of that text plus a trailing "\n"
        self._text = ""  # non-additive only: the lines joined

    def try_add(self, atom: MemoryAtom, line: str, alone: int, limit: int) -> bool:
        """Add ``atom`` (rendered as ``line``, ``alone`` tokens) if it stays within ``limit``."""
        if not self.atoms:
            candidate = alone
        elif self._additive:
            candidate = self._body + alone
        else:
            candidate = self._tokenizer.count(f"{self._text}\n{line}")
        if candidate > limit:
            return False
        self.atoms.append(atom)
        self.tokens = candidate
        if self._additive:
            self._body += self._tokenizer.count(line + "\n")
        else:
            self._text = f"{self._text}\n{line}" if self._text else line
        return True


def _chunks(
    atoms: Iterable[MemoryAtom],
    chunk_size: int,
    limit: int,
    tokenizer: Tokenizer,
    total: int | None,
) -> Generator[ExpansionChunk, None, None]:
    current = _ChunkText(tokenizer)
    skipped: list[str] = []
    cumulative = 0
    done = 0  # atoms in emitted chunks, plus atoms skipped
    chunk_id = 0

    def make(final: bool) -> ExpansionChunk:
        nonlocal cumulative, done, chunk_id
        cumulative += current.tokens
        done += len(current.atoms)
        if final:
            progress = 1.0
        elif total is not None:
            progress = done / max(total, done)  # a non-final chunk is never empty: done >= 1
        else:
            progress = (chunk_id + 1) / (chunk_id + 2)
        atoms_here, skipped_here = tuple(current.atoms), tuple(skipped) if final else ()
        chunk = ExpansionChunk(chunk_id, atoms_here, final, cumulative, progress, skipped_here)
        chunk_id += 1
        return chunk

    for atom in atoms:
        line = render_line(atom)
        alone = tokenizer.count(line)
        if alone > limit:
            skipped.append(atom.content_hash)
            done += 1
            continue
        if len(current.atoms) < chunk_size and current.try_add(atom, line, alone, limit):
            continue
        yield make(final=False)
        current = _ChunkText(tokenizer)
        current.try_add(atom, line, alone, limit)  # fits alone, checked above
    yield make(final=True)


# -- what to stream: ranking, threshold, sources --------------------------------


@runtime_checkable
class RankedSource(SnapshotSource, Protocol):
    """What streaming needs of a :class:`~contextfs.Repository`: ranked, lazy atoms."""

    def count(self, revision: str) -> int:
        """Return how many entries ``revision``'s snapshot holds."""
        ...

    def ranked_atoms(
        self, revision: str, *, score: Scorer | None = None, batch: int = 64
    ) -> Iterator[MemoryAtom]:
        """Yield ``revision``'s atoms best first, lazily."""
        ...


#: Where a stream reads from: a seed context store, or a repository.
Source = ContextStore | RankedSource
#: What to stream: a seed context (any source), or a revision (repository only).
Target = CompressedContext | str
_Expand = Callable[[CompressedContext], ExpandedContext]


@dataclass(frozen=True, slots=True)
class _Options:
    """Checked stream parameters."""

    chunk_size: int
    max_tokens: int
    tokenizer: Tokenizer
    threshold: float
    score: Scorer | None  # None: stored relevance alone

    @classmethod
    def make(
        cls,
        chunk_size: int,
        max_tokens: int,
        tokenizer: Tokenizer | None,
        threshold: float,
        half_life_seconds: float | None,
        now: datetime | None,
    ) -> _Options:
        _check_count(chunk_size, "chunk_size", minimum=1)
        _check_count(max_tokens, "max_tokens_per_chunk", minimum=1)
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or math.isnan(threshold)
        ):
            raise InvalidInputError(f"relevance_threshold must be a number, got {threshold!r}")
        if now is not None and not isinstance(now, datetime):
            raise InvalidInputError(f"now must be a datetime, got {now!r}")
        score: Scorer | None = None
        if half_life_seconds is not None:
            if isinstance(half_life_seconds, bool) or not isinstance(
                half_life_seconds, int | float
            ):
                raise InvalidInputError(
                    f"half_life_seconds must be a number, got {half_life_seconds!r}"
                )
            at = now_micros() if now is None else to_micros(now)
            score = recency_scorer(float(half_life_seconds), at)
        return cls(
            chunk_size, max_tokens, tokenizer or default_tokenizer(), float(threshold), score
        )

    @property
    def batch(self) -> int:
        """Atom contents read per store query: about one chunk, within sane bounds."""
        return min(max(self.chunk_size + 1, 16), 256)

    def score_of(self, atom: MemoryAtom) -> float:
        """The ranking score of ``atom``, as the snapshot tree computes it."""
        return (self.score or by_relevance)(atom.relevance_score, to_micros(atom.timestamp))

    def passing(self, ranked: Iterator[MemoryAtom]) -> Iterator[MemoryAtom]:
        """Yield ranked atoms until the first one scoring below the threshold.

        Atoms arrive in descending score, so none after it can pass: stopping
        there is exact, not a heuristic, and spares reading the rest.
        """
        if self.threshold <= 0.0:  # every score is >= 0
            yield from ranked
            return
        for atom in ranked:
            if self.score_of(atom) < self.threshold:
                return
            yield atom


class _ConsumerGoneError(Exception):
    """The consumer went away; the producer unwinds."""


def _until(atoms: Iterator[MemoryAtom], stop: threading.Event) -> Iterator[MemoryAtom]:
    # Checked before every read, so a stopped producer reads at most one more batch.
    while not stop.is_set():
        try:
            atom = next(atoms)
        except StopIteration:
            return
        yield atom
    raise _ConsumerGoneError


@dataclass(frozen=True, slots=True)
class _Job:
    """One stream's work; :meth:`chunks` does all of its I/O, lazily."""

    source: Source
    target: Target  # a CompressedContext, or a full commit id once resolved
    options: _Options
    expand: _Expand | None  # the seed path's expander; None for a revision

    def chunks(self, stop: threading.Event | None = None) -> Generator[ExpansionChunk, None, None]:
        """Yield the stream's chunks; call on a :meth:`resolved` job."""
        atoms, total = self._ranked()
        if stop is not None:
            atoms = _until(atoms, stop)
        options = self.options
        yield from _chunks(atoms, options.chunk_size, options.max_tokens, options.tokenizer, total)

    def resolved(self) -> _Job:
        """Return this job with a revision target pinned to its full commit id."""
        if isinstance(self.target, str) and isinstance(self.source, RankedSource):
            return _Job(self.source, self.source.resolve(self.target), self.options, None)
        return self

    def _ranked(self) -> tuple[Iterator[MemoryAtom], int | None]:
        options = self.options
        if isinstance(self.target, CompressedContext):
            assert self.expand is not None
            atoms = self.expand(self.target).atoms  # already in rank_key order
            if options.score is not None:
                atoms = sorted(atoms, key=self._score_key)
            passing = list(options.passing(iter(atoms)))
            return iter(passing), len(passing)  # the seed's progress: a share of what passes
        assert isinstance(self.source, RankedSource)  # and the target is a resolved commit id
        ranked = self.source.ranked_atoms(self.target, score=options.score, batch=options.batch)
        # The entry count bounds the atoms from above (molecules are not streamed).
        return options.passing(ranked), self.source.count(self.target)

    def _score_key(self, atom: MemoryAtom) -> tuple[float, int, str]:
        # The snapshot tree's rank order: score, then newest, then id.
        return (-self.options.score_of(atom), -to_micros(atom.timestamp), atom.content_hash)


def _job(source: object, target: object, options: _Options, expand: _Expand | None) -> _Job:
    """Check that ``source`` and ``target`` go together, and describe the work."""
    if not isinstance(source, (RankedSource, ContextStore)):
        raise InvalidInputError(
            f"source must be a ContextStore or a Repository, got {type(source).__name__}"
        )
    if isinstance(target, CompressedContext):
        # With a repository the context's base names a commit (see Repository.compressed).
        if expand is None:
            expand = ExpanderFunctor(source, 0, tokenizer=options.tokenizer).expand
        return _Job(source, target, options, expand)
    if not isinstance(target, str):
        raise InvalidInputError(
            f"target must be a CompressedContext or a revision string, got {type(target).__name__}"
        )
    if not isinstance(source, RankedSource):
        raise InvalidInputError(
            f"streaming revision {target!r} needs a Repository source; "
            "a ContextStore streams CompressedContext targets"
        )
    return _Job(source, target, options, None)


def iter_chunks(
    source: Source,
    target: Target = _HEAD,
    *,
    chunk_size: int = 10,
    max_tokens_per_chunk: int = 500,
    relevance_threshold: float = 0.0,
    half_life_seconds: float | None = None,
    tokenizer: Tokenizer | None = None,
    now: datetime | None = None,
) -> Iterator[ExpansionChunk]:
    """Stream an expansion synchronously: the same chunks as ``expand_stream``, no thread.

    The parameters mean what they mean for :meth:`StreamingExpander.expand_stream`.
    A revision is resolved at once (so the stream is pinned to the commit it
    names now, and an unknown revision fails here); everything else is read
    lazily as the iterator is advanced.

    Raises:
        InvalidInputError: A parameter is out of range, or the source and target
            do not go together.
        UnknownRevisionError: ``target`` names no commit.
    """
    options = _Options.make(
        chunk_size, max_tokens_per_chunk, tokenizer, relevance_threshold, half_life_seconds, now
    )
    return _job(source, target, options, None).resolved().chunks()


# -- the threaded producer and the async consumer --------------------------------


@dataclass(frozen=True, slots=True)
class _Failure:
    """What the producer raised, on its way to the consumer."""

    error: BaseException


_Item = ExpansionChunk | _Failure


class _Handoff:
    """A bounded buffer from one producer thread to one asyncio consumer.

    The producer waits for space *before* building the next chunk, so while the
    consumer is slow it holds at most the buffered chunks plus the one atom the
    chunker has read ahead, and reads nothing more from the store.
    """

    def __init__(self, capacity: int, loop: asyncio.AbstractEventLoop) -> None:
        self._capacity = capacity
        self._loop = loop
        self._items: deque[_Item] = deque()
        self._space = threading.Condition()
        self._ready = asyncio.Event()
        self.stop = threading.Event()

    # producer side (its own thread)

    def wait_for_space(self) -> bool:
        """Block until the buffer has room; False once the consumer has gone."""
        with self._space:
            while len(self._items) >= self._capacity and not self.stop.is_set():
                self._space.wait()
            return not self.stop.is_set()

    def put(self, item: _Item) -> None:
        """Append ``item``; a failure may exceed the capacity by one."""
        with self._space:
            if self.stop.is_set():
                return
            self._items.append(item)
        self.call_soon(self._ready.set)

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` on the consumer's loop; a closed loop means nobody listens."""
        try:
            self._loop.call_soon_threadsafe(callback)
        except RuntimeError:
            self.close()

    # consumer side (the event loop)

    async def get(self) -> _Item:
        """Wait for the next item, and make room for the producer."""
        while True:
            with self._space:
                if self._items:
                    item = self._items.popleft()
                    self._space.notify()
                    return item
                self._ready.clear()  # under the lock: a put after this sets it again
            await self._ready.wait()

    def close(self) -> None:
        """Stop the producer: release a blocked wait and drop buffered chunks."""
        with self._space:
            self.stop.set()
            self._items.clear()
            self._space.notify_all()


def _produce(job: _Job, handoff: _Handoff, on_exit: Callable[[], None]) -> None:
    """The producer thread's body: build chunks while there is room for them."""
    chunks: Generator[ExpansionChunk, None, None] | None = None
    try:
        chunks = job.resolved().chunks(handoff.stop)
        while handoff.wait_for_space():
            chunk = next(chunks)
            handoff.put(chunk)
            if chunk.is_final:
                break
    except _ConsumerGoneError:
        pass
    except BaseException as exc:  # the consumer re-raises it, whatever it is
        handoff.put(_Failure(exc))
    finally:
        if chunks is not None:
            chunks.close()
        on_exit()


class StreamingExpander:
    """Streams expansions most relevant first, in chunks, with real backpressure.

    Args:
        source: A seed :class:`ContextStore` (streams :class:`CompressedContext`
            targets) or a :class:`~contextfs.Repository` (also streams revisions,
            lazily).
        chunk_size: Most atoms per chunk.
        max_tokens_per_chunk: Most tokens of one chunk's rendered lines.
        tokenizer: Counts tokens; cl100k_base by default.
        queue_chunks: How many finished chunks may wait for a slow consumer
            before the producer pauses.

    Raises:
        InvalidInputError: A limit is not an int >= 1, or ``source`` is neither kind.
    """

    def __init__(
        self,
        source: Source,
        chunk_size: int = 10,
        max_tokens_per_chunk: int = 500,
        *,
        tokenizer: Tokenizer | None = None,
        queue_chunks: int = 2,
    ) -> None:
        if not isinstance(source, (RankedSource, ContextStore)):
            raise InvalidInputError(
                f"source must be a ContextStore or a Repository, got {type(source).__name__}"
            )
        self.source = source
        self.chunk_size = _check_count(chunk_size, "chunk_size", minimum=1)
        self.max_tokens_per_chunk = _check_count(
            max_tokens_per_chunk, "max_tokens_per_chunk", minimum=1
        )
        self.queue_chunks = _check_count(queue_chunks, "queue_chunks", minimum=1)
        self.tokenizer = tokenizer or default_tokenizer()
        # One expander (and its cache) for every seed-path stream; expansions run
        # in producer threads and ExpanderFunctor is not thread-safe, hence the lock.
        self._expander: ExpanderFunctor | None = None
        self._expander_lock = threading.Lock()

    @property
    def store(self) -> Source:
        """The seed's name for :attr:`source`."""
        return self.source

    def expand_stream(
        self,
        target: Target,
        relevance_threshold: float = 0.0,
        *,
        half_life_seconds: float | None = None,
        now: datetime | None = None,
    ) -> AsyncGenerator[ExpansionChunk, None]:
        """Stream ``target``'s atoms best first, as chunks, to an ``async for``.

        Only the repository path is lazy: a revision is streamed from the
        snapshot tree in rank order, and its first chunk arrives after about
        ``chunk_size`` atom reads. A :class:`CompressedContext` is expanded (its
        chain of bases replayed) before its first chunk, in the producer thread.

        The threshold applies to the **ranking score**: stored relevance, or with
        ``half_life_seconds`` relevance x ``0.5 ** (age / half_life)``. Atoms
        arrive in descending score, so the stream ends at the first atom below
        the threshold and reads no further. Since the decay never exceeds 1, an
        atom that passes also has stored relevance >= the threshold; an old atom
        can fall below it by decay alone.

        Use ``contextlib.aclosing`` (or ``aclose()``) to stop the producer at a
        known point; breaking out of ``async for`` stops it too, once the event
        loop finalises the generator.

        Args:
            target: A :class:`CompressedContext`, or (repository source) a
                revision: branch, tag, ``HEAD``, commit id or unique prefix.
            relevance_threshold: Lowest ranking score streamed.
            half_life_seconds: Rank by recency-decayed relevance with this half-life.
            now: The instant ages are measured from; when the call is made by default.

        Returns:
            An async generator of chunks; exactly one, the last, is final.

        Raises:
            InvalidInputError: At once, if a parameter is out of range or the
                target does not suit the source.
            Exception: While iterating, whatever the producer raised (for
                example :class:`UnknownRevisionError`, :class:`MissingObjectError`).
        """
        options = _Options.make(
            self.chunk_size,
            self.max_tokens_per_chunk,
            self.tokenizer,
            relevance_threshold,
            half_life_seconds,
            now,
        )
        return _consume(_job(self.source, target, options, self._expand), self.queue_chunks)

    def _expand(self, compressed: CompressedContext) -> ExpandedContext:
        with self._expander_lock:
            if self._expander is None:
                self._expander = ExpanderFunctor(self.source, tokenizer=self.tokenizer)
            return self._expander.expand(compressed)


async def _consume(job: _Job, capacity: int) -> AsyncGenerator[ExpansionChunk, None]:
    """Start the producer thread on first iteration; hand its chunks on; stop it on exit."""
    loop = asyncio.get_running_loop()
    handoff = _Handoff(capacity, loop)
    finished: asyncio.Future[None] = loop.create_future()

    def settle() -> None:
        if not finished.done():  # the future may be cancelled along with the consumer
            finished.set_result(None)

    thread = threading.Thread(
        target=_produce,
        args=(job, handoff, lambda: handoff.call_soon(settle)),
        name=f"{PRODUCER_THREAD_PREFIX}-{next(_thread_numbers)}",
        daemon=True,
    )
    thread.start()
    try:
        while True:
            item = await handoff.get()
            if isinstance(item, _Failure):
                raise item.error
            yield item
            if item.is_final:
                return
    finally:
        handoff.close()
        # Wait (without blocking the loop) until the producer has unwound, so no
        # thread outlives the stream; it checks the stop flag between atoms.
        await finished
        thread.join()
