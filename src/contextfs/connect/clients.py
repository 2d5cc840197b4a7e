"""The AI clients ``contextfs connect`` knows: where each keeps its MCP servers, and how.

Each :class:`Client` is a row of one table (:data:`CLIENTS`), copied from the
client's own documentation: the file a project may hold, the file in the
user's profile, the file's format, the key its servers live under, and the
shape of one stdio server entry. Nothing here reads the environment: the
CLI passes it in as a :class:`Host`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import InvalidInputError

#: Where a client reads an entry: a file in the project, or one in the user's profile.
Scope = Literal["project", "user"]
#: How a config file is written: strict JSON, JSON with comments (VS Code, Gemini CLI), or TOML.
Format = Literal["json", "jsonc", "toml"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Host:
    """The machine's side of a user-level path: home folder, environment, platform.

    ``platform`` is spelled as :data:`sys.platform` (``darwin``, ``win32``, ``linux``).
    """

    home: Path
    environ: Mapping[str, str]
    platform: str

    def config_home(self) -> Path:
        """``$XDG_CONFIG_HOME``, else ``~/.config`` (the XDG spec ignores a relative value)."""
        value = self.environ.get("XDG_CONFIG_HOME", "")
        return Path(value) if value and os.path.isabs(value) else self.home / ".config"

    def app_data(self) -> Path:
        """Where desktop apps keep their settings: Electron's ``appData`` folder."""
        if self.platform == "darwin":
            return self.home / "Library" / "Application Support"
        if self.platform == "win32":
            value = self.environ.get("APPDATA", "")
            return Path(value) if value else self.home / "AppData" / "Roaming"
        return self.config_home()


@dataclass(frozen=True, slots=True, kw_only=True)
class Client:
    """One AI client: its config files and the entry that registers a stdio server.

    ``project_file`` is relative to the project folder (``None``: the client
    reads no project file); ``user_file`` finds the file in the user's
    profile. ``typed`` entries carry ``"type": "stdio"``. ``actor`` is who
    the server's writes are recorded as, by default. ``hints`` say, per
    scope, what the user still has to do once the file is written.
    """

    id: str
    display: str
    aliases: tuple[str, ...]
    project_file: str | None
    user_file: Callable[[Host], Path]
    format: Format
    servers_key: str
    typed: bool
    actor: str
    hints: Mapping[Scope, str] = field(default_factory=dict)

    @property
    def scopes(self) -> tuple[Scope, ...]:
        """The scopes this client reads, project first."""
        return ("project", "user") if self.project_file is not None else ("user",)

    @property
    def default_scope(self) -> Scope:
        """The project where the client reads a project file, else the user's profile."""
        return self.scopes[0]

    def path(self, scope: Scope, *, folder: Path | None, host: Host) -> Path:
        """The config file of ``scope``: in the project ``folder``, or the user's.

        Raises:
            InvalidInputError: the client reads no project file, or the
                project scope was asked for without a folder.
        """
        if scope == "user":
            return self.user_file(host)
        if self.project_file is None:
            raise InvalidInputError(f"{self.id} has no project-level config file; use --user")
        if folder is None:
            raise InvalidInputError(f"the project file of {self.id} needs a project folder")
        return folder / self.project_file

    def entry(self, argv: Sequence[str]) -> dict[str, object]:
        """The server entry that runs ``argv`` over stdio, in this client's shape.

        Raises:
            InvalidInputError: ``argv`` is empty.
        """
        if not argv:
            raise InvalidInputError("a server entry needs a command")
        shape: dict[str, object] = {"type": "stdio"} if self.typed else {}
        shape["command"] = argv[0]
        shape["args"] = list(argv[1:])
        return shape


def _claude_desktop(host: Host) -> Path:
    return host.app_data() / "Claude" / "claude_desktop_config.json"


def _vscode(host: Host) -> Path:
    return host.app_data() / "Code" / "User" / "mcp.json"


def _codex(host: Host) -> Path:
    value = host.environ.get("CODEX_HOME", "")
    return (Path(value) if value else host.home / ".codex") / "config.toml"


#: Every client, in the order ``connect --list`` shows them.
CLIENTS: tuple[Client, ...] = (
    Client(
        id="claude-code",
        display="Claude Code",
        aliases=("claude",),
        project_file=".mcp.json",
        user_file=lambda host: host.home / ".claude.json",
        format="json",
        servers_key="mcpServers",
        typed=True,
        actor="claude-code",
        hints={
            "project": "Claude Code asks you to approve the project's servers the first time"
            " it starts there",
        },
    ),
    Client(
        id="claude-desktop",
        display="Claude Desktop",
        aliases=(),
        project_file=None,
        user_file=_claude_desktop,
        format="json",
        servers_key="mcpServers",
        typed=False,
        actor="claude-desktop",
        hints={"user": "restart Claude Desktop to load the server"},
    ),
    Client(
        id="cursor",
        display="Cursor",
        aliases=(),
        project_file=".cursor/mcp.json",
        user_file=lambda host: host.home / ".cursor" / "mcp.json",
        format="json",
        servers_key="mcpServers",
        typed=False,
        actor="cursor",
    ),
    Client(
        id="vscode",
        display="VS Code",
        aliases=("code", "vs-code"),
        project_file=".vscode/mcp.json",
        user_file=_vscode,
        format="jsonc",
        servers_key="servers",
        typed=True,
        actor="vscode",
    ),
    Client(
        id="windsurf",
        display="Windsurf",
        aliases=(),
        project_file=None,
        user_file=lambda host: host.home / ".codeium" / "windsurf" / "mcp_config.json",
        format="json",
        servers_key="mcpServers",
        typed=False,
        actor="windsurf",
        hints={"user": "restart Windsurf (or refresh its MCP servers) to load the server"},
    ),
    Client(
        id="gemini",
        display="Gemini CLI",
        aliases=("gemini-cli",),
        project_file=".gemini/settings.json",
        user_file=lambda host: host.home / ".gemini" / "settings.json",
        format="jsonc",  # Gemini CLI reads it through strip-json-comments
        servers_key="mcpServers",
        typed=False,
        actor="gemini-cli",
    ),
    Client(
        id="codex",
        display="Codex",
        aliases=("codex-cli",),
        project_file=".codex/config.toml",
        user_file=_codex,
        format="toml",
        servers_key="mcp_servers",
        typed=False,
        actor="codex",
        hints={"project": "Codex reads .codex/config.toml only in projects you have trusted"},
    ),
)

_BY_NAME: dict[str, Client] = {
    name: client for client in CLIENTS for name in (client.id, *client.aliases)
}


def client_named(name: str) -> Client:
    """The client called ``name`` (its id or an alias, any case).

    Raises:
        InvalidInputError: no client is called that.
    """
    found = _BY_NAME.get(name.strip().lower())
    if found is None:
        known = ", ".join(client.id for client in CLIENTS)
        raise InvalidInputError(f"unknown client {name!r}; choose from {known}")
    return found


def server_command(argv0: str, executable: str) -> list[str]:
    """How a client starts this ContextFS: the running script, else ``python -m contextfs``.

    A ``contextfs`` script is named by its absolute path with symlinks kept,
    so a pipx or virtualenv path stays valid across upgrades. (On Windows the
    launcher's name lacks ``.exe``; it is added back when that file exists.)
    """
    if Path(argv0).name.lower() in ("contextfs", "contextfs.exe"):
        script = os.path.abspath(argv0)
        if not os.path.isfile(script) and os.path.isfile(script + ".exe"):
            script += ".exe"
        return [script]
    return [executable, "-m", "contextfs"]


__all__ = [
    "CLIENTS",
    "Client",
    "Format",
    "Host",
    "Scope",
    "client_named",
    "server_command",
]
