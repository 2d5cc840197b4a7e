"""The clients' table: where each keeps its servers, on every platform, and which command runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import contextfs.connect
from contextfs.connect import CLIENTS, Host, client_named, server_command
from contextfs.errors import InvalidInputError

HOME = Path("/home/ada")


def host(platform: str, **environ: str) -> Host:
    return Host(home=HOME, environ=environ, platform=platform)


@pytest.mark.parametrize(
    ("platform", "environ", "desktop", "vscode"),
    [
        (
            "linux",
            {},
            HOME / ".config/Claude/claude_desktop_config.json",
            HOME / ".config/Code/User/mcp.json",
        ),
        (
            "linux",
            {"XDG_CONFIG_HOME": "/xdg"},
            Path("/xdg/Claude/claude_desktop_config.json"),
            Path("/xdg/Code/User/mcp.json"),
        ),
        (
            "linux",
            {"XDG_CONFIG_HOME": "relative/ignored"},
            HOME / ".config/Claude/claude_desktop_config.json",
            HOME / ".config/Code/User/mcp.json",
        ),
        (
            "darwin",
            {"XDG_CONFIG_HOME": "/xdg"},
            HOME / "Library/Application Support/Claude/claude_desktop_config.json",
            HOME / "Library/Application Support/Code/User/mcp.json",
        ),
        (
            "win32",
            {"APPDATA": "/appdata"},
            Path("/appdata/Claude/claude_desktop_config.json"),
            Path("/appdata/Code/User/mcp.json"),
        ),
        (
            "win32",
            {},
            HOME / "AppData/Roaming/Claude/claude_desktop_config.json",
            HOME / "AppData/Roaming/Code/User/mcp.json",
        ),
    ],
)
def test_user_files_of_desktop_apps_per_platform(
    platform: str, environ: dict[str, str], desktop: Path, vscode: Path
) -> None:
    where = host(platform, **environ)
    assert client_named("claude-desktop").path("user", folder=None, host=where) == desktop
    assert client_named("vscode").path("user", folder=None, host=where) == vscode


def test_user_files_in_the_home_folder() -> None:
    where = host("linux")
    paths = {c.id: c.path("user", folder=None, host=where) for c in CLIENTS}
    assert paths["claude-code"] == HOME / ".claude.json"
    assert paths["cursor"] == HOME / ".cursor/mcp.json"
    assert paths["windsurf"] == HOME / ".codeium/windsurf/mcp_config.json"
    assert paths["gemini"] == HOME / ".gemini/settings.json"
    assert paths["codex"] == HOME / ".codex/config.toml"
    codex = client_named("codex").path("user", folder=None, host=host("linux", CODEX_HOME="/c"))
    assert codex == Path("/c/config.toml")


def test_project_files() -> None:
    folder = Path("/work/app")
    found = {
        c.id: c.path("project", folder=folder, host=host("linux"))
        for c in CLIENTS
        if "project" in c.scopes
    }
    assert found == {
        "claude-code": folder / ".mcp.json",
        "cursor": folder / ".cursor/mcp.json",
        "vscode": folder / ".vscode/mcp.json",
        "gemini": folder / ".gemini/settings.json",
        "codex": folder / ".codex/config.toml",
    }
    with pytest.raises(InvalidInputError, match="windsurf has no project-level config file"):
        client_named("windsurf").path("project", folder=folder, host=host("linux"))


def test_names_and_aliases() -> None:
    assert [c.id for c in CLIENTS] == [
        "claude-code",
        "claude-desktop",
        "cursor",
        "vscode",
        "windsurf",
        "gemini",
        "codex",
    ]
    aliases = {"claude": "claude-code", "code": "vscode", "vs-code": "vscode"}
    aliases |= {"gemini-cli": "gemini", "codex-cli": "codex", "Cursor": "cursor"}
    for alias, client in aliases.items():
        assert client_named(alias).id == client
    with pytest.raises(InvalidInputError, match="unknown client 'zed'; choose from claude-code,"):
        client_named("zed")


def test_entry_shapes() -> None:
    argv = ["/bin/contextfs", "--repo", "/r", "mcp"]
    args = ["--repo", "/r", "mcp"]
    assert client_named("claude-code").entry(argv) == {
        "type": "stdio",
        "command": "/bin/contextfs",
        "args": args,
    }
    assert client_named("vscode").entry(argv) == {
        "type": "stdio",
        "command": "/bin/contextfs",
        "args": args,
    }
    for name in ("claude-desktop", "cursor", "windsurf", "gemini", "codex"):
        assert client_named(name).entry(argv) == {"command": "/bin/contextfs", "args": args}
    actors = {c.id: c.actor for c in CLIENTS}
    assert actors["gemini"] == "gemini-cli"
    assert actors["codex"] == "codex"


def test_the_command_is_the_running_script_with_its_symlinks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "venv" / "bin" / "contextfs"
    real.parent.mkdir(parents=True)
    real.write_text("#!/bin/sh\n")
    link = tmp_path / "bin" / "contextfs"
    link.parent.mkdir()
    link.symlink_to(real)
    assert server_command(str(link), "/usr/bin/python3") == [str(link)]
    monkeypatch.chdir(tmp_path)
    assert server_command("bin/contextfs", "/usr/bin/python3") == [str(link)]


def test_otherwise_the_command_is_python_dash_m(tmp_path: Path) -> None:
    for argv0 in ("/venv/bin/pytest", "/x/contextfs/__main__.py", "-c", ""):
        assert server_command(argv0, "/venv/bin/python") == ["/venv/bin/python", "-m", "contextfs"]


def test_a_windows_launcher_gets_its_exe_back(tmp_path: Path) -> None:
    (tmp_path / "contextfs.exe").write_bytes(b"MZ")
    script = os.path.join(tmp_path, "contextfs")
    assert server_command(script, "python") == [script + ".exe"]


def test_the_package_exports() -> None:
    for name in contextfs.connect.__all__:
        assert getattr(contextfs.connect, name) is not None, name
    public = {name for name in vars(contextfs.connect) if not name.startswith("_")}
    modules = {"clients", "configfile", "disk", "plan", "annotations"}
    assert public - modules == set(contextfs.connect.__all__)
