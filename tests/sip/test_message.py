"""Tests for sipapp.sip.message: header access, lazy views, Via stack edits, serialisation."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sipapp.sip import (
    CSeq,
    ParseError,
    Request,
    Response,
    SipUri,
    Via,
    make_response,
    parse_cseq,
    parse_message,
    parse_uri,
)
from sipapp.testing import (
    CALL_ID,
    FROM_TAG,
    SDP,
    build_request,
    build_response,
    parsed_request,
    parsed_response,
)

VIA_A = "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa"
VIA_B = "SIP/2.0/TCP 127.0.0.1:5061;branch=z9hG4bKb"
VIA_C = "SIP/2.0/UDP [::1]:5062;branch=z9hG4bKc"
NEW_VIA = Via("UDP", "127.0.0.1", 5070, (("branch", "z9hG4bKnew"), ("rport", None)))


def reparse(message: Request | Response) -> Request | Response:
    """What the next hop sees."""
    return parse_message(message.to_bytes())


def head_lines(data: bytes) -> list[bytes]:
    """The header lines of wire bytes (start line first)."""
    return data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


# -- header access --------------------------------------------------------------


def test_get_is_case_insensitive_and_knows_compact_forms() -> None:
    """``v``, ``VIA`` and ``Via`` name the same header; so do ``i`` and ``call-id``."""
    request = parse_message(
        b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
        b"v: " + VIA_A.encode() + b"\r\n"
        b"i: abc@127.0.0.1\r\n"
        b"f: <sip:alice@example.com>;tag=1\r\n"
        b"t: <sip:bob@example.com>\r\n"
        b"CSEQ: 1 OPTIONS\r\n"
        b"l: 0\r\n\r\n"
    )
    assert request.get("Via") == request.get("VIA") == request.get("v") == VIA_A
    assert request.get("Call-ID") == request.get("call-id") == "abc@127.0.0.1"
    assert request.call_id == "abc@127.0.0.1"
    assert request.from_.tag == "1"
    assert request.cseq == CSeq(1, "OPTIONS")
    assert request.get("content-length") == "0"


def test_get_all_values_has_and_count() -> None:
    """Lines and comma-separated values are both reachable."""
    request = parsed_request(via=[f"{VIA_A}, {VIA_B}", VIA_C])
    assert request.get("via") == f"{VIA_A}, {VIA_B}"
    assert request.get_all("v") == [f"{VIA_A}, {VIA_B}", VIA_C]
    assert request.values("via") == [VIA_A, VIA_B, VIA_C]
    assert request.count("via") == 2
    assert request.has("Via") and not request.has("Route")
    assert request.get("Route") is None and request.get_all("Route") == []


def test_values_reject_empty_items() -> None:
    """An empty element of a list header is a ParseError naming the header."""
    request = parsed_request(route="<sip:a@127.0.0.1;lr>,,<sip:b@127.0.0.1;lr>")
    with pytest.raises(ParseError, match="Route"):
        request.values("route")


def test_unfolded_value_and_trimmed_whitespace() -> None:
    """Folded lines join with one space; surrounding LWS is dropped."""
    request = parse_message(
        build_request().replace(b"Call-ID: ", b"Subject:   hello\r\n \t world  \r\nCall-ID: ")
    )
    assert request.get("subject") == "hello world"


def test_bad_header_name_in_lookup_raises_parse_error() -> None:
    """A lookup by a name that is no token is a ParseError, not a KeyError."""
    with pytest.raises(ParseError):
        parsed_request().get("bad name")


# -- lazy views and their cache ---------------------------------------------------


def test_views_are_cached() -> None:
    """A structured view is parsed once and then reused."""
    request = parsed_request()
    assert request.from_ is request.from_
    assert request.top_via is request.top_via
    assert request.cseq is request.cseq


def test_set_invalidates_the_cached_view() -> None:
    """After ``set`` the view shows the new value."""
    request = parsed_request()
    assert request.max_forwards == 70
    request.set("Max-Forwards", "69")
    assert request.max_forwards == 69
    assert request.to.tag is None
    request.set("t", "<sip:bob@example.com>;tag=xyz")
    assert request.to.tag == "xyz"
    assert request.cseq.number == 1
    request.set("CSeq", "2 INVITE")
    assert request.cseq.number == 2


def test_add_invalidates_the_cached_view() -> None:
    """After ``add`` the lists include the new value, top or bottom."""
    request = parsed_request(route="<sip:p1.example.com;lr>")
    assert len(request.routes) == 1
    request.add("Route", "<sip:p0.example.com;lr>", top=True)
    request.add("Route", "<sip:p2.example.com;lr>")
    assert [r.uri.host for r in request.routes if isinstance(r.uri, SipUri)] == [
        "p0.example.com",
        "p1.example.com",
        "p2.example.com",
    ]


def test_remove_invalidates_the_cached_view() -> None:
    """After ``remove`` a required view raises and an optional one is None."""
    request = parsed_request()
    assert request.max_forwards == 70 and request.call_id == CALL_ID
    request.remove("Max-Forwards")
    request.remove("i")
    assert request.max_forwards is None
    with pytest.raises(ParseError, match="Call-ID"):
        request.call_id  # noqa: B018


def test_add_top_without_existing_header_goes_first() -> None:
    """``add(top=True)`` of a new header puts it before all others."""
    request = parsed_request()
    request.add("Route", "<sip:p.example.com;lr>", top=True)
    assert head_lines(request.to_bytes())[1] == b"Route: <sip:p.example.com;lr>"


def test_set_replaces_every_line_at_the_first_position() -> None:
    """``set`` keeps one line where the first was and drops the others."""
    request = parsed_request(via=[VIA_A, VIA_B])
    request.set("Via", VIA_C)
    assert request.get_all("via") == [VIA_C]
    assert head_lines(request.to_bytes())[1] == f"Via: {VIA_C}".encode()


def test_set_of_a_new_header_appends_it() -> None:
    """``set`` of an absent header adds it."""
    request = parsed_request()
    request.set("X-Extra", "1")
    assert reparse(request).get("x-extra") == "1"


def test_contacts_and_routes_views_follow_changes() -> None:
    """Contact and Route caches are dropped when those headers change."""
    request = parsed_request(route="<sip:p1.example.com;lr>")
    contacts = request.contacts
    assert isinstance(contacts, list) and len(contacts) == 1
    assert len(request.routes) == 1
    request.add("Contact", "<sip:alice@127.0.0.1:5070>")
    request.remove("Route")
    contacts = request.contacts
    assert isinstance(contacts, list) and len(contacts) == 2
    assert request.routes == []


def test_missing_required_headers_raise_parse_error() -> None:
    """Views of required headers raise ParseError naming the header."""
    request = parsed_request(via=None, from_=None, to=None, call_id=None, cseq=None)
    views: list[tuple[str, Callable[[], object]]] = [
        ("Via", lambda: request.top_via),
        ("From", lambda: request.from_),
        ("To", lambda: request.to),
        ("Call-ID", lambda: request.call_id),
        ("CSeq", lambda: request.cseq),
    ]
    for name, view in views:
        with pytest.raises(ParseError, match=name):
            view()
    assert request.via == []


# -- Via stack ----------------------------------------------------------------------


def test_push_via_adds_a_new_top_line() -> None:
    """``push_via`` puts a new Via above the others; the next hop sees it first."""
    request = parsed_request(via=f"{VIA_A}, {VIA_B}")
    request.push_via(NEW_VIA)
    assert request.top_via == NEW_VIA
    again = reparse(request)
    assert [v.branch for v in again.via] == ["z9hG4bKnew", "z9hG4bKa", "z9hG4bKb"]


def test_push_via_on_a_message_without_via() -> None:
    """A message with no Via gets one."""
    request = parsed_request(via=None)
    request.push_via(NEW_VIA)
    assert reparse(request).top_via == NEW_VIA


def test_set_top_via_in_a_comma_list_keeps_the_rest() -> None:
    """Only the first value of the first Via line changes."""
    request = parsed_request(via=[f"{VIA_A}, {VIA_B}", VIA_C])
    top = request.top_via.with_param("received", "127.0.0.2").with_param("rport", "5099")
    request.set_top_via(top)
    assert request.top_via == top
    again = reparse(request)
    assert again.top_via.received == "127.0.0.2"
    assert again.top_via.rport == "5099"
    assert [v.branch for v in again.via] == ["z9hG4bKa", "z9hG4bKb", "z9hG4bKc"]


def test_set_top_via_without_via_raises() -> None:
    """There is nothing to replace when no Via exists."""
    request = parsed_request(via=None)
    with pytest.raises(ParseError, match="Via"):
        request.set_top_via(NEW_VIA)


def test_pop_via_from_a_comma_list() -> None:
    """``pop_via`` returns the top value and leaves the rest of its line."""
    response = parsed_response(request=build_request(via=[f"{VIA_A}, {VIA_B}", VIA_C]))
    popped = response.pop_via()
    assert popped.branch == "z9hG4bKa"
    assert response.top_via.branch == "z9hG4bKb"
    assert [v.branch for v in reparse(response).via] == ["z9hG4bKb", "z9hG4bKc"]


def test_pop_via_removes_a_single_value_line() -> None:
    """Popping a line's only value removes the line."""
    response = parsed_response(request=build_request(via=[VIA_A, VIA_B]))
    assert response.pop_via().branch == "z9hG4bKa"
    assert response.get_all("via") == [VIA_B]
    assert response.pop_via().branch == "z9hG4bKb"
    assert not response.has("via")
    with pytest.raises(ParseError):
        response.pop_via()


def test_via_list_cache_follows_push_and_pop() -> None:
    """``via`` reflects every push and pop."""
    request = parsed_request(via=VIA_A)
    assert len(request.via) == 1
    request.push_via(NEW_VIA)
    assert [v.branch for v in request.via] == ["z9hG4bKnew", "z9hG4bKa"]
    request.pop_via()
    assert [v.branch for v in request.via] == ["z9hG4bKa"]


# -- serialisation --------------------------------------------------------------------


def test_untouched_message_re_emits_byte_for_byte() -> None:
    """Reading views does not change the bytes."""
    data = build_request(body=SDP, route="<sip:p.example.com;lr>")
    request = parse_message(data)
    request.top_via, request.from_, request.to, request.cseq, request.routes  # noqa: B018
    assert request.to_bytes() == data
    assert bytes(request) == data


def test_untouched_message_keeps_odd_formatting() -> None:
    """Folding, compact names and odd spacing survive an untouched round trip."""
    data = (
        b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
        b"v :  SIP / 2.0 / UDP 127.0.0.1;branch=z9hG4bK1\r\n"
        b"Subject: a\r\n  folded\r\n"
        b"l:0\r\n\r\n"
    )
    assert parse_message(data).to_bytes() == data


def test_changed_message_re_renders_only_changed_lines() -> None:
    """Unchanged raw lines (folded, compact, oddly spaced) stay as they came."""
    data = (
        b"INVITE sip:bob@example.com SIP/2.0\r\n"
        b"Via  : SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa\r\n"
        b"X-Odd:   folded\r\n   value\r\n"
        b"f: <sip:alice@example.com>;tag=1\r\n"
        b"t: <sip:bob@example.com>\r\n"
        b"i: x@127.0.0.1\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Max-Forwards: 70\r\n"
        b"l: 0\r\n\r\n"
    )
    request = parse_message(data)
    request.set("Max-Forwards", "69")
    out = request.to_bytes()
    assert b"X-Odd:   folded\r\n   value\r\n" in out
    assert b"Via  : SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa\r\n" in out
    assert b"f: <sip:alice@example.com>;tag=1\r\n" in out
    assert b"l: 0\r\n" in out
    assert b"Max-Forwards: 69\r\n" in out
    assert out.endswith(b"\r\n\r\n")


def test_content_length_is_corrected_on_re_render() -> None:
    """A changed body gives a correct Content-Length, compact or not."""
    request = parse_message(build_request().replace(b"Content-Length: 0", b"l: 0"))
    request.body = b"hello"
    out = request.to_bytes()
    assert b"Content-Length: 5\r\n" in out and b"l: 0" not in out
    again = reparse(request)
    assert again.body == b"hello"
    assert again.get("content-length") == "5"


def test_content_length_is_added_when_missing() -> None:
    """A re-rendered message without Content-Length gets one."""
    request = parsed_request(content_length=None)
    request.set("Subject", "x")
    assert reparse(request).get("content-length") == "0"


def test_wrong_content_length_set_by_hand_is_fixed() -> None:
    """Setting Content-Length by hand cannot make the message lie."""
    request = parsed_request(body=SDP)
    request.set("Content-Length", "3")
    assert reparse(request).body == SDP


def test_body_setter_marks_the_message_changed() -> None:
    """Setting the body re-renders even when no header changed."""
    request = parsed_request(body=SDP)
    request.body = b""
    again = reparse(request)
    assert again.body == b""
    assert again.get("content-length") == "0"


def test_uri_setter_changes_the_request_line() -> None:
    """Assigning ``uri`` rewrites the Request-URI text."""
    request = parsed_request()
    request.uri = parse_uri("sip:bob@127.0.0.1:5062;transport=tcp")
    assert request.ruri == "sip:bob@127.0.0.1:5062;transport=tcp"
    assert (
        head_lines(request.to_bytes())[0] == b"INVITE sip:bob@127.0.0.1:5062;transport=tcp SIP/2.0"
    )


def test_method_setter_changes_the_request_line() -> None:
    """Assigning ``method`` is seen on the wire."""
    request = parsed_request("OPTIONS", cseq="1 OPTIONS")
    request.method = "INFO"
    assert head_lines(request.to_bytes())[0] == b"INFO sip:bob@example.com SIP/2.0"


def test_status_and_reason_setters_change_the_status_line() -> None:
    """Assigning ``status`` and ``reason`` is seen on the wire."""
    response = parsed_response(200)
    response.status = 180
    response.reason = "Ringing"
    assert head_lines(response.to_bytes())[0] == b"SIP/2.0 180 Ringing"
    assert isinstance(reparse(response), Response)


def test_non_ascii_octets_survive_re_rendering() -> None:
    """Undecodable and UTF-8 octets in headers come out unchanged."""
    data = build_request(subject="caf\u00e9").replace(b"Call-ID:", b"X-Raw: \xff\xfe\r\nCall-ID:")
    request = parse_message(data)
    request.set("Max-Forwards", "1")
    out = request.to_bytes()
    assert b"Subject: caf\xc3\xa9\r\n" in out and b"X-Raw: \xff\xfe\r\n" in out


def test_new_message_renders_from_scratch() -> None:
    """A Request built in code renders a start line, headers and Content-Length."""
    request = Request("OPTIONS", "sip:127.0.0.1")
    request.add("Via", "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1")
    assert request.to_bytes() == (
        b"OPTIONS sip:127.0.0.1 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    assert repr(request) == "<Request OPTIONS sip:127.0.0.1>"


def test_response_default_reason_phrase() -> None:
    """A Response without a reason gets the standard phrase."""
    assert Response(486).reason == "Busy Here"
    assert Response(299).reason == "OK"
    assert Response(200, "").start_line() == "SIP/2.0 200 "
    assert repr(Response(404)) == "<Response 404 Not Found>"


# -- CSeq and numbers -------------------------------------------------------------------


def test_parse_cseq() -> None:
    """CSeq is a 32-bit number and a method token; leading zeros allowed."""
    assert parse_cseq("0009 INVITE") == CSeq(9, "INVITE")
    assert parse_cseq("4294967295 ACK") == CSeq(4294967295, "ACK")
    assert CSeq(2, "BYE").render() == "2 BYE"


@pytest.mark.parametrize(
    "value", ["", "1", "INVITE", "1 2 INVITE", "x INVITE", "4294967296 INVITE", "1 IN;VITE"]
)
def test_bad_cseq_raises(value: str) -> None:
    """Malformed or out-of-range CSeq values raise ParseError."""
    with pytest.raises(ParseError, match="CSeq"):
        parse_cseq(value)


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("0068", 68), ("255", 255)])
def test_max_forwards_values(value: str, expected: int) -> None:
    """Max-Forwards 0..255, leading zeros allowed."""
    assert parsed_request(max_forwards=value).max_forwards == expected


@pytest.mark.parametrize("value", ["256", "-1", "x", "", "1 2"])
def test_bad_max_forwards_raises(value: str) -> None:
    """Max-Forwards outside 0..255 or not a number raises ParseError."""
    with pytest.raises(ParseError, match="Max-Forwards"):
        parsed_request(max_forwards=value).max_forwards  # noqa: B018


@pytest.mark.parametrize("value", ["", "a b", "a\tb"])
def test_bad_call_id_raises(value: str) -> None:
    """A Call-ID is one word."""
    with pytest.raises(ParseError, match="Call-ID"):
        parsed_request(call_id=value).call_id  # noqa: B018


# -- make_response --------------------------------------------------------------------


def test_make_response_copies_the_section_8_2_6_headers() -> None:
    """Via (all, in order), From, To, Call-ID and CSeq are copied; nothing else."""
    request = parsed_request(
        via=[f"{VIA_A}, {VIA_B}", VIA_C], route="<sip:p.example.com;lr>", subject="s"
    )
    response = make_response(request, 486, to_tag="abc")
    assert response.status == 486 and response.reason == "Busy Here"
    assert response.get_all("via") == request.get_all("via")
    assert response.from_ == request.from_ and response.from_.tag == FROM_TAG
    assert response.call_id == request.call_id
    assert response.cseq == request.cseq
    assert response.to.tag == "abc"
    assert response.to.uri == request.to.uri
    assert not response.has("route") and not response.has("subject")
    assert not response.has("contact") and not response.has("max-forwards")
    again = reparse(response)
    assert isinstance(again, Response)
    assert again.to.tag == "abc" and again.body == b""


def test_make_response_keeps_an_existing_to_tag() -> None:
    """A request with a To tag (in-dialog) keeps that tag."""
    request = parsed_request("BYE", to="<sip:bob@example.com>;tag=existing", cseq="2 BYE")
    assert make_response(request, 200, to_tag="new").to.tag == "existing"


def test_make_response_100_gets_no_to_tag() -> None:
    """100 Trying never adds a To tag (§8.2.6.2) and copies Timestamp."""
    request = parsed_request(timestamp="54")
    trying = make_response(request, 100, to_tag="abc")
    assert trying.to.tag is None
    assert trying.get("timestamp") == "54"
    assert not make_response(request, 180, to_tag="abc").has("timestamp")


def test_make_response_custom_reason_and_no_tag() -> None:
    """A given reason is used; without ``to_tag`` To stays as it was."""
    response = make_response(parsed_request(), 404, "Nobody Here")
    assert response.start_line() == "SIP/2.0 404 Nobody Here"
    assert response.to.tag is None


def test_make_response_keeps_compact_names() -> None:
    """Copied headers keep their raw form, compact names included."""
    request = parse_message(
        build_request().replace(b"\r\nVia:", b"\r\nv:").replace(b"\r\nCall-ID:", b"\r\ni:")
    )
    assert isinstance(request, Request)
    out = make_response(request, 200, to_tag="t").to_bytes()
    assert b"\r\nv: SIP/2.0/UDP" in out and b"\r\ni: " in out


def test_make_response_does_not_share_header_entries() -> None:
    """Changing the response leaves the request unchanged."""
    request = parsed_request()
    before = request.to_bytes()
    response = make_response(request, 200, to_tag="t")
    response.pop_via()
    response.set("From", "<sip:x@example.com>;tag=2")
    assert request.to_bytes() == before


def test_built_response_round_trips() -> None:
    """``build_response`` bytes parse to a response with the copied fields."""
    data = build_response(180, request=build_request(via=[VIA_A, VIA_B]))
    response = parse_message(data)
    assert isinstance(response, Response)
    assert (response.status, response.reason) == (180, "Ringing")
    assert [v.branch for v in response.via] == ["z9hG4bKa", "z9hG4bKb"]
    assert response.to_bytes() == data


def test_expires_header_and_contact_expires_and_q() -> None:
    """Expires, a Contact's expires and q are read; huge expiries are capped, bad ones raise."""
    import pytest as _pytest

    from sipapp.sip import ParseError, parse_name_addr
    from sipapp.testing import parsed_request

    request = parsed_request("REGISTER", "sip:example.net", expires="3600")
    assert request.expires == 3600
    assert parsed_request("REGISTER", "sip:example.net").expires is None
    huge = parsed_request("REGISTER", "sip:example.net", expires="1" + "0" * 100)
    assert huge.expires == 0xFFFFFFFF
    with _pytest.raises(ParseError):
        _ = parsed_request("REGISTER", "sip:example.net", expires="soon").expires
    contact = parse_name_addr("<sip:a@127.0.0.1>;expires=60;q=0.7", "Contact")
    assert (contact.expires, contact.q) == (60, 0.7)
    assert parse_name_addr("<sip:a@127.0.0.1>", "Contact").q is None
    for bad in ("q=1.5", "q=x", "expires=-1"):
        with _pytest.raises(ParseError):
            value = parse_name_addr(f"<sip:a@127.0.0.1>;{bad}", "Contact")
            _ = (value.q, value.expires)
