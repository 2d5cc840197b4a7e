"""What every write page shares: who may see a confirmation, who a write is by, where it may go.

The rules themselves are the app's (:meth:`~contextfs.ui.app.UI.check_write`
for a POST); this module adds the two a write page needs besides: a
confirmation page is shown only to someone who could then write (so a
read-only visitor never sees a form that will be refused), and the refs a
write moves must be ones the grant may move (a token limited to
``agents/*`` does not move ``main`` through the UI either).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse

from ..app import UI, grant_of


@dataclass(frozen=True, slots=True)
class Section:
    """A list on a confirmation page: a heading and (id, text) rows."""

    heading: str
    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A confirmation page (``confirm.html``): what a write will do, and the form that does it.

    ``summary`` says in one sentence exactly what will happen; ``fields`` are
    the form's hidden fields (the page adds ``csrf``), pinning the write to
    what was shown. ``possible`` False shows why not, and no form.
    """

    title: str
    summary: str
    action: str
    button: str
    back: str
    fields: Mapping[str, str] = field(default_factory=dict)
    details: tuple[str, ...] = ()
    sections: tuple[Section, ...] = ()
    possible: bool = True


def require_writable(ui: UI, request: Request) -> None:
    """Refuse (403) a confirmation page to whoever could not do the write it leads to."""
    if not ui.write:
        raise HTTPException(403, "this server is read-only: start it with --write")
    grant = grant_of(request)
    if not ui.can_write(grant):
        who = f"the token {grant.name}" if grant.name else "this token"
        raise HTTPException(403, f"{who} is read-only: it cannot write")


def require_refs(request: Request, refs: Iterable[str]) -> None:
    """Refuse unless the grant may move every ref in ``refs`` (PermissionDeniedError: 403)."""
    grant_of(request).require_refs(refs)


def author_of(ui: UI, request: Request) -> str:
    """Who a write is by: the store token's name, else the server's default author.

    A store token names a person or agent, so its writes carry that name,
    as the server's do; the shared ``--token`` and an open loopback server
    name nobody, so the author is whoever started ``contextfs ui``.
    """
    return grant_of(request).name or ui.author


def form_field(form: dict[str, str], name: str) -> str:
    """A form field, stripped; missing is empty."""
    return form.get(name, "").strip()


def see_other(url: str) -> RedirectResponse:
    """After a write, the page showing its result (303: the browser GETs it)."""
    return RedirectResponse(url, status_code=303)


__all__ = [
    "Confirmation",
    "Section",
    "author_of",
    "form_field",
    "require_refs",
    "require_writable",
    "see_other",
]
