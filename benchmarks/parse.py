"""Throughput of the SIP message layer on one core, in messages per second.

Two cases per message: *parse* (``parse_message``, read the top Via,
``to_bytes`` of the untouched message: what a stateless relay costs at the
least) and *proxy* (parse, ``validate``, then what a proxy changes before
forwarding, then ``to_bytes``: for a request a new top Via and Max-Forwards
minus one, RFC 3261 §16.6; for a response the own top Via removed, §16.7).
Three typical messages: an INVITE with SDP, the 200 OK answering it, and a
REGISTER with credentials. Each figure is the median of several timed runs
(``time.perf_counter``). Nothing here touches the network.

    python benchmarks/parse.py            # markdown table
    python benchmarks/parse.py --json     # the same numbers as JSON
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable

from sipapp.sip import Request, Via, parse_message, validate


def _crlf(text: str, **fields: str) -> bytes:
    """A message written with ``\\n`` line ends, as sent on the wire (CRLF, real Content-Length).

    ``{length}`` in the head becomes the body length, ``{name}`` the value of ``fields[name]``.
    """
    head, _, body = text.partition("\n\n")
    body_bytes = body.replace("\n", "\r\n").encode()
    head = head.format(length=len(body_bytes), **fields)
    return head.replace("\n", "\r\n").encode() + b"\r\n\r\n" + body_bytes


SDP = """v=0
o=alice 2890844526 2890844526 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 49170 RTP/AVP 8 0 101
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
"""

INVITE = _crlf(
    """INVITE sip:+4930123456@sipapp.test;user=phone SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK776asdhds;rport
Max-Forwards: 70
To: <sip:+4930123456@sipapp.test;user=phone>
From: "Alice" <sip:alice@sipapp.test>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.sipapp.test
CSeq: 314159 INVITE
Contact: <sip:alice@127.0.0.1:5062;transport=udp>
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REFER, NOTIFY
Supported: replaces, timer, 100rel
Session-Expires: 1800
Min-SE: 90
User-Agent: ExamplePhone/7.2.1
P-Asserted-Identity: <sip:alice@sipapp.test>
Content-Type: application/sdp
Content-Length: {length}

"""
    + SDP
)

OK_200 = _crlf(
    """SIP/2.0 200 OK
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK4b43c2ff8.1
Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK776asdhds;rport=5062;received=127.0.0.1
Record-Route: <sip:127.0.0.1:5060;lr>
To: <sip:+4930123456@sipapp.test;user=phone>;tag=a6c85cf
From: "Alice" <sip:alice@sipapp.test>;tag=1928301774
Call-ID: a84b4c76e66710@pc33.sipapp.test
CSeq: 314159 INVITE
Contact: <sip:gw1@127.0.0.1:5070;transport=udp>
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE
Supported: timer
Session-Expires: 1800;refresher=uac
Require: timer
Server: ExampleGateway/3.1
Content-Type: application/sdp
Content-Length: {length}

"""
    + SDP.replace("alice", "gw1").replace("49170", "30000")
)

REGISTER = _crlf(
    """REGISTER sip:sipapp.test SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKnashds7;rport
Max-Forwards: 70
To: <sip:alice@sipapp.test>
From: <sip:alice@sipapp.test>;tag=456248
Call-ID: 843817637684230@998sdasdh09
CSeq: 1826 REGISTER
Contact: {contact}
Authorization: {authorization}
Expires: 3600
Supported: path, outbound, gruu
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY
User-Agent: ExamplePhone/7.2.1
Content-Length: 0

""",
    contact=(
        "<sip:alice@127.0.0.1:5062;transport=udp>"
        ';+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>";reg-id=1'
    ),
    authorization=(
        'Digest username="alice", realm="sipapp.test", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:sipapp.test", '
        'response="6629fae49393a05397450978507c4ef1", algorithm=MD5, qop=auth, '
        'nc=00000001, cnonce="0a4f113b"'
    ),
)

MESSAGES: dict[str, bytes] = {
    "INVITE (SDP)": INVITE,
    "200 OK (INVITE)": OK_200,
    "REGISTER": REGISTER,
}

PROXY_VIA = Via("UDP", "127.0.0.1", 5060)


def parse_only(data: bytes) -> bytes:
    """Parse, read the top Via, serialise the untouched message."""
    message = parse_message(data)
    message.top_via  # noqa: B018 - the access is what is measured
    return message.to_bytes()


def proxy_forward(data: bytes) -> bytes:
    """Parse and validate, change what a proxy changes, serialise."""
    message = parse_message(data)
    validate(message)
    if isinstance(message, Request):
        # A branch derived from the incoming one, as a stateless proxy does (§16.11).
        branch = f"z9hG4bKsa.{message.top_via.branch}"
        message.push_via(PROXY_VIA.with_param("branch", branch))
        forwards = message.max_forwards
        message.set("Max-Forwards", str((70 if forwards is None else forwards) - 1))
    else:
        message.pop_via()
    return message.to_bytes()


CASES: dict[str, Callable[[bytes], bytes]] = {"parse": parse_only, "proxy": proxy_forward}


def rate(work: Callable[[bytes], bytes], data: bytes, seconds: float) -> float:
    """Messages per second of ``work(data)``, measured for about ``seconds``."""
    batch = 100
    done = 0
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < seconds:
        for _ in range(batch):
            work(data)
        done += batch
        elapsed = time.perf_counter() - start
    return done / elapsed


def measure(seconds: float, runs: int) -> dict[str, dict[str, float]]:
    """``{message: {case: median messages/s}}`` over ``runs`` runs of ``seconds`` each."""
    results: dict[str, dict[str, float]] = {}
    for name, data in MESSAGES.items():
        for work in CASES.values():
            work(data)  # warm caches and check that the message is accepted
        results[name] = {
            case: statistics.median(rate(work, data, seconds) for _ in range(runs))
            for case, work in CASES.items()
        }
    return results


def machine() -> str:
    """One line naming the interpreter and the platform."""
    return (
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}"
    )


def markdown(results: dict[str, dict[str, float]], seconds: float, runs: int) -> str:
    """The results as a markdown table."""
    lines = [
        "| message | bytes | parse + top Via + to_bytes (msg/s) | proxy forward (msg/s) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, by_case in results.items():
        parse, proxy = by_case["parse"], by_case["proxy"]
        lines.append(f"| {name} | {len(MESSAGES[name])} | {parse:,.0f} | {proxy:,.0f} |")
    lines.append("")
    lines.append(f"{machine()}; one core; median of {runs} runs of {seconds:g} s each.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    parser.add_argument("--seconds", type=float, default=0.6, help="length of one run")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median)")
    args = parser.parse_args(argv)
    results = measure(args.seconds, args.runs)
    if args.json:
        report = {
            "machine": machine(),
            "seconds_per_run": args.seconds,
            "runs": args.runs,
            "bytes": {name: len(data) for name, data in MESSAGES.items()},
            "messages_per_second": results,
        }
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(markdown(results, args.seconds, args.runs) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
