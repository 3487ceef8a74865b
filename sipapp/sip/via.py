"""The Via header (RFC 3261 §20.42, §18.2.1; ``rport`` from RFC 3581).

A ``Via`` is a frozen value: transport, sent-by host and port, and its
parameters in order. ``branch``, ``received``, ``rport``, ``maddr`` and
``ttl`` are read from the parameters; ``with_param`` returns a changed copy.
"""

from __future__ import annotations

import attrs

from sipapp.sip.errors import ParseError
from sipapp.sip.grammar import (
    DIGITS,
    IPV6_CHARS,
    WSP,
    Params,
    is_token,
    only,
    param,
    parse_params,
    render_params,
    replace_param,
)
from sipapp.sip.uri import parse_host

#: RFC 3261 §8.1.1.7: a branch that starts with this was made by an RFC 3261 element.
MAGIC_COOKIE = "z9hG4bK"

_WHAT = "Via header"


@attrs.frozen
class Via:
    """One Via header value."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()
    protocol: str = "SIP/2.0"

    def param(self, name: str) -> str | None:
        """The value of parameter ``name`` ('' when present without value)."""
        return param(self.params, name.lower())

    @property
    def branch(self) -> str | None:
        """The ``branch`` parameter."""
        return param(self.params, "branch")

    @property
    def received(self) -> str | None:
        """The ``received`` parameter, brackets of an IPv6 address removed."""
        value = param(self.params, "received")
        if value and value[0] == "[" and value[-1] == "]":
            return value[1:-1]
        return value

    @property
    def rport(self) -> str | None:
        """``rport``: None when absent, '' when asked for, else the port text."""
        return param(self.params, "rport")

    @property
    def maddr(self) -> str | None:
        """The ``maddr`` parameter."""
        return param(self.params, "maddr")

    @property
    def ttl(self) -> int | None:
        """The ``ttl`` parameter as an integer."""
        value = param(self.params, "ttl")
        return int(value) if value else None

    @property
    def sent_by(self) -> str:
        """``host[:port]`` as in the header, IPv6 in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    def with_param(self, name: str, value: str | None) -> Via:
        """This Via with ``name`` set to ``value`` (None: a parameter without value)."""
        return attrs.evolve(self, params=replace_param(self.params, name, value))

    def render(self) -> str:
        """Canonical header value text."""
        return f"{self.protocol}/{self.transport} {self.sent_by}{render_params(self.params)}"

    def __str__(self) -> str:
        return self.render()


def _check_params(params: Params) -> None:
    for name, value in params:
        key = name.lower()
        if key == "received":
            # An IPv4 or IPv6 address; RFC 5118 §4.5: accept an IPv6 one in brackets too.
            if value and value[0] == "[" and value[-1] == "]":
                value = value[1:-1]
            if not value or not only(value, IPV6_CHARS):
                raise ParseError("malformed received parameter in Via header")
        elif key == "rport":
            if value is not None and (
                not value or not only(value, DIGITS) or len(value) > 5 or int(value) > 65535
            ):
                raise ParseError("malformed rport parameter in Via header")
        elif key == "ttl":
            if not value or not only(value, DIGITS) or len(value) > 3 or int(value) > 255:
                raise ParseError("malformed ttl parameter in Via header")
        elif key == "branch" and not value:
            raise ParseError("empty branch parameter in Via header")


def parse_via(value: str) -> Via:
    """Parse one Via value: ``SIP / 2.0 / UDP host:port ;params`` (LWS allowed around '/')."""
    cut = value.find(" ", 8)
    transport = value[8:cut]
    if cut > 8 and value.startswith("SIP/2.0/") and is_token(transport):
        # The form nearly every Via has: "SIP/2.0/UDP host...", no LWS around '/'.
        name = "SIP"
        version = "2.0"
    else:
        name, slash, rest = value.partition("/")
        version, slash2, rest = rest.partition("/")
        name = name.strip(WSP)
        version = version.strip(WSP)
        if not slash or not slash2 or not is_token(name) or not is_token(version):
            raise ParseError("malformed Via header")
        rest = rest.lstrip(WSP)
        cut = 0
        n = len(rest)
        while cut < n and rest[cut] not in " \t;":
            cut += 1
        transport = rest[:cut]
        value = rest
        if not is_token(transport):
            raise ParseError("malformed Via header")
    rest = value[cut:].lstrip(WSP)
    sent_by, semi, ptext = rest.partition(";")
    sent_by = sent_by.rstrip(WSP)
    if not sent_by:
        raise ParseError("missing sent-by in Via header")
    if " " in sent_by or "\t" in sent_by:
        # sent-by = host [ COLON port ], and COLON allows LWS around ':' (§25.1).
        host_text, colon, port_text = sent_by.rpartition(":")
        if colon and (host_text.rstrip(WSP)[-1:] == "]" or ":" not in host_text):
            sent_by = f"{host_text.rstrip(WSP)}:{port_text.lstrip(WSP)}"
    host, port = parse_host(sent_by, _WHAT)
    params: Params = ()
    if semi:
        params = parse_params(ptext, _WHAT)
        _check_params(params)
    protocol = "SIP/2.0" if name == "SIP" and version == "2.0" else f"{name}/{version}"
    return Via(transport.upper(), host, port, params, protocol)
