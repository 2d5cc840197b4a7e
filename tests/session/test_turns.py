"""Per-turn context for prompt caches: a stable block that only grows, a volatile one after it."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contextfs import CostWeights, MemoryAtom, MemoryMolecule, Repository, TurnContext
from contextfs.errors import InvalidInputError
from contextfs.expand.tokens import default_tokenizer
from contextfs.model.types import TypeSignature
from contextfs.session.providers import anthropic_request, openai_messages
from contextfs.session.turns import STABLE_HEADER, VOLATILE_HEADER, TurnState

COUNTER = default_tokenizer()
FACT = TypeSignature("Fact")
NOW = 1_760_000_000_000_000

FACTS = [
    "Dana is the user's name; she works as a backend engineer in Lisbon",
    "Dana prefers concise answers without preamble",
    "The team moved the order service from MySQL to PostgreSQL in March",
    "Deploys go out on Tuesdays and Thursdays after the standup",
    "The staging cluster runs on three nodes in the Frankfurt region",
    "Dana's manager is called Ravi; they meet every other Friday",
    "The billing job failed twice last week because of an expired certificate",
    "Code reviews need two approvals before merging to main",
    "Dana is learning Rust in the evenings with a book club",
    "The on-call rotation changes every Monday at nine",
    "Customer invoices are generated on the first day of each month",
    "The search service uses a BM25 index rebuilt nightly",
    "Dana's cat is called Miso and likes to sit on the keyboard",
    "Latency budget for the checkout API is 200 milliseconds at p99",
    "The data warehouse is refreshed every six hours",
    "Dana plans a trip to Kyoto in October",
    "The mobile app release train ships every two weeks",
    "Feature flags are managed in a shared YAML file",
    "Dana dislikes meetings before ten in the morning",
    "Error budgets are reviewed in the monthly reliability meeting",
]
LATER = [
    "The order service now caches product prices in Redis",
    "Ravi approved the migration plan for the queue system",
    "Dana switched her editor to Helix last weekend",
    "The checkout API p99 latency regressed to 260 milliseconds",
]
QUERIES = [
    "what database do we use",
    "when do deploys happen",
    "who is Dana's manager",
    "checkout latency",
    "what pet does Dana have",
]


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    with Repository.init(tmp_path) as repo:
        repo.add("I am the release assistant of the platform team", "Identity")
        for text in FACTS:
            repo.add(text, "Fact")
        repo.commit("what the assistant knows")
        yield repo


def turn(
    repo: Repository, query: str | None, previous: TurnContext | None = None, **kwargs: object
) -> TurnContext:
    """One turn, its state passed through JSON as a caller would keep it."""
    state = json.loads(json.dumps(previous.state)) if previous is not None else None
    options = {"budget": 300, "now": NOW, **kwargs}
    return repo.turn_context(query, previous=state, **options)  # type: ignore[arg-type]


def stable(context: TurnContext) -> str:
    return context.blocks[0].text


def test_the_stable_block_stays_byte_identical_and_grows_only_at_its_end(
    repo: Repository,
) -> None:
    first = turn(repo, QUERIES[0], budget=1000)
    assert first.rebuild == "first"
    assert [block.name for block in first.blocks] == ["stable", "volatile"]
    assert [block.cacheable for block in first.blocks] == [True, False]
    assert stable(first).startswith(STABLE_HEADER + "[Identity] I am the release assistant")
    previous = first
    for number, query in enumerate(QUERIES[1:] * 2):
        if number % 3 == 0:
            repo.add(LATER[number // 3], "Fact")
            repo.commit("later")
        current = turn(repo, query, previous, budget=1000)
        assert current.rebuild is None
        assert stable(current).startswith(stable(previous))
        assert current.cost.cache_read == COUNTER.count(stable(previous))
        assert current.cost.cache_write == current.blocks[0].tokens - current.cost.cache_read
        previous = current
    for text in LATER[:3]:  # new memories were appended to the stable block
        assert f"[Fact] {text}\n" in stable(previous)
    assert previous.state["rebuilds"] == 0
    assert previous.state["turn"] == len(QUERIES[1:]) * 2


def test_the_volatile_block_holds_this_turns_matches_and_no_memory_twice(
    repo: Repository,
) -> None:
    context = turn(repo, "checkout API latency", budget=200)
    volatile = context.blocks[1]
    assert volatile.text.startswith(VOLATILE_HEADER)
    assert not set(context.blocks[0].memory_ids) & set(volatile.memory_ids)
    assert context.text == context.blocks[0].text + volatile.text
    everything = context.blocks[0].memory_ids + volatile.memory_ids
    assert len(everything) == len(set(everything))
    assert "Latency budget for the checkout API" in context.text


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    budgets=st.lists(st.integers(min_value=0, max_value=700), min_size=1, max_size=4),
    queries=st.lists(st.sampled_from([*QUERIES, None]), min_size=4, max_size=4),
    read=st.sampled_from([0.0, 0.1, 0.3, 1.0]),
)
def test_budget_is_never_exceeded_and_no_memory_is_in_both_blocks(
    repo: Repository, budgets: list[int], queries: list[str | None], read: float
) -> None:
    previous = None
    for number, query in enumerate(queries):
        budget = budgets[number % len(budgets)]
        current = turn(repo, query, previous, budget=budget, cost_weights={"read": read})
        assert current.tokens == COUNTER.count(current.text) <= budget
        assert sum(block.tokens for block in current.blocks) == current.tokens
        ids = [i for block in current.blocks for i in block.memory_ids]
        assert len(ids) == len(set(ids))
        previous = current


def test_state_round_trips_through_json_and_same_inputs_give_same_bytes(
    repo: Repository,
) -> None:
    first = turn(repo, QUERIES[0])
    assert TurnState.from_json(json.loads(json.dumps(first.state))).to_json() == first.state
    again = turn(repo, QUERIES[0])
    assert again.text == first.text
    assert again.state == first.state
    second = repo.turn_context(QUERIES[1], budget=300, now=NOW, previous=first.state)
    through_json = turn(repo, QUERIES[1], first)
    assert second.text == through_json.text
    assert second.state == through_json.state


def test_receipts_re_derive_a_turn_byte_for_byte(repo: Repository) -> None:
    first = turn(repo, QUERIES[0])
    second = turn(repo, QUERIES[3], first)
    repo.add(LATER[0], "Fact")
    repo.commit("later")  # the receipts name their commits, not HEAD
    for context in (first, second):
        assert context.receipt.params["turn"]["cost_weights"] == CostWeights().to_json()
        assert repo.verify_receipt(context.receipt).ok
    assert second.receipt.params["turn"]["previous"] == first.state


def test_a_deleted_or_purged_stable_memory_rebuilds_the_block(repo: Repository) -> None:
    first = turn(repo, QUERIES[0])
    gone = next(m for m in repo.snapshot() if getattr(m, "content", None) == FACTS[0])
    assert gone.content_hash in first.blocks[0].memory_ids
    repo.remove(gone.content_hash)
    repo.commit("forget Dana's job")
    second = turn(repo, QUERIES[1], first)
    assert second.rebuild == "removed"
    assert FACTS[0] not in second.text
    assert second.state["rebuilds"] == 1

    secret = next(i for i in second.blocks[0].memory_ids if i != gone.content_hash)
    repo.purge(secret, author="dpo", reason="asked")
    third = turn(repo, QUERIES[2], second)
    assert third.rebuild == "removed"
    assert secret not in third.blocks[0].memory_ids + third.blocks[1].memory_ids
    assert third.state["rebuilds"] == 2


def test_settings_epochs_fullness_and_staleness_rebuild(repo: Repository) -> None:
    first = turn(repo, QUERIES[0])
    assert turn(repo, QUERIES[0], first, budget=301).rebuild == "settings"
    weighed = turn(repo, QUERIES[0], first, cost_weights={"read": 0.2})
    assert weighed.rebuild == "settings"

    epochs = turn(repo, QUERIES[0], epoch_turns=2)
    epochs = turn(repo, QUERIES[1], epochs, epoch_turns=2)
    assert epochs.rebuild is None
    assert turn(repo, QUERIES[2], epochs, epoch_turns=2).rebuild == "epoch"

    small = turn(repo, QUERIES[0], budget=120)
    for text in LATER:
        repo.add(text, "Fact")
    repo.commit("more than fits")
    assert turn(repo, QUERIES[0], small, budget=120).rebuild == "full"

    stale = turn(repo, "Kyoto trip", stale_turns=1)
    assert turn(repo, "Kyoto trip", stale, stale_turns=1).rebuild == "stale"


def test_cost_weights_set_the_volatile_share_and_price_the_turn(repo: Repository) -> None:
    assert CostWeights().volatile_share == pytest.approx(0.15)
    no_discount = turn(repo, QUERIES[0], cost_weights={"read": 0.7, "write": 1.0})
    assert no_discount.blocks[0].text == ""  # no cache discount: every token for the query
    assert no_discount.blocks[1].tokens == no_discount.tokens > 0
    first = turn(repo, QUERIES[0])
    second = turn(repo, QUERIES[1], first)
    cost = second.cost
    expected = 0.1 * cost.cache_read + 1.25 * cost.cache_write + 1.0 * cost.uncached
    assert cost.billed == pytest.approx(expected)
    assert cost.uncached_price == second.tokens
    assert cost.billed < cost.uncached_price


@pytest.mark.parametrize(
    ("previous", "message"),
    [
        ({"version": 2}, "previous must be the state a turn_context returned (version 1)"),
        ("state", "previous must be the state a turn_context returned (version 1)"),
        ({"version": 1, "commit": "x"}, "previous is not a turn state: it lacks 'budget'"),
    ],
)
def test_a_bad_previous_state_is_refused_in_one_line(
    repo: Repository, previous: object, message: str
) -> None:
    with pytest.raises(InvalidInputError) as raised:
        repo.turn_context("x", budget=100, previous=previous)  # type: ignore[arg-type]
    assert str(raised.value) == message


def test_bad_arguments_are_refused(repo: Repository) -> None:
    with pytest.raises(InvalidInputError, match="budget must be a non-negative integer"):
        repo.turn_context("x", budget=-1)
    with pytest.raises(InvalidInputError, match="cost_weights takes read, write and uncached"):
        repo.turn_context("x", budget=100, cost_weights={"cached": 0.1})
    with pytest.raises(InvalidInputError, match="cost weight read must be a number >= 0"):
        repo.turn_context("x", budget=100, cost_weights={"read": -1})
    with pytest.raises(InvalidInputError, match="epoch_turns must be a positive integer"):
        repo.turn_context("x", budget=100, epoch_turns=0)


def test_provider_helpers_put_the_stable_block_first_and_the_volatile_one_last(
    repo: Repository,
) -> None:
    context = turn(repo, QUERIES[0], budget=200)
    assert all(block.text for block in context.blocks)
    conversation = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello Dana."},
    ]
    request = anthropic_request(
        context, "What database do we use?", system="You are helpful.", conversation=conversation
    )
    assert request["system"] == [
        {
            "type": "text",
            "text": "You are helpful.\n" + context.blocks[0].text.rstrip("\n"),
            "cache_control": {"type": "ephemeral"},
        }
    ]
    assert request["messages"][:2] == [
        {"role": "user", "content": "Hi"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Hello Dana.", "cache_control": {"type": "ephemeral"}}
            ],
        },
    ]
    assert request["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "text", "text": context.blocks[1].text.rstrip("\n")},
            {"type": "text", "text": "What database do we use?"},
        ],
    }
    assert conversation[1] == {"role": "assistant", "content": "Hello Dana."}  # not changed

    messages = openai_messages(context, "What database do we use?", conversation=conversation)
    assert messages[0] == {"role": "system", "content": context.blocks[0].text.rstrip("\n")}
    assert messages[1:3] == conversation
    assert messages[3] == {
        "role": "user",
        "content": context.blocks[1].text + "What database do we use?",
    }
    with pytest.raises(InvalidInputError, match="the user's message must be non-empty text"):
        openai_messages(context, "")
    with pytest.raises(InvalidInputError, match="conversation messages need a role"):
        anthropic_request(context, "hi", conversation=[{"role": "system", "content": "x"}])
    for content in ([], None):
        with pytest.raises(InvalidInputError, match="need text or a non-empty list as content"):
            anthropic_request(context, "hi", conversation=[{"role": "user", "content": content}])


def test_a_turn_without_a_query_re_derives_too(repo: Repository) -> None:
    first = turn(repo, QUERIES[0])
    second = turn(repo, None, first)
    assert second.rebuild is None
    assert second.receipt.params["turn"]["retrieval"] == "hybrid"
    assert repo.verify_receipt(second.receipt).ok


def test_hubs_that_were_removed_or_purged_are_never_shown(repo: Repository) -> None:
    hubs = [MemoryAtom(f"Hub concept {i} links the release process", FACT) for i in range(4)]
    leaves = [MemoryAtom(f"Detail {i} of the release process", FACT) for i in range(8)]
    relations = {"related": [(i, j) for i, j in itertools.combinations(range(4), 2)]}
    relations["explains"] = [(i % 4, 4 + i) for i in range(8)]
    repo.add_molecule(MemoryMolecule(tuple(hubs + leaves), relations))
    repo.commit("a working memory")
    first = turn(repo, QUERIES[0], budget=600)
    assert all(f"[Fact] {h.content}\n" in first.blocks[0].text for h in hubs)
    repo.purge(hubs[0].content_hash, author="dpo", reason="asked")
    repo.remove(hubs[1].content_hash)
    repo.commit("forget two hubs")
    second = turn(repo, QUERIES[1], first, budget=600)
    assert second.rebuild == "removed"
    third = turn(repo, QUERIES[2], second, budget=600)
    assert third.rebuild is None  # gone hubs no longer force a rebuild every turn
    for context in (second, third):
        assert "[purged]" not in context.text
        assert hubs[1].content not in context.text
        assert f"[Fact] {hubs[2].content}\n" in context.blocks[0].text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stable": ["zz"]}, "previous is not a turn state: an id is not 64 hex digits"),
        ({"commit": "HEAD"}, "previous is not a turn state: an id is not 64 hex digits"),
        ("twice", "previous is not a turn state: a memory is listed twice"),
    ],
)
def test_ids_in_a_state_are_checked(
    repo: Repository, change: dict[str, object] | str, message: str
) -> None:
    state = turn(repo, QUERIES[0]).state
    if change == "twice":
        state = {**state, "stable": state["stable"][:1] * 2, "used": state["used"][:2]}
    else:
        assert isinstance(change, dict)
        state = {**state, **change}
        if "stable" in change:
            state["used"] = [0]
    with pytest.raises(InvalidInputError) as raised:
        repo.turn_context("x", budget=300, previous=state)
    assert str(raised.value) == message


def test_a_hand_edited_state_over_its_budget_is_rebuilt(repo: Repository) -> None:
    first = turn(repo, QUERIES[0], budget=400)
    edited = {**first.state, "budget": 120}
    again = repo.turn_context(QUERIES[1], budget=120, previous=edited, now=NOW)
    assert again.rebuild == "full"
    assert again.tokens <= 120
