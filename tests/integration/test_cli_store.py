"""Commands run by hand against a database they cannot reach: one line, quickly, exit 4."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

PINBRIDGE = [sys.executable, "-m", "pinbridge"]


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(name="feed")
def _feed(tmp_path):
    path = tmp_path / "feed.csv"
    path.write_text(
        "id,title,description,link,image_link,price,availability\n"
        "p1,Mug,A mug,https://s/p1,https://s/p1.jpg,3 USD,in stock\n"
    )
    return path


@pytest.fixture(name="orders")
def _orders(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("email,order_id,value,currency,time\na@b.co,o1,5,USD,2026-01-01\n")
    return path


COMMANDS = [
    ["status"],
    ["status", "--json"],
    ["quality", "--no-eqs"],
    ["replay"],
    ["forget", "--email", "a@b.co"],
    ["report", "attribution"],
    ["migrate"],
    ["catalog", "load", "{feed}"],
    ["import", "{orders}"],
]


class TestUnreachableDatabase:
    @pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
    def test_one_line_and_exit_4(self, command, tmp_path, feed, orders):
        """Nothing listens on the port: the command names the database (password masked)
        and libpq's reason on one line, within seconds, and exits 4."""
        url = f"postgresql://u:pgSECRET@127.0.0.1:{_unused_port()}/db?password=pgSECRET"
        args = [part.format(feed=feed, orders=orders) for part in command]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PINBRIDGE_")}
        env.update(PINBRIDGE_DATABASE_URL=url, LC_ALL="C")
        started = time.monotonic()
        done = subprocess.run(
            [*PINBRIDGE, *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
        elapsed = time.monotonic() - started
        assert done.returncode == 4, done.stderr
        assert elapsed < 10, elapsed
        [line] = [line for line in done.stderr.splitlines() if line.startswith("Error")]
        assert "Traceback" not in done.stderr and "pgSECRET" not in done.stderr + done.stdout
        assert "postgresql://u:***@127.0.0.1:" in line and "password=***" in line
        assert "refused" in line.lower()
