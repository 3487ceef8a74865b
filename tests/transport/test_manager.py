"""Tests for sipapp.transport.manager: sockets, §18.2.2 addressing, next hops, "myself"."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from twisted.internet.error import ConnectionDone
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from zope.interface.verify import verifyObject

from sipapp.config import ListenSpec, TransportConfig
from sipapp.interfaces import ISipTransport, ITransportManager
from sipapp.sip import Request, make_response, parse_message
from sipapp.testing import write_self_signed
from sipapp.transport import Source, TransportManager
from sipapp.transport.manager import ListenError
from sipapp.transport.stream import SipStreamServerFactory

from .fakes import (
    FakeStats,
    RecordingHandler,
    UdpMemoryReactor,
    accept_connection,
    build_manager,
    request,
)


def test_interfaces(reactor, stats, handler) -> None:
    """The manager and every transport it opens provide their interfaces."""
    manager = build_manager(
        reactor, stats, handler, "udp:127.0.0.1:5060", "tcp:127.0.0.1:5060", "udp:[::1]:5060"
    )
    assert verifyObject(ITransportManager, manager)
    for transport in manager.transports:
        assert verifyObject(ISipTransport, transport)


def test_listen_opens_every_socket(reactor, stats, tmp_path: Path) -> None:
    """UDP, TCP and TLS on IPv4 and IPv6 are opened with the configured interfaces."""
    cert, key = write_self_signed(tmp_path)
    config = TransportConfig(
        listen=(
            ListenSpec("udp", "127.0.0.1", 0),
            ListenSpec("udp", "::1", 5062),
            ListenSpec("tcp", "::1", 5060),
            ListenSpec("tls", "127.0.0.1", 5061, cert, key),
        )
    )
    manager = TransportManager(reactor, config, stats)
    opened = manager.listen()
    result = opened.result
    assert [(t.transport, t.host, t.port) for t in result] == [
        ("UDP", "127.0.0.1", 40000),
        ("UDP", "::1", 5062),
        ("TCP", "::1", 5060),
        ("TLS", "127.0.0.1", 5061),
    ]
    assert [(p.interface, p.port) for p in reactor.udp_ports] == [
        ("127.0.0.1", 40000),
        ("::1", 5062),
    ]
    assert [(port, interface) for port, _, _, interface in reactor.tcpServers] == [
        (5060, "::1"),
        (5061, "127.0.0.1"),
    ]
    tls_factory = reactor.tcpServers[1][1]
    assert isinstance(tls_factory, TLSMemoryBIOFactory)
    assert isinstance(tls_factory.wrappedFactory, SipStreamServerFactory)


def test_listen_failure_closes_the_rest(reactor, stats, tmp_path: Path) -> None:
    """A socket that cannot be opened fails listen() with a ListenError; the others close."""
    config = TransportConfig(
        listen=(
            ListenSpec("udp", "127.0.0.1", 5060),
            ListenSpec("tls", "127.0.0.1", 5061, str(tmp_path / "no.crt"), str(tmp_path / "k")),
        )
    )
    manager = TransportManager(reactor, config, stats)
    failure = manager.listen().result
    assert failure.check(ListenError)
    assert "tls:127.0.0.1:5061" in failure.getErrorMessage()
    assert "no.crt" in failure.getErrorMessage()
    assert reactor.udp_ports[0].stopped
    assert manager.transports == []


def received_request(
    reactor: UdpMemoryReactor,
    stats: FakeStats,
    handler: RecordingHandler,
    via: str,
    peer: tuple[str, int] = ("127.0.0.1", 40000),
    index: int = 0,
) -> tuple[Request, Source]:
    """Feed a request with top Via ``via`` to UDP socket ``index``; return (request, source)."""
    reactor.udp_ports[index].protocol.datagramReceived(request(via=via), peer)
    message, source = handler.received[-1]
    assert isinstance(message, Request)
    return message, source


# (Via sent by the client, datagram source, expected destination of the response)
UDP_RESPONSE_CASES = [
    ("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1", ("127.0.0.1", 40000), ("127.0.0.1", 5070)),
    (
        "SIP/2.0/UDP 127.0.0.1:5070;rport;branch=z9hG4bK1",
        ("127.0.0.1", 40000),
        ("127.0.0.1", 40000),
    ),
    ("SIP/2.0/UDP phone.example:5070;branch=z9hG4bK1", ("127.0.0.2", 40000), ("127.0.0.2", 5070)),
    ("SIP/2.0/UDP phone.example;branch=z9hG4bK1", ("127.0.0.2", 40000), ("127.0.0.2", 5060)),
    ("SIP/2.0/UDP 127.0.0.3;branch=z9hG4bK1", ("127.0.0.2", 40000), ("127.0.0.2", 5060)),
    (
        "SIP/2.0/UDP h.example:5070;maddr=127.0.0.9;branch=z9hG4bK1",
        ("127.0.0.2", 4),
        ("127.0.0.9", 5070),
    ),
    (
        "SIP/2.0/UDP h.example:5070;maddr=m.example;branch=z9hG4bK1",
        ("127.0.0.2", 4),
        ("127.0.0.2", 5070),
    ),
]


@pytest.mark.parametrize(("via", "peer", "expected"), UDP_RESPONSE_CASES)
def test_udp_response_addressing(reactor, stats, handler, via, peer, expected) -> None:
    """A UDP response goes where RFC 3261 §18.2.2 and RFC 3581 say, from the same socket."""
    manager = build_manager(reactor, stats, handler, "udp:127.0.0.1:5060", "udp:127.0.0.1:5080")
    message, source = received_request(reactor, stats, handler, via, peer, index=1)
    assert manager.send_response(make_response(message, 200, "OK"), source) is True
    assert reactor.udp_ports[0].written == []
    [(data, addr)] = reactor.udp_ports[1].written
    assert addr == expected
    assert data.startswith(b"SIP/2.0 200 OK\r\n")


def test_udp_response_ipv6(reactor, stats, handler) -> None:
    """An IPv6 request is answered from the IPv6 socket at its rport."""
    manager = build_manager(reactor, stats, handler, "udp:127.0.0.1:5060", "udp:[::1]:5060")
    via = "SIP/2.0/UDP [::1]:5070;rport;branch=z9hG4bK1"
    message, source = received_request(reactor, stats, handler, via, ("::1", 40000), index=1)
    assert manager.send_response(make_response(message, 200, "OK"), source)
    assert reactor.udp_ports[1].written[0][1] == ("::1", 40000)


def test_udp_response_without_ip_is_dropped(reactor, stats, handler) -> None:
    """A response whose Via names only a host (core-built, no received) is dropped, not resolved."""
    manager = build_manager(reactor, stats, handler, "udp:127.0.0.1:5060")
    message = parse_message(request(via="SIP/2.0/UDP phone.example;branch=z9hG4bK1"))
    source = Source("UDP", "127.0.0.1", 40000, "127.0.0.1", 5060)
    assert manager.send_response(make_response(message, 200, "OK"), source) is False
    assert reactor.udp_ports[0].written == []
    assert stats.value("sip_dropped_total", reason="no_ip_target") == 1


def test_stream_response_after_connection_closed(reactor, stats, handler) -> None:
    """When the request's connection is gone, a TCP response opens one to received:sent-by port."""
    manager = build_manager(reactor, stats, handler, "tcp:127.0.0.1:5060")
    proto, transport = accept_connection(manager, reactor, peer_port=40000)
    proto.dataReceived(request(via="SIP/2.0/TCP phone.example:5090;branch=z9hG4bK1"))
    message, source = handler.received[-1]
    proto.connectionLost(Failure(ConnectionDone()))
    assert manager.send_response(make_response(message, 200, "OK"), source) is True
    assert transport.value() == b""
    [(host, port, _, _, bind)] = reactor.tcpClients
    assert (host, port, bind) == ("127.0.0.1", 5090, ("127.0.0.1", 0))


def test_send_request_picks_socket_by_family(reactor, stats, handler) -> None:
    """A UDP request leaves from the first socket of the next hop's address family."""
    manager = build_manager(reactor, stats, handler, "udp:127.0.0.1:5060", "udp:[::1]:5060")
    message = parse_message(request())
    assert manager.send_request(message, "UDP", "::1", 5090) is True
    assert manager.send_request(message, "udp", "127.0.0.1", 5090) is True
    assert reactor.udp_ports[1].written[0][1] == ("::1", 5090)
    assert reactor.udp_ports[0].written[0][1] == ("127.0.0.1", 5090)
    assert stats.value("sip_sent_total", transport="UDP", kind="request") == 2


@pytest.mark.parametrize(
    ("transport", "host", "reason"),
    [
        ("UDP", "example.com", "not_ip_literal"),
        ("UDP", "::1", "no_socket"),
        ("SCTP", "127.0.0.1", "unknown_transport"),
    ],
)
def test_send_request_failures(reactor, stats, handler, transport, host, reason) -> None:
    """A next hop that cannot be reached returns False and is counted."""
    manager = build_manager(reactor, stats, handler, "udp:127.0.0.1:5060")
    assert manager.send_request(parse_message(request()), transport, host, 5060) is False
    assert stats.value("sip_dropped_total", reason=reason) == 1


def test_local_via(reactor, stats, handler) -> None:
    """local_via names a socket of the transport, preferring the address family."""
    manager = build_manager(
        reactor, stats, handler, "udp:127.0.0.1:5060", "udp:[::1]:5062", "tcp:127.0.0.1:5064"
    )
    assert manager.local_via("UDP", socket.AF_INET) == ("127.0.0.1", 5060)
    assert manager.local_via("udp", socket.AF_INET6) == ("::1", 5062)
    assert manager.local_via("TCP", socket.AF_INET6) == ("127.0.0.1", 5064)
    with pytest.raises(LookupError):
        manager.local_via("TLS", socket.AF_INET)


def test_is_local(reactor, stats, handler) -> None:
    """Only exact host:port pairs of our sockets are local; no port means the default port."""
    manager = build_manager(
        reactor, stats, handler, "udp:127.0.0.1:5060", "tcp:[::1]:5070", "udp:127.0.0.1:5080"
    )
    assert manager.is_local("127.0.0.1", 5060, "UDP")
    assert manager.is_local("127.0.0.1", None, None)
    assert manager.is_local("127.0.0.1", 5080, None)
    assert manager.is_local("[::1]", 5070, "tcp")
    assert manager.is_local("0:0::1", 5070, None)
    assert not manager.is_local("127.0.0.1", 5060, "TCP")
    assert not manager.is_local("::1", None, "TCP")
    assert not manager.is_local("127.0.0.1", 5061, None)
    assert not manager.is_local("localhost", 5060, None)


def test_stop_closes_everything(reactor, stats, handler) -> None:
    """stop() stops every listening socket, closes connections and fires."""
    manager = build_manager(reactor, stats, handler, "udp:127.0.0.1:5060", "tcp:127.0.0.1:5060")
    _, transport = accept_connection(manager, reactor)
    done = manager.stop()
    assert done.called
    assert reactor.udp_ports[0].stopped
    assert transport.disconnecting
    assert manager.transports == []
