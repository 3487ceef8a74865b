"""Tests for sipapp.sip.grammar: character classes, unescaping, quoting and parameters."""

from __future__ import annotations

import pytest

from sipapp.sip import ParseError, unescape
from sipapp.sip.grammar import (
    is_token,
    only,
    param,
    parse_params,
    quoted_string_end,
    render_params,
    replace_param,
    split_quoted,
)


def test_is_token_accepts_every_token_character() -> None:
    """Every character of the RFC 3261 token rule makes a token."""
    assert is_token("abcXYZ019-.!%*_+`'~")


@pytest.mark.parametrize("text", ["", "a b", "a;b", "a:b", 'a"', "a/b", "a@b", "\x00", "é"])
def test_is_token_rejects_separators(text: str) -> None:
    """Empty text, separators, controls and non-ASCII are not tokens."""
    assert not is_token(text)


def test_only_is_true_for_empty_text() -> None:
    """``only`` of nothing is True; one foreign character makes it False."""
    assert only("", "abc")
    assert only("abcabc", "abc")
    assert not only("abcd", "abc")


def test_unescape_decodes_hex_escapes() -> None:
    """%HH escapes decode in either case of hex digit."""
    assert unescape("sips%3Auser%40example.com") == "sips:user@example.com"
    assert unescape("%6c%6C") == "ll"


def test_unescape_keeps_nul_inside_the_text() -> None:
    """%00 becomes a NUL character and the text does not end there."""
    assert unescape("null-%00-null") == "null-\x00-null"
    assert unescape("%00%00") == "\x00\x00"


@pytest.mark.parametrize("text", ["%", "%4", "a%zz", "%%", "100%", "%G1"])
def test_unescape_leaves_broken_escapes_alone(text: str) -> None:
    """A '%' without two hex digits after it stays as written."""
    assert unescape(text) == text


def test_unescape_without_percent_returns_the_same_text() -> None:
    """Text without '%' comes back unchanged."""
    assert unescape("plain") == "plain"


def test_split_quoted_ignores_separators_in_quotes_and_brackets() -> None:
    """Commas inside quoted strings and angle brackets do not split."""
    value = '"Doe, John" <sip:a@b;x=1,2>, <sip:c@d>'
    assert split_quoted(value, ",") == ['"Doe, John" <sip:a@b;x=1,2>', " <sip:c@d>"]


def test_split_quoted_honours_escaped_quotes() -> None:
    """A backslash-escaped quote does not end the quoted string."""
    assert split_quoted('"a\\",b", c', ",") == ['"a\\",b"', " c"]


@pytest.mark.parametrize("value", ['"open, x', "<sip:a@b, c", '"a\\"'])
def test_split_quoted_rejects_unterminated_quotes_and_brackets(value: str) -> None:
    """An unterminated quoted string or '<' raises ParseError."""
    with pytest.raises(ParseError):
        split_quoted(value, ",")


def test_quoted_string_end_skips_quoted_pairs() -> None:
    """The end index is past the closing quote, escapes skipped."""
    assert quoted_string_end('"a\\"b" rest', 0) == 6
    with pytest.raises(ParseError):
        quoted_string_end('"never closed', 0)


def test_parse_params_keeps_order_case_and_valueless_params() -> None:
    """Names keep their case and order; a name without '=' has value None."""
    assert parse_params("Lr;Transport=TCP;x", "URI") == (
        ("Lr", None),
        ("Transport", "TCP"),
        ("x", None),
    )


def test_parse_params_allows_lws_around_equals_and_semicolons() -> None:
    """LWS around '=' and ';' is allowed and dropped."""
    assert parse_params(" tag = 1918 ;  q = 0.3 ", "To") == (("tag", "1918"), ("q", "0.3"))


def test_parse_params_accepts_quoted_and_ipv6_values() -> None:
    """Quoted-string values (with ';' inside) and IPv6 references are values."""
    assert parse_params('x="a;b c";received=[2001:db8::1]', "Via") == (
        ("x", '"a;b c"'),
        ("received", "[2001:db8::1]"),
    )


@pytest.mark.parametrize(
    "text", ["", " ", "a;;b", "=x", "a=", "a= ", "a=b c", 'a="x"y', "a b=c", 'a="open']
)
def test_parse_params_rejects_malformed_parameters(text: str) -> None:
    """Empty parameters, empty names or values and stray text raise ParseError."""
    with pytest.raises(ParseError):
        parse_params(text, "test")


def test_param_lookup_is_case_insensitive_on_names() -> None:
    """``param`` finds any case of the name and gives '' for a valueless one."""
    params = (("Branch", "z9hG4bK1"), ("rport", None))
    assert param(params, "branch") == "z9hG4bK1"
    assert param(params, "rport") == ""
    assert param(params, "ttl") is None


def test_render_params_round_trips() -> None:
    """Rendered parameters parse back to the same tuple."""
    params = (("lr", None), ("transport", "tcp"), ("x", '"q"'))
    text = render_params(params)
    assert text == ';lr;transport=tcp;x="q"'
    assert parse_params(text[1:], "URI") == params


def test_replace_param_replaces_in_place_and_drops_duplicates() -> None:
    """The first occurrence (any case) takes the value, later ones go."""
    params = (("a", "1"), ("RPORT", None), ("b", "2"), ("rport", "9"))
    assert replace_param(params, "rport", "5060") == (("a", "1"), ("RPORT", "5060"), ("b", "2"))


def test_replace_param_appends_a_missing_name() -> None:
    """A parameter not present is added at the end."""
    assert replace_param((("a", "1"),), "received", "127.0.0.1") == (
        ("a", "1"),
        ("received", "127.0.0.1"),
    )


def test_replace_param_matches_names_in_any_case() -> None:
    """Setting ``Received`` replaces an existing ``received``."""
    assert replace_param((("received", "127.0.0.1"),), "Received", "::1") == (("received", "::1"),)
