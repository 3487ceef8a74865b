"""Tests for sipapp.sip.address: name-addr and addr-spec values with header parameters."""

from __future__ import annotations

import pytest

from sipapp.sip import STAR, AbsoluteUri, NameAddr, ParseError, SipUri, parse_name_addr
from sipapp.testing import parsed_request


def test_name_addr_with_quoted_display_name() -> None:
    """A quoted display name is kept with its quotes; URI and params follow."""
    value = parse_name_addr('"Alice Liddell" <sip:alice@example.com>;tag=1928', "From")
    assert value.display == '"Alice Liddell"'
    assert isinstance(value.uri, SipUri) and value.uri.user == "alice"
    assert value.tag == "1928"


def test_quoted_display_name_with_escapes() -> None:
    """Escaped quotes and backslashes stay inside the display name."""
    value = parse_name_addr('"J Rosenberg \\\\\\"" <sip:jdrosen@example.com>;tag=98asjd8', "From")
    assert value.display == '"J Rosenberg \\\\\\""'
    assert value.tag == "98asjd8"


def test_quoted_display_name_may_hold_angle_brackets_and_commas() -> None:
    """'<' and ',' inside the quoted display name are text, not syntax."""
    value = parse_name_addr('"a <b>, c" <sip:x@example.com>', "To")
    assert value.display == '"a <b>, c"'
    assert isinstance(value.uri, SipUri) and value.uri.user == "x"


def test_token_display_name() -> None:
    """Unquoted display names are tokens separated by LWS."""
    value = parse_name_addr("token1~` token2'+_ token3*%!.- <sip:mundane@example.com>", "From")
    assert value.display == "token1~` token2'+_ token3*%!.-"


def test_display_name_without_space_before_angle_bracket() -> None:
    """``"caller"<sip:...>`` is accepted (RFC 4475 lwsdisp)."""
    value = parse_name_addr('"caller"<sip:caller@example.com>;tag=323', "From")
    assert value.display == '"caller"' and value.tag == "323"


def test_no_display_name() -> None:
    """``<uri>`` alone has no display name."""
    assert parse_name_addr("<sip:bob@example.com>", "To").display is None


def test_addr_spec_params_are_header_params() -> None:
    """Without angle brackets everything after ';' is a header parameter (§20.10)."""
    value = parse_name_addr("sip:+19725552222@gw1.example.net;unknownparam;tag=x", "Contact")
    assert isinstance(value.uri, SipUri)
    assert value.uri.params == ()
    assert value.params == (("unknownparam", None), ("tag", "x"))


def test_name_addr_uri_params_stay_in_the_uri() -> None:
    """Inside angle brackets ';' params belong to the URI."""
    value = parse_name_addr("<sip:+19725552222@gw1.example.net;unknownparam>;q=0.5", "Contact")
    assert isinstance(value.uri, SipUri)
    assert value.uri.params == (("unknownparam", None),)
    assert value.params == (("q", "0.5"),)
    assert value.param("Q") == "0.5"


def test_lws_around_params() -> None:
    """LWS around ';' and '=' after the URI is allowed."""
    value = parse_name_addr("<sip:a@example.com> ; newparam = newvalue ;  secondparam", "Contact")
    assert value.params == (("newparam", "newvalue"), ("secondparam", None))


def test_uri_headers_inside_brackets() -> None:
    """``?Route=...`` inside '<>' stays a URI header (RFC 4475 regescrt)."""
    value = parse_name_addr("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>", "Contact")
    assert isinstance(value.uri, SipUri)
    assert value.uri.headers == (("Route", "%3Csip:sip.example.com%3E"),)


def test_non_sip_schemes_in_name_addr() -> None:
    """Any absolute URI may appear (RFC 4475 unksm2)."""
    value = parse_name_addr("<isbn:2983792873>", "To")
    assert isinstance(value.uri, AbsoluteUri) and value.uri.scheme == "isbn"


def test_render_is_canonical_name_addr() -> None:
    """``render`` always uses angle brackets, then the header params."""
    value = parse_name_addr("sip:bob@example.com;tag=abc", "To")
    assert value.render() == "<sip:bob@example.com>;tag=abc"
    assert (
        str(parse_name_addr('"Bob" <sip:bob@example.com>', "To")) == '"Bob" <sip:bob@example.com>'
    )


def test_with_param_sets_a_header_param() -> None:
    """``with_param`` adds the To tag to a copy."""
    value = parse_name_addr("<sip:bob@example.com>", "To")
    tagged = value.with_param("tag", "8321")
    assert tagged.tag == "8321" and value.tag is None
    assert parse_name_addr(tagged.render(), "To") == tagged


def test_star_is_the_contact_wildcard() -> None:
    """``Contact: *`` gives STAR, not a list (§10.2.2)."""
    request = parsed_request("REGISTER", "sip:example.com", contact="*", expires=0)
    assert request.contacts == STAR


def test_star_among_other_contacts_is_an_error() -> None:
    """'*' is only valid on its own."""
    request = parsed_request("REGISTER", "sip:example.com", contact="*, <sip:a@127.0.0.1>")
    with pytest.raises(ParseError):
        request.contacts  # noqa: B018


def test_route_lists_split_across_commas_and_lines() -> None:
    """Route values come top first across comma lists and separate lines."""
    request = parsed_request(
        route=["<sip:p1.example.com;lr>, <sip:p2.example.com;lr>", "<sip:p3.example.com;lr>"],
        record_route='<sip:rr.example.com;lr>, "x,y" <sip:rr2.example.com;lr>',
    )
    hosts = [r.uri.host for r in request.routes if isinstance(r.uri, SipUri)]
    assert hosts == ["p1.example.com", "p2.example.com", "p3.example.com"]
    assert all(isinstance(r.uri, SipUri) and r.uri.lr for r in request.routes)
    assert [r.display for r in request.record_routes] == [None, '"x,y"']


def test_contact_list_with_params() -> None:
    """Several Contact values with expires and q parameters."""
    request = parsed_request(
        "REGISTER",
        "sip:example.com",
        contact='<sip:a@127.0.0.1>;expires=60, "B" <sip:b@127.0.0.1>;q=0.7',
    )
    contacts = request.contacts
    assert isinstance(contacts, list)
    assert [c.param("expires") for c in contacts] == ["60", None]
    assert contacts[1].display == '"B"' and contacts[1].param("q") == "0.7"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        '"unterminated <sip:a@example.com>',
        '"x" sip:a@example.com',
        '"x" junk <sip:a@example.com>',
        "Bell, Alexander <sip:a.g.bell@example.com>",
        "Bob sip:bob@example.com",
        "<sip:a@example.com",
        "< sip:t.watson@example.org >",
        "<sip:a@example.com> junk",
        "<sip:a@example.com>;",
        "<sip:a@example.com>;;tag=1",
        "<sip:a@example.com>;tag=a b",
        "sip:a@example.com?Route=%3Csip:x%3E",
        "sip:a@example.com, sip:b@example.com",
        "<>",
        "<no-scheme>",
        "<sip:a@example.com>>",
        "sip:user@example.com;;;;",
    ],
)
def test_malformed_name_addrs_raise_parse_error(value: str) -> None:
    """Malformed values raise ParseError naming the header."""
    with pytest.raises(ParseError, match="Contact"):
        parse_name_addr(value, "Contact")


def test_name_addr_is_a_frozen_value() -> None:
    """Equal text gives equal values; assignment is refused."""
    a = parse_name_addr("<sip:a@example.com>;tag=1", "From")
    assert a == NameAddr(a.uri, None, (("tag", "1"),))
    with pytest.raises(AttributeError):
        a.display = "x"  # type: ignore[misc]
