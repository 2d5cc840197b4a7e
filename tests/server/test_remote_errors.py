"""A request refused over the wire raises what the same call raises in process.

A live server on 127.0.0.1 and real clients: for each error family a request
that causes it, compared with the direct :class:`Repository` call; a peer that
names no class (an older server) or one the client does not know (a newer
one) falls back on the family of the ERROR's code.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

from contextfs import MemoryAtom, Repository
from contextfs.cli.main import cli
from contextfs.client import AsyncClient, Client
from contextfs.errors import (
    AmbiguousRevisionError,
    ConcurrentUpdateError,
    ConflictError,
    ContextFSError,
    CorruptObjectError,
    InvalidInputError,
    NothingToDoError,
    PermissionDeniedError,
    RevisionError,
    StoreError,
    UnknownRevisionError,
    VerificationError,
)
from contextfs.model.objects import atom_digest
from contextfs.model.types import TypeSignature
from contextfs.server import Server
from contextfs.store.sqlite import SqliteStore
from contextfs.wire.errors import ErrorCode, RemoteError, code_for
from contextfs.wire.frames import FrameReader, encode_frame
from contextfs.wire.messages import (
    Expand,
    ExpandResponse,
    MessageType,
    Session,
    Welcome,
    encode_payload,
)

from .test_fuzz import Running

FACT = TypeSignature("Fact")
HIDDEN = "the server's repository could not do that; see its log"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Repository, Client]]:
    repo = Repository.init(tmp_path / "served")
    for i in range(10):
        repo.add(f"memory {i}: deployments run python {i}", "Fact", relevance=i / 10)
    repo.commit("memories")
    running = Running(repo)
    try:
        with Client(f"ctx://127.0.0.1:{running.server.port}") as client:
            yield repo, client
    finally:
        running.stop()
        repo.close()


def push_locally(
    repo: Repository,
    atoms: Iterable[MemoryAtom] = (),
    *,
    remove: Iterable[str] = (),
    expect_head: str | None = None,
) -> str:
    """What PUSH does on the server, called in process (all or nothing)."""
    with repo.transaction():
        repo.stage(add=atoms, remove=remove)
        if expect_head is None:
            return repo.commit("Pushed over the wire", author="remote")
        return repo.commit("Pushed over the wire", author="remote", expect_head=expect_head)


def same_failure(
    local: Callable[[], object], remote: Callable[[], object], expected: type[ContextFSError]
) -> RemoteError:
    """Run both; they must fail with ``expected``, the remote one also a RemoteError."""
    with pytest.raises(expected) as here:
        local()
    with pytest.raises(RemoteError) as there:  # except RemoteError still catches it
        remote()
    mine, theirs = here.value, there.value
    assert type(mine) is expected
    assert isinstance(theirs, expected)
    assert type(theirs).library is expected
    assert theirs.error == expected.__name__
    assert theirs.code == code_for(mine)
    assert theirs.exit_code == mine.exit_code
    if not isinstance(mine, StoreError):  # store failures keep their message on the server
        assert theirs.message == str(theirs) == str(mine)
    return theirs


def test_unknown_revisions(served: tuple[Repository, Client]) -> None:
    repo, client = served
    same_failure(lambda: repo.context("nope"), lambda: client.expand("nope"), UnknownRevisionError)
    same_failure(
        lambda: list(repo.log(["nope"], limit=5)),
        lambda: client.log("nope", limit=5),
        UnknownRevisionError,
    )
    same_failure(
        lambda: repo.search("python", revision="nope"),
        lambda: client.query("python", revision="nope"),
        UnknownRevisionError,
    )
    same_failure(
        lambda: list(repo.stream("nope")),
        lambda: list(client.stream("nope")),
        UnknownRevisionError,
    )
    raised = same_failure(
        lambda: repo.session_payload("nope"), lambda: client.session("nope"), UnknownRevisionError
    )
    assert raised.code == ErrorCode.NOT_FOUND
    client.ping()  # the connection goes on


def test_an_ambiguous_prefix(served: tuple[Repository, Client]) -> None:
    repo, client = served
    by_prefix: dict[str, str] = {}
    for n in range(5000):
        text = f"note {n}"
        prefix = atom_digest(FACT, text).hex()[:4]
        if prefix in by_prefix:
            break
        by_prefix[prefix] = text
    repo.add(by_prefix[prefix], "Fact")
    repo.add(text, "Fact")
    head = repo.commit("two memories with one prefix")
    same_failure(
        lambda: push_locally(repo, remove=[prefix]),
        lambda: client.push(remove=[prefix]),
        AmbiguousRevisionError,
    )
    assert repo.head() == head


def test_invalid_input(served: tuple[Repository, Client]) -> None:
    repo, client = served
    same_failure(lambda: repo.search(""), lambda: client.query(""), InvalidInputError)
    same_failure(
        lambda: repo.context(budget=-1), lambda: client.expand(budget=-1), InvalidInputError
    )


def test_malformed_nested_values_are_explained_without_python_internals(
    served: tuple[Repository, Client],
) -> None:
    """Issue 19, hole 9: the error once read "'int' object has no attribute 'get'"."""
    _, client = served
    asyncio_client = client._async  # the raw request: no client-side checks in the way
    for request, expected in (
        (Expand(context={"delta_atoms": [5]}), "CompressedContext: a field has the wrong type"),
        (
            Expand(context={"delta_atoms": [{"type_sig": {}, "content": "x"}]}),
            "CompressedContext: it lacks 'name'",
        ),
        (Session(previous={"version": 1, "commit": 5}), "not a turn state: a field has the wrong"),
        (Session(previous={"version": 1, "commit": "x"}), "not a turn state: it lacks 'budget'"),
    ):
        with pytest.raises(InvalidInputError) as caught:
            client._run(asyncio_client._call(request, ExpandResponse))
        message = str(caught.value)
        assert expected in message, message
        assert "object" not in message
        assert "attribute" not in message


def test_a_payload_that_breaks_its_schema_is_invalid_input_by_its_code(
    served: tuple[Repository, Client],
) -> None:
    """The connection refuses it before any handler: the ERROR names no class."""
    repo, client = served
    with pytest.raises(InvalidInputError):
        repo.context(format="yaml")  # type: ignore[arg-type]
    with pytest.raises(RemoteError) as caught:
        client.expand(format="yaml")
    assert isinstance(caught.value, InvalidInputError)
    assert caught.value.error is None
    assert (caught.value.code, caught.value.exit_code) == (ErrorCode.INVALID, 5)


def test_a_conflict_and_nothing_to_do(served: tuple[Repository, Client]) -> None:
    repo, client = served
    head = repo.head()
    atom = MemoryAtom("pushed against a stale head", FACT)
    same_failure(
        lambda: push_locally(repo, [atom], expect_head="ab" * 32),
        lambda: client.push([atom], expect_head="ab" * 32),
        ConcurrentUpdateError,
    )
    raised = same_failure(lambda: push_locally(repo), lambda: client.push(), NothingToDoError)
    assert raised.code == ErrorCode.NOTHING_TO_DO
    assert repo.head() == head
    with pytest.raises(ConflictError):  # caught by its family, as a local one is
        client.push([atom], expect_head="ab" * 32)


def test_a_damaged_store(served: tuple[Repository, Client]) -> None:
    repo, client = served
    assert isinstance(repo.store, SqliteStore)
    atom_id = next(iter(repo.store.iter_objects("atom")))[0]
    with repo.store.connection(write=True) as conn:
        conn.execute("UPDATE objects SET data = ? WHERE id = ?", (b"\xc1", atom_id))
    raised = same_failure(lambda: repo.context(), lambda: client.expand(), CorruptObjectError)
    assert raised.message == HIDDEN  # the class travels, the message (paths, bytes) does not
    assert (raised.code, raised.exit_code) == (ErrorCode.STORE, 8)


def test_the_async_client_raises_the_same_classes(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "served")

    async def main() -> None:
        server = Server(repo, token="secret")
        await server.start()
        url = f"ctx://127.0.0.1:{server.port}"
        try:
            with pytest.raises(RemoteError) as refused:
                await AsyncClient.connect(url, token="wrong")
            assert isinstance(refused.value, PermissionDeniedError)  # as a forbidden request
            assert (refused.value.code, refused.value.exit_code) == (ErrorCode.UNAUTHORISED, 10)
            client = await AsyncClient.connect(url, token="secret")
            try:
                with pytest.raises(UnknownRevisionError) as unknown:
                    await client.log("nope")
                assert isinstance(unknown.value, RemoteError)
                with pytest.raises(NothingToDoError):
                    await client.push()
            finally:
                await client.aclose()
        finally:
            await server.aclose()

    try:
        asyncio.run(main())
    finally:
        repo.close()


def test_the_cli_exits_as_it_does_locally(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path)
    repo.add("a memory about python", "Fact")
    repo.commit("one")
    running = Running(repo)
    url = f"ctx://127.0.0.1:{running.server.port}"
    try:
        for args, code in ((["log", "nope"], 4), (["search", " "], 5)):
            local = CliRunner().invoke(cli, ["--repo", str(tmp_path), *args])
            remote = CliRunner().invoke(cli, [*args, "--remote", url])
            assert (local.exit_code, remote.exit_code) == (code, code)
            assert remote.stderr == local.stderr
            assert remote.stderr.startswith("error: ")
            assert remote.stderr.count("\n") == 1
    finally:
        running.stop()
        repo.close()


# -- peers that name no class, or one this client does not know ------------------------


class FixedAnswer:
    """A peer on 127.0.0.1 that welcomes a client and answers every request with one ERROR.

    It stands in for a server older than the ``error`` field (none sent) or
    newer than this client (a name it does not know): raw frames, real sockets.
    """

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = msgspec.msgpack.encode(payload)
        self.listener: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.listener = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"ctx://127.0.0.1:{self.listener.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.listener is not None
        self.listener.close()
        await self.listener.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = FrameReader()
        welcome = Welcome(
            version=1, server="fixed", max_frame=1 << 20, window=1 << 20, max_streams=8
        )
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                frames.receive(data)
                while (frame := frames.next_frame()) is not None:
                    if frame.type == MessageType.HELLO:
                        answer = encode_frame(MessageType.WELCOME, 0, encode_payload(welcome))
                    else:
                        answer = encode_frame(MessageType.ERROR, frame.stream, self.payload)
                    writer.write(answer)
                    await writer.drain()
        writer.close()


@pytest.mark.parametrize(
    ("payload", "family"),
    [
        ({"code": 9, "message": "unknown revision 'nope'"}, RevisionError),
        ({"code": 9, "message": "m", "error": "UnknownRevisionError"}, UnknownRevisionError),
        ({"code": 9, "message": "m", "error": "RevisionNotFoundError"}, RevisionError),
        ({"code": 5, "message": "m", "error": "__import__('os').system('x')"}, InvalidInputError),
        ({"code": 10, "message": "m", "error": "UnknownRevisionError"}, ConflictError),
        ({"code": 11, "message": "m", "hint": "a key from a later version"}, NothingToDoError),
        ({"code": 17, "message": "m", "error": "DiskFullError"}, StoreError),
        ({"code": 16, "message": "m"}, VerificationError),
        ({"code": 13, "message": "m", "error": "InvalidInputError"}, None),
        ({"code": 99, "message": "a code from a later version"}, None),
    ],
)
def test_the_client_falls_back_on_the_family_of_the_code(
    payload: dict[str, Any], family: type[ContextFSError] | None
) -> None:
    async def main() -> RemoteError:
        async with FixedAnswer(payload) as url:
            client = await AsyncClient.connect(url)
            try:
                with pytest.raises(RemoteError) as caught:
                    await client.log("nope")
            finally:
                await client.aclose()
        return caught.value

    raised = asyncio.run(main())
    assert type(raised).library is family
    if family is None:
        assert type(raised) is RemoteError
    else:
        assert isinstance(raised, family)
    assert raised.exit_code == (1 if family is None else family.exit_code)
    assert (raised.code, raised.message, raised.error) == (
        payload["code"],
        payload["message"],
        payload.get("error"),
    )
