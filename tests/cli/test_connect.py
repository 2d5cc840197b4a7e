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

from contextfs.cli.connect import MACHINE_PATHS_HINT
from contextfs.repo import Repository
from contextfs.store.postgres import PostgresStore

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
def test_an_entry_that_is_not_ours_is_replaced_only_with_force(
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
        f"error: {path} already has a server 'contextfs' that does not run contextfs;"
        " replace it with --force, or choose another name with --name"
    )
    out = project("connect", spec.id, "--force").stdout
    assert out.splitlines()[0] == (
        f"{spec.id}: replaced the entry in {path} (backup: {backup(path)})"
    )
    after = parse(spec, path)
    kept = {} if spec.toml else {"env": OTHER_SERVER["env"]}  # the user's keys stay
    assert after[spec.key]["contextfs"] == {**expected_entry(project, spec), **kept}
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
    assert not path_of(project, home, BY_ID["cursor"]).parent.exists()  # nor its folder
    assert not path_of(project, home, BY_ID["codex"]).parent.exists()


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
        "hints": [
            "Codex reads .codex/config.toml only in projects you have trusted",
            MACHINE_PATHS_HINT,
        ],
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
        f"hint: {MACHINE_PATHS_HINT}",
        "hint: restart Claude Desktop to load the server",
    ]
    assert MACHINE_PATHS_HINT == (
        "project-level files name paths on this machine (the contextfs command, the"
        " repository's folder): teammates run 'contextfs connect' themselves, so keep them"
        " out of version control, or share them knowingly"
    )
    user_only = project("connect", "cursor", "gemini", "--user").stdout
    assert "hint:" not in user_only


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
    project("connect", "cursor", "--user", "--actor", "pair-bot")
    out = project("connect", "--list", "cursor").stdout
    header = ["client", "scope", "status", "actor", "repository", "file"]
    assert out.split("\n")[0].split() == header
    repo = str(folder_of(project))
    assert out.split("\n")[1].split()[:5] == ["cursor", "project", "connected", "cursor", repo]
    assert out.split("\n")[2].split()[:5] == ["cursor", "user", "connected", "pair-bot", repo]
    out = project("connect", "--list", "windsurf").stdout
    assert out.split("\n")[1].split()[:4] == ["windsurf", "user", "no", "file"]


def test_list_outside_a_repository_shows_user_files(run: Cli, home: Path) -> None:
    rows = run.json("connect", "--list")
    assert {row["scope"] for row in rows} == {"user"}
    assert len(rows) == len(SPECS)


# -- entries of ours, entries of others ------------------------------------------------


def ours_but(project: Cli, spec: Spec, change: str) -> dict[str, Any]:
    """Our entry as an earlier ``connect`` (or another machine) wrote it."""
    entry = expected_entry(project, spec)
    folder = str(folder_of(project))
    if change == "moved-venv":
        entry["command"] = "/old/venv/bin/contextfs"
        entry["args"] = entry["args"][2:]
    elif change == "script-vs-module":
        entry["command"] = "/home/ada/.local/bin/contextfs"
        entry["args"] = entry["args"][2:]
    elif change == "actor":
        entry["args"] = ["-m", "contextfs", "--repo", folder, "mcp", "--actor", "someone"]
    elif change == "repo":
        entry["args"] = ["-m", "contextfs", "--repo", "/elsewhere", "mcp", "--actor", spec.actor]
    return entry


CHANGES = ["moved-venv", "script-vs-module", "actor", "repo"]


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_our_entry_that_differs_is_updated_in_place_without_force(
    project: Cli, home: Path, spec: Spec, change: str
) -> None:
    path = path_of(project, home, spec)
    entry = ours_but(project, spec, change)
    if spec.toml:
        old = write(
            path,
            f"[mcp_servers.contextfs]\ncommand = {json.dumps(entry['command'])}\n"
            f"args = {json.dumps(entry['args'])}\nstartup_timeout_sec = 30\n\n"
            '[mcp_servers.contextfs.env]\nLOG = "1"\n\n[mcp_servers.other]\ncommand = "x"\n',
        )
    else:
        mine = {**entry, "env": {"LOG": "1"}, "disabled": False}
        old = write(path, json.dumps({spec.key: {"contextfs": mine, "other": OTHER_SERVER}}))
    out = project("connect", spec.id).stdout
    assert out.splitlines()[0] == f"{spec.id}: updated the entry in {path} (backup: {backup(path)})"
    after = parse(spec, path)[spec.key]
    assert list(after) == ["contextfs", "other"]
    kept: dict[str, Any] = {"env": {"LOG": "1"}}
    kept.update({"startup_timeout_sec": 30} if spec.toml else {"disabled": False})
    assert after["contextfs"] == {**expected_entry(project, spec), **kept}
    assert backup(path).read_bytes() == old
    (again,) = project.json("connect", spec.id)
    assert again["outcome"] == "already connected"
    assert again["entry"] == {**expected_entry(project, spec), **kept}


def test_force_keeps_the_users_keys_of_any_entry(project: Cli, home: Path) -> None:
    path = path_of(project, home, BY_ID["gemini"], "user")
    theirs = {
        "httpUrl": "http://localhost:9/mcp",  # Gemini would prefer it to the command
        "headers": {"X": "1"},
        "timeout": 5000,
        "trust": True,
        "env": {"K": "v"},
    }
    write(path, json.dumps({"mcpServers": {"contextfs": theirs}}))
    (result,) = project.json("connect", "gemini", "--user", "--force")
    assert result["outcome"] == "replaced"
    entry = parse(BY_ID["gemini"], path)["mcpServers"]["contextfs"]
    assert entry == {
        "headers": {"X": "1"},
        "timeout": 5000,
        "trust": True,
        "env": {"K": "v"},
        **expected_entry(project, BY_ID["gemini"]),
    }
    assert result["entry"] == entry
    codex = path_of(project, home, BY_ID["codex"], "user")
    write(
        codex,
        '[mcp_servers.contextfs]\nurl = "http://x/mcp"\nbearer_token_env_var = "TOK"\n\n'
        '[mcp_servers.contextfs.env]\nA = "1"  # mine\n',
    )
    project("connect", "codex", "--user", "--force")
    assert parse(BY_ID["codex"], codex)["mcp_servers"]["contextfs"] == {
        "bearer_token_env_var": "TOK",
        "env": {"A": "1"},
        **expected_entry(project, BY_ID["codex"]),
    }
    assert 'A = "1"  # mine' in codex.read_text(encoding="utf-8")


NOT_OURS = [
    {
        "command": "npx",
        "args": ["-y", "@modelcontextprotocol/server-filesystem", "/home/ada/src/contextfs"],
    },
    {"command": "uvx", "args": ["contextfs", "serve"]},
]


@pytest.mark.parametrize("entry", NOT_OURS, ids=["filesystem", "other-contextfs"])
def test_an_entry_that_only_names_contextfs_is_not_ours(
    project: Cli, home: Path, entry: dict[str, Any]
) -> None:
    path = path_of(project, home, BY_ID["cursor"])
    old = write(path, json.dumps({"mcpServers": {"contextfs": entry}}))
    (row,) = project.json("connect", "--list", "cursor", "--project")
    assert (row["status"], row["repo"], row["actor"]) == ("other", None, None)
    line = refused(project, path, old, 6, "disconnect", "cursor")
    assert line.endswith("does not run contextfs; remove it anyway with --force")
    refused(project, path, old, 6, "connect", "cursor")


# -- where the repository is -----------------------------------------------------------


def test_a_store_url_in_the_environment_is_refused(
    project: Cli, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTEXTFS_STORE_URL", "postgresql://agent:hunter2@127.0.0.1:1/memory")
    line = project.fails(3, "connect", "cursor")
    assert line == (
        "error: CONTEXTFS_STORE_URL is set, so this command works on that store, but the"
        f" entry's --repo {folder_of(project)} would make the server open that folder's own"
        " store; unset CONTEXTFS_STORE_URL, or connect a folder whose store is that URL (made"
        " with 'contextfs init FOLDER --store URL')"
    )
    assert not (folder_of(project) / ".cursor").exists()
    project("--repo", ".", "connect", "cursor")  # --repo names the folder: no doubt


def test_a_folder_whose_store_is_the_url_connects(
    run: Cli, home: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("init", "shared", "--store", postgres_url)
    monkeypatch.chdir(run.folder / "shared")
    monkeypatch.setenv("CONTEXTFS_STORE_URL", postgres_url)
    (result,) = run.json("connect", "cursor")
    assert result["entry"]["args"][2:4] == ["--repo", str((run.folder / "shared").resolve())]


def test_list_with_a_repository_of_no_folder_shows_user_files(
    run: Cli, home: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Repository.create(PostgresStore.open(postgres_url, create=True)):
        pass
    monkeypatch.setenv("CONTEXTFS_STORE_URL", postgres_url)
    rows = run.json("connect", "--list")
    assert [row["scope"] for row in rows] == ["user"] * len(SPECS)
    result = run("connect", "--list", "--project", "--json")
    assert json.loads(result.stdout) == []
    assert result.stderr == (
        "note: the repository has no folder (it was opened by URL): no project files to list\n"
    )


def test_list_of_project_files_outside_a_repository_says_why_it_is_empty(
    run: Cli, home: Path
) -> None:
    result = run("connect", "--list", "--project")
    assert result.stdout == ""  # no table of no rows
    assert result.stderr == "note: not in a repository: no project files to list\n"


@pytest.mark.parametrize("spec", [BY_ID["cursor"], BY_ID["gemini"], BY_ID["codex"]], ids=str)
def test_a_repository_at_home_has_only_the_user_file(
    project: Cli, monkeypatch: pytest.MonkeyPatch, spec: Spec
) -> None:
    home = folder_of(project)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CODEX_HOME")
    path = home / f".{spec.id}" / ("config.toml" if spec.toml else spec.user.split("/")[-1])
    out = project("connect", spec.id).stdout
    assert out == f"{spec.id}: connected in {path} (new file)\n"  # no hint: not a project file
    (result,) = project.json("connect", spec.id, "--project")
    assert (result["scope"], result["path"]) == ("user", str(path))
    rows = project.json("connect", "--list", spec.id)
    assert [(row["scope"], row["path"], row["status"]) for row in rows] == [
        ("user", str(path), "connected")
    ]
    assert project("disconnect", spec.id).stdout.startswith(f"{spec.id}: disconnected from {path}")


# -- file formats and modes ------------------------------------------------------------


@pytest.mark.parametrize("scope", ["project", "user"])
def test_gemini_settings_are_jsonc(project: Cli, home: Path, scope: str) -> None:
    path = path_of(project, home, BY_ID["gemini"], scope)
    old = write(path, '{\n  // my theme\n  "theme": "dark",\n  "mcpServers": {}\n}\n')
    line = refused(project, path, old, 6, "connect", "gemini", f"--{scope}")
    assert line == (
        f"error: {path} has comments, which rewriting it would drop; edit it by hand"
        " (or remove the comments and run this again)"
    )
    (row,) = project.json("connect", "--list", "gemini", f"--{scope}")
    assert row["status"] == "not connected"
    write(path, '{"theme": "dark", "mcpServers": {"other": {"command": "x",},},}')
    project("connect", "gemini", f"--{scope}")
    assert parse(BY_ID["gemini"], path) == {
        "theme": "dark",
        "mcpServers": {
            "other": {"command": "x"},
            "contextfs": expected_entry(project, BY_ID["gemini"]),
        },
    }


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_a_read_only_file_is_refused_untouched(project: Cli, home: Path) -> None:
    cursor = path_of(project, home, BY_ID["cursor"])
    path = path_of(project, home, BY_ID["claude-code"], "user")
    old = write(path, json.dumps({"numStartups": 3}))
    path.chmod(0o400)
    line = refused(project, path, old, 10, "connect", "cursor", "claude-code", "--user")
    assert line == (
        f"error: {path} is read-only (mode 400); nothing was written to it: make it"
        " writable to change it"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    assert not cursor.exists()  # refused while planning: no file of the run is written
    servers = {"contextfs": expected_entry(project, BY_ID["claude-code"])}
    write(path, json.dumps({"mcpServers": servers}))
    path.chmod(0o400)
    assert project("connect", "claude", "--user").stdout.startswith("claude-code: already")


@pytest.mark.parametrize("spec", JSON_SPECS, ids=[s.id for s in JSON_SPECS])
def test_a_repeated_key_is_refused_naming_file_and_line(
    project: Cli, home: Path, spec: Spec
) -> None:
    path = path_of(project, home, spec)
    text = (
        f'{{\n  "{spec.key}": {{"a": {{"command": "x"}}}},\n  "theme": 1,\n'
        f'  "{spec.key}": {{"b": {{"command": "y"}}}}\n}}\n'
    )
    old = write(path, text)
    line = refused(project, path, old, 5, "connect", spec.id)
    assert line == (
        f"error: {path}:4: the key '{spec.key}' appears twice in one object, and a rewrite"
        " would keep only one; remove one by hand"
    )
    refused(project, path, old, 5, "disconnect", spec.id)


# -- a write that fails midway ---------------------------------------------------------


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_a_failed_write_reports_the_files_written_before_it(
    project: Cli, home: Path, as_json: bool
) -> None:
    cursor = path_of(project, home, BY_ID["cursor"])
    codex = path_of(project, home, BY_ID["codex"])
    old = write(codex, CODEX_BEFORE)
    backup(codex).mkdir()  # planning reads only the file; writing its backup fails
    args = ["connect", "cursor", "codex", *(["--json"] if as_json else [])]
    result = project(*args, code=1)
    assert result.stderr == f"error: Is a directory: {backup(codex)}\n"
    if as_json:
        (done,) = json.loads(result.stdout)
        assert (done["client"], done["outcome"], done["written"]) == ("cursor", "connected", True)
    else:
        assert result.stdout == f"cursor: connected in {cursor} (new file)\n"
    assert parse(BY_ID["cursor"], cursor)["mcpServers"]["contextfs"]
    assert codex.read_bytes() == old
    assert sorted(p.name for p in codex.parent.iterdir()) == ["config.toml", "config.toml.bak"]
