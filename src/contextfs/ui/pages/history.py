"""History: the commit graph of a revision, a page at a time, with filters."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ...errors import InvalidInputError
from ...history.lanes import lane_rows
from ...model.timeutil import from_micros, to_micros
from ...records import CommitInfo
from ...repo import Repository
from ..app import UI, Page
from ..svg import graph_svg

#: Commits on one page of history.
PAGE_SIZE = 50
#: A day in microseconds: ``until`` takes in the whole of its day.
DAY = 86_400_000_000


@dataclass(frozen=True, slots=True)
class Filters:
    """What the History page shows: a revision's commits, narrowed down."""

    rev: str = "HEAD"
    author: str = ""
    actor: str = ""
    since: int | None = None  # microseconds, inclusive
    until: int | None = None  # microseconds, exclusive
    page: int = 1

    def keeps(self, info: CommitInfo) -> bool:
        commit = info.commit
        if self.author and commit.author != self.author:
            return False
        if self.actor and self.actor not in actors_of(info):
            return False
        if self.since is not None and commit.timestamp < self.since:
            return False
        return self.until is None or commit.timestamp < self.until


@dataclass(frozen=True, slots=True)
class HistoryRow:
    info: CommitInfo
    when: str
    actors: tuple[str, ...]
    refs: tuple[str, ...]
    counts: dict[str, int]


def actors_of(info: CommitInfo) -> tuple[str, ...]:
    """The actors of a crystallised session's commit, else none."""
    oplog = info.commit.metadata.get("oplog")
    actors = oplog.get("actors") if isinstance(oplog, dict) else None
    return tuple(str(a) for a in actors) if isinstance(actors, list) else ()


def filters_from(request: Request) -> Filters:
    """The filters in the query string; a malformed one is an :class:`InvalidInputError`."""
    query = request.query_params
    page = query.get("page", "1")
    if not (page.isascii() and page.isdigit() and len(page) <= 6) or int(page) < 1:
        raise InvalidInputError(f"page must be a whole number from 1 to 999999, got {page[:20]!r}")
    until = _day(query.get("until", ""), "until")
    return Filters(
        rev=query.get("rev", "").strip() or "HEAD",
        author=query.get("author", "").strip(),
        actor=query.get("actor", "").strip(),
        since=_day(query.get("since", ""), "since"),
        until=None if until is None else until + DAY,
        page=int(page),
    )


def _day(text: str, what: str) -> int | None:
    if not text.strip():
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInputError(f"{what} must be a date as YYYY-MM-DD, got {text!r}") from None
    return to_micros(datetime.combine(day, time(), tzinfo=UTC))


def history_rows(
    repo: Repository, filters: Filters, branches: Mapping[str, str], tags: Mapping[str, str]
) -> tuple[list[HistoryRow], bool]:
    """One page of the revision's commits that pass the filters, and whether more follow.

    ``branches`` and ``tags`` (name to commit id) label the commits they point at.
    """
    kept = (info for info in repo.log([filters.rev]) if filters.keeps(info))
    start = (filters.page - 1) * PAGE_SIZE
    chunk = list(itertools.islice(kept, start, start + PAGE_SIZE + 1))
    refs: dict[str, list[str]] = {}
    for name, oid in branches.items():
        refs.setdefault(oid, []).append(name)
    for name, oid in tags.items():
        refs.setdefault(oid, []).append(f"tag: {name}")
    rows = []
    for info in chunk[:PAGE_SIZE]:
        _, changes = repo.show(info.id)
        rows.append(
            HistoryRow(
                info=info,
                when=from_micros(info.commit.timestamp).strftime("%Y-%m-%d %H:%M"),
                actors=actors_of(info),
                refs=tuple(refs.get(info.id, ())),
                counts=dict(Counter(change.status for change in changes)),
            )
        )
    return rows, len(chunk) > PAGE_SIZE


async def history(ui: UI, request: Request) -> Response:
    filters = filters_from(request)

    def work(repo: Repository) -> tuple[list[HistoryRow], bool, list[str], list[str]]:
        branches, tags = repo.branches(), repo.tags()
        rows, more = history_rows(repo, filters, branches, tags)
        return rows, more, sorted(branches), sorted(tags)

    rows, more, branches, tags = await ui.run(work)
    graph = graph_svg(
        lane_rows([(row.info.id, row.info.parents) for row in rows]),
        merges={row.info.id for row in rows if len(row.info.parents) > 1},
    )
    return ui.render(
        request,
        "history.html",
        rows=rows,
        more=more,
        graph=graph,
        filters=filters,
        branches=branches,
        tags=tags,
        since=request.query_params.get("since", ""),
        until=request.query_params.get("until", ""),
        page_link=page_links(request.query_params.multi_items(), filters.page),
    )


def page_links(params: list[tuple[str, str]], page: int) -> dict[str, str]:
    """The query strings of the previous and next pages, keeping every other field."""
    kept = [(key, value) for key, value in params if key != "page" and value]
    return {
        name: "?" + urlencode([*kept, ("page", str(number))])
        for name, number in (("prev", page - 1), ("next", page + 1))
    }


async def home(ui: UI, request: Request) -> Response:
    return RedirectResponse("/history", status_code=302)


ROUTES: list[tuple[str, Page, list[str]]] = [
    ("/", home, ["GET"]),
    ("/history", history, ["GET"]),
]
