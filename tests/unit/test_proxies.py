"""Client address and scheme behind trusted proxies: X-Forwarded-For and Forwarded (RFC 7239)."""

from __future__ import annotations

import pytest

from pinbridge.web.proxies import TrustedProxies, client_ip, client_scheme, parse_forwarded

TRUSTED = ["10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.7"]
XFF = "X-Forwarded-For"


class TestClientIp:
    @pytest.mark.parametrize(
        ("peer", "headers", "expected"),
        [
            # No proxy configured for this peer: its own address, whatever it claims.
            ("203.0.113.5", [], "203.0.113.5"),
            ("203.0.113.5", [(XFF, "198.51.100.1")], "203.0.113.5"),
            ("203.0.113.5", [("Forwarded", "for=198.51.100.1")], "203.0.113.5"),
            # A trusted peer without headers is the client.
            ("10.1.2.3", [], "10.1.2.3"),
            # One trusted hop.
            ("10.1.2.3", [(XFF, "198.51.100.1")], "198.51.100.1"),
            ("192.0.2.7", [(XFF, "198.51.100.1")], "198.51.100.1"),
            # Right to left, skipping trusted hops; what the client wrote on the left is ignored.
            ("10.1.2.3", [(XFF, "6.6.6.6, 198.51.100.1, 10.9.9.9")], "198.51.100.1"),
            # Repeated headers count in order.
            ("10.1.2.3", [(XFF, "6.6.6.6"), (XFF, "198.51.100.1, 10.0.0.2")], "198.51.100.1"),
            # All hops trusted: the leftmost.
            ("10.1.2.3", [(XFF, "10.0.0.9, 10.0.0.8")], "10.0.0.9"),
            # Ports, spaces, and IPv6.
            ("10.1.2.3", [(XFF, " 198.51.100.1:5555 ")], "198.51.100.1"),
            ("10.1.2.3", [(XFF, "2001:db8:1::9")], "2001:db8:1::9"),
            ("10.1.2.3", [(XFF, "[2001:db8:1::9]:443")], "2001:db8:1::9"),
            ("2001:db8:ffff::1", [(XFF, "2001:db8:1::9")], "2001:db8:1::9"),
            ("2001:db8:ffff::1", [(XFF, "198.51.100.1")], "198.51.100.1"),
            ("2001:db8:abcd::1", [(XFF, "198.51.100.1")], "2001:db8:abcd::1"),
            # IPv4 mapped into IPv6 is IPv4, as a peer and in a header.
            ("::ffff:10.1.2.3", [(XFF, "198.51.100.1")], "198.51.100.1"),
            ("::ffff:203.0.113.5", [], "203.0.113.5"),
            ("10.1.2.3", [(XFF, "::ffff:198.51.100.1")], "198.51.100.1"),
            # An unreadable hop ends the walk at the last trusted one.
            ("10.1.2.3", [(XFF, "198.51.100.1, unknown")], "10.1.2.3"),
            ("10.1.2.3", [(XFF, "garbage, 10.0.0.5")], "10.0.0.5"),
            # Forwarded: quoted IPv6 with port, several elements, other parameters.
            ("10.1.2.3", [("Forwarded", 'for="[2001:db8:cafe::17]:4711"')], "2001:db8:cafe::17"),
            (
                "10.1.2.3",
                [("Forwarded", "for=6.6.6.6, for=198.51.100.1;proto=https")],
                "198.51.100.1",
            ),
            ("10.1.2.3", [("Forwarded", "by=10.0.0.1;for=198.51.100.1;host=shop")], "198.51.100.1"),
            (
                "10.1.2.3",
                [("Forwarded", "For=198.51.100.1"), ("Forwarded", "for=10.2.2.2")],
                "198.51.100.1",
            ),
            ("10.1.2.3", [("Forwarded", 'for="_hidden"')], "10.1.2.3"),
            # Forwarded wins over X-Forwarded-For.
            ("10.1.2.3", [(XFF, "6.6.6.6"), ("Forwarded", "for=198.51.100.1")], "198.51.100.1"),
            # Header names in any case.
            ("10.1.2.3", [("x-forwarded-for", "198.51.100.1")], "198.51.100.1"),
        ],
    )
    def test_table(self, peer, headers, expected):
        """The client is the first untrusted hop from the right, or the peer."""
        assert client_ip(peer, headers, TRUSTED) == expected

    def test_no_proxies_configured(self):
        """With no trusted proxies nothing forwarded is believed."""
        assert client_ip("127.0.0.1", [(XFF, "198.51.100.1")], []) == "127.0.0.1"
        assert not TrustedProxies([])

    def test_bad_network_is_an_error(self):
        """A trusted proxy that is not a network is refused when configured."""
        with pytest.raises(ValueError):
            TrustedProxies(["not-a-network"])

    def test_peer_that_is_not_an_address(self):
        """A peer that is not an address (a test client's name) is answered as it is."""
        assert client_ip("testclient", [(XFF, "198.51.100.1")], TRUSTED) == "testclient"


class TestClientScheme:
    @pytest.mark.parametrize(
        ("peer", "headers", "expected"),
        [
            ("203.0.113.5", [("X-Forwarded-Proto", "https")], "http"),
            ("10.1.2.3", [("X-Forwarded-Proto", "https")], "https"),
            ("10.1.2.3", [("X-Forwarded-Proto", "http, HTTPS")], "https"),
            ("10.1.2.3", [("Forwarded", "for=1.2.3.4;proto=https")], "https"),
            ("10.1.2.3", [("Forwarded", "for=1.2.3.4"), ("X-Forwarded-Proto", "https")], "https"),
            ("10.1.2.3", [("X-Forwarded-Proto", "gopher")], "http"),
            ("10.1.2.3", [], "http"),
        ],
    )
    def test_table(self, peer, headers, expected):
        """The nearest trusted proxy says which scheme the client used."""
        assert client_scheme(peer, headers, TRUSTED, "http") == expected


class TestParseForwarded:
    def test_elements_and_quoting(self):
        """Elements split on commas, pairs on semicolons; quotes and escapes removed."""
        assert parse_forwarded(['for=a;proto=https, for="[::1]:80";by=x', 'for="a\\"b"']) == [
            {"for": "a", "proto": "https"},
            {"for": "[::1]:80", "by": "x"},
            {"for": 'a"b'},
        ]

    def test_unreadable_element_keeps_its_place(self):
        """An element without key=value is empty but still counted."""
        assert parse_forwarded(["garbage, for=1.2.3.4;"]) == [{}, {"for": "1.2.3.4"}]
