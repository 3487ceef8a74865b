"""Header names: compact forms (RFC 3261 §7.3.3 and extensions), canonical spelling.

A header's *key* is its full name in lower case (``v`` and ``VIA`` both give
``via``); lookups use keys, rendering uses the canonical spelling.
"""

from __future__ import annotations

from sipapp.sip.errors import ParseError
from sipapp.sip.grammar import TOKEN_CHARS

COMPACT_FORMS: dict[str, str] = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}

_CANONICAL: dict[str, str] = {
    name.lower(): name
    for name in (
        "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
        "Allow-Events", "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
        "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
        "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires", "From", "Identity",
        "Identity-Info", "In-Reply-To", "Max-Forwards", "MIME-Version", "Min-Expires",
        "Organization", "P-Asserted-Identity", "Path", "Priority", "Privacy",
        "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "RAck", "Reason",
        "Record-Route", "Refer-To", "Referred-By", "Reject-Contact", "Reply-To",
        "Request-Disposition", "Require", "Retry-After", "Route", "RSeq", "Server",
        "Service-Route", "Session-Expires", "SIP-ETag", "SIP-If-Match", "Subject",
        "Subscription-State", "Supported", "Timestamp", "To", "Unsupported", "User-Agent",
        "Via", "Warning", "WWW-Authenticate",
    )
}

_KEY_CACHE: dict[str, str] = {}
_KEY_CACHE_LIMIT = 4096


def header_key(name: str) -> str:
    """The lookup key for header ``name``: full name, lower case.

    Raises ``ParseError`` when ``name`` is not a token.
    """
    key = _KEY_CACHE.get(name)
    if key is not None:
        return key
    if not name or name.strip(TOKEN_CHARS):
        raise ParseError("malformed header name")
    lower = name.lower()
    key = COMPACT_FORMS.get(lower, lower)
    if len(_KEY_CACHE) < _KEY_CACHE_LIMIT:
        _KEY_CACHE[name] = key
    return key


def canonical_name(key: str) -> str:
    """How we spell a header when we render it (``call-id`` -> ``Call-ID``)."""
    name = _CANONICAL.get(key)
    if name is None:
        name = "-".join(part[:1].upper() + part[1:] for part in key.split("-"))
    return name
