"""Branches: every branch and tag, with forms to create a branch and to merge one into HEAD.

The forms lead to confirmation pages (GET, changing nothing) whose POST
forms do the write; see :mod:`contextfs.ui.writes` for how a write is pinned
to what its confirmation showed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from ...model import refs as refnames
from ...model.ids import ObjectId, short
from ...records import CommitInfo
from ...repo import Repository
from ..app import UI, Page
from ..writes import (
    AbortedMergeError,
    BranchPlan,
    MergePlan,
    describe,
    do_branch,
    do_merge,
    memories,
    moved_ref,
    plan_branch,
    plan_merge,
)
from .writing import (
    Confirmation,
    Section,
    author_of,
    form_field,
    require_refs,
    require_writable,
    see_other,
)


@dataclass(frozen=True, slots=True)
class RefRow:
    """A branch or tag and the commit it names."""

    name: str
    info: CommitInfo
    current: bool


def ref_rows(repo: Repository, refs: dict[str, ObjectId], current: str | None) -> list[RefRow]:
    """``refs`` sorted by name, each with its commit."""
    return [
        RefRow(name, next(repo.log([oid], limit=1)), name == current)
        for name, oid in sorted(refs.items())
    ]


async def branches(ui: UI, request: Request) -> Response:
    def work(repo: Repository) -> tuple[list[RefRow], list[RefRow], str | None]:
        current = repo.current_branch
        return (
            ref_rows(repo, repo.branches(), current),
            ref_rows(repo, repo.tags(), None),
            current,
        )

    heads, tags, current = await ui.run(work)
    return ui.render(request, "branches.html", heads=heads, tags=tags, current=current)


# -- creating a branch -----------------------------------------------------------------


def branch_confirmation(plan: BranchPlan) -> Confirmation:
    """The confirmation page of creating a branch: its name and the exact commit."""
    commit = plan.target
    return Confirmation(
        title=f"Create branch {plan.name}",
        summary=f"Create branch {plan.name} at commit {commit.short_id}"
        f" ({plan.at}: {commit.commit.summary!r}). No memory changes and HEAD stays where it is.",
        action="/branches/new",
        button=f"Create branch {plan.name}",
        back="/branches",
        fields={"name": plan.name, "target": commit.id},
    )


async def confirm_branch(ui: UI, request: Request) -> Response:
    require_writable(ui, request)
    name = request.query_params.get("name", "").strip()
    at = request.query_params.get("at", "").strip() or "HEAD"
    require_refs(request, [refnames.branch_ref(name)])
    plan = await ui.run(lambda repo: plan_branch(repo, name, at))
    return ui.render(request, "confirm.html", confirm=branch_confirmation(plan))


async def create_branch(ui: UI, request: Request) -> Response:
    form = await ui.check_write(request)
    name, target = form_field(form, "name"), form_field(form, "target")
    require_refs(request, [refnames.branch_ref(name)])

    def work(repo: Repository) -> ObjectId:
        plan_branch(repo, name, target)  # the same checks as the confirmation
        return do_branch(repo, name, target)

    await ui.run(work)
    return see_other("/history?" + urlencode({"rev": name}))


# -- merging a branch into HEAD --------------------------------------------------------


def merge_confirmation(plan: MergePlan, author: str) -> Confirmation:
    """The confirmation page of a merge: how it will go, and what it brings in."""
    into = f"branch {plan.current}" if plan.current else "the detached HEAD"
    brought = Section(
        f"Commits it brings in: {plan.incoming}"
        + (f" (the newest {len(plan.listed)} shown)" if plan.incoming > len(plan.listed) else ""),
        tuple((info.short_id, info.commit.summary) for info in plan.listed),
    )
    base = Confirmation(
        title=f"Merge {plan.branch}",
        summary="",
        action="/merge",
        button=f"Merge {plan.branch} into {plan.current or 'HEAD'}",
        back="/branches",
        fields={"branch": plan.branch, "ours": plan.ours or "", "theirs": plan.theirs},
        sections=(brought,) if brought.rows else (),
    )
    if plan.kind == "up-to-date":
        summary = f"Nothing to merge: {into} already contains {plan.branch}."
        return replace(base, summary=summary, possible=False)
    if plan.kind == "fast-forward":
        summary = (
            f"Fast-forward {into} from {short(plan.ours) if plan.ours else 'nothing'}"
            f" to {plan.branch} ({short(plan.theirs)}): no new commit, no memory conflicts."
        )
    else:
        summary = (
            f"Merge {plan.branch} ({short(plan.theirs)}) into {into}"
            f" ({short(plan.ours) if plan.ours else 'empty'}): one merge commit by {author}"
            " with both as parents. If any memory conflicts, nothing is changed and the"
            " conflicts are listed."
        )
    return replace(base, summary=summary)


async def confirm_merge(ui: UI, request: Request) -> Response:
    require_writable(ui, request)
    branch = request.query_params.get("branch", "").strip()
    author = author_of(ui, request)

    def work(repo: Repository) -> MergePlan:
        require_refs(request, [moved_ref(repo)])
        return plan_merge(repo, branch)

    plan = await ui.run(work)
    return ui.render(request, "confirm.html", confirm=merge_confirmation(plan, author))


async def merge(ui: UI, request: Request) -> Response:
    form = await ui.check_write(request)
    branch = form_field(form, "branch")
    author = author_of(ui, request)

    def work(repo: Repository) -> tuple[str, ObjectId | None]:
        require_refs(request, [moved_ref(repo)])
        return do_merge(
            repo,
            branch,
            author=author,
            ours=form_field(form, "ours") or None,
            theirs=form_field(form, "theirs"),
        )

    try:
        status, commit = await ui.run(work)
    except AbortedMergeError as exc:
        confirm = _conflicts_page(branch, exc)
        return ui.render(request, "confirm.html", status=409, status_code=409, confirm=confirm)
    return see_other(f"/commit/{commit}" if status != "up-to-date" and commit else "/history")


def _conflicts_page(branch: str, exc: AbortedMergeError) -> Confirmation:
    """The 409 page of a merge stopped on conflicts: each one, and that nothing changed."""
    rows = tuple(
        (short(c.id), f"ours: {describe(c.ours)} · theirs: {describe(c.theirs)}")
        for c in exc.conflicts
    )
    return Confirmation(
        title=f"Merge {branch}: conflicts",
        summary=f"Merging {branch} conflicts on {memories(len(rows))}, so nothing was changed:"
        " the merge was aborted. Resolve them with the CLI (contextfs merge), or change"
        " one side first.",
        action="/merge",
        button="",
        back="/branches",
        sections=(Section(f"Conflicting memories: {len(rows)}", rows),),
        possible=False,
    )


ROUTES: list[tuple[str, Page, list[str]]] = [
    ("/branches", branches, ["GET"]),
    ("/branches/new", confirm_branch, ["GET"]),
    ("/branches/new", create_branch, ["POST"]),
    ("/merge", confirm_merge, ["GET"]),
    ("/merge", merge, ["POST"]),
]
