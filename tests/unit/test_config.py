"""Settings from pinbridge.toml and the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from pinbridge.config import load_settings, require_tokens, require_write_keys
from pinbridge.errors import ConfigError


@pytest.fixture(autouse=True)
def _in_an_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """load_settings(None, ...) reads ./pinbridge.toml when there is one: neither the
    developer's nor one a test writes."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pinbridge.toml"
    path.write_text(text)
    return path


class TestLoadSettings:
    def test_defaults_use_the_embedded_emulator(self):
        """With no file and no credentials, pinbridge delivers to the embedded emulator."""
        settings = load_settings(None, {})
        assert settings.embedded_emulator and settings.destinations == ()
        assert settings.store.url == "sqlite:///var/pinbridge.db"

    def test_environment(self, tmp_path):
        """The documented environment variables configure a destination, keys and the store."""
        settings = load_settings(
            None,
            {
                "PINTEREST_AD_ACCOUNT_ID": "549755885175",
                "PINTEREST_ACCESS_TOKEN": "secret-token",
                "PINTEREST_API_BASE": "http://127.0.0.1:8090/v5",
                "PINBRIDGE_WRITE_KEYS": "k1, k2",
                "PINBRIDGE_DATABASE_URL": "sqlite:////tmp/x.db",
            },
        )
        [destination] = settings.destinations
        assert (destination.name, destination.ad_account_id, destination.token) == (
            "pinterest",
            "549755885175",
            "secret-token",
        )
        assert destination.api_base == "http://127.0.0.1:8090/v5"
        assert settings.server.write_keys == ("k1", "k2")
        assert settings.store.url == "sqlite:////tmp/x.db"
        assert not settings.embedded_emulator

    def test_file_with_destinations(self, tmp_path):
        """Several destinations, token_env, test mode and event filters come from the file."""
        path = write(
            tmp_path,
            """
[server]
port = 9000
write_keys = ["wk"]
[[destinations]]
name = "shop"
ad_account_id = "1"
token_env = "SHOP_TOKEN"
test = true
events = ["checkout"]
[[destinations]]
name = "agency"
ad_account_id = "2"
token = "t2"
""",
        )
        settings = load_settings(path, {"SHOP_TOKEN": "t1"})
        assert [(d.name, d.token, d.test, d.events) for d in settings.destinations] == [
            ("shop", "t1", True, ("checkout",)),
            ("agency", "t2", False, ()),
        ]
        assert settings.server.port == 9000

    def test_secrets_never_in_repr(self, tmp_path):
        """Tokens and write keys do not appear when settings are printed."""
        settings = load_settings(
            None,
            {
                "PINTEREST_AD_ACCOUNT_ID": "1",
                "PINTEREST_ACCESS_TOKEN": "tok-SECRET",
                "PINBRIDGE_WRITE_KEYS": "wk-SECRET",
            },
        )
        assert "SECRET" not in repr(settings) and "SECRET" not in str(settings)

    @pytest.mark.parametrize(
        ("text", "env", "message"),
        [
            ("[server]\nprot = 1\n", {}, "prot"),
            ("[[destinations]]\nname='a'\nad_account_id='x1'\ntoken='t'\n", {}, "1 to 18 digits"),
            ("[delivery]\nbatch_size = 5000\n", {}, "batch_size"),
            ("[store]\nsynchronous = 'OFF'\n", {}, "synchronous"),
            ("[transform]\nunmapped = 'keep'\n", {}, "unmapped"),
            ("[store]\nurl = 'mysql://x'\n", {}, "unsupported database URL"),
            (
                "[[destinations]]\nname='a'\nad_account_id='1'\ntoken='t'\nevents=['buy']\n",
                {"PINBRIDGE_WRITE_KEYS": "k"},
                "'buy' is not a Pinterest event name",
            ),
            ("[transform]\ndefault_region = 'XX'\n", {}, "^transform.default_region: "),
            ("", {"PINBRIDGE_DEFAULT_REGION": "XX"}, "^PINBRIDGE_DEFAULT_REGION: "),
            ("", {"PINBRIDGE_PORT": "80a"}, "^PINBRIDGE_PORT must be a port number"),
            ("", {"PINBRIDGE_PORT": "70000"}, "^PINBRIDGE_PORT must be a port number"),
            ("[transform.mapping]\n'Order Completed' = 'purchase'\n", {}, "purchase"),
            ("not toml [", {}, "TOML"),
        ],
    )
    def test_errors_name_the_key(self, tmp_path, text, env, message):
        """A wrong file is a ConfigError that names what is wrong."""
        with pytest.raises(ConfigError, match=message):
            load_settings(write(tmp_path, text), env)

    def test_host_and_port_from_the_environment(self, tmp_path):
        """PINBRIDGE_HOST and PINBRIDGE_PORT replace [server] host and port."""
        path = write(tmp_path, "[server]\nhost = '127.0.0.1'\nport = 9000\n")
        server = load_settings(path, {"PINBRIDGE_HOST": "0.0.0.0", "PINBRIDGE_PORT": "8089"}).server
        assert (server.host, server.port) == ("0.0.0.0", 8089)
        assert load_settings(path, {}).server.port == 9000

    def test_short_dashboard_password_from_environment(self, tmp_path):
        """PINBRIDGE_DASHBOARD_PASSWORD under 12 characters stops the start; the message names
        the variable, never the value. Twelve characters are enough."""
        with pytest.raises(ConfigError, match="PINBRIDGE_DASHBOARD_PASSWORD") as caught:
            load_settings(None, {"PINBRIDGE_DASHBOARD_PASSWORD": "hunter2-abc"})
        assert "hunter2" not in str(caught.value)
        assert "12 characters" in str(caught.value)
        settings = load_settings(None, {"PINBRIDGE_DASHBOARD_PASSWORD": "hunter2-abcd"})
        assert settings.dashboard.password == "hunter2-abcd"

    def test_short_dashboard_password_from_file(self, tmp_path):
        """A short ``[dashboard] password`` is refused the same way."""
        path = write(tmp_path, "[dashboard]\npassword = 'tiny-secret'\n")
        with pytest.raises(ConfigError, match=r"dashboard\.password is too short") as caught:
            load_settings(path, {})
        assert "tiny-secret" not in str(caught.value)


class TestRequirements:
    """Tokens and write keys are checked by the commands that need them, not on loading."""

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("[[destinations]]\nname='a'\nad_account_id='1'\n", "'a' has no token"),
            (
                "[[destinations]]\nname='a'\nad_account_id='1'\ntoken_env='NOPE'\n",
                "^destination 'a': environment variable NOPE is not set$",
            ),
        ],
    )
    def test_missing_token(self, tmp_path, text, message):
        """Settings without a token load; require_tokens says which one is missing."""
        settings = load_settings(write(tmp_path, text), {"PINBRIDGE_WRITE_KEYS": "k"})
        with pytest.raises(ConfigError, match=message):
            require_tokens(settings)

    def test_token_from_its_variable(self, tmp_path):
        """A token_env that is set satisfies require_tokens."""
        text = "[[destinations]]\nname='a'\nad_account_id='1'\ntoken_env='SHOP'\n"
        settings = load_settings(write(tmp_path, text), {"SHOP": "t", "PINBRIDGE_WRITE_KEYS": "k"})
        require_tokens(settings)
        assert settings.destinations[0].token == "t"

    def test_write_keys(self, tmp_path):
        """A destination without write keys loads; require_write_keys refuses it, and accepts
        the embedded emulator or configured keys."""
        text = "[[destinations]]\nname='a'\nad_account_id='1'\ntoken='t'\n"
        with pytest.raises(ConfigError, match="write keys are required"):
            require_write_keys(load_settings(write(tmp_path, text), {}))
        require_write_keys(load_settings(write(tmp_path, text), {"PINBRIDGE_WRITE_KEYS": "k"}))
        require_write_keys(load_settings(None, {}))


class TestDisplayUrl:
    @pytest.mark.parametrize(
        ("url", "shown"),
        [
            (
                "postgresql://u@db.example/pb?password=pgSECRET&sslmode=require",
                "postgresql://u@db.example/pb?password=***&sslmode=require",
            ),
            (
                "postgresql://u@db.example/pb?sslmode=require&PASSWORD=pgSECRET",
                "postgresql://u@db.example/pb?sslmode=require&PASSWORD=***",
            ),
            (
                "postgresql://u@db.example/pb?sslpassword=keySECRET&sslkey=/etc/pb.key",
                "postgresql://u@db.example/pb?sslpassword=***&sslkey=/etc/pb.key",
            ),
            ("postgresql://u:pgSECRET@db.example/pb", "postgresql://u:***@db.example/pb"),
            ("postgresql://:pgSECRET@db.example/pb", "postgresql://:***@db.example/pb"),
            (
                "postgresql://u:pg@SE/CRET@db.example:5432/pb",
                "postgresql://u:***@db.example:5432/pb",
            ),
            (
                "postgres://u:pgSECRET@h1,h2/pb?password=pgSECRET#x",
                "postgres://u:***@h1,h2/pb?password=***#x",
            ),
            (
                "postgresql://u@db.example/pb?sslmode=require",
                "postgresql://u@db.example/pb?sslmode=require",
            ),
            (
                "postgresql:///pb?user=u&passfile=/etc/pgpass",
                "postgresql:///pb?user=u&passfile=/etc/pgpass",
            ),
            ("sqlite:///var/pinbridge.db", "sqlite:///var/pinbridge.db"),
        ],
    )
    def test_secrets_masked(self, url, shown):
        """Passwords in the user information and in the query are masked; the rest is kept."""
        settings = load_settings(None, {"PINBRIDGE_DATABASE_URL": url})
        assert settings.store.display_url == shown
        assert "SECRET" not in repr(settings.store) and "SECRET" not in repr(settings)


class TestRanges:
    """Every numeric setting has bounds; a value outside them stops the start, naming the key."""

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("[delivery]\nconcurrency = 0\n", "delivery.concurrency must be between 1 and 64"),
            ("[delivery]\nrate_limit_per_minute = 0\n", "delivery.rate_limit_per_minute"),
            ("[delivery]\nrate_limit_per_minute = -5\n", "delivery.rate_limit_per_minute"),
            ("[delivery]\ntimeout_seconds = -1\n", "delivery.timeout_seconds must be more"),
            ("[delivery]\ntimeout_seconds = nan\n", "delivery.timeout_seconds"),
            ("[delivery]\nlease_seconds = -1\n", "delivery.lease_seconds"),
            # a claim's lease must outlast one request (the client's timeout), at 90 % use
            (
                "[delivery]\nlease_seconds = 10\ntimeout_seconds = 30\n",
                "delivery.lease_seconds must be at least 34 with delivery.timeout_seconds",
            ),
            ("[delivery]\npaused_probe_seconds = 0\n", "delivery.paused_probe_seconds"),
            ("[delivery]\nbackoff_base_seconds = -1\n", "delivery.backoff_base_seconds"),
            ("[delivery]\nbackoff_cap_seconds = 0.5\n", "delivery.backoff_cap_seconds"),
            ("[delivery]\npoll_interval_seconds = 0\n", "delivery.poll_interval_seconds"),
            ("[delivery]\nbatch_size = 0\n", "delivery.batch_size must be between 1 and 1000"),
            ("[delivery]\nlinger_seconds = 11\n", "delivery.linger_seconds"),
            ("[identity]\nretention_days = -1\n", "identity.retention_days must be at least 1"),
            ("[identity]\nretention_days = 0\n", "identity.retention_days must be at least 1"),
            ("[identity]\nmax_per_kind = {em = -1}\n", "identity.max_per_kind.em"),
            ("[server]\nport = 70000\n", "server.port must be between 1 and 65535"),
            ("[server]\nport = 0\n", "server.port"),
            ("[server]\nmax_body_bytes = -1\n", "server.max_body_bytes"),
            ("[server]\nmax_events_per_request = 0\n", "server.max_events_per_request"),
            ("[server]\nrequests_per_minute_per_key = -1\n", "requests_per_minute_per_key"),
            ("[store]\ndedup_window_seconds = -1\n", "store.dedup_window_seconds"),
            ("[store]\npool_size = 1\n", "store.pool_size must be at least 2"),
            (
                "[dashboard]\nlogin_attempts_per_minute = 0\n",
                "dashboard.login_attempts_per_minute must be between 1 and 1000",
            ),
            ("[dashboard]\nlogin_attempts_per_minute = 1001\n", "login_attempts_per_minute must"),
            (
                "[dashboard]\nlogin_hashes_in_flight = 0\n",
                "dashboard.login_hashes_in_flight must be between 1 and 64",
            ),
            ("[dashboard]\nlogin_hashes_in_flight = 65\n", "dashboard.login_hashes_in_flight must"),
            ("[transform]\nmax_event_age_seconds = 99999999\n", "max_event_age_seconds"),
            ("[transform]\nmax_event_age_seconds = 0\n", "max_event_age_seconds"),
            ("[transform]\nfuture_skew_seconds = -1\n", "transform.future_skew_seconds"),
            (
                "[server.key_limits.'wk-secret-partner']\nrequests_per_minute = -1\n",
                r"server.key_limits.<entry 1>.requests_per_minute must be at least 1",
            ),
            (
                "[server.key_limits.'wk-secret-partner']\nmax_body_bytes = 0\n",
                "max_body_bytes",
            ),
        ],
    )
    def test_out_of_range(self, tmp_path, text, message):
        """The message names the key and the bounds (never a write key)."""
        with pytest.raises(ConfigError, match=message) as caught:
            load_settings(write(tmp_path, text), {})
        assert "secret" not in str(caught.value)

    @pytest.mark.parametrize(
        "text",
        [
            "[server]\nrequests_per_minute_per_key = 0\n",  # 0: no limit
            "[server]\nport = 65535\n",
            "[delivery]\nlinger_seconds = 0\n",
            "[delivery]\nlease_seconds = 10\ntimeout_seconds = 9\n",
            "[delivery]\nconcurrency = 1\nrate_limit_per_minute = 1\n",
            "[identity]\nretention_days = 1\nmax_per_kind = {em = 1}\n",
            "[transform]\nmax_event_age_seconds = 604800\nfuture_skew_seconds = 0\n",
            "[dashboard]\nlogin_attempts_per_minute = 1\nlogin_hashes_in_flight = 1\n",
            "[dashboard]\nlogin_attempts_per_minute = 1000\nlogin_hashes_in_flight = 64\n",
        ],
    )
    def test_bounds_themselves_are_accepted(self, tmp_path, text):
        """The documented bounds, and 0 where it means "off", load."""
        load_settings(write(tmp_path, text), {})

    def test_login_throttle_settings(self, tmp_path):
        """The login throttle's limits come from ``[dashboard]``; unset, they are 5 and 2."""
        default = load_settings(write(tmp_path, ""), {}).dashboard
        assert (default.login_attempts_per_minute, default.login_hashes_in_flight) == (5, 2)
        text = "[dashboard]\nlogin_attempts_per_minute = 20\nlogin_hashes_in_flight = 4\n"
        dashboard = load_settings(write(tmp_path, text), {}).dashboard
        assert (dashboard.login_attempts_per_minute, dashboard.login_hashes_in_flight) == (20, 4)
        assert "login_hashes_in_flight=4" in repr(dashboard)

    @pytest.mark.parametrize(
        ("env", "message"),
        [
            ({"PINTEREST_AD_ACCOUNT_ID": "x1", "PINTEREST_ACCESS_TOKEN": "t"}, "^PINTEREST_AD_"),
            ({"PINBRIDGE_WRITE_KEYS": ","}, "PINBRIDGE_WRITE_KEYS holds no write key"),
            ({"PINBRIDGE_WRITE_KEYS": " , "}, "PINBRIDGE_WRITE_KEYS holds no write key"),
        ],
    )
    def test_bad_environment_names_the_variable(self, tmp_path, env, message):
        """A bad environment variable is an error naming the variable, not a destination."""
        with pytest.raises(ConfigError, match=message):
            load_settings(write(tmp_path, ""), env)
