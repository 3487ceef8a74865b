"""The path every received SIP message takes, shared by UDP, TCP and TLS.

Parse and validate the bytes, answer a broken request with the error response
the parser suggests (or drop it), apply the RFC 3261 §18.2.1 / RFC 3581 Via
fix-ups, turn away new requests while draining (503), and hand the rest to the
message handler. Framing and sockets are not its business: the protocols in
``udp`` and ``stream`` call :func:`accept` with one complete message.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, Protocol

from twisted.logger import Logger

from sipapp.sip import (
    ParseError,
    Request,
    Response,
    error_response,
    make_response,
    parse_message,
    validate,
)
from sipapp.transport.addresses import fix_via
from sipapp.transport.source import Source

log = Logger()

#: RFC 3261 §20.33: how long a draining server asks clients to wait.
RETRY_AFTER = "5"


class Counters(Protocol):
    """The part of ``IStats`` the transports use."""

    def inc(self, name: str, amount: int = 1, **labels: str) -> None:
        """Add ``amount`` to counter ``name``."""


class Owner(Protocol):
    """What a protocol needs from the transport manager that owns it."""

    handler: Any
    draining: bool
    stats: Counters
    force_rport: bool
    max_message_size: int

    def send_response(self, response: Any, source: Any) -> bool:
        """Send ``response`` back towards ``source`` (RFC 3261 §18.2.2)."""


def is_keepalive(data: bytes) -> bool:
    """True for a datagram that carries only CR / LF / whitespace (RFC 5626 §4.4.1)."""
    return not data.strip()


def kind_of(data: bytes) -> str:
    """``'response'`` when ``data`` starts with a status line, else ``'request'``."""
    return "response" if data.startswith(b"SIP/") else "request"


def reject(
    owner: Owner, data: bytes, err: ParseError, source: Source, reply: Callable[[bytes], object]
) -> bool:
    """Answer bad input with its error response, or drop it; returns ``True`` when answered."""
    answer = error_response(data, err)
    if answer is None:
        log.debug(
            "dropped bad message from {host}:{port} ({transport}): {reason}",
            host=source.host,
            port=source.port,
            transport=source.transport,
            reason=err.reason,
        )
        owner.stats.inc("sip_dropped_total", reason="unparseable")
        return False
    log.debug(
        "answered bad request from {host}:{port} ({transport}) with {status}: {reason}",
        host=source.host,
        port=source.port,
        transport=source.transport,
        status=err.status,
        reason=err.reason,
    )
    reply(answer)
    return True


def accept(
    owner: Owner,
    data: bytes,
    source: Source,
    reply: Callable[[bytes], object],
    *,
    datagram: bool,
) -> None:
    """Take one complete message from ``source`` to the handler.

    ``reply`` writes raw bytes straight back to the peer (the datagram's source
    address, or the stream connection); it carries error responses for
    requests that cannot be parsed.
    """
    try:
        message = parse_message(data, datagram=datagram)
        validate(message)
    except ParseError as err:
        owner.stats.inc("sip_parse_errors_total", transport=source.transport)
        reject(owner, data, err, source, reply)
        return
    owner.stats.inc(
        "sip_received_total",
        transport=source.transport,
        kind="request" if isinstance(message, Request) else "response",
    )
    if isinstance(message, Request):
        fixed = fix_via(message.top_via, source.host, source.port, owner.force_rport)
        if fixed is not None:
            message.set_top_via(fixed)
        if owner.draining and is_new_request(message):
            refuse_while_draining(owner, message, source)
            return
    handler = owner.handler
    if handler is None:
        owner.stats.inc("sip_dropped_total", reason="no_handler")
        log.warn("no message handler yet; dropped a message from {host}", host=source.host)
        return
    handler.receive(message, source)


def is_new_request(request: Request) -> bool:
    """True for an out-of-dialog request other than ACK / CANCEL (no To tag)."""
    if request.method in ("ACK", "CANCEL"):
        return False
    return not request.to.tag


def refuse_while_draining(owner: Owner, request: Request, source: Source) -> None:
    """Answer a new request with 503 + Retry-After while the server shuts down."""
    response: Response = make_response(
        request, 503, "Service Unavailable", to_tag=secrets.token_hex(6)
    )
    response.set("Retry-After", RETRY_AFTER)
    owner.stats.inc("sip_dropped_total", reason="draining")
    owner.send_response(response, source)
