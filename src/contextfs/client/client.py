"""The client: AsyncClient (asyncio) and Client (blocking), one method per request.

Both drive a :class:`~contextfs.wire.Connection` over a TCP stream to a
``contextfs serve``. Many requests may be in flight on one connection; each
has its own stream. Streamed answers (``stream``, ``oplog_subscribe``) grant
credit only as the caller consumes them, so a caller who stops reading stops
the server producing. A lost connection fails the calls in flight with
:class:`ConnectionLostError`; the next call connects again. A request the
server refuses raises the library's own error class, as a local call would
(``UnknownRevisionError``, ``InvalidInputError``, ...), which is also a
:class:`~contextfs.wire.RemoteError` (see :func:`~contextfs.wire.errors.remote_error`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

from ..errors import ContextFSError, CorruptObjectError, InvalidInputError
from ..integrity.fsck import rehash
from ..model.ids import from_hex
from ..model.objects import MemoryAtom
from ..oplog.entry import OpEntry
from ..tls import client_context
from ..wire.atoms import wire_atom
from ..wire.connection import Connection, Failed, Received, Role
from ..wire.errors import remote_error
from ..wire.messages import (
    DATA,
    Ack,
    Cancel,
    Error,
    Expand,
    ExpandResponse,
    Fetch,
    FetchPack,
    Have,
    Hello,
    Hit,
    Ids,
    Log,
    LogEntry,
    LogResponse,
    Message,
    Objects,
    Offer,
    OplogAppend,
    OplogEvent,
    OplogSubscribe,
    Pack,
    Ping,
    Pong,
    Pull,
    Push,
    Query,
    QueryResponse,
    Refs,
    RefsResponse,
    RefUpdateSpec,
    Retrieval,
    Session,
    SessionResponse,
    Stream,
    StreamChunk,
    UpdateRefs,
    Upload,
    UploadPack,
    Welcome,
    Window,
)

DEFAULT_PORT = 7411
#: The URL scheme of a plain server, and of one behind TLS.
SCHEME = "ctx"
TLS_SCHEME = "ctxs"
#: Seconds a server has to answer HELLO (a silent one must not hang the client).
HANDSHAKE_TIMEOUT = 30.0
T = TypeVar("T")


class ConnectionLostError(ContextFSError):
    """The connection to the server ended before the answer came."""

    exit_code = 1


class ServerAddress(NamedTuple):
    """Where a server is, and whether it speaks TLS (``ctxs://``)."""

    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{TLS_SCHEME if self.tls else SCHEME}://{host}:{self.port}"


def parse_url(url: str) -> ServerAddress:
    """Return the address of a ``ctx://host:port`` or ``ctxs://host:port`` URL (port 7411).

    Raises:
        InvalidInputError: not such a URL.
    """
    shape = "a server URL looks like ctx://host:port (or ctxs:// with TLS)"
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unclosed "[" and the like
        raise InvalidInputError(f"{shape}, got {url!r} ({exc})") from None
    if parts.scheme not in (SCHEME, TLS_SCHEME) or not parts.hostname:
        raise InvalidInputError(f"{shape}, got {url!r}")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise InvalidInputError(f"bad port in {url!r}") from None
    return ServerAddress(parts.hostname, port, parts.scheme == TLS_SCHEME)


@dataclass(frozen=True, slots=True)
class PullResult:
    """What :meth:`AsyncClient.pull` copied: the head, and objects received and stored."""

    head: str
    received: int
    stored: int


class AsyncClient:
    """An asyncio client for one server (see the module docstring)."""

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        token: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token
        self.tls = tls
        self.welcome: Welcome | None = None
        self._conn: Connection | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._queues: dict[int, asyncio.Queue[Received | BaseException]] = {}
        self._pongs: dict[int, asyncio.Future[None]] = {}
        self._nonce = 0
        self._lock = asyncio.Lock()

    @classmethod
    async def connect(
        cls, url: str, *, token: str | None = None, ca: str | os.PathLike[str] | None = None
    ) -> AsyncClient:
        """Connect to ``ctx://host:port`` (``ctxs://``: verified against ``ca``); shake hands."""
        client = cls.for_url(url, token=token, ca=ca)
        await client._ensure()
        return client

    @classmethod
    def for_url(
        cls, url: str, *, token: str | None = None, ca: str | os.PathLike[str] | None = None
    ) -> AsyncClient:
        """A client for ``url`` that connects on its first request.

        ``ca`` is a CA file to verify a ``ctxs://`` server against (default
        ``$CONTEXTFS_CA``, else the system's trust store).
        """
        address = parse_url(url)
        if ca is not None and not address.tls:
            raise InvalidInputError(
                f"a CA file is for ctxs:// servers; {url!r} is a plain one (ctx://)"
            )
        tls = client_context(ca) if address.tls else None
        return cls(address.host, address.port, token=token, tls=tls)

    @property
    def address(self) -> ServerAddress:
        """The server's address."""
        return ServerAddress(self.host, self.port, self.tls is not None)

    async def aclose(self) -> None:
        """Close the connection; safe to call twice."""
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        self._conn = self._writer = self._reader_task = None

    async def __aenter__(self) -> AsyncClient:
        await self._ensure()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- the connection -------------------------------------------------------------

    async def _ensure(self) -> Connection:
        async with self._lock:
            if self._conn is not None and not self._conn.closed:
                return self._conn
            await self.aclose()
            reader, writer = await self._open_socket()
            conn = Connection(Role.CLIENT)
            self._conn, self._writer = conn, writer
            handshake: asyncio.Queue[Received | BaseException] = asyncio.Queue()
            self._queues[0] = handshake
            self._reader_task = asyncio.create_task(self._read(reader, conn))
            conn.send(0, Hello(versions=[1], token=self.token, client="contextfs"))
            await self._flush()
            try:
                got = await asyncio.wait_for(handshake.get(), HANDSHAKE_TIMEOUT)
            except TimeoutError:
                await self.aclose()
                raise ConnectionLostError(
                    f"{self.address} sent no welcome within {HANDSHAKE_TIMEOUT:g} s"
                ) from None
            if isinstance(got, BaseException):
                await self.aclose()
                if isinstance(got, ConnectionLostError) and self.tls is None:
                    raise ConnectionLostError(
                        f"{self.address} closed the connection before its welcome"
                        " (a server behind TLS has a ctxs:// URL)"
                    ) from None
                raise got
            answer = got.message
            if isinstance(answer, Error):
                await self.aclose()
                raise remote_error(answer.code, answer.message, answer.error)
            assert isinstance(answer, Welcome)
            self.welcome = answer
            return conn

    async def _open_socket(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await asyncio.open_connection(
                self.host,
                self.port,
                ssl=self.tls,
                server_hostname=self.host if self.tls else None,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT if self.tls else None,
            )
        except ssl.SSLCertVerificationError as exc:
            raise ConnectionLostError(
                f"cannot trust {self.address}: {exc.verify_message}"
                " (pass --ca with the CA that signed its certificate)"
            ) from None
        except ssl.SSLError as exc:
            raise ConnectionLostError(
                f"TLS with {self.address} failed ({exc.reason or exc}):"
                " is it serving TLS? a plain server's URL is ctx://"
            ) from None
        except OSError as exc:
            raise ConnectionLostError(
                f"cannot reach {self.address}: {exc.strerror or exc}"
            ) from None

    async def _flush(self) -> None:
        if self._conn is None or self._writer is None:
            raise ConnectionLostError("not connected")
        data = self._conn.data_to_send()
        if data:
            try:
                self._writer.write(data)
                await self._writer.drain()
            except ConnectionError as exc:
                raise ConnectionLostError(f"connection lost: {exc}") from None

    async def _read(self, reader: asyncio.StreamReader, conn: Connection) -> None:
        lost: BaseException = ConnectionLostError("the server closed the connection")
        try:
            while not conn.closed:
                data = await reader.read(65536)
                conn.receive_data(data)
                while (event := conn.next_event()) is not None:
                    if isinstance(event, Received):
                        if isinstance(event.message, Pong):
                            pong = self._pongs.pop(event.message.nonce, None)
                            if pong is not None and not pong.done():
                                pong.set_result(None)
                            continue
                        queue = self._queues.get(event.stream)
                        if queue is not None:
                            queue.put_nowait(event)
                            if event.end or isinstance(event.message, Error):
                                self._queues.pop(event.stream, None)
                    elif isinstance(event, Failed) and event.stream == 0:
                        lost = ConnectionLostError(f"protocol failure: {event.message}")
                if not data:
                    break
        except (ConnectionError, OSError) as exc:
            lost = ConnectionLostError(f"connection lost: {exc}")
        finally:
            for queue in self._queues.values():
                queue.put_nowait(lost)
            self._queues.clear()
            for pong in self._pongs.values():
                if not pong.done():
                    pong.set_exception(lost)
            self._pongs.clear()
            conn.receive_data(b"")

    async def _open(self, message: Message) -> tuple[int, asyncio.Queue[Received | BaseException]]:
        conn = await self._ensure()
        stream = conn.next_stream_id()
        queue: asyncio.Queue[Received | BaseException] = asyncio.Queue()
        self._queues[stream] = queue
        conn.send(stream, message, end=True)
        await self._flush()
        return stream, queue

    @staticmethod
    def _check(got: Received | BaseException) -> Received:
        if isinstance(got, BaseException):
            raise got
        if isinstance(got.message, Error):
            raise remote_error(got.message.code, got.message.message, got.message.error)
        return got

    async def _call(self, message: Message, kind: type[T]) -> T:
        _, queue = await self._open(message)
        answer = self._check(await queue.get()).message
        if not isinstance(answer, kind):
            raise ConnectionLostError(f"unexpected answer {type(answer).__name__}")
        return answer

    async def _iterate(self, message: Message) -> AsyncIterator[Message]:
        """Yield a streamed answer's messages, granting credit for each one consumed."""
        stream, queue = await self._open(message)
        finished = False
        try:
            while True:
                got = self._check(await queue.get())
                if got.end:
                    finished = True
                yield got.message
                if finished:
                    return
                conn = self._conn
                data = got.message.TYPE in DATA
                if data and conn is not None and not conn.closed and stream in conn.streams:
                    conn.send(stream, Window(credit=got.size))  # consumed: the server may send more
                    await self._flush()
        finally:
            conn = self._conn
            if not finished and conn is not None and not conn.closed and stream in conn.streams:
                with contextlib.suppress(ContextFSError):
                    conn.send(stream, Cancel())
                    await self._flush()
            self._queues.pop(stream, None)

    # -- requests --------------------------------------------------------------------

    async def ping(self) -> None:
        """Round-trip a PING (many may be in flight; each waits for its own PONG)."""
        conn = await self._ensure()
        self._nonce += 1
        nonce = self._nonce
        pong: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pongs[nonce] = pong
        conn.send(0, Ping(nonce=nonce))
        await self._flush()
        await pong

    async def expand(
        self,
        revision: str = "HEAD",
        *,
        budget: int | None = None,
        query: str | None = None,
        format: str = "lines",
        retrieval: Retrieval | None = None,
    ) -> ExpandResponse:
        """The prompt ``revision`` gives for ``budget`` (and ``query``)."""
        request = Expand(
            revision=revision,
            budget=budget,
            query=query,
            format=format,  # type: ignore[arg-type]  # the server checks it against the schema
            retrieval=retrieval,
        )
        return await self._call(request, ExpandResponse)

    async def stream(
        self,
        revision: str = "HEAD",
        *,
        chunk_size: int = 10,
        max_tokens_per_chunk: int = 500,
        relevance_threshold: float = 0.0,
    ) -> AsyncIterator[StreamChunk]:
        """``revision``'s atoms best first, in chunks, as the caller reads them."""
        request = Stream(
            revision=revision,
            chunk_size=chunk_size,
            max_tokens_per_chunk=max_tokens_per_chunk,
            relevance_threshold=relevance_threshold,
        )
        async for message in self._iterate(request):
            if isinstance(message, StreamChunk):
                yield message

    async def query(
        self,
        query: str,
        *,
        revision: str = "HEAD",
        limit: int = 10,
        mode: str = "any",
        retrieval: Retrieval | None = None,
    ) -> list[Hit]:
        """Full-text search of ``revision``, best first."""
        request = Query(query=query, revision=revision, limit=limit, mode=mode, retrieval=retrieval)  # type: ignore[arg-type]
        return (await self._call(request, QueryResponse)).hits

    async def push(
        self,
        atoms: Iterable[MemoryAtom] = (),
        *,
        remove: Iterable[str] = (),
        message: str = "Pushed over the wire",
        author: str = "remote",
        expect_head: str | None = None,
    ) -> str:
        """Commit atoms (and removals) on the server's current branch; returns the commit id."""
        request = Push(
            atoms=[wire_atom(a) for a in atoms],
            remove=list(remove),
            message=message,
            author=author,
            expect_head=expect_head,
        )
        ack = await self._call(request, Ack)
        return str(ack.hash)

    async def session(
        self,
        revision: str = "HEAD",
        *,
        budget: int = 2000,
        query: str | None = None,
        hashes: dict[str, str] | None = None,
        granularity: str = "item",
        retrieval: Retrieval | None = None,
        turn: bool = False,
        previous: dict[str, Any] | None = None,
    ) -> SessionResponse:
        """The session payload as a delta against ``hashes`` (apply it with apply_delta).

        With ``turn`` (or a ``previous`` state), a turn context instead: the
        answer's ``blocks``, ``state`` (pass it as ``previous`` next turn),
        ``rebuild`` and ``cost`` (see :meth:`Repository.turn_context`).
        """
        request = Session(
            revision=revision,
            budget=budget,
            query=query,
            hashes=hashes or {},
            granularity=granularity,  # type: ignore[arg-type]
            retrieval=retrieval,
            turn=turn,
            previous=previous,
        )
        return await self._call(request, SessionResponse)

    async def oplog_append(self, session: str, ops: Iterable[OpEntry]) -> list[dict[str, Any]]:
        """Append ops to a session on the server; returns each op's stored id and stamp."""
        ack = await self._call(OplogAppend(session=session, ops=[dict(op) for op in ops]), Ack)
        result: list[dict[str, Any]] = ack.result.get("ops", [])
        return result

    async def oplog_subscribe(self, session: str, *, since: int = 0) -> AsyncIterator[OplogEvent]:
        """Follow a session's ops live, from op number ``since``; stop by breaking out."""
        async for message in self._iterate(OplogSubscribe(session=session, since=since)):
            if isinstance(message, OplogEvent):
                yield message

    async def log(self, revision: str = "HEAD", *, limit: int = 20) -> list[LogEntry]:
        """``revision``'s history, newest first."""
        return (await self._call(Log(revision=revision, limit=limit), LogResponse)).commits

    async def fetch(
        self, ids: Iterable[str], *, check: bool = True
    ) -> list[tuple[str, str, bytes]]:
        """Objects by id, each checked against its id.

        ``check=False`` leaves the re-hash to the caller, for one that stores
        them through :func:`contextfs.remote.objects.receive`, which checks anyway.
        """
        result: list[tuple[str, str, bytes]] = []
        async for message in self._iterate(Fetch(ids=list(ids))):
            if isinstance(message, Objects):
                result += [_checked(row) for row in message.objects] if check else message.objects
        return result

    async def max_frame(self) -> int:
        """The largest payload this connection carries, as WELCOME set it."""
        conn = await self._ensure()
        return conn.max_frame

    async def refs(self) -> dict[str, str]:
        """The server's HEAD (as stored), branches and tags."""
        return (await self._call(Refs(), RefsResponse)).refs

    async def offer(
        self, wants: Iterable[str], haves: Iterable[str] = ()
    ) -> AsyncIterator[list[str]]:
        """Batches of ids a client holding ``haves`` may lack for ``wants`` (commit ids)."""
        async for message in self._iterate(Offer(wants=list(wants), haves=list(haves))):
            if isinstance(message, Ids):
                yield message.ids

    async def features(self) -> list[str]:
        """What the server does beyond version 1's first requests, as WELCOME said."""
        await self._ensure()
        return list(self.welcome.features) if self.welcome is not None else []

    async def fetch_pack(
        self, wants: Iterable[str], haves: Iterable[str] = (), purges: Iterable[str] = ()
    ) -> AsyncIterator[bytes]:
        """The pack of every object a client holding ``haves`` may lack for ``wants``, in parts.

        ``purges`` are purge records (ids) to include besides. Nothing is
        checked here: :func:`contextfs.remote.pack.receive_pack`, which stores
        it, checks everything.
        """
        request = FetchPack(wants=list(wants), haves=list(haves), purges=list(purges))
        async for message in self._iterate(request):
            if isinstance(message, Pack):
                yield message.data

    async def upload_pack(self, data: bytes) -> int:
        """Hand the server the next bytes of a pack for this connection's next UPDATE_REFS."""
        ack = await self._call(UploadPack(data=data), Ack)
        return int((ack.result or {}).get("held", 0))

    async def have(self, ids: Iterable[str]) -> list[str]:
        """Which of ``ids`` the server holds."""
        return (await self._call(Have(ids=list(ids)), Ids)).ids

    async def upload(self, objects: list[tuple[str, str, bytes]]) -> int:
        """Hand objects to the server for this connection's next :meth:`update_refs`."""
        ack = await self._call(Upload(objects=objects), Ack)
        return int((ack.result or {}).get("held", 0))

    async def update_refs(
        self, updates: Iterable[tuple[str, str | None, str | None]], *, force: bool = False
    ) -> dict[str, Any]:
        """Store the uploaded objects and move branches or tags, all or nothing, by CAS."""
        specs = [RefUpdateSpec(name=n, old=o, new=w) for n, o, w in updates]
        ack = await self._call(UpdateRefs(updates=specs, force=force), Ack)
        return dict(ack.result or {})

    async def pull(self, into: Any, want: str = "HEAD", *, branch: str | None = None) -> PullResult:
        """Copy ``want``'s history into repository ``into``, sending only what it lacks.

        Every object is re-hashed before it is stored; the objects land in one
        transaction, and ``branch`` (if given) moves to the head only after.
        """
        haves = await asyncio.to_thread(_local_heads, into)
        rows: list[tuple[str, str, bytes]] = []
        head = None
        async for message in self._iterate(Pull(want=want, have=haves)):
            if isinstance(message, Objects):
                rows += [_checked(row) for row in message.objects]
                head = message.head or head
        if head is None:
            raise ConnectionLostError("the pull ended without a head")
        stored = await asyncio.to_thread(_store, into, rows, head, branch)
        return PullResult(head, len(rows), stored)


def _checked(row: tuple[str, str, bytes]) -> tuple[str, str, bytes]:
    oid, kind, data = row
    if rehash(kind, data) != from_hex(oid) and not (kind == "atom" and not data):
        raise CorruptObjectError(
            f"the server sent object {oid[:16]}, which does not hash to its id"
        )
    return oid, kind, data


def _local_heads(repo: Any) -> list[str]:
    return sorted(set(repo.branches().values()) | set(repo.tags().values()))


def _store(repo: Any, rows: list[tuple[str, str, bytes]], head: str, branch: str | None) -> int:
    with repo.transaction():
        present = repo.store.has_objects([from_hex(oid) for oid, _, _ in rows])
        fresh = [(from_hex(oid), kind, data) for oid, kind, data in rows]
        repo.store.put_objects(o for o in fresh if o[0] not in present)
        if branch is not None:
            ref = f"refs/heads/{branch}"
            repo.update_ref(ref, head, repo.store.read_ref(ref))
    return len([o for o in rows if from_hex(o[0]) not in present])


class Client:
    """A blocking client: :class:`AsyncClient` on an event loop in a background thread."""

    def __init__(
        self, url: str, *, token: str | None = None, ca: str | os.PathLike[str] | None = None
    ) -> None:
        async_client = AsyncClient.for_url(url, token=token, ca=ca)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._async = async_client

    def _run(self, coroutine: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()  # type: ignore[arg-type]

    def _iterate(self, make: Callable[[], AsyncIterator[T]]) -> Iterator[T]:
        iterator = make()
        try:
            while True:
                try:
                    yield self._run(iterator.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._run(iterator.aclose())  # type: ignore[attr-defined]

    def close(self) -> None:
        """Close the connection and stop the loop thread; safe to call twice."""
        if self._loop.is_running():
            self._run(self._async.aclose())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        if not self._loop.is_closed():
            self._loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def ping(self) -> None:
        """See :meth:`AsyncClient.ping`."""
        self._run(self._async.ping())

    def expand(
        self,
        revision: str = "HEAD",
        *,
        budget: int | None = None,
        query: str | None = None,
        format: str = "lines",
        retrieval: Retrieval | None = None,
    ) -> ExpandResponse:
        """See :meth:`AsyncClient.expand`."""
        return self._run(
            self._async.expand(
                revision, budget=budget, query=query, format=format, retrieval=retrieval
            )
        )

    def stream(
        self,
        revision: str = "HEAD",
        *,
        chunk_size: int = 10,
        max_tokens_per_chunk: int = 500,
        relevance_threshold: float = 0.0,
    ) -> Iterator[StreamChunk]:
        """See :meth:`AsyncClient.stream`."""
        return self._iterate(
            lambda: self._async.stream(
                revision,
                chunk_size=chunk_size,
                max_tokens_per_chunk=max_tokens_per_chunk,
                relevance_threshold=relevance_threshold,
            )
        )

    def query(
        self,
        query: str,
        *,
        revision: str = "HEAD",
        limit: int = 10,
        mode: str = "any",
        retrieval: Retrieval | None = None,
    ) -> list[Hit]:
        """See :meth:`AsyncClient.query`."""
        return self._run(
            self._async.query(query, revision=revision, limit=limit, mode=mode, retrieval=retrieval)
        )

    def push(
        self,
        atoms: Iterable[MemoryAtom] = (),
        *,
        remove: Iterable[str] = (),
        message: str = "Pushed over the wire",
        author: str = "remote",
        expect_head: str | None = None,
    ) -> str:
        """See :meth:`AsyncClient.push`."""
        request = self._async.push(
            list(atoms),
            remove=list(remove),
            message=message,
            author=author,
            expect_head=expect_head,
        )
        return self._run(request)

    def pull(self, into: Any, want: str = "HEAD", *, branch: str | None = None) -> PullResult:
        """See :meth:`AsyncClient.pull`."""
        return self._run(self._async.pull(into, want, branch=branch))

    def log(self, revision: str = "HEAD", *, limit: int = 20) -> list[LogEntry]:
        """See :meth:`AsyncClient.log`."""
        return self._run(self._async.log(revision, limit=limit))

    def fetch(self, ids: Iterable[str], *, check: bool = True) -> list[tuple[str, str, bytes]]:
        """See :meth:`AsyncClient.fetch`."""
        return self._run(self._async.fetch(list(ids), check=check))

    def max_frame(self) -> int:
        """The largest payload this connection carries (connecting first if needed)."""
        return self._run(self._async.max_frame())

    def refs(self) -> dict[str, str]:
        """See :meth:`AsyncClient.refs`."""
        return self._run(self._async.refs())

    def offer(self, wants: Iterable[str], haves: Iterable[str] = ()) -> Iterator[list[str]]:
        """See :meth:`AsyncClient.offer`."""
        wants, haves = list(wants), list(haves)
        return self._iterate(lambda: self._async.offer(wants, haves))

    def features(self) -> list[str]:
        """See :meth:`AsyncClient.features`."""
        return self._run(self._async.features())

    def fetch_pack(
        self, wants: Iterable[str], haves: Iterable[str] = (), purges: Iterable[str] = ()
    ) -> Iterator[bytes]:
        """See :meth:`AsyncClient.fetch_pack`."""
        wants, haves, purges = list(wants), list(haves), list(purges)
        return self._iterate(lambda: self._async.fetch_pack(wants, haves, purges))

    def upload_pack(self, data: bytes) -> int:
        """See :meth:`AsyncClient.upload_pack`."""
        return self._run(self._async.upload_pack(data))

    def have(self, ids: Iterable[str]) -> list[str]:
        """See :meth:`AsyncClient.have`."""
        return self._run(self._async.have(list(ids)))

    def upload(self, objects: list[tuple[str, str, bytes]]) -> int:
        """See :meth:`AsyncClient.upload`."""
        return self._run(self._async.upload(objects))

    def update_refs(
        self, updates: Iterable[tuple[str, str | None, str | None]], *, force: bool = False
    ) -> dict[str, Any]:
        """See :meth:`AsyncClient.update_refs`."""
        return self._run(self._async.update_refs(list(updates), force=force))

    def session(
        self,
        revision: str = "HEAD",
        *,
        budget: int = 2000,
        query: str | None = None,
        hashes: dict[str, str] | None = None,
        granularity: str = "item",
        retrieval: Retrieval | None = None,
        turn: bool = False,
        previous: dict[str, Any] | None = None,
    ) -> SessionResponse:
        """See :meth:`AsyncClient.session`."""
        request = self._async.session(
            revision,
            budget=budget,
            query=query,
            hashes=hashes,
            granularity=granularity,
            retrieval=retrieval,
            turn=turn,
            previous=previous,
        )
        return self._run(request)

    def oplog_append(self, session: str, ops: Iterable[OpEntry]) -> list[dict[str, Any]]:
        """See :meth:`AsyncClient.oplog_append`."""
        return self._run(self._async.oplog_append(session, list(ops)))

    def oplog_subscribe(self, session: str, *, since: int = 0) -> Iterator[OplogEvent]:
        """See :meth:`AsyncClient.oplog_subscribe`."""
        return self._iterate(lambda: self._async.oplog_subscribe(session, since=since))


__all__ = [
    "DEFAULT_PORT",
    "AsyncClient",
    "Client",
    "ConnectionLostError",
    "PullResult",
    "ServerAddress",
    "parse_url",
]
