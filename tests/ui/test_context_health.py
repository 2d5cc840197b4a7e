"""What the agent sees and Health in a real browser: prompts, turns, receipts, verify, bad input."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from starlette.exceptions import HTTPException
from starlette.types import Message

from contextfs.expand.receipt import Receipt
from contextfs.model.ids import short
from contextfs.ui.pages.receipts import MAX_RECEIPT_BYTES, capped_receive

from .conftest import Served, status_of, texts

BUDGET_RANGE = "budget must be a whole number of tokens from 1 to 1,000,000"


def fetch(url: str) -> tuple[dict[str, str], bytes]:
    """The headers (names in lower case) and body of a GET that succeeds."""
    with urllib.request.urlopen(url, timeout=20) as response:
        return {k.lower(): v for k, v in response.headers.items()}, response.read()


def post_receipt(url: str, data: bytes) -> tuple[int, str]:
    """POST ``data`` as the verify form's file; the status and the page."""
    boundary = "contextfs-test-boundary"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="receipt"; filename="receipt.json"\r\n'
            "Content-Type: application/json\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url + "/context/verify",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()


def upload(browser: webdriver.Chrome, served: Served, path: Path) -> str:
    """Verify the receipt at ``path`` through the page's form; the verdict's heading."""
    browser.get(served.url + "/context")
    browser.find_element(By.CSS_SELECTOR, "section.verify input[type=file]").send_keys(str(path))
    browser.find_element(By.CSS_SELECTOR, "section.verify button").click()
    WebDriverWait(browser, 20).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, "section.receipt-verdict h2")
    )
    return browser.find_element(By.CSS_SELECTOR, "section.receipt-verdict h2").text


def test_the_context_for_a_query_holds_the_best_memories_within_the_budget(
    served: Served, browser: webdriver.Chrome
) -> None:
    browser.get(served.url + "/context")
    assert browser.title == "What the agent sees · ContextFS"
    assert len(texts(browser, "ol.memories li")) == 5  # HEAD's five live memories, no budget hit
    query = browser.find_element(By.NAME, "query")
    query.send_keys("database")
    budget = browser.find_element(By.NAME, "budget")
    budget.clear()
    budget.send_keys("20")
    browser.find_element(By.CSS_SELECTOR, "form.context-form button").click()
    WebDriverWait(browser, 20).until(lambda b: "budget=20" in b.current_url)
    assert texts(browser, "ol.memories .content") == [
        "PostgreSQL 16 is the database",
        "The user prefers short answers",
    ]
    assert int(texts(browser, "dd .tokens")[0]) <= 20
    assert texts(browser, "pre.prompt") == [
        "[Decision] PostgreSQL 16 is the database\n[Preference] The user prefers short answers"
    ]
    commit = browser.find_element(By.CSS_SELECTOR, "a.commit")
    assert commit.text == short(served.ids["forget"])  # HEAD
    browser.get(served.url + "/context?query=database&budget=100&retrieval=lexical&format=json")
    assert texts(browser, "ol.memories .content") == ["PostgreSQL 16 is the database"]
    assert json.loads(texts(browser, "pre.prompt")[0])  # the json rendering


def test_the_turn_view_shows_a_stable_and_a_volatile_block(
    served: Served, browser: webdriver.Chrome
) -> None:
    browser.get(served.url + "/context?query=database&budget=100&retrieval=lexical&turn=1")
    assert texts(browser, "section.turn h3") == [
        "Stable block 47 tokens, 5 memories, cacheable",
        "Volatile block 0 tokens, 0 memories, not cached",
    ]
    stable = texts(browser, "section.block.stable pre")[0]
    assert stable.startswith("## Memory\n[Decision] PostgreSQL 16 is the database\n")
    assert texts(browser, "section.block.volatile p.empty") == [
        "Empty: the stable block already holds every match of the query that fits."
    ]
    # A first turn writes the whole stable block to the cache, at 1.25 times the price.
    assert texts(browser, "table.cost tbody td") == ["0", "47", "0", "58.75", "47"]


def test_a_downloaded_receipt_verifies_and_a_tampered_one_does_not(
    served: Served, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    browser.get(served.url + "/context?query=database&budget=100&retrieval=lexical&turn=1")
    link = browser.find_element(By.CSS_SELECTOR, "a.receipt:not(.turn-receipt)")
    assert link.text == "Download receipt"
    turn_link = browser.find_element(By.CSS_SELECTOR, "a.turn-receipt").get_attribute("href")
    headers, body = fetch(link.get_attribute("href") or "")
    assert headers["content-type"] == "application/json"
    assert headers["content-disposition"].startswith('attachment; filename="receipt-')
    receipt = Receipt.from_json(body)
    assert body == (receipt.to_json() + "\n").encode()  # what `expand --receipt` writes
    assert (receipt.query, receipt.budget, receipt.tokens) == ("database", 100, 9)
    assert receipt.commit == served.ids["forget"]
    good = tmp_path / "receipt.json"
    good.write_bytes(body)
    assert upload(browser, served, good) == "Verified"
    assert texts(browser, "p.outcome") == [
        f"Commit {short(receipt.commit)} reproduces the prompt exactly: same snapshot, same bytes."
    ]

    tampered = json.loads(body)
    tampered["query"] = "Tuesdays"  # claim the prompt answered another query
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(tampered))
    assert upload(browser, served, bad) == "Does not verify"
    [mismatch] = texts(browser, "ul.mismatches li")
    assert mismatch.startswith(f"prompt differs: receipt sha256 {receipt.prompt_sha256},")

    gone = {**json.loads(body), "commit": "0" * 64}
    status, page = post_receipt(served.url, json.dumps(gone).encode())
    assert status == 200
    assert f"commit {'0' * 64} is not in the store" in page

    _, turn = fetch(turn_link or "")
    assert "turn" in Receipt.from_json(turn).params  # what `expand --turn --receipt` writes
    status, page = post_receipt(served.url, turn)
    assert status == 200
    assert ">Verified</h2>" in page


def test_a_malformed_or_oversized_receipt_is_refused(served: Served) -> None:
    status, page = post_receipt(served.url, b"{not json")
    assert status == 400
    assert "receipt is not valid JSON: Expecting property name" in page
    status, page = post_receipt(served.url, b'{"version": 1}')
    assert (status, "receipt field &#39;commit&#39; is missing" in page) == (400, True)
    status, page = post_receipt(served.url, b"")
    assert (status, "the receipt file is empty" in page) == (400, True)
    _, body = fetch(served.url + "/context/receipt?budget=50")
    edited = {**json.loads(body), "params": {"turn": {}}}
    status, page = post_receipt(served.url, json.dumps(edited).encode())
    assert (status, "the receipt&#39;s params are malformed: KeyError" in page) == (400, True)
    huge = {**json.loads(body), "budget": 10**12}
    status, page = post_receipt(served.url, json.dumps(huge).encode())
    assert status == 400
    assert "budgets up to 1,000,000 tokens, and this one&#39;s is 1000000000000" in page
    # An upload that says it is too large is refused before its body is read.
    where = urlsplit(served.url)
    connection = http.client.HTTPConnection(where.hostname or "", where.port, timeout=20)
    try:
        connection.putrequest("POST", "/context/verify")
        connection.putheader("Content-Type", "multipart/form-data; boundary=x")
        connection.putheader("Content-Length", str(2 * MAX_RECEIPT_BYTES))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413
        assert "a receipt file is at most 1,024 KiB" in response.read().decode()
    finally:
        connection.close()


def test_an_upload_without_a_length_is_cut_off_at_the_limit() -> None:
    chunks: list[Message] = [
        {"type": "http.request", "body": b"x" * 600, "more_body": True} for _ in range(3)
    ]

    async def receive() -> Message:
        return chunks.pop(0)

    capped = capped_receive(receive, 1000)

    async def read_all() -> None:
        while True:
            await capped()

    with pytest.raises(HTTPException) as refused:
        anyio.run(read_all)
    assert refused.value.status_code == 413
    assert len(chunks) == 1  # the third chunk was never asked for


def test_bad_input_is_a_page_with_a_status(served: Served, browser: webdriver.Chrome) -> None:
    for path, status, message in [
        ("/context?rev=no-such-branch", 404, "unknown revision 'no-such-branch'"),
        ("/context?budget=abc", 400, f"{BUDGET_RANGE}, got 'abc'"),
        ("/context?budget=0", 400, f"{BUDGET_RANGE}, got '0'"),
        ("/context?budget=-5", 400, f"{BUDGET_RANGE}, got '-5'"),
        ("/context?budget=1000000000000", 400, f"{BUDGET_RANGE}, got '1000000000000'"),
        ("/context?format=pdf", 400, "format must be one of lines, markdown, json, xml, got 'pdf'"),
        ("/context?retrieval=fuzzy", 400, "retrieval must be one of lexical, semantic, hybrid"),
        ("/context/receipt?budget=1000001", 400, f"{BUDGET_RANGE}, got '1000001'"),
        ("/context/receipt?rev=no-such-branch", 404, "unknown revision 'no-such-branch'"),
        ("/health?verify=yes", 400, "verify must be 1 (run it) or left out, got 'yes'"),
    ]:
        url = served.url + path
        assert status_of(url) == status, path
        browser.get(url)
        assert browser.find_element(By.CSS_SELECTOR, ".error h1").text.startswith(str(status))
        assert message in browser.find_element(By.CSS_SELECTOR, ".error .message").text
    assert status_of(served.url + "/context?budget=1000000") == 200  # the ceiling itself


def test_health_shows_the_cheap_figures_and_verifies_when_asked(
    served: Served, browser: webdriver.Chrome
) -> None:
    browser.get(served.url + "/health")
    assert browser.title == "Health · ContextFS"
    assert texts(browser, "table.kinds") == []  # verify has not run
    assert texts(browser, "dd.branches") == ["2 (HEAD on main)"]
    assert texts(browser, "dd.tags") == ["1"]
    assert texts(browser, "dd.sessions") == ["1"]
    files = texts(browser, "dl.store dt code")
    assert files[0] == "store.db"
    assert set(files) <= {"store.db", "store.db-wal", "store.db-shm"}
    size = (served.repo / ".contextfs" / "store.db").stat().st_size
    assert f"({size:,} bytes)" in texts(browser, "dd.file")[0]
    assert "memories indexed" in browser.find_element(By.CSS_SELECTOR, "dl.finding").text

    browser.find_element(By.CSS_SELECTOR, "section.integrity button").click()
    WebDriverWait(browser, 20).until(lambda b: b.current_url.endswith("/health?verify=1"))
    assert texts(browser, "p.verify-verdict") == [
        "OK: every object re-hashed, every commit, tree, link and ref checked;"
        " 1 purged (each with its purge record)."
    ]
    counts = dict(
        zip(
            texts(browser, "table.kinds tbody th"),
            texts(browser, "table.kinds tbody td"),
            strict=True,
        )
    )
    assert counts == {
        "atom": "6",
        "commit": "6",
        "context": "0",
        "molecule": "0",
        "purge": "1",
        "tree": "9",
    }
    assert texts(browser, "section.integrity button") == ["Run verify again"]
