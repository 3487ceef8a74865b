"""SIP over UDP (RFC 3261 §18): one listening datagram socket.

``SipDatagramProtocol`` receives: it drops keep-alives, answers oversize
datagrams with 513, and passes each datagram to :func:`inbound.accept`,
never letting an exception escape into the reactor. ``UdpTransport`` is the
``ISipTransport`` of that socket: its address, and sending datagrams from it.
Choosing the socket for a message is the manager's job.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import error
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from zope.interface import implementer

from sipapp.interfaces import ISipTransport
from sipapp.sip import MessageTooLarge
from sipapp.transport import inbound
from sipapp.transport.addresses import family_of, ip_literal
from sipapp.transport.source import Source

log = Logger()


class SipDatagramProtocol(DatagramProtocol):
    """Receives datagrams for one ``UdpTransport``."""

    def __init__(self, sip_transport: UdpTransport) -> None:
        self.sip_transport = sip_transport

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        """Handle one datagram; an unexpected error is logged and counted, never raised."""
        try:
            self._handle(data, addr)
        except Exception:
            log.failure("error handling a datagram from {addr}", addr=addr)
            self.sip_transport.owner.stats.inc("sip_dropped_total", reason="internal_error")

    def _handle(self, data: bytes, addr: tuple[str, int]) -> None:
        if inbound.is_keepalive(data):
            return
        owner = self.sip_transport.owner
        peer_host, peer_port = addr[0], addr[1]
        source = Source(
            transport="UDP",
            host=ip_literal(peer_host) or peer_host,
            port=peer_port,
            local_host=self.sip_transport.host,
            local_port=self.sip_transport.port,
        )

        def reply(answer: bytes) -> None:
            self.sip_transport.write(answer, peer_host, peer_port)

        if len(data) > owner.max_message_size:
            owner.stats.inc("sip_dropped_total", reason="too_large")
            err = MessageTooLarge(f"message exceeds {owner.max_message_size} bytes")
            inbound.reject(owner, data, err, source, reply)
            return
        inbound.accept(owner, data, source, reply, datagram=True)


@implementer(ISipTransport)
class UdpTransport:
    """One UDP socket bound to ``host``; ``port`` is the real one after :meth:`bound`."""

    transport = "UDP"

    def __init__(self, owner: inbound.Owner, host: str, port: int = 0) -> None:
        self.owner = owner
        self.host = host
        self.port = port
        self.family = family_of(host)
        self.protocol = SipDatagramProtocol(self)
        self.listening_port: Any = None

    def bound(self, listening_port: Any, buffer_size: int = 0) -> None:
        """Record the listening port and the real bound port number.

        ``buffer_size`` enlarges the socket's receive and send buffers: a
        burst of datagrams larger than the kernel's default (about 200 KB)
        is otherwise dropped before the server reads it.
        """
        self.listening_port = listening_port
        self.port = listening_port.getHost().port
        sock = getattr(listening_port, "socket", None)
        if buffer_size and sock is not None:
            got = enlarge_buffers(sock, buffer_size)
            log.info(
                "UDP {host} port {port}: receive buffer {size} bytes",
                host=self.host,
                port=self.port,
                size=got,
            )

    def send(self, data: bytes, host: str, port: int) -> bool:
        """Send one datagram to ``host:port`` (an IP literal); ``False`` on failure."""
        literal = ip_literal(host)
        if literal is None:
            log.warn("cannot send UDP to non-IP host {host}", host=host)
            self.owner.stats.inc("sip_dropped_total", reason="not_ip_literal")
            return False
        if self.family == socket.AF_INET6 and ":" not in literal:
            # A dual-stack IPv6 socket reaches IPv4 peers by their mapped address.
            literal = "::ffff:" + literal
        return self.write(data, literal, port)

    def write(self, data: bytes, host: str, port: int) -> bool:
        """Write ``data`` to the raw address ``(host, port)``; ``False`` on failure."""
        udp: Any = self.protocol.transport
        if udp is None:
            self.owner.stats.inc("sip_dropped_total", reason="not_listening")
            return False
        sock = getattr(udp, "socket", None)
        try:
            if sock is not None:
                # The socket directly: Twisted's Port.write re-checks the address
                # text on every datagram, which costs more than the send here.
                _sendto(sock, data, (host, port))
            else:
                udp.write(data, (host, port))
        except (OSError, ValueError, error.MessageLengthError) as err:
            log.warn("UDP send to {host}:{port} failed: {error}", host=host, port=port, error=err)
            self.owner.stats.inc("sip_dropped_total", reason="send_error")
            return False
        self.owner.stats.inc("sip_sent_total", transport="UDP", kind=inbound.kind_of(data))
        return True

    def stop(self) -> Deferred[None]:
        """Stop listening; a ``Deferred`` that fires once the socket is closed."""
        if self.listening_port is None:
            return succeed(None)
        return maybeDeferred(self.listening_port.stopListening)


def _sendto(sock: Any, data: bytes, addr: tuple[str, int]) -> None:
    """``sendto`` as Twisted's UDP port does it: retry on EINTR, ignore ECONNREFUSED."""
    while True:
        try:
            sock.sendto(data, addr)
            return
        except InterruptedError:
            continue
        except ConnectionRefusedError:
            return  # an ICMP error for an earlier datagram: nothing to do about it


def enlarge_buffers(sock: Any, size: int) -> int:
    """Set the receive and send buffers of ``sock`` to ``size``; the receive size it got.

    ``SO_RCVBUFFORCE`` passes the system limit (``net.core.rmem_max``) when
    the process may (root, or CAP_NET_ADMIN); otherwise the plain option is
    capped by that limit.
    """
    for forced, plain in (
        (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF),
        (getattr(socket, "SO_SNDBUFFORCE", None), socket.SO_SNDBUF),
    ):
        try:
            if forced is None:
                raise PermissionError
            sock.setsockopt(socket.SOL_SOCKET, forced, size)
        except OSError:
            try:
                sock.setsockopt(socket.SOL_SOCKET, plain, size)
            except OSError as err:
                log.warn("cannot set a UDP socket buffer: {error}", error=err)
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
