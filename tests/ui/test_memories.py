"""The Memories pages in a real browser: the list, search, filters, one memory and its history."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from contextfs.model.ids import MIN_PREFIX_LENGTH, from_hex
from contextfs.model.objects import MemoryAtom
from contextfs.model.types import TypeSignature
from contextfs.repo import Repository
from contextfs.ui.pages.memory import memory_history, memory_view

from .conftest import Served, build_sample, start_ui, status_of, stop_ui, texts

#: The sample's memories in HEAD, best first: relevance, then newest.
HEAD_BEST_FIRST = [
    "Tests must pass first",
    "Ship on Friday",
    "PostgreSQL 16 is the database",
    "The user prefers short answers",
    "Deploys happen on Tuesdays",
]


@dataclass
class Crowded:
    """A second server, over enough notes for several pages and two ids sharing a prefix."""

    url: str
    notes: list[str]
    shared_prefix: str


def notes_until_a_shared_prefix() -> tuple[list[str], str]:
    """``Note 0``, ``Note 1``, ... up to the first whose id prefix an earlier one has."""
    seen: set[str] = set()
    for n in itertools.count():
        prefix = MemoryAtom(f"Note {n}", TypeSignature("Fact")).content_hash[:MIN_PREFIX_LENGTH]
        if prefix in seen:
            return [f"Note {i}" for i in range(n + 1)], prefix
        seen.add(prefix)
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crowded]:
    notes, prefix = notes_until_a_shared_prefix()
    assert len(notes) > 2 * 50  # three pages at least
    folder: Path = tmp_path_factory.mktemp("crowded") / "memory"
    with Repository.init(folder) as repo:
        for i, note in enumerate(notes):  # relevance falls with i: best first is list order
            repo.add(note, "Fact", relevance=round(1 - i / 1000, 3))
        repo.commit("Many notes", author="planner")
    server, url = start_ui(folder)
    try:
        yield Crowded(url, notes, prefix)
    finally:
        assert stop_ui(server) == ""


def arrive(browser: webdriver.Chrome, prefix: str) -> None:
    """Wait until the browser has left for a page whose URL starts with ``prefix``.

    A click or Enter only starts the navigation: reading the page before it
    lands would read the old one (or a stale element).
    """
    WebDriverWait(browser, 20).until(
        lambda b: (
            b.current_url.startswith(prefix)
            and b.execute_script("return document.readyState") == "complete"
        )
    )


def contents(browser: webdriver.Chrome) -> list[str]:
    return texts(browser, "table.memories tbody td.content")


def test_the_list_shows_a_revision_best_first(served: Served, browser: webdriver.Chrome) -> None:
    browser.get(served.url + "/memories")
    assert browser.title == "Memories · ContextFS"
    assert texts(browser, "header nav a[aria-current=page]") == ["Memories"]
    assert contents(browser) == HEAD_BEST_FIRST
    assert texts(browser, "table.memories tbody td:nth-child(2)") == [
        "Decision",
        "Decision",
        "Decision",
        "Preference",
        "Fact",
    ]
    assert texts(browser, "table.memories tbody td:nth-child(4)") == ["1", "1", "1", "0.9", "0.4"]
    assert texts(browser, "table.memories tbody td:nth-child(5)") == ["", "", "db", "style", "ops"]
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a.id")]
    assert links[2] == f"{served.url}/memory/{served.ids['postgres']}"
    assert links[4] == f"{served.url}/memory/{served.ids['tuesdays']}"
    assert texts(browser, ".pager a") == []  # one page

    browser.get(served.url + "/memories?rev=research")
    assert texts(browser, "h1") == ["Memories of research, best first"]
    assert contents(browser) == [
        "PostgreSQL 16 is the database",
        "The user prefers short answers",
        "Deploys happen on Tuesdays",
    ]
    link = browser.find_elements(By.CSS_SELECTOR, "a.id")[0].get_attribute("href")
    assert link == f"{served.url}/memory/{served.ids['postgres']}?rev=research"


def test_a_purged_memory_is_listed_without_its_text(
    served: Served, browser: webdriver.Chrome
) -> None:
    browser.get(served.url + "/memories?rev=HEAD~1")  # before the password was forgotten
    first = browser.find_element(By.CSS_SELECTOR, "table.memories tbody tr")
    assert first.get_attribute("class") == "purged-row"
    assert first.find_element(By.CSS_SELECTOR, "a.id").get_attribute("href") == (
        f"{served.url}/memory/{served.ids['secret']}?rev=HEAD~1"
    )
    assert first.find_element(By.CSS_SELECTOR, "td.content").text == "[content purged]"
    assert first.find_element(By.CSS_SELECTOR, "td:nth-child(2)").text == "purged"
    assert contents(browser)[1:] == HEAD_BEST_FIRST
    assert "hunter2" not in browser.page_source


def test_the_list_pages_fifty_at_a_time(crowded: Crowded, browser: webdriver.Chrome) -> None:
    browser.get(crowded.url + "/memories")
    assert contents(browser) == crowded.notes[:50]
    assert texts(browser, ".pager a") == ["Next →"]
    browser.find_element(By.CSS_SELECTOR, ".pager a[rel=next]").click()
    arrive(browser, crowded.url + "/memories?page=2")
    assert contents(browser) == crowded.notes[50:100]
    assert texts(browser, ".pager a") == ["← Better", "Next →"]
    last = (len(crowded.notes) - 1) // 50 + 1
    browser.get(f"{crowded.url}/memories?page={last}")
    assert contents(browser) == crowded.notes[(last - 1) * 50 :]
    assert texts(browser, ".pager a") == ["← Better"]
    browser.get(f"{crowded.url}/memories?page={last + 1}")
    assert texts(browser, "p.empty") == ["No memories match."]
    # A search pages too, within its limit.
    browser.get(crowded.url + "/memories?q=note&retrieval=lexical&limit=60&page=2")
    assert len(contents(browser)) == 10
    assert texts(browser, ".pager a") == ["← Better"]


def test_a_search_by_words(served: Served, browser: webdriver.Chrome) -> None:
    browser.get(served.url + "/memories")
    browser.find_element(By.TAG_NAME, "body").send_keys("/")  # "/" focuses the search field
    field = browser.switch_to.active_element
    assert field.get_attribute("type") == "search"
    assert field.get_attribute("name") == "q"
    field.send_keys("database", Keys.ENTER)
    arrive(browser, served.url + "/memories?q=database")
    assert browser.title == "Search memories · ContextFS"
    assert texts(browser, "h1") == ["Memories of HEAD matching “database”"]
    assert contents(browser)[0] == "PostgreSQL 16 is the database"
    assert texts(browser, "table.memories tbody td.score")[0] == "1"

    browser.get(served.url + "/memories?q=database&retrieval=lexical")
    assert texts(browser, "p.meta") == ["By lexical retrieval; at most 50 hits."]
    assert contents(browser) == ["PostgreSQL 16 is the database"]
    browser.get(served.url + "/memories?q=database+Tuesdays&retrieval=lexical")
    assert contents(browser) == ["PostgreSQL 16 is the database", "Deploys happen on Tuesdays"]
    # Each matches one of two equally rare words: relevance x 0.5.
    assert texts(browser, "table.memories tbody td.score") == ["0.5", "0.2"]
    browser.get(served.url + "/memories?q=database+Tuesdays&retrieval=lexical&mode=all")
    assert texts(browser, "p.empty") == ["No memories match."]
    browser.get(served.url + "/memories?q=hunter2&rev=HEAD~1&retrieval=lexical")
    assert texts(browser, "p.empty") == ["No memories match."]  # a purge forgets the words too


def test_a_search_by_meaning(served: Served, browser: webdriver.Chrome) -> None:
    question = quote("which weekday do releases go out")
    browser.get(f"{served.url}/memories?q={question}&retrieval=lexical")
    assert texts(browser, "p.empty") == ["No memories match."]  # no word in common
    browser.get(f"{served.url}/memories?q={question}&retrieval=semantic")
    assert texts(browser, "p.meta") == ["By semantic retrieval; at most 50 hits."]
    assert set(contents(browser)[:2]) == {"Ship on Friday", "Deploys happen on Tuesdays"}
    selected = browser.find_element(By.CSS_SELECTOR, "select[name=retrieval] option:checked")
    assert selected.text == "semantic"


def test_filters_by_type_tag_and_relevance(served: Served, browser: webdriver.Chrome) -> None:
    browser.get(served.url + "/memories?type=Decision")
    assert contents(browser) == HEAD_BEST_FIRST[:3]
    browser.get(served.url + "/memories?tag=ops")
    assert contents(browser) == ["Deploys happen on Tuesdays"]
    assert browser.find_element(By.NAME, "tag").get_attribute("value") == "ops"
    browser.get(served.url + "/memories?min_relevance=0.5&type=Preference")
    assert contents(browser) == ["The user prefers short answers"]
    browser.get(served.url + "/memories?q=database&tag=db")  # hybrid by default, then filtered
    assert contents(browser) == ["PostgreSQL 16 is the database"]
    browser.get(served.url + "/memories?q=database&type=Fact&retrieval=semantic")
    assert contents(browser) == ["Deploys happen on Tuesdays"]
    browser.get(served.url + "/memories?tag=ops,db")  # every tag must be present
    assert texts(browser, "p.empty") == ["No memories match."]


def test_a_memory_shows_its_fields_and_history(served: Served, browser: webdriver.Chrome) -> None:
    tuesdays = served.ids["tuesdays"]
    browser.get(f"{served.url}/memory/{tuesdays[:10]}")  # a unique prefix will do
    assert browser.title == f"Memory {tuesdays[:12]} · ContextFS"
    fields = dict(
        zip(
            texts(browser, "dl.memory-fields dt"),
            texts(browser, "dl.memory-fields dd"),
            strict=True,
        )
    )
    assert fields["Content"] == "Deploys happen on Tuesdays"
    assert browser.find_element(By.CSS_SELECTOR, "dl.memory-fields pre").text == fields["Content"]
    assert fields["Type"] == "Fact"
    assert fields["Relevance"] == "0.4"
    assert fields["Tags"] == "ops"
    assert fields["Source"] == "none"
    assert fields["Id"] == tuesdays
    assert fields["Timestamp"].endswith(" UTC")
    assert texts(browser, ".notice") == []  # HEAD holds it
    # Added first; its relevance changed on research, and reached main by the merge.
    rows = browser.find_elements(By.CSS_SELECTOR, "table.memory-history tbody tr")
    hrefs = [row.find_element(By.CSS_SELECTOR, "a.id").get_attribute("href") for row in rows]
    assert hrefs == [
        f"{served.url}/commit/{served.ids[name]}" for name in ("merge", "research", "first")
    ]
    assert texts(browser, "table.memory-history td.change") == [
        "changed: relevance",
        "changed: relevance",
        "added",
    ]
    assert texts(browser, "table.memory-history tbody td:nth-child(3)") == [
        "merge Merge research into main",
        "Research: the database",
        "Remember the basics",
    ]
    assert texts(browser, "table.memory-history tbody td:nth-child(4)") == [
        "planner",
        "researcher",
        "planner",
    ]

    first = served.ids["first"]
    browser.get(f"{served.url}/memory/{tuesdays}?rev={first[:8]}")  # as the first commit holds it
    assert texts(browser, "dl.memory-fields dd.relevance") == ["1"]
    assert texts(browser, "table.memory-history td.change") == ["added"]


def test_the_purged_secret_shows_who_purged_it_and_why(
    served: Served, browser: webdriver.Chrome
) -> None:
    browser.get(f"{served.url}/memory/{served.ids['secret']}")
    assert texts(browser, "h1") == [f"Memory {served.ids['secret'][:12]} purged"]
    assert texts(browser, ".purge-author") == ["admin"]
    assert texts(browser, ".purge-reason") == ["leaked secret"]
    assert "hunter2" not in browser.page_source
    assert browser.find_elements(By.CSS_SELECTOR, "dl.memory-fields pre") == []
    notice = browser.find_element(By.CSS_SELECTOR, ".notice").text
    assert notice.startswith("Not in HEAD: shown as commit ")
    assert texts(browser, "table.memory-history td.change") == ["removed", "added"]
    assert texts(browser, "table.memory-history tbody td:nth-child(3)") == [
        "Forget the staging password",
        "Note the staging password",
    ]
    assert texts(browser, "table.memory-history tbody td:nth-child(4)") == ["admin", "planner"]
    link = browser.find_element(By.CSS_SELECTOR, "table.memory-history a.id")
    assert link.get_attribute("href") == f"{served.url}/commit/{served.ids['forget']}"


def test_click_through_list_memory_commit(served: Served, browser: webdriver.Chrome) -> None:
    browser.get(served.url + "/memories")
    row = browser.find_elements(By.CSS_SELECTOR, "table.memories tbody tr")[1]
    assert row.find_element(By.CSS_SELECTOR, "td.content").text == "Ship on Friday"
    row.find_element(By.CSS_SELECTOR, "a.id").click()
    arrive(browser, served.url + "/memory/")
    assert browser.find_element(By.CSS_SELECTOR, "dl.memory-fields pre").text == "Ship on Friday"
    # Written in the two-actor session: its commit names both actors.
    assert texts(browser, "table.memory-history tbody td:nth-child(4)") == [
        "critic, planner (critic, planner)"
    ]
    link = browser.find_element(By.CSS_SELECTOR, "table.memory-history a.id")
    assert link.get_attribute("href") == f"{served.url}/commit/{served.ids['session']}"
    browser.find_element(By.LINK_TEXT, "← All memories of HEAD").click()
    arrive(browser, served.url + "/memories")
    assert browser.current_url == served.url + "/memories"


def test_bad_input_is_a_page_with_a_status(
    served: Served, crowded: Crowded, browser: webdriver.Chrome
) -> None:
    tuesdays, postgres = served.ids["tuesdays"], served.ids["postgres"]
    nowhere, first = "0" * 64, served.ids["first"]
    for url, status, message in [
        ("/memories?rev=no-such-branch", 404, "unknown revision 'no-such-branch'"),
        ("/memories?page=0", 400, "page must be a whole number from 1, got '0'"),
        ("/memories?q=x&retrieval=fuzzy", 400, "retrieval must be 'lexical', 'semantic' or"),
        ("/memories?q=x&mode=some", 400, "mode must be 'any' or 'all', got 'some'"),
        ("/memories?min_relevance=2", 400, "min_relevance must be in [0, 1], got 2.0"),
        ("/memories?min_relevance=high", 400, "min_relevance must be a number, got 'high'"),
        ("/memories?limit=5000", 400, "limit must be a whole number from 1 to 1000"),
        (f"/memories?type={quote('List[Fact')}", 400, "invalid type signature 'List[Fact'"),
        ("/memories?q=*", 400, "search query '*' has no words to search for"),
        (f"/memory/{tuesdays}?rev=no-such-branch", 404, "unknown revision 'no-such-branch'"),
        ("/memory/zzzz", 404, "unknown memory 'zzzz'"),
        (f"/memory/{nowhere}", 404, f"memory '{nowhere}' is not in the history of 'HEAD'"),
        (f"/memory/{postgres}?rev={first}", 404, f"is not in the history of '{first}'"),
    ]:
        assert status_of(served.url + url) == status, url
        browser.get(served.url + url)
        assert browser.find_element(By.CSS_SELECTOR, ".error h1").text.startswith(str(status))
        assert message in browser.find_element(By.CSS_SELECTOR, ".error .message").text, url
    ambiguous = f"{crowded.url}/memory/{crowded.shared_prefix}"
    assert status_of(ambiguous) == 400
    browser.get(ambiguous)
    assert "is ambiguous" in browser.find_element(By.CSS_SELECTOR, ".error .message").text


def test_the_history_walk_stops_at_its_limit(tmp_path: Path) -> None:
    ids = build_sample(tmp_path / "memory")
    with Repository.open(tmp_path / "memory") as repo:
        head = repo.resolve("HEAD")
        key = from_hex(ids["tuesdays"])
        whole = memory_history(repo, key, head)
        assert (whole.walked, whole.capped) == (6, False)
        assert [e.info.id for e in whole.events] == [ids["merge"], ids["research"], ids["first"]]
        capped = memory_history(repo, key, head, limit=3)
        assert (capped.walked, capped.capped) == (3, True)
        assert [e.info.id for e in capped.events] == [ids["merge"]]
        assert capped.held_in == head  # HEAD holds it: what the page shows is known
        view = memory_view(repo, ids["secret"][:8], "HEAD")
        noted = repo.resolve(f"{ids['forget']}~1")  # the last commit that held it
        assert (view.in_rev, view.purged, view.history.held_in) == (False, True, noted)
        assert view.purge is not None
        assert (view.purge.author, view.purge.reason) == ("admin", "leaked secret")
