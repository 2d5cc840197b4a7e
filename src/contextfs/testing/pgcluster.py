"""A throwaway PostgreSQL cluster on 127.0.0.1, for tests and benchmarks.

:func:`start_cluster` runs ``initdb`` in a new temporary directory and starts
``postgres`` listening on loopback only, on a free port, with its socket in
that directory. PostgreSQL refuses to run as root, so when this process is
root the server runs as the unprivileged ``nobody`` account (the directory is
handed to it). :meth:`Cluster.stop` stops the server and deletes everything.

The binaries are found through ``PG_BINDIR``, then ``pg_config --bindir``,
then the newest ``/usr/lib/postgresql/<version>/bin`` (Debian's layout), then
``PATH``. The library never imports this module.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

#: The superuser the cluster is created with (no password: ``trust`` on loopback only).
SUPERUSER: Final = "contextfs"
#: The database made for tests and benchmarks.
DATABASE: Final = "contextfs"
#: The account a root process runs the server as.
UNPRIVILEGED: Final = "nobody"


class ClusterError(RuntimeError):
    """The cluster could not be made or started; the message says which step failed."""


def find_bindir() -> Path | None:
    """Return the folder holding ``initdb``, ``pg_ctl`` and ``postgres``, or None."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            )
            candidates.append(Path(out.stdout.strip()))
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(debian)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for folder in candidates:
        if all((folder / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Cluster:
    """A running throwaway cluster; :meth:`url` names a database or schema in it."""

    bindir: Path
    root: Path
    port: int
    _runner: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def data(self) -> Path:
        """The cluster's data directory."""
        return self.root / "data"

    def url(self, *, database: str = DATABASE, schema: str | None = None) -> str:
        """A libpq URL for ``database``; with ``schema``, tables go in that schema."""
        url = f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"
        if schema is not None:
            url += "?options=" + quote(f"-csearch_path={schema}", safe="")
        return url

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory; safe to call twice."""
        if not self.root.exists():
            return
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                capture_output=True,
                timeout=60,
                check=False,
                **self._runner,
            )
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(*, durable: bool = False, bindir: Path | None = None) -> Cluster:
    """Make and start a cluster on 127.0.0.1 in a new temporary directory.

    Args:
        durable: keep PostgreSQL's defaults (``fsync``, synchronous commit),
            as benchmarks must; tests turn them off, since nothing they check
            depends on surviving a power cut.
        bindir: where the server binaries are (default: :func:`find_bindir`).

    Raises:
        ClusterError: no binaries, or ``initdb`` or the server failed (with its log).
    """
    bindir = bindir or find_bindir()
    if bindir is None:
        raise ClusterError(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found;"
            " install them (Debian: apt-get install postgresql) or set PG_BINDIR"
        )
    root = Path(tempfile.mkdtemp(prefix="contextfs-pg-"))
    runner: dict[str, Any] = {}
    if os.geteuid() == 0:
        shutil.chown(root, user=UNPRIVILEGED)
        runner = {"user": UNPRIVILEGED, "group": _group_of(UNPRIVILEGED), "extra_groups": []}
    cluster = Cluster(bindir, root, free_port(), runner)
    settings = [
        "listen_addresses=127.0.0.1",
        f"port={cluster.port}",
        f"unix_socket_directories={root}",
        "max_connections=200",
    ]
    if not durable:
        settings += ["fsync=off", "synchronous_commit=off", "full_page_writes=off"]
    options = " ".join(f"-c {item}" for item in settings)
    steps = [
        [
            str(bindir / "initdb"),
            "-D",
            str(cluster.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ],
        [
            str(bindir / "pg_ctl"),
            "-D",
            str(cluster.data),
            "-l",
            str(root / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        ],
        [
            str(bindir / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(cluster.port),
            "-U",
            SUPERUSER,
            DATABASE,
        ],
    ]
    env = {**os.environ, "PGTZ": "UTC", "LC_ALL": "C"}
    for command in steps:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=root,
            env=env,
            **runner,
        )
        if done.returncode != 0:
            log = root / "server.log"
            detail = (done.stderr or done.stdout).strip()
            if log.exists():
                detail += "\n" + log.read_text(errors="replace")[-2000:]
            cluster.stop()
            raise ClusterError(f"{Path(command[0]).name} failed: {detail}")
    return cluster


def _group_of(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_gid
