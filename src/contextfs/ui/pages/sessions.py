"""Sessions: each op-log session's actors on a timeline, its pending ops, its commits; reverts.

A session's ops are read from its log (never changed here: only a write
page changes anything, and reverts work on commits, not on logs). "Pending"
means what ``contextfs oplog sessions`` and ``oplog show --pending`` mean:
the ops after the last checkpoint's cut, which the next crystallisation
will take in. The commits a session crystallised into are those whose
``metadata["oplog"]["session"]`` names it, found from every branch, tag and
the session's own ``refs/oplog/<session>``.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ...errors import RevisionError
from ...model.ids import ObjectId, short
from ...oplog.entry import check_session_id
from ...records import CommitInfo, Memory
from ...repo import Repository
from ..app import UI, Page
from ..timeline import Timeline, build_timeline, crystallised_by_session, timeline_svg
from ..writes import (
    RevertPlan,
    check_target,
    describe,
    do_revert,
    memories,
    moved_ref,
    plan_revert,
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

#: Ops drawn on each session's strip on the overview (the session's page draws all).
STRIP = 60


@dataclass(frozen=True, slots=True)
class SessionView:
    """One session as its pages show it."""

    name: str
    timeline: Timeline
    commits: tuple[CommitInfo, ...]
    checkpointed: int

    @property
    def ops(self) -> int:
        """How many ops the log holds."""
        return len(self.timeline.rows)


def session_views(repo: Repository, names: list[str]) -> list[SessionView]:
    """The sessions ``names``, read from their logs, each with its crystallised commits."""
    starts = {*repo.branches().values(), *repo.tags().values()}
    for name in names:
        with suppress(RevisionError):  # a session never crystallised has no ref
            starts.add(repo.resolve(f"refs/oplog/{name}"))
    found = crystallised_by_session(repo.log(sorted(starts))) if starts else {}
    return [_view(repo, name, found.get(name, [])) for name in names]


def _view(repo: Repository, name: str, commits: list[CommitInfo]) -> SessionView:
    log = repo.oplog(name)
    try:
        entries = log.read_all()
        pending, start, _ = log.pending()
    finally:
        log.close()
    timeline = build_timeline(entries, {entry["op_id"] for entry in pending})
    return SessionView(name, timeline, tuple(commits), start.ops)


async def sessions(ui: UI, request: Request) -> Response:
    def work(repo: Repository) -> list[SessionView]:
        return session_views(repo, repo.oplog_sessions())

    views = await ui.run(work)
    strips = {view.name: timeline_svg(view.timeline, last=STRIP) for view in views}
    return ui.render(request, "sessions.html", views=views, strips=strips, strip=STRIP)


async def session(ui: UI, request: Request) -> Response:
    name = check_session_id(request.path_params["name"])

    def work(repo: Repository) -> SessionView:
        if name not in repo.oplog_sessions():
            raise HTTPException(404, f"no session named {name!r} has an op log")
        return session_views(repo, [name])[0]

    view = await ui.run(work)
    return ui.render(request, "session.html", view=view, strip=timeline_svg(view.timeline))


# -- reverting an actor or a session ---------------------------------------------------


def revert_confirmation(plan: RevertPlan, author: str) -> Confirmation:
    """The confirmation page of a revert: which memories come back, which are left alone."""
    whose = f"actor {plan.name}" if plan.target == "actor" else f"session {plan.name}"
    where = f"branch {plan.branch}" if plan.branch else "the detached HEAD"
    scope = (
        f"every change actor {plan.name} made there, in any session or commit"
        if plan.target == "actor"
        else f"the changes of the commits session {plan.name} crystallised into there"
    )
    restored = Section(
        f"Restored to how they were before: {memories(len(plan.restored))}"
        " (a memory they added is removed)",
        tuple((short(r.id), r.now if r.now is not None else "(absent now)") for r in plan.restored),
    )
    conflicts = Section(
        f"Left as they are, because others changed them too: {memories(len(plan.conflicts))}",
        tuple((short(c.id), _conflict_text(c.ours, c.theirs)) for c in plan.conflicts),
    )
    sections = tuple(s for s in (restored, conflicts) if s.rows)
    if not plan.restored:
        return Confirmation(
            title=f"Revert {whose}",
            summary=f"Nothing can be reverted: every memory {whose} changed on {where}"
            " was changed by others too.",
            action="/revert",
            button="",
            back="/sessions",
            sections=sections,
            possible=False,
        )
    return Confirmation(
        title=f"Revert {whose}",
        summary=f"One new commit by {author} on {where} (now at {short(plan.head)}) undoes"
        f" {scope}: it restores {memories(len(plan.restored))}; no history is rewritten.",
        action="/revert",
        button=f"Revert {whose}",
        back="/sessions",
        fields={"target": plan.target, "name": plan.name, "head": plan.head},
        sections=sections,
    )


def _conflict_text(ours: Memory | None, theirs: Memory | None) -> str:
    return f"now: {describe(ours)} · before them: {describe(theirs)}"


def _target_of(values: dict[str, str]) -> tuple[str, str]:
    """(target, name) from ``?actor=`` or ``?session=`` (or the form's target and name)."""
    if "target" in values:
        return values["target"], form_field(values, "name")
    for target in ("actor", "session"):
        if target in values:
            return target, values[target].strip()
    return "", ""


async def confirm_revert(ui: UI, request: Request) -> Response:
    require_writable(ui, request)
    target_text, name = _target_of(dict(request.query_params))
    target = check_target(target_text, name)
    author = author_of(ui, request)

    def work(repo: Repository) -> RevertPlan:
        require_refs(request, [moved_ref(repo)])
        return plan_revert(repo, target, name)

    plan = await ui.run(work)
    confirm = revert_confirmation(plan, author)
    return ui.render(request, "confirm.html", confirm=confirm)


async def revert(ui: UI, request: Request) -> Response:
    form = await ui.check_write(request)
    target_text, name = _target_of(form)
    target = check_target(target_text, name)
    author = author_of(ui, request)
    head = form_field(form, "head")

    def work(repo: Repository) -> ObjectId:
        require_refs(request, [moved_ref(repo)])
        return do_revert(repo, target, name, author=author, head=head)

    commit = await ui.run(work)
    return see_other(f"/commit/{commit}")


ROUTES: list[tuple[str, Page, list[str]]] = [
    ("/sessions", sessions, ["GET"]),
    ("/sessions/{name}", session, ["GET"]),
    ("/revert", confirm_revert, ["GET"]),
    ("/revert", revert, ["POST"]),
]
