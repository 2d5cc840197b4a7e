"""TLS: real handshakes with certificates made here, refusals in one line, the exposure rule."""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from contextfs import Repository
from contextfs.client import Client, ConnectionLostError, parse_url
from contextfs.errors import InvalidInputError
from contextfs.remote import sync
from contextfs.server import Limits, Server
from contextfs.tls import MIN_VERSION, client_context, server_context

from .test_fuzz import Running


@dataclass(frozen=True)
class Certificates:
    """A CA, and a server certificate it signed for 127.0.0.1 and localhost."""

    ca: Path
    cert: Path
    key: Path
    other_ca: Path
    #: Key and certificate in one file, for example.org only.
    elsewhere: Path


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    folder = tmp_path_factory.mktemp("tls")
    ca, other = trustme.CA(), trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    paths = Certificates(
        folder / "ca.pem",
        folder / "cert.pem",
        folder / "key.pem",
        folder / "o.pem",
        folder / "e.pem",
    )
    ca.issue_cert("example.org").private_key_and_cert_chain_pem.write_to_path(str(paths.elsewhere))
    ca.cert_pem.write_to_path(str(paths.ca))
    other.cert_pem.write_to_path(str(paths.other_ca))
    for blob in issued.cert_chain_pems:
        blob.write_to_path(str(paths.cert), append=True)
    issued.private_key_pem.write_to_path(str(paths.key))
    return paths


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    repo = Repository.init(tmp_path / "served")
    repo.add("Deployments happen on Fridays", "Fact")
    repo.commit("first")
    yield repo
    repo.close()


@pytest.fixture
def tls_server(repo: Repository, certs: Certificates) -> Iterator[Server]:
    running = Running(repo, tls=server_context(certs.cert, certs.key))
    yield running.server
    running.stop()


def test_a_client_that_trusts_the_ca_talks_over_tls(
    tls_server: Server, certs: Certificates, repo: Repository
) -> None:
    assert tls_server.url.startswith("ctxs://127.0.0.1:")
    with Client(tls_server.url, ca=certs.ca) as client:
        client.ping()
        assert [e.message for e in client.log()] == ["first"]
        assert client.refs()["HEAD"] == "ref: refs/heads/main"


def test_the_ca_comes_from_the_environment_too(
    tls_server: Server, certs: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTEXTFS_CA", str(certs.ca))
    with Client(tls_server.url) as client:
        client.ping()


def test_a_certificate_from_an_unknown_ca_is_refused(
    tls_server: Server, certs: Certificates
) -> None:
    for ca in (certs.other_ca, None):  # another CA; the system's store
        with Client(tls_server.url, ca=ca) as client, pytest.raises(ConnectionLostError) as caught:
            client.ping()
        assert str(caught.value).startswith(f"cannot trust {tls_server.url}: ")
        assert "--ca" in str(caught.value)


def test_a_certificate_for_another_host_is_refused(repo: Repository, certs: Certificates) -> None:
    running = Running(repo, tls=server_context(certs.elsewhere, certs.elsewhere))
    try:
        with (
            Client(running.server.url, ca=certs.ca) as client,
            pytest.raises(ConnectionLostError) as caught,
        ):
            client.ping()
        assert "cannot trust" in str(caught.value)
        assert "127.0.0.1" in str(caught.value)
    finally:
        running.stop()


def test_a_plain_client_is_refused_cleanly_and_the_server_goes_on(
    tls_server: Server, certs: Certificates
) -> None:
    plain = tls_server.url.replace("ctxs://", "ctx://")
    with Client(plain) as client, pytest.raises(ConnectionLostError) as caught:
        client.ping()
    assert "ctxs://" in str(caught.value)
    with Client(tls_server.url, ca=certs.ca) as client:
        client.ping()


def test_a_tls_client_against_a_plain_server_is_refused_cleanly(
    repo: Repository, certs: Certificates
) -> None:
    running = Running(repo)
    try:
        url = f"ctxs://127.0.0.1:{running.server.port}"
        with Client(url, ca=certs.ca) as client, pytest.raises(ConnectionLostError) as caught:
            client.ping()
        assert "is it serving TLS?" in str(caught.value)
    finally:
        running.stop()


def test_nothing_older_than_tls_1_2_is_spoken(certs: Certificates) -> None:
    assert server_context(certs.cert, certs.key).minimum_version == MIN_VERSION
    assert client_context(certs.ca).minimum_version == MIN_VERSION
    assert ssl.TLSVersion.TLSv1_2 <= MIN_VERSION


def test_a_clone_and_a_push_go_over_tls(
    tls_server: Server, certs: Certificates, tmp_path: Path
) -> None:
    clone = sync.clone(tls_server.url, tmp_path / "copy", ca=certs.ca)
    try:
        clone.add("Learnt by the clone", "Fact")
        clone.commit("second")
        pushed = sync.push(clone, ca=certs.ca)
        assert pushed.updated
        assert sync.remotes(clone) == {"origin": tls_server.url}
    finally:
        clone.close()
    assert [c.commit.message for c in tls_server.repo.log()] == ["second", "first"]


def test_bad_certificate_files_are_refused_in_one_line(certs: Certificates, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(InvalidInputError, match="no such TLS file"):
        server_context(tmp_path / "missing.pem", certs.key)
    with pytest.raises(InvalidInputError, match="cannot use TLS certificate"):
        server_context(junk, certs.key)
    with pytest.raises(InvalidInputError, match="cannot use TLS certificate"):
        server_context(certs.cert, certs.other_ca)  # not the key
    with pytest.raises(InvalidInputError, match="no such CA file"):
        client_context(tmp_path / "missing.pem")
    with pytest.raises(InvalidInputError, match="cannot read CA file"):
        client_context(junk)


def test_serving_beyond_this_machine_needs_a_token_and_tls(
    repo: Repository, certs: Certificates
) -> None:
    with pytest.raises(InvalidInputError, match="needs a token"):
        Server(repo, host="0.0.0.0")
    with pytest.raises(InvalidInputError, match="without TLS would send tokens in clear text"):
        Server(repo, host="0.0.0.0", token="t")
    insecure = Server(repo, host="0.0.0.0", token="t", insecure=True)
    assert insecure.warning is not None
    assert "clear text" in insecure.warning
    secure = Server(repo, host="0.0.0.0", token="t", tls=server_context(certs.cert, certs.key))
    assert secure.warning is None
    assert Server(repo).warning is None  # loopback: neither needed


def test_urls_say_whether_tls_is_spoken() -> None:
    assert parse_url("ctxs://example.org").tls
    assert not parse_url("ctx://example.org:9").tls
    assert str(parse_url("ctxs://[::1]:8")) == "ctxs://[::1]:8"
    with pytest.raises(InvalidInputError, match="ctxs://"):
        parse_url("https://example.org")


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "contextfs.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_contextfs_serve_with_tls_and_the_cli_clients(tmp_path: Path, certs: Certificates) -> None:
    folder = tmp_path / "repo"
    with Repository.init(folder) as repo:
        repo.add("Served over TLS", "Fact")
        repo.commit("first")
    env = {**os.environ, "CONTEXTFS_DIR": str(folder / ".contextfs")}
    argv = [sys.executable, "-m", "contextfs.cli.main", "serve", "--port", "0"]
    server = subprocess.Popen(
        [*argv, "--tls-cert", str(certs.cert), "--tls-key", str(certs.key)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        found = re.fullmatch(r"serving (ctxs://127\.0\.0\.1:\d+)\n", server.stderr.readline())
        assert found
        url = found.group(1)
        away = {k: v for k, v in os.environ.items() if k != "CONTEXTFS_DIR"}
        searched = _cli("search", "TLS", "--remote", url, "--ca", str(certs.ca), env=away)
        assert searched.returncode == 0, searched.stderr
        assert "Served over TLS" in searched.stdout
        untrusted = _cli("log", "--remote", url, env=away)
        assert untrusted.returncode != 0
        assert untrusted.stderr.startswith(f"error: cannot trust {url}")
        assert len(untrusted.stderr.splitlines()) == 1
        cloned = _cli("clone", url, str(tmp_path / "copy"), "--ca", str(certs.ca), env=away)
        assert cloned.returncode == 0, cloned.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        _, rest = server.communicate(timeout=20)
    assert server.returncode == 0, rest
    with Repository.open(tmp_path / "copy") as copy:
        assert [m.content for m in copy.snapshot()] == ["Served over TLS"]  # type: ignore[union-attr]


def test_contextfs_serve_refuses_bad_tls_options_in_one_line(
    tmp_path: Path, certs: Certificates
) -> None:
    folder = tmp_path / "repo"
    Repository.init(folder).close()
    env = {**os.environ, "CONTEXTFS_DIR": str(folder / ".contextfs")}
    cases = [
        (["--tls-cert", str(tmp_path / "none.pem")], "no such TLS file"),
        (["--tls-cert", str(certs.cert), "--tls-key", str(certs.ca)], "cannot use TLS"),
        (["--host", "0.0.0.0", "--token", "t"], "without TLS would send tokens"),
    ]
    for options, expected in cases:
        done = _cli("serve", "--port", "0", *options, env=env)
        assert done.returncode != 0
        assert expected in done.stderr
        assert len(done.stderr.splitlines()) == 1, done.stderr


def test_silent_sockets_cannot_crowd_out_a_tls_client(
    repo: Repository, certs: Certificates
) -> None:
    """A connection still in its TLS handshake counts against the limits (a review found
    that TLS ones escaped them, each held for the whole handshake timeout)."""
    limits = Limits(max_connections=4, max_pending=2, handshake_timeout=30.0)
    running = Running(repo, tls=server_context(certs.cert, certs.key), limits=limits)
    stalled = [socket.create_connection(("127.0.0.1", running.server.port)) for _ in range(40)]
    try:
        with Client(running.server.url, ca=certs.ca) as client:
            client.ping()
        assert running.server.connections <= limits.max_connections
    finally:
        for sock in stalled:
            sock.close()
        running.stop()


def test_a_ca_for_a_plain_url_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="a CA file is for ctxs:// servers"):
        Client("ctx://127.0.0.1:9", ca="ca.pem")
