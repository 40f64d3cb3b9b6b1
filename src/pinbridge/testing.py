"""Test helpers shipped with pinbridge: a throw-away PostgreSQL cluster from the system's binaries.

:class:`ThrowawayCluster` runs ``initdb`` and ``pg_ctl`` (Debian: ``/usr/lib/postgresql/<v>/bin``)
on a fresh folder and a free port on loopback, and removes everything when stopped. Nothing
needs to be running beforehand: ``make test`` and the benchmarks start their own server.

PostgreSQL refuses to run as root; when the tests run as root (CI), the cluster runs as the
``postgres`` user, which Debian's package creates.

Why not pytest-postgresql's process fixture: it runs ``initdb`` as the current user, which
fails as root ("initdb: cannot be run as root"), and CI runs as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Final

__all__ = ["PostgresMissing", "ThrowawayCluster", "find_pg_bin"]

#: Where Debian's postgresql-NN packages put the server programs.
DEBIAN_PG_GLOB: Final = "/usr/lib/postgresql/*/bin"
INSTALL_HINT: Final = (
    "PostgreSQL's server programs (initdb, pg_ctl) were not found: install them with "
    "`apt-get install -y postgresql` (Debian), or put their folder on PATH"
)


class PostgresMissing(RuntimeError):
    """No PostgreSQL server programs on this machine."""


def find_pg_bin() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: Debian's newest, else ``PATH``'s."""
    found = sorted(
        (Path(p) for p in glob.glob(DEBIAN_PG_GLOB) if (Path(p) / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PostgresMissing(INSTALL_HINT)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThrowawayCluster:
    """A private PostgreSQL server on loopback; ``stop()`` removes its data.

    Args:
        durable: keep fsync and synchronous commit on (benchmarks); tests turn them off.
        settings: extra ``-c name=value`` server settings.
    """

    def __init__(self, *, durable: bool = False, settings: dict[str, str] | None = None) -> None:
        self.bin = find_pg_bin()
        self.port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="pinbridge-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self._durable = durable
        self._settings = {"max_connections": "300", **(settings or {})}
        self._as_postgres = os.geteuid() == 0

    def url(self, database: str = "postgres") -> str:
        """A libpq URL for ``database`` on this server (user ``postgres``, trust auth)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        command = [str(a) for a in args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")

    def start(self) -> ThrowawayCluster:
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        options = [
            f"-p {self.port}",
            f"-k {self.folder}",
            "-c listen_addresses=127.0.0.1",
            *(f"-c {k}={v}" for k, v in self._settings.items()),
        ]
        if not self._durable:
            options += ["-F", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(
            str(self.bin / "pg_ctl"),
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            " ".join(options),
        )
        return self

    def stop(self) -> None:
        """Stop the server (immediately) and delete its folder."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(str(self.bin / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> ThrowawayCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
