"""Config files as text: JSONC comments, TOML layouts, and edits that change nothing else."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from contextfs.connect import Target, client_named, inspect, plan_connect, plan_disconnect
from contextfs.connect.configfile import (
    CommentsWouldBeLostError,
    ConfigFileError,
    entry_in,
    repeated_key,
    strip_jsonc,
    with_entry,
    without_entry,
)
from contextfs.connect.plan import runs_contextfs

ENTRY: dict[str, Any] = {"command": "/opt/bin/contextfs", "args": ["--repo", "/r", "mcp"]}


def test_jsonc_keeps_lines_columns_and_strings() -> None:
    text = (
        "{\n"
        '  // a comment with "quotes"\n'
        '  "url": "http://x/*not a comment*/", /* one\n'
        '  spanning */ "quote": "a\\"//b",\n'
        '  "list": [1, 2,],\n'
        "}\n"
    )
    plain, comments = strip_jsonc(text, "f")
    assert comments
    assert len(plain) == len(text)
    assert [i for i, c in enumerate(plain) if c == "\n"] == [
        i for i, c in enumerate(text) if c == "\n"
    ]
    assert json.loads(plain) == {
        "url": "http://x/*not a comment*/",
        "quote": 'a"//b',
        "list": [1, 2],
    }


def test_jsonc_without_comments_says_so() -> None:
    plain, comments = strip_jsonc('{"a": [1,], "b": {"c": 1,},}', "f")
    assert not comments
    assert json.loads(plain) == {"a": [1], "b": {"c": 1}}


def test_an_unclosed_jsonc_comment_names_its_line() -> None:
    with pytest.raises(ConfigFileError) as caught:
        strip_jsonc('{\n  "a": 1\n  /* open\n}', "mcp.json")
    assert str(caught.value) == "mcp.json:3: not valid JSON (a /* comment is never closed)"


def test_jsonc_with_comments_is_not_rewritten() -> None:
    with pytest.raises(CommentsWouldBeLostError, match="f has comments"):
        with_entry("jsonc", '{"servers": {}} // x', "servers", "contextfs", ENTRY, "f")
    text = '{"servers": {"contextfs": {}}} // x'
    with pytest.raises(CommentsWouldBeLostError):
        without_entry("jsonc", text, "servers", "contextfs", "f")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"a": NaN}', "f: not valid JSON (NaN is not a JSON value)"),
        ('{"a": 1e999}', "f: holds a number too large to write back exactly"),
    ],
)
def test_json_that_cannot_be_written_back_exactly_is_refused(text: str, problem: str) -> None:
    with pytest.raises(ConfigFileError) as caught:
        with_entry("json", text, "mcpServers", "contextfs", ENTRY, "f")
    assert str(caught.value) == problem


def test_an_empty_json_file_is_an_empty_object() -> None:
    edited = with_entry("json", " \n", "mcpServers", "contextfs", ENTRY, "f")
    assert json.loads(edited) == {"mcpServers": {"contextfs": ENTRY}}


CODEX = '# settings\nmodel = "o3"  # why\n\n[mcp_servers.other]\ncommand = "x"\n\n[p.q]\nr = 1\n'


@pytest.mark.parametrize(
    "text",
    [
        CODEX,
        "",
        'model = "o3"',  # no newline at the end
        'model = "o3"\n\n\n',
        'mcp_servers = { other = { command = "x" } }\n',
        'model = 1\n[mcp_servers]\nother.command = "x"\n',
        '[mcp_servers.contextfs]\ncommand = "old"  # replaced\n\n[x]\ny = 1\n',
        '[mcp_servers.a]\ncommand = "a"\n\n[x]\ny = 1\n\n[mcp_servers.contextfs]\nargs = []\n',
    ],
    ids=[
        "tables",
        "empty",
        "no-newline",
        "blank-lines",
        "inline",
        "dotted-in-table",
        "replace",
        "out-of-order",
    ],
)
def test_toml_edits_change_only_the_entry(text: str) -> None:
    before = tomllib.loads(text)
    edited = with_entry("toml", text, "mcp_servers", "contextfs", ENTRY, "c.toml")
    after = tomllib.loads(edited)
    assert after["mcp_servers"].pop("contextfs") == ENTRY
    before.setdefault("mcp_servers", {}).pop("contextfs", None)
    assert after == before
    for line in text.splitlines():
        if "#" in line and "replaced" not in line:
            assert line in edited.splitlines()  # comments survive
    removed = without_entry("toml", edited, "mcp_servers", "contextfs", "c.toml")
    assert "contextfs" not in tomllib.loads(removed).get("mcp_servers", {})


def test_toml_round_trip_is_byte_for_byte() -> None:
    edited = with_entry("toml", CODEX, "mcp_servers", "contextfs", ENTRY, "c.toml")
    assert edited == CODEX.replace(
        "\n[p.q]",
        '\n[mcp_servers.contextfs]\ncommand = "/opt/bin/contextfs"\n'
        'args = ["--repo", "/r", "mcp"]\n\n[p.q]',
    )
    assert without_entry("toml", edited, "mcp_servers", "contextfs", "c.toml") == CODEX


def test_a_toml_layout_that_cannot_be_edited_exactly_is_refused() -> None:
    text = 'mcp_servers.other.command = "x"\nmodel = 1\n'
    with pytest.raises(ConfigFileError) as caught:
        with_entry("toml", text, "mcp_servers", "contextfs", ENTRY, "c.toml")
    assert str(caught.value) == (
        "c.toml: its layout cannot be edited without changing other settings; edit it by hand"
    )


def test_toml_errors_name_the_line() -> None:
    with pytest.raises(ConfigFileError) as caught:
        entry_in("toml", 'a = 1\nb = "\\q"\n', "mcp_servers", "contextfs", "c.toml")
    assert caught.value.line == 2
    assert str(caught.value) == "c.toml:2: not valid TOML (Invalid character 'q' in string)"


@pytest.mark.parametrize(
    ("entry", "ours"),
    [
        ({"command": "/home/a/.local/bin/contextfs", "args": ["mcp"]}, True),
        ({"command": "C:\\Py\\Scripts\\ContextFS.EXE", "args": ["--repo", "C:\\r", "mcp"]}, True),
        ({"command": "/usr/bin/python3", "args": ["-m", "contextfs", "mcp"]}, True),
        (
            {"command": "contextfs", "args": ["--repo", "/r", "mcp", "--actor", "x"], "env": {}},
            True,
        ),
        # Our script or module, but not its MCP server.
        ({"command": "/home/a/.local/bin/contextfs", "args": []}, False),
        ({"command": "/opt/bin/contextfs", "args": ["serve", "--port", "7411"]}, False),
        # Not the shape connect writes, even where contextfs is named.
        ({"command": "python", "args": ["-m", "contextfs.cli.main", "mcp"]}, False),
        ({"command": "python", "args": ["mcp", "-m", "contextfs"]}, False),
        (
            {
                "command": "npx",
                "args": [
                    "-y",
                    "@modelcontextprotocol/server-filesystem",
                    "/home/ada/src/contextfs",
                ],
            },
            False,
        ),
        ({"command": "uvx", "args": ["contextfs", "serve"]}, False),  # another project's name
        ({"command": "uvx", "args": ["contextfs", "mcp"]}, False),
        ({"command": "/opt/contextfs/bin/node", "args": ["mcp"]}, False),
        ({"command": "node", "args": ["--repo", "/srv/contextfs-data"]}, False),
        ({"command": "npx", "args": ["-y", "@modelcontextprotocol/server-memory"]}, False),
        ({"command": "/opt/bin/contextfs", "args": "mcp"}, False),
        ({"url": "http://localhost:7412/mcp"}, False),
    ],
)
def test_which_entries_run_contextfs(entry: dict[str, Any], ours: bool) -> None:
    assert runs_contextfs(entry) is ours


def target(client: str) -> Target:
    return Target(
        client=client_named(client), scope="user", path=Path("/h/mcp.json"), name="contextfs"
    )


def test_plans_are_pure_decisions_on_bytes() -> None:
    made = plan_connect(target("cursor"), None, ENTRY, force=False)
    assert made.outcome == "connected"
    assert made.new is not None
    assert json.loads(made.new) == {"mcpServers": {"contextfs": ENTRY}}
    same = plan_connect(target("cursor"), made.new, ENTRY, force=False)
    assert (same.outcome, same.new) == ("already connected", None)
    gone = plan_disconnect(target("cursor"), made.new, force=False)
    assert gone.outcome == "disconnected"
    assert gone.new is not None
    assert json.loads(gone.new) == {"mcpServers": {}}
    assert inspect(target("cursor"), made.new).repo == "/r"
    assert inspect(target("cursor"), gone.new).status == "not connected"
    assert inspect(target("cursor"), b"{").status == "unreadable"


def test_plans_tell_our_entries_from_others() -> None:
    ours = {
        "command": "/old/venv/bin/contextfs",
        "args": ["--repo", "/r", "mcp"],
        "env": {"A": "1"},
    }
    text = json.dumps({"mcpServers": {"contextfs": ours}}).encode()
    updated = plan_connect(target("cursor"), text, ENTRY, force=False)
    assert updated.outcome == "updated"
    assert updated.entry == {**ENTRY, "env": {"A": "1"}}
    theirs = {"command": "node", "args": ["s.js"], "disabled": True}
    text = json.dumps({"mcpServers": {"contextfs": theirs}}).encode()
    replaced = plan_connect(target("cursor"), text, ENTRY, force=True)
    assert replaced.outcome == "replaced"
    assert replaced.entry == {**ENTRY, "disabled": True}
    already = plan_connect(
        target("cursor"),
        json.dumps({"mcpServers": {"contextfs": {**ENTRY, "env": {}}}}).encode(),
        ENTRY,
        force=False,
    )
    assert (already.outcome, already.entry) == ("already connected", {**ENTRY, "env": {}})


# -- replacing an entry keeps its other keys -------------------------------------------


def test_a_json_entry_is_edited_in_place() -> None:
    entry = {"disabled": False, "command": "node", "env": {"K": "v"}, "args": ["s.js"], "x": 1}
    text = json.dumps({"mcpServers": {"a": {}, "contextfs": entry, "z": {}}}, indent=2)
    edited = json.loads(with_entry("json", text, "mcpServers", "contextfs", ENTRY, "f"))
    assert list(edited["mcpServers"]) == ["a", "contextfs", "z"]
    after = edited["mcpServers"]["contextfs"]
    assert after == {
        "disabled": False,
        "command": ENTRY["command"],
        "env": {"K": "v"},
        "args": ENTRY["args"],
        "x": 1,
    }
    assert list(after) == ["disabled", "command", "env", "args", "x"]  # each key where it was


def test_keys_that_choose_another_transport_can_be_dropped() -> None:
    entry = {"httpUrl": "http://h", "url": "http://u", "type": "sse", "timeout": 5}
    text = json.dumps({"mcpServers": {"contextfs": entry}})
    edited = with_entry(
        "json", text, "mcpServers", "contextfs", ENTRY, "f", drop=("httpUrl", "url", "type")
    )
    assert json.loads(edited)["mcpServers"]["contextfs"] == {"timeout": 5, **ENTRY}


def test_a_toml_entry_keeps_its_env_table_comments_and_other_keys() -> None:
    text = (
        "[mcp_servers.contextfs]\n"
        'command = "node"  # the old one\n'
        'args = ["old.js"]\n'
        "startup_timeout_sec = 20  # slow disk\n"
        "\n"
        "[mcp_servers.contextfs.env]\n"
        'TOKEN = "t"  # keep me\n'
        "\n"
        "[x]\n"
        "y = 1\n"
    )
    edited = with_entry("toml", text, "mcp_servers", "contextfs", ENTRY, "c.toml")
    assert edited == (
        "[mcp_servers.contextfs]\n"
        'command = "/opt/bin/contextfs"  # the old one\n'
        'args = ["--repo", "/r", "mcp"]\n'
        "startup_timeout_sec = 20  # slow disk\n"
        "\n"
        "[mcp_servers.contextfs.env]\n"
        'TOKEN = "t"  # keep me\n'
        "\n"
        "[x]\n"
        "y = 1\n"
    )
    inline = 'mcp_servers = { contextfs = { url = "http://u", env = { A = "1" } } }\n'
    edited = with_entry("toml", inline, "mcp_servers", "contextfs", ENTRY, "c.toml", drop=["url"])
    assert tomllib.loads(edited) == {"mcp_servers": {"contextfs": {"env": {"A": "1"}, **ENTRY}}}


# -- repeated keys ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "jsonc"])
def test_a_repeated_key_is_refused_naming_its_line(fmt: Any) -> None:
    text = (
        "{\n"
        '  "mcpServers": {"a": {"command": "x"}},\n'
        '  "theme": "dark",\n'
        '  "mcpServers": {"b": {"command": "y"}}\n'
        "}\n"
    )
    for attempt in (
        lambda: entry_in(fmt, text, "mcpServers", "contextfs", "/h/s.json"),
        lambda: with_entry(fmt, text, "mcpServers", "contextfs", ENTRY, "/h/s.json"),
    ):
        with pytest.raises(ConfigFileError) as caught:
            attempt()
        assert str(caught.value) == (
            "/h/s.json:4: the key 'mcpServers' appears twice in one object, and a rewrite"
            " would keep only one; remove one by hand"
        )


def test_repeated_keys_are_found_per_object_in_reading_order() -> None:
    assert repeated_key('{"a": {"x": 1}, "b": {"x": 2}, "c": ["a", "a"]}') is None
    assert repeated_key('{"a": "b", "b": 1}') is None  # a value that names a key
    assert repeated_key('{"s": {"k": 1,\n "k": 2}, "s": 3}') == ("k", 2)
    assert repeated_key('{"\\u0061": 1, "a": 2}') == ("a", 1)  # the same key, spelled twice
    assert repeated_key('[{"a": 1}, {"a": 2}]') is None
    plan = target("gemini")
    with pytest.raises(ConfigFileError, match=r":3: the key 'contextfs' appears twice"):
        plan_connect(
            plan, b'{"mcpServers": {\n"contextfs": {},\n"contextfs": {}}}', ENTRY, force=False
        )
    assert inspect(plan, b'{"a": 1, "a": 2}').reason == (
        "line 1: the key 'a' appears twice in one object, and a rewrite would keep only one;"
        " remove one by hand"
    )
