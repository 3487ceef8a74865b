"""URIs: ``sip:`` / ``sips:`` (RFC 3261 §19.1), ``tel:`` (RFC 3966) and any other absolute URI.

Parsed URIs are frozen values. Escaped text is kept as written (``%41`` stays
``%41``) so a URI re-renders as it came; ``unescape`` gives the decoded form
where the grammar allows escapes. Hosts are kept without IPv6 brackets and
lower-cased; ``render`` puts the brackets back.
"""

from __future__ import annotations

import attrs

from sipapp.sip.errors import ParseError
from sipapp.sip.grammar import (
    ALPHANUM,
    DIGITS,
    HEADER_CHARS,
    HOST_CHARS,
    IPV6_CHARS,
    PARAM_CHARS,
    PASSWORD_CHARS,
    USER_CHARS,
    Params,
    only,
    param,
    parse_params,
    render_params,
    replace_param,
)
from sipapp.sip.memo import Memo

_SCHEME_CHARS = ALPHANUM + "+-."
#: Characters that may never appear in the opaque part of an absolute URI.
_OPAQUE_FORBIDDEN = frozenset(' \t\r\n<>"\x00')


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@attrs.frozen
class SipUri:
    """A ``sip:`` or ``sips:`` URI."""

    scheme: str
    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()

    def param(self, name: str) -> str | None:
        """The value of URI parameter ``name`` ('' when present without a value)."""
        return param(self.params, name.lower())

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lower-cased, or None."""
        value = self.param("transport")
        return value.lower() if value else None

    @property
    def lr(self) -> bool:
        """True when the URI carries the loose-routing ``lr`` parameter."""
        return self.param("lr") is not None

    @property
    def maddr(self) -> str | None:
        """The ``maddr`` parameter, or None."""
        return self.param("maddr")

    @property
    def hostport(self) -> str:
        """``host[:port]`` with IPv6 brackets."""
        host = _host_text(self.host)
        return host if self.port is None else f"{host}:{self.port}"

    def with_param(self, name: str, value: str | None = None) -> SipUri:
        """This URI with parameter ``name`` set to ``value``."""
        return attrs.evolve(self, params=replace_param(self.params, name, value))

    def without_headers(self) -> SipUri:
        """This URI without its ``?header=value`` part."""
        return attrs.evolve(self, headers=())

    def render(self) -> str:
        """The URI as text."""
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":")
                out.append(self.password)
            out.append("@")
        out.append(self.hostport)
        if self.params:
            out.append(render_params(self.params))
        if self.headers:
            out.append("?")
            out.append("&".join(f"{k}={v}" for k, v in self.headers))
        return "".join(out)

    def __str__(self) -> str:
        return self.render()


@attrs.frozen
class TelUri:
    """A ``tel:`` URI (RFC 3966): a number and its parameters."""

    number: str
    params: Params = ()
    scheme: str = "tel"

    def render(self) -> str:
        """The URI as text."""
        return f"tel:{self.number}{render_params(self.params)}"

    def __str__(self) -> str:
        return self.render()


@attrs.frozen
class AbsoluteUri:
    """Any other absolute URI (``http:``, ``urn:``...): scheme and opaque text."""

    scheme: str
    opaque: str

    def render(self) -> str:
        """The URI as text."""
        return f"{self.scheme}:{self.opaque}"

    def __str__(self) -> str:
        return self.render()


Uri = SipUri | TelUri | AbsoluteUri


def parse_host(text: str, what: str) -> tuple[str, int | None]:
    """Parse ``host[:port]`` (IPv6 references in brackets) into (host, port).

    The host is returned lower-cased and without brackets.
    """
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ParseError(f"malformed IPv6 reference in {what}")
        host = text[1:end]
        if not host or not only(host, IPV6_CHARS) or ":" not in host:
            raise ParseError(f"malformed IPv6 reference in {what}")
        rest = text[end + 1 :]
        if not rest:
            return host.lower(), None
        if rest[0] != ":":
            raise ParseError(f"malformed host in {what}")
        return host.lower(), parse_port(rest[1:], what)
    host, colon, port = text.partition(":")
    if not host or not only(host, HOST_CHARS):
        raise ParseError(f"malformed host in {what}")
    return host.lower(), parse_port(port, what) if colon else None


def parse_port(text: str, what: str) -> int:
    """A port number 0..65535 written as 1..5 digits."""
    if not text or len(text) > 5 or not only(text, DIGITS):
        raise ParseError(f"malformed port in {what}")
    value = int(text)
    if value > 65535:
        raise ParseError(f"port out of range in {what}")
    return value


def _parse_sip(scheme: str, rest: str, what: str) -> SipUri:
    if " " in rest or "\t" in rest:
        raise ParseError(f"whitespace in {what}")
    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at >= 0:
        userinfo = rest[:at]
        rest = rest[at + 1 :]
        user, colon, pw = userinfo.partition(":")
        if not user or not only(user, USER_CHARS):
            raise ParseError(f"malformed user part in {what}")
        if colon:
            if not only(pw, PASSWORD_CHARS):
                raise ParseError(f"malformed password in {what}")
            password = pw
    headers: tuple[tuple[str, str], ...] = ()
    q = rest.find("?")
    if q >= 0:
        headers = _parse_uri_headers(rest[q + 1 :], what)
        rest = rest[:q]
    params: Params = ()
    semi = rest.find(";")
    if semi >= 0:
        params = parse_params(rest[semi + 1 :], what, PARAM_CHARS)
        rest = rest[:semi]
    host, port = parse_host(rest, what)
    return SipUri(scheme, host, user, password, port, params, headers)


def _parse_uri_headers(text: str, what: str) -> tuple[tuple[str, str], ...]:
    out = []
    for item in text.split("&"):
        name, eq, value = item.partition("=")
        if not name or not eq or not only(name, HEADER_CHARS) or not only(value, HEADER_CHARS):
            raise ParseError(f"malformed header part in {what}")
        out.append((name, value))
    return tuple(out)


def _parse_tel(rest: str, what: str) -> TelUri:
    number, semi, ptext = rest.partition(";")
    if not number or not only(number, ALPHANUM + "+-.()*#%"):
        raise ParseError(f"malformed tel number in {what}")
    params = parse_params(ptext, what, PARAM_CHARS) if semi else ()
    return TelUri(number, params)


#: URIs seen recently (a dialog's Request-URIs and Contacts repeat).
_SEEN: Memo[str, Uri] = Memo()


def parse_uri(text: str, what: str = "URI") -> Uri:
    """Parse an absolute URI. ``what`` names it in errors ("malformed host in Request-URI")."""
    cached = _SEEN.data.get(text)
    if cached is not None:
        return cached
    return _SEEN.remember(text, _parse_uri(text, what))


def _parse_uri(text: str, what: str) -> Uri:
    scheme, colon, rest = text.partition(":")
    if not colon or not scheme or not scheme[0].isalpha() or not only(scheme, _SCHEME_CHARS):
        raise ParseError(f"malformed {what}")
    lower = scheme.lower()
    if lower == "sip" or lower == "sips":
        return _parse_sip(lower, rest, what)
    if lower == "tel":
        return _parse_tel(rest, what)
    if not rest or any(c in _OPAQUE_FORBIDDEN for c in rest):
        raise ParseError(f"malformed {what}")
    return AbsoluteUri(scheme, rest)
