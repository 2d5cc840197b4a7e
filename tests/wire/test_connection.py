"""The sans-IO core: frames and the connection state machine, bytes in and events out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contextfs.wire import Connection, CreditGranted, ErrorCode, Failed, Received, Role
from contextfs.wire.connection import FlowControlBlockedError, State
from contextfs.wire.errors import FatalProtocolError, ProtocolError
from contextfs.wire.frames import HEADER, MAGIC, FrameReader, encode_frame
from contextfs.wire.messages import (
    Cancel,
    Error,
    Expand,
    Hello,
    MessageType,
    Ping,
    Pong,
    Query,
    QueryResponse,
    StreamChunk,
    StreamEnd,
    Welcome,
    Window,
    decode_payload,
    encode_payload,
)

WELCOME = Welcome(version=1, server="t", max_frame=1024, window=1024, max_streams=2)


def pair() -> tuple[Connection, Connection]:
    """A client and a server that have shaken hands."""
    client = Connection(Role.CLIENT)
    server = Connection(Role.SERVER, window=1024, max_frame=1024, max_streams=2)
    client.send(0, Hello(versions=[1]))
    server.receive_data(client.data_to_send())
    event = server.next_event()
    assert isinstance(event, Received)
    assert isinstance(event.message, Hello)
    server.send(0, WELCOME)
    client.receive_data(server.data_to_send())
    assert isinstance(client.next_event(), Received)
    assert client.state is State.READY
    assert server.state is State.READY
    return client, server


def events(conn: Connection) -> list[object]:
    found = []
    while (event := conn.next_event()) is not None:
        found.append(event)
    return found


def test_frames_round_trip_byte_by_byte() -> None:
    frame = encode_frame(MessageType.PING, 0, encode_payload(Ping(nonce=7)), end=True)
    assert frame[:2] == MAGIC
    assert len(frame) == HEADER.size + len(encode_payload(Ping(nonce=7)))
    reader = FrameReader()
    for byte in frame[:-1]:
        reader.receive(bytes([byte]))
        assert reader.next_frame() is None
    reader.receive(frame[-1:])
    parsed = reader.next_frame()
    assert parsed is not None
    assert (parsed.type, parsed.stream, parsed.end) == (MessageType.PING, 0, True)
    assert decode_payload(parsed.type, parsed.payload) == Ping(nonce=7)


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (b"XX\x01\x0b\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", ErrorCode.PROTOCOL),
        (b"CX\x02\x0b\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", ErrorCode.UNSUPPORTED_VERSION),
        (b"CX\x01\x0b\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00", ErrorCode.PROTOCOL),
        (b"CX\x01\x0b\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00", ErrorCode.PROTOCOL),
        (b"CX\x01\x0b\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff", ErrorCode.TOO_LARGE),
    ],
)
def test_untrustworthy_headers_are_fatal(header: bytes, code: ErrorCode) -> None:
    reader = FrameReader()
    reader.receive(header)
    with pytest.raises(FatalProtocolError) as caught:
        reader.next_frame()
    assert caught.value.code is code


def test_a_request_and_its_answer() -> None:
    client, server = pair()
    stream = client.next_stream_id()
    client.send(stream, Query(query="python", limit=3), end=True)
    server.receive_data(client.data_to_send())
    (event,) = events(server)
    assert isinstance(event, Received)
    assert event.message == Query(query="python", limit=3)
    server.send(stream, QueryResponse(hits=[]), end=True)
    client.receive_data(server.data_to_send())
    (answer,) = events(client)
    assert isinstance(answer, Received)
    assert answer.end
    assert stream not in client.streams
    assert stream not in server.streams


def test_data_messages_spend_credit_and_window_restores_it() -> None:
    client, server = pair()
    client.send(1, Expand(), end=True)
    server.receive_data(client.data_to_send())
    events(server)
    chunk = StreamChunk(chunk_id=0, atoms=[], is_final=False, cumulative_tokens=0, progress=0.0)
    size = len(encode_payload(chunk))
    fits = 1024 // size
    for _ in range(fits):
        server.send(1, chunk)
    with pytest.raises(FlowControlBlockedError):
        server.send(1, chunk)
    client.send(1, Window(credit=size))
    server.receive_data(client.data_to_send())
    (granted,) = events(server)
    assert isinstance(granted, CreditGranted)
    server.send(1, chunk)  # fits again
    server.send(1, StreamEnd(), end=True)  # not data: never blocked
    client.receive_data(server.data_to_send())
    assert all(isinstance(e, Received) for e in events(client))


def test_a_server_that_overruns_the_credit_is_cut_off() -> None:
    client, _ = pair()
    client.send(1, Expand(), end=True)
    chunk = StreamChunk(chunk_id=0, atoms=[], is_final=False, cumulative_tokens=0, progress=0.0)
    frames = b"".join(
        encode_frame(MessageType.STREAM_CHUNK, 1, encode_payload(chunk)) for _ in range(200)
    )
    client.receive_data(frames)
    failures = [e for e in events(client) if isinstance(e, Failed)]
    assert failures[-1].code is ErrorCode.FLOW_CONTROL
    assert client.closed


def test_a_bad_payload_fails_only_its_stream() -> None:
    client, server = pair()
    client.send(1, Query(query="python"), end=True)
    client.data_to_send()  # replaced on the way by a payload of the wrong shape:
    server.receive_data(encode_frame(MessageType.QUERY, 1, b"\x81\xa5limit\xa3abc", end=True))
    (failed,) = events(server)
    assert isinstance(failed, Failed)
    assert (failed.stream, failed.code) == (1, ErrorCode.INVALID)
    client.receive_data(server.data_to_send())
    (error,) = events(client)
    assert isinstance(error, Received)
    assert isinstance(error.message, Error)
    client.send(2, Query(query="ok"), end=True)  # the connection goes on
    server.receive_data(client.data_to_send())
    assert isinstance(events(server)[0], Received)


def test_unknown_types_and_stream_limits_are_stream_errors() -> None:
    _, server = pair()
    server.receive_data(encode_frame(0x55, 1, b"\x80", end=True))
    assert events(server)[0] == Failed(1, ErrorCode.UNKNOWN_TYPE, "unknown message type 0x55")
    for stream in (2, 3):
        server.receive_data(
            encode_frame(MessageType.QUERY, stream, encode_payload(Query(query="a")))
        )
    assert all(isinstance(e, Received) for e in events(server))
    server.receive_data(encode_frame(MessageType.QUERY, 4, encode_payload(Query(query="a"))))
    assert events(server) == [Failed(4, ErrorCode.TOO_MANY_STREAMS, "refused")]
    assert not server.closed


@pytest.mark.parametrize(
    "frame",
    [
        encode_frame(MessageType.QUERY, 0, encode_payload(Query(query="a"))),  # not on stream 0
        encode_frame(MessageType.QUERY_RESPONSE, 5, encode_payload(QueryResponse(hits=[]))),
        encode_frame(MessageType.HELLO, 0, encode_payload(Hello(versions=[1]))),  # twice
    ],
)
def test_protocol_breaches_close_the_connection_with_an_error(frame: bytes) -> None:
    _, server = pair()
    server.receive_data(frame)
    (failed,) = events(server)
    assert isinstance(failed, Failed)
    assert failed.stream == 0
    assert server.closed
    reader = FrameReader()
    reader.receive(server.data_to_send())
    sent = reader.next_frame()
    assert sent is not None
    assert (sent.type, sent.stream) == (MessageType.ERROR, 0)


def test_stream_ids_must_grow() -> None:
    client, server = pair()
    client.send(3, Query(query="a"), end=True)
    server.receive_data(client.data_to_send())
    events(server)
    server.receive_data(encode_frame(MessageType.QUERY, 2, encode_payload(Query(query="a"))))
    assert server.closed
    with pytest.raises(ProtocolError):
        client.send(3, Query(query="again"), end=True)


def test_the_handshake_comes_first_and_versions_must_meet() -> None:
    server = Connection(Role.SERVER)
    server.receive_data(encode_frame(MessageType.PING, 0, encode_payload(Ping())))
    assert server.closed
    other = Connection(Role.SERVER)
    other.receive_data(encode_frame(MessageType.HELLO, 0, encode_payload(Hello(versions=[2, 3]))))
    assert events(other)[0] == Failed(
        0, ErrorCode.UNSUPPORTED_VERSION, "this server speaks protocol version 1 only"
    )
    client = Connection(Role.CLIENT)
    with pytest.raises(ProtocolError):
        client.send(1, Query(query="a"))


def test_cancel_ping_and_closing() -> None:
    client, server = pair()
    client.send(1, Query(query="a"), end=True)
    client.send(1, Cancel())
    client.send(0, Ping(nonce=4))
    server.receive_data(client.data_to_send())
    kinds = [type(e.message).__name__ for e in events(server) if isinstance(e, Received)]
    assert kinds == ["Query", "Cancel", "Ping"]
    server.send(0, Pong(nonce=4))
    client.receive_data(server.data_to_send())
    assert isinstance(events(client)[0], Received)
    server.receive_data(b"")
    assert server.closed


@given(st.binary(max_size=200))
def test_random_bytes_never_raise_out_of_the_connection(data: bytes) -> None:
    _, server = pair()
    server.receive_data(data)
    events(server)
    server.data_to_send()  # whatever it decided, it says it in frames
