"""The transport manager: every SIP socket, and the choice of socket per message.

``TransportManager`` opens the UDP, TCP and TLS sockets of the configuration
and implements ``ITransportManager``: it sends a response where RFC 3261
§18.2.2 says (over the request's connection, or by the top Via), sends a
request to a resolved next hop (reusing connections), and tells the core its
Via sent-by and whether an address is one of its sockets. It never resolves a
host name: a message whose destination is not an IP literal is dropped and
counted. It also carries the ``handler`` and ``draining`` state the protocols
read.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, DeferredList, fail, succeed
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import implementer

from sipapp.interfaces import ITransportManager
from sipapp.transport import tls
from sipapp.transport.addresses import default_port, family_of, ip_literal, response_target
from sipapp.transport.connections import ConnectionPool, StreamListener
from sipapp.transport.inbound import Counters
from sipapp.transport.stream import SipStreamServerFactory
from sipapp.transport.udp import UdpTransport

if TYPE_CHECKING:
    from sipapp.config import ListenSpec, TransportConfig

log = Logger()

#: Large enough that no UDP datagram is ever truncated by the receive buffer.
_UDP_BUFFER = 65536


class ListenError(Exception):
    """A configured socket could not be opened; the message names it."""


@implementer(ITransportManager)
class TransportManager:
    """Owns the sockets and connections; ``reactor`` also serves as the clock."""

    def __init__(self, reactor: Any, config: TransportConfig, stats: Counters) -> None:
        self.reactor = reactor
        self.config = config
        self.stats = stats
        self.handler: Any = None  # an IMessageHandler, set by the composition root
        self.draining = False
        self.force_rport = config.force_rport
        self.max_message_size = config.max_message_size
        self.transports: list[UdpTransport | StreamListener] = []
        self._udp: list[UdpTransport] = []
        self._streams: list[StreamListener] = []
        self.pool = ConnectionPool(
            reactor,
            self,
            config.idle_timeout,
            config.connect_timeout,
            lambda: tls.client_context(config.tls_min_version),
        )

    # -- lifecycle ---------------------------------------------------------

    def listen(self) -> Deferred[list[Any]]:
        """Open every configured socket; fails with ``ListenError`` (and closes the rest)."""
        for spec in self.config.listen:
            try:
                self._open(spec)
            except Exception as err:
                self.stop()
                return fail(ListenError(f"cannot listen on {spec}: {err}"))
            log.info(
                "listening on {transport} {host} port {port}",
                transport=self.transports[-1].transport,
                host=spec.host,
                port=self.transports[-1].port,
            )
        return succeed(list(self.transports))

    def _open(self, spec: ListenSpec) -> None:
        kind = spec.transport.upper()
        host = ip_literal(spec.host) or spec.host
        if kind == "UDP":
            udp = UdpTransport(self, host, spec.port)
            udp.bound(
                self.reactor.listenUDP(
                    spec.port,
                    udp.protocol,
                    interface=host,
                    maxPacketSize=max(_UDP_BUFFER, self.max_message_size + 1),
                ),
                self.config.udp_buffer,
            )
            self._udp.append(udp)
            self.transports.append(udp)
            return
        if kind not in ("TCP", "TLS"):
            raise ValueError(f"unknown transport {spec.transport!r}")
        factory: Any = SipStreamServerFactory(
            self, self.pool, kind, self.reactor, self.config.idle_timeout
        )
        listener = StreamListener(kind, host, self.pool, spec.port)
        if kind == "TLS":
            if not spec.cert_key or not spec.private_key:
                raise ValueError("TLS needs certKey and privateKey")
            context = tls.server_context(
                spec.cert_key, spec.private_key, self.config.tls_min_version
            )
            # What reactor.listenSSL does, but on the injected clock.
            factory = TLSMemoryBIOFactory(context, False, factory, clock=self.reactor)
        port = self.reactor.listenTCP(spec.port, factory, interface=host)
        listener.bound(port)
        self._streams.append(listener)
        self.transports.append(listener)

    def stop(self) -> Deferred[None]:
        """Close every listening socket and live connection."""
        stopping = [t.stop() for t in self.transports]
        self.pool.close_all()
        self.transports = []
        self._udp = []
        self._streams = []
        done: Deferred[Any] = DeferredList(stopping, consumeErrors=True)
        return done.addCallback(lambda _: None)

    # -- ITransportManager --------------------------------------------------

    def send_response(self, response: Any, source: Any) -> bool:
        """Send ``response`` to a request that arrived from ``source`` (§18.2.2)."""
        data = response.to_bytes()
        transport = source.transport.upper()
        conn = source.connection
        if transport != "UDP" and conn is not None and conn.connected:
            conn.write(data)
            return True
        target = response_target(response.top_via, transport)
        if target is None:
            return self._drop("no_ip_target", "response has no IP address to go to")
        host, port = target
        if transport == "UDP":
            udp = self._udp_for(source.local_host, source.local_port, family_of(host))
            if udp is None:
                return self._drop("no_socket", "no UDP socket for the response")
            return udp.send(data, host, port)
        return self.pool.send(transport, data, host, port, self._bind_host(transport, host))

    def send_request(
        self,
        request: Any,
        transport: str,
        host: str,
        port: int,
        on_failure: Callable[[], None] | None = None,
    ) -> bool:
        """Send ``request`` to the resolved next hop ``host:port`` over ``transport``.

        ``False`` when it cannot be sent now; on TCP / TLS a connection that
        fails later calls ``on_failure`` instead.
        """
        transport = transport.upper()
        literal = ip_literal(host)
        if literal is None:
            return self._drop("not_ip_literal", f"next hop {host} is not an IP address")
        data = request.to_bytes()
        if transport == "UDP":
            udp = self._udp_for(None, None, family_of(literal))
            if udp is None:
                return self._drop("no_socket", "no UDP socket of the next hop's family")
            return udp.send(data, literal, port)
        if transport not in ("TCP", "TLS"):
            return self._drop("unknown_transport", f"unknown transport {transport}")
        return self.pool.send(
            transport, data, literal, port, self._bind_host(transport, literal), on_failure
        )

    def local_via(self, transport: str, family: int = socket.AF_INET) -> tuple[str, int]:
        """``(host, port)`` of a socket of ``transport``, preferring ``family``.

        The host is bare (``'::1'``); the Via renderer adds brackets. Raises
        ``LookupError`` when no socket of ``transport`` is open.
        """
        candidates = [t for t in self.transports if t.transport == transport.upper()]
        for t in candidates:
            if family_of(t.host) == family:
                return (t.host, t.port)
        if candidates:
            return (candidates[0].host, candidates[0].port)
        raise LookupError(f"no {transport} socket is open")

    def is_local(self, host: str, port: int | None, transport: str | None = None) -> bool:
        """True when ``host:port`` is exactly one of our sockets (names are never local here)."""
        literal = ip_literal(host)
        if literal is None:
            return False
        for t in self.transports:
            if transport is not None and t.transport != transport.upper():
                continue
            wanted = port if port is not None else default_port(t.transport)
            if t.port == wanted and ip_literal(t.host) == literal:
                return True
        return False

    # -- helpers -----------------------------------------------------------

    def _udp_for(
        self, local_host: str | None, local_port: int | None, family: int
    ) -> UdpTransport | None:
        """The UDP socket a request arrived on, else the first one of ``family``."""
        for udp in self._udp:
            if udp.host == local_host and udp.port == local_port:
                return udp
        for udp in self._udp:
            if udp.family == family:
                return udp
        return None

    def _bind_host(self, transport: str, target: str) -> str | None:
        """The local address of a listener of ``transport`` in the target's family."""
        for listener in self._streams:
            if listener.transport == transport and listener.family == family_of(target):
                return listener.host
        return None

    def _drop(self, reason: str, why: str) -> bool:
        log.warn("message not sent: {why}", why=why)
        self.stats.inc("sip_dropped_total", reason=reason)
        return False
