"""Tests for sipapp.sip.digest: Authorization / WWW-Authenticate parameter parsing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipapp.sip import Challenge, ParseError, parse_challenge, parse_credentials
from sipapp.sip.digest import parse_auth

#: RFC 8760 / RFC 7616 style credentials as a phone sends them.
SENT = (
    'Digest username="alice", realm="example.net", nonce="abc/+==", '
    'uri="sip:example.net", response="6629fae49393a05397450978507c4ef1", '
    'algorithm=SHA-256, qop=auth, nc=00000001, cnonce="0a4f113b", opaque="5ccc"'
)


def test_credentials_fields() -> None:
    """Every digest parameter is read, unquoted, with its name in lower case."""
    c = parse_credentials(SENT)
    assert c.is_digest
    assert (c.username, c.realm, c.nonce, c.uri) == (
        "alice",
        "example.net",
        "abc/+==",
        "sip:example.net",
    )
    assert c.response == "6629fae49393a05397450978507c4ef1"
    assert (c.algorithm, c.qop, c.nc, c.cnonce) == ("SHA-256", "auth", "00000001", "0a4f113b")
    assert c.get("opaque") == "5ccc"


def test_credentials_render_round_trip() -> None:
    """Rendered credentials parse back to the same value; qop, nc, algorithm stay unquoted."""
    c = parse_credentials(SENT)
    text = c.render()
    assert "qop=auth" in text and "nc=00000001" in text and "algorithm=SHA-256" in text
    assert parse_credentials(text) == c


def test_algorithm_defaults_to_md5() -> None:
    """Without algorithm the digest is MD5 (RFC 7616 §3.4)."""
    assert parse_credentials('Digest username="a", nonce="n"').algorithm == "MD5"


def test_names_are_case_insensitive_and_lws_tolerated() -> None:
    """Parameter names are lower-cased; LWS around '=' and ',' is allowed."""
    c = parse_credentials('Digest  USERNAME = "bob" ,Realm="r"  ,  NC=00000002')
    assert (c.username, c.realm, c.nc) == ("bob", "r", "00000002")


def test_escaped_quotes_in_quoted_values() -> None:
    """A quoted-pair inside a quoted value is unescaped, and escaped again on render."""
    c = parse_credentials(r'Digest username="al\"ice\\", realm="r"')
    assert c.username == 'al"ice\\'
    assert parse_credentials(c.render()) == c


def test_unknown_scheme_parses() -> None:
    """A scheme nobody knows still parses (RFC 4475 regaut01)."""
    c = parse_credentials("NoOneKnowsThisScheme opaque-data=here")
    assert not c.is_digest
    assert c.get("opaque-data") == "here"


def test_challenge_fields_and_render() -> None:
    """A challenge quotes realm, nonce and qop, leaves algorithm and stale bare; parses back."""
    challenge = Challenge(
        "Digest",
        (
            ("realm", "example.net"),
            ("nonce", "n1"),
            ("algorithm", "SHA-256"),
            ("qop", "auth"),
            ("stale", "true"),
        ),
    )
    text = challenge.render()
    assert (
        text == 'Digest realm="example.net", nonce="n1", algorithm=SHA-256, qop="auth", stale=true'
    )
    parsed = parse_challenge(text)
    assert parsed == challenge
    assert parsed.stale and parsed.qop_options == ("auth",) and parsed.algorithm == "SHA-256"


def test_challenge_qop_list() -> None:
    """A quoted qop list offers each option."""
    assert parse_challenge('Digest realm="r", qop="auth,auth-int"').qop_options == (
        "auth",
        "auth-int",
    )


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        '"Digest" username="a"',
        "Digest username",
        'Digest username="a" realm="b"',
        'Digest username="a',
        "Digest =x",
        'Digest user name="a"',
        "Digest username=a b",
        'Digest username="a",,realm="b"',
        "Digest nonce=<x>",
    ],
)
def test_malformed_values_raise_parse_error(value: str) -> None:
    """Malformed authentication values raise ParseError naming the header."""
    with pytest.raises(ParseError) as caught:
        parse_credentials(value, "Proxy-Authorization")
    assert "Proxy-Authorization" in caught.value.reason


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_random_text_only_raises_parse_error(value: str) -> None:
    """Any text either parses or raises ParseError, nothing else."""
    with contextlib.suppress(ParseError):
        parse_auth(value, "Authorization")


_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
_value = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=0, max_size=20
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_token, _value), min_size=1, max_size=6))
def test_quoted_parameters_round_trip(params: list[tuple[str, str]]) -> None:
    """Credentials whose parameters are all quoted-string kinds survive render and parse."""
    names = ["username", "realm", "nonce", "uri", "response", "cnonce"]
    pairs = tuple((names[i % len(names)], value) for i, (_, value) in enumerate(params))
    from sipapp.sip import Credentials

    c = Credentials("Digest", pairs)
    assert parse_credentials(c.render()) == c
