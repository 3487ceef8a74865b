"""Every contract between sipapp's components, as ``zope.interface`` interfaces.

Read this file first: it names the seams of the server. Implementations
declare ``@implementer(...)`` and are checked with ``verifyObject`` in the
tests. This module holds no behaviour.
"""

from __future__ import annotations

from typing import Any

from zope.interface import Attribute, Interface


class ISipTransport(Interface):
    """One listening SIP socket (UDP) or listening port (TCP, TLS)."""

    transport = Attribute("'UDP', 'TCP' or 'TLS'.")
    host = Attribute("The local address it is bound to, as text ('127.0.0.1', '::1').")
    port = Attribute("The local port it is bound to (the real one after binding port 0).")

    def send(data: bytes, host: str, port: int) -> bool:
        """Send ``data`` to ``(host, port)`` from this socket.

        For UDP a datagram; for TCP / TLS over an existing connection to that
        peer, or a new outgoing connection. Returns ``True`` when the data was
        handed to the kernel or to a live connection, ``False`` when it could
        not be (no route, connection failed); never raises for network errors.
        """

    def stop() -> Any:
        """Stop listening. Returns a ``Deferred`` that fires once the socket is closed."""


class IConnection(Interface):
    """One live stream connection (TCP or TLS) that a message arrived on."""

    peer_host = Attribute("The peer's address as text.")
    peer_port = Attribute("The peer's port.")
    connected = Attribute("True while the connection is open.")

    def write(data: bytes) -> None:
        """Write ``data`` to the connection; a no-op once it has closed."""


class IMessageHandler(Interface):
    """Receives every SIP message that a transport parsed.

    The transport has already checked the message's framing and its core
    header syntax, and added ``received`` / ``rport`` to a request's top Via.
    """

    def receive(message: Any, source: Any) -> None:
        """Handle one message.

        ``message`` is a ``sipapp.sip.Request`` or ``sipapp.sip.Response``;
        ``source`` is a ``sipapp.transport.Source`` naming where it came from.
        Returns nothing; must not raise (errors are logged and counted).
        """


class ITransportManager(Interface):
    """Picks the socket for an outgoing message and sends it (RFC 3261 §18)."""

    def send_response(response: Any, source: Any) -> bool:
        """Send a response to a request that arrived from ``source`` (§18.2.2).

        UDP: to ``received`` (and ``rport`` when present) of the top Via, at the
        sent-by port otherwise; TCP / TLS: over the connection the request came
        on while it lives, else a new connection to received / sent-by.
        Returns ``True`` when sent.
        """

    def send_request(
        request: Any, transport: str, host: str, port: int, on_failure: Any = None
    ) -> bool:
        """Send a request to a resolved next hop over ``transport``.

        Returns ``True`` when sent (or queued on a connection being made),
        ``False`` on a transport error (the caller treats it as a 503). When a
        queued send fails later, ``on_failure()`` is called.
        """

    def local_via(transport: str, family: int) -> tuple[str, int]:
        """The ``(host, port)`` to put in a Via sent-by for ``transport``."""

    def is_local(host: str, port: int | None, transport: str | None) -> bool:
        """True when ``host:port`` names one of the sockets we listen on ("myself")."""


class IStats(Interface):
    """Counters the components update; exposed to Prometheus by ``sipapp.stats``."""

    def inc(name: str, amount: int = 1, **labels: str) -> None:
        """Add ``amount`` to counter ``name`` with ``labels``."""

    def value(name: str, **labels: str) -> int:
        """The current value of counter ``name`` with ``labels`` (0 when never set)."""


class ITransactionUser(Interface):
    """What the transaction layer hands upward (the proxy core, RFC 3261 §17)."""

    def request_received(request: Any, transaction: Any, source: Any) -> None:
        """A new request with its new server transaction.

        ``transaction`` is None for an ACK that matched no transaction (the
        end-to-end ACK for a 2xx), which is forwarded without one.
        """

    def cancel_received(
        cancel: Any, transaction: Any, invite_transaction: Any, source: Any
    ) -> None:
        """A CANCEL with its own server transaction and the INVITE transaction
        it cancels (None when no such INVITE is known)."""

    def stray_response(response: Any, source: Any) -> None:
        """A response that matches no client transaction (§16.7: forwarded statelessly)."""


class IClientTransactionUser(Interface):
    """What a client transaction reports to whoever started it (a proxy branch)."""

    def response_received(response: Any, transaction: Any) -> None:
        """A response for the transaction (provisional or final; every 2xx in Accepted)."""

    def timed_out(transaction: Any) -> None:
        """Timer B or F fired: no final response came."""

    def transport_failed(transaction: Any) -> None:
        """The request could not be sent (the proxy treats it as a 503)."""


class IRouteContext(Interface):
    """What a route step may look at and use besides the request itself."""

    source = Attribute("The ``Source`` the request came from.")
    flags = Attribute("A dict for steps to leave notes for later steps.")
    config = Attribute("The server's ``Config``.")
    clock = Attribute("An ``IReactorTime``.")
    stats = Attribute("The ``IStats`` to count with.")

    def is_myself(uri: Any) -> bool:
        """True when ``uri`` (a SIP URI) names this server: its sockets or its domains."""


class IRouteStep(Interface):
    """One step of the routing pipeline, the counterpart of a line in a Kamailio script.

    Steps are found by ``name``: the built-in ones and plugins found with
    ``twisted.plugin.getPlugins(IRouteStep, sipapp.plugins)``.
    """

    name = Attribute("The name the configuration uses for this step.")

    def handle(request: Any, context: Any) -> Any:
        """Look at ``request`` and decide.

        Returns a decision from ``sipapp.routing.decisions`` — ``CONTINUE``,
        ``Reply``, ``Forward`` or ``DROP`` — directly when it needs no I/O, or a
        ``Deferred`` that fires with one. May change the request (e.g. the
        Request-URI) before it is forwarded. Must not raise for bad input:
        answer with a ``Reply`` instead.
        """


class IFailureHandler(Interface):
    """Called when every branch of a request failed, before anything goes upstream.

    The seam for LCR failover and call forwarding on busy / no answer.
    """

    def branches_failed(request: Any, response: Any, context: Any) -> Any:
        """Every branch has a final non-2xx response; ``response`` is the best one.

        Returns a list of ``Target`` values to try next (forked in parallel),
        an empty list / None to let ``response`` go upstream, or a ``Deferred``
        firing with either.
        """
