"""Tests for sipapp.transport.inbound: draining, keep-alive and kind helpers."""

from __future__ import annotations

import pytest

from sipapp.sip import Request, Response, parse_message
from sipapp.transport.inbound import is_keepalive, is_new_request, kind_of

from .fakes import (
    FakeStats,
    FakeUdpPort,
    RecordingHandler,
    UdpMemoryReactor,
    build_manager,
    request,
    response,
)

PEER = ("127.0.0.1", 5070)


def draining_udp(
    reactor: UdpMemoryReactor, stats: FakeStats, handler: RecordingHandler
) -> FakeUdpPort:
    """A draining manager with one UDP socket; returns its fake port."""
    manager = build_manager(reactor, stats, handler, "udp:127.0.0.1:5060")
    manager.draining = True
    return reactor.udp_ports[0]


def test_draining_refuses_new_requests(reactor, stats, handler) -> None:
    """While draining an out-of-dialog INVITE gets 503 + Retry-After at its rport."""
    port = draining_udp(reactor, stats, handler)
    via = "SIP/2.0/UDP client.example:5070;rport;branch=z9hG4bK-1"
    port.protocol.datagramReceived(request("INVITE", via=via), ("127.0.0.1", 40000))
    assert handler.received == []
    [(data, addr)] = port.written
    assert addr == ("127.0.0.1", 40000)
    answer = parse_message(data)
    assert isinstance(answer, Response)
    assert (answer.status, answer.reason) == (503, "Service Unavailable")
    assert answer.get("Retry-After") == "5"
    assert answer.to.tag
    assert answer.top_via.received == "127.0.0.1"
    assert stats.value("sip_dropped_total", reason="draining") == 1


@pytest.mark.parametrize(
    "data",
    [
        request("BYE", to_tag="b1"),
        request("ACK"),
        request("CANCEL"),
        response(200),
    ],
)
def test_draining_lets_dialogs_and_responses_through(reactor, stats, handler, data) -> None:
    """While draining in-dialog requests, ACK, CANCEL and responses still reach the handler."""
    port = draining_udp(reactor, stats, handler)
    port.protocol.datagramReceived(data, PEER)
    assert len(handler.received) == 1
    assert port.written == []


def test_is_new_request() -> None:
    """Only out-of-dialog requests other than ACK and CANCEL are new."""
    invite, bye, ack = (
        parse_message(request("INVITE")),
        parse_message(request("BYE", to_tag="x")),
        parse_message(request("ACK")),
    )
    assert isinstance(invite, Request) and isinstance(bye, Request) and isinstance(ack, Request)
    assert is_new_request(invite)
    assert not is_new_request(bye)
    assert not is_new_request(ack)


def test_helpers() -> None:
    """Keep-alive detection and message kind from the first bytes."""
    assert is_keepalive(b"\r\n\r\n")
    assert not is_keepalive(b"OPTIONS")
    assert kind_of(b"SIP/2.0 200 OK") == "response"
    assert kind_of(b"INVITE sip:x SIP/2.0") == "request"
