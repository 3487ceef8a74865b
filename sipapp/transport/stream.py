"""SIP over TCP and TLS (RFC 3261 §18.3): the stream protocol and its factories.

``SipStreamProtocol`` is one connection, incoming or outgoing, and the
``IConnection`` a response goes back over. It frames the byte stream with
``StreamFramer``, answers CRLFCRLF pings (RFC 5626 §3.5.1), answers a
request with a bad header (400) and keeps the connection, answers and closes
on a framing error, closes when idle, and queues writes until an outgoing
connection is up. TLS is the same protocol under Twisted's TLS wrapper. The
connection table lives in ``connections``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.protocol import ClientFactory, Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from sipapp.interfaces import IConnection
from sipapp.sip import FramingError, StreamFramer, error_response
from sipapp.transport import inbound
from sipapp.transport.addresses import ip_literal
from sipapp.transport.source import Source

if TYPE_CHECKING:
    from sipapp.transport.connections import ConnectionPool

log = Logger()

#: RFC 5626 §3.5.1: the answer to a CRLFCRLF keep-alive ping.
PONG = b"\r\n"


@implementer(IConnection)
class SipStreamProtocol(Protocol):
    """One TCP or TLS connection carrying SIP messages.

    ``peer`` is given for an outgoing connection (it is the connection table
    key); an incoming one learns it in ``connectionMade``.
    """

    connected: bool = False

    def __init__(
        self,
        owner: inbound.Owner,
        pool: ConnectionPool,
        transport_name: str,
        clock: Any,
        idle_timeout: float,
        peer: tuple[str, int] | None = None,
    ) -> None:
        self.owner = owner
        self.pool = pool
        self.transport_name = transport_name
        self.clock = clock
        self.idle_timeout = idle_timeout
        self.outgoing = peer is not None
        self.peer_host, self.peer_port = peer if peer is not None else ("", 0)
        self.local_host = ""
        self.local_port = 0
        self.framer = StreamFramer(owner.max_message_size)
        #: True while the connection is up and usable (IConnection).
        self.connected = False
        #: Lost, failed or closing: writes are dropped, input ignored.
        self.closed = False
        self._counted = False
        #: The IConnector of an outgoing connection (to abandon it while connecting).
        self.connector: Any = None
        self._queue: list[bytes] = []
        #: Called when queued messages are lost because the connection never came up.
        self._on_failure: list[Callable[[], None]] = []
        self._idle: Any = None
        self.source: Source | None = None

    def connectionMade(self) -> None:
        """Record the addresses, register the connection, flush queued writes."""
        transport: Any = self.transport
        if self.closed:  # closed while connecting
            self.connected = False  # makeConnection has just set it
            transport.loseConnection()
            return
        self.connected = True
        local = transport.getHost()
        self.local_host = ip_literal(local.host) or local.host
        self.local_port = local.port
        if not self.outgoing:
            peer = transport.getPeer()
            self.peer_host = ip_literal(peer.host) or peer.host
            self.peer_port = peer.port
        self.source = Source(
            transport=self.transport_name,
            host=self.peer_host,
            port=self.peer_port,
            local_host=self.local_host,
            local_port=self.local_port,
            connection=self,
        )
        self.pool.add(self)
        self._counted = True
        self.owner.stats.inc("tcp_connections", transport=self.transport_name)
        log.debug(
            "{transport} connection with {host}:{port} open",
            transport=self.transport_name,
            host=self.peer_host,
            port=self.peer_port,
        )
        self._idle = self.clock.callLater(self.idle_timeout, self._idle_expired)
        queued, self._queue = self._queue, []
        self._on_failure = []
        for data in queued:
            self.write(data)

    def write(self, data: bytes, on_failure: Callable[[], None] | None = None) -> None:
        """Send ``data``: queued while connecting, dropped once closed.

        ``on_failure`` is called if the data was queued and the connection
        then fails before it could be sent (the transaction user answers 503).
        """
        if self.closed:
            if on_failure is not None:
                on_failure()
            return
        if not self.connected or self.transport is None:
            self._queue.append(data)
            if on_failure is not None:
                self._on_failure.append(on_failure)
            return
        self._write_raw(data)
        self.owner.stats.inc(
            "sip_sent_total", transport=self.transport_name, kind=inbound.kind_of(data)
        )

    def _write_raw(self, data: bytes) -> None:
        self._touch()
        transport: Any = self.transport
        transport.write(data)

    def dataReceived(self, data: bytes) -> None:
        """Frame, parse and dispatch; never raises into the reactor."""
        if self.closed:
            return
        self._touch()
        try:
            messages = self.framer.feed(data)
        except FramingError as err:
            self._framing_failed(err, data)
            return
        except Exception:
            log.failure(
                "error framing data from {host}:{port}", host=self.peer_host, port=self.peer_port
            )
            self.owner.stats.inc("sip_dropped_total", reason="internal_error")
            self.close()
            return
        source = self.source
        for message in messages:
            if self.closed or source is None:
                return
            if not message:
                self._write_raw(PONG)
                continue
            try:
                inbound.accept(self.owner, message, source, self.write, datagram=False)
            except Exception:
                log.failure(
                    "error handling a message from {host}:{port}",
                    host=self.peer_host,
                    port=self.peer_port,
                )
                self.owner.stats.inc("sip_dropped_total", reason="internal_error")

    def _framing_failed(self, err: FramingError, data: bytes) -> None:
        """The stream lost its message boundaries: answer if possible, then close."""
        self.owner.stats.inc("sip_parse_errors_total", transport=self.transport_name)
        self.owner.stats.inc("sip_dropped_total", reason="framing")
        log.info(
            "closing {transport} connection with {host}:{port}: {reason}",
            transport=self.transport_name,
            host=self.peer_host,
            port=self.peer_port,
            reason=err.reason,
        )
        answer = error_response(err.data if err.data is not None else data, err)
        if answer is not None:
            self.write(answer)
        self.close()

    def _touch(self) -> None:
        if self._idle is not None and self._idle.active():
            self._idle.reset(self.idle_timeout)

    def _idle_expired(self) -> None:
        log.debug(
            "closing idle {transport} connection with {host}:{port}",
            transport=self.transport_name,
            host=self.peer_host,
            port=self.peer_port,
        )
        self.owner.stats.inc("tcp_idle_closed_total", transport=self.transport_name)
        self.close()

    def close(self) -> None:
        """Close the connection after pending writes; later writes are dropped."""
        self.closed = True
        self.connected = False
        self._cancel_idle()
        transport: Any = self.transport
        if transport is not None:
            transport.loseConnection()
        elif self.connector is not None:
            with contextlib.suppress(Exception):
                self.connector.stopConnecting()

    def _cancel_idle(self) -> None:
        if self._idle is not None and self._idle.active():
            self._idle.cancel()
        self._idle = None

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Unregister the connection."""
        self.connected = False
        self.closed = True
        self._cancel_idle()
        self.pool.remove(self)
        if self._counted:
            self._counted = False
            self.owner.stats.inc("tcp_connections", -1, transport=self.transport_name)
        self._drop_queue("connection_lost")

    def connection_failed(self, reason: Failure) -> None:
        """An outgoing connection could not be made: unregister, drop the queue."""
        log.warn(
            "{transport} connection to {host}:{port} failed: {reason}",
            transport=self.transport_name,
            host=self.peer_host,
            port=self.peer_port,
            reason=reason.getErrorMessage(),
        )
        self.closed = True
        self.pool.remove(self)
        self._drop_queue("connect_failed")

    def _drop_queue(self, reason: str) -> None:
        if self._queue:
            self.owner.stats.inc("sip_dropped_total", len(self._queue), reason=reason)
            self._queue = []
        callbacks, self._on_failure = self._on_failure, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.failure("a send-failure callback raised")


class SipStreamServerFactory(Factory):
    """Builds a ``SipStreamProtocol`` for each accepted TCP / TLS connection."""

    def __init__(
        self,
        owner: inbound.Owner,
        pool: ConnectionPool,
        transport_name: str,
        clock: Any,
        idle_timeout: float,
    ) -> None:
        self.owner = owner
        self.pool = pool
        self.transport_name = transport_name
        self.clock = clock
        self.idle_timeout = idle_timeout

    def buildProtocol(self, addr: Any) -> SipStreamProtocol:
        """A new protocol for an incoming connection from ``addr``."""
        return SipStreamProtocol(
            self.owner, self.pool, self.transport_name, self.clock, self.idle_timeout
        )


class SipStreamClientFactory(ClientFactory):
    """Connects one pre-built outgoing ``SipStreamProtocol`` (queued writes wait in it)."""

    def __init__(self, protocol: SipStreamProtocol) -> None:
        self.protocol_instance = protocol

    def buildProtocol(self, addr: Any) -> SipStreamProtocol:
        """The protocol made when the connection was asked for."""
        return self.protocol_instance

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        """Tell the protocol; its queued messages are dropped and counted."""
        self.protocol_instance.connection_failed(reason)
