"""Frames: the fixed 14-byte header and its payload, parsed strictly from a byte stream.

Layout (big-endian; ``docs/PROTOCOL.md`` section 2)::

    0  2  magic    b"CX"
    2  1  version  1
    3  1  type     message type (see messages.MessageType)
    4  1  flags    bit 0: END (the sender's last frame on this stream); others 0
    5  1  reserved 0
    6  4  stream   stream id (0: the connection itself)
   10  4  length   payload bytes that follow (at most the negotiated max frame)

A header that breaks any rule is fatal: the byte stream cannot be trusted
after it, so the connection is closed (with an ERROR frame first).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import ErrorCode, FatalProtocolError

MAGIC = b"CX"
VERSION = 1
HEADER = struct.Struct(">2sBBBBII")
HEADER_SIZE = HEADER.size
FLAG_END = 0x01
#: Largest payload either side sends unless both agree on another (HELLO / WELCOME).
DEFAULT_MAX_FRAME = 1 << 20
#: No negotiation may go above this.
LIMIT_MAX_FRAME = 16 << 20
MAX_STREAM_ID = 2**32 - 1


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame: who it is for (stream), what it is (type), flags and payload bytes."""

    type: int
    flags: int
    stream: int
    payload: bytes

    @property
    def end(self) -> bool:
        """True when this is the sender's last frame on its stream."""
        return bool(self.flags & FLAG_END)


def encode_frame(type_code: int, stream: int, payload: bytes, *, end: bool = False) -> bytes:
    """Return the bytes of one frame (header then payload)."""
    if not 0 <= stream <= MAX_STREAM_ID:
        raise ValueError(f"stream id out of range: {stream}")
    flags = FLAG_END if end else 0
    return HEADER.pack(MAGIC, VERSION, type_code, flags, 0, stream, len(payload)) + payload


class FrameReader:
    """Bytes in, frames out: buffers partial frames, never more than one frame's worth.

    Raises :class:`FatalProtocolError` on a header it cannot trust; the caller
    then closes the connection.
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()

    def receive(self, data: bytes) -> None:
        """Add bytes read from the peer."""
        self._buffer += data

    @property
    def buffered(self) -> int:
        """Bytes held that do not yet make a whole frame."""
        return len(self._buffer)

    def next_frame(self) -> Frame | None:
        """Return the next whole frame, or None until more bytes arrive."""
        if len(self._buffer) < HEADER_SIZE:
            if self._buffer and not MAGIC.startswith(bytes(self._buffer[:2])):
                raise FatalProtocolError(ErrorCode.PROTOCOL, "bad magic: not a ContextFS peer")
            return None
        magic, version, type_code, flags, reserved, stream, length = HEADER.unpack_from(
            self._buffer
        )
        if magic != MAGIC:
            raise FatalProtocolError(ErrorCode.PROTOCOL, "bad magic: not a ContextFS peer")
        if version != VERSION:
            raise FatalProtocolError(
                ErrorCode.UNSUPPORTED_VERSION, f"frame version {version} is not supported"
            )
        if flags & ~FLAG_END or reserved:
            raise FatalProtocolError(ErrorCode.PROTOCOL, "reserved header bits are set")
        if length > self.max_frame:
            raise FatalProtocolError(
                ErrorCode.TOO_LARGE,
                f"frame of {length} bytes is over the limit of {self.max_frame}",
            )
        end = HEADER_SIZE + length
        if len(self._buffer) < end:
            return None
        payload = bytes(self._buffer[HEADER_SIZE:end])
        del self._buffer[:end]
        return Frame(type_code, flags, stream, payload)


__all__ = [
    "DEFAULT_MAX_FRAME",
    "FLAG_END",
    "HEADER_SIZE",
    "LIMIT_MAX_FRAME",
    "MAGIC",
    "VERSION",
    "Frame",
    "FrameReader",
    "encode_frame",
]
