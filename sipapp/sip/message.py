"""SIP messages: cheap mutable containers with lazily parsed headers (RFC 3261 §7).

A message keeps its header fields as parsed from the wire: each entry is
``[key, name, value, raw]`` where ``key`` is the lower-case full name,
``value`` the unfolded value and ``raw`` the original line(s), or None once
changed. Structured views (``top_via``, ``cseq``, ``from_``...) are parsed on
first access and cached until the header changes. A message nobody changed
re-emits the bytes it came from; a changed one re-renders only what changed
and always carries a correct Content-Length.
"""

from __future__ import annotations

from typing import Any

import attrs

from sipapp.sip.address import STAR, NameAddr, parse_name_addr
from sipapp.sip.errors import ParseError
from sipapp.sip.grammar import DIGITS, WSP, is_token, only, split_quoted
from sipapp.sip.headers import _KEY_CACHE, canonical_name, header_key
from sipapp.sip.status import reason_phrase
from sipapp.sip.uri import Uri, parse_uri
from sipapp.sip.via import Via, parse_via

Header = list[Any]  # [key: str, name: str, value: str, raw: str | None]

_CRLF = "\r\n"


def _key(name: str) -> str:
    return _KEY_CACHE.get(name) or header_key(name)


@attrs.frozen
class CSeq:
    """The CSeq header: sequence number and method (§20.16)."""

    number: int
    method: str

    def render(self) -> str:
        """Header value text."""
        return f"{self.number} {self.method}"


def parse_cseq(value: str) -> CSeq:
    """Parse ``number method``; the number must fit 32 bits unsigned (§8.1.1.5)."""
    parts = value.split()
    if len(parts) != 2 or not only(parts[0], DIGITS) or not is_token(parts[1]):
        raise ParseError("malformed CSeq header")
    if len(parts[0]) > 10 or int(parts[0]) > 0xFFFFFFFF:
        raise ParseError("CSeq number out of range")
    return CSeq(int(parts[0]), parts[1])


def parse_uint(value: str, what: str, limit: int) -> int:
    """A decimal number 0..limit (Max-Forwards, Expires, Content-Length)."""
    value = value.strip(WSP)
    if not value or not only(value, DIGITS) or len(value) > 10 or int(value) > limit:
        raise ParseError(f"malformed {what} header")
    return int(value)


class Message:
    """What requests and responses share: headers and body."""

    __slots__ = ("_body", "_cache", "_raw_head", "headers")

    def __init__(self, headers: list[Header] | None = None, body: bytes = b"") -> None:
        self.headers: list[Header] = headers if headers is not None else []
        self._body = body
        self._cache: dict[str, Any] = {}
        self._raw_head: bytes | None = None

    def _copy_into(self, other: Message) -> None:
        # Header entries are replaced, never changed in place, once parsed:
        # a shallow copy of the list is a deep enough copy.
        other.headers = list(self.headers)
        other._body = self._body
        other._cache = dict(self._cache)
        other._raw_head = self._raw_head

    # -- raw header access -------------------------------------------------

    @property
    def body(self) -> bytes:
        """The message body, framed by Content-Length."""
        return self._body

    @body.setter
    def body(self, value: bytes) -> None:
        self._body = value
        self._raw_head = None

    def get(self, name: str) -> str | None:
        """The first field value of header ``name`` (compact forms accepted), or None."""
        key = _key(name)
        for h in self.headers:
            if h[0] == key:
                return h[2]  # type: ignore[no-any-return]
        return None

    def get_all(self, name: str) -> list[str]:
        """Every field value of header ``name``, one per header line."""
        key = _key(name)
        return [h[2] for h in self.headers if h[0] == key]

    def values(self, name: str) -> list[str]:
        """Every comma-separated value of list header ``name`` across its lines."""
        out: list[str] = []
        for value in self.get_all(name):
            try:
                items = split_quoted(value, ",")
            except ParseError as e:
                raise ParseError(f"{e.what} in {canonical_name(_key(name))} header") from None
            for item in items:
                item = item.strip(WSP)
                if not item:
                    raise ParseError(f"empty value in {canonical_name(_key(name))} header")
                out.append(item)
        return out

    def has(self, name: str) -> bool:
        """True when header ``name`` is present."""
        key = _key(name)
        return any(h[0] == key for h in self.headers)

    def count(self, name: str) -> int:
        """How many header lines named ``name`` there are."""
        key = _key(name)
        return sum(1 for h in self.headers if h[0] == key)

    def _changed(self, key: str) -> None:
        self._raw_head = None
        cache = self._cache
        if cache:
            cache.pop(key, None)
            if key == "via":
                cache.pop("top_via", None)

    def set(self, name: str, value: str) -> None:
        """Replace every line of header ``name`` by one line with ``value``."""
        key = _key(name)
        headers = self.headers
        for i, h in enumerate(headers):
            if h[0] == key:
                headers[i] = [key, name, value, None]
                self.headers = [x for j, x in enumerate(headers) if j <= i or x[0] != key]
                break
        else:
            headers.append([key, name, value, None])
        self._changed(key)

    def add(self, name: str, value: str, top: bool = False) -> None:
        """Add a line for header ``name``; ``top`` puts it before the first line of that name."""
        key = _key(name)
        entry = [key, name, value, None]
        headers = self.headers
        if top:
            for i, h in enumerate(headers):
                if h[0] == key:
                    headers.insert(i, entry)
                    break
            else:
                headers.insert(0, entry)
        else:
            headers.append(entry)
        self._changed(key)

    def remove(self, name: str) -> None:
        """Remove every line of header ``name``."""
        key = _key(name)
        self.headers = [h for h in self.headers if h[0] != key]
        self._changed(key)

    def remove_first(self, name: str) -> None:
        """Drop the first comma-separated value of list header ``name`` (a Route)."""
        self._remove_first_value(_key(name))

    def remove_last(self, name: str) -> None:
        """Drop the last comma-separated value of list header ``name`` (§16.4 strict routing)."""
        key = _key(name)
        headers = self.headers
        for i in range(len(headers) - 1, -1, -1):
            h = headers[i]
            if h[0] == key:
                parts = split_quoted(h[2], ",")
                if len(parts) > 1:
                    headers[i] = [key, h[1], ",".join(parts[:-1]).strip(WSP), None]
                else:
                    del headers[i]
                self._changed(key)
                return

    def _remove_first_value(self, key: str) -> None:
        """Drop the first comma-separated value of header ``key`` (Via, Route)."""
        headers = self.headers
        for i, h in enumerate(headers):
            if h[0] == key:
                parts = split_quoted(h[2], ",")
                if len(parts) > 1:
                    headers[i] = [key, h[1], ",".join(parts[1:]).strip(WSP), None]
                else:
                    del headers[i]
                self._changed(key)
                return

    # -- structured views ----------------------------------------------------

    def _parsed(self, key: str, parse: Any, what: str, *, required: bool = True) -> Any:
        cache = self._cache
        if key in cache:
            return cache[key]
        value = self.get(key)
        if value is None:
            if required:
                raise ParseError(f"missing {what} header")
            result = None
        else:
            result = parse(value)
        cache[key] = result
        return result

    @property
    def via(self) -> list[Via]:
        """Every Via value, top first."""
        cache = self._cache
        if "via" not in cache:
            cache["via"] = [parse_via(v) for v in self.values("via")]
        return cache["via"]  # type: ignore[no-any-return]

    @property
    def top_via(self) -> Via:
        """The topmost Via value; ``ParseError`` when there is none or it is malformed."""
        cache = self._cache
        via = cache.get("top_via")
        if via is None:
            value = self.get("via")
            if value is None:
                raise ParseError("missing Via header")
            first = split_quoted(value, ",", "Via header")[0] if "," in value else value
            via = cache["top_via"] = parse_via(first)
        return via

    def set_top_via(self, via: Via) -> None:
        """Replace the topmost Via value (e.g. to add ``received``)."""
        headers = self.headers
        for i, h in enumerate(headers):
            if h[0] == "via":
                value = h[2]
                rest = ""
                if "," in value:
                    parts = split_quoted(value, ",")
                    if len(parts) > 1:
                        rest = "," + ",".join(parts[1:])
                headers[i] = ["via", h[1], via.render() + rest, None]
                self._changed("via")
                self._cache["top_via"] = via
                return
        raise ParseError("missing Via header")

    def push_via(self, via: Via) -> None:
        """Put a new topmost Via (a proxy forwarding a request, §16.6 step 8)."""
        self.add("Via", via.render(), top=True)
        self._cache["top_via"] = via

    def pop_via(self) -> Via:
        """Remove and return the topmost Via (a proxy forwarding a response, §16.7 step 3)."""
        via = self.top_via
        self._remove_first_value("via")
        return via

    @property
    def call_id(self) -> str:
        """The Call-ID."""
        return self._parsed("call-id", _parse_call_id, "Call-ID")  # type: ignore[no-any-return]

    @property
    def cseq(self) -> CSeq:
        """The CSeq header."""
        return self._parsed("cseq", parse_cseq, "CSeq")  # type: ignore[no-any-return]

    @property
    def from_(self) -> NameAddr:
        """The From header."""
        return self._parsed("from", _parse_from, "From")  # type: ignore[no-any-return]

    @property
    def to(self) -> NameAddr:
        """The To header."""
        return self._parsed("to", _parse_to, "To")  # type: ignore[no-any-return]

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards (0..255), or None when absent."""
        return self._parsed(  # type: ignore[no-any-return]
            "max-forwards", _parse_max_forwards, "Max-Forwards", required=False
        )

    @property
    def expires(self) -> int | None:
        """The Expires header in seconds, or None when absent.

        A value beyond 2**32-1 counts as 2**32-1; non-digits raise ``ParseError``.
        """
        return self._parsed(  # type: ignore[no-any-return]
            "expires", _parse_expires, "Expires", required=False
        )

    @property
    def contacts(self) -> list[NameAddr] | str:
        """The Contact values, or ``STAR`` for ``Contact: *``."""
        cache = self._cache
        if "contact" not in cache:
            values = self.values("contact")
            if len(values) == 1 and values[0] == STAR:
                cache["contact"] = STAR
            else:
                cache["contact"] = [parse_name_addr(v, "Contact") for v in values]
        return cache["contact"]  # type: ignore[no-any-return]

    def _name_addrs(self, key: str, what: str) -> list[NameAddr]:
        cache = self._cache
        if key not in cache:
            cache[key] = [parse_name_addr(v, what) for v in self.values(key)]
        return cache[key]  # type: ignore[no-any-return]

    @property
    def routes(self) -> list[NameAddr]:
        """The Route values, top first."""
        return self._name_addrs("route", "Route")

    @property
    def record_routes(self) -> list[NameAddr]:
        """The Record-Route values, top first."""
        return self._name_addrs("record-route", "Record-Route")

    # -- serialisation ---------------------------------------------------------

    def start_line(self) -> str:
        """The request or status line."""
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """The message on the wire: as received when unchanged, else re-rendered."""
        raw = self._raw_head
        if raw is not None:
            return raw + self._body
        body = self._body
        length = str(len(body))
        lines = [self.start_line()]
        have_length = False
        for key, name, value, line in self.headers:
            if key == "content-length":
                if have_length:
                    continue
                have_length = True
                if line is None or value != length:
                    line = f"Content-Length: {length}"
            elif line is None:
                line = f"{name}: {value}"
            lines.append(line)
        if not have_length:
            lines.append(f"Content-Length: {length}")
        lines.append("\r\n")
        head = self._raw_head = "\r\n".join(lines).encode("utf-8", "surrogateescape")
        return head + body

    def __bytes__(self) -> bytes:
        return self.to_bytes()


def _parse_call_id(value: str) -> str:
    value = value.strip(WSP)
    if not value or " " in value or "\t" in value:
        raise ParseError("malformed Call-ID header")
    return value


def _parse_from(value: str) -> NameAddr:
    return parse_name_addr(value, "From")


def _parse_to(value: str) -> NameAddr:
    return parse_name_addr(value, "To")


def _parse_expires(value: str) -> int:
    value = value.strip(WSP)
    if not value or not only(value, DIGITS):
        raise ParseError("malformed Expires header")
    return min(int(value[:11]), 0xFFFFFFFF)


def _parse_max_forwards(value: str) -> int:
    return parse_uint(value, "Max-Forwards", 255)


class Request(Message):
    """A SIP request: method, Request-URI, headers, body."""

    __slots__ = ("_method", "_ruri", "_uri")

    def __init__(
        self,
        method: str,
        ruri: str,
        headers: list[Header] | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(headers, body)
        self._method = method
        self._ruri = ruri
        self._uri: Uri | None = None

    @property
    def method(self) -> str:
        """The method of the Request-Line, verbatim (``RE%47IST%45R`` is not REGISTER)."""
        return self._method

    @method.setter
    def method(self, value: str) -> None:
        self._method = value
        self._raw_head = None

    @property
    def ruri(self) -> str:
        """The Request-URI as text."""
        return self._ruri

    @property
    def uri(self) -> Uri:
        """The parsed Request-URI (``ParseError`` when malformed)."""
        uri = self._uri
        if uri is None:
            uri = self._uri = parse_uri(self._ruri, "Request-URI")
        return uri

    @uri.setter
    def uri(self, value: Uri) -> None:
        self._uri = value
        self._ruri = value.render()
        self._raw_head = None

    def copy(self) -> Request:
        """An independent copy to change and forward (§16.6 step 1)."""
        other = Request(self.method, self._ruri)
        self._copy_into(other)
        other._uri = self._uri
        return other

    def start_line(self) -> str:
        """``METHOD uri SIP/2.0``."""
        return f"{self._method} {self._ruri} SIP/2.0"

    def __repr__(self) -> str:
        return f"<Request {self._method} {self._ruri}>"


class Response(Message):
    """A SIP response: status code, reason phrase, headers, body."""

    __slots__ = ("_reason", "_status")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: list[Header] | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(headers, body)
        self._status = status
        self._reason = reason_phrase(status) if reason is None else reason

    @property
    def status(self) -> int:
        """The status code."""
        return self._status

    @status.setter
    def status(self, value: int) -> None:
        self._status = value
        self._raw_head = None

    @property
    def reason(self) -> str:
        """The reason phrase (may be empty)."""
        return self._reason

    @reason.setter
    def reason(self, value: str) -> None:
        self._reason = value
        self._raw_head = None

    def copy(self) -> Response:
        """An independent copy to change and forward."""
        other = Response(self.status, self.reason)
        self._copy_into(other)
        return other

    def start_line(self) -> str:
        """``SIP/2.0 code reason``."""
        return f"SIP/2.0 {self._status} {self._reason}"

    def __repr__(self) -> str:
        return f"<Response {self._status} {self._reason}>"


_RESPONSE_COPY = ("via", "from", "to", "call-id", "cseq")


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
) -> Response:
    """A response to ``request`` built per §8.2.6: Via, From, To, Call-ID, CSeq copied.

    ``to_tag`` is added to To when it has none (not for 100 Trying, §8.2.6.2).
    """
    headers: list[Header] = []
    add_tag = bool(to_tag) and status != 100 and request.to.tag is None
    for h in request.headers:
        key = h[0]
        if key in _RESPONSE_COPY or (status == 100 and key == "timestamp"):
            if key == "to" and add_tag:
                headers.append([key, h[1], f"{h[2]};tag={to_tag}", None])
            else:
                headers.append(list(h))
    return Response(status, reason, headers)
