"""The package as a user gets it: built by the standard front-end, installed by name.

These tests build from a copy of the source tree (so the checkout is left as it
is), install into fresh virtual environments with pip, and run what a new user
runs first. They need the package registry, as CI's own install does.
"""

from __future__ import annotations

import email.parser
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import contextfs

ROOT = Path(__file__).parents[1]
DISTRIBUTION = "contextfs-vcs"
WHEEL_STEM = f"contextfs_vcs-{contextfs.__version__}"
#: What a fresh machine's checkout does not have.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis",
    ".work", ".contextfs",
)  # fmt: skip


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("source") / "contextfs"
    shutil.copytree(ROOT, copy, ignore=NOT_SOURCE)
    return copy


def fresh_environment() -> dict[str, str]:
    """The environment of a shell outside this test run's virtual environment."""
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    ours = Path(sys.prefix).resolve()
    entries = env.get("PATH", "").split(os.pathsep)
    env["PATH"] = os.pathsep.join(e for e in entries if ours not in Path(e).resolve().parents)
    return env


def run(args: list[str], cwd: Path, *, timeout: float = 600) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=fresh_environment(), capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def first_command() -> str:
    """The README's first set-up command (under "Try it")."""
    section = README.split("## Try it", 1)[1]
    match = re.search(r"```sh\n(.*?)\n```", section, flags=re.DOTALL)
    assert match is not None
    return match.group(1)


README = (ROOT / "README.md").read_text()


def test_the_build_front_end_makes_a_wheel_and_an_sdist(source: Path, tmp_path: Path) -> None:
    run([sys.executable, "-m", "build", "--outdir", str(tmp_path), str(source)], source)
    wheel = tmp_path / f"{WHEEL_STEM}-py3-none-any.whl"
    sdist = tmp_path / f"{WHEEL_STEM}.tar.gz"
    assert wheel.is_file()
    assert sdist.is_file()

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        meta = email.parser.Parser().parsestr(
            archive.read(f"{WHEEL_STEM}.dist-info/METADATA").decode()
        )
        entry_points = archive.read(f"{WHEEL_STEM}.dist-info/entry_points.txt").decode()
    assert meta["Name"] == DISTRIBUTION
    assert meta["Version"] == contextfs.__version__
    assert meta["License-Expression"] == "MIT"
    assert meta["Requires-Python"] == ">=3.11"
    assert "Typing :: Typed" in meta.get_all("Classifier", [])
    assert {"mcp", "minilm", "postgres", "langgraph"} <= set(meta.get_all("Provides-Extra", []))
    assert "contextfs = contextfs.cli.main:main" in entry_points
    assert f"{WHEEL_STEM}.dist-info/licenses/LICENSE" in names
    assert {"contextfs/py.typed", "contextfs/__main__.py", "contextfs/_version.py"} <= set(names)
    assert not [n for n in names if n.startswith("tests/")]

    with tarfile.open(sdist) as archive:
        members = {m.name.split("/", 1)[1] for m in archive.getmembers() if "/" in m.name}
    assert {"LICENSE", "CHANGELOG.md", "README.md", "docs/CLI.md", "tests/test_packaging.py"} <= (
        members
    )
    assert not [m for m in members if "__pycache__" in m]


def test_the_readme_command_installs_by_name_and_runs_the_tour(source: Path) -> None:
    command = first_command()
    assert f"'{DISTRIBUTION}[minilm]'" in command
    tour = run(["bash", "-c", command], source)
    assert "Merge" in tour or "merge" in tour
    assert "vectors by minilm:" in tour  # the extra the command names came with it

    bin_dir = source / ".venv" / "bin"
    version = f"contextfs {contextfs.__version__}\n"
    assert run([str(bin_dir / "contextfs"), "--version"], source.parent) == version
    assert run([str(bin_dir / "python"), "-m", "contextfs", "--version"], source.parent) == version
    where = run([str(bin_dir / "python"), "-c", "import contextfs as c; print(c.__file__)"], source)
    assert Path(where.strip()).is_relative_to(source / ".venv")  # the wheel, not src/

    # The other extras install by name from the same wheel and bring what they promise.
    run(
        [str(bin_dir / "pip"), "install", "-q", "--find-links", "dist",
         f"{DISTRIBUTION}[mcp,langgraph,postgres,ui]"],
        source,
    )  # fmt: skip
    run(
        [str(bin_dir / "python"), "-c",
         "import psycopg; from contextfs.integrations.langgraph import ContextFSStore;"
         " from contextfs.ui.app import build_app; from importlib.resources import files;"
         " ui = files('contextfs.ui'); assert (ui / 'templates/history.html').is_file();"
         " assert (ui / 'static/style.css').is_file()"],
        source.parent,
    )  # fmt: skip
    repo = source.parent / "memory"
    run([str(bin_dir / "contextfs"), "init", str(repo)], source.parent)
    hello = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "packaging-test", "version": "0"},
        },
    }
    server = subprocess.run(
        [str(bin_dir / "contextfs"), "--repo", str(repo), "mcp"],
        input=json.dumps(hello) + "\n",
        env=fresh_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    reply = json.loads(server.stdout.splitlines()[0])
    info = reply["result"]["serverInfo"]
    assert (info["name"], info["version"]) == ("contextfs", contextfs.__version__)


def test_python_m_contextfs_is_the_command_and_says_its_version(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "contextfs", "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == f"contextfs {contextfs.__version__}\n"
    metadata = email.parser.Parser().parsestr(
        importlib.metadata.distribution(DISTRIBUTION).read_text("METADATA") or ""
    )
    assert metadata["Version"] == contextfs.__version__  # one source for the version
