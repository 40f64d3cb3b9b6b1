"""``pinbridge emulator``'s option parsing; the server itself is tested in integration."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from pinbridge.pinterest.emulator import FaultSettings
from pinbridge.pinterest.emulator_cli import emulator, parse_rate_limit, parse_tokens


class TestParseTokens:
    """``--token TOKEN=ACCOUNT[,ACCOUNT...]``."""

    @pytest.mark.parametrize(
        ("values", "expected"),
        [
            ((), None),
            (("t=1",), {"t": frozenset({"1"})}),
            (("t=1, 2", "u=3", "t=4"), {"t": frozenset({"1", "2", "4"}), "u": frozenset({"3"})}),
        ],
    )
    def test_valid(self, values: tuple[str, ...], expected: object) -> None:
        """Tokens map to the union of their accounts; none means any token."""
        assert parse_tokens(values) == expected

    @pytest.mark.parametrize("value", ["s3cr3t", "s3cr3t=", "=1", "s3cr3t=,"])
    def test_invalid_never_echoes_the_token(self, value: str) -> None:
        """A malformed value is refused without repeating the token."""
        with pytest.raises(click.BadParameter) as error:
            parse_tokens((value,))
        assert "s3cr3t" not in str(error.value)


@pytest.mark.parametrize(
    ("value", "expected"), [("5000", 5000), ("5000/min", 5000), (" 10 / minute", 10), ("0", 0)]
)
def test_parse_rate_limit(value: str, expected: int) -> None:
    """Rate limits are N or N/min."""
    assert parse_rate_limit(value) == expected


def test_bad_rate_limit() -> None:
    """Other units are refused."""
    with pytest.raises(click.BadParameter):
        parse_rate_limit("5/s")


def test_help_lists_the_contract_options() -> None:
    """``--help`` shows every option of the contract."""
    result = CliRunner().invoke(emulator, ["--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--token", "--rate-limit", "--strict / --lenient",
                   "--error-rate", "--latency-ms", "--drop-rate", "--seed"):  # fmt: skip
        assert option in result.output


@pytest.mark.parametrize("value", ["404", "600", "none"])
def test_error_status_out_of_range(value: str) -> None:
    """``--error-status`` takes 500 to 599 only; anything else is a usage error."""
    result = CliRunner().invoke(emulator, ["--error-status", value])
    assert result.exit_code == 2
    assert "--error-status" in result.output


def test_no_error_status_is_refused() -> None:
    """Fault settings without a status to inject cannot be built."""
    with pytest.raises(ValueError, match="at least one status"):
        FaultSettings(error_rate=1.0, error_statuses=())


def test_error_status_reaches_the_faults(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--error-status`` (repeatable) sets the statuses; without it, 500 and 503."""
    seen = []
    monkeypatch.setattr(
        "pinbridge.pinterest.emulator_cli.create_emulator_app", lambda c: seen.append(c)
    )
    monkeypatch.setattr("uvicorn.Server.run", lambda self: None)
    for args in (["--error-status", "502", "--error-status", "504"], []):
        assert CliRunner().invoke(emulator, args).exit_code == 0
    assert [c.faults.error_statuses for c in seen] == [(502, 504), (500, 503)]


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        ([], "rate limit 5000/min, 10/s in test mode;"),
        (["--rate-limit", "0"], "no rate limit, 10/s in test mode;"),
        (["--rate-limit", "0", "--test-rate-limit", "0"], "no rate limit, no test-mode limit;"),
    ],
)
def test_start_line_says_no_rate_limit(monkeypatch: pytest.MonkeyPatch, args, shown) -> None:
    """A limit of 0 is printed as no limit, not as "0/min"."""
    monkeypatch.setattr("uvicorn.Server.run", lambda self: None)
    result = CliRunner().invoke(emulator, args)
    assert result.exit_code == 0
    assert shown in result.output and " 0/min" not in result.output
