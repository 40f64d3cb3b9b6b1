"""Dashboard login: sessions, CSRF tokens and the login throttle (pure, with a fake clock)."""

from __future__ import annotations

import pytest

from pinbridge.web.auth import (
    LoginThrottle,
    Sessions,
    hash_password,
    verify_password,
)

NOW = 1_795_345_200.0
PASSWORD = "correct horse battery"


@pytest.fixture(name="sessions")
def _sessions() -> Sessions:
    return Sessions({"ops": hash_password(PASSWORD, iterations=1000)}, clock=lambda: NOW)


class TestSessions:
    def test_login_and_session(self, sessions):
        """A right password gives a cookie that names its user; a wrong one gives nothing."""
        cookie = sessions.login("ops", PASSWORD)
        assert cookie is not None and sessions.user(cookie) == "ops"
        assert sessions.login("ops", "wrong") is None

    def test_unknown_user_costs_the_same_hash(self):
        """An unknown user is checked against a hash with the real users' parameters."""
        checked: list[str] = []

        def verify(password: str, stored: str) -> bool:
            checked.append(stored)
            return verify_password(password, stored)

        stored = hash_password(PASSWORD, iterations=2000)
        sessions = Sessions({"ops": stored}, verify=verify)
        assert sessions.login("nobody", PASSWORD) is None
        assert sessions.login("ops", "wrong") is None
        assert len(checked) == 2
        unknown, known = (s.split("$") for s in checked)
        assert unknown[:2] == known[:2] == ["pbkdf2_sha256", "2000"]
        assert len(unknown[2]) == len(known[2]) and len(unknown[3]) == len(known[3])
        assert unknown != known

    def test_unknown_user_without_users_costs_the_default_hash(self):
        """With no users configured the made-up hash has the default iteration count."""
        checked: list[str] = []
        sessions = Sessions({}, verify=lambda p, s: checked.append(s) or False)
        assert sessions.login("admin", PASSWORD) is None
        assert checked[0].split("$")[1] == "600000"

    @pytest.mark.parametrize(
        "cookie",
        ["admin|9999999999|é", "ops|9999999999|€€", "é|²|x", "ops|²|sig", "\udc80|1|\ud800"],
    )
    def test_non_ascii_cookie_is_no_session(self, sessions, cookie):
        """A cookie with non-ASCII characters is not a session, and raises nothing."""
        assert sessions.user(cookie) is None

    def test_non_ascii_csrf_token_is_wrong(self, sessions):
        """A CSRF token or cookie with non-ASCII characters does not match, and raises nothing."""
        cookie = sessions.login("ops", PASSWORD)
        assert cookie is not None
        assert sessions.check_csrf(cookie, sessions.csrf(cookie))
        assert not sessions.check_csrf(cookie, "é")
        assert not sessions.check_csrf("é|1|é", "€")


class TestLoginThrottle:
    def test_burst_then_wait(self):
        """An address gets ``per_minute`` attempts at once, then waits for the next one."""
        throttle = LoginThrottle(per_minute=5, in_flight=10)
        for _ in range(5):
            assert throttle.acquire("203.0.113.9", NOW) == 0
            throttle.release()
        assert throttle.acquire("203.0.113.9", NOW) == 12
        assert throttle.acquire("203.0.113.9", NOW + 6) == 6
        assert throttle.acquire("203.0.113.9", NOW + 12) == 0

    def test_addresses_are_counted_apart(self):
        """One address's attempts do not use another's."""
        throttle = LoginThrottle(per_minute=1, in_flight=10)
        assert throttle.acquire("203.0.113.9", NOW) == 0
        assert throttle.acquire("203.0.113.9", NOW) > 0
        assert throttle.acquire("198.51.100.1", NOW) == 0

    def test_ipv6_counts_per_64(self):
        """IPv6 addresses of one /64 share a bucket; an IPv4-mapped one is its IPv4 address."""
        throttle = LoginThrottle(per_minute=1, in_flight=10)
        assert throttle.acquire("2001:db8:1:2::1", NOW) == 0
        assert throttle.acquire("2001:db8:1:2:ffff::9", NOW) > 0
        assert throttle.acquire("2001:db8:1:3::1", NOW) == 0
        assert throttle.acquire("192.0.2.1", NOW) == 0
        assert throttle.acquire("::ffff:192.0.2.1", NOW) > 0

    def test_hashes_in_flight_are_bounded(self):
        """Beyond ``in_flight`` running hashes an attempt waits a second and keeps its token."""
        throttle = LoginThrottle(per_minute=1, in_flight=2)
        assert throttle.acquire("192.0.2.1", NOW) == 0
        assert throttle.acquire("192.0.2.2", NOW) == 0
        assert throttle.acquire("192.0.2.3", NOW) == 1
        throttle.release()
        assert throttle.acquire("192.0.2.3", NOW) == 0

    def test_remembers_a_bounded_number_of_addresses(self):
        """The least recently seen address is forgotten beyond ``max_addresses``."""
        throttle = LoginThrottle(per_minute=1, in_flight=10, max_addresses=2)
        assert throttle.acquire("192.0.2.1", NOW) == 0
        throttle.release()
        for other in ("192.0.2.2", "192.0.2.3"):
            assert throttle.acquire(other, NOW) == 0
            throttle.release()
        assert throttle.acquire("192.0.2.1", NOW) == 0  # forgotten, so a full bucket again
