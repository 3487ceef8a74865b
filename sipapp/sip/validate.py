"""What a server checks before it acts on a message.

``validate`` parses the headers every element relies on and raises
``ParseError`` (a 400, or 501 / 505) for a message that must not be
processed. ``check_request`` applies the proxy's request checks of RFC 3261
§16.3 that need no state and returns the rejection to send, if any.
"""

from __future__ import annotations

import attrs

from sipapp.sip.errors import ParseError
from sipapp.sip.grammar import DIGITS, only, param
from sipapp.sip.headers import canonical_name
from sipapp.sip.message import Message, Request
from sipapp.sip.uri import SipUri
from sipapp.sip.via import MAGIC_COOKIE

#: Methods this server understands (RFC 3261 and the common extensions).
KNOWN_METHODS = frozenset(
    (
        "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE",
        "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE",
    )
)

#: Headers that may appear only once (§20, "multi01" in RFC 4475).
_SINGLE = frozenset(("call-id", "from", "to", "cseq", "max-forwards", "content-type"))

_MONTHS = frozenset(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
)
_WKDAYS = frozenset(("Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"))


def _check_date(value: str) -> None:
    """RFC 3261 §20.17: rfc1123-date, and only GMT."""
    parts = value.split()
    ok = (
        len(parts) == 6
        and parts[0] in _WKDAYS
        and len(parts[1]) == 2
        and only(parts[1], DIGITS)
        and parts[2] in _MONTHS
        and len(parts[3]) == 4
        and only(parts[3], DIGITS)
        and len(parts[4]) == 8
        and only(parts[4], DIGITS + ":")
        and parts[5] == "GMT"
    )
    if not ok:
        raise ParseError("malformed Date header")


def validate(message: Message) -> None:
    """Parse the core headers of ``message``; raise ``ParseError`` when one is missing or bad.

    Checks the Request-URI, the top Via, From, To, Call-ID, CSeq (and that its
    method matches the request's), Max-Forwards, a REGISTER's Contact (the
    registrar stores it; a proxy passes other Contacts on untouched) and Date,
    and that single-instance headers appear once.
    """
    seen: set[str] = set()
    for h in message.headers:
        key = h[0]
        if key in _SINGLE:
            if key in seen:
                raise ParseError(f"multiple {canonical_name(key)} headers")
            seen.add(key)
    # Each property parses its header and raises ParseError when it is bad.
    _core = (message.top_via, message.from_, message.to, message.call_id)
    cseq = message.cseq
    if isinstance(message, Request):
        uri = message.uri
        if isinstance(uri, SipUri) and uri.headers:
            raise ParseError("headers not allowed in Request-URI")
        if cseq.method != message.method:
            status = 400 if message.method in KNOWN_METHODS else 501
            raise ParseError("CSeq method does not match Request-Line", status)
        _max_forwards = message.max_forwards
        if message.method == "REGISTER" and message.has("contact"):
            _contacts = message.contacts
    date = message.get("date")
    if date is not None:
        _check_date(date)


@attrs.frozen
class Rejection:
    """A response a check decided on: status, reason, extra headers."""

    status: int
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


def check_request(
    request: Request,
    *,
    supported: frozenset[str] = frozenset(),
    schemes: frozenset[str] = frozenset(("sip", "sips", "tel")),
    max_forwards: bool = True,
) -> Rejection | None:
    """The stateless proxy checks of §16.3 on a validated request, or None when it passes.

    416 for a Request-URI scheme we do not route, 483 when Max-Forwards is 0,
    420 with Unsupported for Proxy-Require tags not in ``supported``, 400 for
    a branch that is only the magic cookie. ``max_forwards=False`` leaves the
    483 check to a later step (the server may answer an OPTIONS itself first).
    """
    uri = request.uri
    if uri.scheme.lower() not in schemes:
        return Rejection(416)
    if max_forwards and request.max_forwards == 0:
        return Rejection(483)
    if request.has("proxy-require"):
        unsupported = [t for t in request.values("proxy-require") if t not in supported]
        if unsupported:
            return Rejection(420, None, (("Unsupported", ", ".join(unsupported)),))
    branch = param(request.top_via.params, "branch")
    if branch is not None and branch == MAGIC_COOKIE:
        return Rejection(400, "Bad Request - branch is only the magic cookie")
    return None
