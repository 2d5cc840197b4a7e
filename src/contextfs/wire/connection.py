"""The connection state machine, sans IO: bytes in, events out; messages in, bytes out.

In the manner of h11: a :class:`Connection` never touches a socket. The
transport feeds it what it reads (:meth:`Connection.receive_data`), takes
events (:meth:`Connection.next_event`), hands it messages to send
(:meth:`Connection.send`) and writes what :meth:`Connection.data_to_send`
returns. The connection enforces the protocol for its role:

* the client's first frame is HELLO on stream 0; the server answers WELCOME
  (or ERROR and closes); nothing else is accepted before that;
* each request opens a new stream with a higher id than any before, at most
  ``max_streams`` open at once (a request over the limit is refused with
  ERROR TOO_MANY_STREAMS on its stream, and the connection goes on);
* the server's data messages (STREAM_CHUNK, OBJECTS, OPLOG_EVENT) spend the
  stream's credit, in payload bytes: ``window`` to start with, more with each
  WINDOW the client sends. The server's side refuses to send past its credit
  (:class:`FlowControlBlockedError`: wait for a WINDOW); the client's side treats a
  server that overruns as broken;
* a malformed payload fails its stream only (ERROR INVALID on it); a header
  that breaks the rules, a frame over the size limit, or anything wrong on
  stream 0 is fatal: ERROR on stream 0, then the connection is closed.

Problems found in the peer's bytes become :class:`Failed` events, with the
ERROR frame already queued for the peer.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from .errors import ErrorCode, FatalProtocolError, ProtocolError
from .frames import DEFAULT_MAX_FRAME, LIMIT_MAX_FRAME, MAX_STREAM_ID, FrameReader, encode_frame
from .messages import (
    ANSWERS,
    DATA,
    REQUESTS,
    Error,
    Hello,
    Message,
    MessageType,
    Welcome,
    Window,
    decode_payload,
    encode_payload,
)

PROTOCOL_VERSION = 1
DEFAULT_WINDOW = 1 << 20
DEFAULT_MAX_STREAMS = 64
MAX_CREDIT = 2**31 - 1


class Role(Enum):
    """Which end of the connection this is."""

    CLIENT = "client"
    SERVER = "server"


class State(Enum):
    """Where the connection is."""

    HANDSHAKE = "handshake"
    READY = "ready"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Received:
    """A message arrived on ``stream``; ``end`` when it is the peer's last there."""

    stream: int
    message: Message
    end: bool
    size: int = 0  #: payload bytes (what a data message spent of the credit)


@dataclass(frozen=True, slots=True)
class Failed:
    """The peer's bytes broke the protocol; the ERROR for it is already queued.

    ``stream`` 0 means the whole connection failed (and is now closed).
    """

    stream: int
    code: ErrorCode
    message: str


@dataclass(frozen=True, slots=True)
class CreditGranted:
    """The client granted more credit on ``stream``: a blocked sender may go on."""

    stream: int
    credit: int


Event = Received | Failed | CreditGranted


class FlowControlBlockedError(ProtocolError):
    """The stream has too little credit for this data message: wait for a WINDOW."""


@dataclass
class _Stream:
    credit: int
    closed_by_us: bool = False
    closed_by_peer: bool = False
    received: int = 0
    extra: dict[str, object] = field(default_factory=dict)


class Connection:
    """One end of a protocol v1 connection (see the module docstring)."""

    def __init__(
        self,
        role: Role,
        *,
        max_frame: int = DEFAULT_MAX_FRAME,
        window: int = DEFAULT_WINDOW,
        max_streams: int = DEFAULT_MAX_STREAMS,
    ) -> None:
        if not 1024 <= max_frame <= LIMIT_MAX_FRAME:
            raise ValueError(f"max_frame must be from 1024 to {LIMIT_MAX_FRAME}")
        self.role = role
        self.state = State.HANDSHAKE
        self.max_frame = max_frame
        # A data message must always fit a full window, or it could never be sent.
        self.window = max(window, max_frame)
        self.max_streams = max_streams
        self.streams: dict[int, _Stream] = {}
        self._reader = FrameReader(max_frame)
        self._events: deque[Event] = deque()
        self._outbox = bytearray()
        self._last_stream = 0
        self._hello_seen = False

    @property
    def closed(self) -> bool:
        """True once either side ended the connection (or it failed)."""
        return self.state is State.CLOSED

    # -- output -----------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Take the bytes queued for the peer (frames sent, errors answered)."""
        data = bytes(self._outbox)
        self._outbox.clear()
        return data

    def next_stream_id(self) -> int:
        """The id the client's next request should use."""
        return self._last_stream + 1

    def send(self, stream: int, message: Message, *, end: bool = False) -> None:
        """Queue ``message`` on ``stream`` (``end``: our last frame there).

        Raises:
            ProtocolError: this role may not send that now (a bug in the caller).
            FlowControlBlockedError: a data message over the stream's credit.
        """
        if self.state is State.CLOSED:
            raise ProtocolError(ErrorCode.PROTOCOL, "the connection is closed")
        kind = message.TYPE
        payload = encode_payload(message)
        if len(payload) > self.max_frame:
            raise ProtocolError(ErrorCode.TOO_LARGE, f"{kind.name} payload is over the frame limit")
        if self.role is Role.CLIENT:
            self._client_sends(stream, message)
        else:
            self._server_sends(stream, message, len(payload))
        if (end or kind is MessageType.ERROR) and stream in self.streams:
            state = self.streams[stream]
            state.closed_by_us = True
            if state.closed_by_peer or kind is MessageType.ERROR:
                self._forget(stream)
        self._outbox += encode_frame(kind, stream, payload, end=end)
        if kind is MessageType.ERROR and stream == 0:
            self.state = State.CLOSED

    def _client_sends(self, stream: int, message: Message) -> None:
        kind = message.TYPE
        if kind is MessageType.HELLO:
            if stream != 0 or self._hello_seen:
                raise ProtocolError(ErrorCode.PROTOCOL, "HELLO goes once, on stream 0")
            self._hello_seen = True
            return
        if not self._hello_seen:
            raise ProtocolError(ErrorCode.PROTOCOL, "send HELLO first")
        if kind in REQUESTS:
            if stream <= self._last_stream or stream > MAX_STREAM_ID:
                raise ProtocolError(ErrorCode.PROTOCOL, f"stream {stream} is not a new stream id")
            self._last_stream = stream
            self.streams[stream] = _Stream(credit=0)
        elif kind in (MessageType.WINDOW, MessageType.CANCEL):
            if stream not in self.streams:
                raise ProtocolError(ErrorCode.PROTOCOL, f"stream {stream} is not open")
            if isinstance(message, Window):
                self.streams[stream].credit += message.credit  # granted beyond the window
        elif kind is MessageType.PING:
            if stream != 0:
                raise ProtocolError(ErrorCode.PROTOCOL, "PING goes on stream 0")
        else:
            raise ProtocolError(ErrorCode.PROTOCOL, f"a client does not send {kind.name}")

    def _server_sends(self, stream: int, message: Message, size: int) -> None:
        kind = message.TYPE
        if kind is MessageType.WELCOME:
            if stream != 0 or self.state is not State.HANDSHAKE or not self._hello_seen:
                raise ProtocolError(ErrorCode.PROTOCOL, "WELCOME answers HELLO, once")
            assert isinstance(message, Welcome)
            if message.window < message.max_frame:
                raise ProtocolError(ErrorCode.PROTOCOL, "the window must hold a whole frame")
            self.state = State.READY
            self.max_frame = message.max_frame
            self.window = message.window
            self.max_streams = message.max_streams
            return
        if kind is MessageType.PONG or (kind is MessageType.ERROR and stream == 0):
            return
        if kind not in ANSWERS:
            raise ProtocolError(ErrorCode.PROTOCOL, f"a server does not send {kind.name}")
        state = self.streams.get(stream)
        if state is None or state.closed_by_us:
            raise ProtocolError(ErrorCode.PROTOCOL, f"stream {stream} is not open")
        if kind in DATA:
            if size > state.credit:
                raise FlowControlBlockedError(
                    ErrorCode.FLOW_CONTROL,
                    f"stream {stream} has {state.credit} bytes of credit, {size} needed",
                )
            state.credit -= size

    # -- input ------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the peer (``b""`` when it closed the connection)."""
        if self.state is State.CLOSED:
            return
        if not data:
            self.state = State.CLOSED
            return
        self._reader.receive(data)
        try:
            while not self.closed:
                frame = self._reader.next_frame()
                if frame is None:
                    break
                self._handle(frame.type, frame.stream, frame.payload, frame.end)
        except FatalProtocolError as exc:
            self._fail_connection(exc.code, exc.message)

    def next_event(self) -> Event | None:
        """The next event, or None until more bytes arrive."""
        return self._events.popleft() if self._events else None

    def _handle(self, type_code: int, stream: int, payload: bytes, end: bool) -> None:
        try:
            message = decode_payload(type_code, payload)
        except ProtocolError as exc:
            if stream == 0 or self.state is State.HANDSHAKE:
                raise FatalProtocolError(exc.code, exc.message) from None
            if self.role is Role.SERVER:
                if stream in self.streams:  # a bad WINDOW or CANCEL fails its stream
                    self._fail_stream(stream, exc.code, exc.message)
                elif stream > self._last_stream:  # a bad request: its id is spent
                    self._last_stream = stream
                    self._fail_stream(stream, exc.code, exc.message)
                else:
                    raise FatalProtocolError(
                        ErrorCode.PROTOCOL, f"stream id {stream} was used already"
                    ) from None
            else:
                raise FatalProtocolError(exc.code, f"the server sent {exc.message}") from None
            return
        if self.role is Role.SERVER:
            self._server_receives(stream, message, end)
        else:
            self._client_receives(stream, message, end, len(payload))

    def _server_receives(self, stream: int, message: Message, end: bool) -> None:
        kind = message.TYPE
        if self.state is State.HANDSHAKE:
            if kind is not MessageType.HELLO or stream != 0 or self._hello_seen:
                raise FatalProtocolError(ErrorCode.PROTOCOL, "the first frame must be HELLO")
            assert isinstance(message, Hello)
            if PROTOCOL_VERSION not in message.versions:
                raise FatalProtocolError(
                    ErrorCode.UNSUPPORTED_VERSION,
                    f"this server speaks protocol version {PROTOCOL_VERSION} only",
                )
            self._hello_seen = True
            self._events.append(Received(0, message, end))
            return
        if stream == 0:
            if kind is MessageType.PING:
                self._events.append(Received(0, message, end))
                return
            if kind is MessageType.ERROR:  # the client gave up: close without answering
                self.state = State.CLOSED
                self._events.append(Received(0, message, end))
                return
            raise FatalProtocolError(ErrorCode.PROTOCOL, f"{kind.name} does not go on stream 0")
        if kind in REQUESTS:
            if stream <= self._last_stream:
                raise FatalProtocolError(ErrorCode.PROTOCOL, f"stream id {stream} was used already")
            self._last_stream = stream
            if len(self.streams) >= self.max_streams:
                self._queue_error(stream, ErrorCode.TOO_MANY_STREAMS, "too many open streams")
                self._events.append(Failed(stream, ErrorCode.TOO_MANY_STREAMS, "refused"))
                return
            self.streams[stream] = _Stream(credit=self.window, closed_by_peer=True)
            self._events.append(Received(stream, message, end))
        elif kind is MessageType.WINDOW:
            state = self.streams.get(stream)
            credit = getattr(message, "credit", 0)
            if not isinstance(credit, int) or credit <= 0:
                if state is not None:
                    self._fail_stream(stream, ErrorCode.INVALID, "WINDOW credit must be positive")
                return
            if state is not None:
                state.credit = min(MAX_CREDIT, state.credit + credit)
                self._events.append(CreditGranted(stream, state.credit))
        elif kind is MessageType.CANCEL:
            if stream in self.streams:
                self._events.append(Received(stream, message, end))
        elif kind is MessageType.ERROR:
            if stream in self.streams:
                self._forget(stream)
                self._events.append(Received(stream, message, end))
        else:
            raise FatalProtocolError(ErrorCode.PROTOCOL, f"a client does not send {kind.name}")

    def _client_receives(self, stream: int, message: Message, end: bool, size: int) -> None:
        kind = message.TYPE
        if stream == 0:
            if kind is MessageType.WELCOME and self.state is State.HANDSHAKE:
                assert isinstance(message, Welcome)
                self.state = State.READY
                if message.max_frame < 1024 or message.window < message.max_frame:
                    raise FatalProtocolError(ErrorCode.PROTOCOL, "WELCOME sets impossible limits")
                self.max_frame = message.max_frame
                self._reader.max_frame = message.max_frame
                self.window = message.window
                self.max_streams = message.max_streams
            elif kind is MessageType.ERROR:
                self.state = State.CLOSED
            elif kind is not MessageType.PONG:
                raise FatalProtocolError(ErrorCode.PROTOCOL, f"{kind.name} does not go on stream 0")
            self._events.append(Received(0, message, end))
            return
        if kind not in ANSWERS:
            raise FatalProtocolError(ErrorCode.PROTOCOL, f"a server does not send {kind.name}")
        state = self.streams.get(stream)
        if state is None:
            return  # an answer racing our CANCEL or a stream we gave up: drop it
        if kind in DATA:
            state.received += size
            if state.received > self.window + state.credit:
                raise FatalProtocolError(ErrorCode.FLOW_CONTROL, "the server sent past its credit")
        self._events.append(Received(stream, message, end, size))
        if end or kind is MessageType.ERROR:
            state.closed_by_peer = True
            self._forget(stream)

    # -- failures ---------------------------------------------------------------------

    def _queue_error(self, stream: int, code: ErrorCode, message: str) -> None:
        payload = encode_payload(Error(code=int(code), message=message[:500]))
        self._outbox += encode_frame(MessageType.ERROR, stream, payload)

    def _fail_stream(self, stream: int, code: ErrorCode, message: str) -> None:
        if self.role is Role.SERVER:
            self._queue_error(stream, code, message)
        self._forget(stream)
        self._events.append(Failed(stream, code, message))

    def _fail_connection(self, code: ErrorCode, message: str) -> None:
        self._queue_error(0, code, message)
        self.state = State.CLOSED
        self._events.append(Failed(0, code, message))

    def _forget(self, stream: int) -> None:
        self.streams.pop(stream, None)


__all__ = [
    "DEFAULT_MAX_STREAMS",
    "DEFAULT_WINDOW",
    "PROTOCOL_VERSION",
    "Connection",
    "CreditGranted",
    "Event",
    "Failed",
    "FlowControlBlockedError",
    "Received",
    "Role",
    "State",
]
