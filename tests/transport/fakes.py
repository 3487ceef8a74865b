"""Fakes and builders shared by the transport tests: counters, handler, UDP reactor, messages."""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from zope.interface import implementer

from sipapp.config import ListenSpec, TransportConfig
from sipapp.interfaces import IMessageHandler, IStats
from sipapp.transport.manager import TransportManager
from sipapp.transport.stream import SipStreamProtocol


@implementer(IStats)
class FakeStats:
    """Counters in a dict, keyed by name and sorted labels."""

    def __init__(self) -> None:
        self.counters: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}

    def inc(self, name: str, amount: int = 1, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        self.counters[key] = self.counters.get(key, 0) + amount

    def value(self, name: str, **labels: str) -> int:
        return self.counters.get((name, tuple(sorted(labels.items()))), 0)


@implementer(IMessageHandler)
class RecordingHandler:
    """Keeps every (message, source) it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[Any, Any]] = []

    def receive(self, message: object, source: object) -> None:
        self.received.append((message, source))


class FakeUdpPort:
    """What ``listenUDP`` returns; records datagrams written through it."""

    def __init__(self, protocol: Any, interface: str, port: int) -> None:
        self.protocol = protocol
        self.interface = interface
        self.port = port
        self.written: list[tuple[bytes, tuple[str, int]]] = []
        self.stopped = False
        self.fail_with: Exception | None = None
        self.family = socket.AF_INET6 if ":" in interface else socket.AF_INET
        protocol.makeConnection(self)

    def getHost(self) -> Any:
        if self.family == socket.AF_INET6:
            return IPv6Address("UDP", self.interface, self.port)
        return IPv4Address("UDP", self.interface, self.port)

    def write(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        if (":" in addr[0]) != (self.family == socket.AF_INET6):
            raise ValueError("address family mismatch")
        self.written.append((data, addr))

    def stopListening(self) -> None:
        self.stopped = True


class UdpMemoryReactor(MemoryReactorClock):
    """``MemoryReactorClock`` plus ``listenUDP``; port 0 gets 40000, 40001, ..."""

    def __init__(self) -> None:
        super().__init__()
        self.udp_ports: list[FakeUdpPort] = []
        self._next_port = 40000

    def listenUDP(
        self, port: int, protocol: Any, interface: str = "", maxPacketSize: int = 8192
    ) -> FakeUdpPort:
        if port == 0:
            port = self._next_port
            self._next_port += 1
        udp = FakeUdpPort(protocol, interface, port)
        self.udp_ports.append(udp)
        return udp


def make_config(*specs: str, **kw: Any) -> TransportConfig:
    """A TransportConfig listening on ``specs`` ('udp:127.0.0.1:5060', ...)."""
    listen = []
    for text in specs:
        parts = text.split(":", 1)
        host, _, port = parts[1].rpartition(":")
        listen.append(ListenSpec(parts[0], host.strip("[]"), int(port)))
    return TransportConfig(listen=tuple(listen), **kw)


def build_manager(
    reactor: UdpMemoryReactor, stats: FakeStats, handler: Any, *specs: str, **kw: Any
) -> TransportManager:
    """A listening manager on ``specs`` with ``handler`` set."""
    manager = TransportManager(reactor, make_config(*specs, **kw), stats)
    manager.handler = handler
    manager.listen()
    return manager


def request(
    method: str = "OPTIONS",
    via: str = "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1",
    to_tag: str | None = None,
    body: bytes = b"",
    extra: str = "",
) -> bytes:
    """A valid request whose top Via is ``via``."""
    to = "<sip:bob@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    head = (
        f"{method} sip:bob@127.0.0.1 SIP/2.0\r\n"
        f"Via: {via}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@127.0.0.1>;tag=a1\r\n"
        f"To: {to}\r\n"
        "Call-ID: call-1@127.0.0.1\r\n"
        f"CSeq: 1 {method}\r\n"
        f"{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def response(status: int = 200, via: str = "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1") -> bytes:
    """A valid response whose top Via is ``via``."""
    return (
        f"SIP/2.0 {status} OK\r\n"
        f"Via: {via}\r\n"
        "From: <sip:alice@127.0.0.1>;tag=a1\r\n"
        "To: <sip:bob@127.0.0.1>;tag=b1\r\n"
        "Call-ID: call-1@127.0.0.1\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def accept_connection(
    manager: TransportManager, reactor: UdpMemoryReactor, peer_port: int = 40000, v6: bool = False
) -> tuple[SipStreamProtocol, StringTransport]:
    """An incoming connection on the manager's first listening stream port."""
    factory = reactor.tcpServers[0][1] if reactor.tcpServers else reactor.sslServers[0][1]
    if v6:
        local, peer = IPv6Address("TCP", "::1", 5060), IPv6Address("TCP", "::1", peer_port)
    else:
        local = IPv4Address("TCP", "127.0.0.1", 5060)
        peer = IPv4Address("TCP", "127.0.0.1", peer_port)
    proto = factory.buildProtocol(peer)
    transport = StringTransport(hostAddress=local, peerAddress=peer)
    proto.makeConnection(transport)
    return proto, transport


