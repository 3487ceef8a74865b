"""Stateless forwarding for front-end balancers (RFC 3261 §16.11).

``StatelessProxy`` is an ``IMessageHandler`` that the transports deliver to
directly, with no transaction layer: each request runs through the routing
pipeline and goes to the first target at once; each response goes back by
its Via. The Via branch is derived from the incoming branch, so a
retransmission, its CANCEL and the hop-by-hop ACK take the same branch and
reach the same downstream transaction. Nothing is kept per call, so a
balancer in this mode has no state to lose.
"""

from __future__ import annotations

import hashlib
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from sipapp.interfaces import IMessageHandler
from sipapp.proxy.forward import Forwarder, ForwardError, forward_response
from sipapp.routing import Forward, Pipeline, Reply, RouteContext
from sipapp.sip import MAGIC_COOKIE, ParseError, Request, Response

log = Logger()


def stateless_branch(request: Request) -> str:
    """The branch for a statelessly forwarded request (§16.11): a hash of the incoming one."""
    via = request.top_via
    seed = f"{via.branch}|{via.host}|{via.port}|{request.call_id}"
    digest = hashlib.blake2s(seed.encode("utf-8", "surrogateescape"), digest_size=10)
    return f"{MAGIC_COOKIE}sl{digest.hexdigest()}"


@implementer(IMessageHandler)
class StatelessProxy:
    """Routes each request with the pipeline and forwards it without a transaction."""

    def __init__(
        self, config: Any, manager: Any, pipeline: Pipeline, stats: Any, clock: Any, core: Any
    ) -> None:
        self.config = config
        self.manager = manager
        self.pipeline = pipeline
        self.stats = stats
        self.clock = clock
        #: Lends identity (``is_myself``, ``to_tag``) to this mode.
        self.core = core
        self.forwarder = Forwarder(manager, config.proxy.record_route)

    def unanswered(self) -> int:
        """Nothing is kept: shutdown need not wait."""
        return 0

    def receive(self, message: Any, source: Any) -> None:
        """Handle one message; never raises."""
        try:
            if isinstance(message, Response):
                forward_response(self.manager, self.stats, message, source)
            else:
                self._request(message, source)
        except Exception:
            log.failure("stateless proxy failed on a message from {host}", host=source.host)
            self.stats.inc("sip_handler_errors_total")

    def _request(self, request: Request, source: Any) -> None:
        self.stats.inc("sip_requests_total", method="stateless")
        context = RouteContext(source, self.config, self.clock, self.stats, self.core.is_myself)
        decision = self.pipeline.route(request, context)
        if isinstance(decision, Deferred):
            decision.addCallback(self._decided, request, source)
            decision.addErrback(self._route_failed)
        else:
            self._decided(decision, request, source)

    def _route_failed(self, failure: Any) -> None:
        log.failure("stateless routing failed", failure)
        self.stats.inc("sip_handler_errors_total")

    def _decided(self, decision: Any, request: Request, source: Any) -> None:
        if isinstance(decision, Reply):
            if request.method != "ACK":
                self._reply(request, source, decision.status, decision.reason, decision.headers)
        elif isinstance(decision, Forward) and not decision.targets:
            if request.method != "ACK":
                self._reply(request, source, 480, None, ())
        elif isinstance(decision, Forward):
            try:
                out, hop = self.forwarder.prepare(
                    request,
                    decision.targets[0],
                    source,
                    stateless_branch(request),
                    initial=request.to.tag is None and request.method != "CANCEL",
                )
            except (ForwardError, ParseError) as error:
                status = error.status if isinstance(error, ForwardError) else 400
                if request.method != "ACK":
                    self._reply(request, source, status, getattr(error, "reason", None), ())
                return
            if not self.manager.send_request(out, *hop) and request.method != "ACK":
                self._reply(request, source, 503, None, ())

    def _reply(
        self,
        request: Request,
        source: Any,
        status: int,
        reason: str | None,
        headers: Any,
    ) -> None:
        response = self.core.local_response(request, status, reason, headers)
        self.manager.send_response(response, source)
        self.stats.inc("sip_local_replies_total", status=str(status))
