"""Address helpers for the transports: IP literals, default ports, Via fix-ups.

Pure functions, no I/O: recognising and normalising IP literals (never
resolving a name — DNS belongs to another layer), the RFC 3261 §18.2.1 /
RFC 3581 ``received`` and ``rport`` rules for a request's top Via, and the
§18.2.2 choice of where a response goes when no connection can carry it.
"""

from __future__ import annotations

import ipaddress
import socket

from sipapp.sip import Via
from sipapp.sip.memo import Memo

DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "TLS": 5061}


def default_port(transport: str) -> int:
    """The well-known port of ``transport`` (5061 for TLS, 5060 otherwise)."""
    return DEFAULT_PORTS.get(transport.upper(), 5060)


#: Answers of ``ip_literal``: the same few peer addresses come up on every message.
_SEEN: Memo[str, str | None] = Memo(4096)


def ip_literal(host: str | None) -> str | None:
    """``host`` as a normalised IP address text, or ``None`` when it is not one.

    Brackets around an IPv6 literal are removed, an IPv4-mapped IPv6 address
    becomes its IPv4 form, and IPv6 text is compressed (``0:0::1`` -> ``::1``).
    """
    if not host:
        return None
    try:
        return _SEEN.data[host]
    except KeyError:
        return _SEEN.remember(host, _ip_literal(host))


def _ip_literal(host: str) -> str | None:
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def family_of(host: str) -> int:
    """``socket.AF_INET6`` for an IPv6 literal, ``socket.AF_INET`` otherwise."""
    literal = ip_literal(host)
    if literal is not None and ":" in literal:
        return socket.AF_INET6
    return socket.AF_INET


def fix_via(via: Via, host: str, port: int, force_rport: bool = False) -> Via | None:
    """The top Via of a received request after RFC 3261 §18.2.1 and RFC 3581.

    ``received`` is set to the source address when the sent-by host is not
    that address, or when ``rport`` is present (``force_rport`` acts as if it
    were); an ``rport`` without a value gets the source port. Returns ``None``
    when nothing changes.
    """
    source = ip_literal(host) or host
    rport_present = via.rport is not None or force_rport
    changed = via
    if rport_present or ip_literal(via.host) != source:
        changed = changed.with_param("received", source)
    if via.rport == "" or (force_rport and via.rport is None):
        changed = changed.with_param("rport", str(port))
    return None if changed is via else changed


def response_target(via: Via, transport: str) -> tuple[str, int] | None:
    """Where a response goes by its top Via when no connection carries it (§18.2.2).

    UDP: ``maddr`` when it is an IP literal (at the sent-by port); else
    ``received`` (or an IP-literal sent-by) at the ``rport`` value, or at the
    sent-by port. TCP / TLS: ``received`` or an IP-literal sent-by at the
    sent-by port. The port defaults to 5060 (5061 for TLS). Returns ``None``
    when only a host name is available: this layer never resolves names.
    """
    transport = transport.upper()
    port = via.port if via.port is not None else default_port(transport)
    if transport == "UDP":
        maddr = ip_literal(via.maddr)
        if maddr is not None:
            return maddr, port
    host = ip_literal(via.received) or ip_literal(via.host)
    if host is None:
        return None
    if transport == "UDP" and via.rport and via.rport.isdigit():
        port = int(via.rport)
    return host, port
