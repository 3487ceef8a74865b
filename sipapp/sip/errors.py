"""The one exception family of the SIP message layer.

Every problem found in bytes that claim to be SIP raises a ``ParseError``
(or a subclass). Its ``status`` is the response code a server answers with
and its ``reason`` a reason phrase naming the problem, safe to put on the
wire. Nothing in ``sipapp.sip`` raises anything else for bad input.
"""

from __future__ import annotations

from sipapp.sip.status import reason_phrase

_MAX_REASON = 120


def _wire_safe(text: str) -> str:
    """Printable ASCII only, bounded: a reason phrase must never break framing."""
    cleaned = "".join(c if " " <= c <= "~" else "?" for c in text)
    return cleaned[:_MAX_REASON]


class ParseError(ValueError):
    """A message, header or URI that cannot be parsed or is not allowed.

    ``what`` is a short description ("malformed Via header"); ``status`` the
    response code (400 unless a subclass says otherwise).
    """

    status: int = 400

    def __init__(self, what: str, status: int | None = None) -> None:
        super().__init__(what)
        self.what = what
        if status is not None:
            self.status = status
        #: The message bytes when a framer knows them (lets a transport answer).
        self.data: bytes | None = None

    @property
    def reason(self) -> str:
        """The reason phrase for the error response, e.g. "Bad Request - malformed Via header"."""
        base = reason_phrase(self.status)
        if not self.what:
            return base
        return _wire_safe(f"{base} - {self.what}")


class FramingError(ParseError):
    """The message boundaries cannot be found (Content-Length missing, bad or conflicting)."""

    def __init__(self, what: str, status: int | None = None) -> None:
        super().__init__(what, status)
        #: Complete messages a framer cut from the same input before it failed:
        #: still to be handled, before the answer to the error.
        self.messages: list[bytes] = []


class MessageTooLarge(FramingError):
    """The message exceeds the configured maximum size (RFC 3261 §21.5.11, 513)."""

    status = 513


class VersionNotSupported(ParseError):
    """A well-formed SIP-Version other than SIP/2.0 (RFC 3261 §21.5.16, 505)."""

    status = 505
