"""name-addr / addr-spec values: From, To, Contact, Route, Record-Route, Path (RFC 3261 §20).

``NameAddr`` is a frozen value: an optional display name, a URI and the
header parameters after it (``tag``, ``expires``, ``q``...). In the addr-spec
form (no angle brackets) everything after the first ';' is a header
parameter, never a URI parameter (§20.10).
"""

from __future__ import annotations

import attrs

from sipapp.sip.errors import ParseError
from sipapp.sip.grammar import (
    DIGITS,
    TOKEN_CHARS,
    WSP,
    Params,
    only,
    param,
    parse_params,
    quoted_string_end,
    render_params,
    replace_param,
)
from sipapp.sip.memo import Memo
from sipapp.sip.uri import Uri, parse_uri

#: Characters an addr-spec may not contain outside angle brackets (§20.10).
_ADDR_SPEC_FORBIDDEN = frozenset(",?")


@attrs.frozen
class NameAddr:
    """A display name, a URI and header parameters."""

    uri: Uri
    display: str | None = None
    params: Params = ()

    def param(self, name: str) -> str | None:
        """The value of header parameter ``name`` ('' when present without value)."""
        return param(self.params, name.lower())

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (From / To), or None."""
        return param(self.params, "tag")

    @property
    def q(self) -> float | None:
        """The ``q`` parameter of a Contact (0 to 1), or None when absent.

        Raises ``ParseError`` for a value that is not a qvalue (§25.1).
        """
        value = param(self.params, "q")
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            raise ParseError("malformed q parameter in Contact header") from None
        if not 0.0 <= number <= 1.0 or len(value) > 5:
            raise ParseError("malformed q parameter in Contact header")
        return number

    @property
    def expires(self) -> int | None:
        """The ``expires`` parameter of a Contact in seconds, or None.

        A value beyond 2**32-1 is taken as 2**32-1 (RFC 4475 §3.1.2.4 allows
        treating a huge expiry as the largest); non-digits raise ``ParseError``.
        """
        value = param(self.params, "expires")
        if value is None:
            return None
        if not value or not only(value, DIGITS):
            raise ParseError("malformed expires parameter in Contact header")
        return min(int(value[:11]), 0xFFFFFFFF)

    def with_param(self, name: str, value: str | None) -> NameAddr:
        """This value with header parameter ``name`` set."""
        return attrs.evolve(self, params=replace_param(self.params, name, value))

    def render(self) -> str:
        """Canonical name-addr text: always with angle brackets."""
        head = f"{self.display} " if self.display else ""
        return f"{head}<{self.uri.render()}>{render_params(self.params)}"

    def __str__(self) -> str:
        return self.render()


#: The ``Contact: *`` wildcard (§10.2.2).
STAR = "*"


def _display(text: str, what: str) -> str | None:
    """Validate a display name: a quoted string or tokens separated by LWS."""
    text = text.strip()
    if not text:
        return None
    if text[0] == '"':
        if quoted_string_end(text, 0, f"{what} header") != len(text):
            raise ParseError(f"malformed display name in {what}")
        return text
    for word in text.split():
        if word.strip(TOKEN_CHARS):
            raise ParseError(f"malformed display name in {what}")
    return text


#: Values seen recently: the From, To and Contact of a dialog repeat in every message.
_SEEN: Memo[str, NameAddr] = Memo()


def parse_name_addr(value: str, what: str) -> NameAddr:
    """Parse one name-addr or addr-spec with its header parameters."""
    cached = _SEEN.data.get(value)
    if cached is not None:
        return cached
    return _SEEN.remember(value, _parse_name_addr(value, what))


def _parse_name_addr(value: str, what: str) -> NameAddr:
    text = value.strip(WSP)
    if not text:
        raise ParseError(f"empty {what} header")
    lt = -1
    if text[0] == '"':
        end = quoted_string_end(text, 0, f"{what} header")
        lt = text.find("<", end)
        if lt < 0 or text[end:lt].strip():
            raise ParseError(f"malformed {what} header")
    else:
        lt = text.find("<")
    if lt >= 0:
        gt = text.find(">", lt)
        if gt < 0:
            raise ParseError(f"unterminated '<' in {what} header")
        display = _display(text[:lt], what)
        uri = parse_uri(text[lt + 1 : gt], f"{what} URI")
        rest = text[gt + 1 :].strip(WSP)
    else:
        uri_text, semi, ptext = text.partition(";")
        uri_text = uri_text.strip(WSP)
        if any(c in _ADDR_SPEC_FORBIDDEN for c in uri_text) or " " in uri_text:
            raise ParseError(f"malformed {what} header")
        display = None
        uri = parse_uri(uri_text, f"{what} URI")
        rest = ";" + ptext if semi else ""
    params: Params = ()
    if rest:
        if rest[0] != ";":
            raise ParseError(f"malformed {what} header")
        params = parse_params(rest[1:], f"{what} header")
    return NameAddr(uri, display, params)
