"""Every command and option of the CLI is documented in docs/CLI.md, and has help."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from contextfs import errors
from contextfs.cli.main import cli

DOCS = Path(__file__).resolve().parents[2] / "docs" / "CLI.md"
HEADING = re.compile(r"^### `contextfs ([a-z-]+(?: [a-z-]+)?)`", re.MULTILINE)


def sections() -> dict[str, str]:
    text = DOCS.read_text(encoding="utf-8")
    found = list(HEADING.finditer(text))
    ends = [m.start() for m in found[1:]] + [len(text)]
    return {m.group(1): text[m.start() : end] for m, end in zip(found, ends, strict=True)}


def _commands() -> dict[str, click.Command]:
    """Every command by its full name, with a group's subcommands as "group sub"."""
    found: dict[str, click.Command] = {}
    for name, command in cli.commands.items():
        found[name] = command
        if isinstance(command, click.Group):
            for sub, subcommand in command.commands.items():
                found[f"{name} {sub}"] = subcommand
    return found


ALL = _commands()
COMMANDS = sorted(ALL)


@pytest.mark.parametrize("name", COMMANDS)
def test_command_is_documented(name: str) -> None:
    assert name in sections(), f"docs/CLI.md has no '### `contextfs {name}`' section"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_is_documented(name: str) -> None:
    section = sections()[name]
    for param in ALL[name].params:
        if isinstance(param, click.Option):
            longest = max(param.opts, key=len)
            assert longest in section, f"{longest} of {name} is not in its docs section"


@pytest.mark.parametrize("name", COMMANDS)
def test_command_has_help(name: str) -> None:
    assert ALL[name].help, f"{name} has no help text"


def test_global_options_are_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for option in ("--repo", "CONTEXTFS_DIR", "CONTEXTFS_AUTHOR", "--json", "--version"):
        assert option in text


def test_exit_codes_match_errors_module() -> None:
    text = DOCS.read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| (\d+) +\| (.+?) +\|$", text, re.MULTILINE))
    codes = dict(re.findall(r"^(\d)  (.+)$", errors.__doc__ or "", re.MULTILINE))
    assert set(table) >= set(codes) | {"130"}
    for leaf in (
        errors.RepositoryNotFoundError,
        errors.UnknownRevisionError,
        errors.NothingToDoError,
    ):
        assert str(leaf.exit_code) in table
