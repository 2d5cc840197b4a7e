"""The Commit and Proof pages in a real browser: diffs, Merkle roots, proofs that verify."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from urllib.parse import quote

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from contextfs.records import Change
from contextfs.repo import Repository
from contextfs.ui.pages.commit import diff_rows
from contextfs.ui.pages.proof import proof_view

from .conftest import Served, status_of, texts


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `contextfs` as a user would: a separate process."""
    argv = [sys.executable, "-m", "contextfs", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def diff_table(browser: webdriver.Chrome) -> list[tuple[str, str, str]]:
    """The diff's rows as (status, memory link, content cell text)."""
    rows = []
    for row in browser.find_elements(By.CSS_SELECTOR, "table.diff tbody tr"):
        status = row.find_element(By.CSS_SELECTOR, "td.status").get_attribute("title") or ""
        link = row.find_element(By.CSS_SELECTOR, "td a.id").get_attribute("href") or ""
        rows.append((status, link, row.find_element(By.CSS_SELECTOR, "td.content").text))
    return rows


def test_a_merge_shows_its_diff_against_its_first_parent(
    served: Served, browser: webdriver.Chrome
) -> None:
    ids, url = served.ids, served.url
    browser.get(f"{url}/commit/{ids['merge']}")
    assert browser.title == f"Commit {ids['merge'][:12]} · ContextFS"
    assert texts(browser, "dd.author") == ["planner"]
    parents = browser.find_elements(By.CSS_SELECTOR, "dd.parents a")
    assert [a.get_attribute("href") for a in parents] == [
        f"{url}/commit/{ids['session']}",
        f"{url}/commit/{ids['research']}",
    ]
    assert texts(browser, "dd.parents") == [
        f"{ids['session'][:12]} Crystallise session planning: 2 ops from 2 actors\n"
        f"{ids['research'][:12]} Research: the database"
    ]
    assert texts(browser, "pre.commit-message") == ["Merge research into main"]
    assert texts(browser, "p.merge-note") == [
        "A merge of 2 parents: these are its changes against its first parent, "
        f"{ids['session'][:12]}."
    ]
    # Against the session commit (its first parent), the merge brought research's work.
    assert diff_table(browser) == [
        ("added", f"{url}/memory/{ids['postgres']}", "PostgreSQL 16 is the database"),
        (
            "changed",
            f"{url}/memory/{ids['tuesdays']}",
            "Deploys happen on Tuesdays\nrelevance 1.0 → 0.4",
        ),
    ]
    # The Merkle root is the snapshot root `contextfs show --json` reports.
    shown = cli("--repo", str(served.repo), "show", ids["merge"], "--json")
    assert shown.returncode == 0, shown.stderr
    assert texts(browser, "code.merkle-root") == [json.loads(shown.stdout)["commit"]["snapshot"]]


def test_the_research_commit_shows_the_changed_relevance_old_to_new(
    served: Served, browser: webdriver.Chrome
) -> None:
    ids, url = served.ids, served.url
    browser.get(f"{url}/commit/research")  # a branch name resolves to its commit
    assert texts(browser, "h1") == [f"Commit {ids['research'][:12]} research"]
    assert texts(browser, "dd.refs") == ["research"]
    assert texts(browser, "dd.actors") == []  # not a session: no actors row
    assert texts(browser, "li[data-field=relevance] del.old") == ["1.0"]
    assert texts(browser, "li[data-field=relevance] ins.new") == ["0.4"]
    assert [status for status, _, _ in diff_table(browser)] == ["added", "changed"]
    prove = browser.find_elements(By.CSS_SELECTOR, "table.diff td.prove a")
    assert [a.get_attribute("href") for a in prove] == [
        f"{url}/prove/{ids['research']}/{ids['postgres']}",
        f"{url}/prove/{ids['research']}/{ids['tuesdays']}",
    ]
    browser.get(f"{url}/commit/{ids['session'][:8]}")  # so does a short prefix
    assert texts(browser, "dd.actors") == ["critic, planner"]
    assert texts(browser, "dd.parents a") == [ids["first"][:12]]
    browser.get(f"{url}/commit/{quote('HEAD~4')}")
    assert texts(browser, "dd.parents") == ["none: the first commit"]
    assert len(diff_table(browser)) == 2


def test_the_purge_commit_shows_the_removed_secret_as_purged(
    served: Served, browser: webdriver.Chrome
) -> None:
    ids, url = served.ids, served.url
    browser.get(f"{url}/commit/v1")
    assert texts(browser, "dd.refs") == ["main tag: v1"]
    assert texts(browser, "dd.author") == ["admin"]
    assert texts(browser, "h2 .counts") == ["+0 ~0 −1"]
    assert diff_table(browser) == [("removed", f"{url}/memory/{ids['secret']}", "[purged] purged")]
    assert "hunter2" not in browser.page_source
    links = browser.find_elements(By.CSS_SELECTOR, "table.diff td.prove a")
    assert [(a.text, a.get_attribute("href")) for a in links] == [
        ("prove absent", f"{url}/prove/{ids['forget']}/{ids['secret']}"),
        ("prove in parent", f"{url}/prove/{served_parent(served)}/{ids['secret']}"),
    ]


def served_parent(served: Served) -> str:
    """The commit that noted the secret: the purge commit's first parent."""
    with Repository.open(served.repo) as repo:
        return repo.resolve(f"{served.ids['forget']}~1")


def test_a_proof_verifies_on_the_page_and_its_json_with_verify_proof(
    served: Served, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    ids, url = served.ids, served.url
    noted = served_parent(served)
    browser.get(f"{url}/prove/{quote('HEAD~1')}/{ids['secret'][:10]}")
    assert texts(browser, "h1") == [f"Proof: memory {ids['secret'][:12]} is in commit {noted[:12]}"]
    assert texts(browser, ".verdict .verified") == ["verified ✓"]
    assert texts(browser, "dd.memory .badge.purged") == ["purged"]  # and still it verifies
    assert texts(browser, "code.key") == [ids["secret"]]
    assert texts(browser, "code.commit-id") == [noted]
    assert len(texts(browser, "ol.proof-path li.step")) == 2  # the leaf node (the root), the root
    root = texts(browser, "code.merkle-root")[0]
    link = browser.find_element(By.CSS_SELECTOR, "a.download")
    href = link.get_attribute("href") or ""
    assert href == f"{url}/prove/{noted}/{ids['secret']}.json"
    with urllib.request.urlopen(href, timeout=20) as response:
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["Content-Disposition"] == (
            f'attachment; filename="contextfs-proof-{ids["secret"][:12]}-{noted[:12]}.json"'
        )
        body = response.read()
    document = json.loads(body)
    assert (document["kind"], document["key"], document["commit_id"]) == (
        "membership",
        ids["secret"],
        noted,
    )
    saved = tmp_path / "proof.json"
    saved.write_bytes(body)
    checked = cli("verify-proof", str(saved), "--commit", noted)
    assert (checked.returncode, checked.stdout) == (
        0,
        f"OK: memory {ids['secret'][:12]} is in commit {noted[:12]}\n",
    )
    wrong = cli("verify-proof", str(saved), "--commit", ids["forget"])
    assert wrong.returncode == 9  # the proof binds that commit and no other
    # The page's root is the one the commit names (and `contextfs show` reports).
    browser.get(f"{url}/commit/{noted}")
    assert texts(browser, "code.merkle-root") == [root]


def test_a_removed_memory_is_proven_absent(served: Served, browser: webdriver.Chrome) -> None:
    ids, url = served.ids, served.url
    browser.get(f"{url}/prove/{ids['forget']}/{ids['secret']}")
    assert texts(browser, "h1") == [
        f"Proof: memory {ids['secret'][:12]} is not in commit {ids['forget'][:12]}"
    ]
    assert texts(browser, ".verdict .verified") == ["verified ✓"]
    assert texts(browser, "dd.memory")[0].startswith("not in this commit purged")


def test_click_through_from_history_to_a_commit_to_a_proof(
    served: Served, browser: webdriver.Chrome
) -> None:
    ids, url = served.ids, served.url
    browser.get(url + "/history")
    row = browser.find_element(By.XPATH, "//tr[td[contains(., 'Research: the database')]]")
    row.find_element(By.CSS_SELECTOR, "a.id").send_keys(Keys.ENTER)  # by keyboard: real links
    assert browser.current_url == f"{url}/commit/{ids['research']}"
    changed = browser.find_element(By.CSS_SELECTOR, "table.diff tr.row-changed")
    changed.find_element(By.LINK_TEXT, "prove").click()
    assert browser.current_url == f"{url}/prove/{ids['research']}/{ids['tuesdays']}"
    assert texts(browser, ".verdict .verified") == ["verified ✓"]
    assert texts(browser, "dd.memory .text") == ["Deploys happen on Tuesdays"]
    browser.find_element(By.CSS_SELECTOR, "h1 a[href^='/commit/']").click()
    assert browser.current_url == f"{url}/commit/{ids['research']}"


def test_the_diff_stays_readable_in_dark_mode(served: Served, browser: webdriver.Chrome) -> None:
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
    )
    try:
        browser.get(f"{served.url}/commit/research")
        style = browser.execute_script(
            "const css = (s, p) => getComputedStyle(document.querySelector(s))[p];"
            "return [css('body', 'backgroundColor'), css('ins.new', 'color'),"
            " css('del.old', 'color'), css('table.diff td.content', 'color')];"
        )
        # The dark palette's variables: background, added, removed, text.
        assert style == [
            "rgb(13, 17, 23)",
            "rgb(63, 185, 80)",
            "rgb(248, 81, 73)",
            "rgb(230, 237, 243)",
        ]
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_bad_input_is_a_page_with_a_status(served: Served, browser: webdriver.Chrome) -> None:
    ids, url = served.ids, served.url
    for path, status, message in [
        ("/commit/no-such-branch", 404, "unknown revision 'no-such-branch'"),
        (f"/commit/{quote('HEAD~99')}", 404, "revision 'HEAD~99' goes past a root commit"),
        (f"/commit/{quote('<b>')}", 400, "not a revision: '<b>'"),
        (f"/prove/HEAD/{ids['tuesdays'][:3]}", 400, "a memory id is 4 to 64 hex digits, got 'b28'"),
        ("/prove/HEAD/not-hex", 400, "a memory id is 4 to 64 hex digits, got 'not-hex'"),
        ("/prove/HEAD/not-hex.json", 400, "got 'not-hex'"),
        ("/prove/HEAD/ffff", 404, "unknown memory 'ffff'"),
        ("/prove/HEAD/" + "f" * 64, 404, f"unknown memory '{'f' * 64}'"),
        (f"/prove/HEAD/{ids['first']}", 404, "unknown memory"),  # a commit is not a memory
        (f"/prove/no-such-branch/{ids['tuesdays']}", 404, "unknown revision 'no-such-branch'"),
        (f"/prove/no-such-branch/{ids['tuesdays']}.json", 404, "unknown revision"),
    ]:
        assert status_of(url + path) == status, path
        browser.get(url + path)
        assert browser.find_element(By.CSS_SELECTOR, ".error h1").text.startswith(str(status))
        assert message in browser.find_element(By.CSS_SELECTOR, ".error .message").text


# -- the pure parts -----------------------------------------------------------------------


def test_diff_rows_group_by_status_and_name_each_changed_field() -> None:
    with Repository.memory() as repo:
        kept = repo.add("Kept", "Fact", relevance=0.5, tags=["a"])
        gone = repo.add("Gone", "Fact")
        repo.commit("one", author="t")
        repo.update_entry(kept, relevance=0.25, tags=["a", "b"])
        repo.remove(gone)
        new = repo.add("New", "Fact")
        repo.commit("two", author="t")
        _, changes = repo.show()
    rows = diff_rows(changes, purged={gone})
    assert [(r.status, r.id, r.purged) for r in rows] == [
        ("added", new, False),
        ("changed", kept, False),
        ("removed", gone, True),
    ]
    assert [(f.name, f.old, f.new) for f in rows[1].fields] == [
        ("relevance", "0.5", "0.25"),
        ("tags", "a", "a, b"),
    ]
    assert diff_rows([Change("added", new, None, None)], purged=()) == []


def test_a_proof_view_links_each_level_to_the_next() -> None:
    with Repository.memory() as repo:
        atoms = [repo.add(f"Fact number {n}", "Fact") for n in range(40)]  # over one leaf
        commit = repo.commit("many", author="t")
        view = proof_view(repo.prove(atoms[7], commit), commit)
    assert view.member
    assert view.levels == len(view.steps) >= 2
    assert view.steps[-1].node == view.root  # the path climbs from the leaf node to the root
    assert view.steps[0].node == view.deepest
    assert not view.steps[0].interior
    for lower, upper in zip(view.steps, view.steps[1:], strict=False):
        assert upper.interior
        assert upper.child == lower.node  # each level names the node below it
        assert upper.nibble == int(view.key[upper.depth], 16)  # along the key's nibbles
