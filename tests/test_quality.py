"""The code-quality gates run with the suite, so CI enforces them: ruff and mypy --strict."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_lint_and_format_are_clean() -> None:
    assert shutil.which("ruff") or (Path(sys.executable).parent / "ruff").exists()
    lint = run("ruff", "check", "src", "tests", "benchmarks")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = run("ruff", "format", "--check", "src", "tests", "benchmarks")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_mypy_strict_is_clean_on_src() -> None:
    result = run("mypy", "--strict", "src")
    assert result.returncode == 0, result.stdout + result.stderr
