"""``contextfs connect`` / ``disconnect``: real config files, in every client's documented shape.

HOME, XDG_CONFIG_HOME and CODEX_HOME point into the test's folder; the
repository is a real one in the runner's folder (the project folder). Files
are read back with ``json`` and ``tomllib``, not with the code under test.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import Cli


@dataclass(frozen=True)
class Spec:
    """What the clients' own documentation says about one client."""

    id: str
    project: str | None  # the project file, relative to the project folder
    user: str  # the user file, relative to the test's home (see ``home`` below)
    key: str
    typed: bool
    actor: str

    @property
    def toml(self) -> bool:
        return self.id == "codex"


SPECS = [
    Spec("claude-code", ".mcp.json", ".claude.json", "mcpServers", True, "claude-code"),
    Spec(
        "claude-desktop",
        None,
        "xdg/Claude/claude_desktop_config.json",
        "mcpServers",
        False,
        "claude-desktop",
    ),
    Spec("cursor", ".cursor/mcp.json", ".cursor/mcp.json", "mcpServers", False, "cursor"),
    Spec("vscode", ".vscode/mcp.json", "xdg/Code/User/mcp.json", "servers", True, "vscode"),
    Spec(
        "windsurf",
        None,
        ".codeium/windsurf/mcp_config.json",
        "mcpServers",
        False,
        "windsurf",
    ),
    Spec(
        "gemini",
        ".gemini/settings.json",
        ".gemini/settings.json",
        "mcpServers",
        False,
        "gemini-cli",
    ),
    Spec("codex", ".codex/config.toml", "codex-home/config.toml", "mcp_servers", False, "codex"),
]
BY_ID = {spec.id: spec for spec in SPECS}
JSON_SPECS = [spec for spec in SPECS if not spec.toml]
IDS = [spec.id for spec in SPECS]
SCOPED = [(spec, "project") for spec in SPECS if spec.project] + [(spec, "user") for spec in SPECS]
SCOPED_IDS = [f"{spec.id}-{scope}" for spec, scope in SCOPED]

OTHER_SERVER = {"command": "node", "args": ["server.js"], "env": {"TOKEN": "ünïcode"}}
CODEX_BEFORE = """\
# Codex settings, kept by hand
model = "o3"  # the default model

[mcp_servers.other]
command = "node"  # an editor's server
args = ["server.js"]

[profiles.fast]
model = "o4-mini"
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder of the test's own, with the variables clients read pointed into it."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    monkeypatch.setenv("USERPROFILE", str(folder))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder / "xdg"))
    monkeypatch.setenv("APPDATA", str(folder / "xdg"))
    monkeypatch.setenv("CODEX_HOME", str(folder / "codex-home"))
    return folder


@pytest.fixture
def project(repo_run: Cli, home: Path) -> Cli:
    """A runner in a repository's folder, with its own home."""
    return repo_run


def folder_of(run: Cli) -> Path:
    return run.folder.resolve()


def path_of(run: Cli, home: Path, spec: Spec, scope: str | None = None) -> Path:
    """Where the client documents its file, for ``scope`` (default: project if it has one)."""
    if (scope or ("project" if spec.project else "user")) == "project":
        assert spec.project is not None
        return folder_of(run) / spec.project
    return home / spec.user


def expected_entry(run: Cli, spec: Spec, actor: str | None = None) -> dict[str, Any]:
    """The entry as the client documents it; the command is this interpreter (CliRunner)."""
    args = ["-m", "contextfs", "--repo", str(folder_of(run)), "mcp", "--actor", actor or spec.actor]
    entry: dict[str, Any] = {"type": "stdio"} if spec.typed else {}
    entry.update(command=sys.executable, args=args)
    return entry


def parse(spec: Spec, path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    return tomllib.loads(text) if spec.toml else json.loads(text)


def existing(spec: Spec) -> str:
    """A file with another server and other settings, in the client's format."""
    if spec.toml:
        return CODEX_BEFORE
    return json.dumps(
        {"theme": "dark", spec.key: {"other": OTHER_SERVER}, "zeta": [1, 2.5, None]},
        indent=4,
        ensure_ascii=False,
    )


def write(path: Path, text: str | bytes) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode() if isinstance(text, str) else text
    path.write_bytes(data)
    return data


def backup(path: Path) -> Path:
    return path.with_name(path.name + ".bak")


# -- connecting ------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "scope"), SCOPED, ids=SCOPED_IDS)
def test_a_fresh_file_gets_exactly_the_documented_entry(
    project: Cli, home: Path, spec: Spec, scope: str
) -> None:
    path = path_of(project, home, spec, scope)
    flag = [f"--{scope}"] if spec.project else []
    out = project("connect", spec.id, *flag).stdout
    assert out.splitlines()[0] == f"{spec.id}: connected in {path} (new file)"
    assert parse(spec, path) == {spec.key: {"contextfs": expected_entry(project, spec)}}
    assert not backup(path).exists()
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    if not spec.toml:
        assert text == json.dumps(parse(spec, path), indent=2) + "\n"


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_connecting_keeps_every_other_server_and_setting(
    project: Cli, home: Path, spec: Spec
) -> None:
    path = path_of(project, home, spec)
    old = write(path, existing(spec))
    before = parse(spec, path)
    out = project("connect", spec.id).stdout
    assert out.splitlines()[0] == f"{spec.id}: connected in {path} (backup: {backup(path)})"
    after = parse(spec, path)
    assert list(after) == list(before)  # the keys in their order
    assert after[spec.key] == {**before[spec.key], "contextfs": expected_entry(project, spec)}
    assert list(after[spec.key]) == ["other", "contextfs"]
    assert {k: v for k, v in after.items() if k != spec.key} == {
        k: v for k, v in before.items() if k != spec.key
    }
    assert backup(path).read_bytes() == old
    text = path.read_text(encoding="utf-8")
    if spec.toml:
        assert "# Codex settings, kept by hand" in text
        assert 'model = "o3"  # the default model' in text
        assert 'command = "node"  # an editor\'s server' in text
    else:
        assert "ünïcode" in text  # non-ASCII kept as written, not \u-escaped


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_connecting_again_leaves_the_file_alone(project: Cli, home: Path, spec: Spec) -> None:
    path = path_of(project, home, spec)
    write(path, existing(spec))
    project("connect", spec.id)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))  # so any rewrite would show
    data = path.read_bytes()
    os.unlink(backup(path))
    out = project("connect", spec.id).stdout
    assert out == f"{spec.id}: already connected in {path}\n"
    assert path.read_bytes() == data
    assert path.stat().st_mtime_ns == 1_000_000_000
    assert not backup(path).exists()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_the_file_and_its_backup_keep_the_permission_bits(project: Cli, home: Path) -> None:
    path = path_of(project, home, BY_ID["claude-code"], "user")
    write(path, json.dumps({"oauthAccount": {"token": "secret"}, "numStartups": 3}))
    path.chmod(0o600)
    project("connect", "claude", "--user")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(backup(path).stat().st_mode) == 0o600
    assert parse(BY_ID["claude-code"], path)["oauthAccount"] == {"token": "secret"}


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_a_dry_run_prints_a_diff_and_writes_nothing(project: Cli, home: Path, spec: Spec) -> None:
    path = path_of(project, home, spec)
    old = write(path, existing(spec))
    out = project("connect", spec.id, "--dry-run").stdout
    assert f"--- {path}\n+++ {path}\n" in out
    added = [line for line in out.splitlines() if line.startswith("+") and "contextfs" in line]
    assert added
    assert out.splitlines()[-1] == f"{spec.id}: would connect in {path} (backup: {backup(path)})"
    assert path.read_bytes() == old
    assert not backup(path).exists()


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_a_dry_run_creates_no_file_or_folder(project: Cli, home: Path, spec: Spec) -> None:
    path = path_of(project, home, spec)
    out = project("connect", spec.id, "--dry-run").stdout
    assert out.startswith(f"--- /dev/null\n+++ {path}\n")
    assert not path.exists()
    assert path.parent in (folder_of(project), home) or not path.parent.exists()


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_disconnect_removes_only_ours(project: Cli, home: Path, spec: Spec) -> None:
    path = path_of(project, home, spec)
    write(path, existing(spec))
    before = parse(spec, path)
    project("connect", spec.id)
    connected = path.read_bytes()
    out = project("disconnect", spec.id).stdout
    assert out == f"{spec.id}: disconnected from {path} (backup: {backup(path)})\n"
    assert parse(spec, path) == before
    assert backup(path).read_bytes() == connected
    if spec.toml:
        assert path.read_text(encoding="utf-8") == CODEX_BEFORE  # comments and layout too
    again = project("disconnect", spec.id).stdout
    assert again == f"{spec.id}: not connected in {path}\n"


def test_disconnect_without_a_file_says_not_connected(project: Cli, home: Path) -> None:
    path = path_of(project, home, BY_ID["cursor"])
    out = project("disconnect", "cursor").stdout
    assert out == f"cursor: not connected in {path} (no file)\n"
    assert not path.parent.exists()


def test_disconnect_refuses_an_entry_that_is_not_ours(project: Cli, home: Path) -> None:
    path = path_of(project, home, BY_ID["cursor"])
    old = write(path, json.dumps({"mcpServers": {"contextfs": OTHER_SERVER}}))
    line = project.fails(6, "disconnect", "cursor")
    assert line == (
        f"error: the server 'contextfs' in {path} does not run contextfs;"
        " remove it anyway with --force"
    )
    assert path.read_bytes() == old
    project("disconnect", "cursor", "--force")
    assert parse(BY_ID["cursor"], path) == {"mcpServers": {}}


def test_disconnect_of_the_user_file_needs_no_repository(run: Cli, home: Path) -> None:
    path = home / ".cursor" / "mcp.json"
    entry = {"command": "/opt/bin/contextfs", "args": ["--repo", "/r", "mcp"]}
    write(path, json.dumps({"mcpServers": {"contextfs": entry, "other": OTHER_SERVER}}))
    run("disconnect", "cursor", "--user")
    assert parse(BY_ID["cursor"], path) == {"mcpServers": {"other": OTHER_SERVER}}


# -- refusals --------------------------------------------------------------------------


def refused(run: Cli, path: Path, old: bytes, code: int, *args: str) -> str:
    """Run a command that must refuse; check the file is byte for byte as it was."""
    line = run.fails(code, *args)
    assert path.read_bytes() == old
    assert not backup(path).exists()
    return line


@pytest.mark.parametrize("spec", JSON_SPECS, ids=[s.id for s in JSON_SPECS])
def test_malformed_json_is_refused_naming_file_and_line(
    project: Cli, home: Path, spec: Spec
) -> None:
    path = path_of(project, home, spec)
    old = write(path, '{\n  "theme": "dark",\n  "mcpServers": {\n}\n')
    line = refused(project, path, old, 5, "connect", spec.id)
    assert line.startswith(f"error: {path}:5: not valid JSON (")
    line = refused(project, path, old, 5, "disconnect", spec.id)
    assert line.startswith(f"error: {path}:5: not valid JSON (")


def test_malformed_toml_is_refused_naming_file_and_line(project: Cli, home: Path) -> None:
    path = path_of(project, home, BY_ID["codex"])
    old = write(path, 'model = "o3"\n[mcp_servers.other\ncommand = "x"\n')
    line = refused(project, path, old, 5, "connect", "codex")
    assert line.startswith(f"error: {path}:2: not valid TOML (")


@pytest.mark.parametrize(
    ("spec", "text", "problem"),
    [
        (BY_ID["cursor"], '{"mcpServers": []}', "'mcpServers' is an array, not an object"),
        (BY_ID["vscode"], '{"servers": "none"}', "'servers' is a string, not an object"),
        (BY_ID["gemini"], '{"mcpServers": null}', "'mcpServers' is null, not an object"),
        (BY_ID["claude-code"], "[1, 2]", "the top level is an array, not an object"),
        (
            BY_ID["claude-desktop"],
            '{"mcpServers": {"contextfs": "x"}}',
            "mcpServers.contextfs is a string, not an object",
        ),
        (BY_ID["codex"], 'mcp_servers = "x"\n', "'mcp_servers' is a string, not a table"),
        (
            BY_ID["codex"],
            '[[mcp_servers]]\ncommand = "x"\n',
            "'mcp_servers' is an array of tables, not a table",
        ),
        (BY_ID["cursor"], b'{"a": "\xff"}', "not UTF-8 text"),
    ],
    ids=["array", "string", "null", "top-level", "entry", "toml-string", "toml-aot", "utf8"],
)
def test_servers_in_the_wrong_shape_are_refused(
    project: Cli, home: Path, spec: Spec, text: str | bytes, problem: str
) -> None:
    path = path_of(project, home, spec)
    old = write(path, text)
    line = refused(project, path, old, 5, "connect", spec.id)
    assert line in (f"error: {path}: {problem}", f"error: {path}:1: {problem}")


def test_vscode_jsonc_with_comments_is_read_but_not_rewritten(project: Cli, home: Path) -> None:
    path = path_of(project, home, BY_ID["vscode"])
    old = write(
        path,
        '{\n  // my servers\n  "servers": {"other": {"command": "node", "url": "http://x/*y*/"},},\n}\n',
    )
    line = refused(project, path, old, 6, "connect", "vscode")
    assert line == (
        f"error: {path} has comments, which rewriting it would drop; edit it by hand"
        " (or remove the comments and run this again)"
    )
    assert project("disconnect", "vscode").stdout == f"vscode: not connected in {path}\n"
    listed = project.json("connect", "--list", "vscode", "--project")
    assert [row["status"] for row in listed] == ["not connected"]


def test_vscode_jsonc_already_connected_needs_no_rewrite(project: Cli, home: Path) -> None:
    path = path_of(project, home, BY_ID["vscode"])
    servers = {"contextfs": expected_entry(project, BY_ID["vscode"])}
    old = write(path, "/* mine */\n" + json.dumps({"servers": servers}))
    assert project("connect", "vscode").stdout == f"vscode: already connected in {path}\n"
    assert path.read_bytes() == old


def test_vscode_trailing_commas_alone_are_dropped(project: Cli, home: Path) -> None:
    path = path_of(project, home, BY_ID["vscode"])
    write(path, '{"inputs": [1, 2,], "servers": {"other": {"command": "node",},},}')
    project("connect", "vscode")
    assert parse(BY_ID["vscode"], path) == {
        "inputs": [1, 2],
        "servers": {
            "other": {"command": "node"},
            "contextfs": expected_entry(project, BY_ID["vscode"]),
        },
    }


def test_the_json_clients_read_strict_json(project: Cli, home: Path) -> None:
    path = path_of(project, home, BY_ID["cursor"])
    old = write(path, '{\n  // no comments here\n  "mcpServers": {}\n}\n')
    line = refused(project, path, old, 5, "connect", "cursor")
    assert line.startswith(f"error: {path}:2: not valid JSON (")


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_a_different_entry_is_replaced_only_with_force(
    project: Cli, home: Path, spec: Spec
) -> None:
    path = path_of(project, home, spec)
    if spec.toml:
        text = '[mcp_servers.contextfs]\ncommand = "node"\nargs = ["old.js"]\n\n[x]\ny = 1\n'
    else:
        text = json.dumps({spec.key: {"contextfs": OTHER_SERVER, "other": OTHER_SERVER}})
    old = write(path, text)
    line = refused(project, path, old, 6, "connect", spec.id)
    assert line == (
        f"error: {path} already has a different server 'contextfs'; replace it with --force,"
        " or choose another name with --name"
    )
    out = project("connect", spec.id, "--force").stdout
    assert out.splitlines()[0] == (
        f"{spec.id}: replaced the entry in {path} (backup: {backup(path)})"
    )
    after = parse(spec, path)
    assert after[spec.key]["contextfs"] == expected_entry(project, spec)
    assert next(iter(after[spec.key])) == "contextfs"  # in its place
    assert backup(path).read_bytes() == old


def test_keys_added_to_our_entry_still_count_as_connected(project: Cli, home: Path) -> None:
    path = path_of(project, home, BY_ID["cursor"])
    entry = {**expected_entry(project, BY_ID["cursor"]), "env": {"LOG": "1"}}
    old = write(path, json.dumps({"mcpServers": {"contextfs": entry}}))
    assert project("connect", "cursor").stdout == f"cursor: already connected in {path}\n"
    assert path.read_bytes() == old


@pytest.mark.parametrize("client", ["claude-desktop", "windsurf"])
def test_project_scope_of_a_user_only_client_is_a_usage_error(
    project: Cli, home: Path, client: str
) -> None:
    line = project.fails(2, "connect", client, "--project")
    assert line.startswith(f"error: {client} has no project-level config file")
    assert list(home.iterdir()) == []


def test_one_refusal_writes_no_file(project: Cli, home: Path) -> None:
    bad = path_of(project, home, BY_ID["gemini"])
    old = write(bad, "{")
    project.fails(5, "connect", "cursor", "codex", "gemini")
    assert bad.read_bytes() == old
    assert not path_of(project, home, BY_ID["cursor"]).exists()
    assert not path_of(project, home, BY_ID["codex"]).exists()


@pytest.mark.parametrize(
    ("args", "code", "start"),
    [
        (["connect"], 2, "error: give at least one CLIENT, or --list"),
        (["connect", "emacs"], 2, "error: Invalid value for 'CLIENT...': unknown client 'emacs'"),
        (["connect", "cursor", "--name", "9lives"], 2, "error: Invalid value for '--name'"),
        (["connect", "cursor", "--name", "a b"], 2, "error: Invalid value for '--name'"),
        (["connect", "cursor", "--actor", " "], 2, "error: Invalid value for '--actor'"),
        (["connect", "cursor", "--project", "--user"], 2, "error: --project and --user cannot"),
        (["connect", "--list", "--force"], 2, "error: --list cannot be used with"),
        (["disconnect"], 2, "error: Missing argument 'CLIENT...'"),
    ],
)
def test_usage_errors_are_one_line(
    project: Cli, home: Path, args: list[str], code: int, start: str
) -> None:
    assert project.fails(code, *args).startswith(start)
    assert list(home.iterdir()) == []


def test_without_a_repository_connect_says_so(run: Cli, home: Path) -> None:
    assert run.fails(3, "connect", "cursor").startswith("error: not a ContextFS repository")
    assert list(home.iterdir()) == []


# -- options ---------------------------------------------------------------------------


def test_aliases_name_and_actor(project: Cli, home: Path) -> None:
    project("connect", "claude", "code", "vs-code", "gemini-cli", "codex-cli", "--user")
    assert parse(BY_ID["claude-code"], home / ".claude.json")["mcpServers"]["contextfs"]
    assert list(parse(BY_ID["vscode"], home / BY_ID["vscode"].user)["servers"]) == ["contextfs"]
    project("connect", "cursor", "--name", "work-memory", "--actor", "pair bot")
    servers = parse(BY_ID["cursor"], path_of(project, home, BY_ID["cursor"]))["mcpServers"]
    assert servers == {"work-memory": expected_entry(project, BY_ID["cursor"], actor="pair bot")}
    out = project("disconnect", "cursor", "--name", "work-memory").stdout
    assert "as 'work-memory'" in out


def test_repo_option_names_the_repository(run: Cli, home: Path, tmp_path: Path) -> None:
    run("init", "memory")
    run("--repo", "memory", "connect", "cursor")
    path = tmp_path.resolve() / "memory" / ".cursor" / "mcp.json"
    args = parse(BY_ID["cursor"], path)["mcpServers"]["contextfs"]["args"]
    assert args[2:4] == ["--repo", str(tmp_path.resolve() / "memory")]


def test_json_result(project: Cli, home: Path) -> None:
    path = path_of(project, home, BY_ID["codex"])
    (result,) = project.json("connect", "codex")
    assert result == {
        "client": "codex",
        "scope": "project",
        "path": str(path),
        "name": "contextfs",
        "outcome": "connected",
        "written": True,
        "backup": None,
        "entry": expected_entry(project, BY_ID["codex"]),
        "hint": "Codex reads .codex/config.toml only in projects you have trusted",
    }
    (again,) = project.json("connect", "codex", "--dry-run")
    assert again["outcome"] == "already connected"
    assert again["written"] is False
    assert again["diff"] == ""


def test_hints_follow_the_lines(project: Cli, home: Path) -> None:
    out = project("connect", "claude-code", "claude-desktop", "cursor").stdout.splitlines()
    assert out[3:] == [
        "hint: Claude Code asks you to approve the project's servers the first time it starts"
        " there",
        "hint: restart Claude Desktop to load the server",
    ]


def test_a_symlinked_config_stays_a_symlink(project: Cli, home: Path, tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "mcp.json"
    old = write(real, json.dumps({"mcpServers": {"other": OTHER_SERVER}}))
    link = home / ".cursor" / "mcp.json"
    link.parent.mkdir()
    link.symlink_to(real)
    project("connect", "cursor", "--user")
    assert link.is_symlink()
    assert list(parse(BY_ID["cursor"], real)["mcpServers"]) == ["other", "contextfs"]
    assert backup(link).read_bytes() == old


# -- listing ---------------------------------------------------------------------------


def test_list_in_json(project: Cli, home: Path) -> None:
    project("connect", "cursor", "codex")
    write(path_of(project, home, BY_ID["gemini"]), '{"mcpServers": ')
    write(
        path_of(project, home, BY_ID["claude-code"], "user"),
        json.dumps({"mcpServers": {"contextfs": OTHER_SERVER}}),
    )
    write(path_of(project, home, BY_ID["vscode"], "user"), json.dumps({"servers": {}}))
    rows = project.json("connect", "--list")
    found = {(row["client"], row["scope"]): row for row in rows}
    assert list(found) == [(spec.id, scope) for spec in SPECS for scope in scopes(spec)]
    repo = str(folder_of(project))
    assert found["cursor", "project"] == {
        "client": "cursor",
        "scope": "project",
        "path": str(path_of(project, home, BY_ID["cursor"])),
        "name": "contextfs",
        "status": "connected",
        "repo": repo,
        "actor": "cursor",
        "reason": None,
    }
    assert found["codex", "project"]["status"] == "connected"
    assert found["gemini", "project"]["status"] == "unreadable"
    assert found["gemini", "project"]["reason"].startswith("line 1: not valid JSON (")
    assert found["claude-code", "user"]["status"] == "other"
    assert found["vscode", "user"]["status"] == "not connected"
    assert found["windsurf", "user"]["status"] == "no file"
    assert found["windsurf", "user"]["path"] == str(home / BY_ID["windsurf"].user)


def scopes(spec: Spec) -> list[str]:
    return ["project", "user"] if spec.project else ["user"]


def test_list_for_people_and_by_client(
    project: Cli, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "500")  # one row a line (narrower, long paths fold)
    project("connect", "cursor")
    out = project("connect", "--list", "cursor").stdout
    assert out.split("\n")[0].split() == ["client", "scope", "status", "repository", "file"]
    assert out.split("\n")[1].split()[:3] == ["cursor", "project", "connected"]
    assert out.split("\n")[2].split()[:4] == ["cursor", "user", "no", "file"]


def test_list_outside_a_repository_shows_user_files(run: Cli, home: Path) -> None:
    rows = run.json("connect", "--list")
    assert {row["scope"] for row in rows} == {"user"}
    assert len(rows) == len(SPECS)
