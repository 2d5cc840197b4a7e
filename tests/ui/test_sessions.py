"""Sessions and the UI's writes: the timeline, reverts, branches, merges, and who may write.

The read pages use the shared read-only server. Every write test starts its
own ``contextfs ui --write`` over a copy of the sample, so the shared one
stays as it was; each checks the repository itself afterwards, not only
the page.
"""

from __future__ import annotations

import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from html import unescape
from pathlib import Path
from urllib.parse import urlencode

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from contextfs.model.ids import ObjectId
from contextfs.model.objects import MemoryAtom
from contextfs.oplog import OpEntry, add_atom_op, make_op_entry
from contextfs.repo import Repository
from contextfs.tokens import Scope, mint, store_of
from contextfs.ui.timeline import build_timeline, crystallised_by_session, op_summary
from contextfs.ui.writes import AbortedMergeError, do_merge, plan_merge

from .conftest import Served, start_ui, status_of, stop_ui, texts

State = tuple[ObjectId | None, dict[str, ObjectId], dict[str, ObjectId]]


# -- helpers -------------------------------------------------------------------------


def copy_sample(sample: tuple[Path, dict[str, str]], tmp_path: Path) -> Path:
    """A private copy of the sample repository, for a server that writes."""
    folder = tmp_path / "memory"
    shutil.copytree(sample[0], folder)
    return folder


@contextmanager
def own_ui(folder: Path, *args: str) -> Iterator[str]:
    """A `contextfs ui` of this test's own, stopped (and checked quiet) at the end."""
    server, url = start_ui(folder, *args)
    try:
        yield url
    finally:
        assert stop_ui(server) == ""


def state(folder: Path) -> State:
    """What a refused write must leave alone: HEAD, the branches, the tags."""
    with Repository.open(folder) as repo:
        return repo.head(), repo.branches(), repo.tags()


def contents(folder: Path) -> set[str]:
    with Repository.open(folder) as repo:
        return {m.content for m in repo.snapshot() if isinstance(m, MemoryAtom)}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Keep a redirect as the answer: a write's 303 and where it points are what we check."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def request(
    url: str, fields: dict[str, str] | None = None, token: str | None = None
) -> tuple[int, str]:
    """A GET (or a form POST when ``fields`` is given) outside the browser.

    Returns the status and the body, or for a redirect the ``Location`` it names.
    """
    data = urlencode(fields).encode() if fields is not None else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with _opener.open(urllib.request.Request(url, data=data, headers=headers), timeout=20) as r:
            return int(r.status), r.read().decode()
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            return exc.code, exc.headers.get("Location", "")
        return exc.code, exc.read().decode()


def confirmed_post(url: str, confirm_path: str, token: str | None = None) -> tuple[int, str]:
    """Open a confirmation page and send its POST form as it is, as a script could."""
    status, page = request(url + confirm_path, token=token)
    assert status == 200, page
    action = re.search(r'<form method="post" action="([^"]+)"', page)
    assert action is not None, page
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
    return request(url + action.group(1), {k: unescape(v) for k, v in fields.items()}, token)


def submit_confirmed(browser: webdriver.Chrome, *, accept: bool = True) -> None:
    """Press the confirmation page's button and answer the browser's "are you sure?"."""
    summary = browser.find_element(By.CSS_SELECTOR, "p.summary").text
    button = browser.find_element(By.CSS_SELECTOR, "form.write button[type=submit]")
    button.click()
    alert = WebDriverWait(browser, 5).until(expected_conditions.alert_is_present())
    assert alert.text == summary  # the dialog repeats what the page said will happen
    if accept:
        alert.accept()
        WebDriverWait(browser, 10).until(expected_conditions.staleness_of(button))
    else:
        alert.dismiss()


def click_button(browser: webdriver.Chrome, label: str) -> None:
    buttons = [b for b in browser.find_elements(By.TAG_NAME, "button") if b.text == label]
    assert len(buttons) == 1, [b.text for b in browser.find_elements(By.TAG_NAME, "button")]
    buttons[0].click()
    WebDriverWait(browser, 10).until(expected_conditions.staleness_of(buttons[0]))


def op(actor: str, lamport: int, text: str) -> OpEntry:
    return make_op_entry(actor, "context", add_atom_op(text, "Fact"), lamport)


# -- pure parts ----------------------------------------------------------------------


def test_the_timeline_is_in_merge_order_with_a_lane_per_actor() -> None:
    late, first, tie = op("critic", 3, "late"), op("planner", 1, "first"), op("bot", 3, "tie")
    timeline = build_timeline([late, first, tie], pending={late["op_id"]})
    assert timeline.actors == ("planner", "bot", "critic")
    assert [(r.lamport, r.actor, r.lane, r.pending) for r in timeline.rows] == [
        (1, "planner", 0, False),
        (3, "bot", 1, False),  # a tie in stamps goes by actor, as crystallising does
        (3, "critic", 2, True),
    ]
    assert (timeline.pending, timeline.ops_by("critic")) == (1, 1)
    assert timeline.rows[0].kind == "context: add_atom"
    redacted = first.copy()
    redacted["redacted"] = "x" * 64
    assert op_summary(redacted) == "(redacted by a purge)"


def test_a_merge_that_conflicts_is_aborted_and_changes_nothing(tmp_path: Path) -> None:
    with Repository.init(tmp_path / "memory") as repo:
        oid = repo.add("Ship on Friday", "Decision")
        repo.commit("base", author="a")
        repo.switch("other", create=True)
        repo.update_entry(oid, relevance=0.1)
        repo.commit("other", author="a")
        repo.switch("main")
        repo.update_entry(oid, relevance=0.2)
        repo.commit("main", author="a")
        plan = plan_merge(repo, "other")
        assert (plan.kind, plan.incoming) == ("merge", 1)
        before = repo.head(), repo.branches()
        with pytest.raises(AbortedMergeError, match=r"conflicts on 1 memory, so nothing was"):
            do_merge(repo, "other", author="ui", ours=plan.ours, theirs=plan.theirs)
        assert (repo.head(), repo.branches()) == before
        status = repo.status()
        assert (status.merging, status.conflicts, status.changes) == (None, (), ())


def test_commits_are_grouped_by_the_session_they_crystallised(
    sample: tuple[Path, dict[str, str]],
) -> None:
    with Repository.open(sample[0]) as repo:
        found = crystallised_by_session(repo.log(["main"]))
    assert [info.id for info in found["planning"]] == [sample[1]["session"]]
    assert list(found) == ["planning"]


# -- the read pages, on the shared read-only server ----------------------------------


def test_sessions_lists_each_session_with_actors_pending_and_commits(
    served: Served, browser: webdriver.Chrome
) -> None:
    browser.get(served.url + "/sessions")
    assert browser.title == "Sessions · ContextFS"
    assert texts(browser, "table.sessions td.name") == ["planning"]
    assert texts(browser, "table.sessions td.actors-of") == ["planner (1), critic (1)"]
    assert texts(browser, "table.sessions td.ops") == ["2"]
    assert texts(browser, "table.sessions td.pending") == ["0"]
    link = browser.find_element(By.CSS_SELECTOR, "table.sessions td.crystallised a")
    assert link.get_attribute("href") == f"{served.url}/commit/{served.ids['session']}"
    dots = browser.find_elements(By.CSS_SELECTOR, "svg.timeline circle.op")
    assert len(dots) == 2
    assert browser.find_elements(By.CSS_SELECTOR, "form[action='/revert']") == []  # read-only
    assert texts(browser, "header .mode") == ["read-only"]
    browser.find_element(By.LINK_TEXT, "planning").click()
    assert browser.current_url == served.url + "/sessions/planning"


def test_a_session_page_shows_one_row_per_op_in_lamport_order(
    served: Served, browser: webdriver.Chrome
) -> None:
    browser.get(served.url + "/sessions/planning")
    assert texts(browser, "h1") == ["Session planning"]
    assert texts(browser, "table.timeline th.lane-head") == ["planner", "critic"]
    rows = browser.find_elements(By.CSS_SELECTOR, "table.timeline tbody tr")
    cells = [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]
    assert cells == [
        ["1", "planner", "", "context: add_atom", "Ship on Friday", "crystallised"],
        ["2", "", "critic", "context: add_atom", "Tests must pass first", "crystallised"],
    ]
    assert texts(browser, "table.crystallised td:nth-child(2)") == [
        "Crystallise session planning: 2 ops from 2 actors"
    ]
    assert browser.find_elements(By.CSS_SELECTOR, "div.undo") == []
    for path, status in [
        ("/sessions/nobody", 404),
        ("/sessions/a..b", 400),
        ("/revert?actor=critic", 403),
        ("/branches/new?name=x", 403),
        ("/merge?branch=research", 403),
    ]:
        assert status_of(served.url + path) == status, path


def test_branches_lists_branches_and_tags_without_forms_when_read_only(
    served: Served, browser: webdriver.Chrome
) -> None:
    browser.get(served.url + "/history")
    browser.find_element(By.LINK_TEXT, "Branches").click()
    assert texts(browser, "table.branches td.name") == ["main current", "research"]
    assert texts(browser, "table.tags td.name") == ["v1"]
    assert browser.find_elements(By.CSS_SELECTOR, "form.write") == []


def test_a_server_without_write_refuses_every_post(served: Served) -> None:
    before = state(served.repo)
    for path, fields in [
        ("/revert", {"target": "actor", "name": "critic", "head": before[0] or ""}),
        ("/branches/new", {"name": "sneaky", "target": before[0] or ""}),
        ("/merge", {"branch": "research", "ours": before[0] or "", "theirs": ""}),
    ]:
        status, page = request(served.url + path, fields)
        assert status == 403, page
        assert "this server is read-only: start it with --write" in page
    assert state(served.repo) == before


# -- writes, each on a server of its own ---------------------------------------------


def test_revert_the_critic_through_the_browser(
    sample: tuple[Path, dict[str, str]],
    tmp_path: Path,
    browser: webdriver.Chrome,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = copy_sample(sample, tmp_path)
    with Repository.open(folder) as repo:  # one op after the checkpoint: pending
        log = repo.oplog("planning")
        log.append(op("critic", log.next_lamport_ts(), "Lint before tests"))
        log.close()
    before = state(folder)
    start = before[0]
    assert start is not None
    monkeypatch.setenv("CONTEXTFS_AUTHOR", "ui-tester")
    with own_ui(folder, "--write") as url:
        browser.get(url + "/sessions")
        assert texts(browser, "header .mode") == ["read and write"]
        assert texts(browser, "table.sessions td.pending") == ["1"]
        assert len(browser.find_elements(By.CSS_SELECTOR, "svg.timeline circle.pending")) == 1
        click_button(browser, "Revert critic…")
        assert browser.current_url == url + "/revert?actor=critic"
        assert texts(browser, "h1") == ["Revert actor critic"]
        assert texts(browser, "p.summary") == [
            f"One new commit by ui-tester on branch main (now at {start[:12]}) undoes"
            " every change actor critic made there, in any session or commit: it restores"
            " 1 memory; no history is rewritten."
        ]
        assert texts(browser, "table.items td:nth-child(2)") == ["Tests must pass first"]
        submit_confirmed(browser, accept=False)  # "Cancel" in the browser's dialog
        assert browser.current_url == url + "/revert?actor=critic"
        assert state(folder) == before
        submit_confirmed(browser)
        head, _, _ = state(folder)
        assert head != before[0]
        assert browser.current_url == f"{url}/commit/{head}"
        browser.get(url + "/history")
        first = texts(browser, "table.commits tbody tr:first-child td")
        assert first[1] == "main Revert the changes of actor critic"
        assert first[2] == "ui-tester"
        browser.get(url + "/sessions/planning")
        assert texts(browser, "table.timeline td.state") == [
            "crystallised",
            "crystallised",
            "pending",
        ]
    found = contents(folder)
    assert "Tests must pass first" not in found
    assert {"Ship on Friday", "The user prefers short answers"} <= found
    with Repository.open(folder) as repo:
        commit = repo.load_commit(bytes.fromhex(head or ""))
        assert (commit.author, commit.metadata["revert"]["actor"]) == ("ui-tester", "critic")


def test_create_a_branch_then_merge_and_a_conflict_changes_nothing(
    sample: tuple[Path, dict[str, str]], tmp_path: Path, browser: webdriver.Chrome
) -> None:
    folder = copy_sample(sample, tmp_path)
    ids = sample[1]
    with Repository.open(folder) as repo:
        repo.switch("feature", create=True)
        repo.add("Feature flags live in flags.yaml", "Fact")
        repo.commit("Flags", author="dev")
        repo.switch("clash", create=True)
        repo.update_entry(ids["short"], relevance=0.1)
        repo.commit("Short answers matter less", author="dev")
        repo.switch("main")
        repo.add("Releases are tagged", "Fact")
        repo.update_entry(ids["short"], relevance=0.2)
        repo.commit("Main moves on", author="dev")
    with own_ui(folder, "--write") as url:
        browser.get(url + "/branches")
        browser.find_element(By.NAME, "name").send_keys("topic")
        at = browser.find_element(By.NAME, "at")
        at.clear()
        at.send_keys("v1")
        click_button(browser, "Create…")
        assert texts(browser, "h1") == ["Create branch topic"]
        assert f"at commit {ids['forget'][:12]} (v1:" in texts(browser, "p.summary")[0]
        submit_confirmed(browser)
        assert browser.current_url == url + "/history?rev=topic"
        assert state(folder)[1]["topic"] == ids["forget"]

        browser.get(url + "/branches")
        merge_form = browser.find_element(By.ID, "merge-branch")
        merge_form.find_element(By.CSS_SELECTOR, "option[value=feature]").click()
        click_button(browser, "Merge…")
        assert "one merge commit by" in texts(browser, "p.summary")[0]
        assert texts(browser, "table.items td:nth-child(2)") == ["Flags"]
        submit_confirmed(browser)
        head, branches, _ = state(folder)
        assert browser.current_url == f"{url}/commit/{head}"
        with Repository.open(folder) as repo:
            info = next(repo.log(limit=1))
            assert info.parents[1] == branches["feature"]
            assert info.commit.summary == "Merge feature into main"
        assert {"Feature flags live in flags.yaml", "Releases are tagged"} <= contents(folder)

        before = state(folder)
        browser.get(url + "/merge?branch=clash")
        submit_confirmed(browser)
        assert texts(browser, ".error h1") == ["409: Merge clash: conflicts"]
        assert texts(browser, "table.items td.id") == [ids["short"][:12]]
        assert "The user prefers short answers" in texts(browser, "table.items td")[1]
        status, page = confirmed_post(url, "/merge?branch=clash")
        assert status == 409, page
        assert state(folder) == before
    with Repository.open(folder) as repo:
        status_now = repo.status()
        assert (status_now.merging, status_now.conflicts, status_now.changes) == (None, (), ())


def test_forged_and_stale_posts_change_nothing(
    sample: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder = copy_sample(sample, tmp_path)
    before = state(folder)
    head = before[0] or ""
    with own_ui(folder, "--write") as url:
        for fields in [
            {"target": "actor", "name": "critic", "head": head},
            {"target": "actor", "name": "critic", "head": head, "csrf": "0" * 64},
        ]:
            status, page = request(url + "/revert", fields)
            assert status == 403, page
            assert "the form is stale or forged: reload the page and try again" in page
        for path, fields in [
            ("/branches/new", {"name": "forged", "target": head}),
            ("/merge", {"branch": "research", "ours": head, "theirs": before[1]["research"]}),
        ]:
            assert request(url + path, fields)[0] == 403
        assert state(folder) == before

        # A real form, but the branch moved after it was shown: refused, not redone blindly.
        _, page = request(url + "/revert?actor=critic")
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
        assert csrf is not None
        stale = {"target": "actor", "name": "critic", "head": before[1]["research"]}
        status, page = request(url + "/revert", {**stale, "csrf": csrf.group(1)})
        assert status == 409, page
        assert "HEAD moved since you confirmed" in page
        assert state(folder) == before

        status, location = confirmed_post(url, "/revert?actor=critic")  # the real thing works
        after = state(folder)[0]
        assert (status, location) == (303, f"/commit/{after}")
        assert after != head


def test_tokens_decide_who_reads_who_writes_and_who_is_the_author(
    sample: tuple[Path, dict[str, str]], tmp_path: Path, browser: webdriver.Chrome
) -> None:
    folder = copy_sample(sample, tmp_path)
    with Repository.open(folder) as repo:
        tokens = store_of(repo.store)
        reader, record = mint("reader", Scope.READ, created_by="test")
        tokens.add_token(record)
        writer, record = mint("ci-bot", Scope.WRITE, created_by="test")
        tokens.add_token(record)
    before = state(folder)
    try:
        with own_ui(folder, "--write") as url:
            assert status_of(url + "/sessions") == 401
            assert request(url + "/revert", {"target": "actor", "name": "critic"})[0] == 401

            browser.get(f"{url}/sessions?token={reader}")
            assert browser.current_url == url + "/sessions"  # the token left the address bar
            assert texts(browser, "table.sessions td.name") == ["planning"]
            assert texts(browser, "header .mode") == ["as reader · read-only"]  # who is signed in
            assert browser.find_elements(By.CSS_SELECTOR, "form[action='/revert']") == []
            cookies = {c["name"]: c for c in browser.get_cookies()}
            session = cookies[f"contextfs_session_{url.rsplit(':', 1)[1]}"]
            assert reader not in session["value"]  # the cookie names a session, not the token
            assert (session["httpOnly"], session["sameSite"]) == (True, "Lax")
            browser.get(url + "/revert?actor=critic")
            assert texts(browser, ".error h1") == ["403: not allowed"]
            fields = {"target": "actor", "name": "critic", "head": before[0] or ""}
            status, page = request(url + "/revert", fields, token=reader)
            assert status == 403
            assert "the token reader is read-only: it cannot write" in page
            assert state(folder) == before

            browser.get(f"{url}/sessions?token={writer}")
            assert texts(browser, "header .mode") == ["as ci-bot · read and write"]
            click_button(browser, "Revert critic…")
            assert "One new commit by ci-bot on branch main" in texts(browser, "p.summary")[0]
            submit_confirmed(browser)
            head = state(folder)[0]
            assert browser.current_url == f"{url}/commit/{head}"
    finally:
        browser.delete_all_cookies()  # cookies are per host, not per port
    with Repository.open(folder) as repo:
        assert repo.load_commit(bytes.fromhex(head or "")).author == "ci-bot"


def test_other_sites_can_neither_read_nor_post(
    sample: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder = copy_sample(sample, tmp_path)
    before = state(folder)
    with own_ui(folder, "--write") as url:
        # A site that rebinds its own name to 127.0.0.1 sends its own Host: refused.
        rebound = urllib.request.Request(
            url + "/revert?actor=critic", headers={"Host": "evil.test"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(rebound, timeout=20)
        assert refused.value.code == 400
        refused.value.close()
        # A form another site posts, even with a valid field, says where it came from.
        _, page = request(url + "/revert?actor=critic")
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
        assert csrf is not None
        fields = {"target": "actor", "name": "critic", "head": before[0] or "", "csrf": csrf[1]}
        forged = urllib.request.Request(
            url + "/revert",
            data=urlencode(fields).encode(),
            headers={"Origin": "http://evil.test"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=20)
        assert refused.value.code == 403
        assert "the form came from another site" in refused.value.read().decode()
        refused.value.close()
        assert state(folder) == before
