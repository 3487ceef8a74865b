"""The built-in route steps.

Each is a small object with a ``name`` and ``handle(request, context)``,
answering at once: ``sanity`` (RFC 3261 §16.3 checks), ``max_forwards``,
``options`` (the server's own OPTIONS), ``loose_route`` (§16.4 and in-dialog
routing), ``static`` (the ``[[routes]]`` table), ``relay`` (forward to a
foreign Request-URI; not in the default route: no open relay) and
``reject`` (404 for us, 403 for anything else).
"""

from __future__ import annotations

from typing import Any

from zope.interface import implementer

from sipapp.config import Config, StaticRoute
from sipapp.interfaces import IRouteStep
from sipapp.routing.decisions import CONTINUE, DROP, Decision, Forward, Reply, Target
from sipapp.sip import KNOWN_METHODS, Request, SipUri, check_request, parse_uri

#: What an OPTIONS to the server answers (RFC 3261 §11.2).
ALLOW = ", ".join(sorted(KNOWN_METHODS))
ACCEPT = "application/sdp"
#: Option tags the proxy supports in Proxy-Require.
SUPPORTED: frozenset[str] = frozenset()


@implementer(IRouteStep)
class Sanity:
    """§16.3: URI scheme (416), Proxy-Require (420), a bare magic-cookie branch (400)."""

    name = "sanity"

    def handle(self, request: Request, context: Any) -> Decision:
        """Reject what a proxy must not forward."""
        rejection = check_request(request, supported=SUPPORTED, max_forwards=False)
        if rejection is None:
            return CONTINUE
        return Reply(rejection.status, rejection.reason, rejection.headers)


@implementer(IRouteStep)
class MaxForwards:
    """§16.3 step 3: a request with Max-Forwards 0 is not forwarded (483)."""

    name = "max_forwards"

    def handle(self, request: Request, context: Any) -> Decision:
        """483 Too Many Hops when Max-Forwards is 0."""
        if request.max_forwards == 0:
            return Reply(483)
        return CONTINUE


@implementer(IRouteStep)
class Options:
    """Answers OPTIONS addressed to the server itself (no user part) with 200."""

    name = "options"

    def handle(self, request: Request, context: Any) -> Decision:
        """200 with Allow, Accept and Supported."""
        if request.method != "OPTIONS":
            return CONTINUE
        uri = request.uri
        if isinstance(uri, SipUri) and uri.user is None and context.is_myself(uri):
            supported = ", ".join(sorted(SUPPORTED))
            return Reply(
                200, None, (("Allow", ALLOW), ("Accept", ACCEPT), ("Supported", supported))
            )
        return CONTINUE


def _is_our_route(context: Any, value: Any) -> bool:
    uri = value.uri
    return isinstance(uri, SipUri) and context.is_myself(uri)


@implementer(IRouteStep)
class LooseRoute:
    """§16.4 route processing, and routing of in-dialog requests along their route set.

    A Request-URI that is one of our Record-Route values (a strict router
    before us) is replaced by the last Route; our own Route values on top
    are removed (two of them after a double Record-Route). An in-dialog
    request that carried our Route is forwarded; one that did not gets 404
    (an ACK is dropped). An initial request goes on to the next step.
    """

    name = "loose_route"

    def handle(self, request: Request, context: Any) -> Decision:
        """Process the Route header and route in-dialog requests."""
        removed = False
        if request.has("route"):
            routes = request.routes
            uri = request.uri
            if (
                isinstance(uri, SipUri)
                and uri.user is None
                and uri.lr
                and context.is_myself(uri)
                and routes
            ):
                request.uri = routes[-1].uri
                request.remove_last("route")
                routes = request.routes
                removed = True  # it reached us through our Record-Route all the same
            while routes and _is_our_route(context, routes[0]):
                request.remove_first("route")
                routes = request.routes
                removed = True
        if request.to.tag is None:
            return CONTINUE
        if removed:
            return _forward_to_uri(request)
        return (
            DROP
            if request.method == "ACK"
            else Reply(404, "Not Found - no route for in-dialog request")
        )


def _forward_to_uri(request: Request) -> Decision:
    uri = request.uri
    if not isinstance(uri, SipUri):
        return Reply(416)
    return Forward((Target(uri),))


class _Route:
    """A compiled ``[[routes]]`` entry."""

    __slots__ = ("domain", "hops", "serial", "user_prefix")

    def __init__(self, route: StaticRoute) -> None:
        self.domain = route.domain.lower() if route.domain else None
        self.user_prefix = route.user_prefix
        hops = []
        for text in route.targets:
            uri = parse_uri(text, "route target")
            assert isinstance(uri, SipUri)  # checked when the configuration was loaded
            hops.append(uri)
        self.hops = tuple(hops)
        self.serial = route.serial

    def matches(self, uri: SipUri) -> bool:
        if self.domain is not None and uri.host != self.domain:
            return False
        return self.user_prefix is None or (uri.user or "").startswith(self.user_prefix)

    def targets(self, uri: SipUri) -> tuple[Target, ...]:
        """The Request-URI keeps its user part and goes to each hop's host and port."""
        out = []
        for hop in self.hops:
            target = SipUri(hop.scheme, hop.host, uri.user, None, hop.port, hop.params)
            out.append(Target(target, hop))
        return tuple(out)


@implementer(IRouteStep)
class Static:
    """The ``[[routes]]`` table: first entry whose domain and user prefix match wins."""

    name = "static"

    def __init__(self, routes: tuple[StaticRoute, ...]) -> None:
        self.routes = tuple(_Route(r) for r in routes)

    def handle(self, request: Request, context: Any) -> Decision:
        """Forward to the matching entry's targets, in parallel or serially."""
        uri = request.uri
        if not isinstance(uri, SipUri):
            return CONTINUE
        for route in self.routes:
            if route.matches(uri):
                return Forward(route.targets(uri), route.serial)
        return CONTINUE


@implementer(IRouteStep)
class Relay:
    """Forward a request for a foreign domain to its Request-URI (opt-in: an open relay)."""

    name = "relay"

    def handle(self, request: Request, context: Any) -> Decision:
        """Forward unless the Request-URI is ours."""
        uri = request.uri
        if isinstance(uri, SipUri) and not context.is_myself(uri):
            return Forward((Target(uri),))
        return CONTINUE


@implementer(IRouteStep)
class Reject:
    """The end of a route: 404 for our own addresses, 403 for foreign domains."""

    name = "reject"

    def handle(self, request: Request, context: Any) -> Decision:
        """404 Not Found or 403 Forbidden (never an open relay)."""
        if request.method == "ACK":
            return DROP
        if request.method not in KNOWN_METHODS:
            return Reply(501, None, (("Allow", ALLOW),))
        uri = request.uri
        if isinstance(uri, SipUri) and context.is_myself(uri):
            return Reply(404)
        return Reply(403, "Forbidden - relaying denied")


def builtin_steps(config: Config) -> dict[str, Any]:
    """Every built-in step, configured from ``config``, by name."""
    steps: list[Any] = [
        Sanity(),
        MaxForwards(),
        Options(),
        LooseRoute(),
        Static(config.routes),
        Relay(),
        Reject(),
    ]
    return {step.name: step for step in steps}
