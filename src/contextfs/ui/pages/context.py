"""What the agent sees: the prompt a revision gives for a query and budget, and its receipt.

Invariants this module owns:

* every figure on the page comes from :meth:`Repository.context` and
  :meth:`Repository.turn_context`, the same calls ``contextfs expand`` makes,
  and the receipt download is byte for byte what ``contextfs expand --receipt``
  (``--turn --receipt`` with ``turn``) writes for the same arguments;
* a budget is a whole number from 1 to :data:`MAX_BUDGET`: the library takes
  any size and reads as many memories as fit, so without this ceiling one
  URL could make the server render the whole store into one page.

Checking a receipt, the page's last form, is :mod:`.receipts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeGuard
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from ...errors import InvalidInputError
from ...expand.receipt import Receipt
from ...expand.render import FORMATS, Format, check_format
from ...model.ids import short
from ...model.timeutil import from_micros
from ...records import PromptContext, TurnContext
from ...repo import Repository
from ...services.assembler import RETRIEVALS, Retrieval
from ..app import UI, Page

#: The budget the form starts with: the MCP ``context`` tool's default.
DEFAULT_BUDGET: Final = 4_000
#: The largest budget the page assembles; the MCP tools' ceiling too (a prompt, not a dump).
MAX_BUDGET: Final = 1_000_000
#: The longest query and revision taken (the MCP tools' limits).
MAX_QUERY: Final = 10_000
MAX_REVISION: Final = 1_000


@dataclass(frozen=True, slots=True)
class ContextForm:
    """What the page assembles: the arguments of ``contextfs expand``, checked."""

    rev: str = "HEAD"
    query: str | None = None
    budget: int = DEFAULT_BUDGET
    format: Format = "lines"
    retrieval: Retrieval | None = None  # None: the repository's default
    turn: bool = False

    def link(self, **changes: object) -> str:
        """This form as a query string (defaults left out), with ``changes`` applied."""
        values: dict[str, object] = {
            "rev": self.rev if self.rev != "HEAD" else None,
            "query": self.query,
            "budget": self.budget,
            "format": self.format if self.format != "lines" else None,
            "retrieval": self.retrieval,
            "turn": 1 if self.turn else None,
            **changes,
        }
        kept = {key: str(value) for key, value in values.items() if value not in (None, "")}
        return "?" + urlencode(kept)


def context_form(params: Mapping[str, str]) -> ContextForm:
    """The form in a query string; a malformed field is an :class:`InvalidInputError`.

    An empty field takes its default, so the bare page shows what HEAD gives.
    """
    rev = params.get("rev", "").strip() or "HEAD"
    if len(rev) > MAX_REVISION:
        raise InvalidInputError(f"rev must be at most {MAX_REVISION:,} characters")
    query = params.get("query", "").strip() or None
    if query is not None and len(query) > MAX_QUERY:
        raise InvalidInputError(
            f"query must be at most {MAX_QUERY:,} characters, got {len(query):,}"
        )
    retrieval = params.get("retrieval", "").strip() or None
    if retrieval is not None and not is_retrieval(retrieval):
        raise InvalidInputError(
            f"retrieval must be one of {', '.join(RETRIEVALS)}, got {retrieval!r}"
        )
    return ContextForm(
        rev=rev,
        query=query,
        budget=parse_budget(params.get("budget", "")),
        format=check_format(params.get("format", "").strip() or "lines"),
        retrieval=retrieval,
        turn=params.get("turn", "") not in ("", "0"),
    )


def is_retrieval(value: object) -> TypeGuard[Retrieval]:
    """Whether ``value`` names a way to find memories for a query."""
    return isinstance(value, str) and value in RETRIEVALS


def parse_budget(text: str) -> int:
    """A budget field: empty for :data:`DEFAULT_BUDGET`, else a whole number in range.

    Zero is refused although the library takes it: it always gives an empty
    prompt, which on this page can only be a typing slip.
    """
    text = text.strip()
    if not text:
        return DEFAULT_BUDGET
    # Digits only, and few of them: int() of a long string costs more than the page.
    if text.isascii() and text.isdigit() and len(text) <= len(str(MAX_BUDGET)):
        budget = int(text)
        if 1 <= budget <= MAX_BUDGET:
            return budget
    raise InvalidInputError(
        f"budget must be a whole number of tokens from 1 to {MAX_BUDGET:,}, got {text[:40]!r}"
    )


@dataclass(frozen=True, slots=True)
class ContextView:
    """The prompt a form gives, the turn view if asked, and the commit they came from."""

    context: PromptContext
    turn: TurnContext | None
    summary: str
    when: str


def assemble(repo: Repository, form: ContextForm) -> PromptContext:
    """The prompt ``contextfs expand`` prints for the same arguments."""
    return repo.context(
        form.rev,
        budget=form.budget,
        query=form.query,
        format=form.format,
        retrieval=form.retrieval,
    )


def assemble_turn(repo: Repository, form: ContextForm) -> TurnContext:
    """The first turn ``contextfs expand --turn`` prints (the page keeps no state between)."""
    return repo.turn_context(
        form.query, budget=form.budget, revision=form.rev, retrieval=form.retrieval
    )


def context_view(repo: Repository, form: ContextForm) -> ContextView:
    """Everything the page shows for ``form``."""
    context = assemble(repo, form)
    turn = assemble_turn(repo, form) if form.turn else None
    commit = repo.load_commit(bytes.fromhex(context.receipt.commit))
    return ContextView(
        context=context,
        turn=turn,
        summary=commit.summary,
        when=moment(context.receipt.now),
    )


def receipt_of(repo: Repository, form: ContextForm) -> Receipt:
    """The receipt ``expand --receipt`` writes: the turn's with ``turn``, else the prompt's."""
    return (assemble_turn(repo, form) if form.turn else assemble(repo, form)).receipt


def moment(micros: int) -> str:
    return from_micros(micros).strftime("%Y-%m-%d %H:%M:%S UTC")


def render_page(ui: UI, request: Request, form: ContextForm, **values: Any) -> Response:
    return ui.render(
        request,
        "context.html",
        form=form,
        formats=FORMATS,
        retrievals=RETRIEVALS,
        max_budget=MAX_BUDGET,
        **values,
    )


async def context_page(ui: UI, request: Request) -> Response:
    form = context_form(request.query_params)
    view: ContextView = await ui.run(lambda repo: context_view(repo, form))
    return render_page(ui, request, form, view=view)


async def receipt_download(ui: UI, request: Request) -> Response:
    form = context_form(request.query_params)
    receipt: Receipt = await ui.run(lambda repo: receipt_of(repo, form))
    name = f"receipt-{short(receipt.commit)}{'-turn' if form.turn else ''}.json"
    return Response(
        (receipt.to_json() + "\n").encode(),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


ROUTES: list[tuple[str, Page, list[str]]] = [
    ("/context", context_page, ["GET"]),
    ("/context/receipt", receipt_download, ["GET"]),
]
