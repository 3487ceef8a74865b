"""The RFC 4475 and RFC 5118 torture messages against the parser, validation and checks.

``tests/data/torture/EXPECTED.tsv`` gives each message's verdict; this module
holds every verdict to account: valid messages parse, validate and expose the
fields the RFC names; invalid ones fail with the status the RFC asks for and
get an answer naming the problem; no message raises anything but ParseError.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sipapp.sip import (
    KNOWN_METHODS,
    FramingError,
    ParseError,
    Rejection,
    Request,
    Response,
    SipUri,
    StreamFramer,
    Via,
    check_request,
    error_response,
    parse_credentials,
    parse_message,
    unescape,
    validate,
)

TORTURE = Path(__file__).resolve().parents[1] / "data" / "torture"


# -- the corpus ---------------------------------------------------------------------


@functools.cache
def verified_files() -> dict[str, str]:
    """Every corpus file with its SHA-256, after checking them all against SHA256SUMS."""
    sums: dict[str, str] = {}
    for line in (TORTURE / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        sums[name.lstrip("*")] = digest
    bad = [
        name
        for name, digest in sums.items()
        if hashlib.sha256((TORTURE / name).read_bytes()).hexdigest() != digest
    ]
    if bad:
        raise AssertionError(f"torture corpus files changed: {bad}")
    return sums


def load(relative: str) -> bytes:
    """The bytes of a corpus file, checksums verified first."""
    assert relative in verified_files(), f"{relative} is not in SHA256SUMS"
    return (TORTURE / relative).read_bytes()


def expected_rows() -> list[dict[str, str]]:
    """The rows of EXPECTED.tsv."""
    with (TORTURE / "EXPECTED.tsv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


ROWS = {row["name"]: row for row in expected_rows()}


def wire_file(name: str) -> str:
    """The file to parse for row ``name``: the CRLF wire variant for RFC 5118 messages."""
    file = ROWS[name]["file"]
    if file.startswith("rfc5118/"):
        return f"rfc5118-wire/{file.removeprefix('rfc5118/')}.dat"
    return file


def data_of(name: str) -> bytes:
    """The wire bytes of row ``name``."""
    return load(wire_file(name))


def names(*verdicts: str) -> list[str]:
    """Row names with one of ``verdicts``."""
    return [name for name, row in ROWS.items() if row["verdict"] in verdicts]


def request(name: str) -> Request:
    """Row ``name`` parsed, insisting on a request."""
    message = parse_message(data_of(name))
    assert isinstance(message, Request)
    return message


def response(name: str) -> Response:
    """Row ``name`` parsed, insisting on a response."""
    message = parse_message(data_of(name))
    assert isinstance(message, Response)
    return message


def sip_uri(uri: object) -> SipUri:
    """Insist on a SIP URI."""
    assert isinstance(uri, SipUri)
    return uri


ALL_FILES = sorted(
    str(p.relative_to(TORTURE))
    for folder in ("rfc4475", "rfc4475-derived", "rfc5118", "rfc5118-wire")
    for p in (TORTURE / folder).iterdir()
)

#: What the server does with each invalid or semantically bad message: the
#: status and a word the reason phrase must contain.
INVALID: dict[str, tuple[int, str]] = {
    "badinv01": (400, "Via"),
    "scalar02": (400, "CSeq"),
    "scalarlg": (400, "CSeq"),
    "quotbal": (400, "quoted string"),
    "ltgtruri": (400, "Request-URI"),
    "lwsruri": (400, "Request-Line"),
    "lwsstart": (400, "Request-Line"),
    "trws": (400, "Request-Line"),
    "escruri": (400, "Request-URI"),
    "baddate": (400, "Date"),
    "regbadct": (400, "Contact"),
    "badaspec": (400, "To"),
    "baddn": (400, "header section"),
    "badvers": (505, "version"),
    "mismatch01": (400, "CSeq method"),
    "mismatch02": (501, "CSeq method"),
    "bigcode": (400, "status code"),
    "ipv6-bad": (400, "Request-URI"),
    "clerr": (400, "Content-Length"),
    "ncl": (400, "Content-Length"),
    "mcl01": (400, "Content-Length"),
    "insuf": (400, "missing"),
    "multi01": (400, "multiple"),
}

#: check_request's verdict on the semantically bad messages that validate.
CHECKED: dict[str, Rejection | None] = {
    "badbranch": Rejection(400, "Bad Request - branch is only the magic cookie"),
    "unkscm": Rejection(416),
    "novelsc": Rejection(416),
    "bext01": Rejection(
        420, None, (("Unsupported", "noProxiesSupportThis, norDoAnyProxiesSupportThis"),)
    ),
    "invut": None,
    "unksm2": None,
    "sdp01": None,
    "port-ambiguous": None,
}

#: Semantically bad messages that are responses: they parse and validate.
RESPONSES_THAT_PASS = {"bcast"}


def test_corpus_checksums() -> None:
    """All 79 files match SHA256SUMS, and every EXPECTED.tsv file is among them."""
    sums = verified_files()
    assert len(sums) == 79
    for name in ROWS:
        assert ROWS[name]["file"] in sums
        if ROWS[name]["file"].startswith("rfc5118/"):
            assert wire_file(name) in sums
    assert "rfc4475-derived/baddn.dat" in sums


def test_every_row_has_an_expectation_here() -> None:
    """Each EXPECTED.tsv row is covered by exactly one group of tests in this module."""
    known = {"valid", "valid-liberal", "invalid-parse", "invalid-framing"}
    known |= {"valid-parse-but-semantically-bad", "unreferenced"}
    assert {row["verdict"] for row in ROWS.values()} <= known
    assert len(ROWS) == 62
    bad = set(names("invalid-parse", "invalid-framing", "valid-parse-but-semantically-bad"))
    assert bad == set(INVALID) | set(CHECKED) | RESPONSES_THAT_PASS
    assert not set(CHECKED) & set(INVALID)


# -- nothing but ParseError ---------------------------------------------------------------


def _views(message: Request | Response) -> list[Callable[[], Any]]:
    """Every lazily parsed view and check of ``message``, as calls."""
    views: list[Callable[[], Any]] = [
        lambda: validate(message),
        lambda: message.top_via,
        lambda: message.via,
        lambda: message.contacts,
        lambda: message.routes,
        lambda: message.record_routes,
        lambda: message.from_,
        lambda: message.to,
        lambda: message.call_id,
        lambda: message.cseq,
        lambda: message.max_forwards,
        message.to_bytes,
    ]
    if isinstance(message, Request):
        views += [lambda: message.uri, lambda: check_request(message)]
    return views


@pytest.mark.parametrize("file", ALL_FILES)
def test_no_torture_message_raises_anything_but_parse_error(file: str) -> None:
    """Parsing, validating, checking, answering and stream-framing raise only ParseError."""
    data = load(file)
    for datagram in (True, False):
        try:
            message = parse_message(data, datagram=datagram)
        except ParseError as e:
            answer = error_response(data, e)
            if answer is not None:
                assert isinstance(parse_message(answer), Response)
            continue
        for view in _views(message):
            try:
                view()
            except ParseError as e:
                answer = error_response(data, e)
                if answer is not None:
                    assert isinstance(parse_message(answer), Response)
    framer = StreamFramer()
    with contextlib.suppress(ParseError):
        for message_bytes in framer.feed(data):
            if message_bytes:
                with contextlib.suppress(ParseError):
                    parse_message(message_bytes, datagram=False)


@pytest.mark.parametrize("file", sorted(f for f in ALL_FILES if f.startswith("rfc5118/")))
def test_raw_lf_only_rfc5118_files_raise_only_parse_error(file: str) -> None:
    """The archive's LF-only files either parse like their wire twins or raise ParseError."""
    data = load(file)
    assert b"\r\n" not in data
    try:
        message = parse_message(data)
        validate(message)
    except ParseError:
        return
    twin = parse_message(load(f"rfc5118-wire/{file.removeprefix('rfc5118/')}.dat"))
    assert message.get_all("via") == twin.get_all("via")
    assert message.start_line() == twin.start_line()


# -- valid and valid-liberal -------------------------------------------------------------


@pytest.mark.parametrize("name", names("valid", "valid-liberal"))
def test_valid_messages_parse_validate_and_re_emit(name: str) -> None:
    """Valid messages parse, validate, pass the proxy checks (but zeromf) and re-emit as sent."""
    data = data_of(name)
    message = parse_message(data)
    validate(message)
    if isinstance(message, Request):
        message.uri  # noqa: B018
        expected = Rejection(483) if name == "zeromf" else None
        assert check_request(message) == expected
    message.via  # noqa: B018
    if name == "dblreq":
        assert data.startswith(message.to_bytes())
    else:
        assert message.to_bytes() == data


def test_wsinv_fields() -> None:
    """Folded, spaced and compact headers read right; unknown headers re-emit unchanged."""
    message = request("wsinv")
    assert message.ruri == "sip:vivekg@chair-dnrc.example.com;unknownparam"
    assert sip_uri(message.uri).param("unknownparam") == ""
    assert message.to.tag == "1918181833n"
    assert message.from_.tag == "98asjd8"
    assert message.from_.display == '"J Rosenberg \\\\\\""'
    assert message.max_forwards == 68
    assert (message.cseq.number, message.cseq.method) == (9, "INVITE")
    assert message.call_id == "wsinv.ndaksdj@192.0.2.1"
    vias = message.via
    assert [(v.transport, v.host, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert message.top_via == vias[0]
    assert message.get("s") == ""
    assert message.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert message.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    route = sip_uri(message.routes[0].uri)
    assert route.lr
    assert route.params == (("lr", None), ("unknownwith", "value"), ("unknown-no-value", None))
    contacts = message.contacts
    assert isinstance(contacts, list) and len(contacts) == 1
    assert contacts[0].display == '"Quoted string \\"\\""'
    assert contacts[0].params == (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33"))
    assert len(message.body) == 150
    message.push_via(Via("UDP", "127.0.0.1", 5060, (("branch", "z9hG4bKproxy"),)))
    message.set("Max-Forwards", "67")
    out = message.to_bytes()
    assert b"\r\nUnknownHeaderWithUnusualValue: ;;,,;;,;\r\n" in out
    again = parse_message(out)
    assert [v.branch for v in again.via] == [
        "z9hG4bKproxy",
        "390skdjuw",
        "z9hG4bK9ikj8",
        "z9hG4bK30239",
    ]
    assert again.max_forwards == 67
    assert again.body == message.body


def test_intmeth_method_kept_verbatim() -> None:
    """The extension method is every token character, and it is not a known method."""
    message = request("intmeth")
    assert message.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert message.method not in KNOWN_METHODS
    assert message.cseq.method == message.method
    uri = sip_uri(message.uri)
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert message.to.display == '"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f"'
    assert message.from_.tag == "_token~1'+`*%!-."
    assert message.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"


def test_esc01_escapes_kept_and_unescaped_on_request() -> None:
    """The Request-URI user stays escaped and decodes to a sips URI."""
    message = request("esc01")
    uri = sip_uri(message.uri)
    assert uri.user == "sips%3Auser%40example.com"
    assert unescape(uri.user) == "sips:user@example.com"
    assert uri.host == "example.net"
    assert unescape(sip_uri(message.to.uri).user or "") == "user"
    assert unescape(sip_uri(message.from_.uri).user or "") == "I have spaces"
    contacts = message.contacts
    assert isinstance(contacts, list)
    contact = sip_uri(contacts[0].uri)
    assert contact.user == "cal%6Cer" and unescape(contact.user) == "caller"
    assert contact.params == (("%6C%72", None), ("n%61me", "v%61lue%25%34%31"))


def test_escnull_two_distinct_contacts_with_nul() -> None:
    """%00 user parts stay distinct and unescape without truncation."""
    message = request("escnull")
    contacts = message.contacts
    assert isinstance(contacts, list) and len(contacts) == 2
    users = [sip_uri(c.uri).user or "" for c in contacts]
    assert users == ["%00", "%00%00"]
    assert [unescape(u) for u in users] == ["\x00", "\x00\x00"]
    assert unescape(sip_uri(message.to.uri).user or "") == "null-\x00-null"


def test_esc02_method_verbatim_and_two_contacts() -> None:
    """RE%47IST%45R is not REGISTER; C%6Fntact is not Contact."""
    message = request("esc02")
    assert message.method == "RE%47IST%45R"
    assert message.method not in KNOWN_METHODS
    assert message.method != "REGISTER"
    contacts = message.contacts
    assert isinstance(contacts, list)
    assert [sip_uri(c.uri).user for c in contacts] == ["alias1", "alias3"]
    assert message.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert message.to.display == '"%Z%45"'


def test_lwsdisp_display_name_without_space() -> None:
    """``caller<sip:...>`` is accepted (RFC 4475 §3.1.1.6)."""
    message = request("lwsdisp")
    assert message.from_.display == "caller"
    assert message.from_.tag == "323"


def test_longreq_many_vias_and_long_values() -> None:
    """Long names, values and many Via values parse."""
    message = request("longreq")
    assert len(message.via) == 34
    assert message.top_via.host == "sip33.example.com"
    assert message.to.display is not None and "extremeextreme" in message.to.display
    to_uri = sip_uri(message.to.uri)
    assert to_uri.port == 6000
    assert to_uri.param("unknownparam1") is not None
    assert message.from_.tag is not None and len(message.from_.tag) > 100
    assert message.call_id.startswith("longreq.onereally")


def test_dblreq_trailing_request_is_ignored() -> None:
    """Octets after the REGISTER's empty body are ignored and never forwarded."""
    data = data_of("dblreq")
    message = request("dblreq")
    assert message.method == "REGISTER"
    assert message.body == b""
    out = message.to_bytes()
    assert b"INVITE" not in out
    assert len(data) - len(out) == 450
    message.push_via(Via("UDP", "127.0.0.1", 5060, (("branch", "z9hG4bKfwd"),)))
    forwarded = message.to_bytes()
    assert b"INVITE" not in forwarded and forwarded.endswith(b"Content-Length: 0\r\n\r\n")


def test_semiuri_user_part_with_semicolon() -> None:
    """The user part is ``user;par=u%40example.net``."""
    uri = sip_uri(request("semiuri").uri)
    assert uri.user == "user;par=u%40example.net"
    assert unescape(uri.user) == "user;par=u@example.net"
    assert uri.host == "example.com"
    assert uri.params == ()


def test_transports_via_transports() -> None:
    """Every transport token is read, unknown ones included."""
    assert [v.transport for v in request("transports").via] == [
        "UDP",
        "SCTP",
        "TLS",
        "UNKNOWN",
        "TCP",
    ]


def test_mpart01_binary_body_framed_by_content_length() -> None:
    """The multipart body is 553 octets, NUL and bare CR/LF included."""
    message = request("mpart01")
    assert message.method == "MESSAGE"
    assert len(message.body) == 553
    assert b"\x00" in message.body
    assert message.to_bytes() == data_of("mpart01")


def test_unreason_utf8_reason_phrase() -> None:
    """A non-ASCII reason phrase is decoded."""
    message = response("unreason")
    assert message.status == 200
    assert message.reason.startswith("= 2**3 * 5**2 ")
    assert message.reason.endswith("\u043f\u0440\u043e\u0441\u0442\u043e\u0435")
    assert len(message.body) == 154


def test_noreason_empty_reason_phrase() -> None:
    """``SIP/2.0 100 `` has an empty reason phrase."""
    message = response("noreason")
    assert (message.status, message.reason) == (100, "")


def test_inv2543_body_is_the_rest_of_the_datagram() -> None:
    """No Content-Length: the body is what follows the head; no branch, no tag, no Max-Forwards."""
    data = data_of("inv2543")
    message = request("inv2543")
    assert not message.has("content-length")
    assert message.body == data[data.index(b"\r\n\r\n") + 4 :]
    assert message.body.startswith(b"v=0\r\n")
    assert message.top_via.branch is None
    assert message.from_.tag is None
    assert message.max_forwards is None
    message.set("Max-Forwards", "70")
    again = parse_message(message.to_bytes())
    assert again.get("content-length") == str(len(message.body))
    assert again.body == message.body


def test_regaut01_unknown_authorization_scheme() -> None:
    """The Authorization header is kept as it came; ``Content-Length:0`` works."""
    message = request("regaut01")
    assert message.get("authorization") == "NoOneKnowsThisScheme opaque-data=here"
    assert message.body == b""
    credentials = parse_credentials(message.get("authorization") or "")
    assert (credentials.scheme, credentials.is_digest) == ("NoOneKnowsThisScheme", False)
    assert credentials.get("opaque-data") == "here"


def test_zeromf_max_forwards_zero_is_483() -> None:
    """Max-Forwards 0 validates, and check_request answers 483."""
    message = request("zeromf")
    assert message.max_forwards == 0
    assert check_request(message) == Rejection(483)


def test_cparam01_unknownparam_is_a_header_param() -> None:
    """In an addr-spec Contact, ``unknownparam`` is a contact-param, not a URI param."""
    contacts = request("cparam01").contacts
    assert isinstance(contacts, list)
    uri = sip_uri(contacts[0].uri)
    assert uri.params == ()
    assert uri.render() == "sip:+19725552222@gw1.example.net"
    assert contacts[0].param("unknownparam") == ""


def test_cparam02_unknownparam_is_a_uri_param() -> None:
    """Inside '<>', ``unknownparam`` belongs to the URI."""
    contacts = request("cparam02").contacts
    assert isinstance(contacts, list)
    uri = sip_uri(contacts[0].uri)
    assert uri.param("unknownparam") == ""
    assert contacts[0].params == ()


def test_regescrt_contact_keeps_escaped_route_header() -> None:
    """The Contact URI keeps its escaped Route header (compact ``M:``, ``L:0``)."""
    contacts = request("regescrt").contacts
    assert isinstance(contacts, list)
    uri = sip_uri(contacts[0].uri)
    assert uri.headers == (("Route", "%3Csip:sip.example.com%3E"),)
    assert uri.render() == "sip:user@example.com?Route=%3Csip:sip.example.com%3E"


def test_ipv6_good_hosts() -> None:
    """IPv6 references in Request-URI, Via and Contact."""
    message = request("ipv6-good")
    assert sip_uri(message.uri).host == "2001:db8::10"
    assert message.top_via.host == "2001:db8::9:1"
    contacts = message.contacts
    assert isinstance(contacts, list)
    assert sip_uri(contacts[0].uri).host == "2001:db8::1"


def test_port_unambiguous_host_and_port() -> None:
    """``[2001:db8::10]:5070`` is host and port."""
    uri = sip_uri(request("port-unambiguous").uri)
    assert (uri.host, uri.port) == ("2001:db8::10", 5070)


def test_port_ambiguous_is_all_host() -> None:
    """``[2001:db8::10:5070]`` is an address with no port."""
    uri = sip_uri(request("port-ambiguous").uri)
    assert (uri.host, uri.port) == ("2001:db8::10:5070", None)


def test_via_received_with_and_without_delimiters() -> None:
    """received reads the same with and without '[' ']' (RFC 5118 §4.5)."""
    assert request("via-received-param-with-delim").top_via.received == "2001:db8::9:255"
    assert request("via-received-param-no-delim").top_via.received == "2001:db8::9:255"


def test_ipv4_mapped_ipv6_addresses() -> None:
    """IPv4-mapped IPv6 in Via (with port) and Contact."""
    message = request("ipv4-mapped-ipv6")
    assert [(v.host, v.port) for v in message.via] == [
        ("::ffff:192.0.2.10", 19823),
        ("::ffff:192.0.2.2", None),
    ]
    contacts = message.contacts
    assert isinstance(contacts, list)
    assert sip_uri(contacts[0].uri).host == "::ffff:192.0.2.2"
    assert len(message.body) == 245


def test_mult_ip_in_header() -> None:
    """A Via list mixing IPv4 and IPv6, received IPv4 on an IPv6 Via."""
    vias = request("mult-ip-in-header").via
    assert [(v.transport, v.host, v.port) for v in vias] == [
        ("UDP", "2001:db8::9:1", 6050),
        ("UDP", "192.0.2.1", None),
        ("TCP", "2001:db8::9:255", None),
    ]
    assert vias[2].received == "192.0.2.200"


@pytest.mark.parametrize(
    ("name", "host"),
    [
        ("ipv6-bug-abnf-3-colons", "2001:db8:::192.0.2.1"),
        ("ipv6-correct-abnf-2-colons", "2001:db8::192.0.2.1"),
    ],
)
def test_ipv6_with_embedded_ipv4(name: str, host: str) -> None:
    """The RFC 2373-style extra colon is tolerated (RFC 5118 §4.10)."""
    message = request(name)
    assert sip_uri(message.uri).host == host
    assert sip_uri(message.to.uri).host == host


@pytest.mark.parametrize(("name", "length"), [("ipv6-in-sdp", 251), ("mult-ip-in-sdp", 189)])
def test_ipv6_in_sdp_bodies(name: str, length: int) -> None:
    """SDP bodies with IPv6 addresses are framed by the corrected Content-Length."""
    body = request(name).body
    assert len(body) == length
    assert b"IN IP6" in body


# -- invalid -----------------------------------------------------------------------------


def failure(data: bytes) -> ParseError:
    """The ParseError that parse_message or validate raises for ``data``."""
    try:
        validate(parse_message(data))
    except ParseError as e:
        return e
    raise AssertionError("no ParseError raised")


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_messages_fail_with_the_expected_status(name: str) -> None:
    """parse_message or validate raises ParseError with the status the RFC asks for."""
    status, problem = INVALID[name]
    error = failure(data_of(name))
    assert error.status == status
    assert problem.lower() in error.reason.lower()


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_requests_are_answered_naming_the_problem(name: str) -> None:
    """The error response parses back with the status and a reason naming the problem."""
    data = data_of(name)
    status, problem = INVALID[name]
    error = failure(data)
    answer = error_response(data, error)
    if data.startswith(b"SIP/"):
        assert answer is None
        return
    assert answer is not None
    reply = parse_message(answer)
    assert isinstance(reply, Response)
    assert reply.status == status
    assert problem.lower() in reply.reason.lower()
    assert reply.reason == error.reason
    assert b"\r" not in reply.reason.encode() and b"\n" not in reply.reason.encode()
    vias = raw_via_lines(data)
    assert vias
    for line in vias:
        assert line in answer


def raw_via_lines(data: bytes) -> list[bytes]:
    """The Via header lines of raw message bytes, as written."""
    head = data.split(b"\r\n\r\n", 1)[0]
    return [
        line
        for line in head.split(b"\r\n")[1:]
        if line.partition(b":")[0].strip().lower() in (b"via", b"v")
    ]


@pytest.mark.parametrize("name", ["scalarlg", "bigcode"])
def test_invalid_responses_raise_and_are_not_answered(name: str) -> None:
    """Bad responses fail to parse or validate and are simply dropped."""
    data = data_of(name)
    assert data.startswith(b"SIP/2.0 ")
    error = failure(data)
    assert error_response(data, error) is None


@pytest.mark.parametrize("file", ["rfc4475/baddn.dat", "rfc4475-derived/baddn.dat"])
def test_baddn_archive_and_derived_both_rejected(file: str) -> None:
    """The archive file (unterminated) and the fixed one (bad display names) both fail with 400."""
    data = load(file)
    error = failure(data)
    assert error.status == 400
    answer = error_response(data, error)
    assert answer is not None
    reply = parse_message(answer)
    assert isinstance(reply, Response) and reply.status == 400


def test_derived_baddn_fails_on_the_display_name() -> None:
    """With its blank line restored, baddn fails for what the RFC means: the display name."""
    error = failure(load("rfc4475-derived/baddn.dat"))
    assert "display name" in error.reason


@pytest.mark.parametrize("name", names("invalid-framing"))
def test_invalid_framing_over_a_datagram(name: str) -> None:
    """Over UDP a bad Content-Length is a FramingError answered with 400."""
    data = data_of(name)
    with pytest.raises(FramingError) as info:
        parse_message(data)
    assert info.value.status == 400
    answer = error_response(data, info.value)
    assert answer is not None
    reply = parse_message(answer)
    assert isinstance(reply, Response) and reply.status == 400
    assert "Content-Length" in reply.reason


def test_clerr_over_a_stream_waits_for_more_data() -> None:
    """Over TCP a Content-Length past the data is no error: the framer waits."""
    data = data_of("clerr")
    framer = StreamFramer()
    assert framer.feed(data) == []
    assert framer.pending == data


@pytest.mark.parametrize("name", ["ncl", "mcl01"])
def test_bad_content_length_over_a_stream_is_a_framing_error(name: str) -> None:
    """Over TCP a negative or conflicting Content-Length breaks the stream."""
    data = data_of(name)
    with pytest.raises(FramingError) as info:
        StreamFramer().feed(data)
    assert info.value.data is not None and data.startswith(info.value.data)
    assert error_response(info.value.data, info.value) is not None


# -- valid to parse, semantically bad -------------------------------------------------------


@pytest.mark.parametrize("name", ["insuf", "multi01"])
def test_semantically_bad_messages_that_fail_validation(name: str) -> None:
    """They parse, then validate raises a 400."""
    message = parse_message(data_of(name))
    with pytest.raises(ParseError) as info:
        validate(message)
    assert info.value.status == 400


def test_insuf_cannot_be_answered_without_from_to_call_id() -> None:
    """The 400 to insuf still goes out along its Via, with what it has."""
    data = data_of("insuf")
    answer = error_response(data, failure(data))
    assert answer is not None
    reply = parse_message(answer)
    assert isinstance(reply, Response)
    assert reply.cseq.method == "INVITE" and not reply.has("from")


@pytest.mark.parametrize("name", sorted(CHECKED))
def test_semantically_bad_requests_and_check_request(name: str) -> None:
    """They parse and validate; check_request gives the RFC's answer or lets them through."""
    message = request(name)
    validate(message)
    assert check_request(message) == CHECKED[name]


def test_bext01_unsupported_lists_both_proxy_require_tags() -> None:
    """The 420 names both Proxy-Require tags, and none of the Require ones."""
    rejection = check_request(request("bext01"))
    assert rejection is not None and rejection.status == 420
    ((name, value),) = rejection.headers
    assert name == "Unsupported"
    assert value.split(", ") == ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"]
    assert "nothingSupportsThis" not in value


def test_unkscm_and_novelsc_schemes_are_kept() -> None:
    """The unknown schemes parse as absolute URIs and are refused with 416."""
    assert request("unkscm").uri.scheme == "nobodyKnowsThisScheme"
    assert request("novelsc").uri.scheme == "soap.beep"


def test_unksm2_non_sip_addresses() -> None:
    """To, From and Contact with non-SIP schemes parse."""
    message = request("unksm2")
    assert message.to.uri.scheme == "isbn"
    assert message.from_.uri.scheme == "http"
    contacts = message.contacts
    assert isinstance(contacts, list) and contacts[0].uri.scheme == "name"


def test_invut_and_sdp01_pass_the_proxy() -> None:
    """Unknown body types and Accept values are no proxy business."""
    assert request("invut").get("content-type") == "application/unknownformat"
    assert request("sdp01").get("accept") == "text/nobodyKnowsThis"


def test_bcast_response_parses_and_validates() -> None:
    """The broadcast Via is readable (the proxy decides to drop it)."""
    message = response("bcast")
    validate(message)
    assert message.via[1].host == "255.255.255.255"


def test_port_ambiguous_passes_with_the_long_host() -> None:
    """It parses and passes; the host is the whole bracketed text."""
    message = request("port-ambiguous")
    validate(message)
    assert check_request(message) is None
    assert sip_uri(message.uri).host == "2001:db8::10:5070"


def test_unreferenced_test_dat_is_malformed() -> None:
    """test.dat (in no RFC section) is rejected, and without a Via nobody is answered."""
    data = load("rfc4475/test.dat")
    error = failure(data)
    assert error.status == 400
    assert error_response(data, error) is None
