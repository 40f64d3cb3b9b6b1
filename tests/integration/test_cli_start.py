"""What a new user meets first: which commands need Pinterest's tokens, what `run` and `worker`
print when they start or cannot, and which commands may create the database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pinbridge.cli import main

PINBRIDGE = [sys.executable, "-m", "pinbridge"]
MISSING = "destination 'shop': environment variable PINTEREST_TOKEN_SHOP is not set"
CONFIG = """
[server]
write_keys = ["wk_0123456789abcdef"]

[store]
url = "sqlite:///{db}"

[[destinations]]
name = "shop"
ad_account_id = "111"
token_env = "PINTEREST_TOKEN_SHOP"
api_base = "http://127.0.0.1:{port}/v5"
"""
EVENT = (
    '{"type": "track", "event": "Order Completed", "properties": {"order_id": "1"}, '
    '"context": {"traits": {"email": "a@example.com"}}}\n'
)


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(name="config")
def _config(tmp_path: Path) -> Path:
    """A destination whose token comes from PINTEREST_TOKEN_SHOP, which is not set."""
    path = tmp_path / "pinbridge.toml"
    path.write_text(CONFIG.format(db=tmp_path / "pb.db", port=unused_port()))
    return path


@pytest.fixture(name="database")
def _database(config: Path, tmp_path: Path) -> Path:
    """The configured SQLite database, created by `pinbridge migrate`."""
    result = CliRunner().invoke(main, ["migrate", "--config", str(config)])
    assert result.exit_code == 0, result.output
    return tmp_path / "pb.db"


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env)


def run_briefly(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """A command expected to stop at once (a server that starts instead fails the test)."""
    return subprocess.run(
        [*PINBRIDGE, *args],
        cwd=cwd,
        env=environment(**env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PINBRIDGE_", "PINTEREST_"))}
    return {**env, "LC_ALL": "C", **extra}


@pytest.fixture(name="spawn")
def _spawn(tmp_path: Path) -> Iterator:
    """Start a pinbridge command; it is stopped (SIGTERM, then SIGKILL) at the test's end."""
    started: list[subprocess.Popen[str]] = []

    def spawn(*args: str, **env: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [*PINBRIDGE, *args],
            cwd=tmp_path,
            env=environment(**env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield spawn
    for process in started:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def read_until(process: subprocess.Popen[str], needle: str, timeout: float = 30) -> str:
    """stderr of ``process`` up to the line holding ``needle``."""
    assert process.stderr is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            break
        seen += line
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} never printed; stderr so far:\n{seen}")


class TestTokensOnlyWhereUsed:
    """A destination's token is needed to talk to Pinterest, not to read the store."""

    @pytest.mark.parametrize(
        "args",
        [
            ["status"],
            ["replay"],
            ["forget", "--email", "a@example.com"],
            ["quality", "--no-eqs"],
            ["report", "attribution"],
        ],
        ids=" ".join,
    )
    def test_store_commands_work_without_the_token(self, config, database, args):
        """status, replay, forget, quality --no-eqs and report run with the token unset."""
        result = invoke(*args, "--config", str(config))
        assert result.exit_code == 0, result.output
        assert "PINTEREST_TOKEN_SHOP" not in result.output

    def test_import_works_without_the_token(self, config, database, tmp_path):
        """An import only queues events: it needs no token."""
        crm = tmp_path / "crm.csv"
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 60))
        crm.write_text(f"Order,Email,Purchased\n1,a@example.com,{when}\n")
        result = invoke("import", str(crm), "--map", "time=Purchased", "--config", str(config))
        assert result.exit_code == 0, result.output
        assert "1 accepted" in result.output

    def test_transform_works_without_the_token(self, config):
        """transform is pure: no token, and no database either."""
        result = CliRunner().invoke(main, ["transform", "--config", str(config)], input=EVENT)
        assert result.exit_code == 0, result.output
        assert '"event_name":"checkout"' in result.output

    @pytest.mark.parametrize("args", [["run"], ["worker"], ["quality"]], ids=" ".join)
    def test_commands_that_send_name_the_variable(self, config, database, args):
        """run, worker and quality (asking for the EQS) stop at once, naming the variable."""
        result = invoke(*args, "--config", str(config))
        assert result.exit_code == 1
        assert MISSING in result.output and "Traceback" not in result.output


class TestWorker:
    def test_no_write_keys_needed_and_a_banner(self, config, database, spawn):
        """A worker serves no HTTP: it starts without write keys, and says so in one line
        naming its destinations and the store."""
        config.write_text(config.read_text().replace('write_keys = ["wk_0123456789abcdef"]', ""))
        worker = spawn("worker", "--config", str(config), PINTEREST_TOKEN_SHOP="tok")
        line = read_until(worker, "worker: sending to").splitlines()[-1]
        assert "shop (ad account 111" in line and "write key" not in line
        assert f"store {database} (SQLite)" in line
        assert worker.poll() is None


class TestRun:
    def test_no_sender_with_the_embedded_emulator_is_refused(self, tmp_path):
        """--no-sender with the embedded emulator would accept events nobody delivers."""
        done = run_briefly("run", "--no-sender", "--port", str(unused_port()), cwd=tmp_path)
        assert done.returncode == 2
        assert "--no-sender" in done.stderr and "embedded emulator" in done.stderr
        assert not (tmp_path / "var").exists()

    def test_no_sender_shows_in_the_banner(self, config, database, spawn):
        """With --no-sender the banner says the sender is off."""
        port = str(unused_port())
        run = spawn(
            "run", "--no-sender", "--config", str(config), "--port", port,
            PINTEREST_TOKEN_SHOP="tok",
        )  # fmt: skip
        banner = read_until(run, "destination")
        assert "sender       off" in banner

    def test_banner_shows_the_absolute_store_path(self, tmp_path, spawn):
        """The default store is relative to the working directory: the banner shows where."""
        run = spawn("run", "--port", str(unused_port()))
        banner = read_until(run, "store")
        assert f"store        {tmp_path / 'var' / 'pinbridge.db'} (SQLite)" in banner

    @pytest.mark.parametrize("how", ["flag", "env"])
    def test_busy_port(self, tmp_path, how):
        """A port in use is refused before the banner, naming the ways to choose another."""
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = str(busy.getsockname()[1])
            if how == "flag":
                done = run_briefly("run", "--port", port, cwd=tmp_path)
            else:
                done = run_briefly("run", cwd=tmp_path, PINBRIDGE_PORT=port)
        assert done.returncode == 1
        assert f"port {port} is in use" in done.stderr
        assert "--port, PINBRIDGE_PORT or [server] port" in done.stderr
        assert "collector" not in done.stderr and not (tmp_path / "var").exists()

    def test_port_from_the_environment(self, tmp_path, spawn):
        """PINBRIDGE_PORT and PINBRIDGE_HOST choose the address when no flag does."""
        port = unused_port()
        run = spawn("run", PINBRIDGE_PORT=str(port), PINBRIDGE_HOST="127.0.0.1")
        assert f"on http://127.0.0.1:{port}" in read_until(run, " on http://")


class TestNoNewDatabase:
    """Only run, worker and migrate create the SQLite database."""

    @pytest.mark.parametrize(
        "args",
        [["replay"], ["forget", "--email", "a@example.com"], ["report", "attribution"]],
        ids=" ".join,
    )
    def test_refused_exit_4(self, tmp_path, monkeypatch, args):
        """Run elsewhere than the server's folder, a command names the absolute path it
        looked at, exits 4 and creates nothing."""
        monkeypatch.chdir(tmp_path)
        result = invoke(*args)
        assert result.exit_code == 4, result.output
        assert f"no database at {tmp_path / 'var' / 'pinbridge.db'} yet" in result.output
        assert not (tmp_path / "var").exists()

    def test_import_refused(self, tmp_path, monkeypatch):
        """An import does not fill a new database that no server reads."""
        monkeypatch.chdir(tmp_path)
        crm = tmp_path / "crm.csv"
        crm.write_text("Order,Email,Purchased\n1,a@example.com,2026-01-01\n")
        result = invoke("import", str(crm))
        assert result.exit_code == 4, result.output
        assert "no database at" in result.output and "start `pinbridge run` first" in result.output
        assert not (tmp_path / "var").exists()
        assert not crm.with_name("crm.csv.report.csv").exists()

    def test_migrate_creates_it(self, tmp_path, monkeypatch):
        """migrate creates the database and prints its absolute path."""
        monkeypatch.chdir(tmp_path)
        result = invoke("migrate")
        assert result.exit_code == 0, result.output
        assert f"{tmp_path / 'var' / 'pinbridge.db'} (SQLite): schema version" in result.output
