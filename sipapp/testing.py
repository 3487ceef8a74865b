"""Builders of SIP messages for tests: complete, valid requests and responses as wire bytes.

Each builder starts from a well-formed message (a loopback Via, example.com
addresses) and lets a test change exactly what it is about: a keyword names a
header (``call_id`` is Call-ID, ``from_`` From, ``x_custom`` X-Custom), ``None``
removes it, a list gives one header line per item, and ``headers`` appends
lines verbatim. Content-Length is computed unless a test overrides it. Nothing
in the package imports this module.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sipapp.sip import Request, Response, parse_message
from sipapp.sip.headers import canonical_name, header_key
from sipapp.sip.status import reason_phrase

#: Values the builders use unless a test says otherwise.
BRANCH = "z9hG4bK74bf9"
FROM_TAG = "9fxced76sl"
TO_TAG = "8321234356"
CALL_ID = "3848276298220188511@127.0.0.1"
VIA = f"SIP/2.0/UDP 127.0.0.1:5060;branch={BRANCH}"
FROM = f"Alice <sip:alice@example.com>;tag={FROM_TAG}"
TO = "Bob <sip:bob@example.com>"
CONTACT = "<sip:alice@127.0.0.1:5060>"

#: A small SDP offer on loopback.
SDP = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 127.0.0.1\r\n"
    b"s=-\r\n"
    b"c=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\n"
    b"m=audio 49170 RTP/AVP 0\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
)

HeaderValue = str | int | Sequence[str] | None
Lines = list[tuple[str, str]]


def header_name(keyword: str) -> str:
    """The header a builder keyword names: ``call_id`` -> ``Call-ID``, ``from_`` -> ``From``."""
    return canonical_name(header_key(keyword.rstrip("_").replace("_", "-")))


def _apply(lines: Lines, overrides: dict[str, HeaderValue]) -> Lines:
    """``lines`` with each override put in place of the header it names (or appended)."""
    for keyword, value in overrides.items():
        name = header_name(keyword)
        key = header_key(name)
        if value is None:
            new: list[str] = []
        elif isinstance(value, (str, int)):
            new = [str(value)]
        else:
            new = [str(v) for v in value]
        at = next((i for i, (n, _) in enumerate(lines) if header_key(n) == key), len(lines))
        lines = [line for line in lines if header_key(line[0]) != key]
        lines[at:at] = [(name, v) for v in new]
    return lines


def _render(
    start: str,
    lines: Lines,
    overrides: dict[str, HeaderValue],
    extra: Sequence[tuple[str, str]],
    body: bytes,
) -> bytes:
    """Wire bytes: ``lines`` changed by ``overrides``, then ``extra``, then Content-Length."""
    lines = _apply([*lines, ("Content-Length", str(len(body)))], overrides)
    at = next(
        (i for i, (name, _) in enumerate(lines) if header_key(name) == "content-length"),
        len(lines),
    )
    lines[at:at] = extra
    out = [start, *(f"{name}: {value}" for name, value in lines)]
    return ("\r\n".join(out) + "\r\n\r\n").encode("utf-8") + body


def build_request(
    method: str = "INVITE",
    uri: str = "sip:bob@example.com",
    *,
    body: bytes = b"",
    headers: Sequence[tuple[str, str]] = (),
    **overrides: HeaderValue,
) -> bytes:
    """A valid request as wire bytes; keywords replace (or with None remove) its headers.

    ``build_request("REGISTER", "sip:example.com", expires=3600)`` adds an
    Expires header; ``build_request(max_forwards=None)`` has none;
    ``build_request(via=[VIA1, VIA2])`` has two Via lines. A body gets a
    Content-Type of application/sdp unless ``content_type`` says otherwise.
    """
    lines: Lines = [
        ("Via", VIA),
        ("Max-Forwards", "70"),
        ("To", TO),
        ("From", FROM),
        ("Call-ID", CALL_ID),
        ("CSeq", f"1 {method}"),
        ("Contact", CONTACT),
    ]
    if body:
        lines.append(("Content-Type", "application/sdp"))
    return _render(f"{method} {uri} SIP/2.0", lines, overrides, headers, body)


def build_response(
    status: int = 200,
    reason: str | None = None,
    *,
    request: bytes | Request | None = None,
    to_tag: str | None = TO_TAG,
    body: bytes = b"",
    headers: Sequence[tuple[str, str]] = (),
    **overrides: HeaderValue,
) -> bytes:
    """A valid response as wire bytes, answering ``request`` when given (§8.2.6).

    Via, From, To, Call-ID and CSeq come from ``request`` (else from the
    defaults of ``build_request``); ``to_tag`` is added to To unless the
    status is 100 or To has a tag already. Keywords work as in ``build_request``.
    """
    if request is None:
        request = build_request()
    if isinstance(request, bytes):
        parsed = parse_message(request)
        if not isinstance(parsed, Request):
            raise ValueError("build_response answers a request, not a response")
        request = parsed
    to = request.get("to") or TO
    if to_tag and status != 100 and request.to.tag is None:
        to = f"{to};tag={to_tag}"
    lines: Lines = [("Via", via) for via in request.get_all("via")]
    lines += [
        ("To", to),
        ("From", request.get("from") or FROM),
        ("Call-ID", request.get("call-id") or CALL_ID),
        ("CSeq", request.get("cseq") or f"1 {request.method}"),
    ]
    if body:
        lines.append(("Content-Type", "application/sdp"))
    phrase = reason_phrase(status) if reason is None else reason
    return _render(f"SIP/2.0 {status} {phrase}", lines, overrides, headers, body)


def parsed_request(
    method: str = "INVITE", uri: str = "sip:bob@example.com", **kwargs: object
) -> Request:
    """``build_request(...)`` parsed: a ``Request`` that re-emits the built bytes."""
    message = parse_message(build_request(method, uri, **kwargs))  # type: ignore[arg-type]
    if not isinstance(message, Request):
        raise TypeError("built a response, not a request")
    return message


def parsed_response(status: int = 200, reason: str | None = None, **kwargs: object) -> Response:
    """``build_response(...)`` parsed: a ``Response`` that re-emits the built bytes."""
    message = parse_message(build_response(status, reason, **kwargs))  # type: ignore[arg-type]
    if not isinstance(message, Response):
        raise TypeError("built a request, not a response")
    return message


def write_self_signed(directory: Path, name: str = "sipapp") -> tuple[str, str]:
    """Write a self-signed certificate and its key for 127.0.0.1 / ::1; returns both paths.

    The certificate is its own CA, so a TLS client can trust it with ``cafile``.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / f"{name}.crt"
    key_path = directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)
