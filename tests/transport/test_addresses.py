"""Tests for sipapp.transport.addresses: IP literals, Via fix-ups, response targets."""

from __future__ import annotations

import socket

import pytest

from sipapp.sip import parse_via
from sipapp.transport.addresses import (
    default_port,
    family_of,
    fix_via,
    ip_literal,
    response_target,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("::ffff:127.0.0.1", "127.0.0.1"),
        ("example.com", None),
        ("", None),
        (None, None),
        ("127.0.0.1.example", None),
    ],
)
def test_ip_literal(text: str | None, expected: str | None) -> None:
    """IP literals are normalised; host names and empty text are not literals."""
    assert ip_literal(text) == expected


def test_family_and_default_port() -> None:
    """IPv6 literals are AF_INET6, everything else AF_INET; TLS defaults to 5061."""
    assert family_of("::1") == socket.AF_INET6
    assert family_of("[::1]") == socket.AF_INET6
    assert family_of("127.0.0.1") == socket.AF_INET
    assert (default_port("udp"), default_port("TCP"), default_port("TLS")) == (5060, 5060, 5061)


# (Via, source host, source port, force_rport, expected Via or None for unchanged)
FIX_CASES = [
    # sent-by equals the source address: nothing to add
    ("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1", "127.0.0.1", 5070, False, None),
    # sent-by differs: received
    (
        "SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK1",
        "127.0.0.1",
        5070,
        False,
        "SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK1;received=127.0.0.1",
    ),
    # a host name always differs from the source address
    (
        "SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1",
        "127.0.0.1",
        5060,
        False,
        "SIP/2.0/UDP pc33.example.com;branch=z9hG4bK1;received=127.0.0.1",
    ),
    # rport present without value: received even when equal, rport filled
    (
        "SIP/2.0/UDP 127.0.0.1:5070;rport;branch=z9hG4bK1",
        "127.0.0.1",
        40001,
        False,
        "SIP/2.0/UDP 127.0.0.1:5070;rport=40001;branch=z9hG4bK1;received=127.0.0.1",
    ),
    # IPv6: equal in another spelling is equal
    ("SIP/2.0/UDP [0:0::1]:5070;branch=z9hG4bK1", "::1", 5070, False, None),
    # IPv6 differs: received without brackets
    (
        "SIP/2.0/UDP [::2]:5070;branch=z9hG4bK1",
        "::1",
        5070,
        False,
        "SIP/2.0/UDP [::2]:5070;branch=z9hG4bK1;received=::1",
    ),
    # IPv6 with rport
    (
        "SIP/2.0/UDP [::1]:5070;branch=z9hG4bK1;rport",
        "::1",
        5071,
        False,
        "SIP/2.0/UDP [::1]:5070;branch=z9hG4bK1;rport=5071;received=::1",
    ),
    # force_rport behaves as if rport were present
    (
        "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1",
        "127.0.0.1",
        40002,
        True,
        "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;received=127.0.0.1;rport=40002",
    ),
    # an rport that already has a value is kept
    (
        "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport=5090",
        "127.0.0.1",
        40003,
        False,
        "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport=5090;received=127.0.0.1",
    ),
    # an IPv4-mapped source compares as IPv4
    ("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1", "::ffff:127.0.0.1", 5070, False, None),
]


@pytest.mark.parametrize(("via", "host", "port", "force", "expected"), FIX_CASES)
def test_fix_via(via: str, host: str, port: int, force: bool, expected: str | None) -> None:
    """RFC 3261 §18.2.1 received and RFC 3581 rport are applied as the table says."""
    fixed = fix_via(parse_via(via), host, port, force)
    if expected is None:
        assert fixed is None
    else:
        assert fixed is not None
        assert fixed == parse_via(expected)


# (transport, Via, expected target)
TARGET_CASES = [
    ("UDP", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1", ("127.0.0.1", 5070)),
    ("UDP", "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1", ("127.0.0.1", 5060)),
    ("UDP", "SIP/2.0/UDP h.example;received=127.0.0.2;branch=z9hG4bK1", ("127.0.0.2", 5060)),
    (
        "UDP",
        "SIP/2.0/UDP h.example:5070;received=127.0.0.2;rport=40000;branch=z9hG4bK1",
        ("127.0.0.2", 40000),
    ),
    ("UDP", "SIP/2.0/UDP 127.0.0.1:5070;rport;branch=z9hG4bK1", ("127.0.0.1", 5070)),
    ("UDP", "SIP/2.0/UDP h.example:5070;maddr=127.0.0.9;branch=z9hG4bK1", ("127.0.0.9", 5070)),
    (
        "UDP",
        "SIP/2.0/UDP 127.0.0.1:5070;maddr=m.example;received=127.0.0.3;branch=z9hG4bK1",
        ("127.0.0.3", 5070),
    ),
    ("UDP", "SIP/2.0/UDP h.example:5070;branch=z9hG4bK1", None),
    ("UDP", "SIP/2.0/UDP [::1]:5070;branch=z9hG4bK1", ("::1", 5070)),
    ("UDP", "SIP/2.0/UDP h.example;received=::1;rport=5072;branch=z9hG4bK1", ("::1", 5072)),
    (
        "TCP",
        "SIP/2.0/TCP h.example:5070;received=127.0.0.2;rport=40000;branch=z9hG4bK1",
        ("127.0.0.2", 5070),
    ),
    ("TCP", "SIP/2.0/TCP 127.0.0.1;maddr=127.0.0.9;branch=z9hG4bK1", ("127.0.0.1", 5060)),
    ("TLS", "SIP/2.0/TLS 127.0.0.1;branch=z9hG4bK1", ("127.0.0.1", 5061)),
    ("TLS", "SIP/2.0/TLS h.example;branch=z9hG4bK1", None),
]


@pytest.mark.parametrize(("transport", "via", "expected"), TARGET_CASES)
def test_response_target(transport: str, via: str, expected: tuple[str, int] | None) -> None:
    """RFC 3261 §18.2.2 / RFC 3581 response addressing, never resolving a name."""
    assert response_target(parse_via(via), transport) == expected
