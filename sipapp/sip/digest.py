"""Authentication headers: ``Authorization`` / ``WWW-Authenticate`` and their Proxy- twins.

RFC 3261 §20.7, §20.44 with RFC 7616 / RFC 8760 digest parameters. A
``Credentials`` value is what a client sent, a ``Challenge`` what a server
asks with; both keep the scheme and the parameters in order, unquoted.
Schemes other than Digest parse too (an element that does not know them
passes them on or ignores them, RFC 4475 §3.3.7). Only parsing and
rendering live here; computing and checking a digest is ``sipapp.auth``'s.
"""

from __future__ import annotations

import attrs

from sipapp.sip.errors import ParseError
from sipapp.sip.grammar import TOKEN_CHARS, WSP, is_token, quoted_string_end

AuthParams = tuple[tuple[str, str], ...]

#: Parameters written as quoted strings (RFC 7616 §3.3, §3.4; RFC 8760).
_QUOTED = frozenset(
    ("realm", "domain", "nonce", "opaque", "username", "uri", "response", "cnonce", "qop")
)
#: In credentials ``qop`` is a token (``qop=auth``), in a challenge a quoted list.
_UNQUOTED_IN_CREDENTIALS = frozenset(("qop", "nc", "algorithm", "stale"))


def _unquote(text: str) -> str:
    inner = text[1:-1]
    if "\\" not in inner:
        return inner
    out = []
    i = 0
    while i < len(inner):
        c = inner[i]
        if c == "\\" and i + 1 < len(inner):
            out.append(inner[i + 1])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_auth(value: str, what: str) -> tuple[str, AuthParams]:
    """Split ``scheme name=value, name="value"`` into the scheme and its parameters.

    Names are lower-cased; quoted values are unquoted. Raises ``ParseError``
    naming ``what`` for anything else.
    """
    text = value.strip(WSP)
    cut = 0
    while cut < len(text) and text[cut] not in WSP:
        cut += 1
    scheme = text[:cut]
    if not is_token(scheme):
        raise ParseError(f"malformed {what} header")
    rest = text[cut:].strip(WSP)
    params: list[tuple[str, str]] = []
    i = 0
    n = len(rest)
    while i < n:
        eq = rest.find("=", i)
        if eq < 0:
            raise ParseError(f"malformed {what} header")
        name = rest[i:eq].strip(WSP)
        if not name or name.strip(TOKEN_CHARS):
            raise ParseError(f"malformed {what} header")
        j = eq + 1
        while j < n and rest[j] in WSP:
            j += 1
        if j < n and rest[j] == '"':
            try:
                end = quoted_string_end(rest, j)
            except ParseError:
                raise ParseError(f"unterminated quoted string in {what} header") from None
            param = _unquote(rest[j:end])
        else:
            end = rest.find(",", j)
            end = n if end < 0 else end
            param = rest[j:end].strip(WSP)
            if not param or param.strip(TOKEN_CHARS + "/:"):
                raise ParseError(f"malformed {what} header")
        params.append((name.lower(), param))
        k = end
        while k < n and rest[k] in WSP:
            k += 1
        if k < n:
            if rest[k] != ",":
                raise ParseError(f"malformed {what} header")
            k += 1
        i = k
    return scheme, tuple(params)


@attrs.frozen
class _AuthValue:
    """What credentials and challenges share: a scheme and its parameters."""

    scheme: str
    params: AuthParams = ()

    def get(self, name: str) -> str | None:
        """The parameter ``name`` (lower case), or None."""
        for key, value in self.params:
            if key == name:
                return value
        return None

    @property
    def realm(self) -> str | None:
        """``realm``."""
        return self.get("realm")

    @property
    def nonce(self) -> str | None:
        """``nonce``."""
        return self.get("nonce")

    @property
    def algorithm(self) -> str:
        """``algorithm``, MD5 when absent (RFC 7616 §3.4)."""
        return self.get("algorithm") or "MD5"


@attrs.frozen
class Credentials(_AuthValue):
    """An ``Authorization`` or ``Proxy-Authorization`` value."""

    @property
    def is_digest(self) -> bool:
        """True for the Digest scheme."""
        return self.scheme.lower() == "digest"

    @property
    def username(self) -> str | None:
        """``username``."""
        return self.get("username")

    @property
    def uri(self) -> str | None:
        """``uri`` (the digest-uri)."""
        return self.get("uri")

    @property
    def response(self) -> str | None:
        """``response``: the digest."""
        return self.get("response")

    @property
    def qop(self) -> str | None:
        """``qop``."""
        return self.get("qop")

    @property
    def nc(self) -> str | None:
        """``nc``: the nonce count, eight hex digits."""
        return self.get("nc")

    @property
    def cnonce(self) -> str | None:
        """``cnonce``."""
        return self.get("cnonce")

    def render(self) -> str:
        """Header value text."""
        return _render(self.scheme, self.params, _UNQUOTED_IN_CREDENTIALS)


@attrs.frozen
class Challenge(_AuthValue):
    """A ``WWW-Authenticate`` or ``Proxy-Authenticate`` value."""

    @property
    def qop_options(self) -> tuple[str, ...]:
        """The offered ``qop`` values (``auth``, ``auth-int``)."""
        qop = self.get("qop")
        return tuple(q.strip(WSP) for q in qop.split(",")) if qop else ()

    @property
    def stale(self) -> bool:
        """``stale=true``: the nonce expired, the credentials were right."""
        return (self.get("stale") or "").lower() == "true"

    def render(self) -> str:
        """Header value text."""
        return _render(self.scheme, self.params, frozenset(("algorithm", "stale")))


def _render(scheme: str, params: AuthParams, unquoted: frozenset[str]) -> str:
    parts = []
    for name, value in params:
        if name in _QUOTED and name not in unquoted:
            parts.append(f"{name}={_quote(value)}")
        else:
            parts.append(f"{name}={value}")
    return f"{scheme} " + ", ".join(parts) if parts else scheme


def parse_credentials(value: str, what: str = "Authorization") -> Credentials:
    """Parse an ``Authorization`` / ``Proxy-Authorization`` value."""
    scheme, params = parse_auth(value, what)
    return Credentials(scheme, params)


def parse_challenge(value: str, what: str = "WWW-Authenticate") -> Challenge:
    """Parse a ``WWW-Authenticate`` / ``Proxy-Authenticate`` value."""
    scheme, params = parse_auth(value, what)
    return Challenge(scheme, params)
