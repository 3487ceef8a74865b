"""The SIP core: where every parsed message arrives, and the answer for each request.

``SipCore`` is the ``IMessageHandler`` the transports deliver to. It applies
the request checks of RFC 3261 §16.3, answers OPTIONS addressed to the
server itself, and rejects what no component handles yet (501 for unknown
methods, 404 for our own addresses, 403 for foreign domains: the server is
never an open relay). Responses that match no transaction are dropped and
counted. It never raises: a message that breaks a handler is logged and
answered 500.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from twisted.logger import Logger
from zope.interface import implementer

from sipapp.config import Config
from sipapp.interfaces import IMessageHandler, IStats, ITransportManager
from sipapp.sip import (
    KNOWN_METHODS,
    ParseError,
    Rejection,
    Request,
    Response,
    SipUri,
    check_request,
    make_response,
    parse_host,
)

log = Logger()

#: What an OPTIONS to the server answers (RFC 3261 §11.2).
ALLOW = ", ".join(sorted(KNOWN_METHODS))
ACCEPT = "application/sdp"
#: Option tags the proxy supports; nothing beyond RFC 3261 yet.
SUPPORTED: frozenset[str] = frozenset()


def _parse_alias(alias: str) -> tuple[str, int | None]:
    host, port = parse_host(alias, "alias")
    return host, port


@implementer(IMessageHandler)
class SipCore:
    """Receives every message from the transports and answers requests."""

    def __init__(
        self, config: Config, manager: ITransportManager, stats: IStats, clock: Any
    ) -> None:
        self.config = config
        self.manager = manager
        self.stats = stats
        self.clock = clock
        self.server_header = config.server.name
        self._aliases = {_parse_alias(a) for a in config.server.aliases}
        self._tag_key = os.urandom(16)

    def in_flight(self) -> int:
        """Requests still being worked on (none: every answer so far is immediate)."""
        return 0

    # -- IMessageHandler ---------------------------------------------------

    def receive(self, message: Any, source: Any) -> None:
        """Handle one validated message from ``source``; never raises."""
        try:
            if isinstance(message, Response):
                self._response(message, source)
            else:
                self._request(message, source)
        except Exception:
            log.failure(
                "failed to handle a message from {host}:{port}", host=source.host, port=source.port
            )
            self.stats.inc("sip_handler_errors_total")
            if isinstance(message, Request) and message.method != "ACK":
                self._reply(message, source, Rejection(500))

    # -- the decision --------------------------------------------------------

    def is_myself(self, uri: SipUri) -> bool:
        """True when ``uri`` names this server: one of its sockets or a configured alias."""
        host, port = uri.host, uri.port
        if (host, port) in self._aliases or (host, None) in self._aliases:
            return True
        return self.manager.is_local(host, port, uri.transport)

    def _request(self, request: Request, source: Any) -> None:
        self.stats.inc("sip_requests_total", method=_method_label(request.method))
        if request.method == "ACK":
            # An ACK answers a final response we sent statelessly: nothing to do.
            return
        decision = self.decide(request)
        self._reply(request, source, decision)

    def decide(self, request: Request) -> Rejection:
        """The answer for ``request`` while no routing exists (§16.3 checks first)."""
        uri = request.uri
        to_me = isinstance(uri, SipUri) and self.is_myself(uri)
        if (
            request.method == "OPTIONS"
            and to_me
            and (not uri.user if isinstance(uri, SipUri) else False)
        ):
            return Rejection(200, None, (("Allow", ALLOW), ("Accept", ACCEPT), ("Supported", "")))
        rejection = check_request(request, supported=SUPPORTED)
        if rejection is not None:
            return rejection
        if request.method not in KNOWN_METHODS:
            return Rejection(501, None, (("Allow", ALLOW),))
        if request.method == "CANCEL":
            return Rejection(481)
        if to_me:
            return Rejection(481 if request.to.tag is not None else 404)
        return Rejection(403, "Forbidden - relaying denied")

    def _reply(self, request: Request, source: Any, decision: Rejection) -> None:
        response = make_response(
            request, decision.status, decision.reason, to_tag=self._to_tag(request)
        )
        for name, value in decision.headers:
            response.add(name, value)
        if self.server_header:
            response.add("Server", self.server_header)
        sent = self.manager.send_response(response, source)
        self.stats.inc("sip_responses_sent_total", status=str(decision.status))
        log.debug(
            "answered {method} from {host}:{port} call-id {call_id} with {status} (sent: {sent})",
            method=request.method,
            host=source.host,
            port=source.port,
            call_id=request.call_id,
            status=decision.status,
            sent=sent,
        )

    def _to_tag(self, request: Request) -> str:
        """A To tag that is the same for every retransmission of ``request`` (§8.2.6.2)."""
        try:
            via = request.top_via
            seed = f"{request.call_id}|{request.from_.tag}|{via.branch}|{request.cseq.number}"
        except ParseError:
            seed = request.ruri
        digest = hashlib.blake2s(
            seed.encode("utf-8", "surrogateescape"), key=self._tag_key, digest_size=8
        )
        return digest.hexdigest()

    def _response(self, response: Response, source: Any) -> None:
        # No client transactions exist yet: every response is stray (§18.1.2).
        self.stats.inc("sip_responses_unmatched_total")
        log.debug(
            "dropped a response {status} from {host}:{port} that matches nothing",
            status=response.status,
            host=source.host,
            port=source.port,
        )


def _method_label(method: str) -> str:
    """Bounded label values: unknown methods are counted together."""
    return method if method in KNOWN_METHODS else "other"
