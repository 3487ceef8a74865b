"""Fakes for the proxy tests: a recording transport manager, route steps, and a proxy on a Clock.

``Proxy`` wires a real ``TransactionLayer`` and ``ProxyCore`` to a
``FakeManager`` that records every send, so a test feeds parsed messages in
with ``receive`` and reads what went out. Downstream answers are built from
the forwarded requests themselves (``answer``), so they carry our Via and
match our client transactions. Nothing here touches the network.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from zope.interface import implementer

from sipapp.config import Config
from sipapp.interfaces import IFailureHandler, IRouteStep, ITransportManager
from sipapp.proxy.core import ProxyCore
from sipapp.routing import Pipeline, Target
from sipapp.routing.pipeline import build_pipeline
from sipapp.routing.steps import builtin_steps
from sipapp.sip import Request, Response, SipUri, parse_uri
from sipapp.stats import Stats
from sipapp.testing import parsed_request, parsed_response
from sipapp.transaction import Timers, TransactionLayer
from sipapp.transport import Source

#: The sockets the fake server listens on: (transport, host, port).
SOCKETS = (
    ("UDP", "127.0.0.1", 5060),
    ("TCP", "127.0.0.1", 5060),
    ("UDP", "::1", 5060),
)

#: The caller's socket, and how its requests reach us.
CALLER_VIA = "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKcaller1;rport"
UDP_SOURCE = Source("UDP", "127.0.0.1", 5070, "127.0.0.1", 5060)
TCP_SOURCE = Source("TCP", "127.0.0.1", 5070, "127.0.0.1", 5060)
#: Where downstream responses come from.
CALLEE_SOURCE = Source("UDP", "127.0.0.1", 5090, "127.0.0.1", 5060)

#: Two callees the tests fork to.
BOB1 = "sip:bob@127.0.0.1:5090"
BOB2 = "sip:bob@127.0.0.1:5092"


def sip_uri(text: str) -> SipUri:
    """``text`` parsed as a SIP URI."""
    uri = parse_uri(text, "test URI")
    assert isinstance(uri, SipUri)
    return uri


def target(text: str, **kwargs: Any) -> Target:
    """A ``Target`` for the URI ``text`` (``next_hop`` given as text too)."""
    next_hop = kwargs.pop("next_hop", None)
    if isinstance(next_hop, str):
        kwargs["next_hop"] = sip_uri(next_hop)
    return Target(sip_uri(text), **kwargs)


def incoming(method: str = "INVITE", uri: str = "sip:bob@example.com", **kwargs: Any) -> Request:
    """A request as the caller at 127.0.0.1:5070 sends it (its own Via on top)."""
    kwargs.setdefault("via", CALLER_VIA)
    return parsed_request(method, uri, **kwargs)


@implementer(ITransportManager)
class FakeManager:
    """Records every send; ``unreachable`` (host, port) pairs make ``send_request`` fail."""

    def __init__(self, sockets: Sequence[tuple[str, str, int]] = SOCKETS) -> None:
        self.sockets = tuple(sockets)
        self.unreachable: set[tuple[str, int]] = set()
        #: (request, transport, host, port) for every send_request call.
        self.requests: list[tuple[Request, str, str, int]] = []
        #: (response, source) for every send_response call.
        self.responses: list[tuple[Response, Any]] = []

    def send_response(self, response: Any, source: Any) -> bool:
        assert isinstance(response, Response)
        self.responses.append((response, source))
        return True

    def send_request(
        self, request: Any, transport: str, host: str, port: int, on_failure: Any = None
    ) -> bool:
        assert isinstance(request, Request)
        self.requests.append((request, transport, host, port))
        return (host, port) not in self.unreachable

    def local_via(self, transport: str, family: int = socket.AF_INET) -> tuple[str, int]:
        candidates = [s for s in self.sockets if s[0] == transport.upper()]
        for _, host, port in candidates:
            if (socket.AF_INET6 if ":" in host else socket.AF_INET) == family:
                return host, port
        if candidates:
            return candidates[0][1], candidates[0][2]
        raise LookupError(f"no {transport} socket")

    def is_local(self, host: str, port: int | None, transport: str | None = None) -> bool:
        for kind, local_host, local_port in self.sockets:
            if transport is not None and kind != transport.upper():
                continue
            wanted = port if port is not None else (5061 if kind == "TLS" else 5060)
            if local_host == host and local_port == wanted:
                return True
        return False

    # -- views for assertions ------------------------------------------------------

    def sent(self, method: str | None = None) -> list[Request]:
        """Every request (of ``method``) sent downstream, in order."""
        return [r for r, *_ in self.requests if method is None or r.method == method]

    def hops(self, method: str | None = None) -> list[tuple[str, str, int]]:
        """Where each request (of ``method``) went: (transport, host, port)."""
        return [(t, h, p) for r, t, h, p in self.requests if method is None or r.method == method]

    def upstream(self) -> list[Response]:
        """Every response sent, in order."""
        return [r for r, _ in self.responses]

    def statuses(self) -> list[int]:
        """The status of every response sent, in order."""
        return [r.status for r, _ in self.responses]


@implementer(IRouteStep)
class Fixed:
    """A route step that always answers ``decision`` and records the requests it saw."""

    def __init__(self, decision: Any, name: str = "fixed") -> None:
        self.decision = decision
        self.name = name
        self.seen: list[Request] = []

    def handle(self, request: Any, context: Any) -> Any:
        """Answer the fixed decision."""
        self.seen.append(request)
        return self.decision


@implementer(IRouteStep)
class Later:
    """A route step answering with a new ``Deferred`` each time; the test fires them."""

    name = "later"

    def __init__(self) -> None:
        self.pending: list[Deferred[Any]] = []

    def handle(self, request: Any, context: Any) -> Any:
        """A Deferred the test fires with the decision."""
        d: Deferred[Any] = Deferred()
        self.pending.append(d)
        return d


@implementer(IFailureHandler)
class FailureHandler:
    """Answers each call with the next item of ``answers`` (a list of targets, None, a Deferred)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[Request, Response, Any]] = []

    def branches_failed(self, request: Any, response: Any, context: Any) -> Any:
        """The next answer; None once they run out."""
        self.calls.append((request, response, context))
        return self.answers.pop(0) if self.answers else None


class Proxy:
    """A ``ProxyCore`` over a real ``TransactionLayer``, a ``FakeManager`` and a ``Clock``.

    ``steps`` is the main route (default: the configured pipeline with the
    built-in steps and no plugins).
    """

    def __init__(
        self,
        steps: Sequence[Any] | None = None,
        *,
        config: Config | None = None,
        failure_handlers: Sequence[Any] = (),
        sockets: Sequence[tuple[str, str, int]] = SOCKETS,
    ) -> None:
        self.config = config or Config()
        self.clock = Clock()
        self.manager = FakeManager(sockets)
        self.stats = Stats()
        t = self.config.timers
        self.layer = TransactionLayer(
            self.manager, self.clock, Timers(t.t1, t.t2, t.t4, t.timer_c), self.stats
        )
        if steps is None:
            routing = self.config.routing
            pipeline = build_pipeline(
                routing.main, routing.routes, builtin_steps(self.config), plugins={}
            )
        else:
            pipeline = Pipeline(steps)
        self.core = ProxyCore(
            self.config, self.manager, self.layer, pipeline, self.stats, self.clock,
            failure_handlers,
        )  # fmt: skip
        self.layer.user = self.core

    def receive(self, message: Request | Response, source: Source = UDP_SOURCE) -> None:
        """Deliver ``message`` to the transaction layer as a transport would."""
        self.layer.receive(message, source)

    def send(self, method: str = "INVITE", uri: str = "sip:bob@example.com", **kw: Any) -> Request:
        """A request from the caller (see ``incoming``), delivered; returns it."""
        source = kw.pop("source", UDP_SOURCE)
        request = incoming(method, uri, **kw)
        self.receive(request, source)
        return request

    def answer(
        self, forwarded: Request, status: int, *, to_tag: str | None = "callee1", **kw: Any
    ) -> Response:
        """A downstream response to ``forwarded`` (our Via on top), delivered; returns it."""
        response = parsed_response(status, request=forwarded, to_tag=to_tag, **kw)
        self.receive(response, CALLEE_SOURCE)
        return response

    def statuses(self) -> list[int]:
        """Statuses of every response sent (upstream and local), in order."""
        return self.manager.statuses()

    def finals(self) -> list[Response]:
        """Every final response sent."""
        return [r for r in self.manager.upstream() if r.status >= 200]
