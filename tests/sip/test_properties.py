"""Property tests of the SIP message layer with Hypothesis.

Generated valid messages round-trip through ``to_bytes`` and ``parse_message``;
random bytes and byte-level mutations of every torture message only ever
raise ``ParseError``, whatever part of the API touches them. Each test is
bounded so that the module runs in seconds.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipapp.sip import (
    KNOWN_METHODS,
    MAGIC_COOKIE,
    ParseError,
    Request,
    Response,
    StreamFramer,
    Via,
    check_request,
    error_response,
    parse_message,
    parse_uri,
    parse_via,
    validate,
)
from sipapp.sip.grammar import ALPHANUM, TOKEN_CHARS
from sipapp.testing import build_request, build_response

BOUNDED = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TORTURE = Path(__file__).resolve().parents[1] / "data" / "torture"
CORPUS = [
    p.read_bytes()
    for folder in ("rfc4475", "rfc4475-derived", "rfc5118", "rfc5118-wire")
    for p in sorted((TORTURE / folder).iterdir())
]

# -- strategies for valid messages ----------------------------------------------------------

tokens = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=12)
lower_tokens = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10)
labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
domains = st.lists(labels, min_size=1, max_size=3).map(".".join)
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.sampled_from(["::1", "2001:db8::10", "::ffff:127.0.0.1", "fe80::1:2:3"])
hosts = st.one_of(domains, ipv4, ipv6)
ports = st.one_of(st.none(), st.integers(0, 65535))
escapes = st.sampled_from(["%41", "%00", "%20", "%3a", "%40"])
users = st.lists(
    st.one_of(st.text(alphabet=ALPHANUM + "-_.!~*'()&=+$,;?/", min_size=1, max_size=6), escapes),
    min_size=1,
    max_size=4,
).map("".join)
uri_params = st.lists(
    st.tuples(lower_tokens, st.one_of(st.none(), lower_tokens)),
    max_size=3,
    unique_by=lambda p: p[0],
)
methods = st.one_of(st.sampled_from(sorted(KNOWN_METHODS)), tokens)
#: Header text: printable, no CR/LF, and no leading or trailing LWS (the parser trims it).
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E)
    | st.sampled_from(" \u00e9\u4e2d"),
    max_size=40,
).map(lambda t: t.strip(" "))
bodies = st.binary(max_size=300)


def host_text(host: str) -> str:
    """A host as written in a URI or Via."""
    return f"[{host}]" if ":" in host else host


@st.composite
def sip_uris(draw: st.DrawFn) -> str:
    """A valid sip/sips URI as text."""
    scheme = draw(st.sampled_from(["sip", "sips"]))
    user = draw(st.one_of(st.none(), users))
    host = host_text(draw(hosts))
    port = draw(ports)
    params = draw(uri_params)
    text = f"{scheme}:"
    if user is not None:
        text += f"{user}@"
    text += host if port is None else f"{host}:{port}"
    text += "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)
    return text


request_uris = st.one_of(
    sip_uris(),
    st.sampled_from(["tel:+15555550100", "tel:+1-201-555-0123;phone-context=example.com"]),
)


@st.composite
def vias(draw: st.DrawFn) -> Via:
    """A valid Via value."""
    params: list[tuple[str, str | None]] = [("branch", MAGIC_COOKIE + draw(tokens))]
    if draw(st.booleans()):
        params.append(("rport", draw(st.one_of(st.none(), st.integers(1, 65535).map(str)))))
    if draw(st.booleans()):
        params.append(("received", draw(st.one_of(ipv4, ipv6))))
    return Via(
        draw(st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "WS"])),
        draw(hosts),
        draw(ports),
        tuple(params),
    )


extra_headers = st.lists(st.tuples(st.builds(lambda t: "X-" + t, tokens), header_text), max_size=5)


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, dict[str, object]]:
    """A valid request's bytes and the fields it was built from."""
    method = draw(methods)
    uri = draw(request_uris)
    via_list = draw(st.lists(vias(), min_size=1, max_size=4))
    fields: dict[str, object] = {
        "method": method,
        "uri": uri,
        "vias": via_list,
        "cseq": draw(st.integers(0, 2**32 - 1)),
        "max_forwards": draw(st.integers(0, 255)),
        "call_id": draw(tokens) + "@" + draw(domains),
        "from_tag": draw(tokens),
        "from_uri": draw(sip_uris()),
        "extra": draw(extra_headers),
        "body": draw(bodies),
    }
    comma = draw(st.booleans())
    via_lines = (
        [", ".join(v.render() for v in via_list)] if comma else [v.render() for v in via_list]
    )
    data = build_request(
        method,
        uri,
        body=fields["body"],  # type: ignore[arg-type]
        headers=fields["extra"],  # type: ignore[arg-type]
        via=via_lines,
        cseq=f"{fields['cseq']} {method}",
        max_forwards=str(fields["max_forwards"]),
        call_id=str(fields["call_id"]),
        from_=f"<{fields['from_uri']}>;tag={fields['from_tag']}",
    )
    return data, fields


reasons = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)
    | st.sampled_from("\u00e9\u4e2d"),
    max_size=30,
)


def check_request_fields(message: Request | Response, fields: dict[str, object]) -> None:
    """The parsed message shows every field it was built from."""
    assert isinstance(message, Request)
    assert message.method == fields["method"]
    assert message.ruri == fields["uri"]
    assert message.uri == parse_uri(str(fields["uri"]))
    assert message.via == fields["vias"]
    assert message.top_via == fields["vias"][0]  # type: ignore[index,unused-ignore]
    assert message.cseq.number == fields["cseq"]
    assert message.cseq.method == fields["method"]
    assert message.max_forwards == fields["max_forwards"]
    assert message.call_id == fields["call_id"]
    assert message.from_.tag == fields["from_tag"]
    assert message.from_.uri == parse_uri(str(fields["from_uri"]))
    for name, value in fields["extra"]:  # type: ignore[attr-defined]
        assert value in message.get_all(name)
    assert message.body == fields["body"]


# -- round trips -------------------------------------------------------------------------


@BOUNDED
@given(requests())
def test_generated_requests_parse_validate_and_re_emit(
    built: tuple[bytes, dict[str, object]],
) -> None:
    """A generated request parses to its fields, validates and re-emits byte for byte."""
    data, fields = built
    message = parse_message(data)
    check_request_fields(message, fields)
    validate(message)
    assert message.to_bytes() == data


@BOUNDED
@given(requests(), vias(), header_text)
def test_changes_survive_a_round_trip(
    built: tuple[bytes, dict[str, object]], new_via: Via, value: str
) -> None:
    """After push_via, set_top_via and set, the re-parsed message shows the changes."""
    data, fields = built
    message = parse_message(data)
    old = message.via
    message.push_via(new_via)
    message.set("Subject", value)
    message.set("Max-Forwards", "7")
    again = parse_message(message.to_bytes())
    assert again.via == [new_via, *old]
    assert again.get("subject") == value
    assert again.max_forwards == 7
    assert again.body == fields["body"]
    assert again.call_id == fields["call_id"]
    stamped = again.top_via.with_param("received", "127.0.0.1")
    again.set_top_via(stamped)
    third = parse_message(again.to_bytes())
    assert third.via == [stamped, *old]
    assert third.pop_via() == stamped
    assert parse_message(third.to_bytes()).via == old


@BOUNDED
@given(requests(), st.integers(100, 699), reasons, bodies)
def test_generated_responses_round_trip(
    built: tuple[bytes, dict[str, object]], status: int, reason: str, body: bytes
) -> None:
    """A response built for a generated request parses to its status, reason, Vias and body."""
    data, fields = built
    response_data = build_response(status, reason, request=data, body=body)
    response = parse_message(response_data)
    assert isinstance(response, Response)
    assert (response.status, response.reason) == (status, reason)
    assert response.via == fields["vias"]
    assert response.cseq.number == fields["cseq"]
    assert response.body == body
    validate(response)
    assert response.to_bytes() == response_data
    response.pop_via()
    assert parse_message(response.to_bytes()).via == fields["vias"][1:]  # type: ignore[index,unused-ignore]


@BOUNDED
@given(vias())
def test_via_render_parse_round_trip(via: Via) -> None:
    """Every generated Via renders to text that parses back to it."""
    assert parse_via(via.render()) == via


@BOUNDED
@given(vias(), st.sampled_from([" ", "  ", "\t", " \t "]))
def test_via_with_lws_parses_like_the_canonical_form(via: Via, ws: str) -> None:
    """LWS around '/', ';' and '=' (and before the sent-by) does not change the Via."""
    text = via.render()
    protocol, _, rest = text.partition(" ")
    spaced_protocol = protocol.replace("/", f"{ws}/{ws}")
    spaced_rest = rest.replace(";", f"{ws};{ws}").replace("=", f"{ws}={ws}")
    assert parse_via(f"{spaced_protocol}{ws} {spaced_rest}") == via


@BOUNDED
@given(sip_uris())
def test_uri_render_parse_round_trip(text: str) -> None:
    """Every generated URI renders back to the same text (hosts in lower case)."""
    uri = parse_uri(text)
    assert uri.render() == text
    assert parse_uri(uri.render()) == uri


@BOUNDED
@given(requests(), st.lists(st.integers(0, 4000), max_size=6))
def test_stream_framing_of_generated_messages(
    built: tuple[bytes, dict[str, object]], cuts: list[int]
) -> None:
    """However a stream of messages and pings is cut, the same items come out."""
    data, _ = built
    stream = data + b"\r\n\r\n" + data
    framer = StreamFramer()
    out: list[bytes] = []
    last = 0
    for cut in sorted(c % (len(stream) + 1) for c in cuts):
        out += framer.feed(stream[last:cut])
        last = cut
    out += framer.feed(stream[last:])
    assert out == [data, b"", data]


# -- hostile input --------------------------------------------------------------------------


def exercise(data: bytes) -> None:
    """Run ``data`` through every entry point; anything but ParseError fails the test."""
    for datagram in (True, False):
        try:
            message = parse_message(data, datagram=datagram)
        except ParseError as e:
            answer_check(data, e)
            continue
        for view in ("top_via", "via", "contacts", "routes", "record_routes", "from_", "to"):
            with contextlib.suppress(ParseError):
                getattr(message, view)
        try:
            validate(message)
        except ParseError as e:
            answer_check(data, e)
        if isinstance(message, Request):
            with contextlib.suppress(ParseError):
                check_request(message)
        with contextlib.suppress(ParseError):
            message.push_via(Via("UDP", "127.0.0.1", 5060, (("branch", "z9hG4bKx"),)))
            again = parse_message(message.to_bytes())
            assert again.top_via.branch == "z9hG4bKx"
    framer = StreamFramer(max_size=4096)
    with contextlib.suppress(ParseError):
        for i in range(0, len(data), 97):
            framer.feed(data[i : i + 97])


def answer_check(data: bytes, error: ParseError) -> None:
    """An error answer, when there is one, is a parseable response with a one-line reason."""
    answer = error_response(data, error)
    if answer is None:
        return
    response = parse_message(answer)
    assert isinstance(response, Response)
    assert response.status == error.status
    assert all(32 <= ord(c) < 127 for c in response.reason)


mutation = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "truncate"]),
    st.floats(0, 1),
    st.sampled_from(list(b' \t\r\n:;,<>"\\%@[]=/0\x00\xff') + list(range(256))),
)


def mutate(data: bytes, ops: list[tuple[str, float, int]]) -> bytes:
    """Apply byte-level flips, inserts, deletes and truncations."""
    out = bytearray(data)
    for kind, where, octet in ops:
        at = int(where * len(out))
        if kind == "flip" and out:
            out[min(at, len(out) - 1)] ^= octet or 1
        elif kind == "insert":
            out[at:at] = bytes([octet])
        elif kind == "delete":
            del out[at : at + 1 + octet % 8]
        else:
            del out[at:]
    return bytes(out)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(CORPUS), st.lists(mutation, min_size=1, max_size=5))
def test_mutated_corpus_raises_only_parse_error(
    data: bytes, ops: list[tuple[str, float, int]]
) -> None:
    """Flipped, inserted, deleted and truncated octets of torture messages raise only ParseError."""
    exercise(mutate(data, ops))


@BOUNDED
@given(st.binary(max_size=2000))
def test_random_bytes_raise_only_parse_error(data: bytes) -> None:
    """Arbitrary octets raise only ParseError."""
    exercise(data)


@BOUNDED
@given(
    st.sampled_from([b"INVITE sip:bob@example.com SIP/2.0\r\n", b"SIP/2.0 200 OK\r\n"]),
    st.lists(
        st.sampled_from(
            [
                b"Via: ",
                b"v:",
                b"SIP/2.0/UDP ",
                b"127.0.0.1",
                b";branch=",
                b"z9hG4bK",
                b"To: ",
                b"From: ",
                b"Contact: ",
                b"Route: ",
                b"CSeq: ",
                b"Call-ID: ",
                b"Content-Length: ",
                b"l:",
                b"<sip:",
                b"@",
                b">",
                b";tag=",
                b'"',
                b",",
                b";",
                b"\r\n",
                b"\r\n ",
                b"\r\n\r\n",
                b"\n",
                b"[",
                b"]",
                b":",
                b"%00",
                b"*",
                b"5",
                b"99999999999",
            ]
        ),
        max_size=40,
    ),
)
def test_sip_shaped_noise_raises_only_parse_error(start: bytes, pieces: list[bytes]) -> None:
    """Random sequences of SIP tokens after a valid start line raise only ParseError."""
    exercise(start + b"".join(pieces))
