"""Connections that never finish their handshake cannot lock out a client with the token."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from contextfs import Repository
from contextfs.client import Client
from contextfs.server import Limits
from contextfs.wire.frames import HEADER, encode_frame
from contextfs.wire.messages import Hello, MessageType, encode_payload

from .test_fuzz import Running

TOKEN = "s3cret-token"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Running]:
    repo = Repository.init(tmp_path / "r", embedder="none")
    repo.add("a memory worth reaching", "Fact")
    repo.commit("one")
    limits = Limits(max_connections=8, max_pending=4, handshake_timeout=1.0)
    running = Running(repo, token=TOKEN, limits=limits)
    try:
        yield running
    finally:
        running.stop()
        repo.close()


#: A whole, valid HELLO frame: sent a byte at a time, it is a handshake that never ends.
HELLO = encode_frame(
    MessageType.HELLO, 0, encode_payload(Hello(versions=[1], token=TOKEN, client="drip"))
)


def half_open(port: int) -> socket.socket:
    """A connection that sends the first byte of a HELLO and never the rest."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(HELLO[:1])
    return sock


def closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass
        return True
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def test_a_client_with_the_token_is_served_while_many_sockets_stall(served: Running) -> None:
    port = served.server.port
    stalled = [half_open(port) for _ in range(20)]  # more than every limit
    try:
        with Client(f"ctx://127.0.0.1:{port}", token=TOKEN) as client:
            client.ping()
            assert client.refs()["HEAD"] == "ref: refs/heads/main"
        assert served.server.connections <= 8
    finally:
        for sock in stalled:
            sock.close()


def test_a_slow_drip_does_not_outlive_the_handshake_deadline(served: Running) -> None:
    sock = half_open(served.server.port)
    start = time.monotonic()
    try:
        sock.settimeout(0.3)
        for byte in HELLO[1:]:  # a byte every 0.3 s: whole only after seconds
            if time.monotonic() - start > 3.0:
                break
            try:
                sock.sendall(bytes([byte]))
                if not sock.recv(4096):
                    break
            except TimeoutError:
                continue
            except ConnectionError:
                break
        else:
            pytest.fail("the connection was still open after 3 s")
        assert time.monotonic() - start < 2.5  # closed at the 1 s deadline, not later
    finally:
        sock.close()


def test_a_flood_from_one_address_evicts_only_its_own(tmp_path: Path) -> None:
    """A slow client on another address keeps its place while one address floods."""
    repo = Repository.init(tmp_path / "r", embedder="none")
    limits = Limits(max_connections=32, max_pending=8, max_pending_per_address=3)
    running = Running(repo, token=TOKEN, limits=limits)
    port = running.server.port
    slow = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0))
    flood: list[socket.socket] = []
    try:
        slow.sendall(HELLO[:1])  # the oldest connection still shaking hands
        flood = [half_open(port) for _ in range(20)]
        time.sleep(0.3)
        evicted = sum(closed_by_server(sock, 0.05) for sock in flood)
        assert evicted >= 20 - limits.max_pending_per_address
        slow.sendall(HELLO[1:])  # and it finishes: still served
        slow.settimeout(5)
        answer = slow.recv(4096)
        header = HEADER.unpack(answer[: HEADER.size])
        assert header[2] == MessageType.WELCOME
    finally:
        for sock in [slow, *flood]:
            sock.close()
        running.stop()
        repo.close()
