"""Tests for sipapp.sip.uri: sip/sips, tel and absolute URIs, hosts and ports."""

from __future__ import annotations

import pytest

from sipapp.sip import AbsoluteUri, ParseError, SipUri, TelUri, parse_host, parse_uri, unescape


def sip(text: str) -> SipUri:
    """Parse ``text`` and insist it is a SIP URI."""
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    return uri


def test_plain_sip_uri_fields() -> None:
    """Scheme, user, host; no password, port, params or headers."""
    uri = sip("sip:alice@example.com")
    assert (uri.scheme, uri.user, uri.host) == ("sip", "alice", "example.com")
    assert uri.password is None and uri.port is None
    assert uri.params == () and uri.headers == ()


def test_sips_scheme_and_scheme_case_are_normalised() -> None:
    """The scheme is lower-cased: SIPS: is sips."""
    assert sip("SIPS:bob@example.com").scheme == "sips"


def test_host_only_uri_has_no_user() -> None:
    """A URI without '@' has no user part."""
    uri = sip("sip:example.com:5070")
    assert uri.user is None and uri.host == "example.com" and uri.port == 5070


def test_user_and_password() -> None:
    """``user:password@host`` splits at the first ':' of the userinfo."""
    uri = sip("sip:alice:secret@example.com")
    assert (uri.user, uri.password) == ("alice", "secret")


def test_empty_password_is_kept() -> None:
    """``user:@host`` has an empty password, not none."""
    assert sip("sip:alice:@example.com").password == ""


def test_host_is_lower_cased_user_is_not() -> None:
    """Hosts compare case-insensitively and are stored lower case; the user is kept."""
    uri = sip("sip:Alice@EXAMPLE.Com")
    assert (uri.user, uri.host) == ("Alice", "example.com")


def test_ipv6_reference_without_port() -> None:
    """An IPv6 reference keeps the address without brackets."""
    uri = sip("sip:[2001:DB8::10]")
    assert uri.host == "2001:db8::10" and uri.port is None


def test_ipv6_reference_with_port() -> None:
    """The port follows the closing bracket."""
    uri = sip("sip:user@[2001:db8::10]:5070")
    assert (uri.host, uri.port) == ("2001:db8::10", 5070)


def test_ipv6_colon_inside_brackets_is_not_a_port() -> None:
    """``[2001:db8::10:5070]`` is all address (RFC 5118 §4.3)."""
    uri = sip("sip:[2001:db8::10:5070]")
    assert (uri.host, uri.port) == ("2001:db8::10:5070", None)


def test_ipv4_mapped_ipv6_reference() -> None:
    """IPv4-mapped IPv6 addresses parse (RFC 5118 §4.9)."""
    assert sip("sip:[::ffff:192.0.2.10]:19823").host == "::ffff:192.0.2.10"


@pytest.mark.parametrize(("text", "port"), [("0", 0), ("5060", 5060), ("65535", 65535)])
def test_port_bounds_accepted(text: str, port: int) -> None:
    """Ports 0..65535 are accepted."""
    assert sip(f"sip:example.com:{text}").port == port


@pytest.mark.parametrize("text", ["65536", "99999", "123456", "", "-1", "50a", "0x10", " 5"])
def test_bad_ports_rejected(text: str) -> None:
    """Out-of-range, empty, signed or non-decimal ports raise ParseError."""
    with pytest.raises(ParseError):
        parse_uri(f"sip:example.com:{text}")


def test_uri_params_keep_order_and_lookups_ignore_case() -> None:
    """Parameters keep order and case; ``param`` and the helpers find them."""
    uri = sip("sip:proxy.example.com;LR;Transport=TCP;maddr=127.0.0.1;x")
    assert uri.params == (("LR", None), ("Transport", "TCP"), ("maddr", "127.0.0.1"), ("x", None))
    assert uri.lr
    assert uri.transport == "tcp"
    assert uri.maddr == "127.0.0.1"
    assert uri.param("X") == ""
    assert uri.param("absent") is None


def test_uri_without_lr_is_strict() -> None:
    """A URI without ``lr`` says so."""
    assert not sip("sip:proxy.example.com").lr
    assert sip("sip:proxy.example.com").transport is None


def test_uri_headers_are_parsed_and_kept_escaped() -> None:
    """``?name=value&...`` becomes a tuple of pairs, escapes as written."""
    uri = sip("sip:user@example.com?Route=%3Csip:sip.example.com%3E&Subject=hi")
    assert uri.headers == (("Route", "%3Csip:sip.example.com%3E"), ("Subject", "hi"))
    assert unescape(uri.headers[0][1]) == "<sip:sip.example.com>"
    assert uri.without_headers().headers == ()


def test_escapes_are_kept_as_written() -> None:
    """Escaped user and param text is stored verbatim, decoded only by ``unescape``."""
    uri = sip("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31")
    assert uri.user == "cal%6Cer"
    assert unescape(uri.user) == "caller"
    assert uri.params == (("%6C%72", None), ("n%61me", "v%61lue%25%34%31"))
    assert unescape(uri.params[1][1] or "") == "value%41"


def test_escaped_nul_in_user_survives_unescape() -> None:
    """``%00`` in the user part decodes to a NUL without truncation."""
    uri = sip("sip:null-%00-null@example.com")
    assert uri.user == "null-%00-null"
    assert unescape(uri.user) == "null-\x00-null"


def test_escaped_uri_in_user_part() -> None:
    """An escaped sips URI as user part stays escaped and unescapes whole (RFC 4475 esc01)."""
    uri = sip("sip:sips%3Auser%40example.com@example.net")
    assert uri.user == "sips%3Auser%40example.com"
    assert unescape(uri.user) == "sips:user@example.com"
    assert uri.host == "example.net"


def test_semicolon_in_user_part() -> None:
    """A ';' before '@' belongs to the user part (RFC 4475 semiuri)."""
    uri = sip("sip:user;par=u%40example.net@example.com")
    assert uri.user == "user;par=u%40example.net"
    assert uri.host == "example.com" and uri.params == ()


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice@example.com",
        "sips:alice:pw@[2001:db8::1]:5061;transport=tls;lr",
        "sip:example.com;maddr=127.0.0.1?Subject=x&Priority=urgent",
        "sip:cal%6Cer@host.example.net;%6C%72",
        "sip:[::1]",
        "sip:127.0.0.1:5060;x=[::1]",
    ],
)
def test_render_round_trips(text: str) -> None:
    """Rendering a parsed URI gives the same text, and parsing that gives an equal URI."""
    uri = parse_uri(text)
    assert uri.render() == text
    assert str(uri) == text
    assert parse_uri(uri.render()) == uri


def test_render_puts_ipv6_brackets_back() -> None:
    """A URI built with a bare IPv6 host renders it in brackets."""
    uri = SipUri("sip", "::1", "bob", port=5060)
    assert uri.render() == "sip:bob@[::1]:5060"
    assert uri.hostport == "[::1]:5060"


def test_with_param_adds_or_replaces() -> None:
    """``with_param`` returns a changed copy, the original untouched."""
    uri = sip("sip:example.com;transport=udp")
    changed = uri.with_param("transport", "tcp").with_param("lr")
    assert changed.render() == "sip:example.com;transport=tcp;lr"
    assert uri.render() == "sip:example.com;transport=udp"


def test_tel_uri() -> None:
    """``tel:`` URIs keep the number and parameters."""
    uri = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
    assert isinstance(uri, TelUri)
    assert uri.number == "+1-201-555-0123"
    assert uri.params == (("phone-context", "example.com"),)
    assert uri.scheme == "tel"
    assert uri.render() == "tel:+1-201-555-0123;phone-context=example.com"


def test_absolute_uri_is_opaque() -> None:
    """Other schemes keep the scheme and opaque text (RFC 4475 unkscm)."""
    uri = parse_uri("nobodyKnowsThisScheme:totallyopaquecontent")
    assert isinstance(uri, AbsoluteUri)
    assert (uri.scheme, uri.opaque) == ("nobodyKnowsThisScheme", "totallyopaquecontent")
    assert uri.render() == "nobodyKnowsThisScheme:totallyopaquecontent"


def test_absolute_uri_with_dotted_scheme() -> None:
    """Schemes may contain '.', '+' and '-' (RFC 4475 novelsc)."""
    uri = parse_uri("soap.beep://192.0.2.103:3002")
    assert isinstance(uri, AbsoluteUri) and uri.scheme == "soap.beep"


@pytest.mark.parametrize(
    "text",
    [
        "",
        ":",
        "sip",
        "sip:",
        "1sip:host",
        "s p:host",
        "sip:@example.com",
        "sip:user@",
        "sip:user@exa mple.com",
        "sip:user@example.com; lr",
        "sip:user@example.com;",
        "sip:user@example.com;;lr",
        "sip:user@example.com;=x",
        "sip:user@example.com?",
        "sip:user@example.com?a",
        "sip:user@example.com?a=<b>",
        "sip:a@b@c",
        "sip:user:p@ss@example.com",
        "sip:[2001:db8::1",
        "sip:[]",
        "sip:[example.com]",
        "sip:[::1]x",
        "sip:[::1]:",
        "sip:2001:db8::10",
        "sip:<user@example.com>",
        'sip:us"er@example.com',
        "sip:user@example.com\x00",
        "sip:user@exam\tple.com",
        "sip:user@ex%41mple.com",
        "tel:",
        "tel:+1 555",
        "tel:+1;",
        "http:",
        "http:a b",
        "urn:a\x00b",
        "mailto:<x>",
    ],
)
def test_hostile_uris_raise_parse_error(text: str) -> None:
    """Malformed URIs raise ParseError and nothing else."""
    with pytest.raises(ParseError):
        parse_uri(text)


def test_error_names_the_uri_role() -> None:
    """The ``what`` argument appears in the error text."""
    with pytest.raises(ParseError, match="Request-URI"):
        parse_uri("sip:user@example.com:99999", "Request-URI")


def test_parse_host_returns_host_and_port() -> None:
    """``parse_host`` splits host and port and lower-cases the host."""
    assert parse_host("Example.COM:5060", "Via") == ("example.com", 5060)
    assert parse_host("[::1]:5061", "Via") == ("::1", 5061)
    assert parse_host("127.0.0.1", "Via") == ("127.0.0.1", None)


def test_uris_are_frozen_values() -> None:
    """Parsed URIs compare by value and cannot be changed in place."""
    a = sip("sip:bob@example.com;lr")
    assert a == sip("sip:bob@example.com;lr")
    assert hash(a) == hash(sip("sip:bob@example.com;lr"))
    with pytest.raises(AttributeError):
        a.host = "other"  # type: ignore[misc]
