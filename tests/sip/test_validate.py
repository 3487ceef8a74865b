"""Tests for sipapp.sip.validate: the core-header checks and the stateless proxy checks."""

from __future__ import annotations

import pytest

from sipapp.sip import (
    KNOWN_METHODS,
    MAGIC_COOKIE,
    ParseError,
    Rejection,
    check_request,
    parse_message,
    validate,
)
from sipapp.testing import build_request, build_response, parsed_request, parsed_response


def test_well_formed_request_and_response_pass() -> None:
    """The builders' messages are valid."""
    validate(parsed_request())
    validate(parsed_response())
    validate(parsed_request("REGISTER", "sip:example.com", contact="*", expires="0"))


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"via": None}, "missing Via"),
        ({"via": "SIP/2.0/UDP"}, "Via"),
        ({"from_": None}, "missing From"),
        ({"from_": "<sip:alice@example.com"}, "From"),
        ({"to": None}, "missing To"),
        ({"to": "Bob, Jr <sip:bob@example.com>"}, "To"),
        ({"call_id": None}, "missing Call-ID"),
        ({"call_id": "a b"}, "Call-ID"),
        ({"cseq": None}, "missing CSeq"),
        ({"cseq": "4294967296 INVITE"}, "CSeq"),
        ({"max_forwards": "256"}, "Max-Forwards"),
        ({"date": "Sat, 13 Nov 2010 23:29:00 EST"}, "Date"),
        ({"date": "13 Nov 2010 23:29:00 GMT"}, "Date"),
    ],
)
def test_each_core_header_rule(override: dict[str, str | None], problem: str) -> None:
    """A missing or malformed core header is a 400 that names it."""
    request = parsed_request(**override)  # type: ignore[arg-type]
    with pytest.raises(ParseError, match=problem) as info:
        validate(request)
    assert info.value.status == 400


@pytest.mark.parametrize("contact", ["<sip:a@127.0.0.1>;;", "sip:a@127.0.0.1?Route=x", "*, <x>"])
def test_register_contact_must_parse(contact: str) -> None:
    """A REGISTER's Contact is what the registrar stores: it must parse (RFC 4475 regbadct)."""
    request = parsed_request("REGISTER", "sip:example.com", contact=contact)
    with pytest.raises(ParseError, match="Contact") as info:
        validate(request)
    assert info.value.status == 400


def test_other_requests_pass_their_contact_on_unparsed() -> None:
    """A proxy forwards another request's Contact untouched, so validate leaves it alone."""
    request = parsed_request(contact="<sip:a@127.0.0.1>;;")
    validate(request)
    with pytest.raises(ParseError):
        request.contacts  # noqa: B018


def test_good_date_passes() -> None:
    """An rfc1123 date in GMT is fine."""
    validate(parsed_request(date="Sat, 13 Nov 2010 23:29:00 GMT"))


def test_max_forwards_may_be_absent() -> None:
    """Max-Forwards is not required (RFC 2543 peers)."""
    validate(parsed_request(max_forwards=None))


def test_only_the_top_via_is_checked() -> None:
    """Lower Via values are the business of the hops that wrote them."""
    validate(parsed_request(via=["SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1", "junk"]))


@pytest.mark.parametrize("name", ["Call-ID", "From", "To", "CSeq", "Max-Forwards", "Content-Type"])
def test_single_instance_headers_appear_once(name: str) -> None:
    """Two lines of a single-instance header are a 400 (RFC 4475 multi01)."""
    value = parsed_request(body=b"x").get(name)
    assert value is not None
    request = parse_message(build_request(body=b"x", headers=[(name, value)]))
    with pytest.raises(ParseError, match=f"multiple {name}") as info:
        validate(request)
    assert info.value.status == 400


def test_compact_and_long_forms_count_as_the_same_header() -> None:
    """``i:`` plus ``Call-ID:`` is two Call-IDs."""
    request = parse_message(build_request(headers=[("i", "other@127.0.0.1")]))
    with pytest.raises(ParseError, match="multiple Call-ID"):
        validate(request)


def test_headers_in_request_uri_are_refused() -> None:
    """A Request-URI with ?headers is a 400 (RFC 4475 escruri)."""
    request = parsed_request(uri="sip:bob@example.com?Route=%3Csip:example.com%3E")
    with pytest.raises(ParseError, match="Request-URI") as info:
        validate(request)
    assert info.value.status == 400


def test_malformed_request_uri_is_400() -> None:
    """A Request-URI that does not parse fails validation."""
    with pytest.raises(ParseError, match="Request-URI"):
        validate(parsed_request(uri="sip:<bob@example.com>"))


def test_cseq_method_mismatch_known_method_is_400() -> None:
    """A known method with another CSeq method is 400 (RFC 4475 mismatch01)."""
    with pytest.raises(ParseError, match="CSeq method") as info:
        validate(parsed_request("OPTIONS", cseq="1 INVITE"))
    assert info.value.status == 400


def test_cseq_method_mismatch_unknown_method_is_501() -> None:
    """An unknown method with another CSeq method is 501 (RFC 4475 mismatch02)."""
    with pytest.raises(ParseError) as info:
        validate(parsed_request("NEWMETHOD", cseq="1 INVITE"))
    assert info.value.status == 501
    assert info.value.reason.startswith("Not Implemented - ")


def test_responses_skip_request_only_rules() -> None:
    """A response is not held to Request-URI or Max-Forwards rules."""
    validate(parse_message(build_response(cseq="1 BYE", max_forwards="999")))


def test_known_methods() -> None:
    """The core methods and common extensions are known; escapes are not decoded."""
    assert {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER"} <= KNOWN_METHODS
    assert "RE%47IST%45R" not in KNOWN_METHODS


# -- check_request --------------------------------------------------------------------


def test_check_request_passes_a_normal_request() -> None:
    """Nothing to reject."""
    assert check_request(parsed_request()) is None


@pytest.mark.parametrize(
    "uri",
    ["nobodyKnowsThisScheme:totallyopaquecontent", "soap.beep://192.0.2.103:3002", "http://x"],
)
def test_unknown_scheme_is_416(uri: str) -> None:
    """A Request-URI scheme we do not route is 416 (RFC 4475 unkscm, novelsc)."""
    assert check_request(parsed_request(uri=uri)) == Rejection(416)


def test_schemes_are_configurable() -> None:
    """Only the schemes passed are routed."""
    request = parsed_request(uri="tel:+15555550100")
    assert check_request(request) is None
    assert check_request(request, schemes=frozenset({"sip"})) == Rejection(416)


def test_scheme_check_ignores_case() -> None:
    """``SIP:`` is sip."""
    assert check_request(parsed_request(uri="SIP:bob@example.com")) is None


def test_zero_max_forwards_is_483() -> None:
    """Max-Forwards 0 is 483 Too Many Hops (RFC 4475 zeromf)."""
    assert check_request(parsed_request(max_forwards="0")) == Rejection(483)
    assert check_request(parsed_request(max_forwards="1")) is None
    assert check_request(parsed_request(max_forwards=None)) is None


def test_max_forwards_check_can_be_deferred() -> None:
    """``max_forwards=False`` leaves the 483 decision to the caller."""
    assert check_request(parsed_request(max_forwards="0"), max_forwards=False) is None


def test_unsupported_proxy_require_is_420_listing_the_tags() -> None:
    """Every unsupported Proxy-Require tag is listed in Unsupported (RFC 4475 bext01)."""
    request = parsed_request(proxy_require=["foo, bar", "baz"])
    rejection = check_request(request, supported=frozenset({"bar"}))
    assert rejection == Rejection(420, None, (("Unsupported", "foo, baz"),))


def test_supported_proxy_require_passes() -> None:
    """Tags we support are fine."""
    request = parsed_request(proxy_require="sec-agree")
    assert check_request(request, supported=frozenset({"sec-agree"})) is None


def test_require_alone_is_not_a_proxy_concern() -> None:
    """Require is for the UAS; a proxy checks only Proxy-Require."""
    assert check_request(parsed_request(require="100rel")) is None


def test_branch_of_only_the_magic_cookie_is_400() -> None:
    """A branch that is just z9hG4bK is rejected (RFC 4475 badbranch)."""
    request = parsed_request(via=f"SIP/2.0/UDP 127.0.0.1;branch={MAGIC_COOKIE}")
    rejection = check_request(request)
    assert rejection is not None and rejection.status == 400
    assert rejection.reason is not None and "magic cookie" in rejection.reason


def test_missing_branch_is_tolerated() -> None:
    """RFC 2543 peers send no branch; that is not a rejection here."""
    assert check_request(parsed_request(via="SIP/2.0/UDP 127.0.0.1")) is None


def test_rejection_is_a_frozen_value() -> None:
    """Rejections compare by value."""
    assert Rejection(483) == Rejection(483, None, ())
    with pytest.raises(AttributeError):
        Rejection(483).status = 400  # type: ignore[misc]
