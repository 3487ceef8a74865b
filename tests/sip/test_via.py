"""Tests for sipapp.sip.via: parsing, parameters and rendering of Via values."""

from __future__ import annotations

import pytest

from sipapp.sip import MAGIC_COOKIE, ParseError, Via, parse_via
from sipapp.testing import parsed_request


def test_basic_via_fields() -> None:
    """Transport, host, port and branch of a plain Via."""
    via = parse_via("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK776asdhds")
    assert (via.transport, via.host, via.port) == ("UDP", "127.0.0.1", 5060)
    assert via.branch == "z9hG4bK776asdhds"
    assert via.protocol == "SIP/2.0"
    assert via.sent_by == "127.0.0.1:5060"


def test_transport_is_upper_cased_and_any_token() -> None:
    """Transports are tokens, upper-cased; unknown ones parse (RFC 4475 transports)."""
    assert parse_via("SIP/2.0/tls example.com").transport == "TLS"
    assert parse_via("SIP/2.0/UNKNOWN t4.example.com").transport == "UNKNOWN"


def test_lws_around_slashes_and_before_params() -> None:
    """LWS is allowed around '/' and ';' and '=' (RFC 4475 wsinv)."""
    via = parse_via("SIP  /   2.0 \t/  UDP   192.168.255.111   ; branch=  z9hG4bK30239")
    assert (via.transport, via.host, via.branch) == ("UDP", "192.168.255.111", "z9hG4bK30239")
    assert via.protocol == "SIP/2.0"


def test_lws_around_the_port_colon() -> None:
    """sent-by = host COLON port, and COLON may carry LWS (§25.1)."""
    via = parse_via("SIP/2.0/UDP 127.0.0.1 : 5070;branch=z9hG4bK1")
    assert (via.host, via.port) == ("127.0.0.1", 5070)
    assert parse_via("SIP/2.0/UDP [::1] :5071").port == 5071


def test_no_port() -> None:
    """A sent-by without a port has port None."""
    assert parse_via("SIP/2.0/TCP example.com").port is None


def test_ipv6_sent_by() -> None:
    """An IPv6 sent-by keeps the address without brackets; sent_by puts them back."""
    via = parse_via("SIP/2.0/UDP [2001:db8::9:1]:6050;branch=z9hG4bKas3-111")
    assert (via.host, via.port) == ("2001:db8::9:1", 6050)
    assert via.sent_by == "[2001:db8::9:1]:6050"


def test_received_without_brackets() -> None:
    """received=IPv6 parses (RFC 5118 §4.5)."""
    via = parse_via("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3")
    assert via.received == "2001:db8::9:255"


def test_received_with_brackets_is_tolerated_and_unbracketed() -> None:
    """received=[IPv6] is accepted and read without the brackets (RFC 5118 §4.5)."""
    via = parse_via("SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bK1")
    assert via.received == "2001:db8::9:255"
    assert via.param("received") == "[2001:db8::9:255]"


def test_received_ipv4() -> None:
    """received=IPv4 parses."""
    assert parse_via("SIP/2.0/UDP h;received=127.0.0.1").received == "127.0.0.1"


@pytest.mark.parametrize(
    "received", ["host.example.com", "[127.0.0.1", "127.0.0.1]", "[]", "[[::1]]", "1.2.3.4x"]
)
def test_bad_received_values_rejected(received: str) -> None:
    """received must be an address, brackets only as a pair around it."""
    with pytest.raises(ParseError, match="received"):
        parse_via(f"SIP/2.0/UDP h;received={received}")


def test_received_without_value_rejected() -> None:
    """A bare ``received`` parameter is malformed."""
    with pytest.raises(ParseError):
        parse_via("SIP/2.0/UDP h;received")


def test_rport_absent_empty_and_valued() -> None:
    """rport is None when absent, '' when requested, else the port text (RFC 3581)."""
    assert parse_via("SIP/2.0/UDP h;branch=z9hG4bK1").rport is None
    assert parse_via("SIP/2.0/UDP h;rport;branch=z9hG4bK1").rport == ""
    assert parse_via("SIP/2.0/UDP h;rport=5061;received=127.0.0.1").rport == "5061"


@pytest.mark.parametrize("rport", ["abc", "123456", "65536", "-1", "5 0"])
def test_bad_rport_values_rejected(rport: str) -> None:
    """rport must be a port number."""
    with pytest.raises(ParseError):
        parse_via(f"SIP/2.0/UDP h;rport={rport}")


def test_ttl_and_maddr() -> None:
    """ttl is an integer, maddr the text."""
    via = parse_via("SIP/2.0/UDP h;ttl=16;maddr=224.2.0.1;branch=z9hG4bK1")
    assert via.ttl == 16
    assert via.maddr == "224.2.0.1"
    assert parse_via("SIP/2.0/UDP h").ttl is None


@pytest.mark.parametrize("ttl", ["256", "1000", "x", ""])
def test_bad_ttl_rejected(ttl: str) -> None:
    """ttl is 0..255."""
    with pytest.raises(ParseError):
        parse_via(f"SIP/2.0/UDP h;ttl={ttl}" if ttl else "SIP/2.0/UDP h;ttl")


def test_empty_branch_rejected() -> None:
    """A branch parameter without a value is malformed."""
    with pytest.raises(ParseError, match="branch"):
        parse_via("SIP/2.0/UDP h;branch")


def test_unknown_params_are_kept_in_order() -> None:
    """Extension parameters survive parse and render."""
    via = parse_via("SIP/2.0/UDP h;branch=z9hG4bK1;comp=sigcomp;x")
    assert via.params == (("branch", "z9hG4bK1"), ("comp", "sigcomp"), ("x", None))
    assert via.param("COMP") == "sigcomp"


def test_other_protocol_versions_are_kept() -> None:
    """A Via of another SIP version parses and keeps its protocol (the 505 comes elsewhere)."""
    via = parse_via("SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw")
    assert via.protocol == "SIP/7.0"
    assert via.render() == "SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "SIP/2.0",
        "SIP/2.0/",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP ",
        "SIP 2.0 UDP host",
        "SIP//UDP host",
        "/2.0/UDP host",
        "SIP/2.0/U;DP host",
        "SIP/2.0/UDP host junk",
        "SIP/2.0/UDP host:99999",
        "SIP/2.0/UDP host:",
        "SIP/2.0/UDP [::1",
        "SIP/2.0/UDP host;",
        "SIP/2.0/UDP host;;",
        "SIP/2.0/UDP host;branch=a b",
        "SIP/2.0/UDP host;=x",
        "SIP/2.0/UDP host;;,;,,",
        "SIP/2.0/UDP ho st",
        "SIP/2.0/UDP host : ",
    ],
)
def test_malformed_vias_raise_parse_error(value: str) -> None:
    """Malformed Via values raise ParseError naming the Via header."""
    with pytest.raises(ParseError, match="Via"):
        parse_via(value)


def test_with_param_replaces_and_appends() -> None:
    """``with_param`` sets received/rport on a copy, in place or at the end."""
    via = parse_via("SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bK1")
    answered = via.with_param("received", "127.0.0.2").with_param("rport", "5062")
    assert answered.render() == (
        "SIP/2.0/UDP 127.0.0.1:5060;rport=5062;branch=z9hG4bK1;received=127.0.0.2"
    )
    assert via.rport == ""


def test_render_round_trips() -> None:
    """A rendered Via parses back to an equal value."""
    via = Via("TCP", "::1", 5060, (("branch", MAGIC_COOKIE + "abc"), ("rport", None)))
    text = via.render()
    assert text == "SIP/2.0/TCP [::1]:5060;branch=z9hG4bKabc;rport"
    assert str(via) == text
    assert parse_via(text) == via


def test_render_is_canonical_after_lws() -> None:
    """A Via written with LWS renders without it."""
    via = parse_via("SIP / 2.0 / udp  example.com ;branch = z9hG4bK1")
    assert via.render() == "SIP/2.0/UDP example.com;branch=z9hG4bK1"


def test_multi_value_via_lines() -> None:
    """A comma list in one line and separate lines give every Via, top first."""
    request = parsed_request(
        via=[
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa, SIP/2.0/TCP [::1]:5061;branch=z9hG4bKb",
            "SIP/2.0/TLS 127.0.0.1:5062;branch=z9hG4bKc",
        ]
    )
    assert [v.branch for v in request.via] == ["z9hG4bKa", "z9hG4bKb", "z9hG4bKc"]
    assert [v.transport for v in request.via] == ["UDP", "TCP", "TLS"]
    assert request.top_via == request.via[0]


def test_magic_cookie_constant() -> None:
    """The RFC 3261 branch prefix."""
    assert MAGIC_COOKIE == "z9hG4bK"
