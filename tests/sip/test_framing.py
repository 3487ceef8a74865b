"""Tests for sipapp.sip.framing: cutting a TCP/TLS byte stream into messages."""

from __future__ import annotations

import pytest

from sipapp.sip import PING, FramingError, MessageTooLarge, StreamFramer, parse_message
from sipapp.testing import SDP, build_request, build_response

INVITE = build_request(body=SDP)
OPTIONS = build_request("OPTIONS", "sip:127.0.0.1", cseq="2 OPTIONS")
OK = build_response(200, body=SDP)


def test_one_complete_message() -> None:
    """A whole message comes out at once, nothing left pending."""
    framer = StreamFramer()
    assert framer.feed(INVITE) == [INVITE]
    assert framer.pending == b""


def test_pipelined_messages_in_one_chunk() -> None:
    """Several messages in one chunk come out in order."""
    framer = StreamFramer()
    assert framer.feed(INVITE + OPTIONS + OK) == [INVITE, OPTIONS, OK]
    assert framer.pending == b""


def test_split_at_every_byte_boundary() -> None:
    """Wherever the stream is cut, the same messages come out."""
    stream = INVITE + b"\r\n\r\n" + OPTIONS
    for cut in range(1, len(stream)):
        framer = StreamFramer()
        out = framer.feed(stream[:cut]) + framer.feed(stream[cut:])
        assert out == [INVITE, PING, OPTIONS], cut
        assert framer.pending == b"", cut


def test_one_byte_at_a_time() -> None:
    """Feeding single octets frames messages and pings alike."""
    stream = b"\r\n\r\n" + INVITE + b"\r\n" + OPTIONS + b"\r\n\r\n"
    framer = StreamFramer()
    out: list[bytes] = []
    for i in range(len(stream)):
        out += framer.feed(stream[i : i + 1])
    assert out == [PING, INVITE, OPTIONS, PING]
    assert framer.pending == b""


def test_partial_message_waits_in_pending() -> None:
    """An incomplete message is kept and reported as pending."""
    framer = StreamFramer()
    assert framer.feed(INVITE[:-10]) == []
    assert framer.pending == INVITE[:-10]
    assert framer.feed(INVITE[-10:]) == [INVITE]


def test_keep_alive_ping_is_reported() -> None:
    """CRLF CRLF is a ping: an empty item the caller answers with CRLF (RFC 5626)."""
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r\n") == [PING]
    assert PING == b""
    assert framer.feed(b"\r\n\r\n\r\n\r\n") == [PING, PING]


def test_ping_between_messages() -> None:
    """A ping between messages does not disturb them."""
    framer = StreamFramer()
    assert framer.feed(INVITE + b"\r\n\r\n" + OPTIONS) == [INVITE, PING, OPTIONS]


def test_single_crlf_is_ignored() -> None:
    """A lone CRLF (a pong or keep-alive) before a message is dropped."""
    framer = StreamFramer()
    assert framer.feed(b"\r\n" + INVITE) == [INVITE]
    assert framer.feed(INVITE + b"\r\n" + OPTIONS) == [INVITE, OPTIONS]


def test_lone_crlf_waits_for_a_possible_ping() -> None:
    """A CRLF alone may be half a ping: it waits; the next octets decide."""
    framer = StreamFramer()
    assert framer.feed(b"\r\n") == []
    assert framer.pending == b"\r\n"
    assert framer.feed(b"\r\n") == [PING]
    assert framer.feed(b"\r\n") == []
    assert framer.feed(OPTIONS) == [OPTIONS]


def test_message_without_content_length_is_a_framing_error() -> None:
    """On a stream Content-Length is mandatory (§18.3); data holds the header section."""
    data = build_request(content_length=None)
    framer = StreamFramer()
    with pytest.raises(FramingError, match="missing Content-Length") as info:
        framer.feed(data)
    assert info.value.data == data
    assert info.value.status == 400
    assert framer.pending == b""


@pytest.mark.parametrize("value", [b"-999", b"five", b"", b"1 2", b"12345678901"])
def test_bad_content_length_is_a_framing_error(value: bytes) -> None:
    """A Content-Length that is no number breaks the stream (RFC 4475 ncl)."""
    data = build_request().replace(b"Content-Length: 0", b"Content-Length: " + value)
    with pytest.raises(FramingError, match="Content-Length") as info:
        StreamFramer().feed(data)
    assert info.value.data is not None
    assert info.value.data.startswith(b"INVITE ")


def test_duplicate_content_length_is_a_framing_error() -> None:
    """Two Content-Length headers (one compact) conflict (RFC 4475 mcl01)."""
    data = build_request(body=SDP, headers=[("l", "5")])
    with pytest.raises(FramingError, match="multiple") as info:
        StreamFramer().feed(data)
    assert info.value.data == data[: data.index(b"\r\n\r\n") + 4]


def test_compact_and_spaced_content_length_frame() -> None:
    """``l :`` and ``content-length`` in any case frame the body."""
    for name in (b"l", b"l ", b"content-length", b"CONTENT-LENGTH"):
        data = build_request(body=SDP).replace(b"Content-Length:", name + b":")
        assert StreamFramer().feed(data + OPTIONS) == [data, OPTIONS]


def test_folded_content_length_value_frames_like_the_parser() -> None:
    """A Content-Length value on a continuation line still frames the body."""
    data = build_request(body=SDP).replace(b"Content-Length: ", b"Content-Length:\r\n ")
    assert StreamFramer().feed(data + OPTIONS) == [data, OPTIONS]
    assert parse_message(data).body == SDP


def test_continuation_line_is_never_a_content_length() -> None:
    """`` l: 5`` folded into another header does not frame the body."""
    data = build_request(subject="hi").replace(b"Subject: hi", b"Subject: hi\r\n l: 5")
    framer = StreamFramer()
    assert framer.feed(data + OPTIONS) == [data, OPTIONS]
    assert parse_message(data).get("subject") == "hi l: 5"


def test_messages_before_a_framing_error_are_handed_over() -> None:
    """Complete messages cut before the failure ride on the error."""
    bad = build_request(content_length=None)
    with pytest.raises(FramingError) as info:
        StreamFramer().feed(INVITE + b"\r\n\r\n" + bad)
    assert info.value.messages == [INVITE, PING]
    assert info.value.data == bad


def test_waiting_message_over_the_limit_is_too_large() -> None:
    """Content-Length beyond max_size fails before the body arrives (513)."""
    framer = StreamFramer(max_size=len(INVITE) - 1)
    with pytest.raises(MessageTooLarge) as info:
        framer.feed(INVITE[: INVITE.index(b"\r\n\r\n") + 4])
    assert info.value.status == 513
    assert info.value.data is not None and info.value.data.startswith(b"INVITE ")
    assert framer.pending == b""


def test_endless_header_section_is_too_large() -> None:
    """A header section that never ends is cut off at max_size."""
    framer = StreamFramer(max_size=1000)
    assert framer.feed(b"INVITE sip:bob@example.com SIP/2.0\r\n") == []
    with pytest.raises(MessageTooLarge):
        framer.feed(b"X-Junk: " + b"a" * 1000 + b"\r\n")


def test_message_at_exactly_max_size_passes() -> None:
    """max_size itself is allowed."""
    assert StreamFramer(max_size=len(INVITE)).feed(INVITE) == [INVITE]


def test_framer_is_reset_after_an_error() -> None:
    """After an error nothing stale remains pending."""
    framer = StreamFramer()
    with pytest.raises(FramingError):
        framer.feed(build_request(content_length=None))
    assert framer.pending == b""
    assert framer.feed(OPTIONS) == [OPTIONS]


def test_clerr_content_length_larger_than_received_waits() -> None:
    """A Content-Length bigger than what arrived waits for more (RFC 4475 clerr over TCP)."""
    data = build_request(content_length="9999", body=SDP)
    framer = StreamFramer()
    assert framer.feed(data) == []
    assert framer.pending == data
