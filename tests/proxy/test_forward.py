"""Tests of sipapp.proxy.forward: the forwarded copy (§16.6), next hops and loops (§16.3)."""

from __future__ import annotations

import pytest

from sipapp.proxy.forward import (
    Forwarder,
    ForwardError,
    forward_response,
    loop_hash,
    resolve_hop,
)
from sipapp.routing import Target
from sipapp.sip import MAGIC_COOKIE, Request, parse_message
from sipapp.stats import Stats
from sipapp.testing import parsed_response

from .fakes import (
    BOB1,
    CALLEE_SOURCE,
    CALLER_VIA,
    TCP_SOURCE,
    UDP_SOURCE,
    FakeManager,
    incoming,
    sip_uri,
    target,
)

#: A Via of ours (127.0.0.1:5060 is a socket of the fake manager) and a foreign one.
OUR_VIA = "SIP/2.0/UDP 127.0.0.1:5060;branch={branch}"
FOREIGN_VIA = "SIP/2.0/UDP 127.0.0.1:5099;branch={branch}"


def forwarder(record_route: bool = True) -> Forwarder:
    """A Forwarder over the fake manager's sockets."""
    return Forwarder(FakeManager(), record_route)


def prepare(
    request: Request, *, text: str = BOB1, source: object = UDP_SOURCE, initial: bool = True,
    record_route: bool = True, **target_args: object,
) -> tuple[Request, tuple[str, str, int]]:  # fmt: skip
    """``Forwarder.prepare`` for one target with a fixed branch."""
    return forwarder(record_route).prepare(
        request, target(text, **target_args), source, "z9hG4bKtest.1", initial=initial
    )


# -- loop_hash ---------------------------------------------------------------------------


def test_loop_hash_same_for_retransmission() -> None:
    """The same request parsed twice hashes the same."""
    assert loop_hash(incoming()) == loop_hash(incoming())


def test_loop_hash_same_for_looped_request() -> None:
    """A request back from downstream (more Vias, lower Max-Forwards) hashes as it did."""
    looped = incoming(
        via=[FOREIGN_VIA.format(branch="z9hG4bKx"), OUR_VIA.format(branch="z9hG4bKy"),
             "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKcaller1"],
        max_forwards=68,
    )  # fmt: skip
    assert loop_hash(looped) == loop_hash(incoming())


def test_loop_hash_differs_when_request_uri_changes() -> None:
    """A retargeted Request-URI (a spiral) hashes differently."""
    assert loop_hash(incoming(uri="sip:carol@example.com")) != loop_hash(incoming())


@pytest.mark.parametrize(
    "change",
    [
        {"cseq": "2 INVITE"},
        {"from_": "<sip:alice@example.com>;tag=other"},
        {"to": "<sip:bob@example.com>;tag=dialog"},
        {"call_id": "another@127.0.0.1"},
        {"proxy_authorization": 'Digest username="alice"'},
    ],
    ids=["cseq", "from-tag", "to-tag", "call-id", "proxy-authorization"],
)
def test_loop_hash_depends_on_routing_fields(change: dict[str, str]) -> None:
    """CSeq number, tags, Call-ID and Proxy-Authorization all enter the hash."""
    assert loop_hash(incoming(**change)) != loop_hash(incoming())


# -- is_loop ------------------------------------------------------------------------------


def looped(top: str, branch: str) -> Request:
    """A request carrying ``top`` (formatted with ``branch``) above the caller's Via."""
    return incoming(
        via=[FOREIGN_VIA.format(branch="z9hG4bKdown"), top.format(branch=branch),
             "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKcaller1"],
    )  # fmt: skip


def test_is_loop_with_our_via_and_matching_branch() -> None:
    """Our own Via carrying the branch we would compute now is a loop."""
    request = incoming()
    part = loop_hash(request)
    assert forwarder().is_loop(looped(OUR_VIA, f"{MAGIC_COOKIE}{part}.abc1"), part)


def test_is_loop_not_for_a_foreign_via_with_the_same_branch() -> None:
    """The matching branch in somebody else's Via is no loop."""
    part = loop_hash(incoming())
    assert not forwarder().is_loop(looped(FOREIGN_VIA, f"{MAGIC_COOKIE}{part}.abc1"), part)


def test_is_loop_not_for_our_via_with_another_hash() -> None:
    """Our Via with another request's hash (a spiral) is no loop."""
    part = loop_hash(incoming())
    other = loop_hash(incoming(uri="sip:carol@example.com"))
    assert not forwarder().is_loop(looped(OUR_VIA, f"{MAGIC_COOKIE}{other}.abc1"), part)


def test_is_loop_not_for_a_request_from_the_caller() -> None:
    """A request with only the caller's Via is never a loop."""
    request = incoming()
    assert not forwarder().is_loop(request, loop_hash(request))


# -- resolve_hop ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "hop"),
    [
        ("sip:bob@127.0.0.1", ("UDP", "127.0.0.1", 5060)),
        ("sip:bob@127.0.0.1:5090", ("UDP", "127.0.0.1", 5090)),
        ("sip:bob@127.0.0.1:5090;transport=tcp", ("TCP", "127.0.0.1", 5090)),
        ("sip:bob@127.0.0.1;transport=TLS", ("TLS", "127.0.0.1", 5061)),
        ("sips:bob@127.0.0.1", ("TLS", "127.0.0.1", 5061)),
        ("sip:bob@[::1]:5090", ("UDP", "::1", 5090)),
        ("sip:bob@localhost:5090", ("UDP", "127.0.0.1", 5090)),
        ("sip:bob@example.com:5090;maddr=127.0.0.1", ("UDP", "127.0.0.1", 5090)),
        ("sip:bob@127.0.0.2;maddr=::1;transport=tcp", ("TCP", "::1", 5060)),
    ],
)
def test_resolve_hop(uri: str, hop: tuple[str, str, int]) -> None:
    """Transport from the transport param (TLS for sips), maddr before host, default ports."""
    assert resolve_hop(sip_uri(uri)) == hop


@pytest.mark.parametrize(
    "uri", ["sip:bob@example.com", "sip:bob@127.0.0.1;transport=sctp", "sip:bob@host;maddr=name"]
)
def test_resolve_hop_refuses_names_and_unknown_transports(uri: str) -> None:
    """Names (no DNS here) and unsupported transports raise ForwardError 503."""
    with pytest.raises(ForwardError) as caught:
        resolve_hop(sip_uri(uri))
    assert caught.value.status == 503
    assert caught.value.reason.startswith("Service Unavailable")


# -- prepare --------------------------------------------------------------------------------


def test_prepare_decrements_max_forwards() -> None:
    """Max-Forwards goes down by one."""
    out, _ = prepare(incoming(max_forwards=10))
    assert out.max_forwards == 9


def test_prepare_adds_max_forwards_70_when_absent() -> None:
    """A request without Max-Forwards leaves with 70 (§16.6 step 3)."""
    out, _ = prepare(incoming(max_forwards=None))
    assert out.max_forwards == 70


def test_prepare_refuses_max_forwards_zero() -> None:
    """A request with Max-Forwards 0 is never forwarded, even without the max_forwards step."""
    with pytest.raises(ForwardError) as caught:
        prepare(incoming(max_forwards=0))
    assert caught.value.status == 483


def test_prepare_sets_request_uri_and_hop() -> None:
    """The copy carries the target as Request-URI and goes to its host and port."""
    out, hop = prepare(incoming())
    assert out.ruri == BOB1
    assert hop == ("UDP", "127.0.0.1", 5090)


def test_prepare_keeps_request_uri_when_target_is_it() -> None:
    """A target that is the request's own URI leaves the Request-URI text as it came."""
    request = parse_message(b"".join([
        b"OPTIONS sip:Bob@127.0.0.1:5090;Foo=1 SIP/2.0\r\n",
        b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKcaller1\r\n",
        b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n",
        b"Call-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
    ]))  # fmt: skip
    assert isinstance(request, Request)
    out, _ = Forwarder(FakeManager()).prepare(
        request, Target(request.uri), UDP_SOURCE, "z9hG4bKt.1", initial=True
    )
    assert out.ruri == "sip:Bob@127.0.0.1:5090;Foo=1"


def test_prepare_pushes_via_with_branch() -> None:
    """Our Via with the given branch goes on top of the caller's."""
    out, _ = prepare(incoming())
    assert [v.host for v in out.via] == ["127.0.0.1", "127.0.0.1"]
    assert out.via[0].port == 5060 and out.via[0].transport == "UDP"
    assert out.top_via.branch == "z9hG4bKtest.1"
    assert out.via[1].branch == "z9hG4bKcaller1"


def test_prepare_via_uses_socket_of_next_hop_transport_and_family() -> None:
    """An IPv6 UDP hop gets the IPv6 UDP socket in Via; a TCP hop the TCP socket."""
    out, hop = prepare(incoming(), text="sip:bob@[::1]:5090")
    assert hop == ("UDP", "::1", 5090)
    assert (out.top_via.transport, out.top_via.host) == ("UDP", "::1")
    out, hop = prepare(incoming(), text="sip:bob@127.0.0.1:5090;transport=tcp")
    assert out.top_via.transport == "TCP"


def test_prepare_without_socket_for_transport_is_503() -> None:
    """A hop over a transport we have no socket for raises ForwardError 503."""
    with pytest.raises(ForwardError) as caught:
        prepare(incoming(), text="sips:bob@127.0.0.1:5091")
    assert caught.value.status == 503


def test_prepare_prepends_target_route() -> None:
    """The target's Route set goes in front of the request's own Route values."""
    request = incoming(route="<sip:127.0.0.1:5096;lr>")
    out, hop = prepare(request, route=("<sip:127.0.0.1:5094;lr>", "<sip:127.0.0.1:5095;lr>"))
    assert [str(r.uri) for r in out.routes] == [
        "sip:127.0.0.1:5094;lr", "sip:127.0.0.1:5095;lr", "sip:127.0.0.1:5096;lr"
    ]  # fmt: skip
    assert hop == ("UDP", "127.0.0.1", 5094)


def test_prepare_next_hop_before_route() -> None:
    """A target's next_hop decides where the request goes, before Route and Request-URI."""
    request = incoming(route="<sip:127.0.0.1:5096;lr>")
    _, hop = prepare(request, next_hop="sip:127.0.0.1:5097;transport=tcp")
    assert hop == ("TCP", "127.0.0.1", 5097)


def test_prepare_single_record_route_on_same_socket() -> None:
    """In and out over the same socket: one Record-Route with lr and no r2."""
    out, _ = prepare(incoming(record_route="<sip:127.0.0.1:5096;lr>"))
    assert out.get_all("record-route")[0] == "<sip:127.0.0.1:5060;lr>"
    assert len(out.record_routes) == 2


def test_prepare_double_record_route_when_transport_changes() -> None:
    """UDP in, TCP out: two Record-Routes with r2=on, the outbound one on top."""
    out, _ = prepare(incoming(), text="sip:bob@127.0.0.1:5090;transport=tcp")
    assert [str(r.uri) for r in out.record_routes] == [
        "sip:127.0.0.1:5060;transport=tcp;r2=on;lr",
        "sip:127.0.0.1:5060;r2=on;lr",
    ]


def test_prepare_double_record_route_when_interface_changes() -> None:
    """IPv4 in, IPv6 out over UDP: two Record-Routes naming each interface."""
    out, _ = prepare(incoming(), text="sip:bob@[::1]:5090")
    assert [str(r.uri) for r in out.record_routes] == [
        "sip:[::1]:5060;r2=on;lr",
        "sip:127.0.0.1:5060;r2=on;lr",
    ]


def test_prepare_single_record_route_for_tcp_names_transport() -> None:
    """TCP in and out: one Record-Route with transport=tcp."""
    out, _ = prepare(incoming(), text="sip:bob@127.0.0.1:5090;transport=tcp", source=TCP_SOURCE)
    assert [str(r.uri) for r in out.record_routes] == ["sip:127.0.0.1:5060;transport=tcp;lr"]


def test_prepare_no_record_route_in_dialog() -> None:
    """A request inside a dialog (initial=False) gets no Record-Route."""
    out, _ = prepare(incoming(to="<sip:bob@example.com>;tag=b1"), initial=False)
    assert not out.has("record-route")


def test_prepare_no_record_route_when_disabled() -> None:
    """record_route=False adds none."""
    out, _ = prepare(incoming(), record_route=False)
    assert not out.has("record-route")


def test_prepare_leaves_original_unchanged() -> None:
    """The request as received is not changed: prepare works on a copy."""
    request = incoming(route="<sip:127.0.0.1:5096;lr>")
    before = request.to_bytes()
    out, _ = prepare(request, route=("<sip:127.0.0.1:5094;lr>",))
    assert request.to_bytes() == before
    assert request.ruri == "sip:bob@example.com"
    assert request.max_forwards == 70 and len(request.via) == 1
    assert out.to_bytes() != before


def test_branches_are_unique_and_carry_the_loop_hash() -> None:
    """Every branch starts with the magic cookie and the loop hash and is new."""
    f = forwarder()
    part = loop_hash(incoming())
    branches = {f.branch(part) for _ in range(100)}
    assert len(branches) == 100
    assert all(b.startswith(f"{MAGIC_COOKIE}{part}.") for b in branches)


# -- forward_response (§16.11) -------------------------------------------------------------------


def test_forward_response_pops_our_via_and_follows_the_next() -> None:
    """A response with our Via on top loses it and goes to the next Via's transport."""
    manager, stats = FakeManager(), Stats()
    request = incoming(via=[OUR_VIA.format(branch="z9hG4bKours"), CALLER_VIA])
    forward_response(manager, stats, parsed_response(180, request=request), CALLEE_SOURCE)
    ((out, source),) = manager.responses
    assert out.get_all("via") == [CALLER_VIA]
    assert out.status == 180
    assert source.transport == "UDP"
    assert stats.value("sip_responses_stateless_total") == 1


def test_forward_response_drops_foreign_via() -> None:
    """A response whose top Via is not one of our sockets is dropped and counted."""
    manager, stats = FakeManager(), Stats()
    request = incoming(via=[FOREIGN_VIA.format(branch="z9hG4bKx"), CALLER_VIA])
    forward_response(manager, stats, parsed_response(200, request=request), CALLEE_SOURCE)
    assert manager.responses == []
    assert stats.value("sip_responses_unmatched_total") == 1
