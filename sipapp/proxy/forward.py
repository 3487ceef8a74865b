"""Building the request a proxy forwards (RFC 3261 §16.6) and checking for loops (§16.3).

``Forwarder.prepare`` copies the request for one target and applies the
steps of §16.6: new Request-URI, Max-Forwards decremented, Record-Route
(doubled when the request changes transport or interface), the next hop,
and a new Via whose branch begins with a hash of the request as received,
so that ``is_loop`` can tell a loop from a spiral (§16.3 step 4).
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import os
import socket
from typing import Any

from twisted.logger import Logger

from sipapp.routing.decisions import Target
from sipapp.sip import MAGIC_COOKIE, ParseError, Request, Response, SipUri, Via, parse_via
from sipapp.sip.memo import Memo
from sipapp.transport import Source

#: Where a request goes: transport ('UDP', 'TCP', 'TLS'), IP literal host, port.
Hop = tuple[str, str, int]

log = Logger()

_LOOP_FIELDS = ("call-id", "proxy-require", "proxy-authorization")


class ForwardError(Exception):
    """A target cannot be forwarded to; ``status`` is the response it turns into."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def loop_hash(request: Request) -> str:
    """The part of our branch that identifies ``request`` as received (§16.6 step 8).

    Over the To and From tags, Call-ID, Request-URI, CSeq number, Proxy-Require
    and Proxy-Authorization: the same request arriving again (a loop) hashes
    the same; one whose Request-URI changed on the way (a spiral) does not.
    """
    parts = [request.ruri, str(request.cseq.number), request.to.tag or "", request.from_.tag or ""]
    for name in _LOOP_FIELDS:
        parts.extend(request.get_all(name))
    digest = hashlib.blake2s("\x00".join(parts).encode("utf-8", "surrogateescape"), digest_size=8)
    return digest.hexdigest()


_HOPS: Memo[SipUri, Hop] = Memo(4096)


def resolve_hop(uri: SipUri) -> Hop:
    """The transport, address and port a request for ``uri`` is sent to.

    Uses ``maddr`` when present. Only IP literals (and ``localhost``) are
    resolved here; DNS (RFC 3263) belongs to a resolver. Raises ``ForwardError``.
    """
    hop = _HOPS.data.get(uri)
    if hop is not None:
        return hop
    return _HOPS.remember(uri, _resolve_hop(uri))


def _resolve_hop(uri: SipUri) -> Hop:
    transport = uri.transport
    if transport is None:
        transport = "tls" if uri.scheme == "sips" else "udp"
    transport = transport.upper()
    if transport not in ("UDP", "TCP", "TLS"):
        raise ForwardError(503, f"Service Unavailable - unsupported transport {transport[:10]}")
    host = uri.maddr or uri.host
    if host == "localhost":
        host = "127.0.0.1"
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        raise ForwardError(503, "Service Unavailable - next hop is not an IP address") from None
    port = uri.port if uri.port is not None else (5061 if transport == "TLS" else 5060)
    return transport, host, port


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _record_route_uri(transport: str, host: str, port: int, double: bool) -> str:
    host_text = f"[{host}]" if ":" in host else host
    params = "" if transport == "UDP" else f";transport={transport.lower()}"
    if double:
        params += ";r2=on"
    return f"<sip:{host_text}:{port}{params};lr>"


class Forwarder:
    """Prepares forwarded requests; knows our sockets through the transport manager."""

    def __init__(self, manager: Any, record_route: bool = True) -> None:
        self.manager = manager
        self.record_route = record_route
        self._salt = os.urandom(3).hex()
        self._counter = itertools.count(1)

    def branch(self, loop_part: str) -> str:
        """A branch unique to one forwarded request, starting with the loop hash."""
        return f"{MAGIC_COOKIE}{loop_part}.{self._salt}{next(self._counter):x}"

    def is_loop(self, request: Request, loop_part: str) -> bool:
        """§16.3 step 4: one of our Vias carries the branch we would compute now."""
        values = request.values("via")
        if len(values) < 2:
            return False
        prefix = MAGIC_COOKIE + loop_part + "."
        for value in values:
            if prefix not in value:
                continue
            try:
                via = parse_via(value)
            except ParseError:
                continue
            ours = self.manager.is_local(via.host, via.port, via.transport)
            if ours and (via.branch or "").startswith(prefix):
                return True
        return False

    def next_hop(self, request: Request, target: Target) -> Hop:
        """§16.6 step 7: the destination URI, else the top Route, else the Request-URI."""
        if target.next_hop is not None:
            return resolve_hop(target.next_hop)
        if request.has("route"):
            uri = request.routes[0].uri
            if not isinstance(uri, SipUri):
                raise ForwardError(416, "Unsupported URI Scheme - Route")
            return resolve_hop(uri)
        return resolve_hop(target.uri)

    def prepare(
        self, request: Request, target: Target, source: Any, branch: str, *, initial: bool
    ) -> tuple[Request, Hop]:
        """The copy of ``request`` to send to ``target`` and its hop (§16.6 steps 1-8)."""
        max_forwards = request.max_forwards
        if max_forwards == 0:
            # Also when a pipeline left out the max_forwards step (§16.3 step 3).
            raise ForwardError(483, "Too Many Hops")
        out = request.copy()
        if target.uri is not request.uri:
            out.uri = target.uri
        out.set("Max-Forwards", "70" if max_forwards is None else str(max_forwards - 1))
        for value in reversed(target.route):
            out.add("Route", value, top=True)
        hop = self.next_hop(out, target)
        transport, host, _ = hop
        try:
            via_host, via_port = self.manager.local_via(transport, _family(host))
        except LookupError:
            raise ForwardError(503, f"Service Unavailable - no {transport} socket") from None
        if self.record_route and initial:
            self._add_record_route(out, source, transport, via_host, via_port)
        out.push_via(Via(transport, via_host, via_port, (("branch", branch),)))
        return out, hop

    def _add_record_route(
        self, out: Request, source: Any, transport: str, host: str, port: int
    ) -> None:
        """§16.6 step 4, with a second entry when transport or interface change."""
        inbound = (source.transport, source.local_host, source.local_port)
        outbound = (transport, host, port)
        if inbound == outbound:
            out.add("Record-Route", _record_route_uri(transport, host, port, False), top=True)
            return
        out.add("Record-Route", _record_route_uri(*inbound, True), top=True)
        out.add("Record-Route", _record_route_uri(*outbound, True), top=True)


def forward_response(manager: Any, stats: Any, response: Response, source: Any) -> None:
    """Forward a response statelessly (§16.11): drop our top Via, send by the next one.

    A response whose top Via is not ours is dropped and counted (§18.1.2).
    """
    via = response.top_via
    if not manager.is_local(via.host, via.port, via.transport):
        stats.inc("sip_responses_unmatched_total")
        log.debug(
            "dropped a response {status} from {host}:{port} that is not for us",
            status=response.status,
            host=source.host,
            port=source.port,
        )
        return
    out = response.copy()
    out.pop_via()
    if not out.has("via"):
        stats.inc("sip_responses_unmatched_total")
        return
    stats.inc("sip_responses_stateless_total")
    manager.send_response(out, Source(out.top_via.transport, "", 0, "", 0))
