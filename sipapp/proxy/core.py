"""The stateful proxy core: the transaction user that routes each request (RFC 3261 §16).

``ProxyCore`` receives new requests from the transaction layer, runs the
routing pipeline, and carries out its decision: a response, a drop, or
forwarding to targets through a ``ResponseContext``. It answers INVITEs
with 100 Trying at once, detects loops (482), forwards the end-to-end ACK
of a 2xx without a transaction, handles CANCEL (§16.10), and forwards
responses that match no transaction statelessly by their Via (§16.11).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from sipapp.config import Config
from sipapp.interfaces import IStats, ITransactionUser, ITransportManager
from sipapp.proxy.context import ResponseContext, group_targets
from sipapp.proxy.forward import Forwarder, ForwardError, forward_response, loop_hash
from sipapp.routing import DROP, Forward, Pipeline, Reply, RouteContext
from sipapp.sip import (
    KNOWN_METHODS,
    ParseError,
    Request,
    Response,
    SipUri,
    make_response,
    parse_host,
)
from sipapp.transaction import Timers

log = Logger()


def _method_label(method: str) -> str:
    """Bounded label values: unknown methods are counted together."""
    return method if method in KNOWN_METHODS else "other"


@implementer(ITransactionUser)
class ProxyCore:
    """Routes requests with the pipeline and forwards them statefully."""

    def __init__(
        self,
        config: Config,
        manager: ITransportManager,
        layer: Any,
        pipeline: Pipeline,
        stats: IStats,
        clock: Any,
        failure_handlers: Sequence[Any] = (),
    ) -> None:
        self.config = config
        self.manager = manager
        self.layer = layer
        self.pipeline = pipeline
        self.stats = stats
        self.clock = clock
        self.failure_handlers = list(failure_handlers)
        t = config.timers
        self.timers = Timers(t.t1, t.t2, t.t4, t.timer_c)
        self.forwarder = Forwarder(manager, config.proxy.record_route)
        self.server_header = config.server.name
        self._aliases = {parse_host(a, "alias") for a in config.server.aliases}
        self._tag_key = os.urandom(16)

    # -- identity --------------------------------------------------------------

    def is_myself(self, uri: SipUri) -> bool:
        """True when ``uri`` names this server: one of its sockets or a configured alias."""
        host, port = uri.host, uri.port
        if (host, port) in self._aliases or (host, None) in self._aliases:
            return True
        return self.manager.is_local(host, port, uri.transport)

    def to_tag(self, request: Request) -> str:
        """A To tag that is the same for every retransmission of ``request`` (§8.2.6.2)."""
        try:
            via = request.top_via
            seed = f"{request.call_id}|{request.from_.tag}|{via.branch}|{request.cseq.number}"
        except ParseError:
            seed = request.ruri
        data = seed.encode("utf-8", "surrogateescape")
        return hashlib.blake2s(data, key=self._tag_key, digest_size=8).hexdigest()

    def local_response(
        self,
        request: Request,
        status: int,
        reason: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> Response:
        """A response of our own to ``request``: stable To tag, extra headers, Server."""
        response = make_response(request, status, reason, to_tag=self.to_tag(request))
        for name, value in headers:
            response.add(name, value)
        if self.server_header and status != 100:
            response.add("Server", self.server_header)
        return response

    def reply(
        self,
        request: Request,
        transaction: Any,
        status: int,
        reason: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Answer ``request`` on its server transaction."""
        response = self.local_response(request, status, reason, headers)
        transaction.respond(response)
        self.stats.inc("sip_local_replies_total", status=str(status))
        if status >= 300:
            source = transaction.source
            log.debug(
                "answered {method} from {host}:{port} call-id {call_id}: {status} {reason}",
                method=request.method,
                host=source.host,
                port=source.port,
                call_id=request.call_id,
                status=status,
                reason=response.reason,
            )

    # -- ITransactionUser ------------------------------------------------------------

    def request_received(self, request: Request, transaction: Any, source: Any) -> None:
        """Route a new request (``transaction`` None: an end-to-end ACK)."""
        self.stats.inc("sip_requests_total", method=_method_label(request.method))
        if transaction is not None and request.method == "INVITE":
            transaction.respond(make_response(request, 100))
        context = RouteContext(source, self.config, self.clock, self.stats, self.is_myself)
        decision = self.pipeline.route(request, context)
        if isinstance(decision, Deferred):
            decision.addCallback(self._decided, request, transaction, source)
            decision.addErrback(self._route_failed, request, transaction)
        else:
            self._decided(decision, request, transaction, source)

    def cancel_received(
        self, cancel: Request, transaction: Any, invite_transaction: Any, source: Any
    ) -> None:
        """§16.10: 200 to the CANCEL, then cancel the INVITE's pending branches."""
        self.stats.inc("sip_requests_total", method="CANCEL")
        if invite_transaction is None:
            self.reply(cancel, transaction, 481)
            return
        self.reply(cancel, transaction, 200)
        invite_transaction.cancelled = True
        context = invite_transaction.context
        if context is not None:
            context.cancel(cancel.get("reason"))
        elif invite_transaction.state == "proceeding":
            self.reply(invite_transaction.request, invite_transaction, 487)

    def stray_response(self, response: Response, source: Any) -> None:
        """§16.11 / RFC 6026: a response with our Via on top goes on statelessly; others drop."""
        forward_response(self.manager, self.stats, response, source)

    # -- carrying out a decision -------------------------------------------------------

    def _decided(self, decision: Any, request: Request, transaction: Any, source: Any) -> None:
        if transaction is None:
            if isinstance(decision, Forward) and decision.targets:
                self._forward_stateless(request, decision, source)
            return
        if getattr(transaction, "cancelled", False) or transaction.state not in (
            "trying",
            "proceeding",
        ):
            return  # cancelled (and answered 487) while routing
        if isinstance(decision, Reply):
            self.reply(request, transaction, decision.status, decision.reason, decision.headers)
        elif isinstance(decision, Forward):
            self._forward(request, transaction, source, decision)
        elif decision is DROP:
            transaction.stop()
        else:
            self.reply(request, transaction, 500, "Server Internal Error - bad routing decision")

    def _route_failed(self, failure: Any, request: Request, transaction: Any) -> None:
        log.failure(
            "routing failed for {method} {uri}", failure, method=request.method, uri=request.ruri
        )
        self.stats.inc("sip_handler_errors_total")
        if transaction is not None and transaction.state in ("trying", "proceeding"):
            self.reply(request, transaction, 500, "Server Internal Error - routing failed")

    def _forward(self, request: Request, transaction: Any, source: Any, decision: Forward) -> None:
        loop_part = loop_hash(request)
        if self.forwarder.is_loop(request, loop_part):
            self.reply(request, transaction, 482)
            return
        groups = group_targets(decision.targets, decision.serial)
        ResponseContext(self, transaction, request, source, loop_part, groups).start()

    def _forward_stateless(self, request: Request, decision: Forward, source: Any) -> None:
        """An ACK for a 2xx: forwarded end to end without a transaction."""
        try:
            branch = "z9hG4bK" + loop_hash(request) + ".a"
            out, hop = self.forwarder.prepare(
                request, decision.targets[0], source, branch, initial=False
            )
        except (ForwardError, ParseError) as error:
            log.debug("cannot forward {method}: {error}", method=request.method, error=error)
            return
        self.manager.send_request(out, *hop)
