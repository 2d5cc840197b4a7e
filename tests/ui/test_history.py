"""The History page in a real browser: the graph, the commits, filters, pages, bad input."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from .conftest import Served, status_of, texts


def test_history_shows_the_graph_refs_authors_actors_and_counts(
    served: Served, browser: webdriver.Chrome
) -> None:
    browser.get(served.url + "/")
    assert browser.current_url == served.url + "/history"  # the home page is History
    assert browser.title == "History · ContextFS"
    summaries = texts(browser, "table.commits tbody td:nth-child(2)")
    assert summaries == [
        "main tag: v1 Forget the staging password",
        "Note the staging password",
        "Merge research into main",
        "Crystallise session planning: 2 ops from 2 actors",
        "research Research: the database",
        "Remember the basics",
    ]
    people = texts(browser, "table.commits tbody td:nth-child(3)")
    assert people == [
        "admin",
        "planner",
        "planner",
        "critic, planner (critic, planner)",
        "researcher",
        "planner",
    ]
    counts = texts(browser, "table.commits tbody td.counts")
    assert counts[0] == "+0 ~0 −1"  # the forgotten password
    circles = browser.find_elements(By.CSS_SELECTOR, "svg.graph circle")
    assert len(circles) == len(summaries)
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.graph circle.merge")) == 1
    lanes = {c.get_attribute("cx") for c in circles}
    assert len(lanes) == 2  # the research branch ran beside main until the merge


def test_filters_narrow_history_and_the_revision_switches_it(
    served: Served, browser: webdriver.Chrome
) -> None:
    browser.get(served.url + "/history")
    field = browser.find_element(By.NAME, "author")
    field.send_keys("researcher", Keys.ENTER)
    WebDriverWait(browser, 10).until(lambda b: "author=researcher" in b.current_url)
    assert texts(browser, "table.commits tbody td:nth-child(2)") == [
        "research Research: the database"
    ]
    browser.get(served.url + "/history?actor=critic")
    assert len(texts(browser, "table.commits tbody tr")) == 1
    browser.get(served.url + "/history?rev=research")
    assert texts(browser, "h1") == ["History of research"]
    assert len(texts(browser, "table.commits tbody tr")) == 2
    browser.get(served.url + "/history?since=1990-01-01&until=1990-12-31")
    assert texts(browser, "p.empty") == ["No commits match."]


def test_the_commit_links_lead_to_each_commit(served: Served, browser: webdriver.Chrome) -> None:
    browser.get(served.url + "/history")
    link = browser.find_elements(By.CSS_SELECTOR, "a.id")[-1]
    assert link.get_attribute("href") == f"{served.url}/commit/{served.ids['first']}"


def test_bad_input_is_a_page_with_a_status(served: Served, browser: webdriver.Chrome) -> None:
    for query, status, message in [
        ("rev=no-such-branch", 404, "unknown revision 'no-such-branch'"),
        ("since=yesterday", 400, "since must be a date as YYYY-MM-DD, got 'yesterday'"),
        ("page=0", 400, "page must be a whole number from 1 to 999999, got '0'"),
        (f"rev={quote('HEAD~99')}", 404, ""),
    ]:
        url = f"{served.url}/history?{query}"
        assert status_of(url) == status
        browser.get(url)
        assert browser.find_element(By.CSS_SELECTOR, ".error h1").text.startswith(str(status))
        assert message in browser.find_element(By.CSS_SELECTOR, ".error .message").text
    assert status_of(served.url + "/no/such/page") == 404


def test_a_screenshot_of_history_for_the_readme(
    served: Served, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    # CONTEXTFS_SCREENSHOTS=docs/images writes the README's picture; otherwise a temporary one.
    folder = Path(os.environ.get("CONTEXTFS_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    browser.set_window_size(1100, 560)
    try:
        browser.get(served.url + "/history")
        picture = folder / "ui-history.png"
        assert browser.save_screenshot(str(picture))
    finally:
        browser.set_window_size(1280, 900)
    assert picture.read_bytes().startswith(b"\x89PNG")


def test_every_page_forbids_framing_and_the_token_redirect_stays_here(served: Served) -> None:
    import urllib.error
    import urllib.request

    with urllib.request.urlopen(served.url + "/history", timeout=20) as response:
        headers = response.headers
    assert headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    for path in ["//evil.example/x", "/%2F%2Fevil.example"]:
        with pytest.raises(urllib.error.HTTPError) as redirect:
            opener.open(f"{served.url}{path}?q=a%26b&token=anything", timeout=20)
        assert redirect.value.code == 303
        location = redirect.value.headers["Location"]
        redirect.value.close()
        assert location.startswith("/"), location
        assert not location.startswith("//"), location  # never another host
        assert location.endswith("?q=a%26b")  # the rest of the query, still encoded
    for page in ["%C2%B2", "9" * 40, "9" * 5000]:
        assert status_of(f"{served.url}/history?page={page}") == 400
        assert status_of(f"{served.url}/memories?page={page}") == 400
