"""``contextfs serve``: the asyncio server, a short loop around the sans-IO connection.

One :class:`Server` serves one repository. Each connection is a reader loop
that feeds :class:`~contextfs.wire.Connection` and a task per request;
repository work runs in worker threads (``asyncio.to_thread``). What the
server guarantees:

* it binds to 127.0.0.1 unless told otherwise, and then only with a token,
  which every client must present in HELLO, and with TLS unless told
  ``insecure`` (:func:`~contextfs.tls.check_exposure`);
* limits on frame size, streams per connection, connections and idle time;
* a data message is produced only when the stream has credit for it, so a
  slow reader stalls its own stream (the handler's iterator is not advanced;
  memory stays bounded) while the connection's other streams go on;
* every failure reaches the client as an ERROR frame with a code and a
  one-line message (never a traceback or a path), a library error also with
  its class name, so the client raises that class; and the server goes on;
* :meth:`Server.aclose` (SIGTERM) stops accepting, lets requests in flight
  finish within a grace period, then closes every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import ContextFSError
from ..oplog.base import OpLogBackend
from ..oplog.log import Cut
from ..repo import Repository
from ..tls import check_exposure, is_loopback
from ..tokens import Gate, Grant, Scope
from ..wire.connection import (
    Connection,
    CreditGranted,
    Failed,
    FlowControlBlockedError,
    Received,
    Role,
)
from ..wire.errors import ErrorCode, ProtocolError, code_for, error_name
from ..wire.frames import DEFAULT_MAX_FRAME, encode_frame
from ..wire.messages import (
    DATA,
    Cancel,
    Error,
    Expand,
    Fetch,
    FetchPack,
    Have,
    Hello,
    Log,
    Message,
    MessageType,
    Offer,
    OplogAppend,
    OplogEvent,
    OplogSubscribe,
    Ping,
    Pong,
    Pull,
    Push,
    Query,
    Refs,
    Session,
    Stream,
    UpdateRefs,
    Upload,
    UploadPack,
    Welcome,
    encode_payload,
)
from . import handlers
from .access import authorize

logger = logging.getLogger(__name__)

SERVER_NAME = "contextfs"
#: A connection's grant until its HELLO is accepted (the wire refuses requests before
#: then anyway): reads are the least scope, and a grant for no branch moves none.
NOBODY = Grant("nobody", Scope.READ, branches="")
#: How often a subscription looks for ops other processes appended.
SUBSCRIBE_POLL = 0.2
#: Ops per OPLOG_EVENT frame.
OPS_PER_EVENT = 200
#: Smallest frame limit a client may ask for (an ERROR must always fit).
MIN_FRAME = 16 * 1024
#: Seconds to wait for a connection to finish closing (a TLS peer may never answer).
CLOSE_WAIT = 5.0
#: Messages a streamed answer produces per worker-thread hop.
BATCH = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """What one server allows."""

    max_frame: int = DEFAULT_MAX_FRAME
    max_streams: int = 64
    max_connections: int = 128
    idle_timeout: float = 300.0
    window: int = 1 << 20
    shutdown_grace: float = 10.0
    #: Bytes of objects one connection may upload for one UPDATE_REFS (a push).
    max_upload: int = 1 << 30
    #: Seconds a new connection has to finish its HELLO (a slow drip does not extend it).
    handshake_timeout: float = 10.0
    #: Connections still in their handshake at once; a new one past it closes the oldest.
    max_pending: int = 16
    #: The same, from one client address: one address's flood cannot crowd out the rest.
    max_pending_per_address: int = 4


Handler = Callable[[Repository, Any], Any]
_HANDLERS: dict[type[Message], Handler] = {
    Expand: handlers.expand,
    Stream: handlers.stream,
    Query: handlers.query,
    Push: handlers.push,
    Pull: handlers.pull,
    Fetch: handlers.fetch,
    Log: handlers.log,
    Session: handlers.session,
    OplogAppend: handlers.oplog_append,
    Refs: handlers.refs,
    Offer: handlers.offer,
    Have: handlers.have,
}
#: Requests that use the connection's transfer state: held uploads, its frame limit.
_UPLOAD_HANDLERS: dict[type[Message], Callable[[Repository, handlers.Uploads, Any], Any]] = {
    Upload: handlers.upload,
    UploadPack: handlers.upload_pack,
    UpdateRefs: handlers.update_refs,
    FetchPack: handlers.fetch_pack,
}
#: What this server does beyond version 1's first requests (WELCOME's ``features``).
FEATURES = ("pack",)


class Server:
    """Serves one repository over protocol v1 (see the module docstring).

    Args:
        tls: the server's TLS context (:func:`~contextfs.tls.server_context`);
            clients then connect with ``ctxs://``.
        insecure: allow a non-loopback host without TLS (:attr:`warning` says so).

    Raises:
        InvalidInputError: a non-loopback host without a token, or without TLS
            and not ``insecure``.
    """

    def __init__(
        self,
        repo: Repository,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        limits: Limits | None = None,
        tls: ssl.SSLContext | None = None,
        insecure: bool = False,
    ) -> None:
        #: Who is let in: the shared ``token`` and the store's live tokens.
        self.gate = Gate(repo.store, token)
        #: What to tell the user before serving, if anything.
        self.warning = check_exposure(
            host, token=self.gate.closed(), tls=tls is not None, insecure=insecure
        )
        self.repo = repo
        self.tls = tls
        self.host = host
        self.port = port
        self.token = token
        self.limits = limits or Limits()
        self._listener: asyncio.Server | None = None
        self._peers: set[_Peer] = set()
        self._closing = False
        self._session_events: dict[str, asyncio.Event] = {}

    async def start(self) -> None:
        """Listen; :attr:`port` is the bound port afterwards."""
        # TLS starts inside each connection (_Peer.run), so a connection still in its
        # TLS handshake counts against the limits and the handshake deadline; until
        # then the socket is not read, so every byte of the client's hello reaches TLS.
        loop = asyncio.get_running_loop()
        paused = self.tls is not None

        def accepting() -> _Accepting:
            return _Accepting(asyncio.StreamReader(loop=loop), self._accept, paused=paused)

        self._listener = await loop.create_server(accepting, self.host, self.port)
        self.port = self._listener.sockets[0].getsockname()[1]

    async def serve_forever(self) -> None:
        """Serve until :meth:`aclose` (or cancellation)."""
        if self._listener is None:
            await self.start()
        assert self._listener is not None
        with contextlib.suppress(asyncio.CancelledError):
            await self._listener.serve_forever()

    async def aclose(self) -> None:
        """Stop accepting, let requests in flight finish (within the grace), close all."""
        if self._closing:
            return
        self._closing = True
        if self._listener is not None:
            self._listener.close()
        await asyncio.gather(
            *(peer.drain(self.limits.shutdown_grace) for peer in list(self._peers)),
            return_exceptions=True,
        )
        if self._listener is not None:
            await self._listener.wait_closed()

    @property
    def url(self) -> str:
        """Where clients connect: ``ctx://`` or, with TLS, ``ctxs://`` (after :meth:`start`)."""
        scheme = "ctxs" if self.tls is not None else "ctx"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def connections(self) -> int:
        """Connections open now."""
        return len(self._peers)

    def session_event(self, session: str) -> asyncio.Event:
        """Set whenever this server appends to ``session`` (wakes its subscribers)."""
        return self._session_events.setdefault(session, asyncio.Event())

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        address = str(peername[0]) if isinstance(peername, tuple) and peername else ""
        self._make_room(address)
        live = sum(1 for peer in self._peers if not peer.refused)
        if self._closing or live >= self.limits.max_connections:
            if self.tls is None:  # a TLS client could not read a plain frame: just close
                code = ErrorCode.SHUTTING_DOWN if self._closing else ErrorCode.BUSY
                message = Error(code=int(code), message="not accepting connections")
                writer.write(encode_frame(MessageType.ERROR, 0, encode_payload(message)))
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
            writer.close()
            return
        peer = _Peer(self, reader, writer, address)
        self._peers.add(peer)
        try:
            await peer.run()
        finally:
            self._peers.discard(peer)

    def _make_room(self, address: str) -> None:
        """Close the oldest connections still in their handshake when they fill a limit.

        Sockets that connect and never finish HELLO need no token; without
        this, enough of them would lock out every client that has one. One
        address may hold only a few of them, so a flood from it evicts its
        own; a client that shakes hands at once is never the oldest for long.
        """
        live = [peer for peer in self._peers if not peer.refused]
        pending = sorted((p for p in live if not p.welcomed), key=lambda p: p.opened)
        own = [peer for peer in pending if peer.address == address]
        for peer in own[: max(0, len(own) + 1 - self.limits.max_pending_per_address)]:
            peer.refuse("too many connections from one address waiting for a handshake")
        live = [peer for peer in live if not peer.refused]
        pending = [peer for peer in pending if not peer.refused]
        full = len(live) >= self.limits.max_connections
        excess = max(len(pending) + 1 - self.limits.max_pending, 1 if full else 0)
        for peer in pending[:excess]:
            peer.refuse("too many connections waiting for a handshake")


class _Accepting(asyncio.StreamReaderProtocol):
    """A new connection's stream protocol, which can hold reading until TLS takes over."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        accepted: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
        *,
        paused: bool,
    ) -> None:
        super().__init__(reader, accepted)
        self._hold_reading = paused

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the connection; with TLS to come, read nothing until it does."""
        super().connection_made(transport)
        if self._hold_reading and isinstance(transport, asyncio.ReadTransport):
            transport.pause_reading()


class _Peer:
    """One client connection: the read loop, and a task per open stream."""

    def __init__(
        self,
        server: Server,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        address: str = "",
    ) -> None:
        limits = server.limits
        self.server = server
        #: The client's IP address (connections still in their handshake are limited by it).
        self.address = address
        self.reader = reader
        self.writer = writer
        self.conn = Connection(
            Role.SERVER,
            max_frame=limits.max_frame,
            window=limits.window,
            max_streams=limits.max_streams,
        )
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.credit: dict[int, asyncio.Event] = {}
        self.uploads = handlers.Uploads(limits.max_upload)
        self.draining = False
        self.done = asyncio.Event()
        self.welcomed = False
        #: What this connection may do, from its HELLO's token.
        self.grant: Grant = NOBODY
        self.refused = False
        self.opened = asyncio.get_running_loop().time()
        #: False while a TLS server's handshake with this client is still to be done.
        self.secured = server.tls is None

    def refuse(self, reason: str) -> None:
        """End a connection that has not shaken hands (the server needs the room)."""
        logger.info("closing a connection: %s", reason)
        self.refused = True
        if not self.conn.closed and self.secured:
            self._send(0, Error(code=ErrorCode.BUSY, message=reason))
        with contextlib.suppress(ConnectionError, RuntimeError):
            data = self.conn.data_to_send()
            if data:
                self.writer.write(data)
        self.writer.close()

    async def run(self) -> None:
        try:
            idle = self.server.limits.idle_timeout
            deadline = self.opened + self.server.limits.handshake_timeout
            loop = asyncio.get_running_loop()
            if not self.secured and not await self._start_tls(deadline - loop.time()):
                return
            reading: asyncio.Task[bytes] | None = None
            while not self.conn.closed:
                if reading is None:
                    reading = asyncio.ensure_future(self.reader.read(65536))
                wait = idle if self.welcomed else max(0.0, min(idle, deadline - loop.time()))
                done, _ = await asyncio.wait({reading}, timeout=wait)
                if not self.welcomed and loop.time() >= deadline:
                    reading.cancel()
                    self._send(0, Error(code=ErrorCode.TIMEOUT, message="no handshake in time"))
                    break
                if not done:
                    if self.tasks:  # busy answering: not idle
                        continue
                    reading.cancel()
                    self._send(0, Error(code=ErrorCode.TIMEOUT, message="idle for too long"))
                    break
                try:
                    data = reading.result()
                except ConnectionError:
                    break
                finally:
                    reading = None
                self.conn.receive_data(data)
                try:
                    self._dispatch()
                except ContextFSError as exc:  # this connection's state went wrong: end it
                    logger.warning("closing a connection: %s", exc)
                    self._send(0, Error(code=ErrorCode.INTERNAL, message="internal server error"))
                    await self._flush()
                    break
                await self._flush()
                if not data:
                    break
        finally:
            for task in list(self.tasks.values()):
                task.cancel()
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
            self.uploads.close()  # a push that never reached UPDATE_REFS: its pack goes
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._flush()
            self.writer.close()
            if self.secured:  # a failed TLS handshake left the stream's protocol behind
                with contextlib.suppress(ConnectionError, OSError, TimeoutError):
                    await asyncio.wait_for(self.writer.wait_closed(), CLOSE_WAIT)
            self.done.set()

    async def _start_tls(self, within: float) -> bool:
        """Shake hands in TLS within the connection's handshake deadline; False if it failed."""
        assert self.server.tls is not None
        within = max(within, 0.001)
        plain = self.writer.transport
        try:
            await asyncio.wait_for(
                self.writer.start_tls(self.server.tls, ssl_handshake_timeout=within), within
            )
            shaken = self.writer.transport is not None
        # ssl.SSLError is an OSError. When the client hangs up mid-handshake, asyncio
        # hands back no transport and the stream fails to adopt it (AttributeError).
        except (OSError, TimeoutError, AttributeError) as exc:
            logger.info("closing a connection: no TLS handshake (%s)", type(exc).__name__)
            shaken = False
        if not shaken:
            if self.writer.transport is None:  # keep a transport, so closing works
                setattr(self.writer, "_transport", plain)  # noqa: B010
            plain.close()
            return False
        self.secured = True
        return not self.refused

    async def drain(self, grace: float) -> None:
        """Refuse new requests, wait for those in flight, then close."""
        self.draining = True
        for stream, task in list(self.tasks.items()):
            if getattr(task, "subscription", False):
                task.cancel()
                self.tasks.pop(stream, None)
        if self.tasks:
            await asyncio.wait(list(self.tasks.values()), timeout=grace)
        if not self.conn.closed:
            self._send(0, Error(code=ErrorCode.SHUTTING_DOWN, message="the server is stopping"))
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._flush()
        self.writer.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.done.wait(), grace)

    def _dispatch(self) -> None:
        while (event := self.conn.next_event()) is not None:
            if isinstance(event, Received):
                self._received(event)
            elif isinstance(event, CreditGranted):
                self.credit.setdefault(event.stream, asyncio.Event()).set()
            elif isinstance(event, Failed) and event.stream == 0:
                logger.info("closing a connection: %s", event.message)

    def _received(self, event: Received) -> None:
        message, stream = event.message, event.stream
        if isinstance(message, Hello):
            grant = self.server.gate.admit(message.token)
            if grant is None:
                self._send(0, Error(code=ErrorCode.UNAUTHORISED, message="bad or missing token"))
                return
            self.grant = grant
            self.uploads.purges = grant.scope >= Scope.ADMIN
            limits = self.server.limits
            wanted = message.max_frame or limits.max_frame
            max_frame = max(MIN_FRAME, min(limits.max_frame, wanted))
            self.uploads.frame = max_frame
            self._send(
                0,
                Welcome(
                    version=1,
                    server=SERVER_NAME,
                    max_frame=max_frame,
                    window=max(limits.window, max_frame),
                    max_streams=limits.max_streams,
                    features=list(FEATURES),
                ),
            )
            self.welcomed = True
        elif isinstance(message, Ping):
            self._send(0, Pong(nonce=message.nonce))
        elif isinstance(message, Cancel):
            task = self.tasks.get(stream)
            if task is not None:
                task.cancel()
        elif isinstance(message, Error):
            task = self.tasks.pop(stream, None)
            if task is not None:
                task.cancel()
        elif self.draining:
            self._send(
                stream, Error(code=ErrorCode.SHUTTING_DOWN, message="the server is stopping")
            )
        else:
            runner = self._subscribe if isinstance(message, OplogSubscribe) else self._answer
            task = asyncio.create_task(runner(stream, message))
            if isinstance(message, OplogSubscribe):
                task.subscription = True  # type: ignore[attr-defined]
            self.tasks[stream] = task
            task.add_done_callback(functools.partial(self._finished, stream))

    def _finished(self, stream: int, _task: object = None) -> None:
        self.tasks.pop(stream, None)
        self.credit.pop(stream, None)

    def _send(self, stream: int, message: Message, *, end: bool = False) -> None:
        if self.conn.closed:
            return
        if message.TYPE is MessageType.ERROR and stream and stream not in self.conn.streams:
            return  # the stream is already over
        self.conn.send(stream, message, end=end)

    async def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)
            await self.writer.drain()

    async def _send_data(self, stream: int, message: Message, *, end: bool = False) -> None:
        """Send a data message once the stream has credit for it."""
        while True:
            try:
                self._send(stream, message, end=end)
            except FlowControlBlockedError:
                event = self.credit.setdefault(stream, asyncio.Event())
                event.clear()
                await event.wait()
                continue
            await self._flush()
            return

    @contextlib.asynccontextmanager
    async def _reported(self, stream: int) -> AsyncIterator[None]:
        """Turn whatever ends a stream's work early into the ERROR the client is owed."""
        try:
            yield
        except asyncio.CancelledError:
            self._send(stream, Error(code=ErrorCode.CANCELLED, message="cancelled"))
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._flush()
        except ContextFSError as exc:
            self._fail_with(stream, exc)
            await self._flush()
        except (ConnectionError, RuntimeError):  # the client went away mid-answer
            logger.info("stream %d: the client went away", stream)
        except Exception:  # a bug: the client learns only that it happened
            logger.exception("request on stream %d failed", stream)
            self._fail(stream, ErrorCode.INTERNAL, "internal server error")
            await self._flush()

    async def _answer(self, stream: int, message: Message) -> None:
        async with self._reported(stream):
            repo = self.server.repo
            upload_handler = _UPLOAD_HANDLERS.get(type(message))
            if isinstance(message, Push):
                result = await asyncio.to_thread(_push_as, self.grant, repo, message)
            elif upload_handler is not None:
                message = await asyncio.to_thread(authorize, self.grant, repo, message)
                result = await asyncio.to_thread(upload_handler, repo, self.uploads, message)
            else:
                message = await asyncio.to_thread(authorize, self.grant, repo, message)
                result = await asyncio.to_thread(_HANDLERS[type(message)], repo, message)
            if isinstance(result, Message):
                self._send(stream, result, end=True)
                if isinstance(message, OplogAppend):
                    self.server.session_event(message.session).set()
                await self._flush()
                return
            await self._send_all(stream, result)

    def _fail_with(self, stream: int, exc: ContextFSError) -> None:
        """Report a library error, named so the client raises its class.

        Store failures say no more than their class (the message may name paths).
        """
        code = exc.code if isinstance(exc, ProtocolError) else code_for(exc)
        text = str(exc)
        if code in (ErrorCode.STORE, ErrorCode.INTERNAL):
            logger.warning("request on stream %d failed: %s", stream, exc)
            text = "the server's repository could not do that; see its log"
        self._fail(stream, code, text, error=error_name(exc))

    def _fail(self, stream: int, code: ErrorCode, text: str, *, error: str | None = None) -> None:
        message = " ".join(text.split())[:500]
        self._send(stream, Error(code=int(code), message=message, error=error))

    async def _send_all(self, stream: int, messages: Iterator[Message]) -> None:
        """Send an iterator's messages one by one, each only when credit allows."""
        size = 1  # the first message goes out as soon as it exists; batches then grow
        batch = await asyncio.to_thread(_take, messages, size)
        while batch:
            for current in batch[:-1]:
                await self._deliver(stream, current, last=False)
            following = await asyncio.to_thread(_take, messages, size)  # a look-ahead for END
            size = min(size * 2, BATCH)
            await self._deliver(stream, batch[-1], last=not following)
            batch = following

    async def _deliver(self, stream: int, message: Message, *, last: bool) -> None:
        if message.TYPE in DATA:
            await self._send_data(stream, message, end=last)
        else:
            self._send(stream, message, end=last)
            await self._flush()

    async def _subscribe(self, stream: int, message: Message) -> None:
        """OPLOG_SUBSCRIBE: send the session's ops from ``since``, then as they come."""
        assert isinstance(message, OplogSubscribe)
        repo = self.server.repo
        async with self._reported(stream):
            authorize(self.grant, repo, message)
            log: OpLogBackend = await asyncio.to_thread(repo.oplog, message.session)
            cut = await asyncio.to_thread(_first_cut, log, max(0, message.since))
            event = self.server.session_event(message.session)
            while True:
                event.clear()
                ops, end = await asyncio.to_thread(_ops_after, log, cut)
                for start in range(0, len(ops), OPS_PER_EVENT):
                    chunk = ops[start : start + OPS_PER_EVENT]
                    await self._send_data(
                        stream, OplogEvent(ops=chunk, op_count=cut.ops + start + len(chunk))
                    )
                cut = end
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), SUBSCRIBE_POLL)


def _push_as(grant: Grant, repo: Repository, message: Push) -> Message:
    """PUSH checked against ``grant`` in the transaction that commits it.

    The branch a push commits to is the one HEAD names; checked and committed
    under one write lock, HEAD cannot move to a branch the grant does not cover
    in between.
    """
    with repo.transaction():
        allowed = authorize(grant, repo, message)
        assert isinstance(allowed, Push)
        return handlers.push(repo, allowed)


def _take(messages: Iterator[Message], count: int) -> list[Message]:
    """Up to ``count`` messages from an answer (one worker-thread hop for several)."""
    return list(itertools.islice(messages, count))


def _first_cut(log: OpLogBackend, since: int) -> Cut:
    """Where a subscription starts: after the first ``since`` ops (or at the end)."""
    end = log.end()
    return end if since >= end.ops else log.cut_after(Cut(0, 0), since)


def _ops_after(log: OpLogBackend, cut: Cut) -> tuple[list[dict[str, Any]], Cut]:
    """The ops after ``cut``, and the cut at the log's end."""
    end = log.end()
    if end.ops <= cut.ops:
        return [], cut
    return [dict(e) for e in log.read_range(cut, end)], end


__all__ = ["Limits", "Server", "is_loopback"]
