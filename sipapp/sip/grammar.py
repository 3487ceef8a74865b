"""Character classes and small lexical helpers of the RFC 3261 grammar (§25.1).

Checks use ``str.strip(chars)``: a string made only of allowed characters
strips to nothing, which runs in C and needs no regular expression.
"""

from __future__ import annotations

from sipapp.sip.errors import ParseError

ALPHANUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
DIGITS = "0123456789"
HEXDIG = "0123456789abcdefABCDEF"
#: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CHARS = ALPHANUM + "-.!%*_+`'~"
#: word adds the separators allowed in Call-ID words.
WORD_CHARS = TOKEN_CHARS + '()<>:\\"/[]?{}'
UNRESERVED = ALPHANUM + "-_.!~*'()"
#: user = 1*( unreserved / escaped / user-unreserved )
USER_CHARS = UNRESERVED + "%&=+$,;?/"
PASSWORD_CHARS = UNRESERVED + "%&=+$,"
#: paramchar = param-unreserved / unreserved / escaped
PARAM_CHARS = UNRESERVED + "%[]/:&+$"
#: hname / hvalue characters of URI headers
HEADER_CHARS = UNRESERVED + "%[]/?:+$"
HOST_CHARS = ALPHANUM + "-._"
IPV6_CHARS = HEXDIG + ":."
WSP = " \t"


def is_token(text: str) -> bool:
    """True when ``text`` is a non-empty RFC 3261 token."""
    return bool(text) and not text.strip(TOKEN_CHARS)


def only(text: str, chars: str) -> bool:
    """True when every character of ``text`` is in ``chars`` (empty is True)."""
    return not text.strip(chars)


def unescape(text: str) -> str:
    """Decode %HH escapes (RFC 3986 §2.1); ``%00`` becomes NUL, never a terminator."""
    if "%" not in text:
        return text
    out = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "%" and i + 2 < n and only(text[i + 1 : i + 3], HEXDIG):
            out.append(chr(int(text[i + 1 : i + 3], 16)))
            i += 3
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _where(problem: str, what: str) -> str:
    return f"{problem} in {what}" if what else problem


def split_quoted(value: str, sep: str, what: str = "") -> list[str]:
    """Split ``value`` at ``sep`` outside quoted strings and ``<...>``.

    Raises ``ParseError`` on an unterminated quoted string or angle bracket
    (``what``, when given, names where in the message).
    """
    if '"' not in value and "<" not in value:
        return value.split(sep)
    parts = []
    start = 0
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if c == '"':
            i += 1
            while i < n and value[i] != '"':
                i += 2 if value[i] == "\\" else 1
            if i >= n:
                raise ParseError(_where("unterminated quoted string", what))
        elif c == "<":
            end = value.find(">", i)
            if end < 0:
                raise ParseError(_where("unterminated '<'", what))
            i = end
        elif c == sep:
            parts.append(value[start:i])
            start = i + 1
        i += 1
    parts.append(value[start:])
    return parts


def quoted_string_end(value: str, start: int, what: str = "") -> int:
    """Index just past the quoted string that begins at ``value[start] == '"'``."""
    i = start + 1
    n = len(value)
    while i < n:
        c = value[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        i += 1
    raise ParseError(_where("unterminated quoted string", what))


Params = tuple[tuple[str, "str | None"], ...]


def parse_params(text: str, what: str, chars: str = TOKEN_CHARS) -> Params:
    """Parse ``;name=value;name`` (the text after the first ';'), LWS allowed around '=' and ';'.

    Names must be made of ``chars``; values are tokens, hosts or quoted strings.
    Empty parameters (``;;``) are an error. Names keep their case.
    """
    if not text.strip():
        raise ParseError(f"empty parameter in {what}")
    out: list[tuple[str, str | None]] = []
    for item in split_quoted(text, ";", what) if '"' in text else text.split(";"):
        name, eq, val = item.partition("=")
        name = name.strip()
        if not name or name.strip(chars):
            raise ParseError(f"malformed parameter in {what}")
        if eq:
            val = val.strip()
            if not val:
                raise ParseError(f"empty parameter value in {what}")
            if val[0] == '"':
                if quoted_string_end(val, 0, what) != len(val):
                    raise ParseError(f"malformed quoted parameter in {what}")
            elif val.strip(chars + "[]:"):
                raise ParseError(f"malformed parameter value in {what}")
            out.append((name, val))
        else:
            out.append((name, None))
    return tuple(out)


def param(params: Params, name: str) -> str | None:
    """The value of parameter ``name`` (case-insensitive); '' when present without value."""
    for key, val in params:
        if key.lower() == name:
            return "" if val is None else val
    return None


def render_params(params: Params) -> str:
    """``;name=value`` text for ``params``."""
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def replace_param(params: Params, name: str, value: str | None) -> Params:
    """``params`` with ``name`` set to ``value`` (added at the end when absent)."""
    out = []
    done = False
    lower = name.lower()
    for key, val in params:
        if key.lower() == lower:
            if not done:
                out.append((key, value))
                done = True
        else:
            out.append((key, val))
    if not done:
        out.append((name, value))
    return tuple(out)
