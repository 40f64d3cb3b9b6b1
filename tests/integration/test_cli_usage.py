"""Usage errors of the store commands: named option, what it takes, exit status 2."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from pinbridge.cli import main

CONFIG = """
[server]
write_keys = ["wk_0123456789abcdef"]

[store]
url = "sqlite:///{db}"

[[destinations]]
name = "shop"
ad_account_id = "111"
token = "t"

[[destinations]]
name = "shop-test"
ad_account_id = "222"
token = "t"
test = true
"""


@pytest.fixture(name="run")
def _run(tmp_path, monkeypatch):
    config = tmp_path / "pinbridge.toml"
    config.write_text(CONFIG.format(db=tmp_path / "pb.db"))
    for key in os.environ:
        if key.startswith(("PINBRIDGE_", "PINTEREST_")):
            monkeypatch.delenv(key)

    def run(*args: str):
        return CliRunner().invoke(main, [*args, "--config", str(config)])

    assert run("migrate").exit_code == 0  # the commands below never create the database
    return run


class TestReplay:
    def test_unknown_destination(self, run):
        """An unknown --destination fails and lists the configured ones (not "0 queued")."""
        result = run("replay", "--destination", "nosuch")
        assert result.exit_code == 2
        assert "--destination" in result.output
        assert "'nosuch'" in result.output and "shop, shop-test" in result.output
        assert "queued" not in result.output

    @pytest.mark.parametrize("since", ["yesterday", "2x"])
    def test_bad_since(self, run, since):
        """--since names itself and every form of time it takes, durations included."""
        result = run("replay", "--since", since)
        assert result.exit_code == 2
        assert "--since" in result.output and "ISO-8601" in result.output
        assert "a time ago (2h, 7d)" in result.output and repr(since) in result.output

    @pytest.mark.parametrize("since", ["2h", "3d", "2026-01-31", "1769817600"])
    def test_good_since(self, run, since):
        """Durations, ISO-8601 times and epoch numbers are taken."""
        assert run("replay", "--since", since).exit_code == 0

    def test_known_destination(self, run):
        """A configured destination replays (nothing here)."""
        result = run("replay", "--destination", "shop")
        assert result.exit_code == 0, result.output
        assert "0 dead letters queued again." in result.output


class TestAttribution:
    @pytest.mark.parametrize("window", ["banana", "2026-01-01", "2d"])
    def test_bad_window(self, run, window):
        """--window names itself and the windows it takes."""
        result = run("report", "attribution", "--window", window)
        assert result.exit_code == 2
        assert "--window" in result.output and "1d, 7d, 14d or 30d" in result.output
        assert "epoch" not in result.output

    def test_bad_since(self, run):
        """--since names itself and the forms of time it takes."""
        result = run("report", "attribution", "--since", "banana")
        assert result.exit_code == 2
        assert "--since" in result.output and "ISO-8601" in result.output

    def test_good_window(self, run):
        """A valid window runs the report."""
        result = run("report", "attribution", "--window", "7d", "--json")
        assert result.exit_code == 0, result.output
