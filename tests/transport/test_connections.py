"""Tests for sipapp.transport.connections: connection reuse, outgoing TCP/TLS, listeners."""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import StringTransport
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure

from sipapp.sip import make_response, parse_message
from sipapp.transport.stream import SipStreamClientFactory

from .fakes import accept_connection, build_manager, request


def test_outgoing_connection_is_reused(reactor, stats, handler) -> None:
    """Two requests to one peer open one connection; both are written once it is up."""
    manager = build_manager(reactor, stats, handler, "tcp:127.0.0.1:5060", connect_timeout=3.0)
    first, second = parse_message(request("OPTIONS")), parse_message(request("INFO"))
    assert manager.send_request(first, "tcp", "127.0.0.1", 5080) is True
    assert manager.send_request(second, "TCP", "127.0.0.1", 5080) is True
    [(host, port, factory, timeout, bind)] = reactor.tcpClients
    assert (host, port, timeout, bind) == ("127.0.0.1", 5080, 3.0, ("127.0.0.1", 0))
    proto = factory.buildProtocol(IPv4Address("TCP", host, port))
    transport = StringTransport(
        hostAddress=IPv4Address("TCP", "127.0.0.1", 41000),
        peerAddress=IPv4Address("TCP", "127.0.0.1", 5080),
    )
    proto.makeConnection(transport)
    assert transport.value() == first.to_bytes() + second.to_bytes()
    assert stats.value("sip_sent_total", transport="TCP", kind="request") == 2


def test_incoming_connection_is_reused_for_requests(reactor, stats, handler) -> None:
    """A request to a peer that connected to us goes over that connection."""
    manager = build_manager(reactor, stats, handler, "tcp:127.0.0.1:5060")
    _, transport = accept_connection(manager, reactor, peer_port=40000)
    assert manager.send_request(parse_message(request()), "TCP", "127.0.0.1", 40000)
    assert transport.value().startswith(b"OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n")
    assert reactor.tcpClients == []


def test_connect_failure_drops_queue_and_forgets(reactor, stats, handler) -> None:
    """A failed connect counts the queued messages as dropped; the next send retries."""
    manager = build_manager(reactor, stats, handler, "tcp:127.0.0.1:5060")
    manager.send_request(parse_message(request()), "TCP", "127.0.0.1", 5080)
    manager.send_request(parse_message(request()), "TCP", "127.0.0.1", 5080)
    factory = reactor.tcpClients[0][2]
    factory.clientConnectionFailed(reactor.connectors[0], Failure(ConnectionRefusedError()))
    assert stats.value("sip_dropped_total", reason="connect_failed") == 2
    assert manager.pool.get("127.0.0.1", 5080, "TCP") is None
    manager.send_request(parse_message(request()), "TCP", "127.0.0.1", 5080)
    assert len(reactor.tcpClients) == 2


def test_connect_failure_calls_each_senders_on_failure(reactor, stats, handler) -> None:
    """Each message queued on a connection that fails reports it through its on_failure."""
    manager = build_manager(reactor, stats, handler, "tcp:127.0.0.1:5060")
    failed: list[str] = []
    manager.send_request(
        parse_message(request()), "TCP", "127.0.0.1", 5080, lambda: failed.append("a")
    )
    manager.send_request(
        parse_message(request()), "TCP", "127.0.0.1", 5080, lambda: failed.append("b")
    )
    assert failed == []
    factory = reactor.tcpClients[0][2]
    factory.clientConnectionFailed(reactor.connectors[0], Failure(ConnectionRefusedError()))
    assert failed == ["a", "b"]


def test_outgoing_tls_uses_client_context(reactor, stats, handler) -> None:
    """An outgoing TLS connection wraps TCP in TLS with the client context, on our clock."""
    manager = build_manager(reactor, stats, handler, "udp:127.0.0.1:5060")
    assert manager.send_request(parse_message(request()), "TLS", "127.0.0.1", 5061) is True
    [(host, port, factory, timeout, bind)] = reactor.tcpClients
    assert (host, port, timeout, bind) == ("127.0.0.1", 5061, 5.0, None)
    assert isinstance(factory, TLSMemoryBIOFactory)
    assert isinstance(factory.wrappedFactory, SipStreamClientFactory)
    manager.send_request(parse_message(request()), "TLS", "127.0.0.1", 5061)
    assert len(reactor.tcpClients) == 1


def test_outgoing_ipv6_binds_ipv6_listener(reactor, stats, handler) -> None:
    """An IPv6 next hop connects from the IPv6 listener's address, not the IPv4 one."""
    manager = build_manager(reactor, stats, handler, "tcp:127.0.0.1:5060", "tcp:[::1]:5060")
    manager.send_request(parse_message(request()), "TCP", "[::1]", 5080)
    [(host, port, _, _, bind)] = reactor.tcpClients
    assert (host, port, bind) == ("::1", 5080, ("::1", 0))


def test_host_names_are_refused(reactor, stats, handler) -> None:
    """The pool never resolves: a host name is refused and counted."""
    manager = build_manager(reactor, stats, handler, "tcp:127.0.0.1:5060")
    assert manager.pool.send("TCP", b"x", "example.com", 5060) is False
    assert reactor.tcpClients == []
    assert stats.value("sip_dropped_total", reason="not_ip_literal") == 1


def test_close_all(reactor, stats, handler) -> None:
    """close_all closes every live connection."""
    manager = build_manager(reactor, stats, handler, "tcp:127.0.0.1:5060")
    _, first = accept_connection(manager, reactor, peer_port=40000)
    _, second = accept_connection(manager, reactor, peer_port=40001)
    manager.pool.close_all()
    assert first.disconnecting and second.disconnecting


def test_close_while_connecting(reactor, stats, handler) -> None:
    """Closing a connection still being made abandons the connect attempt."""
    manager = build_manager(reactor, stats, handler, "tcp:127.0.0.1:5060")
    conn = manager.pool.connect("TCP", "127.0.0.1", 5080)
    conn.write(b"queued")
    manager.pool.close_all()
    assert reactor.connectors[0].stoppedConnecting
    transport = StringTransport(
        hostAddress=IPv4Address("TCP", "127.0.0.1", 41000),
        peerAddress=IPv4Address("TCP", "127.0.0.1", 5080),
    )
    conn.makeConnection(transport)
    assert transport.disconnecting
    assert transport.value() == b""
    assert not conn.connected


def test_closed_connection_is_not_used_for_responses(reactor, stats, handler) -> None:
    """After an idle close a response opens a new connection instead of writing to the old."""
    manager = build_manager(reactor, stats, handler, "tcp:127.0.0.1:5060", idle_timeout=5.0)
    proto, transport = accept_connection(manager, reactor, peer_port=40000)
    proto.dataReceived(request(via="SIP/2.0/TCP 127.0.0.1:5090;branch=z9hG4bK1"))
    message, source = handler.received[-1]
    reactor.advance(6)
    assert transport.disconnecting and not proto.connected
    assert manager.send_response(make_response(message, 200, "OK"), source) is True
    assert transport.value() == b""
    assert [(h, p) for h, p, *_ in reactor.tcpClients] == [("127.0.0.1", 5090)]
