"""Tests of sipapp.transaction.client: the non-INVITE and INVITE client state machines (§17.1)."""

from __future__ import annotations

from typing import Any

import pytest

from sipapp.sip import Request, make_response
from sipapp.transaction import ClientTransaction, InviteClientTransaction, Timers
from sipapp.transaction.client import NULL_USER

from .fakes import CLIENT_BRANCH, CLIENT_VIA, TCP_HOP, UDP_HOP, Harness, client_request

UPSTREAM_VIA = "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKupstream1;received=127.0.0.1"
ROUTES = ["<sip:127.0.0.1:5090;lr>", "<sip:127.0.0.1:5091;lr>"]


def open_client(
    method: str = "OPTIONS",
    hop: tuple[str, str, int] = UDP_HOP,
    timers: Timers | None = None,
    **overrides: Any,
) -> tuple[Harness, Request, Any]:
    """A harness whose layer started one client transaction for a ``method`` request."""
    h = Harness(timers)
    request = client_request(method, **overrides)
    tx = h.layer.start_client(request, hop, h.user)
    return h, request, tx


def answer(h: Harness, request: Request, status: int) -> None:
    """Deliver a response to ``request`` to the layer (To tag added for non-100)."""
    h.receive(make_response(request, status, to_tag="callee1"))


# -- non-INVITE client transaction (§17.1.2) ------------------------------------------


def test_non_invite_start_sends_once_in_trying() -> None:
    """start() sends the request to the hop once and leaves the transaction in Trying."""
    h, request, tx = open_client()
    assert type(tx) is ClientTransaction
    assert tx.state == "trying"
    assert tx.key == (CLIENT_BRANCH, "OPTIONS")
    assert h.layer.client == {tx.key: tx}
    assert h.manager.requests == [(0.0, request, "UDP", "127.0.0.1", 5080)]


def test_timer_e_doubles_up_to_t2() -> None:
    """On UDP timer E resends at T1, 2T1, 4T1, then every T2 (4 s)."""
    h, request, _tx = open_client()
    h.clock.advance(0.5)
    assert len(h.manager.requests) == 2
    h.run(20)
    assert h.manager.request_times() == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5]
    assert all(r is request for _, r, *_ in h.manager.requests)


def test_timer_e_at_t2_once_proceeding() -> None:
    """After a provisional, timer E resends every T2 (4 s)."""
    h, request, tx = open_client()
    h.clock.advance(0.2)
    answer(h, request, 100)
    assert tx.state == "proceeding"
    h.run(13)
    assert h.manager.request_times() == [0.0, 0.5, 4.5, 8.5, 12.5]


def test_timer_e_follows_t1_and_t2() -> None:
    """With T1 = 100 ms and T2 = 400 ms timer E resends at 0.1, 0.3, 0.7, 1.1."""
    h, _request, _tx = open_client(timers=Timers(t1=0.1, t2=0.4))
    h.run(1.15)
    assert h.manager.request_times() == pytest.approx([0.0, 0.1, 0.3, 0.7, 1.1])


def test_no_timer_e_on_tcp() -> None:
    """On TCP the request is sent once; only timer F runs."""
    h, _request, _tx = open_client(hop=TCP_HOP)
    assert h.pending() == 1
    h.run(31.9)
    assert h.manager.request_times() == [0.0]
    assert h.manager.requests[0][2] == "TCP"


def test_timer_f_times_out() -> None:
    """Timer F (64*T1) without a final: timed_out, counted, removed, no more sends."""
    h, _request, tx = open_client()
    h.run(31.999)
    assert h.user.events == []
    assert len(h.manager.requests) == 11
    h.clock.advance(0.001)
    assert h.user.events == [("timed_out", tx)]
    assert tx.state == "terminated"
    assert h.layer.client == {}
    assert h.stats.value("sip_transaction_timeouts_total", timer="F") == 1
    assert h.pending() == 0


def test_timer_f_in_proceeding() -> None:
    """Timer F still fires in Proceeding."""
    h, request, _tx = open_client()
    answer(h, request, 100)
    h.clock.advance(32)
    assert [e[0] for e in h.user.events] == ["response", "timed_out"]


def test_timer_f_on_tcp() -> None:
    """Timer F also runs on TCP."""
    h, _request, tx = open_client(hop=TCP_HOP)
    h.clock.advance(32)
    assert h.user.events == [("timed_out", tx)]


def test_provisional_passed_to_user() -> None:
    """Every provisional in Trying or Proceeding reaches the user."""
    h, request, tx = open_client()
    answer(h, request, 100)
    answer(h, request, 183)
    assert h.user.statuses() == [100, 183]
    assert all(e[2] is tx for e in h.user.events)


def test_final_moves_to_completed_and_stops_e_and_f() -> None:
    """A final response reaches the user, moves to Completed and stops timers E and F."""
    h, request, tx = open_client()
    answer(h, request, 200)
    assert tx.state == "completed"
    assert h.user.statuses() == [200]
    assert h.pending() == 1  # timer K only
    h.clock.advance(100)
    assert h.manager.request_times() == [0.0]
    assert h.stats.value("sip_transaction_timeouts_total", timer="F") == 0


def test_timer_k_udp_is_t4() -> None:
    """On UDP timer K keeps Completed for T4 (5 s), then terminates."""
    h, request, tx = open_client()
    answer(h, request, 200)
    h.clock.advance(4.999)
    assert tx.state == "completed"
    assert h.layer.client == {tx.key: tx}
    h.clock.advance(0.001)
    assert tx.state == "terminated"
    assert h.layer.client == {}


def test_timer_k_tcp_is_immediate() -> None:
    """On TCP a final terminates the transaction at once (timer K = 0)."""
    h, request, tx = open_client(hop=TCP_HOP)
    answer(h, request, 404)
    assert tx.state == "terminated"
    assert h.layer.client == {}
    assert h.pending() == 0
    assert h.user.statuses() == [404]


def test_late_final_retransmission_absorbed() -> None:
    """A retransmitted final (or late provisional) in Completed is not passed to the user."""
    h, request, tx = open_client()
    answer(h, request, 200)
    answer(h, request, 200)
    answer(h, request, 180)
    assert h.user.statuses() == [200]
    assert h.layer.client == {tx.key: tx}


def test_transport_failure_on_start() -> None:
    """When the first send fails: transport_failed, counted, removed, no timers."""
    h = Harness()
    h.manager.fail = True
    request = client_request("OPTIONS")
    tx = h.layer.start_client(request, UDP_HOP, h.user)
    assert h.user.events == [("transport_failed", tx)]
    assert tx.state == "terminated"
    assert h.layer.client == {}
    assert h.pending() == 0
    assert h.stats.value("sip_transport_errors_total") == 1


def test_stream_connection_failure_after_queueing_reports_transport_failed() -> None:
    """A TCP connection that fails after the send was queued reports transport_failed once."""
    h = Harness()
    request = client_request("INVITE")
    tx = h.layer.start_client(request, ("TCP", "127.0.0.1", 5090), h.user)
    assert tx.state == "calling"
    (on_failure,) = h.manager.on_failure
    on_failure()
    assert h.user.events == [("transport_failed", tx)]
    assert tx.state == "terminated"
    assert h.layer.client == {}
    on_failure()  # a second report changes nothing
    assert h.user.events == [("transport_failed", tx)]


def test_non_invite_stop() -> None:
    """stop() terminates silently and cancels timers E and F."""
    h, _request, tx = open_client()
    tx.stop()
    assert tx.state == "terminated"
    assert h.layer.client == {}
    assert h.pending() == 0
    assert h.user.events == []


# -- INVITE client transaction (§17.1.1, RFC 6026 §7.2) -------------------------------


def test_invite_start_sends_once_in_calling() -> None:
    """start() sends the INVITE once and leaves the transaction in Calling."""
    h, request, tx = open_client("INVITE")
    assert type(tx) is InviteClientTransaction
    assert tx.state == "calling"
    assert tx.key == (CLIENT_BRANCH, "INVITE")
    assert h.manager.requests == [(0.0, request, "UDP", "127.0.0.1", 5080)]


def test_timer_a_doubles_without_cap() -> None:
    """On UDP timer A resends at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 (doubling, no T2 cap)."""
    h, _request, _tx = open_client("INVITE")
    h.clock.advance(0.5)
    assert len(h.manager.requests) == 2
    h.run(31.9)
    assert h.manager.request_times() == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]


def test_timer_b_times_out() -> None:
    """Timer B (64*T1) in Calling: timed_out, counted, removed, no more sends."""
    h, _request, tx = open_client("INVITE")
    h.run(31.999)
    assert h.user.events == []
    h.clock.advance(0.001)
    assert h.user.events == [("timed_out", tx)]
    assert tx.state == "terminated"
    assert h.layer.client == {}
    assert h.stats.value("sip_transaction_timeouts_total", timer="B") == 1
    assert h.pending() == 0
    assert len(h.manager.requests) == 7


def test_no_timer_a_on_tcp() -> None:
    """On TCP the INVITE is sent once; timer B still runs."""
    h, _request, tx = open_client("INVITE", hop=TCP_HOP)
    assert h.pending() == 1
    h.clock.advance(32)
    assert h.manager.request_times() == [0.0]
    assert h.user.events == [("timed_out", tx)]


def test_provisional_moves_to_proceeding_and_stops_a_and_b() -> None:
    """A 1xx in Calling reaches the user, moves to Proceeding and stops timers A and B."""
    h, request, tx = open_client("INVITE")
    h.run(0.7)
    answer(h, request, 100)
    assert tx.state == "proceeding"
    assert h.user.statuses() == [100]
    assert h.pending() == 0
    h.clock.advance(100)
    assert h.manager.request_times() == [0.0, 0.5]
    assert h.stats.value("sip_transaction_timeouts_total", timer="B") == 0


def test_provisionals_in_proceeding_passed_up() -> None:
    """Further provisionals in Proceeding reach the user."""
    h, request, tx = open_client("INVITE")
    answer(h, request, 100)
    answer(h, request, 180)
    answer(h, request, 183)
    assert h.user.statuses() == [100, 180, 183]
    assert tx.state == "proceeding"


def test_2xx_moves_to_accepted() -> None:
    """A 2xx reaches the user and moves to Accepted; the transaction sends no ACK."""
    h, request, tx = open_client("INVITE")
    answer(h, request, 180)
    answer(h, request, 200)
    assert tx.state == "accepted"
    assert h.user.statuses() == [180, 200]
    assert h.manager.sent("ACK") == []


def test_2xx_in_calling_stops_a_and_b() -> None:
    """A 2xx straight from Calling stops timers A and B; only timer M runs."""
    h, request, _tx = open_client("INVITE")
    answer(h, request, 200)
    assert h.pending() == 1
    h.clock.advance(31.9)
    assert h.manager.request_times() == [0.0]


def test_timer_m_terminates_accepted() -> None:
    """Timer M (64*T1) ends Accepted and removes the transaction, on TCP too."""
    for hop in (UDP_HOP, TCP_HOP):
        h, request, tx = open_client("INVITE", hop=hop)
        answer(h, request, 200)
        h.clock.advance(31.999)
        assert tx.state == "accepted"
        h.clock.advance(0.001)
        assert tx.state == "terminated"
        assert h.layer.client == {}


def test_accepted_passes_further_2xx_to_user() -> None:
    """In Accepted every further 2xx reaches the user (RFC 6026 §7.2)."""
    h, request, _tx = open_client("INVITE")
    answer(h, request, 200)
    answer(h, request, 200)
    h.receive(make_response(request, 200, to_tag="fork2"))
    assert h.user.statuses() == [200, 200, 200]
    assert h.user.events[-1][1].to.tag == "fork2"


def test_accepted_absorbs_other_responses() -> None:
    """In Accepted provisionals and non-2xx finals are absorbed."""
    h, request, _tx = open_client("INVITE")
    answer(h, request, 200)
    answer(h, request, 180)
    answer(h, request, 486)
    assert h.user.statuses() == [200]
    assert h.manager.sent("ACK") == []


def test_non_2xx_moves_to_completed_and_acks() -> None:
    """A 3xx-6xx reaches the user, moves to Completed and is ACKed once to the same hop."""
    h, request, tx = open_client("INVITE")
    h.run(0.7)
    answer(h, request, 486)
    assert tx.state == "completed"
    assert h.user.statuses() == [486]
    acks = [entry for entry in h.manager.requests if entry[1].method == "ACK"]
    assert len(acks) == 1
    assert acks[0][2:] == ("UDP", "127.0.0.1", 5080)
    assert h.pending() == 1  # timer D only
    h.clock.advance(10)
    assert h.manager.request_times("INVITE") == [0.0, 0.5]


def test_ack_built_per_17_1_1_3() -> None:
    """The ACK copies R-URI, Call-ID, From, Route, CSeq number, top Via; To from the response."""
    h, request, _tx = open_client(
        "INVITE",
        uri="sip:bob@127.0.0.1:5080",
        via=[CLIENT_VIA, UPSTREAM_VIA],
        route=ROUTES,
        cseq="314 INVITE",
    )
    answer(h, request, 603)
    (ack,) = h.manager.sent("ACK")
    assert ack.ruri == "sip:bob@127.0.0.1:5080"
    assert ack.get_all("via") == [CLIENT_VIA]
    assert ack.top_via.branch == CLIENT_BRANCH
    assert ack.call_id == request.call_id
    assert ack.get("from") == request.get("from")
    assert ack.get_all("route") == ROUTES
    assert (ack.cseq.number, ack.cseq.method) == (314, "ACK")
    assert ack.to.tag == "callee1"
    assert ack.get("to") == f"{request.get('to')};tag=callee1"
    assert ack.max_forwards == 70
    assert ack.get("contact") is None
    assert ack.body == b""


def test_retransmitted_final_resends_ack() -> None:
    """In Completed each retransmitted final re-sends the same ACK and is not passed up."""
    h, request, _tx = open_client("INVITE")
    answer(h, request, 486)
    h.clock.advance(0.5)
    answer(h, request, 486)
    h.clock.advance(1.0)
    answer(h, request, 486)
    acks = h.manager.sent("ACK")
    assert len(acks) == 3
    assert acks[1] is acks[0] and acks[2] is acks[0]
    assert h.manager.request_times("ACK") == [0.0, 0.5, 1.5]
    assert h.user.statuses() == [486]


def test_completed_absorbs_provisional_and_2xx() -> None:
    """In Completed a late 1xx or 2xx sends nothing and is not passed up."""
    h, request, _tx = open_client("INVITE")
    answer(h, request, 486)
    answer(h, request, 180)
    answer(h, request, 200)
    assert len(h.manager.sent("ACK")) == 1
    assert h.user.statuses() == [486]


def test_timer_d_udp_is_32_seconds() -> None:
    """On UDP timer D keeps Completed for 32 s, then terminates."""
    h, request, tx = open_client("INVITE")
    answer(h, request, 486)
    h.clock.advance(31.999)
    assert tx.state == "completed"
    h.clock.advance(0.001)
    assert tx.state == "terminated"
    assert h.layer.client == {}
    assert h.pending() == 0


def test_timer_d_tcp_is_immediate() -> None:
    """On TCP the non-2xx final is ACKed and the transaction terminates at once."""
    h, request, tx = open_client("INVITE", hop=TCP_HOP)
    answer(h, request, 486)
    assert tx.state == "terminated"
    assert h.layer.client == {}
    assert h.pending() == 0
    assert [entry[2] for entry in h.manager.requests] == ["TCP", "TCP"]
    assert h.user.statuses() == [486]


def test_invite_transport_failure_on_start() -> None:
    """When the INVITE cannot be sent: transport_failed, counted, removed, no timers."""
    h = Harness()
    h.manager.fail = True
    tx = h.layer.start_client(client_request("INVITE"), UDP_HOP, h.user)
    assert h.user.events == [("transport_failed", tx)]
    assert h.layer.client == {}
    assert h.pending() == 0
    assert h.stats.value("sip_transport_errors_total") == 1


def test_invite_stop_cancels_a_and_b() -> None:
    """stop() in Calling terminates silently and cancels timers A and B."""
    h, _request, tx = open_client("INVITE")
    tx.stop()
    assert tx.state == "terminated"
    assert h.pending() == 0
    assert h.user.events == []


# -- CANCEL (§9.1) ----------------------------------------------------------------------


def test_cancel_before_provisional_waits() -> None:
    """cancel() in Calling sends nothing; the CANCEL goes out when the first 1xx arrives."""
    h, request, tx = open_client("INVITE")
    tx.cancel()
    assert h.manager.sent("CANCEL") == []
    assert tx.cancel_sent is False
    h.clock.advance(0.7)
    assert h.manager.sent("CANCEL") == []
    answer(h, request, 100)
    assert len(h.manager.sent("CANCEL")) == 1
    assert h.manager.request_times("CANCEL") == [0.7]
    assert tx.cancel_sent is True
    assert h.user.statuses() == [100]


def test_cancel_after_provisional_sent_at_once() -> None:
    """cancel() in Proceeding sends the CANCEL at once to the INVITE's hop."""
    h, request, tx = open_client("INVITE")
    answer(h, request, 180)
    tx.cancel()
    cancels = [entry for entry in h.manager.requests if entry[1].method == "CANCEL"]
    assert len(cancels) == 1
    assert cancels[0][2:] == ("UDP", "127.0.0.1", 5080)
    assert tx.cancel_sent is True


def test_cancel_is_its_own_client_transaction() -> None:
    """The CANCEL runs as a non-INVITE client transaction keyed (branch, 'CANCEL')."""
    h, request, tx = open_client("INVITE")
    answer(h, request, 180)
    tx.cancel()
    ctx = h.layer.client[(CLIENT_BRANCH, "CANCEL")]
    assert type(ctx) is ClientTransaction
    assert ctx.user is NULL_USER
    assert ctx.hop == UDP_HOP
    assert h.layer.in_flight() == 2
    h.clock.advance(0.5)
    assert h.manager.request_times("CANCEL") == [0.0, 0.5]


def test_cancel_built_per_9_1() -> None:
    """The CANCEL copies R-URI, Call-ID, From, To, Route, CSeq number and only the top Via."""
    h, request, tx = open_client(
        "INVITE",
        uri="sip:bob@127.0.0.1:5080",
        via=[CLIENT_VIA, UPSTREAM_VIA],
        route=ROUTES,
        cseq="314 INVITE",
    )
    answer(h, request, 180)
    tx.cancel()
    (cancel,) = h.manager.sent("CANCEL")
    assert cancel.ruri == "sip:bob@127.0.0.1:5080"
    assert cancel.get_all("via") == [CLIENT_VIA]
    assert cancel.call_id == request.call_id
    assert cancel.get("from") == request.get("from")
    assert cancel.get("to") == request.get("to")
    assert cancel.to.tag is None
    assert cancel.get_all("route") == ROUTES
    assert (cancel.cseq.number, cancel.cseq.method) == (314, "CANCEL")
    assert cancel.max_forwards == 70
    assert cancel.get("reason") is None
    assert cancel.get("contact") is None


def test_cancel_carries_reason() -> None:
    """cancel(reason) adds a Reason header (RFC 3326) to the CANCEL."""
    h, request, tx = open_client("INVITE")
    tx.cancel('SIP;cause=200;text="Call completed elsewhere"')
    answer(h, request, 180)
    (cancel,) = h.manager.sent("CANCEL")
    assert cancel.get("reason") == 'SIP;cause=200;text="Call completed elsewhere"'


def test_cancel_twice_sends_one() -> None:
    """A second cancel() sends no second CANCEL."""
    h, request, tx = open_client("INVITE")
    answer(h, request, 180)
    tx.cancel()
    tx.cancel()
    answer(h, request, 183)
    assert len(h.manager.sent("CANCEL")) == 1


def test_cancel_after_final_does_nothing() -> None:
    """cancel() in Completed or Accepted sends nothing."""
    for status in (486, 200):
        h, request, tx = open_client("INVITE")
        answer(h, request, 180)
        answer(h, request, status)
        tx.cancel()
        assert h.manager.sent("CANCEL") == []
        assert tx.cancel_sent is False


def test_pending_cancel_dropped_by_final() -> None:
    """A cancel() waiting for a provisional is never sent when a final comes first."""
    h, request, tx = open_client("INVITE")
    tx.cancel()
    answer(h, request, 486)
    answer(h, request, 486)
    assert h.manager.sent("CANCEL") == []
    assert h.layer.client == {tx.key: tx}


def test_cancel_responses_do_not_reach_invite_user() -> None:
    """The 200 to the CANCEL goes to its own transaction; the INVITE's 487 is ACKed."""
    h, request, tx = open_client("INVITE")
    answer(h, request, 180)
    tx.cancel()
    (cancel,) = h.manager.sent("CANCEL")
    ctx = h.layer.client[(CLIENT_BRANCH, "CANCEL")]
    h.receive(make_response(cancel, 200, to_tag="callee1"))
    assert ctx.state == "completed"
    answer(h, request, 487)
    assert h.user.statuses() == [180, 487]
    assert len(h.manager.sent("ACK")) == 1
    assert tx.state == "completed"


def test_cancelled_invite_gives_up_64_t1_after_cancel() -> None:
    """Without a final 64*T1 after the CANCEL, the INVITE transaction times out (§9.1)."""
    h, request, tx = open_client("INVITE")
    h.clock.advance(10)
    answer(h, request, 180)
    h.clock.advance(5)
    tx.cancel()
    h.clock.advance(31.75)
    assert tx.state == "proceeding"
    h.clock.advance(0.25)
    assert tx.state == "terminated"
    assert h.user.events[-1] == ("timed_out", tx)
    assert h.layer.client == {}
    assert h.pending() == 0


def test_final_after_cancel_stops_the_wait() -> None:
    """The 487 after a CANCEL stops the §9.1 wait; timer D follows as usual."""
    h, request, tx = open_client("INVITE")
    answer(h, request, 180)
    tx.cancel()
    h.clock.advance(1)
    answer(h, request, 487)
    h.clock.advance(32)
    assert tx.state == "terminated"
    assert [e[0] for e in h.user.events] == ["response", "response"]


def test_lower_case_udp_hop_retransmits() -> None:
    """A hop transport spelt 'udp' is still unreliable: timer E runs."""
    h, _request, tx = open_client(hop=("udp", "127.0.0.1", 5080))
    assert tx.reliable is False
    h.run(1.6)
    assert h.manager.request_times() == [0.0, 0.5, 1.5]


def test_deferred_cancel_wait_starts_when_cancel_sent() -> None:
    """For a cancel() made in Calling, the 64*T1 wait starts when the CANCEL goes out."""
    h, request, tx = open_client("INVITE")
    tx.cancel()
    h.clock.advance(2)
    answer(h, request, 100)
    h.clock.advance(31.75)
    assert tx.state == "proceeding"
    h.clock.advance(0.25)
    assert tx.state == "terminated"
    assert h.stats.value("sip_transaction_timeouts_total", timer="B") == 1
