"""Remotes over a live ``contextfs serve``: clone, fetch, pull and push through real sockets.

Also what must survive a crash: a client SIGKILLed half way through a fetch
leaves its store as it was, and one killed half way through a push leaves the
server's store as it was (uploads are held until UPDATE_REFS).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from contextfs.cli.main import cli
from contextfs.client import Client
from contextfs.errors import CorruptObjectError, InvalidInputError, NonFastForwardError
from contextfs.model.ids import from_hex
from contextfs.remote import sync
from contextfs.remote.objects import RefUpdate
from contextfs.remote.pack import pack_history
from contextfs.remote.wire import WirePeer
from contextfs.repo import Repository
from contextfs.store.postgres import PostgresStore
from contextfs.store.sqlite import SqliteStore
from contextfs.wire.errors import ErrorCode, RemoteError

from ..server.test_fuzz import Running
from .test_sync import grow, history, snapshot_ids, state


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Repository, str]]:
    repo = Repository.init(tmp_path / "server")
    grow(repo, 12)
    running = Running(repo)
    try:
        yield repo, f"ctx://127.0.0.1:{running.server.port}"
    finally:
        running.stop()
        repo.close()


def test_clone_fetch_pull_push_over_the_wire(
    served: tuple[Repository, str], tmp_path: Path
) -> None:
    server, url = served
    with sync.clone(url, tmp_path / "agent") as agent:
        assert history(agent) == history(server)
        assert agent.verify().ok
        grow(server, 3, tag="server ")
        fetched = sync.fetch(agent, "origin")
        assert fetched.objects >= 3 * 3 + 3
        assert sync.pull(agent, "origin", author="agent").fast_forward
        assert snapshot_ids(agent) == snapshot_ids(server)
        grow(agent, 2, tag="agent ")
        pushed = sync.push(agent, "origin")
        assert pushed.objects > 0
        assert server.head() == agent.head()
        assert server.verify().ok
        # A second agent that did not fetch is refused, and the server is unchanged.
        with sync.clone(url, tmp_path / "late") as late:
            grow(agent, 1, tag="first ")
            sync.push(agent, "origin")
            grow(late, 1, tag="late ")
            before = state(server)
            # The server checks too: an update that drops its commits is refused there.
            pack = pack_history(late.store, [from_hex(late.head() or "")], [])
            with WirePeer(url) as peer, pytest.raises(RemoteError, match="fetch and merge first"):
                peer.receive_pack(
                    pack, [RefUpdate("refs/heads/main", server.head(), late.head())], force=False
                )
            assert state(server) == before
            with pytest.raises(NonFastForwardError):
                sync.push(late, "origin")
            sync.pull(late, "origin", author="late")
            sync.push(late, "origin")
            assert server.head() == late.head()
            assert server.verify().ok


def test_only_branches_and_tags_can_be_pushed(served: tuple[Repository, str]) -> None:
    server, url = served
    head = server.head()
    with Client(url) as client:
        for name in ("HEAD", "STAGE", "refs/purges/x", "refs/heads/../x"):
            with pytest.raises(RemoteError):
                client.update_refs([(name, head, head)])
    assert server.store.read_ref("HEAD") == "ref: refs/heads/main"


def test_large_memories_travel_both_ways(served: tuple[Repository, str], tmp_path: Path) -> None:
    """Objects near the frame limit are sent in frames of their own, never over the limit."""
    server, url = served
    big = " ".join(["a long transcript line about the deployment schedule"] * 13_000)
    assert 600_000 < len(big) < 800_000
    server.add("first " + big)
    server.add("second " + big)
    server.commit("two large memories")
    with sync.clone(url, tmp_path / "agent") as agent:
        assert snapshot_ids(agent) == snapshot_ids(server)
        agent.add("third " + big)
        agent.add("fourth " + big)
        agent.commit("two more")
        sync.push(agent, "origin")
        assert server.head() == agent.head()
        assert server.verify().ok


def test_an_update_to_a_commit_the_server_lacks_is_invalid(served: tuple[Repository, str]) -> None:
    server, url = served
    with Client(url) as client, pytest.raises(RemoteError, match="no such commit here") as caught:
        client.update_refs([("refs/heads/main", server.head(), "ab" * 32)])
    assert caught.value.code == ErrorCode.INVALID


def test_the_server_rehashes_uploads(served: tuple[Repository, str]) -> None:
    server, url = served
    before = state(server)
    first, second = list(server.store.iter_objects("atom"))[:2]
    with Client(url) as client:
        client.upload([(first[0].hex(), "atom", second[2])])  # another atom's bytes
        with pytest.raises(RemoteError, match="hashes to") as caught:
            client.update_refs([])
    assert caught.value.code == ErrorCode.INVALID
    assert state(server) == before


def test_a_client_checks_what_the_server_sends(
    served: tuple[Repository, str], tmp_path: Path
) -> None:
    """What a lying server sends is caught: by FETCH's check, and by a clone's receive."""
    server, url = served
    (atom_id, _, _), (_, _, other) = list(server.store.iter_objects("atom"))[:2]
    assert isinstance(server.store, SqliteStore)
    with server.store.connection(write=True) as conn:  # damage the server's copy on disk
        conn.execute("UPDATE objects SET data = ? WHERE id = ?", (other, atom_id))
    with Client(url) as client, pytest.raises(CorruptObjectError, match="does not hash"):
        client.fetch([atom_id.hex()])
    # A pack names nothing: the bytes hash to another atom, so the tree's is missing.
    with pytest.raises(CorruptObjectError, match="neither sent nor already stored"):
        sync.clone(url, tmp_path / "victim")
    assert not (tmp_path / "victim").exists()


def test_cli_remote_commands(served: tuple[Repository, str], tmp_path: Path) -> None:
    server, url = served
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    home = tmp_path / "cli"
    assert "Cloned" in run("clone", url, str(home))
    repo = ("--repo", str(home))
    assert run(*repo, "remote", "list") == f"origin\t{url}\n"
    assert json.loads(run(*repo, "fetch", "--json"))["updated"] == []
    run(*repo, "add", "a memory written from the command line")
    run(*repo, "commit", "-m", "from the cli")
    pushed = json.loads(run(*repo, "push", "--json"))
    assert pushed["updated"][0]["ref"] == "refs/heads/main"
    assert server.store.read_ref("refs/heads/main") == pushed["updated"][0]["new"]
    grow(server, 1, tag="server ")
    pulled = json.loads(run(*repo, "pull", "--json"))
    assert pulled["fast_forward"] is True
    run(*repo, "remote", "add", "mirror", str(tmp_path / "server"))
    assert json.loads(run(*repo, "remote", "list", "--json")) == {
        "mirror": str(tmp_path / "server"),
        "origin": url,
    }
    # A pull whose merge stops on a conflict exits 6, like merge.
    edited = server.snapshot()[0]
    key = server.memory_id(edited.digest.hex()[:16])
    server.update_entry(key, relevance=0.1)
    server.commit("server says low")
    with Repository.open(home) as local:
        local.update_entry(key, relevance=0.9)
        local.commit("we say high")
    conflicted = runner.invoke(cli, [*repo, "pull"])
    assert conflicted.exit_code == 6, conflicted.output
    assert "merge stopped on 1 conflict" in conflicted.stderr
    run(*repo, "merge", "--abort")
    missing = runner.invoke(cli, [*repo, "fetch", "nowhere"])
    assert missing.exit_code == 4
    assert missing.stderr.startswith("error: no remote named 'nowhere'")
    run(*repo, "remote", "remove", "mirror")
    # A push that would drop the server's commits: exit 6, one line.
    grow(server, 1, tag="again ")
    run(*repo, "add", "diverging")
    run(*repo, "commit", "-m", "diverge")
    refused = runner.invoke(cli, [*repo, "push"])
    assert refused.exit_code == 6
    assert refused.stderr.count("\n") == 1


def test_a_postgres_repository_served_over_the_wire(postgres_url: str, tmp_path: Path) -> None:
    shared = Repository.create(PostgresStore.open(postgres_url, create=True))
    grow(shared, 4, tag="team ")
    running = Running(shared)
    try:
        url = f"ctx://127.0.0.1:{running.server.port}"
        with sync.clone(url, tmp_path / "agent") as agent:
            grow(agent, 2, tag="agent ")
            sync.push(agent, "origin")
            assert shared.store.read_ref("refs/heads/main") == agent.head()
            assert shared.verify().ok
    finally:
        running.stop()
        shared.close()


# -- crashes --------------------------------------------------------------------------

_KILL_DURING_FETCH = textwrap.dedent(
    """
    import os, signal, sys
    from contextfs.remote import sync
    from contextfs.repo import Repository

    def die(count):
        os.kill(os.getpid(), signal.SIGKILL)  # mid-transaction, after a first batch

    repo = Repository.open(sys.argv[1])
    sync.fetch(repo, "origin", progress=die)
    """
)

_KILL_DURING_PUSH = textwrap.dedent(
    """
    import os, signal, sys
    from contextfs.client import Client

    rows = [tuple(row) for row in __import__("json").loads(sys.stdin.read())]
    client = Client(sys.argv[1])
    client.upload([(i, k, bytes.fromhex(d)) for i, k, d in rows])
    os.kill(os.getpid(), signal.SIGKILL)  # uploaded, never asked for UPDATE_REFS
    """
)


_KILL_DURING_CLONE = textwrap.dedent(
    """
    import os, signal, sys
    from contextfs.remote import sync

    def die(count):
        os.kill(os.getpid(), signal.SIGKILL)  # part way through the clone's fetch

    sync.clone(sys.argv[1], sys.argv[2], progress=die)
    """
)


def _python(script: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def test_a_clone_killed_half_way_does_not_block_the_next_one(
    served: tuple[Repository, str], tmp_path: Path
) -> None:
    server, url = served
    grow(server, 400, tag="bulk ", per_commit=5)
    target = tmp_path / "agent"
    done = _python(_KILL_DURING_CLONE, url, str(target))
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert not (target / ".contextfs").exists()  # nothing that looks like a repository
    with sync.clone(url, target) as agent:  # issue 19, hole 9: this was refused
        assert history(agent) == history(server)
        assert agent.verify().ok
    assert [p.name for p in target.iterdir()] == [".contextfs"]  # the leftovers are gone


def test_a_fetch_killed_half_way_leaves_the_store_as_it_was(
    served: tuple[Repository, str], tmp_path: Path
) -> None:
    server, url = served
    with sync.clone(url, tmp_path / "agent") as agent:
        before = state(agent)
    grow(server, 400, tag="bulk ", per_commit=5)  # well over one 1,000-object batch
    done = _python(_KILL_DURING_FETCH, str(tmp_path / "agent"))
    assert done.returncode == -signal.SIGKILL, done.stderr
    with Repository.open(tmp_path / "agent") as agent:
        assert state(agent) == before
        assert agent.verify().ok
        sync.fetch(agent, "origin")  # and it simply works the next time
        assert history(agent, "origin/main") == history(server)


def test_a_push_killed_half_way_leaves_the_server_as_it_was(
    served: tuple[Repository, str], tmp_path: Path
) -> None:
    server, url = served
    with sync.clone(url, tmp_path / "agent") as agent:
        grow(agent, 3, tag="never pushed ")
        rows = [
            (oid.hex(), kind, data.hex())
            for oid, kind, data in agent.store.iter_objects()
            if kind in ("atom", "tree", "commit")
        ]
    before = state(server)
    done = _python(_KILL_DURING_PUSH, url, stdin=json.dumps(rows))
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert state(server) == before
    assert server.verify().ok
    with Client(url) as client:  # the server carries on
        assert client.refs()["refs/heads/main"] == server.head()


def test_a_server_without_packs_is_named_as_too_old(
    served: tuple[Repository, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contextfs.server import serve

    _, url = served
    monkeypatch.setattr(serve, "FEATURES", ())
    with pytest.raises(InvalidInputError, match="too old to send or take packs"):
        sync.clone(url, tmp_path / "agent")
    assert not (tmp_path / "agent").exists()  # a failed clone leaves nothing behind
