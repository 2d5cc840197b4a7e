"""The UI under test: `contextfs ui` as a real process, driven by a real headless Chromium.

Debian's ``chromium`` and ``chromium-driver`` packages provide the browser
(``.ci/run`` installs them); Selenium talks to it through the driver. One
repository holds everything the pages show: two branches and a merge, a
tag, a session written by two actors, and a purged memory.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from contextfs.oplog import add_atom_op, make_op_entry
from contextfs.repo import Repository

CHROMIUM = os.environ.get("CONTEXTFS_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CONTEXTFS_CHROMEDRIVER", "/usr/bin/chromedriver")


def build_sample(folder: Path) -> dict[str, str]:
    """A repository with branches, a merge, a tag, two actors and a purge; its ids by name."""
    ids: dict[str, str] = {}
    with Repository.init(folder) as repo:
        ids["short"] = repo.add(
            "The user prefers short answers", "Preference", relevance=0.9, tags=["style"]
        )
        ids["tuesdays"] = repo.add("Deploys happen on Tuesdays", "Fact", tags=["ops"])
        ids["first"] = repo.commit("Remember the basics", author="planner")
        repo.switch("research", create=True)
        ids["postgres"] = repo.add("PostgreSQL 16 is the database", "Decision", tags=["db"])
        repo.update_entry(ids["tuesdays"], relevance=0.4)
        ids["research"] = repo.commit("Research: the database", author="researcher")
        repo.switch("main")
        log = repo.oplog("planning")
        for actor, fact in [("planner", "Ship on Friday"), ("critic", "Tests must pass first")]:
            log.append(
                make_op_entry(
                    actor, "context", add_atom_op(fact, "Decision"), log.next_lamport_ts()
                )
            )
        ids["session"] = repo.commit_oplog("planning").commit
        ids["merge"] = repo.merge("research", author="planner", fast_forward=False).commit or ""
        ids["secret"] = repo.add("The staging password is hunter2", "Fact")
        repo.commit("Note the staging password", author="planner")
        repo.purge(ids["secret"], author="admin", reason="leaked secret")
        repo.remove(ids["secret"])
        ids["forget"] = repo.commit("Forget the staging password", author="admin")
        repo.create_tag("v1")
    return ids


@dataclass
class Served:
    """A running `contextfs ui`: where it listens, and the repository behind it."""

    url: str
    repo: Path
    ids: dict[str, str]


def start_ui(repo: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Start `contextfs ui --port 0` and return it with the URL it announced."""
    argv = [sys.executable, "-m", "contextfs", "--repo", str(repo), "ui", "--port", "0", *args]
    server = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert server.stderr is not None
    announced = server.stderr.readline()
    found = re.match(r"serving the UI on (http://127\.0\.0\.1:\d+)/ ", announced)
    if found is None:
        server.kill()
        raise AssertionError(announced + server.stderr.read())
    return server, found.group(1)


def stop_ui(server: subprocess.Popen[str]) -> str:
    """Stop the server as Ctrl-C would; return what it wrote on stderr after its first line."""
    server.send_signal(signal.SIGTERM)
    _, rest = server.communicate(timeout=20)
    assert server.returncode == 0, rest
    return rest


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("ui") / "memory"
    return folder, build_sample(folder)


@pytest.fixture(scope="session")
def served(sample: tuple[Path, dict[str, str]]) -> Iterator[Served]:
    """A read-only UI over the sample repository, for the whole session."""
    folder, ids = sample
    server, url = start_ui(folder)
    try:
        yield Served(url, folder, ids)
    finally:
        assert stop_ui(server) == ""  # nothing logged: no tracebacks, no access lines


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    """A headless Chromium, shared by every UI test."""
    for path in (CHROMIUM, CHROMEDRIVER):
        assert shutil.which(path), f"{path} is missing: apt-get install chromium chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,900")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def texts(browser: webdriver.Chrome, selector: str) -> list[str]:
    """The visible text of every element ``selector`` finds."""
    return [element.text for element in browser.find_elements(By.CSS_SELECTOR, selector)]


def status_of(url: str) -> int:
    """The HTTP status of a GET (browsers do not expose it; urllib does)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
