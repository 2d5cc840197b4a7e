"""Memories: a revision's memories best first, a page at a time, or searched with filters.

The page is a view over :meth:`Repository.ranked_atoms` (browsing) and
:meth:`Repository.search` (with ``q=``), with the options of ``contextfs
search``: the same names, the same defaults, the same errors. Parsing the
query string is pure (:func:`listing_from`), so a malformed option is a 400
page before the repository is touched.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from ...errors import InvalidInputError
from ...expand.query import ContextQuery
from ...history.tree import recency_scorer
from ...model.objects import MemoryAtom
from ...model.timeutil import from_micros, now_micros
from ...model.types import TypeSignature
from ...repo import Repository
from ...search.query import Mode
from ...services.assembler import RETRIEVALS, Retrieval
from ..app import UI, Page
from .history import page_links

#: Memories on one page of the list.
PAGE_SIZE = 50
#: Hits a search returns unless ``limit=`` says otherwise: one page.
DEFAULT_LIMIT = PAGE_SIZE
#: The most hits one search may ask for (each is read from the store).
MAX_LIMIT = 1000
#: Characters of a memory's first line the list shows.
SUMMARY_LENGTH = 120
#: A day in seconds (``max_age`` is given in days).
DAY_SECONDS = 86_400


@dataclass(frozen=True, slots=True)
class Listing:
    """What the Memories page shows: browse (no ``query``) or search, filtered, one page."""

    rev: str = "HEAD"
    query: str = ""
    retrieval: Retrieval | None = None  # None: the repository's default
    mode: Mode = "any"
    type_text: str = ""
    tags: tuple[str, ...] = ()
    source: str = ""
    min_relevance: float = 0.0
    max_age_days: float | None = None
    half_life: float | None = None  # seconds
    limit: int = DEFAULT_LIMIT
    page: int = 1

    @property
    def searching(self) -> bool:
        return bool(self.query)

    @property
    def start(self) -> int:
        """How many rows come before this page."""
        return (self.page - 1) * PAGE_SIZE

    def where(self) -> ContextQuery | None:
        """The filters as the library takes them; None when nothing is filtered.

        Raises:
            InvalidInputError: the type does not parse, or a bound is out of range.
        """
        filtered = self.type_text or self.tags or self.source or self.min_relevance
        if not filtered and self.max_age_days is None:
            return None
        return ContextQuery(
            type_filter=TypeSignature.parse(self.type_text) if self.type_text else None,
            min_relevance=self.min_relevance,
            max_age_seconds=None if self.max_age_days is None else self.max_age_days * DAY_SECONDS,
            tags=self.tags,
            source=self.source or None,
        )


@dataclass(frozen=True, slots=True)
class MemoryRow:
    """One memory as the list shows it; a purged one has no text."""

    id: str
    type: str
    summary: str
    purged: bool
    relevance: str
    tags: tuple[str, ...]
    source: str
    when: str
    score: str | None = None
    match: str | None = None


def listing_from(query: QueryParams) -> Listing:
    """The listing the query string asks for.

    Raises:
        InvalidInputError: an option is malformed; the message names it and its value.
    """
    retrieval = query.get("retrieval", "").strip()
    if retrieval and retrieval not in RETRIEVALS:
        raise InvalidInputError(
            f"retrieval must be 'lexical', 'semantic' or 'hybrid', got {retrieval!r}"
        )
    mode = query.get("mode", "").strip() or "any"
    if mode not in ("any", "all"):
        raise InvalidInputError(f"mode must be 'any' or 'all', got {mode!r}")
    listing = Listing(
        rev=query.get("rev", "").strip() or "HEAD",
        query=query.get("q", "").strip(),
        retrieval=retrieval or None,
        mode=cast(Mode, mode),
        type_text=query.get("type", "").strip(),
        tags=tags_from(query.getlist("tag")),
        source=query.get("source", "").strip(),
        min_relevance=_number(query.get("min_relevance", ""), "min_relevance") or 0.0,
        max_age_days=_number(query.get("max_age", ""), "max_age"),
        half_life=_number(query.get("half_life", ""), "half_life"),
        limit=_whole(query.get("limit", ""), "limit", DEFAULT_LIMIT, MAX_LIMIT),
        page=_whole(query.get("page", ""), "page", 1, None),
    )
    if listing.half_life is not None and listing.half_life <= 0:
        raise InvalidInputError(
            f"half_life must be a positive number of seconds, got {listing.half_life!r}"
        )
    listing.where()  # a bad type or bound fails here, before the repository is asked
    return listing


def tags_from(values: list[str]) -> tuple[str, ...]:
    """Tags from repeated ``tag=`` fields, each possibly comma-separated (a form has one field)."""
    found = (tag.strip() for value in values for tag in value.split(","))
    return tuple(dict.fromkeys(tag for tag in found if tag))


def _number(text: str, what: str) -> float | None:
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidInputError(f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise InvalidInputError(f"{what} must be a number from 0, got {text!r}")
    return value


#: Digits a page or limit may have (a page past the millionth is past any history).
MAX_DIGITS = 6


def _whole(text: str, what: str, default: int, most: int | None) -> int:
    text = text.strip()
    if not text:
        return default
    bounded = text.isascii() and text.isdigit() and len(text) <= MAX_DIGITS
    if not bounded or int(text) < 1 or (most is not None and int(text) > most):
        upto = f" to {most}" if most is not None else ""
        raise InvalidInputError(f"{what} must be a whole number from 1{upto}, got {text!r}")
    return int(text)


def summary_of(content: str) -> str:
    """The first non-blank line of ``content``, cut to :data:`SUMMARY_LENGTH` characters."""
    line = next((line.strip() for line in content.splitlines() if line.strip()), "")
    return line if len(line) <= SUMMARY_LENGTH else line[: SUMMARY_LENGTH - 1].rstrip() + "…"


def number(value: float) -> str:
    """A relevance or score as people read it: three significant digits, no trailing zeros."""
    return f"{value:.3g}"


def row_of(
    repo: Repository, atom: MemoryAtom, score: float | None = None, match: float | None = None
) -> MemoryRow:
    """How the list shows ``atom``: a purged one by its id and entry alone."""
    purged = repo.objects.is_placeholder(atom)
    return MemoryRow(
        id=atom.content_hash,
        type="" if purged else str(atom.type_sig),
        summary="" if purged else summary_of(atom.content),
        purged=purged,
        relevance=number(atom.relevance_score),
        tags=atom.tags,
        source=summary_of(atom.source_hash),
        when=atom.timestamp.strftime("%Y-%m-%d %H:%M"),
        score=None if score is None else number(score),
        match=None if match is None else number(match),
    )


def memory_rows(repo: Repository, listing: Listing) -> tuple[list[MemoryRow], bool]:
    """One page of the listing's rows, and whether more follow.

    Browsing walks the revision best first and stops after the page (plus
    one, to know if more follow), so a huge snapshot costs one page; a
    filter that keeps few memories may walk far to fill it. A search asks
    the library for no more hits than this page needs, within ``limit``.
    """
    now = now_micros()
    where = listing.where()
    end = listing.start + PAGE_SIZE
    if listing.searching:
        hits = repo.search(
            listing.query,
            revision=listing.rev,
            limit=min(listing.limit, end + 1),
            mode=listing.mode,
            where=where,
            half_life_seconds=listing.half_life,
            now=now,
            retrieval=listing.retrieval,
        )
        rows = [row_of(repo, hit.atom, hit.score, hit.match) for hit in hits]
        return rows[listing.start : end], len(rows) > end
    scorer = None if listing.half_life is None else recency_scorer(listing.half_life, now)
    atoms: Iterator[MemoryAtom] = repo.ranked_atoms(listing.rev, score=scorer)
    if where is not None:
        moment = from_micros(now)
        atoms = (atom for atom in atoms if where.matches(atom, moment))
    chunk = list(itertools.islice(atoms, listing.start, end + 1))
    return [row_of(repo, atom) for atom in chunk[:PAGE_SIZE]], len(chunk) > PAGE_SIZE


def memory_link(memory_id: str, rev: str) -> str:
    """Where a memory's page is, as ``rev`` holds it."""
    return f"/memory/{memory_id}" + ("" if rev == "HEAD" else "?" + urlencode({"rev": rev}))


async def memories(ui: UI, request: Request) -> Response:
    listing = listing_from(request.query_params)

    def work(repo: Repository) -> tuple[list[MemoryRow], bool, str, list[str], list[str]]:
        rows, more = memory_rows(repo, listing)
        retrieval = repo.assembler.retrieval(listing.retrieval)
        return rows, more, retrieval, sorted(repo.branches()), sorted(repo.tags())

    rows, more, retrieval, branches, tags = await ui.run(work)  # ambiguous: a 400 page
    return ui.render(
        request,
        "memories.html",
        listing=listing,
        rows=rows,
        more=more,
        retrieval=retrieval,
        retrievals=RETRIEVALS,
        branches=branches,
        tags=tags,
        link=lambda memory_id: memory_link(memory_id, listing.rev),
        page_link=page_links(request.query_params.multi_items(), listing.page),
        raw=request.query_params,
    )


ROUTES: list[tuple[str, Page, list[str]]] = [
    ("/memories", memories, ["GET"]),
]
