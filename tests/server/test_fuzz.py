"""Hostile input at a live server: it answers with ERROR frames, stays up and stays small."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import threading
import time
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contextfs import Repository
from contextfs.client import Client
from contextfs.server import Limits, Server
from contextfs.wire.frames import HEADER, MAGIC, encode_frame
from contextfs.wire.messages import Hello, MessageType, encode_payload

HELLO = encode_frame(MessageType.HELLO, 0, encode_payload(Hello(versions=[1])))
TYPES = [int(t) for t in MessageType] + [0x00, 0x42, 0x7F, 0xFE]

json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def hostile(draw: st.DrawFn) -> bytes:
    """A byte string a broken or malicious client might send after (or instead of) HELLO."""
    kind = draw(st.sampled_from(["random", "frames", "truncated", "oversized", "header"]))
    if kind == "random":
        return draw(st.binary(max_size=300))
    if kind == "header":
        return HEADER.pack(
            draw(st.sampled_from([MAGIC, b"XX"])),
            draw(st.integers(0, 3)),
            draw(st.sampled_from(TYPES)),
            draw(st.integers(0, 255)),
            draw(st.integers(0, 1)),
            draw(st.integers(0, 2**32 - 1)),
            draw(st.integers(0, 2**32 - 1)),
        )
    frames = []
    for _ in range(draw(st.integers(1, 5))):
        payload = (
            msgspec.msgpack.encode(draw(json_like))
            if draw(st.booleans())
            else draw(st.binary(max_size=60))
        )
        frames.append(encode_frame(draw(st.sampled_from(TYPES)), draw(st.integers(0, 6)), payload))
    data = (HELLO if draw(st.booleans()) else b"") + b"".join(frames)
    if kind == "truncated":
        data = data[: draw(st.integers(0, len(data)))]
    if kind == "oversized":
        data += HEADER.pack(MAGIC, 1, MessageType.QUERY, 0, 0, 1, 1 << 30) + b"\x00" * 100
    return data


class Running:
    """A server on its own event loop thread."""

    def __init__(
        self,
        repo: Repository,
        *,
        token: str | None = None,
        limits: Limits | None = None,
        **options: Any,
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = Server(
            repo, token=token, limits=limits or Limits(idle_timeout=2.0), **options
        )
        self.loop.run_until_complete(self.server.start())
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.aclose(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def send(port: int, data: bytes) -> None:
    async def go() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        with contextlib.suppress(ConnectionError):
            writer.write(data)
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader.read(65536), 0.2)
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()

    asyncio.run(go())


def test_hostile_frames_never_take_the_server_down(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path)
    for i in range(30):
        repo.add(f"memory {i} about python and deployments", "Fact", relevance=i / 30)
    repo.commit("memories")
    running = Running(repo)
    url = f"ctx://127.0.0.1:{running.server.port}"
    try:
        with Client(url) as client:
            expected = client.query("python", limit=5)

        @settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
        @given(data=hostile())
        def attack(data: bytes) -> None:
            send(running.server.port, data)

        attack()  # a warm-up round: first allocations are not growth
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        attack()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert rss_after - rss_before < 50 * 1024  # KiB: no growth without bound
        deadline = time.monotonic() + 5
        while running.server.connections and time.monotonic() < deadline:
            time.sleep(0.05)
        assert running.server.connections == 0  # every hostile connection was closed
        with Client(url) as client:
            client.ping()
            assert client.query("python", limit=5) == expected
    finally:
        running.stop()
