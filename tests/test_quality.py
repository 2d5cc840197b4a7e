"""The code-quality gates run with the suite, so CI enforces them.

ruff and mypy --strict, and the architecture: the layer order of
docs/ARCHITECTURE.md, and names private to the module that defines them.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
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


# -- the architecture: layers and private names (docs/ARCHITECTURE.md) ---------------------

PACKAGE = ROOT / "src" / "contextfs"
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
#: A row of the layer table: ``| 3 | `store` | ...``.
LAYER_ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*`([a-z_]+)`")


def layer_order() -> list[str]:
    """The layers as docs/ARCHITECTURE.md numbers them, lowest first."""
    rows = [LAYER_ROW.match(line) for line in ARCHITECTURE.read_text().splitlines()]
    numbered = sorted((int(m.group(1)), m.group(2)) for m in rows if m)
    assert [n for n, _ in numbered] == list(range(1, len(numbered) + 1)), numbered
    return [name for _, name in numbered]


def unit_of(module: str) -> str:
    """The layer a dotted module name belongs to: its package (or module) under contextfs."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "contextfs"


def source_modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, ast.parse(path.read_text(), str(path))


def imported_modules(name: str, tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Every contextfs module ``name`` imports, lazily or not, with its line."""
    package = name if name.count(".") == 0 or _is_package(name) else name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            prefix = ".".join(base) if node.level else ""
            module = ".".join(p for p in (prefix, node.module or "") if p)
            targets = [module]
        else:
            continue
        for target in targets:
            if target == "contextfs" or target.startswith("contextfs."):
                yield node.lineno, target


def _is_package(name: str) -> bool:
    return (PACKAGE.parent.joinpath(*name.split(".")) / "__init__.py").exists()


def test_every_package_has_a_layer() -> None:
    layers = layer_order()
    units = {unit_of(name) for name, _ in source_modules()}
    assert sorted(units - set(layers)) == [], "add them to the table in docs/ARCHITECTURE.md"
    assert sorted(set(layers) - units) == [], "the table names packages that do not exist"


def test_no_import_goes_up_a_layer() -> None:
    rank = {name: n for n, name in enumerate(layer_order())}
    upward = [
        f"{name} (line {line}) imports {target}: {unit_of(name)} is below {unit_of(target)}"
        for name, tree in source_modules()
        for line, target in imported_modules(name, tree)
        if rank[unit_of(target)] > rank[unit_of(name)]
    ]
    assert upward == []


def defined_names(tree: ast.Module) -> set[str]:
    """Every name a module defines or binds: functions, classes, attributes, imports."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name | ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.id if isinstance(node, ast.Name) else node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_module_touches_another_modules_private_names() -> None:
    """``_name`` is private to the module that defines it (STYLE.md 2)."""
    touched = []
    for name, tree in source_modules():
        own = defined_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                touched += [
                    f"{name} (line {node.lineno}) imports {alias.name} from {node.module}"
                    for alias in node.names
                    if is_private(alias.name)
                ]
            elif (
                isinstance(node, ast.Attribute)
                and is_private(node.attr)
                and node.attr not in own
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                receiver = ast.unparse(node.value)
                touched.append(f"{name} (line {node.lineno}) reads {receiver}.{node.attr}")
    assert touched == []
