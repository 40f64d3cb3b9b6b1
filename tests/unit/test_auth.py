"""Dashboard login: sessions, CSRF tokens and the login throttle (pure, with a fake clock)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from pinbridge.web.auth import (
    SESSION_SECONDS,
    LoginThrottle,
    Revocations,
    Sessions,
    hash_password,
    stable_salt,
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


class TestLogout:
    def test_logout_refuses_that_cookie_only(self, sessions):
        """After logout the cookie is refused; another session of the same user stays valid."""
        first, second = sessions.login("ops", PASSWORD), sessions.login("ops", PASSWORD)
        assert first is not None and second is not None and first != second
        sessions.logout(first)
        assert sessions.user(first) is None
        assert sessions.user(second) == "ops"

    def test_invalid_cookie_is_not_remembered(self, sessions):
        """Logging out a missing, forged or expired cookie revokes nothing and raises nothing."""
        cookie = sessions.login("ops", PASSWORD)
        assert cookie is not None
        user, expiry, session_id, _ = cookie.split("|")
        for value in (None, "", "é", f"{user}|{expiry}|{session_id}|forged"):
            sessions.logout(value)
        assert sessions.user(cookie) == "ops"

    def test_revoked_ids_are_forgotten_at_expiry(self):
        """A revoked id is kept until its cookie's expiry, then dropped (bounded memory)."""
        now = [NOW]
        revocations = Revocations()
        sessions = Sessions(
            {"ops": hash_password(PASSWORD, iterations=1000)},
            clock=lambda: now[0],
            revocations=revocations,
        )
        old = sessions.login("ops", PASSWORD)
        sessions.logout(old)
        now[0] += SESSION_SECONDS  # the last second the cookie would have been valid
        assert sessions.user(old) is None and len(revocations) == 1
        now[0] += 1
        sessions.logout(sessions.login("ops", PASSWORD))
        assert len(revocations) == 1  # only the new one
        assert sessions.user(old) is None  # expired by now anyway

    def test_revocations_keep_each_id_until_its_own_expiry(self):
        """Ids revoked out of expiry order are each forgotten at their own expiry."""
        revocations = Revocations()
        revocations.revoke("late", 300, now=100)
        revocations.revoke("early", 200, now=150)
        revocations.revoke("gone", 120, now=150)  # already expired: not kept
        assert len(revocations) == 2
        assert revocations.revoked("early", now=200) and revocations.revoked("late", now=200)
        assert not revocations.revoked("early", now=201) and revocations.revoked("late", now=201)
        assert len(revocations) == 1
        assert not revocations.revoked("late", now=301) and len(revocations) == 0


class TestPasswordBinding:
    def test_new_password_ends_old_sessions(self):
        """A cookie made for the old password hash is refused by a process holding the new
        one, though it has the same session secret; one holding the same hash accepts it."""
        secret = b"shared secret of two processes"
        users = {"ops": hash_password(PASSWORD, iterations=1000)}
        cookie = Sessions(users, secret=secret).login("ops", PASSWORD)
        assert Sessions(users, secret=secret).user(cookie) == "ops"
        changed = {"ops": hash_password("another password!", iterations=1000)}
        assert Sessions(changed, secret=secret).user(cookie) is None

    def test_cookie_without_session_id_is_refused(self):
        """A cookie of the former ``user|expiry|signature`` form (no session id, so it could
        not be revoked) is no session, even when signed with the configured secret."""
        secret = b"configured secret"
        body = f"ops|{int(NOW) + 3600}"
        signature = hmac.new(secret, body.encode(), hashlib.sha256).digest()
        cookie = f"{body}|{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"
        users = {"ops": hash_password(PASSWORD, iterations=1000)}
        assert Sessions(users, secret=secret, clock=lambda: NOW).user(cookie) is None

    def test_environment_password_hashed_alike_under_one_secret(self):
        """A password hashed at every start with :func:`stable_salt` gives the same hash in
        every process sharing the secret (so they share sessions); no secret, no fixed salt."""
        salt = stable_salt("the session secret")
        assert salt is not None and len(salt) == 16
        one = hash_password(PASSWORD, iterations=1000, salt=salt)
        assert one == hash_password(
            PASSWORD, iterations=1000, salt=stable_salt("the session secret")
        )
        assert one != hash_password(PASSWORD, iterations=1000, salt=stable_salt("another"))
        assert verify_password(PASSWORD, one)
        assert stable_salt("") is None
        cookie = Sessions({"admin": one}, secret=b"k").login("admin", PASSWORD)
        assert Sessions({"admin": one}, secret=b"k").user(cookie) == "admin"


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
