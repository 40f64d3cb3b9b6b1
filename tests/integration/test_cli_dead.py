"""``pinbridge dead`` and ``pinbridge status`` as an operator reads them: why events were
dead-lettered, and destination names and states intact in 80 columns or a pipe."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from io import StringIO

import msgspec
import pytest
from click.testing import CliRunner
from rich.console import Console

from pinbridge.cli import main
from pinbridge.cli_dead import DeadList, dead_rows, print_dead
from pinbridge.cli_diagnostics import print_status
from pinbridge.diagnostics import status_report
from pinbridge.store import Completion, DeadLetter, PendingEvent, PendingInput, open_store
from tests.integration.test_cli_store import _unused_port
from tests.integration.test_store import _store  # noqa: F401

CONFIG = """
[server]
write_keys = ["wk_0123456789abcdef"]

[store]
url = "{url}"

[[destinations]]
name = "shop"
ad_account_id = "111"
token = "tok-SECRET-1"

[[destinations]]
name = "shop-test"
ad_account_id = "222"
token = "tok-SECRET-2"
test = true
"""

HOUR = 3600.0
BAD_NAME = "Event name [add_to_cart] is not valid for this ad account, check the mapping"
EXPIRED = "expired: Pinterest refuses events older than 7 days (last answer: HTTP 503)"
STOPPED = "Authentication failed. (HTTP 401, code 2)"

#: (event id, destination, reason, hours ago it died): three reasons, two destinations.
LETTERS = [
    ("ord-1", "shop", BAD_NAME, 30.0),
    ("ord-2", "shop", EXPIRED, 5.0),
    ("ord-3", "shop-test", BAD_NAME, 3.0),
    ("ord-4", "shop", BAD_NAME, 1.0),
    ("ord-5", "shop-test", "Invalid value for currency", 0.5),
]


async def _seed(url: str, now: float) -> None:
    """Accept one event per dead letter, then answer each with its reason at its time."""
    store = open_store(url)
    try:
        for event_id, destination, reason, ago in LETTERS:
            event = PendingEvent(
                event_id=event_id,
                event_name="add_to_cart" if reason == BAD_NAME else "checkout",
                event_time=int(now - 40 * HOUR),
                payload=f'{{"event_id":"{event_id}"}}'.encode(),
                destinations=(destination,),
            )
            inputs = [PendingInput(input=b"{}", events=(event,))]
            await store.accept(inputs, now=now - 40 * HOUR, dedup_window=60)
            [claimed] = await store.claim(
                destination, owner="s", limit=1, now=now - ago * HOUR, lease_seconds=60
            )
            done = Completion(claimed.id, "dead", "failed", 400, message=reason)
            await store.complete("s", [done], now=now - ago * HOUR)
    finally:
        await store.aclose()


@pytest.fixture(params=["sqlite", "postgresql"], name="url")
def _url(request, tmp_path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'pb.db'}"


@pytest.fixture(name="run")
def _run(tmp_path, url):
    """``pinbridge ARGS --config …`` on a store holding :data:`LETTERS`, in ``columns``."""
    config = tmp_path / "pinbridge.toml"
    config.write_text(CONFIG.format(url=url))
    asyncio.run(_seed(url, time.time()))

    def run(*args: str, columns: int = 200):
        env = {"COLUMNS": str(columns)}
        return CliRunner().invoke(main, [*args, "--config", str(config)], env=env)

    return run


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return msgspec.json.decode(result.output)


class TestDead:
    def test_lists_newest_first_with_the_reason(self, run):
        """Every dead letter, newest first, with destination, event, status, reason, time."""
        found = _json(run("dead", "--json"))
        assert found["total"] == 5
        rows = found["dead_letters"]
        assert [r["event_id"] for r in rows] == ["ord-5", "ord-4", "ord-3", "ord-2", "ord-1"]
        assert rows[1]["destination"] == "shop" and rows[1]["event_name"] == "add_to_cart"
        assert (rows[1]["http_status"], rows[1]["reason"]) == (400, BAD_NAME)
        assert rows[0]["dead_at"] > rows[1]["dead_at"] > rows[4]["dead_at"]
        assert set(rows[0]) >= {"attempts", "event_time", "id"}

    def test_table_shows_the_reason_text(self, run):
        """The table prints each reason in full (brackets as they are, not rich markup)."""
        result = run("dead")
        assert result.exit_code == 0, result.output
        assert BAD_NAME in result.output and EXPIRED in result.output
        assert "ord-5" in result.output and "shop-test" in result.output
        assert "…" not in result.output

    def test_narrow_console_cuts_nothing(self, run):
        """In 80 columns (a pipe) names, ids and reasons are whole, never cut with '…'."""
        result = run("dead", columns=80)
        assert result.exit_code == 0, result.output
        assert "…" not in result.output
        lines = result.output.splitlines()
        assert any("shop-test" in line and "ord-5" in line for line in lines)
        assert " ".join(" ".join(lines).split()).count(BAD_NAME) == 3
        assert all(len(line.rstrip()) <= 80 for line in lines)

    def test_filters_combine_like_replay(self, run):
        """--destination, --reason (contains, any case) and --since narrow the list."""
        only_shop = _json(run("dead", "--json", "--destination", "shop"))
        assert [r["event_id"] for r in only_shop["dead_letters"]] == ["ord-4", "ord-2", "ord-1"]
        named = _json(run("dead", "--json", "--reason", "EVENT NAME", "--destination", "shop"))
        assert [r["event_id"] for r in named["dead_letters"]] == ["ord-4", "ord-1"]
        recent = _json(run("dead", "--json", "--since", "4h"))
        assert [r["event_id"] for r in recent["dead_letters"]] == ["ord-5", "ord-4", "ord-3"]
        since_iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 2 * HOUR))
        iso = _json(run("dead", "--json", "--since", since_iso))
        assert [r["event_id"] for r in iso["dead_letters"]] == ["ord-5", "ord-4"]

    def test_limit_keeps_the_newest_and_counts_all(self, run):
        """--limit N lists the N newest; the total and the footer count every match."""
        found = _json(run("dead", "--json", "--limit", "2"))
        assert found["total"] == 5
        assert [r["event_id"] for r in found["dead_letters"]] == ["ord-5", "ord-4"]
        text = run("dead", "--limit", "2")
        assert "3 older not shown" in text.output
        assert "ord-3" not in text.output

    def test_by_reason_counts_most_frequent_first(self, run):
        """--by-reason counts every match per reason, with where and when the newest died."""
        summary = _json(run("dead", "--by-reason", "--json"))
        assert summary["total"] == 5
        assert [(r["reason"], r["count"]) for r in summary["by_reason"]] == [
            (BAD_NAME, 3),
            ("Invalid value for currency", 1),  # a tie: the one that died last first
            (EXPIRED, 1),
        ]
        assert summary["by_reason"][0]["destinations"] == ["shop", "shop-test"]
        text = run("dead", "--by-reason", "--since", "2h", columns=80)
        assert text.exit_code == 0, text.output
        assert "(2)" in text.output and "replay --reason" in text.output
        assert "Invalid value for currency" in text.output and EXPIRED not in text.output

    def test_no_token_printed(self, run):
        """Listing and summary never print a destination's token."""
        for args in (("dead",), ("dead", "--json"), ("dead", "--by-reason")):
            result = run(*args)
            assert result.exit_code == 0 and "shop" in result.output
            assert "tok-SECRET" not in result.output

    def test_nothing_matches(self, run):
        """No match: says so, exit 0 (dead letters are findings, not a failure)."""
        result = run("dead", "--reason", "no such reason")
        assert (result.exit_code, result.output.strip()) == (0, "No dead letters.")

    @pytest.mark.parametrize(
        ("args", "hint"),
        [
            (("--destination", "nosuch"), "shop, shop-test"),
            (("--since", "yesterday"), "a time ago"),
            (("--limit", "0"), "--limit"),
        ],
        ids=["destination", "since", "limit"],
    )
    def test_usage_errors(self, run, args, hint):
        """A bad option is a usage error (exit 2) naming what it takes."""
        result = run("dead", *args)
        assert result.exit_code == 2
        assert hint in result.output


class TestAttempts:
    def test_shown_once_the_store_reports_them(self):
        """A dead letter's ``attempts`` get a column and a JSON value."""
        letter = DeadLetter(7, "shop", "checkout", "ord-9", 0, 400, BAD_NAME, 10.0, attempts=4)
        [row] = dead_rows([letter], limit=5)
        assert row.attempts == 4
        out = StringIO()
        print_dead(DeadList(total=1, dead_letters=[row]), Console(width=200, file=out))
        [header] = [line for line in out.getvalue().splitlines() if "┃ dead at" in line]
        assert "attempts" in header


class TestDeadUnreachableDatabase:
    @pytest.mark.parametrize("args", [[], ["--by-reason", "--json"]], ids=["list", "by-reason"])
    def test_one_line_and_exit_4(self, tmp_path, args):
        """Nothing listens: one line naming the database (password masked), exit 4."""
        url = f"postgresql://u:pgSECRET@127.0.0.1:{_unused_port()}/db"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PINBRIDGE_")}
        env.update(PINBRIDGE_DATABASE_URL=url, LC_ALL="C")
        done = subprocess.run(
            [sys.executable, "-m", "pinbridge", "dead", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
        assert done.returncode == 4, done.stderr
        [line] = [line for line in done.stderr.splitlines() if line.startswith("Error")]
        assert "postgresql://u:***@127.0.0.1:" in line and "pgSECRET" not in done.stderr


@pytest.mark.anyio
class TestStatusLayout:
    async def _report(self, store):
        now = time.time()
        for destination in ("shop", "shop-test"):
            event = PendingEvent(
                event_id=f"e-{destination}",
                event_name="checkout",
                event_time=int(now),
                payload=b"{}",
                destinations=(destination,),
            )
            inputs = [PendingInput(input=b"{}", events=(event,))]
            await store.accept(inputs, now=now, dedup_window=60)
        await store.pause("shop-test", STOPPED, now=now)
        return await status_report(store, now=now)

    async def test_80_columns_keeps_names_and_state_whole(self, store):
        """At 80 columns, `shop`, `shop-test` and the stopped reason are printed whole."""
        out = StringIO()
        print_status(await self._report(store), Console(width=80, file=out))
        text = out.getvalue()
        assert "…" not in text
        assert "shop: ok" in text
        assert f"shop-test: stopped: {STOPPED}" in text
        assert all(len(line) <= 80 for line in text.splitlines())

    async def test_wide_console_keeps_the_table(self, store):
        """Wide enough, the table stays: one header row, one row per destination."""
        out = StringIO()
        print_status(await self._report(store), Console(width=200, file=out))
        lines = out.getvalue().splitlines()
        [header] = [line for line in lines if "┃ destination" in line]
        assert [c.strip() for c in header.strip("┃").split("┃")][-2:] == ["dead 1h", "state"]
        [row] = [line for line in lines if "│ shop-test" in line]
        assert f"stopped: {STOPPED}" in row


class TestStatusInAPipe:
    def test_pipe_status_readable(self, run):
        """`pinbridge status` in a pipe (80 columns): whole names and states, one line each."""
        result = run("status", columns=80)
        assert result.exit_code == 3, result.output
        assert "…" not in result.output
        assert "shop: ok" in result.output and "shop-test: ok" in result.output


class TestNoDatabaseYet:
    @pytest.mark.parametrize(
        "args",
        [["status"], ["dead"], ["quality", "--no-eqs"], ["catalog", "load", "FEED"]],
        ids=["status", "dead", "quality", "catalog"],
    )
    def test_exit_4_naming_the_absolute_path(self, tmp_path, monkeypatch, args):
        """A reading command run where there is no SQLite file creates none: exit 4 (the
        store cannot be used), naming the file's absolute path."""
        monkeypatch.chdir(tmp_path)
        feed = tmp_path / "feed.csv"
        feed.write_text(
            "id,title,description,link,image_link,price,availability\n"
            "sku-1,Mug,A mug,https://s.example/m,https://s.example/m.jpg,9.99 USD,in stock\n"
        )
        args = [str(feed) if a == "FEED" else a for a in args]
        env = {"PINBRIDGE_DATABASE_URL": "sqlite:///var/nothing.db"}
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code == 4, result.output
        assert f"no database at {tmp_path / 'var' / 'nothing.db'} yet" in result.output
        assert not (tmp_path / "var" / "nothing.db").exists()
