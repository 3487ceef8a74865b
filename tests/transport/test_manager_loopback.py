"""The transport manager on real loopback sockets (127.0.0.1 and ::1, port 0).

Each test runs its own, never-installed ``SelectReactor`` and pumps it in
short steps up to a bounded deadline; the clients are plain ``socket`` /
``ssl`` objects. This proves the Twisted wiring (listenUDP / listenTCP /
listenSSL with an interface) that the memory-reactor tests cannot.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from twisted.internet.selectreactor import SelectReactor

from sipapp.config import ListenSpec, TransportConfig
from sipapp.sip import Request, Response, make_response, parse_message
from sipapp.testing import write_self_signed
from sipapp.transport import TransportManager

from .fakes import FakeStats, request

DEADLINE = 5.0


class EchoCore:
    """Answers every request 200 OK through the manager, as the core would."""

    def __init__(self, manager: TransportManager) -> None:
        self.manager = manager
        self.sources: list[Any] = []

    def receive(self, message: object, source: object) -> None:
        self.sources.append(source)
        if isinstance(message, Request):
            self.manager.send_response(make_response(message, 200, "OK"), source)


@contextlib.contextmanager
def running_manager(*specs: ListenSpec) -> Iterator[tuple[SelectReactor, TransportManager]]:
    """A listening manager on a private reactor; everything closed afterwards."""
    reactor = SelectReactor()
    manager = TransportManager(reactor, TransportConfig(listen=specs), FakeStats())
    manager.handler = EchoCore(manager)
    failures: list[Any] = []
    manager.listen().addErrback(failures.append)
    if failures:
        failures[0].raiseException()
    try:
        yield reactor, manager
    finally:
        stopped = manager.stop()
        pump(reactor, lambda: stopped.called)
        reactor.removeAll()
        reactor.waker.connectionLost(None)


def pump(reactor: SelectReactor, done: Callable[[], object], deadline: float = DEADLINE) -> Any:
    """Run the reactor in short steps until ``done()`` is true or the deadline passes."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        result = done()
        if result:
            return result
        reactor.runUntilCurrent()
        reactor.doIteration(0.01)
    return done()


def udp_roundtrip(reactor: SelectReactor, family: int, host: str, port: int) -> bytes | None:
    """Send one OPTIONS datagram from a fresh socket; return the reply, if any."""
    with socket.socket(family, socket.SOCK_DGRAM) as client:
        client.bind((host, 0))
        client.setblocking(False)
        local_port = client.getsockname()[1]
        sent_by = f"[{host}]" if ":" in host else host
        via = f"SIP/2.0/UDP {sent_by}:{local_port};rport;branch=z9hG4bK-udp"
        client.sendto(request(via=via), (host, port))

        def answer() -> bytes | None:
            try:
                return client.recv(65536)
            except BlockingIOError:
                return None

        reply: bytes | None = pump(reactor, answer)
        return reply


def ipv6_loopback() -> bool:
    """True when ::1 can be bound here."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_udp_ipv4_and_ipv6() -> None:
    """An OPTIONS over UDP on 127.0.0.1 and ::1 is answered 200 from the same socket."""
    assert ipv6_loopback(), "the IPv6 loopback ::1 is needed (ip -6 addr show lo)"
    specs = [ListenSpec("udp", "127.0.0.1", 0), ListenSpec("udp", "::1", 0)]
    with running_manager(*specs) as (reactor, manager):
        for transport in manager.transports:
            family = socket.AF_INET6 if ":" in transport.host else socket.AF_INET
            reply = udp_roundtrip(reactor, family, transport.host, transport.port)
            assert reply is not None, f"no answer on {transport.host}"
            answer = parse_message(reply)
            assert isinstance(answer, Response)
            assert answer.status == 200
            assert answer.top_via.received == transport.host
        assert len(manager.transports) == 2


def test_tcp_answers_and_pongs() -> None:
    """Over TCP a request is answered on its connection and a CRLFCRLF ping gets a CRLF."""
    with running_manager(ListenSpec("tcp", "127.0.0.1", 0)) as (reactor, manager):
        [listener] = manager.transports
        with socket.create_connection(("127.0.0.1", listener.port), timeout=DEADLINE) as client:
            client.setblocking(False)
            via = "SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK-tcp"
            client.sendall(b"\r\n\r\n" + request(via=via))
            received = bytearray()

            def complete() -> bool:
                with contextlib.suppress(BlockingIOError):
                    received.extend(client.recv(65536))
                return received.endswith(b"Content-Length: 0\r\n\r\n")

            assert pump(reactor, complete)
        assert received.startswith(b"\r\nSIP/2.0 200 OK\r\n")


def test_tls_answers_and_refuses_tls11(tmp_path: Path) -> None:
    """A TLS listener answers a TLS 1.2 client and refuses one limited to TLS 1.1."""
    cert, key = write_self_signed(tmp_path)
    spec = ListenSpec("tls", "127.0.0.1", 0, cert, key)
    with running_manager(spec) as (reactor, manager):
        [listener] = manager.transports
        results: dict[str, Any] = {}

        def client(name: str, maximum: ssl.TLSVersion) -> None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
            with warnings_off():
                context.minimum_version = ssl.TLSVersion.TLSv1
                context.maximum_version = maximum
            try:
                address = ("127.0.0.1", listener.port)
                with (
                    socket.create_connection(address, timeout=3) as raw,
                    context.wrap_socket(raw) as tls,
                ):
                    tls.sendall(request(via="SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-t"))
                    results[name] = tls.recv(65536)
            except (OSError, ssl.SSLError) as err:
                results[name] = err

        threads = [
            threading.Thread(target=client, args=("tls12", ssl.TLSVersion.TLSv1_2)),
            threading.Thread(target=client, args=("tls11", ssl.TLSVersion.TLSv1_1)),
        ]
        for thread in threads:
            thread.start()
        pump(reactor, lambda: len(results) == 2)
        for thread in threads:
            thread.join(DEADLINE)
    assert isinstance(results["tls12"], bytes)
    assert results["tls12"].startswith(b"SIP/2.0 200 OK\r\n")
    assert isinstance(results["tls11"], ssl.SSLError)


@contextlib.contextmanager
def warnings_off() -> Iterator[None]:
    """Silence the deprecation of TLS 1.0 / 1.1 constants: the test needs them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield
