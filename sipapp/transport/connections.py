"""The stream connection table and the listening TCP / TLS transports.

``ConnectionPool`` keeps live connections keyed by (peer host, peer port,
transport) so that a message to a peer reuses its connection (RFC 3261
§18.1.1, §18.2.2), and opens a new outgoing one when none is live, queueing
messages until it is up. ``StreamListener`` is the ``ISipTransport`` of one
listening TCP or TLS port. Neither resolves host names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import implementer

from sipapp.interfaces import ISipTransport
from sipapp.transport import inbound
from sipapp.transport.addresses import family_of, ip_literal
from sipapp.transport.stream import SipStreamClientFactory, SipStreamProtocol

log = Logger()

Key = tuple[str, int, str]


class ConnectionPool:
    """Live TCP / TLS connections by peer, and new outgoing ones.

    ``reactor`` provides ``IReactorTCP``, ``IReactorSSL`` and ``IReactorTime``;
    ``client_context`` returns the TLS client context factory (called on the
    first outgoing TLS connection).
    """

    def __init__(
        self,
        reactor: Any,
        owner: inbound.Owner,
        idle_timeout: float,
        connect_timeout: float,
        client_context: Callable[[], Any],
    ) -> None:
        self.reactor = reactor
        self.owner = owner
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self._client_context = client_context
        self._tls_context: Any = None
        self._table: dict[Key, SipStreamProtocol] = {}

    @staticmethod
    def key(host: str, port: int, transport: str) -> Key:
        """The table key: normalised host, port, upper-case transport name."""
        return (ip_literal(host) or host, port, transport.upper())

    def get(self, host: str, port: int, transport: str) -> SipStreamProtocol | None:
        """The live (or connecting) connection to a peer, or ``None``."""
        conn = self._table.get(self.key(host, port, transport))
        if conn is None or conn.closed:
            return None
        return conn

    def add(self, conn: SipStreamProtocol) -> None:
        """Register ``conn``; a newer connection to the same peer replaces an older one."""
        self._table[self.key(conn.peer_host, conn.peer_port, conn.transport_name)] = conn

    def remove(self, conn: SipStreamProtocol) -> None:
        """Unregister ``conn`` unless a newer connection took its place."""
        key = self.key(conn.peer_host, conn.peer_port, conn.transport_name)
        if self._table.get(key) is conn:
            del self._table[key]

    def connections(self) -> list[SipStreamProtocol]:
        """Every registered connection."""
        return list(self._table.values())

    def send(
        self,
        transport: str,
        data: bytes,
        host: str,
        port: int,
        bind_host: str | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> bool:
        """Send over a live connection to ``host:port`` or a new one.

        Returns ``True`` when written or queued on a connection being made (a
        later connect failure is logged, counted and reported to
        ``on_failure``), ``False`` when ``host`` is not an IP literal.
        ``bind_host`` is the local address to connect from (ignored when it
        is a wildcard or of the other address family).
        """
        literal = ip_literal(host)
        if literal is None:
            log.warn(
                "cannot send {transport} to non-IP host {host}", transport=transport, host=host
            )
            self.owner.stats.inc("sip_dropped_total", reason="not_ip_literal")
            return False
        conn = self.get(literal, port, transport)
        if conn is None:
            conn = self.connect(transport, literal, port, bind_host)
        conn.write(data, on_failure)
        return True

    def connect(
        self, transport: str, host: str, port: int, bind_host: str | None = None
    ) -> SipStreamProtocol:
        """Start an outgoing connection and register it at once (writes queue on it)."""
        transport = transport.upper()
        conn = SipStreamProtocol(
            self.owner, self, transport, self.reactor, self.idle_timeout, peer=(host, port)
        )
        self.add(conn)
        factory = SipStreamClientFactory(conn)
        bind = _bind_address(bind_host, host)
        log.debug(
            "connecting {transport} to {host}:{port}", transport=transport, host=host, port=port
        )
        wrapped: Any = factory
        if transport == "TLS":
            if self._tls_context is None:
                self._tls_context = self._client_context()
            # What reactor.connectSSL does, but on the injected clock.
            wrapped = TLSMemoryBIOFactory(self._tls_context, True, factory, clock=self.reactor)
        conn.connector = self.reactor.connectTCP(
            host, port, wrapped, timeout=self.connect_timeout, bindAddress=bind
        )
        return conn

    def close_all(self) -> None:
        """Close every connection (used on stop)."""
        for conn in self.connections():
            conn.close()


def _bind_address(bind_host: str | None, target: str) -> tuple[str, int] | None:
    """``(bind_host, 0)`` when it is a specific address of the target's family."""
    literal = ip_literal(bind_host)
    if literal is None or literal in ("0.0.0.0", "::"):
        return None
    if family_of(literal) != family_of(target):
        return None
    return (literal, 0)


@implementer(ISipTransport)
class StreamListener:
    """One listening TCP or TLS port; sending goes through the shared pool."""

    def __init__(self, transport: str, host: str, pool: ConnectionPool, port: int = 0) -> None:
        self.transport = transport.upper()
        self.host = host
        self.port = port
        self.family = family_of(host)
        self.pool = pool
        self.listening_port: Any = None

    def bound(self, listening_port: Any) -> None:
        """Record the listening port and the real bound port number."""
        self.listening_port = listening_port
        self.port = listening_port.getHost().port

    def send(self, data: bytes, host: str, port: int) -> bool:
        """Send over a connection to ``host:port``, reused or new."""
        return self.pool.send(self.transport, data, host, port, bind_host=self.host)

    def stop(self) -> Deferred[None]:
        """Stop listening; a ``Deferred`` that fires once the port is closed."""
        if self.listening_port is None:
            return succeed(None)
        return maybeDeferred(self.listening_port.stopListening)
