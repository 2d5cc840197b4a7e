"""Per-turn context built for provider prompt caches: a stable block, then a volatile one.

Model APIs bill the whole prompt every turn; a provider's prompt cache bills a
byte-identical prefix seen within minutes at a tenth of the price (Anthropic:
reads 0.1x, writes 1.25x; OpenAI: automatic, up to 90% off). So a turn's
memory context is two blocks:

* **stable**, cacheable: identity and hub memories, then a working set. Turn
  after turn it stays byte-identical; memories new since the last turn, and
  memories relevant two turns running, are appended at its end, which keeps
  the cached prefix before them. Nothing leaves it except at an *epoch
  rebuild*: when an appended memory no longer fits, every ``epoch_turns``
  turns, when more than half of it has gone unused by ``stale_turns`` turns of
  queries, when one of its memories was deleted or purged (a prompt never
  shows what the store no longer holds), or when the budget or any other
  setting changed. Rebuilds are counted in the state.
* **volatile**, not cacheable: this turn's best matches for its query that the
  stable block does not hold, never a memory twice.

In a real prompt the stable block belongs in the system prompt (after the
fixed instructions, before the conversation), the volatile block just before
the user's new message, after the conversation, so a change in it never
invalidates the cached conversation. :mod:`contextfs.session.providers`
renders both for Anthropic and OpenAI.

This module is pure: :func:`plan_turn` decides from atoms it is given; the
assembler reads them from a revision. The same inputs give the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ..errors import InvalidInputError, shape_problem
from ..expand.tokens import Tokenizer
from ..model.ids import ID_HEX_LENGTH, is_hex_prefix
from ..model.objects import MemoryAtom
from .tiers import one_line

#: The first line of each block, so the model knows what it is reading.
STABLE_HEADER: Final = "## Memory\n"
VOLATILE_HEADER: Final = "## Relevant to this turn\n"
#: Turns after which the stable block is rebuilt even if nothing else asks for it.
EPOCH_TURNS: Final = 200
#: Turns without a query finding a stable memory after which it counts as stale.
STALE_TURNS: Final = 40
#: Share of the stable block's room a rebuild fills, leaving the rest for appends.
REBUILD_FILL: Final = 0.8
#: Misses in a row after which a block stops looking for memories that fit.
PATIENCE: Final = 64
#: The version of :class:`TurnState`'s JSON.
STATE_VERSION: Final = 1

Rebuild = Literal["first", "settings", "removed", "full", "epoch", "stale"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CostWeights:
    """What a provider bills per token, relative to an uncached input token.

    The defaults are Anthropic's: a cache read costs 0.1, a cache write 1.25.
    """

    read: float = 0.1
    write: float = 1.25
    uncached: float = 1.0

    def __post_init__(self) -> None:
        for name in ("read", "write", "uncached"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise InvalidInputError(f"cost weight {name} must be a number >= 0, got {value!r}")
        if self.uncached == 0:
            raise InvalidInputError("cost weight uncached must be above 0")

    @classmethod
    def of(cls, value: CostWeights | Mapping[str, float] | None) -> CostWeights:
        """``value`` as weights: given, from ``{"read", "write", "uncached"}``, or the defaults.

        Raises:
            InvalidInputError: an unknown key or a bad number.
        """
        if value is None:
            return cls()
        if isinstance(value, CostWeights):
            return value
        if not isinstance(value, Mapping) or set(value) - {"read", "write", "uncached"}:
            raise InvalidInputError(f"cost_weights takes read, write and uncached, got {value!r}")
        return cls(**value)

    @property
    def volatile_share(self) -> float:
        """The share of the budget the volatile block may take.

        One and a half times what a cached token costs against an uncached
        one, between a tenth and all of it: the cheaper the cache, the larger
        the stable block worth keeping (0.15 with the defaults, which on LoCoMo
        keeps over 80% of a median turn's context cached; benchmarks/turns.py);
        with no discount to be had, every token is best spent on the query.
        """
        return min(1.0, max(0.1, 1.5 * self.read / self.uncached))

    def to_json(self) -> dict[str, float]:
        """The weights as a JSON object."""
        return {"read": self.read, "write": self.write, "uncached": self.uncached}


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnBlock:
    """One block of a turn's context.

    Attributes:
        name: ``"stable"`` or ``"volatile"``.
        text: The block as the prompt holds it (a header line, then one line
            per memory), empty when it holds no memory.
        tokens: ``text`` counted by the tokenizer.
        cacheable: Whether a provider may cache it (mark a breakpoint after it).
        memory_ids: The memories it holds, in order.
    """

    name: str
    text: str
    tokens: int
    cacheable: bool
    memory_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnCost:
    """What a turn's context is expected to bill, in tokens and weighted.

    Attributes:
        cache_read: Tokens at the start of the stable block the previous turn's
            held too, byte for byte (a provider reads them from its cache).
        cache_write: The rest of the stable block (written to the cache).
        uncached: The volatile block.
        billed: ``read x cache_read + write x cache_write + uncached x uncached``.
        uncached_price: What the same context costs with no cache at all.
    """

    cache_read: int
    cache_write: int
    uncached: int
    billed: float
    uncached_price: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnState:
    """What one turn leaves for the next: pass :meth:`to_json` back as ``previous``.

    Attributes:
        commit: The commit the turn was assembled from.
        budget: Its budget; another budget rebuilds.
        settings: Everything else that shapes the blocks (weights, retrieval...);
            a change rebuilds.
        turn: Turns since the first (0 for the first).
        epoch: The turn of the last rebuild.
        rebuilds: Rebuilds so far (the first turn's build not counted).
        stable: The stable block's memory ids, in order.
        used: For each, the last turn a query found it (or it was added).
        volatile: The volatile block's memory ids (to see what stays relevant).
    """

    commit: str
    budget: int
    settings: dict[str, Any]
    turn: int
    epoch: int
    rebuilds: int
    stable: tuple[str, ...]
    used: tuple[int, ...]
    volatile: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """The state as plain JSON values."""
        return {
            "version": STATE_VERSION,
            "commit": self.commit,
            "budget": self.budget,
            "settings": self.settings,
            "turn": self.turn,
            "epoch": self.epoch,
            "rebuilds": self.rebuilds,
            "stable": list(self.stable),
            "used": list(self.used),
            "volatile": list(self.volatile),
        }

    @classmethod
    def from_json(cls, value: object) -> TurnState:
        """Read a state :meth:`to_json` wrote (after a JSON round trip).

        Raises:
            InvalidInputError: it is not such a state.
        """
        if not isinstance(value, Mapping) or value.get("version") != STATE_VERSION:
            raise InvalidInputError(
                "previous must be the state a turn_context returned (version 1)"
            )
        try:
            state = cls(
                commit=_text(value["commit"]),
                budget=_count(value["budget"]),
                settings=dict(value["settings"]),
                turn=_count(value["turn"]),
                epoch=_count(value["epoch"]),
                rebuilds=_count(value["rebuilds"]),
                stable=tuple(_text(i) for i in value["stable"]),
                used=tuple(_count(i) for i in value["used"]),
                volatile=tuple(_text(i) for i in value["volatile"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"previous is not a turn state: {shape_problem(exc)}") from None
        if len(state.used) != len(state.stable) or state.epoch > state.turn:
            raise InvalidInputError("previous is not a turn state: its fields disagree")
        ids = [state.commit, *state.stable, *state.volatile]
        if not all(len(i) == ID_HEX_LENGTH and is_hex_prefix(i) for i in ids):
            raise InvalidInputError("previous is not a turn state: an id is not 64 hex digits")
        if len(set(state.stable) | set(state.volatile)) != len(ids) - 1:
            raise InvalidInputError("previous is not a turn state: a memory is listed twice")
        return state


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a count, got {value!r}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnPlan:
    """What :func:`plan_turn` decided."""

    stable: tuple[MemoryAtom, ...]
    used: tuple[int, ...]
    volatile: tuple[MemoryAtom, ...]
    turn: int
    epoch: int
    rebuilds: int
    rebuild: Rebuild | None
    kept: int  # how many memories at the start of the stable block the previous turn held


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnInputs:
    """What a turn is planned from, read by the assembler from one revision.

    Attributes:
        budget: Tokens the whole context may take.
        weights: The provider's prices.
        counter: The tokenizer budgets are counted with.
        previous: Last turn's state, if this turn continues it.
        kept: Last turn's stable memories as this revision has them, in
            order; None when one was deleted or purged, or without ``previous``.
        forced: A rebuild the caller already knows is needed.
        fresh: Memories new since last turn's commit, best first.
        core: Identity and hub memories, which a rebuild puts first (read lazily).
        matches: This turn's query's matches, best first (empty without one).
        general: Every memory, best first, to fill a rebuilt block.
    """

    budget: int
    weights: CostWeights
    counter: Tokenizer
    previous: TurnState | None
    kept: Sequence[MemoryAtom] | None
    forced: Rebuild | None
    fresh: Sequence[MemoryAtom]
    core: Iterable[MemoryAtom]
    matches: Iterable[MemoryAtom]
    general: Iterable[MemoryAtom]
    epoch_turns: int = EPOCH_TURNS
    stale_turns: int = STALE_TURNS


def line_of(atom: MemoryAtom) -> str:
    """One memory as a line of a block: ``[Type] content``, newline-terminated."""
    return f"[{one_line(str(atom.type_sig))}] {one_line(atom.content)}\n"


class _Block:
    """A block being filled under a token cap (lines are counted one by one: additive)."""

    def __init__(self, header: str, cap: int, counter: Tokenizer) -> None:
        self.header = header
        self.cap = cap
        self.counter = counter
        self.atoms: list[MemoryAtom] = []
        self.ids: set[str] = set()
        self.tokens = 0  # of the lines; the header is counted once a line is in

    def _header_tokens(self) -> int:
        return 0 if self.atoms else self.counter.count(self.header)

    def offer(self, atom: MemoryAtom) -> bool:
        """Add ``atom`` if it fits (and is not in); whether it is in now."""
        if atom.content_hash in self.ids:
            return True
        cost = self._header_tokens() + self.counter.count(line_of(atom))
        if self.tokens + cost > self.cap:
            return False
        self.atoms.append(atom)
        self.ids.add(atom.content_hash)
        self.tokens += cost
        return True


def plan_turn(inputs: TurnInputs) -> TurnPlan:
    """Decide this turn's stable and volatile blocks (see the module)."""
    budget, counter = inputs.budget, inputs.counter
    stable_cap = budget - round(budget * inputs.weights.volatile_share)
    matches = _Replay(inputs.matches)
    previous = inputs.previous
    turn = previous.turn + 1 if previous is not None else 0
    reason: Rebuild | None
    if previous is None:
        reason = "first"
    elif inputs.forced is not None:
        reason = inputs.forced
    elif inputs.kept is None:
        reason = "removed"
    else:
        reason, stable, used = _extend(inputs, previous, turn, stable_cap, matches)
    if reason is not None:
        stable, used = _rebuild(inputs, turn, stable_cap, matches)
        epoch = turn
        rebuilds = previous.rebuilds + 1 if previous is not None else 0
        kept = 0
    else:
        assert previous is not None
        epoch, rebuilds, kept = previous.epoch, previous.rebuilds, len(previous.stable)
    volatile = _Block(VOLATILE_HEADER, budget - max(stable.tokens, stable_cap), counter)
    misses = 0
    for atom in matches:
        if atom.content_hash in stable.ids:
            continue
        misses = 0 if volatile.offer(atom) else misses + 1
        if misses >= PATIENCE:
            break
    return TurnPlan(
        stable=tuple(stable.atoms),
        used=tuple(used),
        volatile=tuple(volatile.atoms),
        turn=turn,
        epoch=epoch,
        rebuilds=rebuilds,
        rebuild=reason,
        kept=kept,
    )


def _extend(
    inputs: TurnInputs, previous: TurnState, turn: int, cap: int, matches: _Replay
) -> tuple[Rebuild | None, _Block, list[int]]:
    """Keep last turn's stable block and append to it; or say why it must be rebuilt."""
    stable = _Block(STABLE_HEADER, max(cap, 0), inputs.counter)
    stable.cap = 10**12  # what last turn held stays, even if the budget's split moved
    assert inputs.kept is not None
    for atom in inputs.kept:
        stable.offer(atom)
    used = list(previous.used)
    if stable.tokens > cap:  # only a state edited by hand holds more than its budget allows
        return "full", stable, used
    stable.cap = cap
    if turn - previous.epoch >= inputs.epoch_turns:
        return "epoch", stable, used
    position = {oid: i for i, oid in enumerate(previous.stable)}
    # What a query "finds": its best matches, as many as would fill the volatile block.
    top = matches.head(max(inputs.budget - cap, inputs.budget // 5), inputs.counter)
    for atom in top:
        if atom.content_hash in position:
            used[position[atom.content_hash]] = turn
    recurring = set(previous.volatile)
    fresh = {atom.content_hash for atom in inputs.fresh}
    appends = [*inputs.fresh, *(a for a in top if a.content_hash in recurring)]
    for atom in appends:
        if atom.content_hash in stable.ids:
            continue
        if not stable.offer(atom):
            if atom.content_hash in fresh:
                return "full", stable, used
            continue
        used.append(turn)
    lines = [inputs.counter.count(line_of(a)) for a in stable.atoms]
    stale = sum(
        tokens
        for tokens, last in zip(lines, used, strict=True)
        if turn - last >= inputs.stale_turns
    )
    if stale * 2 > max(stable.tokens, 1):
        return "stale", stable, used
    return None, stable, used


def _rebuild(inputs: TurnInputs, turn: int, cap: int, matches: _Replay) -> tuple[_Block, list[int]]:
    """A new stable block: the core, then this turn's best matches, then the best of all."""
    stable = _Block(STABLE_HEADER, max(int(cap * REBUILD_FILL), 0), inputs.counter)
    query_share = _Block("", stable.cap // 2, inputs.counter)
    for source, limit in ((inputs.core, stable), (matches, query_share), (inputs.general, stable)):
        misses = 0
        for atom in source:
            fits = limit.offer(atom) and stable.offer(atom)
            misses = 0 if fits else misses + 1
            if misses >= PATIENCE:
                break
    return stable, [turn] * len(stable.atoms)


class _Replay:
    """A lazily read iterable of atoms that may be walked again from the start."""

    def __init__(self, source: Iterable[MemoryAtom]) -> None:
        self._source: Iterator[MemoryAtom] = iter(source)
        self._seen: list[MemoryAtom] = []

    def __iter__(self) -> Iterator[MemoryAtom]:
        yield from self._seen
        for atom in self._source:
            self._seen.append(atom)
            yield atom

    def head(self, tokens: int, counter: Tokenizer) -> list[MemoryAtom]:
        """The first matches whose lines add up to ``tokens`` (what a prompt could use)."""
        total = 0
        taken = []
        for atom in self:
            taken.append(atom)
            total += counter.count(line_of(atom))
            if total >= tokens:
                break
        return taken


def render_blocks(plan: TurnPlan, counter: Tokenizer) -> tuple[TurnBlock, TurnBlock]:
    """The plan's two blocks as text."""
    blocks = []
    for name, header, atoms, cacheable in (
        ("stable", STABLE_HEADER, plan.stable, True),
        ("volatile", VOLATILE_HEADER, plan.volatile, False),
    ):
        text = header + "".join(line_of(a) for a in atoms) if atoms else ""
        blocks.append(
            TurnBlock(
                name=name,
                text=text,
                tokens=counter.count(text),
                cacheable=cacheable,
                memory_ids=tuple(a.content_hash for a in atoms),
            )
        )
    return blocks[0], blocks[1]


def turn_cost(
    plan: TurnPlan, stable: TurnBlock, volatile: TurnBlock, weights: CostWeights, counter: Tokenizer
) -> TurnCost:
    """What the turn bills: the kept head of the stable block read, the rest written."""
    kept = plan.stable[: plan.kept]
    read = counter.count(STABLE_HEADER + "".join(line_of(a) for a in kept)) if kept else 0
    write = stable.tokens - read
    return TurnCost(
        cache_read=read,
        cache_write=write,
        uncached=volatile.tokens,
        billed=weights.read * read + weights.write * write + weights.uncached * volatile.tokens,
        uncached_price=weights.uncached * (stable.tokens + volatile.tokens),
    )


__all__ = [
    "EPOCH_TURNS",
    "STABLE_HEADER",
    "STALE_TURNS",
    "VOLATILE_HEADER",
    "CostWeights",
    "Rebuild",
    "TurnBlock",
    "TurnCost",
    "TurnInputs",
    "TurnPlan",
    "TurnState",
    "line_of",
    "plan_turn",
    "render_blocks",
    "turn_cost",
]
