"""The Repository: the one facade that the CLI, servers and users call.

A repository is a :class:`~contextfs.store.base.Store` plus these refs:

* ``HEAD``: ``ref: refs/heads/<branch>``, or a commit id when detached;
* ``refs/heads/*`` and ``refs/tags/*``: commit ids;
* ``STAGE``: the snapshot tree being prepared for the next commit (absent when
  it equals HEAD's snapshot);
* ``MERGE_HEAD`` and ``MERGE_STATE``: the commit being merged in and a tree of
  its unresolved conflicts, while a merge is stopped on conflicts.

Every mutation reads and writes inside one store transaction and moves refs
by compare-and-swap, so a crash leaves either the old state or the new one.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Literal

from .collab import CollaborativeCore
from .core import (
    DEFAULT_AUTHOR,
    PURGED_TEXT,
    PURGED_TYPE,
)
from .errors import (
    InvalidInputError,
    MissingObjectError,
)
from .expand.context import ExpandedContext
from .expand.expander import compaction_key
from .expand.lattice import RelevanceLattice
from .expand.query import ContextQuery
from .expand.ranking import match_scores, phrase_text
from .expand.receipt import Receipt, ReceiptVerification, build_receipt, verify_receipt
from .expand.render import Format, check_format, fit
from .expand.stream import ExpansionChunk, iter_chunks
from .expand.tokens import Tokenizer, default_tokenizer
from .history.commits import check_author
from .history.tree import (
    Scorer,
    by_relevance,
    recency_scorer,
)
from .integrity.fsck import VerifyReport, verify_store
from .integrity.proofs import Proof
from .integrity.proofs import prove as prove_key
from .integrity.purge import PurgeRecord, purge_atom
from .model import refs as refnames
from .model.ids import (
    ObjectId,
    to_hex,
)
from .model.objects import (
    ATOM,
    MOLECULE,
    MemoryAtom,
    MemoryMolecule,
    MoleculeEntry,
    decode_entry,
    entry_rank,
    is_molecule_item,
)
from .model.timeutil import from_micros, now_micros
from .model.types import TypeSignature
from .records import (
    PromptContext,
    SearchHit,
)
from .search.query import Mode, parse_query
from .session.richclub import adjacency, rich_club
from .session.tiers import (
    IDENTITY_TYPES,
    Summariser,
    TierBudgets,
    assemble,
    extractive_summary,
    is_identity,
)

#: ``context`` gives up packing after this many atoms in a row did not fit.
DEFAULT_PATIENCE = 64
#: Atoms read from the store at a time while streaming a ranked snapshot.
RANKED_BATCH = 64
#: The molecule type and relation that store a snapshot's relevance lattice.
LATTICE_TYPE = TypeSignature("RelevanceLattice")
#: Tokens of a session payload unless told otherwise.
DEFAULT_SESSION_BUDGET = 2000
#: How many of the best atoms are searched for l0 (pinned and identity) memories.
IDENTITY_SCAN = 2_000
LATTICE_RELATION = "more_relevant"


class Repository(CollaborativeCore):
    """Version control for an agent's memory: stage, commit, branch, merge, expand, prove.

    The version-control methods come from :class:`~contextfs.core.RepositoryCore`;
    this class adds what the memory is for: ranked, budgeted context, search,
    streaming, receipts, the relevance lattice, proofs, verification and purging.
    """

    def ranked_atoms(
        self, revision: str = refnames.HEAD, *, score: Scorer | None = None, batch: int = 64
    ) -> Iterator[MemoryAtom]:
        """Yield ``revision``'s atoms best first, lazily.

        Ranks by ``score(relevance, timestamp)`` (stored relevance by default;
        see :func:`recency_scorer`), then newest, then id. Entries come from a
        best-first walk of the snapshot tree and contents are read ``batch`` at
        a time, so the first atoms of a huge snapshot arrive after a few reads
        and memory stays bounded however far the caller iterates.
        """
        return self._ranked_atoms(self._tree_of(revision), score, batch)

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
    ) -> list[SearchHit]:
        """Find ``revision``'s memories matching ``query``, best first.

        Words are matched by full-text search (SQLite FTS5 on disk); each hit
        scores ``relevance x recency x match``, where ``match`` weighs the
        query's phrases by their rarity in this revision (see
        :mod:`contextfs.expand.ranking`), so the answer depends on the revision
        alone. ``where`` filters further (type, relevance, age, tags, source).

        Raises:
            InvalidInputError: the query has no words, or an argument is invalid.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidInputError(f"limit must be a non-negative integer, got {limit!r}")
        moment = now if now is not None else now_micros()
        tree = self._tree_of(revision)
        hits: list[SearchHit] = []
        ranked = self._query_ranked(tree, query, mode, self._scorer(half_life_seconds, moment))
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
        purged: Literal["omit", "show"] = "omit",
    ) -> PromptContext:
        """Assemble the best prompt ``revision`` can give within ``budget`` tokens.

        Atoms are ranked by stored relevance, times a recency decay with
        ``half_life_seconds``, times the query match with ``query`` (and then
        only matching atoms take part); ``where`` filters; true duplicates
        (same type, same normalised text) are merged when ``compact``; the
        revision's relevance lattice is honoured; then the best atoms whose
        rendered ``format`` fits are packed, skipping any that do not fit and
        giving up after ``patience`` misses in a row. The rendered prompt,
        counted by ``tokenizer``, never exceeds ``budget``.

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
        oid = self._resolve(revision)
        tree = self.load_commit(oid).tree
        moment = now if now is not None else now_micros()
        scorer = self._scorer(half_life_seconds, moment)
        candidates: Iterable[MemoryAtom]
        if query is None:
            candidates = self._ranked_atoms(tree, scorer)
        else:
            candidates = (atom for atom, _, _ in self._query_ranked(tree, query, mode, scorer))
        if where is not None:
            when = from_micros(moment)
            candidates = (atom for atom in candidates if where.matches(atom, when))
        if purged == "omit":
            candidates = (a for a in candidates if not self._is_placeholder(a))
        elif purged != "show":
            raise InvalidInputError(f"purged must be 'omit' or 'show', got {purged!r}")
        if compact:
            candidates = _distinct(candidates)
        molecules = self._molecules_of(tree)
        lattice = _lattice_of(molecules)
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
                "where": _query_params(where),
                "purged": purged,
            },
        )
        return PromptContext(
            selection.text, selection.tokens, selection.atoms, selection.molecules, receipt
        )

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

    def prove(self, ref: str | MemoryAtom, revision: str = refnames.HEAD) -> Proof:
        """Prove that a memory is, or is not, in ``revision``.

        Returns a :class:`~contextfs.integrity.proofs.MembershipProof` when it
        is and a :class:`~contextfs.integrity.proofs.NonMembershipProof` when it
        is not; either checks, from the commit's id alone, with
        :func:`contextfs.integrity.proofs.verify` -- a chain of RFC 6962
        inclusion proofs, one per tree level, that any verifier can follow.

        Args:
            ref: the memory (a MemoryAtom, a full id, or a unique prefix of a
                stored atom or molecule id).
            revision: the version to prove it against.
        """
        commit_id = self._resolve(revision)
        stored = self.store.get_object(commit_id)
        if stored is None:
            raise MissingObjectError(f"commit {commit_id.hex()} is missing")
        key = ref.digest if isinstance(ref, MemoryAtom) else self._memory_key(ref, (ATOM, MOLECULE))
        return prove_key(self.trees, stored.data, key)

    def verify(self) -> VerifyReport:
        """Re-hash every object and check every link and ref; name each problem.

        See :func:`contextfs.integrity.fsck.verify_store`. Purged atoms (with
        their purge records) are listed, not reported as damage.
        """
        return verify_store(self.store)

    def purge(self, ref: str, *, author: str, reason: str = "") -> PurgeRecord:
        """Erase an atom's content from every version, index and free page.

        Every commit id and snapshot root still verifies (they cover the atom's
        id, not its text); expansion leaves the atom out, or shows it as
        ``[purged]`` when asked. The purge is recorded: who, when, which id, why.
        Must not run inside :meth:`transaction` (the store file is compacted).

        Raises:
            PurgeError: the id names no atom, is already purged, or a copy of
                its text is held where it cannot be erased.
        """
        check_author(author)
        oid = self._memory_key(ref, (ATOM,))
        return purge_atom(self.store, oid, author=author, reason=reason, when=now_micros())

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
        result = self.context(
            receipt.commit,
            budget=receipt.budget,
            query=receipt.query,
            mode=params.get("mode", "any"),
            format=receipt.format,
            half_life_seconds=receipt.half_life_seconds,
            now=receipt.now,
            where=_query_from_params(params.get("where")),
            compact=bool(params.get("compact", True)),
            patience=params.get("patience"),
            tokenizer=tokenizer,
            purged=params.get("purged", "omit"),
        )
        return result.receipt.snapshot_root, result.text

    def _is_placeholder(self, atom: MemoryAtom) -> bool:
        return (
            atom.content == PURGED_TEXT
            and atom.type_sig == PURGED_TYPE
            and self.is_purged(atom.digest)
        )

    def _scorer(self, half_life_seconds: float | None, now: int) -> Scorer | None:
        if half_life_seconds is None:
            return None
        return recency_scorer(half_life_seconds, now)

    def _ranked_atoms(
        self, tree: bytes, scorer: Scorer | None, batch: int = RANKED_BATCH
    ) -> Iterator[MemoryAtom]:
        entries = self.trees.ranked(tree, scorer)
        while chunk := [decode_entry(i) for i in itertools.islice(entries, batch)]:
            for memory in self._load_memories(chunk):
                assert isinstance(memory, MemoryAtom)
                yield memory

    def _query_ranked(
        self, tree: bytes, query: str, mode: Mode, scorer: Scorer | None
    ) -> Iterator[tuple[MemoryAtom, float, float]]:
        """Yield the atoms of ``tree`` matching ``query``: ``(atom, score, match)``, best first."""
        if mode not in ("any", "all"):
            raise InvalidInputError(f"mode must be 'any' or 'all', got {mode!r}")
        phrases = parse_query(query).phrases
        found_by_phrase = [self.search_index.match_ids(phrase_text(p)) for p in phrases]
        present = self.trees.get_many(tree, set().union(*found_by_phrase))
        members = [found & present.keys() for found in found_by_phrase]
        matches = match_scores(members, self.trees.count(tree))
        keep = set.intersection(*members) if mode == "all" else set(matches)
        rank = scorer or by_relevance
        heap = []
        for oid in keep:
            relevance, timestamp = entry_rank(present[oid])
            if relevance < 0:  # a molecule: the words of its atoms match, not it
                continue
            heap.append((-rank(relevance, timestamp) * matches[oid], -timestamp, oid))
        heapq.heapify(heap)  # ranked lazily: a budget usually needs only the first few
        size = 16  # a search usually wants few; a budget more: read in growing batches
        while heap:
            batch = [heapq.heappop(heap) for _ in range(min(size, len(heap)))]
            size = min(size * 2, RANKED_BATCH)
            atoms = self._load_memories(decode_entry(present[row[2]]) for row in batch)
            for row, atom in zip(batch, atoms, strict=True):
                assert isinstance(atom, MemoryAtom)
                yield atom, -row[0], matches[row[2]]

    def stream(
        self,
        revision: str = refnames.HEAD,
        *,
        chunk_size: int = 10,
        max_tokens_per_chunk: int = 500,
        relevance_threshold: float = 0.0,
        half_life_seconds: float | None = None,
        tokenizer: Tokenizer | None = None,
        now: datetime | None = None,
    ) -> Iterator[ExpansionChunk]:
        """Stream ``revision``'s atoms best first in chunks that respect both limits, lazily.

        The first chunk costs about ``chunk_size`` atom reads whatever the
        snapshot's size. For an asyncio consumer with backpressure across a
        thread, use :class:`~contextfs.expand.stream.StreamingExpander`.
        """
        return iter_chunks(
            self,
            revision,
            chunk_size=chunk_size,
            max_tokens_per_chunk=max_tokens_per_chunk,
            relevance_threshold=relevance_threshold,
            half_life_seconds=half_life_seconds,
            tokenizer=tokenizer,
            now=now,
        )

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
    ) -> dict[str, Any]:
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
        tree = self.load_commit(self._resolve(revision)).tree
        scorer = self._scorer(half_life_seconds, now if now is not None else now_micros())
        types = frozenset(identity_types)

        def usable(atoms: Iterable[MemoryAtom]) -> Iterator[MemoryAtom]:
            return _distinct(a for a in atoms if not self._is_placeholder(a))

        best = list(itertools.islice(usable(self._ranked_atoms(tree, scorer)), IDENTITY_SCAN))
        identity = [a for a in best if is_identity(a, types)]
        ranked: Iterable[MemoryAtom]
        if query is None:  # the atoms read for l0 are the head of the ranking: reuse them
            rest = usable(self._ranked_atoms(tree, scorer)) if len(best) == IDENTITY_SCAN else ()
            ranked = itertools.chain(best, itertools.islice(rest, IDENTITY_SCAN, None))
        else:
            ranked = usable(a for a, _, _ in self._query_ranked(tree, query, "any", scorer))
        molecules = [m for m in self._molecules_of(tree) if m.molecule_type != LATTICE_TYPE]
        return assemble(
            identity=identity,
            hubs=_hubs(molecules),
            ranked=ranked,
            budget=budget,
            budgets=budgets or TierBudgets.split(budget if isinstance(budget, int) else 0),
            counter=tokenizer or default_tokenizer(),
            summariser=summariser or extractive_summary,
        )

    def molecules(self, revision: str | None = refnames.HEAD) -> list[MemoryMolecule]:
        """Return the molecules ``revision`` (None: the stage) holds.

        Tree summaries count molecules per subtree, so this reads only the
        paths that lead to one.
        """
        tree = self._tree_of(revision)
        return self._molecules_of(tree)

    def relevance_lattice(self, revision: str | None = refnames.HEAD) -> RelevanceLattice:
        """Return the "more relevant than" order recorded in ``revision`` (None: the stage).

        The lattice is versioned like every memory: it is stored as a molecule
        of type ``RelevanceLattice`` whose ``more_relevant`` relation holds its
        edges, and :meth:`expand` honours it when ranking.
        """
        return _lattice_of(self.molecules(revision))

    def add_relevance_edge(self, higher: str, lower: str) -> ObjectId:
        """Stage the fact that memory ``higher`` is more relevant than ``lower``.

        Both are id prefixes of atoms in the stage. The lattice molecule is
        rewritten in the stage (atoms keep their entries).

        Returns:
            The id of the new lattice molecule.

        Raises:
            LatticeCycleError: ``lower`` is already above ``higher``.
        """
        with self.transaction():
            keys = []
            for ref in (higher, lower):
                key, item = self._staged_key(ref)
                if is_molecule_item(item):
                    raise InvalidInputError(f"{ref!r} is a molecule; the lattice orders atoms")
                keys.append(to_hex(key))
            old = [m for m in self.molecules(None) if m.molecule_type == LATTICE_TYPE]
            lattice = self.relevance_lattice(None)
            lattice.add_edge(keys[0], keys[1])
            nodes = list(lattice)
            atoms = tuple(self._staged_atom(node) for node in nodes)
            index = {node: i for i, node in enumerate(nodes)}
            edges = tuple((index[h], index[lo]) for h, lo in lattice.edges())
            molecule = MemoryMolecule(atoms, {LATTICE_RELATION: edges}, LATTICE_TYPE, {})
            changes: dict[bytes, bytes | None] = {m.digest: None for m in old}
            changes[molecule.digest] = MoleculeEntry(molecule.digest).encode()
            self._write_stage(changes, [(molecule.digest, MOLECULE, molecule.encode())])
        return molecule.molecule_hash

    def _staged_atom(self, atom_id: str) -> MemoryAtom:
        found = self.get(atom_id)
        assert isinstance(found, MemoryAtom)
        return found


def _hubs(molecules: Iterable[MemoryMolecule]) -> list[MemoryAtom]:
    """The rich club of the graph the molecules' relations draw between atoms."""
    atoms: dict[str, MemoryAtom] = {}
    edges: list[tuple[str, str]] = []
    for molecule in molecules:
        for atom in molecule.atoms:
            atoms.setdefault(atom.content_hash, atom)
        for pairs in molecule.relations.values():
            edges += [
                (molecule.atoms[i].content_hash, molecule.atoms[j].content_hash) for i, j in pairs
            ]
    edges.sort()  # a stable graph whatever order the molecules came in
    return [atoms[node] for node in rich_club(adjacency(edges))]


def _distinct(atoms: Iterable[MemoryAtom]) -> Iterator[MemoryAtom]:
    """Drop true duplicates lazily, keeping the first (best ranked) of each."""
    seen: set[tuple[TypeSignature, str]] = set()
    for atom in atoms:
        key = compaction_key(atom)
        if key not in seen:
            seen.add(key)
            yield atom


def _lattice_of(molecules: Iterable[MemoryMolecule]) -> RelevanceLattice:
    lattice = RelevanceLattice()
    for molecule in molecules:
        if molecule.molecule_type == LATTICE_TYPE:
            ids = [atom.content_hash for atom in molecule.atoms]
            for node in ids:
                lattice.add_node(node)
            for higher, lower in molecule.relations.get(LATTICE_RELATION, ()):
                lattice.add_edge(ids[higher], ids[lower])
    return lattice


def _query_params(where: ContextQuery | None) -> dict[str, Any] | None:
    """Record a filter in a receipt, losslessly (types in their canonical form)."""
    if where is None:
        return None
    return {
        "type": where.type_filter.to_canonical() if where.type_filter is not None else None,
        "min_relevance": where.min_relevance,
        "max_age_seconds": where.max_age_seconds,
        "limit": where.limit,
        "text": where.text,
        "tags": list(where.tags),
        "source": where.source,
    }


def _query_from_params(value: object) -> ContextQuery | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInputError("receipt parameter 'where' is malformed")
    type_value = value.get("type")
    try:
        return ContextQuery(
            type_filter=TypeSignature.from_canonical(type_value) if type_value else None,
            min_relevance=value.get("min_relevance", 0.0),
            max_age_seconds=value.get("max_age_seconds"),
            limit=value.get("limit"),
            text=value.get("text"),
            tags=tuple(value.get("tags", ())),
            source=value.get("source"),
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"receipt parameter 'where' is malformed: {exc}") from None


__all__ = ["DEFAULT_AUTHOR", "Repository"]
