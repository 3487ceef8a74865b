"""Bytes to messages: the start line, header lines with folding, body framing (RFC 3261 §7, §18.3).

``parse_message`` splits one complete message into a ``Request`` or
``Response`` and leaves structured headers to be parsed on access.
``error_response`` builds the answer to bytes that failed, so that a bad
request still gets a 400 naming its problem.
"""

from __future__ import annotations

from sipapp.sip.errors import FramingError, ParseError, VersionNotSupported
from sipapp.sip.grammar import DIGITS, TOKEN_CHARS, WSP, only
from sipapp.sip.headers import _KEY_CACHE, header_key
from sipapp.sip.message import Header, Request, Response
from sipapp.sip.status import reason_phrase

#: Largest Content-Length value we take as a number at all.
_MAX_CONTENT_LENGTH = 0xFFFFFFFF


def _check_version(version: str, what: str) -> None:
    if version == "SIP/2.0" or version.upper() == "SIP/2.0":
        return
    proto, slash, number = version.partition("/")
    major, dot, minor = number.partition(".")
    if (
        proto.upper() == "SIP"
        and slash
        and dot
        and major
        and minor
        and only(major, DIGITS)
        and only(minor, DIGITS)
    ):
        raise VersionNotSupported(f"SIP version {version[:20]} not supported")
    raise ParseError(f"malformed {what}")


def _head_end(data: bytes) -> tuple[int, int]:
    """Where the header section ends and where the body starts; (-1, -1) when it never ends.

    CRLF line ends as RFC 3261 §7 says, or bare LF ones, tolerated because
    many stacks are lax: the first line decides, so an LF-only message is
    never cut at a CRLF CRLF inside its body.
    """
    nl = data.find(b"\n")
    if nl > 0 and data[nl - 1] == 13:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            return end, end + 4
        end = data.find(b"\n\n")
        return (end, end + 2) if end >= 0 else (-1, -1)
    lf = data.find(b"\n\n")
    mixed = data.find(b"\n\r\n")  # LF line ends closed by a CRLF empty line
    if mixed >= 0 and (lf < 0 or mixed < lf):
        return mixed, mixed + 3
    return (lf, lf + 2) if lf >= 0 else (-1, -1)


def _split_head(data: bytes) -> tuple[list[str], int]:
    """Header section lines (decoded) and the offset where the body starts."""
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        lines = data[:end].decode("utf-8", "surrogateescape").split("\r\n")
        if "\n" not in lines[0]:
            return lines, end + 4
    end, body_start = _head_end(data)
    if end < 0:
        raise FramingError("header section not terminated")
    text = data[:end].decode("utf-8", "surrogateescape")
    return [line.rstrip("\r") for line in text.split("\n")], body_start


def _parse_headers(lines: list[str]) -> list[Header]:
    headers: list[Header] = []
    cache = _KEY_CACHE
    for i in range(1, len(lines)):
        line = lines[i]
        first = line[:1]
        if first == " " or first == "\t":
            if not headers:
                raise ParseError("continuation line before any header")
            h = headers[-1]
            h[2] = f"{h[2]} {line.strip(WSP)}".strip(WSP)
            h[3] = f"{h[3]}\r\n{line}"
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise ParseError("header line without ':'")
        key = cache.get(name)
        if key is None:
            name = name.rstrip(WSP)
            key = header_key(name)
        headers.append([key, name, value.strip(WSP), line])
    return headers


def _content_length(headers: list[Header]) -> int | None:
    found: str | None = None
    for h in headers:
        if h[0] == "content-length":
            if found is not None:
                raise FramingError("multiple Content-Length headers")
            found = h[2]
    if found is None:
        return None
    if not found or not only(found, DIGITS) or len(found) > 10:
        raise FramingError("malformed Content-Length header")
    value = int(found)
    if value > _MAX_CONTENT_LENGTH:
        raise FramingError("malformed Content-Length header")
    return value


def parse_message(data: bytes, datagram: bool = True) -> Request | Response:
    """Parse one complete message.

    With ``datagram`` (UDP) the body is framed by Content-Length and octets
    after it are ignored (§18.3); without Content-Length the body is the rest
    of the datagram. On a stream the caller has framed the message already.
    Raises ``ParseError`` (``FramingError``, ``VersionNotSupported``).
    """
    lines, body_start = _split_head(data)
    start = lines[0]
    headers = _parse_headers(lines)
    length = _content_length(headers)
    if length is None:
        body = data[body_start:]
    else:
        if body_start + length > len(data):
            raise FramingError("Content-Length larger than the message")
        body = data[body_start : body_start + length]
    if start[:4].upper() == "SIP/":
        message: Request | Response = _response(start, headers, body)
    else:
        message = _request(start, headers, body)
    message._raw_head = data[:body_start]
    return message


def _request(start: str, headers: list[Header], body: bytes) -> Request:
    parts = start.split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1] or not parts[2]:
        raise ParseError("malformed Request-Line")
    method, ruri, version = parts
    if method.strip(TOKEN_CHARS):
        raise ParseError("malformed method in Request-Line")
    _check_version(version, "Request-Line")
    return Request(method, ruri, headers, body)


def _response(start: str, headers: list[Header], body: bytes) -> Response:
    version, _, rest = start.partition(" ")
    _check_version(version, "Status-Line")
    code, _, reason = rest.partition(" ")
    if len(code) != 3 or not only(code, DIGITS) or not "100" <= code <= "699":
        raise ParseError("malformed status code")
    return Response(int(code), reason, headers, body)


_ERROR_COPY = frozenset(("via", "from", "to", "call-id", "cseq"))


def error_response(data: bytes, error: ParseError) -> bytes | None:
    """The wire bytes of a response to bad input ``data``, or None when none is possible.

    None for responses, for ACK (never answered), and for input without a
    request line or a Via to answer along. Header lines are copied as they
    came, except lines with NUL or a bare CR and lines without ':'; the
    reason phrase names the problem.
    """
    end = _head_end(data)[0]
    head = data if end < 0 else data[:end]
    text = head.decode("utf-8", "surrogateescape")
    lines = [line.rstrip("\r") for line in text.split("\n")]
    start = lines[0]
    if start[:4].upper() == "SIP/" or " " not in start:
        return None
    method = start.split(" ", 1)[0]
    if method.upper() == "ACK" or not method or method.strip(TOKEN_CHARS):
        return None
    copied: list[str] = []
    seen: set[str] = set()
    current: str | None = None
    for line in lines[1:]:
        folded = line[:1] in (" ", "\t")
        if "\x00" in line or "\r" in line:
            # Never echo octets a receiver could take for a line end or a terminator.
            if folded and current is not None:
                copied.pop()
            current = None
            continue
        if folded:
            if current is not None:
                copied[-1] = f"{copied[-1]}\r\n{line}"
            continue
        name, colon, _ = line.partition(":")
        try:
            key = header_key(name.rstrip(WSP))
        except ParseError:
            current = None
            continue
        if colon and key in _ERROR_COPY and (key == "via" or key not in seen):
            # Every Via; only the first From, To, Call-ID and CSeq (RFC 4475 multi01).
            copied.append(line)
            seen.add(key)
            current = key
        else:
            current = None
    if not any(header_key(c.partition(":")[0].rstrip(WSP)) == "via" for c in copied):
        return None
    reason = error.reason if error.what else reason_phrase(error.status)
    out = [f"SIP/2.0 {error.status} {reason}", *copied, "Content-Length: 0", "\r\n"]
    return "\r\n".join(out).encode("utf-8", "surrogateescape")
