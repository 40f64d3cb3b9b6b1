"""Real processes on loopback: ``pinbridge run`` and ``pinbridge emulator`` as subprocesses.

A test asks the ``stack`` fixture for an emulator and a pinbridge; both run as
``python -m pinbridge ...`` in the test's own folder (so no stray ``pinbridge.toml`` is read),
with the database, the destination and the write keys given through the environment, as an
operator would. Every process started is killed at teardown, whatever the test did.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import msgspec
import pytest

ACCOUNT = "549755885175"
TOKEN = "e2e-token"
WRITE_KEY = "e2e-write-key"
#: Seconds a process gets to answer its first request.
START_TIMEOUT = 20.0


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Any, *, timeout: float, interval: float = 0.1, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


class Process:
    """One subprocess with its output in a log file; ``kill()`` is SIGKILL, always safe."""

    def __init__(self, name: str, args: list[str], *, cwd: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log = cwd / f"{name}.log"
        with self.log.open("ab") as out:
            out.write(f"--- {' '.join(args)}\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL (``kill -9``) and reap."""
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def tail(self, lines: int = 40) -> str:
        """The end of the process's output, for failure messages."""
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def wait_ready(self, url: str) -> None:
        """Wait until ``GET url`` answers 200; fail with the log if the process exits first."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if not self.alive():
                pytest.fail(f"{self.name} exited with {self.popen.returncode}:\n{self.tail()}")
            try:
                if httpx2.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name} did not answer {url}:\n{self.tail()}")
            time.sleep(0.05)


class Emulator:
    """A ``pinbridge emulator`` subprocess on a fixed port (it can be restarted on it)."""

    def __init__(self, stack: Stack, port: int) -> None:
        self.stack = stack
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: Process | None = None
        self.http = stack.client(base_url=self.url, timeout=30.0)

    def start(self, *flags: str) -> Emulator:
        args = [sys.executable, "-m", "pinbridge", "emulator", "--port", str(self.port)]
        self.process = self.stack.spawn("emulator", [*args, *flags])
        self.process.wait_ready(f"{self.url}/_emulator/stats")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()

    def stats(self) -> dict[str, Any]:
        """``GET /_emulator/stats``."""
        return self.http.get("/_emulator/stats").raise_for_status().json()

    def events(self, since: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Recorded events of the test's ad account after ``since``, and the last sequence."""
        answer = self.http.get(
            "/_emulator/events", params={"ad_account_id": ACCOUNT, "since": since}
        ).raise_for_status()
        body = msgspec.json.decode(answer.content)
        return body["events"], body["last_seq"]

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """``POST /_emulator/faults`` with the given changes."""
        return self.http.post("/_emulator/faults", json=faults).raise_for_status().json()


class EventLog:
    """Every event the emulator recorded, fetched incrementally: event_id → times received."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.last_seq = 0
        self.received: dict[str, int] = {}
        self.records: list[dict[str, Any]] = []

    def refresh(self) -> EventLog:
        records, self.last_seq = self.emulator.events(self.last_seq)
        for record in records:
            event_id = record["event"]["event_id"]
            self.received[event_id] = self.received.get(event_id, 0) + 1
        self.records.extend(records)
        return self

    def missing(self, event_ids: set[str]) -> set[str]:
        """Which of ``event_ids`` have not arrived (after a refresh)."""
        self.refresh()
        return {e for e in event_ids if e not in self.received}

    def resent(self) -> int:
        """Events received more than once: the number of extra copies."""
        return sum(count - 1 for count in self.received.values() if count > 1)


class Pinbridge:
    """A ``pinbridge run`` subprocess on a fixed port and database; restartable."""

    def __init__(self, stack: Stack, port: int, env: dict[str, str], config: Path | None) -> None:
        self.stack = stack
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = env
        self.config = config
        self.process: Process | None = None
        self.http = stack.client(base_url=self.url, auth=(WRITE_KEY, ""), timeout=30.0)

    def _config_args(self) -> list[str]:
        return ["--config", str(self.config)] if self.config else []

    def start(self) -> Pinbridge:
        args = [sys.executable, "-m", "pinbridge", "run", "--port", str(self.port)]
        self.process = self.stack.spawn("pinbridge", [*args, *self._config_args()], self.env)
        self.process.wait_ready(f"{self.url}/healthz")
        return self

    def kill(self) -> None:
        """``kill -9`` the running process."""
        if self.process is not None:
            self.process.kill()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run another ``pinbridge`` command on the same database and configuration."""
        command = [sys.executable, "-m", "pinbridge", *args, *self._config_args()]
        env = {**self.env, "COLUMNS": "200"}
        return subprocess.run(
            command, cwd=self.stack.folder, env=env, capture_output=True, text=True, timeout=60
        )

    def status(self) -> tuple[int, dict[str, dict[str, str]]]:
        """``pinbridge status``: its exit code and its table, destination → column → value."""
        done = self.cli("status")
        assert done.returncode in (0, 2, 3), done.stderr
        rows: dict[str, dict[str, str]] = {}
        header: list[str] = []
        for line in done.stdout.splitlines():
            cells = [c.strip() for c in line.strip().strip("│┃").split("│" if "│" in line else "┃")]
            if len(cells) < 7:
                continue
            if cells[0] == "destination":
                header = cells
            elif header:
                rows[cells[0]] = dict(zip(header, cells, strict=True))
        return done.returncode, rows

    def post(self, path: str, body: Any, **kwargs: Any) -> httpx2.Response:
        """POST JSON to the collector with the test's write key."""
        return self.http.post(path, json=body, **kwargs)


class Stack:
    """The processes of one test, all killed at teardown."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.processes: list[Process] = []
        self.clients: list[httpx2.Client] = []
        self.base_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PINBRIDGE_", "PINTEREST_", "COV_", "PYTEST_"))
        }

    def client(self, **options: Any) -> httpx2.Client:
        """An HTTP client closed at teardown."""
        client = httpx2.Client(**options)
        self.clients.append(client)
        return client

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Process:
        process = Process(name, args, cwd=self.folder, env=env or self.base_env)
        self.processes.append(process)
        return process

    def emulator(self, *flags: str, port: int | None = None) -> Emulator:
        """Start an emulator (accepting ``TOKEN`` for ``ACCOUNT`` unless flags say otherwise)."""
        if not any(f == "--token" for f in flags):
            flags = ("--token", f"{TOKEN}={ACCOUNT}", *flags)
        return Emulator(self, port or free_port()).start(*flags)

    def pinbridge(
        self, emulator: Emulator, *, config: str = "", token: str = TOKEN, start: bool = True
    ) -> Pinbridge:
        """A pinbridge delivering to ``emulator``; ``config`` is pinbridge.toml's text."""
        path = None
        if config:
            path = self.folder / "pinbridge-e2e.toml"
            path.write_text(config)
        env = {
            **self.base_env,
            "PINBRIDGE_DATABASE_URL": f"sqlite:///{self.folder / 'pb.db'}",
            "PINTEREST_AD_ACCOUNT_ID": ACCOUNT,
            "PINTEREST_ACCESS_TOKEN": token,
            "PINTEREST_API_BASE": f"{emulator.url}/v5",
            "PINBRIDGE_WRITE_KEYS": f"{WRITE_KEY},second-key",
        }
        pinbridge = Pinbridge(self, free_port(), env, path)
        return pinbridge.start() if start else pinbridge

    def close(self) -> None:
        for process in self.processes:
            process.kill()
        for client in self.clients:
            client.close()


@contextlib.contextmanager
def running_stack(folder: Path) -> Iterator[Stack]:
    """A stack whose processes are all killed on leaving, whatever happened."""
    stack = Stack(folder)
    try:
        yield stack
    finally:
        stack.close()


@pytest.fixture(name="stack")
def _stack(tmp_path: Path) -> Iterator[Stack]:
    """Starts emulators and pinbridges for one test; kills them all at the end."""
    with running_stack(tmp_path) as stack:
        yield stack
