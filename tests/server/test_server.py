"""A live server on 127.0.0.1 and real clients: every request, limits, flow control, shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from contextfs import MemoryAtom, Repository
from contextfs.client import AsyncClient, Client
from contextfs.errors import InvalidInputError
from contextfs.model.types import TypeSignature
from contextfs.oplog import add_atom_op, make_op_entry
from contextfs.server import Limits, Server
from contextfs.session import apply_delta
from contextfs.wire import RemoteError
from contextfs.wire.frames import encode_frame
from contextfs.wire.messages import Hello, MessageType, encode_payload

FACT = TypeSignature("Fact")


def fill(repo: Repository, count: int = 60) -> None:
    for i in range(count):
        repo.add(
            f"memory {i}: deployments happen on Fridays, python {i}", "Fact", relevance=i / count
        )
    repo.commit("memories")


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    repo = Repository.init(tmp_path / "served")
    fill(repo)
    return repo


async def started(repo: Repository, **kw: object) -> Server:
    server = Server(repo, **kw)  # type: ignore[arg-type]
    await server.start()
    return server


async def connect(server: Server, token: str | None = None) -> AsyncClient:
    return await AsyncClient.connect(f"ctx://127.0.0.1:{server.port}", token=token)


def test_every_request_answers_as_the_repository_does(repo: Repository, tmp_path: Path) -> None:
    async def main() -> None:
        server = await started(repo)
        client = await connect(server)
        try:
            await client.ping()
            answer = await client.expand(budget=60, query="python")
            local = repo.context(budget=60, query="python")
            assert answer.text == local.text
            assert answer.total_tokens == local.tokens
            hits = await client.query("python", limit=3)
            assert [h.atom.content for h in hits] == [
                h.atom.content for h in repo.search("python", limit=3)
            ]
            chunks = [chunk async for chunk in client.stream(chunk_size=7)]
            assert [a.content for c in chunks for a in c.atoms] == [
                a.content for c in repo.stream(chunk_size=7) for a in c.atoms
            ]
            first = await client.session(budget=300)
            assert apply_delta({}, first.delta) == repo.session_payload(budget=300)
            commit = await client.push([MemoryAtom("pushed over the wire", FACT)], message="push")
            assert repo.head() == commit
            second = await client.session(budget=300, hashes=first.hashes)
            rebuilt = apply_delta(apply_delta({}, first.delta), second.delta)
            assert rebuilt == repo.session_payload(budget=300)
            log = await client.log(limit=5)
            assert [c.id for c in log] == [i.id for i in repo.log(limit=5)]
            stored = await client.oplog_append(
                "live", [make_op_entry("agent", "context", add_atom_op("live note"), 1)]
            )
            assert stored[0]["lamport_ts"] == 1
            assert repo.oplog("live").read_all()[0]["op_id"] == stored[0]["op_id"]
            copy = Repository.init(tmp_path / "copy")
            pulled = await client.pull(copy, branch="main")
            assert pulled.head == repo.head()
            assert copy.verify().ok
            assert copy.count("main") == repo.count()
            again = await client.pull(copy, branch="main")
            assert again.received == 0  # only missing objects travel
            objects = await client.fetch([commit])
            assert objects[0][0] == commit
        finally:
            await client.aclose()
            await server.aclose()

    asyncio.run(main())


def test_errors_travel_with_codes_and_the_connection_goes_on(repo: Repository) -> None:
    async def main() -> None:
        server = await started(repo)
        client = await connect(server)
        try:
            with pytest.raises(RemoteError) as caught:
                await client.expand("no-such-branch")
            assert caught.value.code == 9
            assert "no-such-branch" in caught.value.message
            assert "Traceback" not in caught.value.message
            with pytest.raises(RemoteError) as invalid:
                await client.query("")
            assert invalid.value.code == 5
            with pytest.raises(RemoteError):
                await client.oplog_append("../escape", [])
            await client.ping()
        finally:
            await client.aclose()
            await server.aclose()

    asyncio.run(main())


def test_a_slow_reader_stalls_only_its_own_stream(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "big")
    repo.add_atoms(MemoryAtom(f"memory {i} " + "text " * 40, FACT) for i in range(3000))
    repo.commit("many")

    async def main() -> None:
        server = await started(repo, limits=Limits(window=16 * 1024, max_frame=16 * 1024))
        slow, fast = await connect(server), await connect(server)
        try:
            stream = slow.stream(chunk_size=20)
            first = await stream.__anext__()  # then read nothing
            assert first.chunk_id == 0
            await asyncio.sleep(0.5)
            (peer,) = [p for p in server._peers if p.tasks]
            (task,) = peer.tasks.values()
            assert not task.done()  # stalled: waiting for credit, not producing
            started_at = time.perf_counter()
            for _ in range(20):
                await fast.ping()
            assert await fast.query("memory", limit=1, retrieval="lexical")
            assert time.perf_counter() - started_at < 5
            count = 1 + sum([1 async for _ in stream])
            assert count == len(list(repo.stream(chunk_size=20)))
        finally:
            await slow.aclose()
            await fast.aclose()
            await server.aclose()

    asyncio.run(main())


def test_many_requests_in_flight_on_one_connection(repo: Repository) -> None:
    async def main() -> None:
        server = await started(repo)
        client = await connect(server)
        try:
            answers = await asyncio.gather(
                *(client.query(f"python {i}", limit=1) for i in range(30)),
                *(client.expand(budget=20 + i) for i in range(10)),
            )
            assert len(answers) == 40
        finally:
            await client.aclose()
            await server.aclose()

    asyncio.run(main())


def test_tokens_and_loopback(repo: Repository) -> None:
    with pytest.raises(InvalidInputError, match="token"):
        Server(repo, host="0.0.0.0")

    async def main() -> None:
        server = await started(repo, token="s3cret")
        try:
            with pytest.raises(RemoteError) as caught:
                await connect(server)
            assert caught.value.code == 3
            with pytest.raises(RemoteError):
                await connect(server, token="wrong")
            client = await connect(server, token="s3cret")
            await client.ping()
            await client.aclose()
        finally:
            await server.aclose()

    asyncio.run(main())


def test_connection_limit_and_idle_timeout(repo: Repository) -> None:
    async def main() -> None:
        server = await started(repo, limits=Limits(max_connections=1, idle_timeout=0.3))
        try:
            first = await connect(server)
            with pytest.raises(RemoteError) as busy:
                await connect(server)
            assert busy.value.code == 13
            await asyncio.sleep(0.8)
            assert server.connections == 0  # the idle one was closed
            await first.ping()  # and the client reconnects on its next call
            await first.aclose()
        finally:
            await server.aclose()

    asyncio.run(main())


def test_cancel_and_subscribe(repo: Repository) -> None:
    async def main() -> None:
        server = await started(repo)
        client = await connect(server)
        try:
            log = repo.oplog("s")
            log.append(make_op_entry("a", "context", add_atom_op("before"), 1))
            events = client.oplog_subscribe("s")
            first = await events.__anext__()
            assert first.op_count == 1
            await client.oplog_append("s", [make_op_entry("b", "context", add_atom_op("after"), 1)])
            second = await asyncio.wait_for(events.__anext__(), 5)
            assert second.op_count == 2
            assert second.ops[0]["actor_id"] == "b"
            log.append(make_op_entry("c", "context", add_atom_op("other process"), 9))
            third = await asyncio.wait_for(events.__anext__(), 5)  # found by polling
            assert third.ops[0]["actor_id"] == "c"
            await events.aclose()  # sends CANCEL
            await asyncio.sleep(0.1)
            assert not any(p.tasks for p in server._peers)
            await client.ping()
        finally:
            await client.aclose()
            await server.aclose()

    asyncio.run(main())


def test_a_sync_client() -> None:
    repo = Repository.memory()
    fill(repo, 10)

    async def serve(ready: asyncio.Event, stop: asyncio.Event, box: list[int]) -> None:
        server = await started(repo)
        box.append(server.port)
        ready.set()
        await stop.wait()
        await server.aclose()

    loop = asyncio.new_event_loop()
    ready, stop, box = asyncio.Event(), asyncio.Event(), []
    thread = threading.Thread(
        target=loop.run_until_complete, args=(serve(ready, stop, box),), daemon=True
    )
    thread.start()
    while not box:
        time.sleep(0.01)
    with Client(f"ctx://127.0.0.1:{box[0]}") as client:
        client.ping()
        assert client.query("python", limit=2)
        remote = [a.content for c in client.stream(chunk_size=3) for a in c.atoms]
        assert remote == [a.content for c in repo.stream(chunk_size=3) for a in c.atoms]
        assert client.log(limit=1)[0].id == repo.head()
    loop.call_soon_threadsafe(stop.set)
    thread.join(5)
    loop.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_contextfs_serve_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    folder = tmp_path / "repo"
    repo = Repository.init(folder)
    fill(repo, 20)
    repo.close()
    port = free_port()
    env = {**os.environ, "CONTEXTFS_DIR": str(folder / ".contextfs")}
    server = subprocess.Popen(
        [sys.executable, "-m", "contextfs.cli.main", "serve", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        assert "serving ctx://127.0.0.1" in server.stderr.readline()
        with Client(f"ctx://127.0.0.1:{port}") as client:
            assert client.query("python", limit=1)
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "contextfs.cli.main",
                    "search",
                    "python",
                    "--remote",
                    f"ctx://127.0.0.1:{port}",
                    "--json",
                    "-n",
                    "2",
                ],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            assert '"score"' in out.stdout
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=20) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        if server.stderr is not None:
            server.stderr.close()
    with Repository.open(folder) as reopened:
        assert reopened.verify().ok


async def _frames(server: Server, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(65536), 2)
    finally:
        writer.close()


def test_garbage_gets_an_error_frame_and_the_server_goes_on(repo: Repository) -> None:
    async def main() -> None:
        server = await started(repo)
        try:
            answer = await _frames(server, b"GET / HTTP/1.1\r\n\r\n")
            assert answer[:2] == b"CX"
            assert answer[3] == MessageType.ERROR
            hello = encode_frame(MessageType.HELLO, 0, encode_payload(Hello(versions=[1])))
            huge = encode_frame(MessageType.QUERY, 1, b"")[:-4] + (1 << 30).to_bytes(4, "big")
            answer = await _frames(server, hello + huge[:14])
            assert MessageType.ERROR in answer
            client = await connect(server)
            await client.ping()
            await client.aclose()
        finally:
            await server.aclose()

    asyncio.run(main())


def test_payloads_over_64_kib_both_ways(repo: Repository) -> None:
    big = "A long memory. " * 8000  # about 120 KB

    async def main() -> None:
        server = await started(repo)
        client = await connect(server)
        try:
            await client.push([MemoryAtom(big, FACT, relevance_score=1.0)], message="big")
            answer = await client.expand(budget=100_000)
            assert big in answer.text
            assert len(answer.text.encode()) > 64 * 1024
            chunks = [c async for c in client.stream(chunk_size=5, max_tokens_per_chunk=100_000)]
            assert chunks[0].atoms[0].content == big
        finally:
            await client.aclose()
            await server.aclose()

    asyncio.run(main())


def test_cancelling_mid_stream_stops_the_server_and_keeps_the_connection(
    tmp_path: Path,
) -> None:
    repo = Repository.init(tmp_path / "many")
    repo.add_atoms(MemoryAtom(f"memory {i} " + "text " * 30, FACT) for i in range(2000))
    repo.commit("many")

    async def main() -> None:
        server = await started(repo, limits=Limits(window=16 * 1024, max_frame=16 * 1024))
        client = await connect(server)
        try:
            seen = 0
            async for _chunk in client.stream(chunk_size=10):
                seen += 1
                if seen == 3:
                    break  # leaving the loop sends CANCEL
            await asyncio.sleep(0.2)
            assert not any(peer.tasks for peer in server._peers)  # the stream's task ended
            assert seen == 3
            await client.ping()
            assert await client.query("memory", limit=1)
        finally:
            await client.aclose()
            await server.aclose()

    asyncio.run(main())


def test_session_carries_turn_contexts_as_the_repository_builds_them(repo: Repository) -> None:
    async def main() -> None:
        server = await started(repo)
        client = await connect(server)
        try:
            first = await client.session(budget=300, query="deployments python", turn=True)
            assert (first.delta, first.hashes) == ({}, {})
            assert first.rebuild == "first"
            assert first.state is not None
            local = repo.turn_context("deployments python", budget=300)
            assert [b["text"] for b in first.blocks] == [b.text for b in local.blocks]
            assert [b["cacheable"] for b in first.blocks] == [True, False]
            assert first.tokens == {"prompt": local.tokens}
            assert first.cost["cache_write"] == local.cost.cache_write
            second = await client.session(budget=300, query="memory 7", previous=first.state)
            assert second.rebuild is None
            assert second.blocks[0]["text"].startswith(first.blocks[0]["text"])
            assert second.cost["cache_read"] == first.blocks[0]["tokens"]
            with pytest.raises(RemoteError) as refused:
                await client.session(budget=300, previous={"version": 9})
            assert refused.value.code == 5
            assert refused.value.message == (
                "previous must be the state a turn_context returned (version 1)"
            )
        finally:
            await client.aclose()
            await server.aclose()

    asyncio.run(main())
