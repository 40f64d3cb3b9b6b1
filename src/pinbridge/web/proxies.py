"""Who the client is behind reverse proxies: its address and the scheme it used.

``X-Forwarded-For``, ``X-Forwarded-Proto`` and ``Forwarded`` (RFC 7239) are believed only
when the peer (the address that opened the TCP connection) lies in one of the configured
trusted proxy networks; otherwise anyone could claim any address. When the peer is trusted,
the forwarded chain is walked from right to left, skipping the hops that are themselves
trusted proxies: the first address that is not is the client. When every hop is trusted, the
leftmost one is the client. A hop that cannot be read (``unknown``, an obfuscated identifier,
garbage) ends the walk: what lies to its left was written by someone we cannot vouch for, so
the last trusted hop read is answered.

``Forwarded`` wins over ``X-Forwarded-For`` when a request carries both: it is the standard
header, and a proxy that writes it knows what it is doing. IPv6 works everywhere (in
``Forwarded``, in brackets as RFC 7239 requires), and an IPv4 address mapped into IPv6
(``::ffff:192.0.2.1``) is answered as plain IPv4.

Pure: no I/O; headers come as ``(name, value)`` pairs so that repeated headers all count.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import TypeAlias

__all__ = ["TrustedProxies", "client_ip", "client_scheme", "parse_forwarded"]

Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
Headers: TypeAlias = Iterable[tuple[str, str]]

#: Forwarded elements (comma separated) and their pairs (semicolon separated), quotes kept.
_ELEMENT = re.compile(r'(?:[^,"]|"(?:[^"\\]|\\.)*")+')
_PAIR = re.compile(r'(?:[^;"]|"(?:[^"\\]|\\.)*")+')
_ESCAPE = re.compile(r"\\(.)")


def _address(node: str) -> Address | None:
    """An address from a forwarded node (``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``, ``::1``)."""
    node = node.strip().strip('"').strip()
    if node.startswith("["):
        node = node[1:].partition("]")[0]
    elif node.count(":") == 1:
        node = node.partition(":")[0]
    try:
        address = ipaddress.ip_address(node)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_forwarded(values: Iterable[str]) -> list[dict[str, str]]:
    """The elements of ``Forwarded`` header values, in order, each as lower-cased key → value.

    Quoted values are unquoted. An element that cannot be read is an empty dict, so that it
    still holds its place in the chain.
    """
    elements: list[dict[str, str]] = []
    for value in values:
        for element in _ELEMENT.findall(value):
            if not element.strip():
                continue
            pairs: dict[str, str] = {}
            for pair in _PAIR.findall(element):
                if not pair.strip():
                    continue
                key, equals, raw = pair.partition("=")
                key, raw = key.strip().lower(), raw.strip()
                if not equals or not key:
                    pairs = {}
                    break
                if len(raw) >= 2 and raw[0] == raw[-1] == '"':
                    raw = _ESCAPE.sub(r"\1", raw[1:-1])
                pairs[key] = raw
            elements.append(pairs)
    return elements


class TrustedProxies:
    """The configured proxy networks, parsed once.

    Args:
        cidrs: networks (``10.0.0.0/8``, ``2001:db8::/32``) or single addresses.

    Raises:
        ValueError: a value is neither.
    """

    __slots__ = ("_networks",)

    def __init__(self, cidrs: Iterable[str]) -> None:
        self._networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(c.strip(), strict=False) for c in cidrs
        )

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: Address | None) -> bool:
        """Whether ``address`` is one of the trusted proxies."""
        return address is not None and any(address in n for n in self._networks)

    def client_ip(self, peer: str, headers: Headers) -> str:
        """The client's address: the peer, or what trusted proxies say it is."""
        peer_address = _address(peer)
        if not self.trusts(peer_address):
            return str(peer_address) if peer_address is not None else peer
        chain = self._chain(headers)
        last = peer_address
        for node in reversed(chain):
            address = _address(node)
            if address is None:
                break
            last = address
            if not self.trusts(address):
                break
        return str(last)

    def scheme(self, peer: str, headers: Headers, default: str) -> str:
        """``http`` or ``https`` as the client used it: the nearest trusted proxy's word."""
        if not self.trusts(_address(peer)):
            return default
        pairs = [(k.lower(), v) for k, v in headers]
        forwarded = parse_forwarded(v for k, v in pairs if k == "forwarded")
        protos = [e["proto"] for e in forwarded if "proto" in e]
        if not protos:
            protos = [
                p.strip()
                for k, v in pairs
                if k == "x-forwarded-proto"
                for p in v.split(",")
                if p.strip()
            ]
        proto = protos[-1].lower() if protos else default
        return proto if proto in ("http", "https") else default

    @staticmethod
    def _chain(headers: Headers) -> list[str]:
        pairs = [(k.lower(), v) for k, v in headers]
        forwarded = [v for k, v in pairs if k == "forwarded"]
        if forwarded:
            return [e.get("for", "") for e in parse_forwarded(forwarded)]
        return [
            part.strip()
            for k, v in pairs
            if k == "x-forwarded-for"
            for part in v.split(",")
            if part.strip()
        ]


def client_ip(peer: str, headers: Headers, trusted_cidrs: Sequence[str]) -> str:
    """The client's address behind ``trusted_cidrs`` (see the module docstring)."""
    return TrustedProxies(trusted_cidrs).client_ip(peer, headers)


def client_scheme(peer: str, headers: Headers, trusted_cidrs: Sequence[str], default: str) -> str:
    """The scheme the client used, behind ``trusted_cidrs``."""
    return TrustedProxies(trusted_cidrs).scheme(peer, headers, default)
