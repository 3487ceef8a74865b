"""Tests for sipapp.sip.parser: start lines, header lines, body framing, error responses."""

from __future__ import annotations

import pytest

from sipapp.sip import (
    FramingError,
    MessageTooLarge,
    ParseError,
    Request,
    Response,
    VersionNotSupported,
    error_response,
    parse_message,
)
from sipapp.testing import SDP, build_request, build_response


def request_of(data: bytes) -> Request:
    """Parse ``data`` and insist on a request."""
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def response_of(data: bytes) -> Response:
    """Parse ``data`` and insist on a response."""
    message = parse_message(data)
    assert isinstance(message, Response)
    return message


def with_start(start: bytes, data: bytes | None = None) -> bytes:
    """``data`` (a built request) with its first line replaced."""
    data = build_request() if data is None else data
    return start + data[data.index(b"\r\n") :]


# -- start lines ---------------------------------------------------------------


def test_request_line() -> None:
    """Method, Request-URI text and parsed URI."""
    request = request_of(build_request("REGISTER", "sip:example.com"))
    assert request.method == "REGISTER"
    assert request.ruri == "sip:example.com"
    assert request.uri.scheme == "sip" and request.uri.host == "example.com"  # type: ignore[union-attr]


def test_request_uri_is_parsed_lazily() -> None:
    """A bad Request-URI fails on access, not on parse."""
    request = request_of(with_start(b"INVITE sip:user@host:99999 SIP/2.0"))
    assert request.ruri == "sip:user@host:99999"
    with pytest.raises(ParseError, match="Request-URI"):
        request.uri  # noqa: B018


def test_extension_method_kept_verbatim() -> None:
    """Any token is a method; '%' is not an escape there."""
    assert request_of(with_start(b"RE%47IST%45R sip:example.com SIP/2.0")).method == "RE%47IST%45R"


def test_version_is_case_insensitive() -> None:
    """``sip/2.0`` is SIP/2.0."""
    assert request_of(with_start(b"OPTIONS sip:example.com sip/2.0")).method == "OPTIONS"
    assert response_of(build_response().replace(b"SIP/2.0 200", b"sip/2.0 200", 1)).status == 200


@pytest.mark.parametrize(
    "start",
    [
        b"INVITE",
        b"INVITE sip:bob@example.com",
        b"INVITE  sip:bob@example.com SIP/2.0",
        b"INVITE sip:bob@example.com SIP/2.0 ",
        b" INVITE sip:bob@example.com SIP/2.0",
        b"INVITE sip:bob@example.com; lr SIP/2.0",
        b"INVITE\tsip:bob@example.com\tSIP/2.0",
        b"IN;VITE sip:bob@example.com SIP/2.0",
        b"INVITE sip:bob@example.com HTTP/1.1",
        b"INVITE sip:bob@example.com SIP/2",
        b"INVITE sip:bob@example.com SIP/x.y",
        b"",
    ],
)
def test_malformed_request_lines(start: bytes) -> None:
    """Wrong element counts, extra SP, bad methods and bad versions are 400s."""
    with pytest.raises(ParseError) as info:
        parse_message(with_start(start))
    assert info.value.status == 400


@pytest.mark.parametrize("version", [b"SIP/7.0", b"SIP/1.0", b"SIP/2.1", b"sip/3.0"])
def test_other_sip_versions_are_505(version: bytes) -> None:
    """A well-formed SIP version other than 2.0 is 505 (RFC 4475 badvers)."""
    with pytest.raises(VersionNotSupported) as info:
        parse_message(with_start(b"OPTIONS sip:example.com " + version))
    assert info.value.status == 505
    assert info.value.reason.startswith("Version Not Supported")


def test_response_versions_are_checked_too() -> None:
    """A response of another SIP version is refused."""
    with pytest.raises(VersionNotSupported):
        parse_message(build_response().replace(b"SIP/2.0 200", b"SIP/3.0 200", 1))


def test_status_line() -> None:
    """Status code and reason phrase, spaces inside the reason kept."""
    response = response_of(build_response(486, "Busy  Here now"))
    assert (response.status, response.reason) == (486, "Busy  Here now")


def test_empty_and_missing_reason_phrase() -> None:
    """``SIP/2.0 100 `` has an empty reason; a missing SP is tolerated too."""
    assert response_of(build_response(100, "")).reason == ""
    data = build_response(100).replace(b"SIP/2.0 100 Trying", b"SIP/2.0 100", 1)
    assert response_of(data).reason == ""


def test_utf8_reason_phrase() -> None:
    """A UTF-8 reason phrase is decoded and re-emitted unchanged."""
    data = build_response(200, "\u043f\u0440\u043e\u0441\u0442\u043e\u0435")
    response = response_of(data)
    assert response.reason == "\u043f\u0440\u043e\u0441\u0442\u043e\u0435"
    response.set("Subject", "x")
    assert "\u043f\u0440\u043e\u0441\u0442\u043e\u0435".encode() in response.to_bytes()


@pytest.mark.parametrize(
    "start",
    [
        b"SIP/2.0 99 Low",
        b"SIP/2.0 700 High",
        b"SIP/2.0 4294967301 Big",
        b"SIP/2.0 2x0 X",
        b"SIP/2.0",
    ],
)
def test_bad_status_codes(start: bytes) -> None:
    """Codes must be three digits 100..699."""
    with pytest.raises(ParseError):
        parse_message(with_start(start, build_response()))


# -- header lines ----------------------------------------------------------------


def test_folded_headers_are_unfolded() -> None:
    """Continuation lines (SP or HT) join the header above with one space."""
    request = request_of(build_request().replace(b"Max-Forwards: 70", b"Max-Forwards:\r\n \t 70"))
    assert request.max_forwards == 70


def test_lws_before_colon_in_header_names() -> None:
    """``Via  :`` is the Via header; re-rendering drops the spaces in the name."""
    data = build_request().replace(b"Via:", b"Via  \t:")
    request = request_of(data)
    assert request.top_via.host == "127.0.0.1"
    request.set("Subject", "x")
    assert request.to_bytes().count(b"Via  \t:") == 1


def test_header_without_colon_is_400() -> None:
    """A header line without ':' is malformed."""
    with pytest.raises(ParseError, match="':'"):
        parse_message(build_request().replace(b"Max-Forwards: 70", b"Foobar roobar"))


def test_continuation_before_any_header_is_400() -> None:
    """The first header line cannot be a continuation."""
    data = with_start(b"OPTIONS sip:example.com SIP/2.0\r\n folded")
    with pytest.raises(ParseError):
        parse_message(data)


def test_bad_header_name_is_400() -> None:
    """A header name that is not a token is malformed."""
    with pytest.raises(ParseError, match="header name"):
        parse_message(build_request().replace(b"Max-Forwards:", b"Max Forwards:"))


def test_lf_only_line_ends_are_tolerated() -> None:
    """A message with bare LF line ends parses, body included."""
    data = build_request(body=b"v=0\r\n").replace(b"\r\n", b"\n")
    request = request_of(data.replace(b"Content-Length: 5", b"Content-Length: 4"))
    assert request.max_forwards == 70
    assert request.body == b"v=0\n"
    assert request.to_bytes() == data.replace(b"Content-Length: 5", b"Content-Length: 4")


def test_lf_only_message_with_crlf_crlf_in_its_body() -> None:
    """The first empty line ends the head even when the body holds CRLF CRLF."""
    head = b"OPTIONS sip:example.com SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\n"
    request = request_of(head + b"Content-Length: 6\n\nab\r\n\r\n")
    assert request.body == b"ab\r\n\r\n"
    assert request.top_via.branch == "z9hG4bK1"


def test_unterminated_header_section_is_a_framing_error() -> None:
    """Without an empty line the message cannot be framed."""
    with pytest.raises(FramingError):
        parse_message(build_request()[:-4])


# -- datagram body framing ----------------------------------------------------------


def test_body_is_framed_by_content_length() -> None:
    """The body is exactly Content-Length octets."""
    assert request_of(build_request(body=SDP)).body == SDP


def test_trailing_octets_after_the_body_are_ignored() -> None:
    """In a datagram, octets past Content-Length are dropped (§18.3) and not re-emitted."""
    data = build_request(body=SDP)
    request = request_of(data + b"garbage\r\nINVITE sip:x SIP/2.0\r\n\r\n")
    assert request.body == SDP
    assert request.to_bytes() == data


def test_missing_content_length_means_rest_of_datagram() -> None:
    """Without Content-Length a datagram's body is everything after the head."""
    data = build_request(content_length=None, content_type="application/sdp") + SDP
    request = request_of(data)
    assert request.body == SDP
    assert not request.has("content-length")


def test_content_length_larger_than_datagram_is_a_framing_error() -> None:
    """A Content-Length pointing past the datagram is 400."""
    with pytest.raises(FramingError) as info:
        parse_message(build_request(body=SDP)[:-1])
    assert info.value.status == 400


@pytest.mark.parametrize("value", [b"-999", b"five", b"", b"1 2", b"99999999999", b"+3"])
def test_bad_content_length_is_a_framing_error(value: bytes) -> None:
    """A Content-Length that is no number is a framing error (RFC 4475 ncl)."""
    with pytest.raises(FramingError, match="Content-Length"):
        parse_message(build_request().replace(b"Content-Length: 0", b"Content-Length: " + value))


def test_duplicate_content_length_is_a_framing_error() -> None:
    """Two Content-Length headers conflict (RFC 4475 mcl01)."""
    data = build_request(body=SDP, headers=[("l", "5")])
    with pytest.raises(FramingError, match="multiple Content-Length"):
        parse_message(data)


def test_compact_content_length() -> None:
    """``l:`` frames the body like Content-Length."""
    data = build_request(body=b"abc", content_length=None, headers=[("l", "2")])
    assert request_of(data).body == b"ab"


def test_stream_parse_takes_the_framed_message() -> None:
    """``datagram=False`` parses a message a framer cut out."""
    data = build_request(body=SDP)
    assert request_of(data).body == parse_message(data, datagram=False).body


# -- error_response -------------------------------------------------------------------


def test_error_response_is_a_400_naming_the_problem() -> None:
    """The answer copies Via/From/To/Call-ID/CSeq and its reason names the error."""
    data = build_request(max_forwards="300", route="<sip:p.example.com;lr>")
    request = request_of(data)
    with pytest.raises(ParseError) as info:
        request.max_forwards  # noqa: B018
    answer = error_response(data, info.value)
    assert answer is not None
    response = response_of(answer)
    assert response.status == 400
    assert response.reason == "Bad Request - malformed Max-Forwards header"
    assert response.get_all("via") == request.get_all("via")
    for name in ("from", "to", "call-id", "cseq"):
        assert response.get(name) == request.get(name)
    assert not response.has("route") and not response.has("max-forwards")
    assert response.body == b"" and response.get("content-length") == "0"


def test_error_response_keeps_the_505_status() -> None:
    """A version error is answered with 505."""
    data = with_start(b"OPTIONS sip:example.com SIP/7.0")
    with pytest.raises(ParseError) as info:
        parse_message(data)
    answer = error_response(data, info.value)
    assert answer is not None and response_of(answer).status == 505


def test_error_response_to_an_unframed_request() -> None:
    """An unterminated request is still answered from the lines it has."""
    data = build_request()[:-4]
    with pytest.raises(ParseError) as info:
        parse_message(data)
    answer = error_response(data, info.value)
    assert answer is not None
    assert response_of(answer).reason == "Bad Request - header section not terminated"


def test_error_response_to_an_lf_only_request() -> None:
    """Bad LF-only input is answered in CRLF."""
    data = build_request(max_forwards="x").replace(b"\r\n", b"\n")
    answer = error_response(data, ParseError("malformed Max-Forwards header"))
    assert answer is not None
    assert response_of(answer).top_via.branch == request_of(data).top_via.branch


def test_error_response_copies_folded_lines() -> None:
    """A folded Via is copied with its continuation."""
    data = build_request().replace(b"Via: SIP/2.0/UDP", b"Via: SIP/2.0/UDP\r\n ")
    answer = error_response(data, ParseError("x"))
    assert answer is not None
    assert response_of(answer).top_via.host == "127.0.0.1"


def test_error_response_is_none_for_responses() -> None:
    """A bad response is never answered."""
    assert error_response(build_response(), ParseError("x")) is None


def test_error_response_is_none_for_ack() -> None:
    """ACK is never answered (§17.2.1)."""
    assert error_response(build_request("ACK"), ParseError("x")) is None
    assert error_response(build_request("ack"), ParseError("x")) is None


def test_error_response_is_none_without_via() -> None:
    """Without a Via there is nowhere to send the answer."""
    assert error_response(build_request(via=None), ParseError("x")) is None


@pytest.mark.parametrize(
    "data", [b"", b"garbage", b"\r\n\r\n", b"\x00\x01\x02", b"IN;VITE x SIP/2.0\r\n\r\n"]
)
def test_error_response_is_none_without_a_request_line(data: bytes) -> None:
    """Input that is not even a request line is dropped."""
    assert error_response(data, ParseError("x")) is None


def test_error_response_skips_lines_without_colon() -> None:
    """A truncated header line (no ':') is not copied into the answer."""
    data = build_request().replace(b"Call-ID: ", b"Call-ID\r\nX: ")
    answer = error_response(data, ParseError("header line without ':'"))
    assert answer is not None
    response = response_of(answer)
    assert not response.has("call-id")


@pytest.mark.parametrize("bad", [b"\x00", b"\r"])
def test_error_response_never_echoes_nul_or_bare_cr(bad: bytes) -> None:
    """Lines holding NUL or a bare CR are not copied."""
    data = build_request().replace(b"From: Alice", b"From: Al" + bad + b"ice")
    answer = error_response(data, ParseError("x"))
    assert answer is not None
    assert bad not in answer.replace(b"\r\n", b"")
    assert not response_of(answer).has("from")


@pytest.mark.parametrize(
    "what", ["line\r\nInjected: yes", "nul\x00here", "tab\there", "caf\u00e9", "x" * 500]
)
def test_error_response_reason_is_one_safe_line(what: str) -> None:
    """The reason phrase never carries CR, LF or controls, and is bounded."""
    answer = error_response(build_request(), ParseError(what))
    assert answer is not None
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"SIP/2.0 400 Bad Request - ")
    assert all(32 <= octet < 127 for octet in status_line)
    assert len(status_line) < 200
    assert not response_of(answer).has("injected")


def test_error_response_without_description_uses_the_standard_phrase() -> None:
    """An error with no text gives the bare reason phrase."""
    answer = error_response(build_request(), ParseError(""))
    assert answer is not None and answer.startswith(b"SIP/2.0 400 Bad Request\r\n")


def test_error_response_for_too_large() -> None:
    """MessageTooLarge is answered with 513."""
    answer = error_response(build_request(), MessageTooLarge("message too large"))
    assert answer is not None and response_of(answer).status == 513


def test_error_response_copies_single_headers_once() -> None:
    """Only the first From, To, Call-ID and CSeq are copied; every Via is."""
    data = build_request(
        via=[
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa",
            "SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKb",
        ],
        headers=[("To", "<sip:other@example.com>"), ("CSeq", "9 INVITE"), ("i", "x@127.0.0.1")],
    )
    answer = error_response(data, ParseError("multiple To headers"))
    assert answer is not None
    response = response_of(answer)
    assert len(response.via) == 2
    for name in ("to", "cseq", "call-id", "from"):
        assert response.count(name) == 1
    assert response.to.uri.render() == "sip:bob@example.com"


def test_error_response_without_a_usable_via_line() -> None:
    """A Via whose only line carries a NUL in its continuation leaves nothing to answer along."""
    data = build_request().replace(
        b"Via: SIP/2.0/UDP 127.0.0.1:5060;", b"Via: SIP/2.0/UDP 127.0.0.1:5060\r\n ;x=\x00;"
    )
    assert error_response(data, ParseError("x")) is None
