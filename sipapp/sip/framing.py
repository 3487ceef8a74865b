"""Finding message boundaries in a TCP / TLS byte stream (RFC 3261 §18.3, RFC 5626 §3.5.1).

A stream carries messages framed by Content-Length, CRLF keep-alives
between them, and the double-CRLF "ping" that a client uses to keep a flow
alive, which the server answers with a single CRLF "pong".
"""

from __future__ import annotations

from sipapp.sip.errors import FramingError, MessageTooLarge
from sipapp.sip.grammar import DIGITS, only

#: ``feed`` returns this item when a keep-alive ping (CRLF CRLF) arrived.
PING = b""

_CL_NAMES = (b"content-length", b"l")


def _stream_content_length(head: bytes) -> int:
    found: bytes | None = None
    in_length = False
    for line in head.split(b"\r\n")[1:]:
        if line[:1] in (b" ", b"\t"):
            # A folded line continues the header above (as the parser reads it):
            # never a Content-Length of its own.
            if in_length and found is not None:
                found = found + b" " + line.strip()
            continue
        name, colon, value = line.partition(b":")
        in_length = bool(colon) and name.rstrip(b" \t").lower() in _CL_NAMES
        if in_length:
            if found is not None:
                raise FramingError("multiple Content-Length headers")
            found = value.strip()
    if found is None:
        raise FramingError("missing Content-Length header")
    text = found.strip().decode("ascii", "replace")
    if not text or not only(text, DIGITS) or len(text) > 10:
        raise FramingError("malformed Content-Length header")
    return int(text)


class StreamFramer:
    """Cuts a byte stream into complete messages.

    ``feed`` returns the complete messages found so far (``PING`` for a
    keep-alive ping) and keeps the rest. It raises ``FramingError`` when
    the stream cannot be framed any more (bad Content-Length) and
    ``MessageTooLarge`` when a message would exceed ``max_size``; either
    error's ``data`` holds the header section when known, so the caller can
    answer before closing the connection, and its ``messages`` the complete
    messages cut from the same input before the failure.
    """

    def __init__(self, max_size: int = 65536) -> None:
        self.max_size = max_size
        self._buffer = b""

    @property
    def pending(self) -> bytes:
        """Bytes received but not yet part of a complete message."""
        return self._buffer

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the complete messages (and pings) now available."""
        buf = self._buffer + data if self._buffer else data
        out: list[bytes] = []
        while buf:
            if buf[:2] == b"\r\n":
                if buf[:4] == b"\r\n\r\n":
                    out.append(PING)
                    buf = buf[4:]
                    continue
                if len(buf) < 4 and b"\r\n\r\n".startswith(buf):
                    break  # maybe the start of a ping: wait for more
                buf = buf[2:]  # a single CRLF (pong or keep-alive): ignore
                continue
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > self.max_size:
                    raise self._fail(MessageTooLarge("message too large"), None, out)
                break
            head = buf[: end + 4]
            try:
                length = _stream_content_length(buf[:end])
            except FramingError as e:
                raise self._fail(e, head, out) from None
            total = end + 4 + length
            if total > self.max_size:
                raise self._fail(MessageTooLarge("message too large"), head, out)
            if len(buf) < total:
                break
            out.append(buf[:total])
            buf = buf[total:]
        self._buffer = buf
        return out

    def _fail(self, error: FramingError, head: bytes | None, out: list[bytes]) -> FramingError:
        """Reset the stream and hand the caller what it needs to answer."""
        self._buffer = b""
        if head is not None:
            error.data = head
        error.messages = out
        return error
