"""Writing a planned change: only over the bytes it was planned on, backed up, whole."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from contextfs.connect import (
    ConfigChangedError,
    ConfigFileError,
    ReadOnlyConfigError,
    Target,
    apply,
    check_writable,
    client_named,
    locked,
    plan_connect,
    read_config,
)

ENTRY = {"command": "/opt/bin/contextfs", "args": ["--repo", "/r", "mcp"]}


def target(path: Path) -> Target:
    return Target(client=client_named("cursor"), scope="user", path=path, name="contextfs")


def test_a_new_file_gets_its_folders_and_no_backup(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "mcp.json"
    change = plan_connect(target(path), read_config(path), ENTRY, force=False)
    assert apply(change) is None
    assert json.loads(path.read_text()) == {"mcpServers": {"contextfs": ENTRY}}
    assert sorted(p.name for p in path.parent.iterdir()) == ["mcp.json"]


def test_a_file_changed_since_planning_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text('{"a": 1}')
    change = plan_connect(target(path), read_config(path), ENTRY, force=False)
    path.write_text('{"a": 2}')  # the client rewrote it meanwhile
    with pytest.raises(ConfigChangedError, match="changed while this ran"):
        apply(change)
    assert path.read_text() == '{"a": 2}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mcp.json"]  # no backup, no temporary


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_the_backup_has_the_files_permission_bits(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text('{"secret": "s"}')
    path.chmod(0o640)
    (tmp_path / "mcp.json.bak").write_text("an older backup")
    (tmp_path / "mcp.json.bak").chmod(0o644)
    change = plan_connect(target(path), read_config(path), ENTRY, force=False)
    assert apply(change) == tmp_path / "mcp.json.bak"
    assert (tmp_path / "mcp.json.bak").read_text() == '{"secret": "s"}'
    assert stat.S_IMODE((tmp_path / "mcp.json.bak").stat().st_mode) == 0o640
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_folder_where_the_file_should_be_is_an_os_error(tmp_path: Path) -> None:
    (tmp_path / "mcp.json").mkdir()
    with pytest.raises(IsADirectoryError):
        read_config(tmp_path / "mcp.json")


def test_reading_stops_at_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    with path.open("wb") as out:
        out.truncate(64 * 1024 * 1024 + 1)
    with pytest.raises(ConfigFileError, match="larger than 64 MiB, the most this reads"):
        read_config(path)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_a_file_without_write_bits_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text('{"a": 1}')
    path.chmod(0o444)
    change = plan_connect(target(path), read_config(path), ENTRY, force=False)
    message = (
        f"{path} is read-only (mode 444); nothing was written to it: make it writable to change it"
    )
    with pytest.raises(ReadOnlyConfigError) as caught:
        check_writable(change)
    assert str(caught.value) == message
    assert caught.value.exit_code == 10
    with pytest.raises(ReadOnlyConfigError):
        apply(change)  # even as root, who could
    assert path.read_text() == '{"a": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mcp.json"]
    path.chmod(0o644)
    apply(change)


@pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() != 0, reason="only root can give a file away"
)
def test_root_keeps_the_owner_of_another_users_file(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text('{"a": 1}')
    path.chmod(0o600)
    os.chown(path, 4321, 4322)
    apply(plan_connect(target(path), read_config(path), ENTRY, force=False))
    for written in (path, tmp_path / "mcp.json.bak"):
        found = written.stat()
        assert (found.st_uid, found.st_gid, stat.S_IMODE(found.st_mode)) == (4321, 4322, 0o600)
    new = tmp_path / "new" / "mcp.json"
    apply(plan_connect(target(new), None, ENTRY, force=False))
    assert (new.stat().st_uid, new.stat().st_gid) == (0, os.getegid())


@pytest.mark.skipif(sys.platform == "win32", reason="no flock on Windows")
def test_locking_makes_missing_folders_and_removes_those_left_empty(tmp_path: Path) -> None:
    kept = tmp_path / "a" / "b" / "mcp.json"
    dropped = tmp_path / "c" / "d" / "mcp.json"
    with locked([dropped, kept, kept]):
        assert kept.parent.is_dir()
        assert dropped.parent.is_dir()
        kept.write_text("{}")
    assert kept.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    with pytest.raises(ConfigFileError), locked([dropped]):
        raise ConfigFileError(str(dropped), "refused")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
