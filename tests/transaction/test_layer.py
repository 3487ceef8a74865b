"""Tests of sipapp.transaction.layer: matching messages to transactions (§17.1.3, §17.2.3)."""

from __future__ import annotations

from twisted.logger import capturedLogs
from zope.interface.verify import verifyObject

from sipapp.interfaces import IMessageHandler, ITransportManager
from sipapp.sip import Response, make_response
from sipapp.testing import BRANCH, CALL_ID, FROM_TAG, parsed_request, parsed_response
from sipapp.transaction import InviteServerTransaction, ServerTransaction
from sipapp.transaction.layer import server_key

from .fakes import CLIENT_VIA, TCP_SOURCE, UDP_HOP, UDP_SOURCE, Harness, client_request

#: A top Via from an RFC 2543 client: no magic cookie in the branch.
OLD_VIA = "SIP/2.0/UDP 127.0.0.1:5070;branch=1"


def test_layer_provides_imessagehandler() -> None:
    """TransactionLayer implements IMessageHandler; the fake manager ITransportManager."""
    h = Harness()
    assert verifyObject(IMessageHandler, h.layer)
    assert verifyObject(ITransportManager, h.manager)


# -- server_key (§17.2.3) -------------------------------------------------------------


def test_server_key_with_magic_cookie() -> None:
    """With a z9hG4bK branch the key is (branch, sent-by host, sent-by port, method)."""
    assert server_key(parsed_request("OPTIONS")) == (BRANCH, "127.0.0.1", 5060, "OPTIONS")


def test_server_key_ack_counts_as_invite() -> None:
    """An ACK has the key of the INVITE it acknowledges."""
    assert server_key(parsed_request("ACK")) == server_key(parsed_request("INVITE"))


def test_server_key_without_magic_cookie() -> None:
    """Without the cookie the key is R-URI, From tag, Call-ID, CSeq number, sent-by, method."""
    request = parsed_request("INVITE", via=OLD_VIA, cseq="7 INVITE")
    assert server_key(request) == (
        "sip:bob@example.com", FROM_TAG, CALL_ID, 7, "127.0.0.1", 5070, "INVITE"
    )  # fmt: skip


def test_server_key_bare_cookie_or_no_branch_falls_back() -> None:
    """A branch that is only 'z9hG4bK', or no branch at all, uses the RFC 2543 key."""
    for via in ("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK", "SIP/2.0/UDP 127.0.0.1:5070"):
        assert len(server_key(parsed_request("INVITE", via=via))) == 7


# -- server transaction matching --------------------------------------------------------


def test_new_request_reaches_user_with_its_transaction() -> None:
    """A new request is passed up with its new server transaction and source."""
    h = Harness()
    request = parsed_request("OPTIONS")
    h.receive(request, TCP_SOURCE)
    (event,) = h.user.events
    assert event[0] == "request"
    assert event[1] is request
    assert type(event[2]) is ServerTransaction
    assert event[3] is TCP_SOURCE
    assert event[2].source is TCP_SOURCE
    assert h.layer.server == {server_key(request): event[2]}


def test_retransmission_with_received_param_matches() -> None:
    """A retransmission matches by branch and sent-by even when its Via gained a received."""
    h = Harness()
    h.receive(parsed_request("INVITE"))
    h.receive(parsed_request("INVITE", via=f"SIP/2.0/UDP 127.0.0.1:5060;branch={BRANCH};rport"))
    assert len(h.user.events) == 1
    assert h.layer.in_flight() == 1


def test_other_sent_by_is_another_transaction() -> None:
    """The same branch from another sent-by is a different transaction."""
    h = Harness()
    h.receive(parsed_request("OPTIONS"))
    h.receive(parsed_request("OPTIONS", via=f"SIP/2.0/UDP 127.0.0.1:5061;branch={BRANCH}"))
    assert len(h.user.named("request")) == 2
    assert h.layer.in_flight() == 2


def test_other_branch_is_another_transaction() -> None:
    """A different branch is a different transaction."""
    h = Harness()
    h.receive(parsed_request("OPTIONS"))
    h.receive(parsed_request("OPTIONS", via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKother"))
    assert len(h.user.named("request")) == 2


def test_ack_matches_invite_transaction() -> None:
    """An ACK with the INVITE's branch reaches its Completed transaction and is absorbed."""
    h = Harness()
    invite = parsed_request("INVITE")
    h.receive(invite)
    tx = h.last_transaction()
    assert type(tx) is InviteServerTransaction
    tx.respond(make_response(invite, 404, to_tag="t1"))
    h.receive(parsed_request("ACK"))
    assert tx.state == "confirmed"
    assert [e[0] for e in h.user.events] == ["request"]


def test_rfc2543_retransmission_matched() -> None:
    """Without a magic cookie a retransmitted INVITE still matches its transaction."""
    h = Harness()
    invite = parsed_request("INVITE", via=OLD_VIA)
    h.receive(invite)
    tx = h.last_transaction()
    tx.respond(make_response(invite, 180, to_tag="t1"))
    h.receive(parsed_request("INVITE", via=OLD_VIA))
    assert len(h.user.events) == 1
    assert h.manager.statuses() == [180, 180]


def test_rfc2543_ack_matched() -> None:
    """Without a magic cookie the ACK for a non-2xx matches the INVITE and is absorbed."""
    h = Harness()
    invite = parsed_request("INVITE", via=OLD_VIA)
    h.receive(invite)
    tx = h.last_transaction()
    tx.respond(make_response(invite, 486, to_tag="t1"))
    h.receive(parsed_request("ACK", via=OLD_VIA, to=f"{invite.get('to')};tag=t1"))
    assert tx.state == "confirmed"
    assert len(h.user.events) == 1


def test_rfc2543_new_cseq_is_new_transaction() -> None:
    """Without a magic cookie a new CSeq number is a new transaction."""
    h = Harness()
    h.receive(parsed_request("OPTIONS", via=OLD_VIA, cseq="1 OPTIONS"))
    h.receive(parsed_request("OPTIONS", via=OLD_VIA, cseq="2 OPTIONS"))
    assert len(h.user.named("request")) == 2


def test_cancel_matched_to_its_invite() -> None:
    """A CANCEL goes to cancel_received with its own transaction and the INVITE transaction."""
    h = Harness()
    h.receive(parsed_request("INVITE"))
    invite_tx = h.last_transaction()
    cancel = parsed_request("CANCEL")
    h.receive(cancel)
    event = h.user.events[-1]
    assert event[0] == "cancel"
    assert event[1] is cancel
    assert type(event[2]) is ServerTransaction
    assert event[2].key == (BRANCH, "127.0.0.1", 5060, "CANCEL")
    assert event[3] is invite_tx
    assert event[4] is UDP_SOURCE
    assert h.layer.in_flight() == 2


def test_cancel_without_invite() -> None:
    """A CANCEL that matches no INVITE transaction is passed up with invite None."""
    h = Harness()
    h.receive(parsed_request("CANCEL"))
    (event,) = h.user.events
    assert event[0] == "cancel"
    assert event[2] is not None
    assert event[3] is None


def test_cancel_for_other_branch_finds_no_invite() -> None:
    """A CANCEL with another branch does not match the INVITE."""
    h = Harness()
    h.receive(parsed_request("INVITE"))
    h.receive(parsed_request("CANCEL", via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKother"))
    assert h.user.events[-1][3] is None


def test_rfc2543_cancel_matched() -> None:
    """Without a magic cookie a CANCEL matches the INVITE by the RFC 2543 fields."""
    h = Harness()
    h.receive(parsed_request("INVITE", via=OLD_VIA))
    invite_tx = h.last_transaction()
    h.receive(parsed_request("CANCEL", via=OLD_VIA))
    assert h.user.events[-1][3] is invite_tx


def test_cancel_retransmission_absorbed() -> None:
    """A retransmitted CANCEL is absorbed by the CANCEL's transaction, which repeats its 200."""
    h = Harness()
    h.receive(parsed_request("INVITE"))
    cancel = parsed_request("CANCEL")
    h.receive(cancel)
    cancel_tx = h.last_transaction()
    cancel_tx.respond(make_response(cancel, 200, to_tag="t1"))
    h.receive(parsed_request("CANCEL"))
    assert len(h.user.named("cancel")) == 1
    assert h.manager.statuses() == [200, 200]


def test_ack_for_2xx_passed_up_without_transaction() -> None:
    """An ACK for a 2xx (new branch) reaches the user with transaction None; none is created."""
    h = Harness()
    invite = parsed_request("INVITE")
    h.receive(invite)
    h.last_transaction().respond(make_response(invite, 200, to_tag="t1"))
    ack = parsed_request("ACK", via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKack2xx")
    h.receive(ack)
    assert h.user.events[-1] == ("request", ack, None, UDP_SOURCE)
    assert len(h.layer.server) == 1


def test_ack_with_no_transaction_passed_up() -> None:
    """An ACK that matches nothing reaches the user with transaction None."""
    h = Harness()
    ack = parsed_request("ACK")
    h.receive(ack)
    assert h.user.events == [("request", ack, None, UDP_SOURCE)]
    assert h.layer.in_flight() == 0


def test_ack_matching_accepted_transaction_passed_up() -> None:
    """An ACK that matches an Accepted INVITE transaction is end to end: passed up with None."""
    h = Harness()
    invite = parsed_request("INVITE", via=OLD_VIA)
    h.receive(invite)
    tx = h.last_transaction()
    tx.respond(make_response(invite, 200, to_tag="t1"))
    ack = parsed_request("ACK", via=OLD_VIA)
    h.receive(ack)
    assert h.user.events[-1] == ("request", ack, None, UDP_SOURCE)
    assert tx.state == "accepted"


# -- client transaction matching (§17.1.3) ---------------------------------------------


def test_responses_matched_by_branch_and_cseq_method() -> None:
    """An INVITE and its CANCEL share a branch; each gets the responses of its CSeq method."""
    h = Harness()
    invite = client_request("INVITE")
    itx = h.layer.start_client(invite, UDP_HOP, h.user)
    cancel = client_request("CANCEL")
    ctx = h.layer.start_client(cancel, UDP_HOP, h.user)
    h.receive(make_response(cancel, 200, to_tag="t1"))
    h.receive(make_response(invite, 487, to_tag="t1"))
    assert [(e[1].status, e[2]) for e in h.user.named("response")] == [(200, ctx), (487, itx)]


def test_stray_response_unknown_branch() -> None:
    """A response whose branch matches no client transaction goes to stray_response."""
    h = Harness()
    response = parsed_response(200)
    h.receive(response, TCP_SOURCE)
    assert h.user.events == [("stray", response, TCP_SOURCE)]


def test_stray_response_other_method() -> None:
    """A response with a known branch but another CSeq method is stray."""
    h = Harness()
    invite = client_request("INVITE")
    h.layer.start_client(invite, UDP_HOP, h.user)
    response = make_response(invite, 200, to_tag="t1")
    response.set("CSeq", "1 BYE")
    h.receive(response)
    assert [e[0] for e in h.user.events] == ["stray"]


def test_response_uses_top_via_only() -> None:
    """Only the top Via's branch matters: our Via above the upstream one."""
    h = Harness()
    upstream = "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKupstream"
    invite = client_request("INVITE", via=[CLIENT_VIA, upstream])
    tx = h.layer.start_client(invite, UDP_HOP, h.user)
    h.receive(make_response(invite, 180, to_tag="t1"))
    assert h.user.events[-1][2] is tx


# -- bookkeeping --------------------------------------------------------------------------


def test_in_flight_counts_server_and_client() -> None:
    """in_flight() counts live server and client transactions in any state."""
    h = Harness()
    assert h.layer.in_flight() == 0
    request = parsed_request("OPTIONS")
    h.receive(request)
    h.receive(parsed_request("INVITE"))
    h.layer.start_client(client_request("OPTIONS"), UDP_HOP, h.user)
    assert h.layer.in_flight() == 3
    h.user.events[0][2].respond(make_response(request, 200, to_tag="t1"))
    assert h.layer.in_flight() == 3  # Completed still absorbs retransmissions
    h.clock.advance(32)
    assert h.layer.in_flight() == 1  # the INVITE server transaction waits for the user


def test_unanswered_counts_transactions_awaiting_a_final() -> None:
    """unanswered() counts server and client transactions in Trying, Proceeding or Calling."""
    h = Harness()
    assert h.layer.unanswered() == 0
    request = parsed_request("OPTIONS")
    h.receive(request)
    h.receive(parsed_request("INVITE"))
    h.layer.start_client(client_request("OPTIONS"), UDP_HOP, h.user)
    h.layer.start_client(client_request("INVITE"), UDP_HOP, h.user)
    assert h.layer.unanswered() == 4
    tx = h.user.events[0][2]
    tx.respond(make_response(request, 100))
    assert h.layer.unanswered() == 4
    tx.respond(make_response(request, 200, to_tag="t1"))
    assert h.layer.unanswered() == 3
    assert h.layer.in_flight() == 4


def test_unanswered_ignores_completed_accepted_confirmed() -> None:
    """Transactions only absorbing retransmissions (Completed, Accepted, Confirmed) do not count."""
    h = Harness()
    invite = parsed_request("INVITE")
    h.receive(invite)
    stx = h.last_transaction()
    stx.respond(make_response(invite, 486, to_tag="t1"))
    assert h.layer.unanswered() == 0
    h.receive(parsed_request("ACK"))
    assert stx.state == "confirmed"
    assert h.layer.unanswered() == 0
    request = client_request("INVITE")
    h.layer.start_client(request, UDP_HOP, h.user)
    h.receive(make_response(request, 200, to_tag="t1"))
    assert h.layer.unanswered() == 0
    assert h.layer.in_flight() == 2


def test_stop_terminates_everything() -> None:
    """stop() terminates every transaction, cancels every timer and tells no user."""
    h = Harness()
    invite = parsed_request("INVITE")
    h.receive(invite)
    h.last_transaction().respond(make_response(invite, 486, to_tag="t1"))
    h.receive(parsed_request("OPTIONS"))
    h.layer.start_client(client_request("INVITE"), UDP_HOP, h.user)
    h.layer.start_client(client_request("OPTIONS"), UDP_HOP, h.user)
    transactions = [*h.layer.server.values(), *h.layer.client.values()]
    events = list(h.user.events)
    h.layer.stop()
    assert h.layer.in_flight() == 0
    assert {tx.state for tx in transactions} == {"terminated"}
    assert h.pending() == 0
    assert h.user.events == events


def test_user_exception_logged_and_counted() -> None:
    """An exception raised by the user is logged and counted, never raised to the transport."""
    h = Harness()
    h.user.raise_in = {"request"}
    with capturedLogs() as events:
        h.receive(parsed_request("OPTIONS"))
    assert h.stats.value("sip_handler_errors_total") == 1
    failures = [e for e in events if "log_failure" in e]
    assert len(failures) == 1
    assert failures[0]["log_failure"].check(RuntimeError)
    assert failures[0]["host"] == "127.0.0.1"
    assert failures[0]["port"] == 5070


def test_client_user_exception_logged_and_counted() -> None:
    """An exception in a client transaction's user on a response is logged and counted."""
    h = Harness()
    invite = client_request("INVITE")
    tx = h.layer.start_client(invite, UDP_HOP, h.user)
    h.user.raise_in = {"response"}
    with capturedLogs() as events:
        h.receive(make_response(invite, 180, to_tag="t1"))
    assert h.stats.value("sip_handler_errors_total") == 1
    assert len([e for e in events if "log_failure" in e]) == 1
    assert tx.state == "proceeding"


def test_malformed_response_logged_and_counted() -> None:
    """A response without a Via cannot be matched: logged and counted, not raised."""
    h = Harness()
    response = Response(200)
    response.add("CSeq", "1 INVITE")
    with capturedLogs():
        h.receive(response)
    assert h.stats.value("sip_handler_errors_total") == 1
    assert h.user.events == []


def test_user_exception_answers_500() -> None:
    """A user failing on a new request leaves it unanswered: the layer sends 500 so it can end."""
    h = Harness()
    h.user.raise_in = {"request"}
    with capturedLogs():
        h.receive(parsed_request("INVITE"))
    tx = h.last_transaction()
    assert h.manager.statuses() == [500]
    assert h.manager.responses[0][1].to.tag
    assert tx.state == "completed"
    assert h.layer.unanswered() == 0
    h.receive(parsed_request("ACK"))
    h.clock.advance(5)
    assert h.layer.server == {}


def test_user_exception_after_final_keeps_answer() -> None:
    """When the user answered before failing, no 500 is added."""
    h = Harness()
    request = parsed_request("OPTIONS")

    def answer_then_fail(req: object, tx: ServerTransaction, source: object) -> None:
        tx.respond(make_response(request, 200, to_tag="t1"))
        raise RuntimeError("late failure")

    h.user.request_received = answer_then_fail  # type: ignore[method-assign]
    with capturedLogs():
        h.receive(request)
    assert h.manager.statuses() == [200]
    assert h.stats.value("sip_handler_errors_total") == 1
