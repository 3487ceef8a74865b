"""Tests of sipapp.transaction.server: the non-INVITE and INVITE server state machines (§17.2)."""

from __future__ import annotations

from typing import Any

import pytest

from sipapp.sip import Request, make_response
from sipapp.testing import parsed_request
from sipapp.transaction import InviteServerTransaction, ServerTransaction, Timers
from sipapp.transport import Source

from .fakes import TCP_SOURCE, UDP_SOURCE, Harness


def open_server(
    method: str = "OPTIONS", source: Source = UDP_SOURCE, timers: Timers | None = None
) -> tuple[Harness, Request, Any]:
    """A harness whose layer received one new ``method`` request from ``source``."""
    h = Harness(timers)
    request = parsed_request(method)
    h.receive(request, source)
    return h, request, h.last_transaction()


def ack_for(invite: Request) -> Request:
    """The hop-by-hop ACK for a non-2xx final to ``invite`` (same branch, §17.1.1.3)."""
    return parsed_request("ACK", cseq=f"{invite.cseq.number} ACK")


# -- non-INVITE server transaction (§17.2.2) ------------------------------------------


def test_non_invite_starts_in_trying() -> None:
    """A new non-INVITE request creates a ServerTransaction in Trying, known to the layer."""
    h, request, tx = open_server()
    assert type(tx) is ServerTransaction
    assert tx.state == "trying"
    assert tx.request is request
    assert h.layer.server == {tx.key: tx}
    assert h.pending() == 0


def test_trying_retransmission_absorbed_silently() -> None:
    """In Trying a retransmitted request sends nothing and does not reach the user."""
    h, _request, tx = open_server()
    h.receive(parsed_request("OPTIONS"))
    assert h.manager.responses == []
    assert len(h.user.named("request")) == 1
    assert tx.state == "trying"
    assert h.stats.value("sip_retransmissions_absorbed_total") == 1


def test_provisional_moves_to_proceeding() -> None:
    """A 1xx from the user is sent and moves Trying to Proceeding."""
    h, request, tx = open_server()
    tx.respond(make_response(request, 100))
    assert tx.state == "proceeding"
    assert h.manager.statuses() == [100]
    assert h.manager.responses[0][2] is UDP_SOURCE


def test_proceeding_retransmission_repeats_provisional() -> None:
    """In Proceeding every retransmitted request gets the last provisional again."""
    h, request, tx = open_server()
    tx.respond(make_response(request, 100))
    tx.respond(make_response(request, 183))
    h.receive(parsed_request("OPTIONS"))
    h.receive(parsed_request("OPTIONS"))
    assert h.manager.statuses() == [100, 183, 183, 183]
    assert h.manager.responses[-1][1] is tx.last_response
    assert len(h.user.named("request")) == 1


def test_final_moves_to_completed() -> None:
    """A final response is sent and moves the transaction to Completed on UDP."""
    h, request, tx = open_server()
    tx.respond(make_response(request, 200, to_tag="t1"))
    assert tx.state == "completed"
    assert h.manager.statuses() == [200]


def test_completed_retransmission_repeats_final() -> None:
    """In Completed a retransmitted request gets the final response again, not passed up."""
    h, request, tx = open_server()
    tx.respond(make_response(request, 100))
    tx.respond(make_response(request, 404, to_tag="t1"))
    h.receive(parsed_request("OPTIONS"))
    assert h.manager.statuses() == [100, 404, 404]
    assert len(h.user.named("request")) == 1


def test_completed_ignores_further_responses() -> None:
    """Once Completed, responses from the user are not sent."""
    h, request, tx = open_server()
    tx.respond(make_response(request, 200, to_tag="t1"))
    tx.respond(make_response(request, 500, to_tag="t1"))
    tx.respond(make_response(request, 180))
    assert h.manager.statuses() == [200]
    assert tx.last_response.status == 200


def test_timer_j_udp_is_64_t1() -> None:
    """On UDP timer J keeps Completed for 64*T1 (32 s), then terminates."""
    h, request, tx = open_server()
    tx.respond(make_response(request, 200, to_tag="t1"))
    h.clock.advance(31.999)
    assert tx.state == "completed"
    assert h.layer.server == {tx.key: tx}
    h.clock.advance(0.001)
    assert tx.state == "terminated"
    assert h.layer.server == {}


def test_timer_j_follows_t1() -> None:
    """With T1 = 100 ms timer J is 6.4 s."""
    h, request, tx = open_server(timers=Timers(t1=0.1))
    tx.respond(make_response(request, 200, to_tag="t1"))
    h.clock.advance(6.3)
    assert tx.state == "completed"
    h.clock.advance(0.2)
    assert tx.state == "terminated"


def test_timer_j_tcp_is_immediate() -> None:
    """On TCP the final response terminates the transaction at once (timer J = 0)."""
    h, request, tx = open_server(source=TCP_SOURCE)
    tx.respond(make_response(request, 200, to_tag="t1"))
    assert tx.state == "terminated"
    assert h.layer.server == {}
    assert h.pending() == 0
    assert h.manager.responses[0][2] is TCP_SOURCE


def test_terminated_is_removed_from_the_layer() -> None:
    """After timer J a request with the same branch is new again and reaches the user."""
    h, request, tx = open_server()
    tx.respond(make_response(request, 200, to_tag="t1"))
    h.clock.advance(32)
    assert h.layer.server == {}
    h.receive(parsed_request("OPTIONS"))
    assert len(h.user.named("request")) == 2
    assert h.last_transaction() is not tx
    assert h.manager.statuses() == [200]


def test_terminated_retransmission_not_answered() -> None:
    """A terminated transaction no longer answers retransmissions even if asked directly."""
    h, request, tx = open_server()
    tx.respond(make_response(request, 200, to_tag="t1"))
    h.clock.advance(32)
    tx.retransmission(request)
    tx.respond(make_response(request, 200, to_tag="t1"))
    assert h.manager.statuses() == [200]


def test_non_invite_ignores_ack() -> None:
    """ack() on a non-INVITE transaction changes nothing."""
    _h, _request, tx = open_server()
    tx.ack(parsed_request("ACK"))
    assert tx.state == "trying"


def test_non_invite_stop_cancels_timer_j() -> None:
    """stop() terminates a Completed transaction and cancels timer J."""
    h, request, tx = open_server()
    tx.respond(make_response(request, 200, to_tag="t1"))
    tx.stop()
    assert tx.state == "terminated"
    assert h.layer.server == {}
    assert h.pending() == 0


# -- INVITE server transaction (§17.2.1, RFC 6026 §7.1) -------------------------------


def test_invite_starts_in_proceeding() -> None:
    """A new INVITE creates an InviteServerTransaction in Proceeding, not cancelled."""
    h, _request, tx = open_server("INVITE")
    assert type(tx) is InviteServerTransaction
    assert tx.state == "proceeding"
    assert tx.cancelled is False
    assert h.pending() == 0


def test_invite_retransmission_before_any_response_absorbed() -> None:
    """A retransmitted INVITE before any response sends nothing and is not passed up."""
    h, _request, _tx = open_server("INVITE")
    h.receive(parsed_request("INVITE"))
    assert h.manager.responses == []
    assert len(h.user.named("request")) == 1
    assert h.stats.value("sip_retransmissions_absorbed_total") == 1


def test_invite_retransmission_gets_last_provisional() -> None:
    """A retransmitted INVITE gets the most recent provisional again."""
    h, request, tx = open_server("INVITE")
    tx.respond(make_response(request, 100))
    tx.respond(make_response(request, 180, to_tag="t1"))
    h.receive(parsed_request("INVITE"))
    assert h.manager.statuses() == [100, 180, 180]
    assert tx.state == "proceeding"


def test_invite_2xx_moves_to_accepted() -> None:
    """A 2xx is sent and moves the INVITE transaction to Accepted (RFC 6026)."""
    h, request, tx = open_server("INVITE")
    tx.respond(make_response(request, 200, to_tag="t1"))
    assert tx.state == "accepted"
    assert h.manager.statuses() == [200]


def test_timer_l_terminates_accepted() -> None:
    """Timer L (64*T1) ends the Accepted state and removes the transaction."""
    h, request, tx = open_server("INVITE")
    tx.respond(make_response(request, 200, to_tag="t1"))
    h.clock.advance(31.999)
    assert tx.state == "accepted"
    h.clock.advance(0.001)
    assert tx.state == "terminated"
    assert h.layer.server == {}


def test_timer_l_also_on_tcp() -> None:
    """Timer L runs on TCP too: Accepted is about 2xx retransmissions from the user."""
    h, request, tx = open_server("INVITE", source=TCP_SOURCE)
    tx.respond(make_response(request, 200, to_tag="t1"))
    assert tx.state == "accepted"
    h.clock.advance(32)
    assert tx.state == "terminated"


def test_accepted_sends_2xx_retransmissions_from_user() -> None:
    """In Accepted each 2xx the user passes is sent; other responses are not."""
    h, request, tx = open_server("INVITE")
    ok = make_response(request, 200, to_tag="t1")
    tx.respond(ok)
    h.clock.advance(0.5)
    tx.respond(ok)
    h.clock.advance(1.0)
    tx.respond(ok)
    tx.respond(make_response(request, 486, to_tag="t1"))
    tx.respond(make_response(request, 180, to_tag="t1"))
    assert h.manager.statuses() == [200, 200, 200]
    assert h.manager.response_times() == [0.0, 0.5, 1.5]
    assert tx.state == "accepted"


def test_accepted_absorbs_invite_retransmission() -> None:
    """A retransmitted INVITE in Accepted is absorbed: no response, not passed up."""
    h, request, tx = open_server("INVITE")
    tx.respond(make_response(request, 200, to_tag="t1"))
    h.receive(parsed_request("INVITE"))
    assert h.manager.statuses() == [200]
    assert len(h.user.named("request")) == 1


def test_non_2xx_moves_to_completed() -> None:
    """A 3xx-6xx final moves the INVITE transaction to Completed."""
    h, request, tx = open_server("INVITE")
    tx.respond(make_response(request, 302, to_tag="t1"))
    assert tx.state == "completed"
    assert h.manager.statuses() == [302]


def test_timer_g_first_retransmission_after_t1() -> None:
    """On UDP the final is sent again exactly T1 (0.5 s) after it was first sent."""
    h, request, tx = open_server("INVITE")
    tx.respond(make_response(request, 486, to_tag="t1"))
    h.clock.advance(0.499)
    assert h.manager.statuses() == [486]
    h.clock.advance(0.001)
    assert h.manager.statuses() == [486, 486]


def test_timer_g_doubles_up_to_t2() -> None:
    """Timer G fires at T1, 2T1, 4T1 then every T2 (4 s) until timer H."""
    h, request, tx = open_server("INVITE")
    tx.respond(make_response(request, 486, to_tag="t1"))
    h.run(31.9)
    assert h.manager.response_times() == [
        0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5
    ]  # fmt: skip


def test_timer_g_follows_t1_and_t2() -> None:
    """With T1 = 100 ms and T2 = 400 ms timer G runs 0.1, 0.2, then 0.4 apart."""
    h, request, tx = open_server("INVITE", timers=Timers(t1=0.1, t2=0.4))
    tx.respond(make_response(request, 486, to_tag="t1"))
    h.run(1.15)
    assert h.manager.response_times() == pytest.approx([0.0, 0.1, 0.3, 0.7, 1.1])


def test_no_timer_g_on_tcp() -> None:
    """On TCP the final is sent once; only timer H runs."""
    h, request, tx = open_server("INVITE", source=TCP_SOURCE)
    tx.respond(make_response(request, 486, to_tag="t1"))
    assert h.pending() == 1
    h.clock.advance(31.9)
    assert h.manager.statuses() == [486]
    assert tx.state == "completed"


def test_timer_h_terminates_and_counts_timeout() -> None:
    """Without an ACK timer H (64*T1) terminates the transaction and counts a timeout."""
    h, request, tx = open_server("INVITE")
    tx.respond(make_response(request, 486, to_tag="t1"))
    h.clock.advance(31.999)
    assert tx.state == "completed"
    h.clock.advance(0.001)
    assert tx.state == "terminated"
    assert h.layer.server == {}
    assert h.stats.value("sip_transaction_timeouts_total", timer="H") == 1
    assert h.pending() == 0
    sent = len(h.manager.responses)
    h.clock.advance(100)
    assert len(h.manager.responses) == sent


def test_timer_h_on_tcp() -> None:
    """Timer H also runs on TCP."""
    h, request, tx = open_server("INVITE", source=TCP_SOURCE)
    tx.respond(make_response(request, 486, to_tag="t1"))
    h.clock.advance(32)
    assert tx.state == "terminated"
    assert h.stats.value("sip_transaction_timeouts_total", timer="H") == 1


def test_completed_invite_retransmission_repeats_final() -> None:
    """A retransmitted INVITE in Completed gets the final response again."""
    h, request, tx = open_server("INVITE", source=TCP_SOURCE)
    tx.respond(make_response(request, 180, to_tag="t1"))
    tx.respond(make_response(request, 486, to_tag="t1"))
    h.receive(parsed_request("INVITE"), TCP_SOURCE)
    assert h.manager.statuses() == [180, 486, 486]


def test_ack_moves_completed_to_confirmed() -> None:
    """An ACK for the non-2xx final moves to Confirmed, stops G and H, and is absorbed."""
    h, request, tx = open_server("INVITE")
    tx.respond(make_response(request, 486, to_tag="t1"))
    h.clock.advance(0.7)
    h.receive(ack_for(request))
    assert tx.state == "confirmed"
    assert [e[0] for e in h.user.events] == ["request"]
    h.clock.advance(4.999)
    assert h.manager.statuses() == [486, 486]
    assert h.stats.value("sip_transaction_timeouts_total", timer="H") == 0


def test_timer_i_udp_is_t4() -> None:
    """On UDP timer I keeps Confirmed for T4 (5 s), then terminates."""
    h, request, tx = open_server("INVITE")
    tx.respond(make_response(request, 486, to_tag="t1"))
    h.receive(ack_for(request))
    assert h.pending() == 1
    h.clock.advance(4.999)
    assert tx.state == "confirmed"
    h.clock.advance(0.001)
    assert tx.state == "terminated"
    assert h.layer.server == {}
    assert h.pending() == 0


def test_timer_i_tcp_is_immediate() -> None:
    """On TCP the ACK terminates the transaction at once (timer I = 0)."""
    h, request, tx = open_server("INVITE", source=TCP_SOURCE)
    tx.respond(make_response(request, 486, to_tag="t1"))
    h.receive(ack_for(request), TCP_SOURCE)
    assert tx.state == "terminated"
    assert h.layer.server == {}
    assert h.pending() == 0


def test_confirmed_absorbs_ack_and_invite() -> None:
    """In Confirmed a retransmitted ACK or INVITE sends nothing and is not passed up."""
    h, request, tx = open_server("INVITE")
    tx.respond(make_response(request, 486, to_tag="t1"))
    h.receive(ack_for(request))
    h.receive(ack_for(request))
    h.receive(parsed_request("INVITE"))
    assert h.manager.statuses() == [486]
    assert [e[0] for e in h.user.events] == ["request"]
    assert tx.state == "confirmed"


def test_ack_in_proceeding_ignored() -> None:
    """An ACK before any final changes nothing and is not passed up."""
    h, request, tx = open_server("INVITE")
    h.receive(ack_for(request))
    assert tx.state == "proceeding"
    assert [e[0] for e in h.user.events] == ["request"]


def test_invite_ignores_responses_after_completed() -> None:
    """In Completed and Confirmed the user's responses are not sent."""
    h, request, tx = open_server("INVITE")
    tx.respond(make_response(request, 486, to_tag="t1"))
    tx.respond(make_response(request, 200, to_tag="t1"))
    h.receive(ack_for(request))
    tx.respond(make_response(request, 200, to_tag="t1"))
    assert h.manager.statuses() == [486]


def test_invite_stop_cancels_g_and_h() -> None:
    """stop() in Completed terminates and cancels timers G and H."""
    h, request, tx = open_server("INVITE")
    tx.respond(make_response(request, 486, to_tag="t1"))
    assert h.pending() == 2
    tx.stop()
    assert tx.state == "terminated"
    assert h.pending() == 0
    assert h.layer.server == {}


def test_invite_stop_cancels_timer_l() -> None:
    """stop() in Accepted terminates and cancels timer L."""
    h, request, tx = open_server("INVITE")
    tx.respond(make_response(request, 200, to_tag="t1"))
    tx.stop()
    assert tx.state == "terminated"
    assert h.pending() == 0
