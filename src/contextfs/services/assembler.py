"""Context assembly: from one version of memory to a ranked, budgeted, provable prompt.

:class:`ContextAssembler` ranks a snapshot's atoms by relevance x recency x
query match, where the match weighs a query's phrases by their rarity in that
snapshot (:mod:`contextfs.expand.ranking`), so every answer depends on the
revision alone. That is what lets a receipt re-derive a prompt byte for byte.
Reads are lazy and best first: a budget costs what it takes, not the snapshot.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

from ..errors import ContextFSError, InvalidInputError
from ..expand.context import ExpandedContext
from ..expand.expander import distinct
from ..expand.lattice import LATTICE_TYPE, RelevanceLattice, lattice_molecule, lattice_of
from ..expand.query import ContextQuery
from ..expand.ranking import fused_scores, match_scores, phrase_text
from ..expand.receipt import Receipt, ReceiptVerification, build_receipt, verify_receipt
from ..expand.render import Format, Selection, check_format, fit
from ..expand.tokens import Tokenizer, default_tokenizer
from ..history.columns import SnapshotColumns
from ..history.tree import Scorer, by_relevance, recency_scorer
from ..integrity.purge import PURGES
from ..model import refs as refnames
from ..model.ids import ObjectId, to_hex
from ..model.objects import (
    MOLECULE,
    MemoryAtom,
    MemoryMolecule,
    MoleculeEntry,
    decode_entry,
    entry_rank,
    is_molecule_item,
)
from ..model.timeutil import from_micros, now_micros
from ..records import PromptContext, SearchHit, TurnContext
from ..search.query import Mode, content_phrases, parse_query
from ..session.richclub import hub_atoms
from ..session.tiers import (
    IDENTITY_TYPES,
    SessionPayload,
    Summariser,
    TierBudgets,
    assemble,
    extractive_summary,
    is_identity,
)
from ..session.turns import (
    EPOCH_TURNS,
    STALE_TURNS,
    CostWeights,
    Rebuild,
    TurnInputs,
    TurnState,
    plan_turn,
    render_blocks,
    turn_cost,
)
from .embeddings import Embeddings
from .indexes import Indexes
from .lexical import ColumnsCache, ranked
from .objects import ObjectReader
from .refs import Refs
from .storage import Storage
from .workspace import Workspace

#: ``context`` gives up packing after this many atoms in a row did not fit.
DEFAULT_PATIENCE = 64
#: Atoms read from the store at a time while streaming a ranked snapshot.
RANKED_BATCH = 64
#: Tokens of a session payload unless told otherwise.
DEFAULT_SESSION_BUDGET = 2000
#: How many of the best atoms are searched for l0 (pinned and identity) memories.
IDENTITY_SCAN = 2_000
#: Snapshots whose identity atoms are remembered (see ``ContextAssembler._identity``).
IDENTITY_MEMO = 32

Purged = Literal["omit", "show"]
#: How a query finds memories: by its words, by meaning, or both (see ``_matches``).
Retrieval = Literal["lexical", "semantic", "hybrid"]
RETRIEVALS: tuple[Retrieval, ...] = ("lexical", "semantic", "hybrid")
#: Atoms nearest in meaning that a semantic or hybrid query considers.
SEMANTIC_CANDIDATES = 200


class ContextAssembler:
    """Search, context, expansion, session payloads and receipts over any revision."""

    def __init__(
        self,
        storage: Storage,
        objects: ObjectReader,
        refs: Refs,
        workspace: Workspace,
        indexes: Indexes,
        embeddings: Embeddings,
    ) -> None:
        self._storage = storage
        self.trees = storage.trees
        self._objects = objects
        self._refs = refs
        self._workspace = workspace
        self._indexes = indexes
        self._embeddings = embeddings
        self._memo_lock = threading.Lock()
        self._identity_memo: OrderedDict[tuple[bytes, frozenset[str], int], list[MemoryAtom]]
        self._identity_memo = OrderedDict()
        self._columns = ColumnsCache(storage.store)

    # -- ranking ---------------------------------------------------------------------

    def ranked_atoms(
        self, revision: str = refnames.HEAD, *, score: Scorer | None = None, batch: int = 64
    ) -> Iterator[MemoryAtom]:
        """Yield ``revision``'s atoms best first, lazily.

        Ranks by ``score(relevance, timestamp)`` (stored relevance by default;
        see :func:`~contextfs.history.tree.recency_scorer`), then newest, then
        id. Entries come from a best-first walk of the snapshot tree and
        contents are read ``batch`` at a time, so the first atoms of a huge
        snapshot arrive after a few reads and memory stays bounded however far
        the caller iterates.
        """
        return self._ranked(self._workspace.tree_of(revision), score, batch)

    def _ranked(
        self, tree: bytes, scorer: Scorer | None, batch: int = RANKED_BATCH
    ) -> Iterator[MemoryAtom]:
        entries = self.trees.ranked(tree, scorer)
        while chunk := [decode_entry(i) for i in itertools.islice(entries, batch)]:
            for memory in self._objects.memories(chunk):
                assert isinstance(memory, MemoryAtom)
                yield memory

    def _query_ranked(
        self, tree: bytes, query: str, mode: Mode, scorer: Scorer | None, retrieval: Retrieval
    ) -> Iterator[tuple[MemoryAtom, float, float]]:
        """Yield the atoms of ``tree`` matching ``query``: ``(atom, score, match)``, best first."""
        found = None
        if retrieval == "lexical":
            by_columns, found = self._by_columns(tree, query, mode, scorer)
            if by_columns is not None:
                yield from by_columns
                return
        matches, present = self._matches(tree, query, mode, retrieval, found)
        rank = scorer or by_relevance
        heap = []
        for oid, match in matches.items():
            relevance, timestamp = entry_rank(present[oid])
            if relevance < 0:  # a molecule: the words of its atoms match, not it
                continue
            heap.append((-rank(relevance, timestamp) * match, -timestamp, oid))
        heapq.heapify(heap)  # ranked lazily: a budget usually needs only the first few
        size = 16  # a search usually wants few; a budget more: read in growing batches
        while heap:
            batch = [heapq.heappop(heap) for _ in range(min(size, len(heap)))]
            size = min(size * 2, RANKED_BATCH)
            atoms = self._objects.items(present[row[2]] for row in batch)
            for row, atom in zip(batch, atoms, strict=True):
                assert isinstance(atom, MemoryAtom)
                yield atom, -row[0], matches[row[2]]

    def _by_columns(
        self, tree: bytes, query: str, mode: Mode, scorer: Scorer | None
    ) -> tuple[Iterator[tuple[MemoryAtom, float, float]] | None, list[set[bytes]]]:
        """Word matches ranked over the snapshot's columns (:mod:`.lexical`), when it has them.

        Returns the ranking (None when the columns do not serve) and each
        phrase's matching ids, for the straightforward way to reuse.
        """
        if mode not in ("any", "all"):
            raise InvalidInputError(f"mode must be 'any' or 'all', got {mode!r}")
        index = self._indexes.search
        found = [index.match_ids(phrase_text(p)) for p in content_phrases(parse_query(query))]
        total = self.trees.count(tree)
        if not found:
            return None, found
        columns = self._columns.for_query(self.trees, tree, sum(map(len, found)), total)
        if columns is None:
            return None, found
        held = [columns.positions(ids) for ids in found]
        order = ranked(columns, held, total, mode == "all", scorer)
        return self._column_atoms(tree, columns, order), found

    def _column_atoms(
        self, tree: bytes, columns: SnapshotColumns, order: Iterator[tuple[int, float, float]]
    ) -> Iterator[tuple[MemoryAtom, float, float]]:
        """Read the ranked matches' atoms in growing batches (a budget usually needs few)."""
        size = 16
        while batch := list(itertools.islice(order, size)):
            size = min(size * 2, RANKED_BATCH)
            keys = [columns.key(position) for position, _, _ in batch]
            items = self.trees.get_many(tree, keys)
            atoms = self._objects.items(items[key] for key in keys)
            for (_, score, match), atom in zip(batch, atoms, strict=True):
                assert isinstance(atom, MemoryAtom)
                yield atom, score, match

    def _matches(
        self,
        tree: bytes,
        query: str,
        mode: Mode,
        retrieval: Retrieval,
        found: list[set[bytes]] | None = None,
    ) -> tuple[dict[bytes, float], dict[bytes, bytes]]:
        """Each candidate's match in [0, 1] and its snapshot item, for ``retrieval``.

        Lexical matches are the words ``query`` shares with an atom (every
        phrase with ``mode`` "all", in hybrid retrieval too); semantic ones the
        :data:`SEMANTIC_CANDIDATES` atoms nearest in meaning, whatever their
        words; hybrid mixes both
        (:func:`~contextfs.expand.ranking.fused_scores`, with the embedder's
        lexical weight, chosen on LoCoMo: see benchmarks/RESULTS.md).
        """
        if mode not in ("any", "all"):
            raise InvalidInputError(f"mode must be 'any' or 'all', got {mode!r}")
        phrases = content_phrases(parse_query(query))  # every mode needs words to look for
        lexical: dict[bytes, float] = {}
        present: dict[bytes, bytes] = {}
        if retrieval != "semantic":
            index = self._indexes.search
            found_by_phrase = found or [index.match_ids(phrase_text(p)) for p in phrases]
            present = self.trees.get_many(tree, set().union(*found_by_phrase))
            members = [found & present.keys() for found in found_by_phrase]
            lexical = match_scores(members, self.trees.count(tree))
            if mode == "all":
                lexical = {oid: lexical[oid] for oid in set.intersection(*members)}
        if retrieval == "lexical":
            return lexical, present
        semantic, items = self._embeddings.nearest(tree, query, SEMANTIC_CANDIDATES)
        present.update(items)
        weight = 0.0 if retrieval == "semantic" else self._embeddings.lexical_weight
        fused = fused_scores(lexical, semantic, weight)
        if retrieval == "hybrid" and mode == "all":  # every phrase must match: words decide who
            fused = {oid: score for oid, score in fused.items() if oid in lexical}
        # The least similar candidate, matching no word, scores 0: it was not found.
        return {oid: score for oid, score in fused.items() if score > 0}, present

    # -- search and context ----------------------------------------------------------

    @property
    def default_retrieval(self) -> Retrieval:
        """ "hybrid" when the repository has an embedder, else "lexical"."""
        return "hybrid" if self._embeddings.embedder is not None else "lexical"

    def retrieval(self, asked: Retrieval | None) -> Retrieval:
        """The retrieval a query uses: ``asked``, or :attr:`default_retrieval`.

        Raises:
            InvalidInputError: ``asked`` is no retrieval.
        """
        if asked is None:
            return self.default_retrieval
        if asked not in RETRIEVALS:
            raise InvalidInputError(
                f"retrieval must be 'lexical', 'semantic' or 'hybrid', got {asked!r}"
            )
        return asked

    def search(
        self,
        query: str,
        *,
        revision: str = refnames.HEAD,
        limit: int = 10,
        mode: Mode = "any",
        where: ContextQuery | None = None,
        half_life_seconds: float | None = None,
        now: int | None = None,
        retrieval: Retrieval | None = None,
    ) -> list[SearchHit]:
        """Find ``revision``'s memories matching ``query``, best first.

        Words are matched by full-text search (SQLite FTS5 on disk), without
        the query's loose English stop words (:mod:`contextfs.search.stopwords`); each hit
        scores ``relevance x recency x match``, where ``match`` weighs the
        query's phrases by their rarity in this revision (see
        :mod:`contextfs.expand.ranking`), so the answer depends on the revision
        alone. ``where`` filters further (type, relevance, age, tags, source).
        ``retrieval`` "lexical" finds memories by their words alone,
        "semantic" by meaning, and "hybrid" (the default when the repository
        has an embedder) by both; vectors are made on the first query that
        needs them.

        Raises:
            InvalidInputError: the query has no words, or an argument is invalid.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidInputError(f"limit must be a non-negative integer, got {limit!r}")
        retrieval = self.retrieval(retrieval)
        moment = now if now is not None else now_micros()
        tree = self._workspace.tree_of(revision)
        hits: list[SearchHit] = []
        scorer = _scorer(half_life_seconds, moment)
        ranked = self._query_ranked(tree, query, mode, scorer, retrieval)
        for atom, score, match in ranked:
            if where is None or where.matches(atom, from_micros(moment)):
                hits.append(SearchHit(atom, score, match))
                if len(hits) >= limit:
                    break
        return hits

    def context(
        self,
        revision: str = refnames.HEAD,
        *,
        budget: int | None = None,
        query: str | None = None,
        mode: Mode = "any",
        format: Format = "lines",
        half_life_seconds: float | None = None,
        now: int | None = None,
        where: ContextQuery | None = None,
        compact: bool = True,
        patience: int | None = DEFAULT_PATIENCE,
        tokenizer: Tokenizer | None = None,
        purged: Purged = "omit",
        retrieval: Retrieval | None = None,
    ) -> PromptContext:
        """Assemble the best prompt ``revision`` can give within ``budget`` tokens.

        Atoms are ranked by stored relevance, times a recency decay with
        ``half_life_seconds``, times the query match with ``query`` (and then
        only matching atoms take part); ``where`` filters; true duplicates
        (same type, same normalised text) are merged when ``compact``; the
        revision's relevance lattice is honoured; then the best atoms whose
        rendered ``format`` fits are packed, skipping any that do not fit and
        giving up after ``patience`` misses in a row. The rendered prompt,
        counted by ``tokenizer``, never exceeds ``budget``. With a query,
        ``retrieval`` says how it finds memories (see :meth:`search`).

        The result carries a :class:`~contextfs.expand.receipt.Receipt` from
        which :meth:`verify_receipt` re-derives the prompt byte for byte. The
        cost follows the budget and the query's matches; without a lattice the
        snapshot is read lazily, best first.

        Raises:
            InvalidInputError: an argument is invalid.
        """
        fmt = check_format(format)
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, int) or budget < 0
        ):
            raise InvalidInputError(f"budget must be a non-negative integer, got {budget!r}")
        retrieval = self.retrieval(retrieval)
        oid = self._refs.resolve_id(revision)
        tree = self._objects.commit(oid).tree
        moment = now if now is not None else now_micros()
        scorer = _scorer(half_life_seconds, moment)
        candidates: Iterable[MemoryAtom] = self._candidates(tree, query, mode, scorer, retrieval)
        if where is not None:
            when = from_micros(moment)
            candidates = (atom for atom in candidates if where.matches(atom, when))
        if purged == "omit":
            candidates = (a for a in candidates if not self._objects.is_placeholder(a))
        elif purged != "show":
            raise InvalidInputError(f"purged must be 'omit' or 'show', got {purged!r}")
        if compact:
            candidates = distinct(candidates)
        molecules = self._objects.molecules_in(tree)
        lattice = lattice_of(molecules)
        if len(lattice):
            ranked = list(candidates)
            by_id: dict[str, MemoryAtom] = {atom.content_hash: atom for atom in ranked}
            candidates = [by_id[i] for i in lattice.order([a.content_hash for a in ranked])]
        counter = tokenizer or default_tokenizer()
        selection = fit(candidates, molecules, fmt, budget, counter, patience=patience)
        receipt = build_receipt(
            selection,
            commit=to_hex(oid),
            snapshot_root=to_hex(tree),
            revision=revision,
            budget=budget,
            query=query,
            half_life_seconds=half_life_seconds,
            now=moment,
            tokenizer=counter.name,
            params={
                "mode": mode,
                "compact": compact,
                "patience": patience,
                "where": where.to_params() if where is not None else None,
                "purged": purged,
                **self._retrieval_params(query, retrieval),
            },
        )
        return PromptContext(
            selection.text, selection.tokens, selection.atoms, selection.molecules, receipt
        )

    def _candidates(
        self,
        tree: bytes,
        query: str | None,
        mode: Mode,
        scorer: Scorer | None,
        retrieval: Retrieval,
    ) -> Iterator[MemoryAtom]:
        """The atoms of ``tree`` best first: all of them, or those ``query`` matches."""
        if query is None:
            return self._ranked(tree, scorer)
        return (atom for atom, _, _ in self._query_ranked(tree, query, mode, scorer, retrieval))

    def _retrieval_params(self, query: str | None, retrieval: Retrieval) -> dict[str, object]:
        """What a receipt records of the retrieval: nothing for words alone (as before)."""
        if query is None or retrieval == "lexical":
            return {}
        embedder = self._embeddings.embedder_id
        assert embedder is not None  # a query by meaning needed one
        if retrieval == "semantic":
            return {"retrieval": retrieval, "embedder": embedder}
        weight = self._embeddings.lexical_weight
        return {"retrieval": retrieval, "embedder": embedder, "lexical_weight": weight}

    def expand(
        self,
        revision: str = refnames.HEAD,
        *,
        budget: int | None = None,
        query: str | None = None,
        half_life_seconds: float | None = None,
        now: int | None = None,
        where: ContextQuery | None = None,
        tokenizer: Tokenizer | None = None,
        retrieval: Retrieval | None = None,
    ) -> ExpandedContext:
        """Materialise ``revision`` as the seed's ``ExpandedContext``, ranked and budgeted.

        The same selection as :meth:`context` in the ``lines`` format, so
        ``to_prompt_context()`` of the result is that prompt and never exceeds
        ``budget``. Without a budget every atom is tried (patience is off).
        """
        result = self.context(
            revision,
            budget=budget,
            query=query,
            half_life_seconds=half_life_seconds,
            now=now,
            where=where,
            patience=DEFAULT_PATIENCE if budget is not None else None,
            tokenizer=tokenizer,
            retrieval=retrieval,
        )
        summary: dict[str, int] = {}
        for atom in result.atoms:
            summary[str(atom.type_sig)] = summary.get(str(atom.type_sig), 0) + 1
        return ExpandedContext(
            atoms=list(result.atoms),
            molecules=list(result.molecules),
            expansion_path=[result.receipt.commit],
            total_tokens_estimate=result.tokens,
            type_summary=dict(sorted(summary.items())),
        )

    # -- receipts --------------------------------------------------------------------

    def verify_receipt(self, receipt: Receipt) -> ReceiptVerification:
        """Re-derive the prompt ``receipt`` describes from this store and compare it.

        Raises:
            InvalidInputError: the receipt names a tokenizer or parameter this
                version cannot reproduce.
        """
        return verify_receipt(receipt, self._derive)

    def _derive(self, receipt: Receipt) -> tuple[str, str]:
        tokenizer = default_tokenizer()
        if receipt.tokenizer != tokenizer.name:
            raise InvalidInputError(f"cannot reproduce tokenizer {receipt.tokenizer!r}")
        params = receipt.params
        where = params.get("where")
        embedder = params.get("embedder")
        if embedder is not None and embedder != self._embeddings.embedder_id:
            raise InvalidInputError(f"cannot reproduce embedder {embedder!r}")
        weight = params.get("lexical_weight")
        if weight is not None and weight != self._embeddings.lexical_weight:
            raise InvalidInputError(
                f"cannot reproduce hybrid retrieval's lexical weight {weight!r}"
            )
        turn = params.get("turn")
        if turn is not None:
            if receipt.budget is None:
                raise InvalidInputError("a turn context's receipt must name its budget")
            derived = self.turn_context(
                receipt.query,
                budget=receipt.budget,
                previous=turn["previous"],
                revision=receipt.commit,
                cost_weights=turn["cost_weights"],
                half_life_seconds=receipt.half_life_seconds,
                now=receipt.now,
                retrieval=turn["retrieval"],
                identity_types=turn["identity_types"],
                epoch_turns=turn["epoch_turns"],
                stale_turns=turn["stale_turns"],
                tokenizer=tokenizer,
            )
            return derived.receipt.snapshot_root, derived.text
        result = self.context(
            receipt.commit,
            budget=receipt.budget,
            query=receipt.query,
            mode=params.get("mode", "any"),
            format=receipt.format,
            half_life_seconds=receipt.half_life_seconds,
            now=receipt.now,
            where=ContextQuery.from_params(where) if where is not None else None,
            compact=bool(params.get("compact", True)),
            patience=params.get("patience"),
            tokenizer=tokenizer,
            purged=params.get("purged", "omit"),
            retrieval=params.get("retrieval", "lexical"),
        )
        return result.receipt.snapshot_root, result.text

    # -- session payloads ------------------------------------------------------------

    def session_payload(
        self,
        revision: str = refnames.HEAD,
        *,
        budget: int = DEFAULT_SESSION_BUDGET,
        query: str | None = None,
        budgets: TierBudgets | None = None,
        summariser: Summariser | None = None,
        identity_types: Iterable[str] = IDENTITY_TYPES,
        half_life_seconds: float | None = None,
        now: int | None = None,
        tokenizer: Tokenizer | None = None,
        retrieval: Retrieval | None = None,
    ) -> SessionPayload:
        """Return ``revision``'s session payload: ``{"l0", "l1", "l2", "rich_club"}``.

        See :mod:`contextfs.session.tiers`: l0 holds the pinned and identity
        memories (looked for among the :data:`IDENTITY_SCAN` best), rich_club
        the hubs of the molecule relation graph, l1 overviews and l2 details of
        the most relevant memories (those matching ``query``, when given). Each
        tier keeps to its budget (``budgets``, default :meth:`TierBudgets.split`
        of ``budget``) and the rendered payload
        (:func:`~contextfs.session.tiers.render_payload`) never exceeds
        ``budget`` tokens. The same inputs give byte-identical payloads; send
        turn-to-turn changes with :func:`contextfs.session.build_delta`.

        Raises:
            InvalidInputError: an argument is invalid.
        """
        retrieval = self.retrieval(retrieval)
        tree = self._refs.tree(revision)
        scorer = _scorer(half_life_seconds, now if now is not None else now_micros())
        types = frozenset(identity_types)

        def usable(atoms: Iterable[MemoryAtom]) -> Iterator[MemoryAtom]:
            return distinct(a for a in atoms if not self._objects.is_placeholder(a))

        identity = self._identity(tree, scorer, types)
        ranked: Iterable[MemoryAtom]
        if query is None:
            ranked = usable(self._ranked(tree, scorer))
        else:
            found = self._query_ranked(tree, query, "any", scorer, retrieval)
            ranked = usable(a for a, _, _ in found)
        molecules = self._objects.molecules_in(tree)
        return assemble(
            identity=identity,
            hubs=hub_atoms(m for m in molecules if m.molecule_type != LATTICE_TYPE),
            ranked=ranked,
            budget=budget,
            budgets=budgets or TierBudgets.split(budget if isinstance(budget, int) else 0),
            counter=tokenizer or default_tokenizer(),
            summariser=summariser or extractive_summary,
        )

    def _identity(
        self, tree: bytes, scorer: Scorer | None, types: frozenset[str]
    ) -> list[MemoryAtom]:
        """The pinned and identity atoms among the :data:`IDENTITY_SCAN` best of ``tree``.

        Reading 2,000 atoms costs more than everything else a turn does, and
        a snapshot never changes, so without a recency decay the answer is
        remembered per snapshot, identity types and number of purges (a purge
        changes what may be shown, not the snapshot; purges are never undone).
        """
        key = None
        if scorer is None:
            key = (tree, types, len(self._storage.store.list_refs(PURGES)))
            with self._memo_lock:
                if (hit := self._identity_memo.get(key)) is not None:
                    self._identity_memo.move_to_end(key)
                    return list(hit)
        usable = distinct(
            a for a in self._ranked(tree, scorer) if not self._objects.is_placeholder(a)
        )
        best = itertools.islice(usable, IDENTITY_SCAN)
        found = [a for a in best if is_identity(a, types)]
        if key is not None:
            with self._memo_lock:
                self._identity_memo[key] = list(found)
                while len(self._identity_memo) > IDENTITY_MEMO:
                    self._identity_memo.popitem(last=False)
        return found

    # -- turn context ----------------------------------------------------------------

    def turn_context(
        self,
        query: str | None = None,
        *,
        budget: int,
        previous: Mapping[str, Any] | None = None,
        revision: str = refnames.HEAD,
        cost_weights: CostWeights | Mapping[str, float] | None = None,
        half_life_seconds: float | None = None,
        now: int | None = None,
        retrieval: Retrieval | None = None,
        identity_types: Iterable[str] = IDENTITY_TYPES,
        epoch_turns: int = EPOCH_TURNS,
        stale_turns: int = STALE_TURNS,
        tokenizer: Tokenizer | None = None,
    ) -> TurnContext:
        """This turn's memory context: a cacheable stable block, then a volatile one.

        See :mod:`contextfs.session.turns`. Pass the result's ``state`` back
        as ``previous`` next turn: the stable block then stays byte-identical,
        memories new since and memories relevant two turns running appended at
        its end, until an epoch rebuild (reported in ``rebuild``). The volatile
        block holds this turn's best matches for ``query`` that the stable one
        does not. The whole never exceeds ``budget`` tokens; ``cost_weights``
        (default Anthropic's: read 0.1, write 1.25, uncached 1.0) sets how much
        of it the volatile block may take, and prices ``cost``. Same inputs,
        same bytes: the receipt re-derives the text.

        Raises:
            InvalidInputError: an argument is invalid, or ``previous`` is not a
                state a turn context returned.
        """
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
            raise InvalidInputError(f"budget must be a non-negative integer, got {budget!r}")
        for name, value in (("epoch_turns", epoch_turns), ("stale_turns", stale_turns)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
        weights = CostWeights.of(cost_weights)
        state = TurnState.from_json(previous) if previous is not None else None
        retrieval = self.retrieval(retrieval)
        oid = self._refs.resolve_id(revision)
        tree = self._objects.commit(oid).tree
        moment = now if now is not None else now_micros()
        scorer = _scorer(half_life_seconds, moment)
        counter = tokenizer or default_tokenizer()
        types = frozenset(identity_types)
        settings: dict[str, Any] = {
            "cost_weights": weights.to_json(),
            "retrieval": retrieval,
            "half_life_seconds": half_life_seconds,
            "identity_types": sorted(types),
            "epoch_turns": epoch_turns,
            "stale_turns": stale_turns,
            "tokenizer": counter.name,
        }
        forced: Rebuild | None = None
        kept: list[MemoryAtom] | None = None
        fresh: list[MemoryAtom] = []
        if state is not None:
            before = self._turn_tree(state.commit)
            if state.budget != budget or state.settings != settings or before is None:
                forced = "settings"
            else:
                kept = self._kept(tree, state.stable)
                fresh = self._fresh(before, tree, scorer)

        def usable(atoms: Iterable[MemoryAtom]) -> Iterator[MemoryAtom]:
            return distinct(a for a in atoms if not self._objects.is_placeholder(a))

        def core() -> Iterator[MemoryAtom]:  # read only when the stable block is rebuilt
            yield from self._identity(tree, scorer, types)
            molecules = self._objects.molecules_in(tree)
            hubs = hub_atoms(m for m in molecules if m.molecule_type != LATTICE_TYPE)
            held = self.trees.get_many(tree, [bytes.fromhex(a.content_hash) for a in hubs])
            # A molecule may name an atom since removed or purged: never show either.
            yield from usable(a for a in hubs if bytes.fromhex(a.content_hash) in held)

        matches: Iterable[MemoryAtom] = ()
        if query is not None:
            found = self._query_ranked(tree, query, "any", scorer, retrieval)
            matches = usable(atom for atom, _, _ in found)
        plan = plan_turn(
            TurnInputs(
                budget=budget,
                weights=weights,
                counter=counter,
                previous=state,
                kept=kept,
                forced=forced,
                fresh=fresh,
                core=core(),
                matches=matches,
                general=usable(self._ranked(tree, scorer)),
                epoch_turns=epoch_turns,
                stale_turns=stale_turns,
            )
        )
        stable, volatile = render_blocks(plan, counter)
        text = stable.text + volatile.text
        tokens = counter.count(text)
        next_state = TurnState(
            commit=to_hex(oid),
            budget=budget,
            settings=settings,
            turn=plan.turn,
            epoch=plan.epoch,
            rebuilds=plan.rebuilds,
            stable=stable.memory_ids,
            used=plan.used,
            volatile=volatile.memory_ids,
        )
        receipt = build_receipt(
            Selection(
                format="lines",
                atoms=(*plan.stable, *plan.volatile),
                molecules=(),
                text=text,
                tokens=tokens,
            ),
            commit=to_hex(oid),
            snapshot_root=to_hex(tree),
            revision=revision,
            budget=budget,
            query=query,
            half_life_seconds=half_life_seconds,
            now=moment,
            tokenizer=counter.name,
            params={
                "turn": {
                    "previous": state.to_json() if state is not None else None,
                    "retrieval": retrieval,  # shapes the state's settings, query or not
                    "cost_weights": weights.to_json(),
                    "identity_types": sorted(types),
                    "epoch_turns": epoch_turns,
                    "stale_turns": stale_turns,
                },
                **self._retrieval_params(query, retrieval),
            },
        )
        return TurnContext(
            blocks=(stable, volatile),
            text=text,
            tokens=tokens,
            state=next_state.to_json(),
            rebuild=plan.rebuild,
            cost=turn_cost(plan, stable, volatile, weights, counter),
            receipt=receipt,
        )

    def _turn_tree(self, commit: str) -> bytes | None:
        """The snapshot of last turn's commit, or None if this store lacks it."""
        try:
            return self._objects.commit(bytes.fromhex(commit)).tree
        except (ValueError, ContextFSError):
            return None

    def _kept(self, tree: bytes, ids: Sequence[str]) -> list[MemoryAtom] | None:
        """Last turn's stable memories as ``tree`` has them; None if one is gone or purged."""
        keys = [bytes.fromhex(i) for i in ids]
        present = self.trees.get_many(tree, keys)
        if len(present) != len(keys):
            return None
        atoms = self._objects.items(present[key] for key in keys)
        if any(not isinstance(a, MemoryAtom) or self._objects.is_placeholder(a) for a in atoms):
            return None
        return [a for a in atoms if isinstance(a, MemoryAtom)]

    def _fresh(self, before: bytes, tree: bytes, scorer: Scorer | None) -> list[MemoryAtom]:
        """The atoms ``tree`` has and ``before`` had not, best first."""
        rank = scorer or by_relevance
        added = []
        for key, old, new in self.trees.diff(before, tree):
            if old is None and new is not None and not is_molecule_item(new):
                relevance, timestamp = entry_rank(new)
                added.append((-rank(relevance, timestamp), -timestamp, key, new))
        added.sort()
        atoms = self._objects.items(row[3] for row in added)
        return [
            a for a in atoms if isinstance(a, MemoryAtom) and not self._objects.is_placeholder(a)
        ]

    # -- the relevance lattice -------------------------------------------------------

    def molecules(self, revision: str | None = refnames.HEAD) -> list[MemoryMolecule]:
        """Return the molecules ``revision`` (None: the stage) holds.

        Tree summaries count molecules per subtree, so this reads only the
        paths that lead to one.
        """
        return self._objects.molecules_in(self._workspace.tree_of(revision))

    def relevance_lattice(self, revision: str | None = refnames.HEAD) -> RelevanceLattice:
        """Return the "more relevant than" order recorded in ``revision`` (None: the stage).

        The lattice is versioned like every memory: it is stored as a molecule
        of type ``RelevanceLattice`` whose ``more_relevant`` relation holds its
        edges, and :meth:`context` honours it when ranking.
        """
        return lattice_of(self.molecules(revision))

    def add_relevance_edge(self, higher: str, lower: str) -> ObjectId:
        """Stage the fact that memory ``higher`` is more relevant than ``lower``.

        Both are id prefixes of atoms in the stage. The lattice molecule is
        rewritten in the stage (atoms keep their entries).

        Returns:
            The id of the new lattice molecule.

        Raises:
            LatticeCycleError: ``lower`` is already above ``higher``.
        """
        with self._storage.transaction():
            keys = []
            for ref in (higher, lower):
                key, item = self._workspace.staged_key(ref)
                if is_molecule_item(item):
                    raise InvalidInputError(f"{ref!r} is a molecule; the lattice orders atoms")
                keys.append(to_hex(key))
            staged = self.molecules(None)
            lattice = lattice_of(staged)
            lattice.add_edge(keys[0], keys[1])
            molecule = lattice_molecule(lattice, self._staged_atom)
            changes: dict[bytes, bytes | None] = {
                m.digest: None for m in staged if m.molecule_type == LATTICE_TYPE
            }
            changes[molecule.digest] = MoleculeEntry(molecule.digest).encode()
            self._workspace.write_stage(changes, [(molecule.digest, MOLECULE, molecule.encode())])
        return molecule.molecule_hash

    def _staged_atom(self, atom_id: str) -> MemoryAtom:
        found = self._workspace.staged(atom_id)
        assert isinstance(found, MemoryAtom)
        return found


def _scorer(half_life_seconds: float | None, now: int) -> Scorer | None:
    return None if half_life_seconds is None else recency_scorer(half_life_seconds, now)


__all__ = [
    "DEFAULT_PATIENCE",
    "DEFAULT_SESSION_BUDGET",
    "IDENTITY_SCAN",
    "ContextAssembler",
    "Purged",
    "Retrieval",
]
