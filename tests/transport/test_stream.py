"""Tests for sipapp.transport.stream: framing, ping/pong, errors and idle timeout on TCP."""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from zope.interface.verify import verifyObject

from sipapp.interfaces import IConnection
from sipapp.sip import Request, Response, make_response, parse_message
from sipapp.transport import Source
from sipapp.transport.manager import TransportManager
from sipapp.transport.stream import SipStreamProtocol

from .fakes import (
    FakeStats,
    RecordingHandler,
    UdpMemoryReactor,
    accept_connection,
    build_manager,
    request,
)


def tcp(
    reactor: UdpMemoryReactor, stats: FakeStats, handler: RecordingHandler, **kw: Any
) -> tuple[TransportManager, SipStreamProtocol, StringTransport]:
    """A manager listening on TCP 127.0.0.1:5060 and one accepted connection."""
    manager = build_manager(reactor, stats, handler, "tcp:127.0.0.1:5060", **kw)
    proto, transport = accept_connection(manager, reactor)
    return manager, proto, transport


TCP_VIA = "SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bK-1"


def test_connection_provides_iconnection(reactor, stats, handler) -> None:
    """An accepted connection provides IConnection and knows its peer."""
    _, proto, _ = tcp(reactor, stats, handler)
    assert verifyObject(IConnection, proto)
    assert (proto.peer_host, proto.peer_port, proto.connected) == ("127.0.0.1", 40000, True)
    assert stats.value("tcp_connections", transport="TCP") == 1


def test_message_split_across_chunks(reactor, stats, handler) -> None:
    """A message fed one byte at a time is delivered once, with its connection in Source."""
    _, proto, _ = tcp(reactor, stats, handler)
    data = request(via=TCP_VIA, body=b"hello", extra="Content-Type: text/plain\r\n")
    for i in range(len(data)):
        proto.dataReceived(data[i : i + 1])
    [(message, source)] = handler.received
    assert isinstance(message, Request)
    assert message.body == b"hello"
    assert source == Source("TCP", "127.0.0.1", 40000, "127.0.0.1", 5060, proto)


def test_pipelined_messages(reactor, stats, handler) -> None:
    """Several messages in one chunk are all delivered, in order."""
    _, proto, _ = tcp(reactor, stats, handler)
    proto.dataReceived(request("OPTIONS", via=TCP_VIA) + b"\r\n" + request("INFO", via=TCP_VIA))
    assert [m.method for m, _ in handler.received] == ["OPTIONS", "INFO"]


def test_ping_gets_pong(reactor, stats, handler) -> None:
    """CRLFCRLF is answered with CRLF; a single CRLF is ignored."""
    _, proto, transport = tcp(reactor, stats, handler)
    proto.dataReceived(b"\r\n\r\n")
    assert transport.value() == b"\r\n"
    transport.clear()
    proto.dataReceived(b"\r\n")
    assert transport.value() == b""
    assert handler.received == []


def test_bad_header_gets_400_and_connection_stays(reactor, stats, handler) -> None:
    """A framed request with a bad header is answered 400; the connection stays usable."""
    _, proto, transport = tcp(reactor, stats, handler)
    proto.dataReceived(request(via=TCP_VIA).replace(b"CSeq: 1 OPTIONS", b"CSeq: x OPTIONS"))
    answer = parse_message(transport.value())
    assert isinstance(answer, Response)
    assert answer.status == 400
    assert not transport.disconnecting
    proto.dataReceived(request(via=TCP_VIA))
    assert len(handler.received) == 1


def test_framing_error_answers_and_closes(reactor, stats, handler) -> None:
    """A request without Content-Length on a stream is answered 400 and the connection closed."""
    _, proto, transport = tcp(reactor, stats, handler)
    data = request(via=TCP_VIA).replace(b"Content-Length: 0\r\n", b"")
    proto.dataReceived(data)
    assert transport.value().startswith(b"SIP/2.0 400 ")
    assert transport.disconnecting
    assert stats.value("sip_dropped_total", reason="framing") == 1
    proto.dataReceived(request(via=TCP_VIA))
    assert handler.received == []


def test_oversize_answers_513_and_closes(reactor, stats, handler) -> None:
    """A message over max_message_size gets 513 and the connection is closed."""
    _, proto, transport = tcp(reactor, stats, handler, max_message_size=1000)
    proto.dataReceived(request(via=TCP_VIA, body=b"x" * 2000, extra="Content-Type: a/b\r\n"))
    assert transport.value().startswith(b"SIP/2.0 513 ")
    assert transport.disconnecting
    assert handler.received == []


def test_endless_garbage_closes(reactor, stats, handler) -> None:
    """Bytes that never form a header section are cut off at max_message_size."""
    _, proto, transport = tcp(reactor, stats, handler, max_message_size=1000)
    proto.dataReceived(b"\x00garbage" * 200)
    assert transport.disconnecting
    assert transport.value() == b""


def test_handler_exception_is_contained(reactor, stats, handler) -> None:
    """A handler that raises is logged and counted; the next pipelined message still arrives."""
    _, proto, _ = tcp(reactor, stats, handler)
    seen = []

    def explode(message: object, source: object) -> None:
        seen.append(message)
        raise RuntimeError("boom")

    handler.receive = explode  # type: ignore[method-assign]
    proto.dataReceived(request(via=TCP_VIA) * 2)
    assert len(seen) == 2
    assert stats.value("sip_dropped_total", reason="internal_error") == 2


def test_idle_timeout(reactor, stats, handler) -> None:
    """A connection is closed after idle_timeout without traffic; traffic resets the timer."""
    _, proto, transport = tcp(reactor, stats, handler, idle_timeout=10.0)
    reactor.advance(9)
    proto.dataReceived(b"\r\n")
    reactor.advance(9)
    proto.write(b"SIP/2.0 200 OK\r\n\r\n")
    reactor.advance(9)
    assert not transport.disconnecting
    reactor.advance(1.5)
    assert transport.disconnecting
    assert stats.value("tcp_idle_closed_total", transport="TCP") == 1


def test_connection_lost_unregisters(reactor, stats, handler) -> None:
    """A lost connection leaves the table, stops its timer and ignores later writes."""
    manager, proto, transport = tcp(reactor, stats, handler)
    assert manager.pool.get("127.0.0.1", 40000, "TCP") is proto
    proto.connectionLost(Failure(ConnectionDone()))
    assert manager.pool.get("127.0.0.1", 40000, "TCP") is None
    assert stats.value("tcp_connections", transport="TCP") == 0
    assert reactor.getDelayedCalls() == []
    proto.write(b"late")
    assert transport.value() == b""


def test_response_goes_back_over_the_connection(reactor, stats, handler) -> None:
    """send_response writes on the connection the request came in on."""
    manager, proto, transport = tcp(reactor, stats, handler)
    proto.dataReceived(request(via=TCP_VIA))
    [(message, source)] = handler.received
    assert manager.send_response(make_response(message, 200, "OK"), source) is True
    assert transport.value().startswith(b"SIP/2.0 200 OK\r\n")
    assert stats.value("sip_sent_total", transport="TCP", kind="response") == 1
    assert reactor.tcpClients == []


def test_ipv6_connection(reactor, stats, handler) -> None:
    """An IPv6 connection gets bare IPv6 addresses in its Source and Via received."""
    manager = build_manager(reactor, stats, handler, "tcp:[::1]:5060")
    proto, _ = accept_connection(manager, reactor, v6=True)
    proto.dataReceived(request(via="SIP/2.0/TCP [::1]:5999;branch=z9hG4bK-1;rport"))
    [(message, source)] = handler.received
    assert (source.host, source.local_host) == ("::1", "::1")
    assert (message.top_via.received, message.top_via.rport) == ("::1", "40000")


def test_outgoing_queue_flushes_on_connect(reactor: UdpMemoryReactor) -> None:
    """Writes on an outgoing connection wait until it is made, then go in order."""
    stats = FakeStats()
    manager = build_manager(reactor, stats, RecordingHandler(), "tcp:127.0.0.1:5060")
    conn = manager.pool.connect("TCP", "127.0.0.1", 5080)
    conn.write(b"one")
    conn.write(b"two")
    transport = StringTransport(
        hostAddress=IPv4Address("TCP", "127.0.0.1", 41000),
        peerAddress=IPv4Address("TCP", "127.0.0.1", 5080),
    )
    conn.makeConnection(transport)
    assert transport.value() == b"onetwo"
    assert (conn.peer_host, conn.peer_port, conn.local_port) == ("127.0.0.1", 5080, 41000)
