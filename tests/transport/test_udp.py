"""Tests for sipapp.transport.udp: datagrams in, datagrams out, nothing ever raised."""

from __future__ import annotations

import pytest

from sipapp.sip import Request, Response, parse_message
from sipapp.transport import Source

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


def udp_setup(
    reactor: UdpMemoryReactor,
    stats: FakeStats,
    handler: RecordingHandler,
    spec: str = "udp:127.0.0.1:5060",
    **kw: object,
) -> FakeUdpPort:
    """A manager with one UDP socket; returns the fake port."""
    build_manager(reactor, stats, handler, spec, **kw)
    return reactor.udp_ports[0]


def test_request_reaches_handler(reactor, stats, handler) -> None:
    """A valid request goes to the handler with its Source and is counted."""
    port = udp_setup(reactor, stats, handler)
    port.protocol.datagramReceived(request(), PEER)
    [(message, source)] = handler.received
    assert isinstance(message, Request)
    assert message.method == "OPTIONS"
    assert source == Source("UDP", "127.0.0.1", 5070, "127.0.0.1", 5060, None)
    assert stats.value("sip_received_total", transport="UDP", kind="request") == 1
    assert port.written == []


def test_response_reaches_handler(reactor, stats, handler) -> None:
    """A valid response goes to the handler unchanged."""
    port = udp_setup(reactor, stats, handler)
    port.protocol.datagramReceived(response(180), PEER)
    [(message, _)] = handler.received
    assert isinstance(message, Response)
    assert message.status == 180
    assert stats.value("sip_received_total", transport="UDP", kind="response") == 1


@pytest.mark.parametrize("data", [b"", b"\r\n", b"\r\n\r\n", b" \t\r\n "])
def test_keepalives_are_ignored(reactor, stats, handler, data: bytes) -> None:
    """Datagrams of only CR/LF/whitespace are keep-alives: no answer, no handler call."""
    port = udp_setup(reactor, stats, handler)
    port.protocol.datagramReceived(data, PEER)
    assert handler.received == []
    assert port.written == []
    assert stats.counters == {}


def test_received_and_rport_are_added(reactor, stats, handler) -> None:
    """The top Via gets received and the rport value of the datagram's source."""
    port = udp_setup(reactor, stats, handler)
    via = "SIP/2.0/UDP client.example:5070;rport;branch=z9hG4bK-1"
    port.protocol.datagramReceived(request(via=via), ("127.0.0.1", 40000))
    [(message, _)] = handler.received
    assert message.top_via.received == "127.0.0.1"
    assert message.top_via.rport == "40000"
    assert b";received=127.0.0.1" in message.to_bytes()


def test_force_rport(reactor, stats, handler) -> None:
    """With force_rport a client without rport gets one anyway."""
    port = udp_setup(reactor, stats, handler, force_rport=True)
    port.protocol.datagramReceived(request(), ("127.0.0.1", 40000))
    [(message, _)] = handler.received
    assert (message.top_via.received, message.top_via.rport) == ("127.0.0.1", "40000")


def test_ipv6_socket(reactor, stats, handler) -> None:
    """On an IPv6 socket the Source carries bare IPv6 addresses."""
    port = udp_setup(reactor, stats, handler, "udp:[::1]:5060")
    via = "SIP/2.0/UDP [::1]:5070;branch=z9hG4bK-1;rport"
    port.protocol.datagramReceived(request(via=via), ("::1", 5070))
    [(message, source)] = handler.received
    assert source == Source("UDP", "::1", 5070, "::1", 5060, None)
    assert message.top_via.received == "::1"


def test_bad_request_gets_400_and_protocol_survives(reactor, stats, handler) -> None:
    """A request with a broken header is answered 400 at its source; the next one is fine."""
    port = udp_setup(reactor, stats, handler)
    bad = request().replace(b"CSeq: 1 OPTIONS", b"CSeq: one OPTIONS")
    port.protocol.datagramReceived(bad, PEER)
    [(data, addr)] = port.written
    assert addr == PEER
    answer = parse_message(data)
    assert isinstance(answer, Response)
    assert answer.status == 400
    assert answer.call_id == "call-1@127.0.0.1"
    assert handler.received == []
    assert stats.value("sip_parse_errors_total", transport="UDP") == 1
    assert stats.value("sip_sent_total", transport="UDP", kind="response") == 1
    port.protocol.datagramReceived(request(), PEER)
    assert len(handler.received) == 1


def test_bad_version_gets_505(reactor, stats, handler) -> None:
    """A request in SIP/3.0 is answered 505."""
    port = udp_setup(reactor, stats, handler)
    bad = request().replace(b"sip:bob@127.0.0.1 SIP/2.0", b"sip:bob@127.0.0.1 SIP/3.0")
    port.protocol.datagramReceived(bad, PEER)
    [(data, _)] = port.written
    assert data.startswith(b"SIP/2.0 505 ")


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01\x02garbage\xff",
        b"NOTSIP\r\n\r\n",
        response().replace(b"CSeq: 1 OPTIONS", b"CSeq: x"),
        b"SIP/2.0 999 Nope\r\n\r\n",
    ],
)
def test_garbage_and_bad_responses_are_dropped(reactor, stats, handler, data: bytes) -> None:
    """Unparseable start lines and bad responses are dropped and counted, never answered."""
    port = udp_setup(reactor, stats, handler)
    port.protocol.datagramReceived(data, PEER)
    assert port.written == []
    assert handler.received == []
    assert stats.value("sip_dropped_total", reason="unparseable") == 1
    port.protocol.datagramReceived(request(), PEER)
    assert len(handler.received) == 1


def test_oversize_gets_513(reactor, stats, handler) -> None:
    """A datagram over max_message_size is answered 513 and not parsed further."""
    port = udp_setup(reactor, stats, handler, max_message_size=1000)
    big = request(body=b"x" * 2000, extra="Content-Type: text/plain\r\n")
    port.protocol.datagramReceived(big, PEER)
    [(data, addr)] = port.written
    assert addr == PEER
    assert data.startswith(b"SIP/2.0 513 ")
    assert handler.received == []
    assert stats.value("sip_dropped_total", reason="too_large") == 1


def test_handler_exception_is_contained(reactor, stats, handler) -> None:
    """A handler that raises is logged and counted; the protocol keeps working."""
    port = udp_setup(reactor, stats, handler)
    calls = []

    def explode(message: object, source: object) -> None:
        calls.append(message)
        raise RuntimeError("boom")

    handler.receive = explode  # type: ignore[method-assign]
    port.protocol.datagramReceived(request(), PEER)
    port.protocol.datagramReceived(request(), PEER)
    assert len(calls) == 2
    assert stats.value("sip_dropped_total", reason="internal_error") == 2


def test_no_handler_drops(reactor, stats, handler) -> None:
    """Before the core is wired a message is dropped and counted."""
    port = udp_setup(reactor, stats, None)
    port.protocol.datagramReceived(request(), PEER)
    assert stats.value("sip_dropped_total", reason="no_handler") == 1


def test_send_refuses_host_names(reactor, stats, handler) -> None:
    """UdpTransport.send never resolves: a host name is refused."""
    transport = udp_setup(reactor, stats, handler).protocol.sip_transport
    assert transport.send(b"x", "example.com", 5060) is False
    assert stats.value("sip_dropped_total", reason="not_ip_literal") == 1


def test_send_error_returns_false(reactor, stats, handler) -> None:
    """A socket error on write makes send return False and is counted."""
    port = udp_setup(reactor, stats, handler)
    port.fail_with = OSError(101, "Network is unreachable")
    assert port.protocol.sip_transport.send(b"x", "127.0.0.1", 5070) is False
    assert stats.value("sip_dropped_total", reason="send_error") == 1


def test_dual_stack_socket_maps_ipv4(reactor, stats, handler) -> None:
    """An IPv6 socket sends to an IPv4 peer by its IPv4-mapped address."""
    port = udp_setup(reactor, stats, handler, "udp:[::]:5060")
    assert port.protocol.sip_transport.send(b"x", "127.0.0.1", 5070) is True
    assert port.written == [(b"x", ("::ffff:127.0.0.1", 5070))]


def test_stop(reactor, stats, handler) -> None:
    """stop() stops listening and fires."""
    port = udp_setup(reactor, stats, handler)
    d = port.protocol.sip_transport.stop()
    assert port.stopped
    assert d.called


def test_enlarge_buffers_on_a_real_socket() -> None:
    """A UDP socket gets at least the requested receive buffer (the kernel may double it)."""
    import socket

    from sipapp.transport.udp import enlarge_buffers

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        default = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        got = enlarge_buffers(sock, 2 * 1024 * 1024)
        assert got >= 2 * 1024 * 1024 > default
    finally:
        sock.close()


def test_enlarge_buffers_falls_back_to_the_plain_option() -> None:
    """Without the right to force, the plain SO_RCVBUF / SO_SNDBUF options are used."""
    import socket

    from sipapp.transport.udp import enlarge_buffers

    class Unprivileged:
        def __init__(self) -> None:
            self.options: dict[int, int] = {}

        def setsockopt(self, level: int, option: int, value: int) -> None:
            if option in (
                getattr(socket, "SO_RCVBUFFORCE", -1),
                getattr(socket, "SO_SNDBUFFORCE", -2),
            ):
                raise PermissionError("not allowed")
            self.options[option] = value

        def getsockopt(self, level: int, option: int) -> int:
            return self.options[option]

    sock = Unprivileged()
    assert enlarge_buffers(sock, 1 << 20) == 1 << 20
    assert sock.options == {socket.SO_RCVBUF: 1 << 20, socket.SO_SNDBUF: 1 << 20}
