"""Tests of sipapp.proxy.context: branches, forking and the best response (RFC 3261 §16.7).

Each test runs a real ``TransactionLayer`` and ``ProxyCore`` on a ``Clock``
with a fake transport manager: the caller's request goes in, the forwarded
copies are read from the manager, and downstream responses built from them
are fed back into the layer.
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.internet.defer import Deferred, succeed
from zope.interface.verify import verifyObject

from sipapp.config import Config, ProxyConfig
from sipapp.interfaces import IClientTransactionUser, IFailureHandler
from sipapp.proxy.context import REASON_ANSWERED_ELSEWHERE, Branch, group_targets
from sipapp.routing import Forward
from sipapp.sip import Request, Response
from sipapp.testing import parsed_response

from .fakes import BOB1, BOB2, CALLEE_SOURCE, CALLER_VIA, FailureHandler, Fixed, Proxy, target

BOB3 = "sip:bob@127.0.0.1:5094"


def forking(*uris: str, serial: bool = False, targets: tuple[Any, ...] = (), **kw: Any) -> Proxy:
    """A proxy whose route forwards every request to ``uris`` (or ``targets``)."""
    chosen = targets or tuple(target(u) for u in uris)
    return Proxy([Fixed(Forward(chosen, serial))], **kw)


def invite(proxy: Proxy, **kw: Any) -> list[Request]:
    """Send an INVITE from the caller; the copies forwarded downstream."""
    proxy.send("INVITE", **kw)
    return proxy.manager.sent("INVITE")


def answered_upstream(proxy: Proxy) -> list[Response]:
    """Responses that went to the caller, 100 Trying left out."""
    return [r for r in proxy.manager.upstream() if r.status != 100]


# -- starting branches ------------------------------------------------------------------


def test_parallel_fork_sends_every_branch() -> None:
    """Two targets of one group: both INVITEs leave at once with distinct branches."""
    p = forking(BOB1, BOB2)
    sent = invite(p)
    assert [r.ruri for r in sent] == [BOB1, BOB2]
    assert p.manager.hops("INVITE") == [("UDP", "127.0.0.1", 5090), ("UDP", "127.0.0.1", 5092)]
    assert sent[0].top_via.branch != sent[1].top_via.branch
    assert all(r.via[1].branch == "z9hG4bKcaller1" for r in sent)
    assert p.statuses() == [100]


def test_branch_provides_client_transaction_user() -> None:
    """A Branch is the IClientTransactionUser of its client transaction."""
    p = forking(BOB1)
    invite(p)
    (tx,) = p.layer.client.values()
    assert isinstance(tx.user, Branch)
    assert verifyObject(IClientTransactionUser, tx.user)


def test_group_targets_by_q_or_one_by_one() -> None:
    """Groups by descending q (equal q together); serial makes one group per target."""
    a, b, c = target(BOB1, q=0.5), target(BOB2, q=1.0), target(BOB3, q=0.5)
    assert group_targets((a, b, c), serial=False) == [[b], [a, c]]
    assert group_targets((a, b, c), serial=True) == [[a], [b], [c]]


# -- provisional responses ---------------------------------------------------------------


def test_provisional_forwarded_once_per_branch() -> None:
    """Each branch's 180 goes upstream once, without our Via."""
    p = forking(BOB1, BOB2)
    one, two = invite(p)
    p.answer(one, 180, to_tag="t1")
    p.answer(two, 180, to_tag="t2")
    ringing = answered_upstream(p)
    assert [r.status for r in ringing] == [180, 180]
    assert [r.to.tag for r in ringing] == ["t1", "t2"]
    assert all(r.get_all("via") == [CALLER_VIA] for r in ringing)


def test_100_from_downstream_is_absorbed() -> None:
    """A downstream 100 Trying is not forwarded: the caller has ours already."""
    p = forking(BOB1)
    (one,) = invite(p)
    p.answer(one, 100, to_tag=None)
    assert p.statuses() == [100]
    assert p.manager.upstream()[0].get("server") is None


# -- 2xx and 6xx ------------------------------------------------------------------------------


def test_2xx_forwarded_and_other_branch_cancelled_with_reason() -> None:
    """A 200 goes upstream and the ringing branch gets a CANCEL with a Reason."""
    p = forking(BOB1, BOB2)
    one, two = invite(p)
    p.answer(one, 180, to_tag="t1")
    p.answer(two, 180, to_tag="t2")
    p.answer(one, 200, to_tag="t1")
    assert [r.status for r in answered_upstream(p)] == [180, 180, 200]
    (cancel,) = p.manager.sent("CANCEL")
    assert cancel.top_via.branch == two.top_via.branch
    assert p.manager.hops("CANCEL") == [("UDP", "127.0.0.1", 5092)]
    assert cancel.get("reason") == REASON_ANSWERED_ELSEWHERE


def test_2xx_cancels_silent_branch_once_it_rings() -> None:
    """A branch without a provisional is cancelled only when it sends one (§9.1)."""
    p = forking(BOB1, BOB2)
    one, two = invite(p)
    p.answer(one, 200, to_tag="t1")
    assert p.manager.sent("CANCEL") == []
    p.answer(two, 180, to_tag="t2")
    (cancel,) = p.manager.sent("CANCEL")
    assert cancel.top_via.branch == two.top_via.branch
    # The late 180 is not forwarded: the call is answered.
    assert [r.status for r in answered_upstream(p)] == [200]


def test_later_2xx_of_another_branch_also_forwarded() -> None:
    """Every 2xx goes upstream, even a second one from another branch (§16.7 step 5)."""
    p = forking(BOB1, BOB2)
    one, two = invite(p)
    p.answer(one, 200, to_tag="t1")
    p.answer(two, 200, to_tag="t2")
    assert [(r.status, r.to.tag) for r in answered_upstream(p)] == [(200, "t1"), (200, "t2")]


def test_6xx_cancels_the_rest_and_is_forwarded() -> None:
    """A 603 cancels the ringing branch; once that ends, the 603 goes upstream."""
    p = forking(BOB1, BOB2)
    one, two = invite(p)
    p.answer(two, 180, to_tag="t2")
    p.answer(one, 603, to_tag="t1")
    (cancel,) = p.manager.sent("CANCEL")
    assert cancel.top_via.branch == two.top_via.branch
    assert cancel.get("reason") is None
    assert [r.status for r in answered_upstream(p)] == [180]
    p.answer(two, 487, to_tag="t2")
    assert [r.status for r in answered_upstream(p)] == [180, 603]
    assert answered_upstream(p)[-1].get_all("via") == [CALLER_VIA]


def test_6xx_stops_later_serial_groups() -> None:
    """After a 6xx no further serial target is tried."""
    p = forking(BOB1, BOB2, serial=True)
    (one,) = invite(p)
    p.answer(one, 600, to_tag="t1")
    assert len(p.manager.sent("INVITE")) == 1
    assert [r.status for r in answered_upstream(p)] == [600]


# -- the best response ------------------------------------------------------------------------


def test_best_response_prefers_486_over_503() -> None:
    """486 and 503: the 4xx goes upstream."""
    p = forking(BOB1, BOB2)
    one, two = invite(p)
    p.answer(one, 503, to_tag="t1")
    assert answered_upstream(p) == []
    p.answer(two, 486, to_tag="t2")
    (final,) = answered_upstream(p)
    assert (final.status, final.to.tag) == (486, "t2")


def test_lone_503_becomes_500() -> None:
    """A 503 from downstream is not forwarded as such: 500 (§16.7 step 6)."""
    p = forking(BOB1)
    (one,) = invite(p)
    p.answer(one, 503, to_tag="t1")
    (final,) = answered_upstream(p)
    assert final.status == 500
    assert final.to.tag == "t1"


def test_401_and_407_merged_into_one_response() -> None:
    """Both challenges go upstream in one response (§16.7 step 7)."""
    p = forking(BOB1, BOB2)
    one, two = invite(p)
    www = 'Digest realm="one", nonce="n1"'
    proxy = 'Digest realm="two", nonce="n2"'
    p.answer(one, 401, to_tag="t1", www_authenticate=www)
    p.answer(two, 407, to_tag="t2", proxy_authenticate=proxy)
    (final,) = answered_upstream(p)
    assert final.status in (401, 407)
    assert final.get_all("www-authenticate") == [www]
    assert final.get_all("proxy-authenticate") == [proxy]
    assert final.get_all("via") == [CALLER_VIA]


def test_challenge_preferred_over_other_4xx() -> None:
    """Within 4xx a 407 wins over a 404, so the caller can authenticate."""
    p = forking(BOB1, BOB2)
    one, two = invite(p)
    p.answer(one, 404, to_tag="t1")
    p.answer(two, 407, to_tag="t2", proxy_authenticate='Digest realm="r", nonce="n"')
    assert [r.status for r in answered_upstream(p)] == [407]


def test_non_invite_fork_best_final() -> None:
    """A forked MESSAGE: no 100 from us, no CANCEL, the 200 goes upstream."""
    p = forking(BOB1, BOB2)
    p.send("MESSAGE")
    one, two = p.manager.sent("MESSAGE")
    p.answer(one, 404, to_tag="t1")
    p.answer(two, 200, to_tag="t2")
    assert p.statuses() == [200]
    assert p.manager.sent("CANCEL") == []


# -- serial forking ----------------------------------------------------------------------------


def test_serial_targets_one_after_another() -> None:
    """serial=True: the next target is tried only after the previous failed."""
    p = forking(BOB1, BOB2, BOB3, serial=True)
    (one,) = invite(p)
    assert one.ruri == BOB1
    p.answer(one, 486, to_tag="t1")
    assert [r.ruri for r in p.manager.sent("INVITE")] == [BOB1, BOB2]
    p.answer(p.manager.sent("INVITE")[1], 480, to_tag="t2")
    assert [r.ruri for r in p.manager.sent("INVITE")] == [BOB1, BOB2, BOB3]
    assert answered_upstream(p) == []
    p.answer(p.manager.sent("INVITE")[2], 200, to_tag="t3")
    assert [r.status for r in answered_upstream(p)] == [200]


def test_q_value_groups() -> None:
    """Targets with q 1.0 fork first; the q 0.5 group starts after both failed."""
    p = forking(targets=(target(BOB1, q=1.0), target(BOB2, q=0.5), target(BOB3, q=1.0)))
    one, three = invite(p)
    assert (one.ruri, three.ruri) == (BOB1, BOB3)
    p.answer(one, 486, to_tag="t1")
    assert len(p.manager.sent("INVITE")) == 2
    p.answer(three, 486, to_tag="t3")
    assert [r.ruri for r in p.manager.sent("INVITE")] == [BOB1, BOB3, BOB2]


def test_serial_2xx_stops_later_groups() -> None:
    """A 200 from the first serial target: the others are never tried."""
    p = forking(BOB1, BOB2, serial=True)
    (one,) = invite(p)
    p.answer(one, 200, to_tag="t1")
    assert len(p.manager.sent("INVITE")) == 1
    assert p.layer.clock.getDelayedCalls()  # transactions still absorb retransmissions
    p.clock.advance(600)
    assert len(p.manager.sent("INVITE")) == 1


# -- timers -------------------------------------------------------------------------------------


def test_timer_b_on_branch_gives_408() -> None:
    """A branch that never answers times out (timer B, 64*T1) and 408 goes upstream."""
    p = forking(BOB1)
    invite(p)
    p.clock.advance(31.9)
    assert answered_upstream(p) == []
    p.clock.advance(0.2)
    assert [r.status for r in answered_upstream(p)] == [408]
    assert p.stats.value("sip_transaction_timeouts_total", timer="B") == 1


def test_timer_b_on_one_branch_waits_for_the_other() -> None:
    """One branch times out while the other rings; its 408 then beats the other's 503."""
    p = forking(BOB1, BOB2)
    _, two = invite(p)
    p.answer(two, 180, to_tag="t2")
    p.clock.advance(33)
    assert [r.status for r in answered_upstream(p)] == [180]
    p.answer(two, 503, to_tag="t2")
    assert [r.status for r in answered_upstream(p)] == [180, 408]


def test_timer_c_after_provisional_cancels_and_answers_408() -> None:
    """Timer C (restarted by each provisional) fires: CANCEL downstream, 408 upstream."""
    p = forking(BOB1)
    (one,) = invite(p)
    p.clock.advance(10)
    p.answer(one, 180, to_tag="t1")
    p.clock.advance(179)  # 189 s after the INVITE, 179 s after the 180
    assert p.manager.sent("CANCEL") == []
    p.clock.advance(2)
    (cancel,) = p.manager.sent("CANCEL")
    assert cancel.top_via.branch == one.top_via.branch
    assert [r.status for r in answered_upstream(p)] == [180, 408]
    assert p.stats.value("sip_transaction_timeouts_total", timer="C") == 1


def test_timer_c_configured() -> None:
    """The configured timer C is used."""
    config = Config(timers=attrs.evolve(Config().timers, timer_c=5.0))
    p = forking(BOB1, config=config)
    (one,) = invite(p)
    p.answer(one, 183, to_tag="t1")
    p.clock.advance(5.1)
    assert len(p.manager.sent("CANCEL")) == 1
    assert answered_upstream(p)[-1].status == 408


# -- CANCEL from upstream ------------------------------------------------------------------------


def cancel_from_caller(p: Proxy, **kw: Any) -> None:
    """The caller's CANCEL for its INVITE (same branch, CSeq method CANCEL)."""
    p.send("CANCEL", cseq="1 CANCEL", **kw)


def test_cancel_from_upstream_cancels_ringing_branches() -> None:
    """CANCEL: 200 to it, CANCEL to the ringing branch (with the caller's Reason), 487 later."""
    p = forking(BOB1, BOB2)
    one, two = invite(p)
    p.answer(one, 180, to_tag="t1")
    cancel_from_caller(p, reason='SIP;cause=480;text="gone"')
    cancel_answer = [r for r in p.manager.upstream() if r.cseq.method == "CANCEL"]
    assert [r.status for r in cancel_answer] == [200]
    (down,) = p.manager.sent("CANCEL")
    assert down.top_via.branch == one.top_via.branch
    assert down.get("reason") == 'SIP;cause=480;text="gone"'
    # The silent branch is cancelled as soon as it rings.
    p.answer(two, 180, to_tag="t2")
    assert [c.top_via.branch for c in p.manager.sent("CANCEL")] == [
        one.top_via.branch, two.top_via.branch
    ]  # fmt: skip
    p.answer(one, 487, to_tag="t1")
    p.answer(two, 487, to_tag="t2")
    invite_finals = [r for r in p.finals() if r.cseq.method == "INVITE"]
    assert [r.status for r in invite_finals] == [487]


def test_cancel_before_any_provisional_answers_487_at_once() -> None:
    """No branch rang yet: 487 goes upstream at once, the branches are cancelled when they ring."""
    p = forking(BOB1)
    (one,) = invite(p)
    cancel_from_caller(p)
    invite_finals = [r for r in p.finals() if r.cseq.method == "INVITE"]
    assert [r.status for r in invite_finals] == [487]
    assert p.manager.sent("CANCEL") == []
    p.answer(one, 180, to_tag="t1")
    assert len(p.manager.sent("CANCEL")) == 1
    assert [r.status for r in answered_upstream(p) if r.cseq.method == "INVITE"] == [487]


def test_cancel_stops_later_serial_groups() -> None:
    """After a CANCEL no further serial target is tried."""
    p = forking(BOB1, BOB2, serial=True)
    (one,) = invite(p)
    p.answer(one, 180, to_tag="t1")
    cancel_from_caller(p)
    p.answer(one, 487, to_tag="t1")
    assert len(p.manager.sent("INVITE")) == 1
    assert [r.status for r in p.finals() if r.cseq.method == "INVITE"] == [487]


# -- failure handlers ----------------------------------------------------------------------------


def test_failure_handler_provides_interface() -> None:
    """The fake failure handler provides IFailureHandler."""
    assert verifyObject(IFailureHandler, FailureHandler())


def test_failure_handler_adds_target_after_all_failed() -> None:
    """Every branch failed: the handler's target is tried before anything goes upstream."""
    handler = FailureHandler([target(BOB3)])
    p = forking(BOB1, BOB2, failure_handlers=[handler])
    one, two = invite(p)
    p.answer(one, 486, to_tag="t1")
    assert handler.calls == []
    p.answer(two, 480, to_tag="t2")
    (call,) = handler.calls
    assert call[1].status == 486  # the best response so far
    assert [r.ruri for r in p.manager.sent("INVITE")] == [BOB1, BOB2, BOB3]
    assert answered_upstream(p) == []
    p.answer(p.manager.sent("INVITE")[2], 200, to_tag="t3")
    assert [r.status for r in answered_upstream(p)] == [200]
    assert p.stats.value("sip_failover_total") == 1


def test_failure_handler_none_lets_best_response_go() -> None:
    """A handler returning None: the best response goes upstream."""
    handler = FailureHandler(None)
    p = forking(BOB1, failure_handlers=[handler])
    (one,) = invite(p)
    p.answer(one, 486, to_tag="t1")
    assert len(handler.calls) == 1
    assert [r.status for r in answered_upstream(p)] == [486]


def test_failure_handler_asked_again_after_its_targets_fail() -> None:
    """When the handler's targets fail too, it is asked again; then the best goes up."""
    handler = FailureHandler([target(BOB2)], [])
    p = forking(BOB1, failure_handlers=[handler])
    (one,) = invite(p)
    p.answer(one, 503, to_tag="t1")
    p.answer(p.manager.sent("INVITE")[1], 486, to_tag="t2")
    assert len(handler.calls) == 2
    assert handler.calls[1][1].status == 486
    assert [r.status for r in answered_upstream(p)] == [486]


def test_failure_handlers_tried_in_order() -> None:
    """A handler that declines passes the failure to the next one."""
    first, second = FailureHandler(None), FailureHandler([target(BOB2)])
    p = forking(BOB1, failure_handlers=[first, second])
    (one,) = invite(p)
    p.answer(one, 486, to_tag="t1")
    assert (len(first.calls), len(second.calls)) == (1, 1)
    assert len(p.manager.sent("INVITE")) == 2


def test_deferred_failure_handler() -> None:
    """A handler answering with a Deferred holds the final until it fires."""
    later: Deferred[Any] = Deferred()
    handler = FailureHandler(later)
    p = forking(BOB1, failure_handlers=[handler])
    (one,) = invite(p)
    p.answer(one, 486, to_tag="t1")
    assert answered_upstream(p) == []
    later.callback([target(BOB2)])
    assert [r.ruri for r in p.manager.sent("INVITE")] == [BOB1, BOB2]
    p.answer(p.manager.sent("INVITE")[1], 200, to_tag="t2")
    assert [r.status for r in answered_upstream(p)] == [200]


def test_deferred_failure_handler_fired_already() -> None:
    """A handler answering with an already fired Deferred works like a direct answer."""
    handler = FailureHandler(succeed([target(BOB2)]))
    p = forking(BOB1, failure_handlers=[handler])
    (one,) = invite(p)
    p.answer(one, 486, to_tag="t1")
    assert len(p.manager.sent("INVITE")) == 2


def test_deferred_failure_handler_declines() -> None:
    """A Deferred firing with None lets the best response go upstream."""
    later: Deferred[Any] = Deferred()
    p = forking(BOB1, failure_handlers=[FailureHandler(later)])
    (one,) = invite(p)
    p.answer(one, 486, to_tag="t1")
    later.callback(None)
    assert [r.status for r in answered_upstream(p)] == [486]


def test_failing_failure_handler_is_skipped() -> None:
    """A handler that raises or whose Deferred fails does not block the final."""

    class Raising(FailureHandler):
        def branches_failed(self, request: Any, response: Any, context: Any) -> Any:
            raise RuntimeError("handler bug")

    later: Deferred[Any] = Deferred()
    p = forking(BOB1, failure_handlers=[Raising(), FailureHandler(later)])
    (one,) = invite(p)
    p.answer(one, 486, to_tag="t1")
    later.errback(RuntimeError("lookup failed"))
    assert [r.status for r in answered_upstream(p)] == [486]
    assert len(p.manager.sent("INVITE")) == 1


def test_failure_handler_not_asked_after_6xx() -> None:
    """A 6xx is final everywhere: no failure handler is asked."""
    handler = FailureHandler([target(BOB2)])
    p = forking(BOB1, failure_handlers=[handler])
    (one,) = invite(p)
    p.answer(one, 603, to_tag="t1")
    assert handler.calls == []
    assert [r.status for r in answered_upstream(p)] == [603]


def test_cancel_while_failure_handler_waits() -> None:
    """A CANCEL while a handler's Deferred is pending: the handler's targets are never tried."""
    later: Deferred[Any] = Deferred()
    p = forking(BOB1, failure_handlers=[FailureHandler(later)])
    (one,) = invite(p)
    p.answer(one, 180, to_tag="t1")
    p.answer(one, 486, to_tag="t1")
    cancel_from_caller(p)
    later.callback([target(BOB2)])
    assert len(p.manager.sent("INVITE")) == 1
    assert [r.status for r in p.finals() if r.cseq.method == "INVITE"] == [486]


# -- transport failures and limits -----------------------------------------------------------------


def test_transport_failure_is_503_and_goes_up_as_500() -> None:
    """A branch that cannot be sent counts as 503, which goes upstream as 500 (§16.9)."""
    p = forking(BOB1)
    p.manager.unreachable.add(("127.0.0.1", 5090))
    invite(p)
    (final,) = answered_upstream(p)
    assert final.status == 500


def test_transport_failure_of_one_branch_does_not_end_the_fork() -> None:
    """One target unreachable at once: the other branch is still sent and decides."""
    p = forking(BOB1, BOB2)
    p.manager.unreachable.add(("127.0.0.1", 5090))
    sent = invite(p)
    assert [r.ruri for r in sent] == [BOB1, BOB2]
    assert answered_upstream(p) == []
    p.answer(sent[1], 200, to_tag="t2")
    assert [r.status for r in answered_upstream(p)] == [200]


def test_transport_failure_of_serial_target_tries_next() -> None:
    """A serial target that cannot be sent: the next one is tried at once."""
    p = forking(BOB1, BOB2, serial=True)
    p.manager.unreachable.add(("127.0.0.1", 5090))
    sent = invite(p)
    assert [r.ruri for r in sent] == [BOB1, BOB2]
    p.answer(sent[1], 486, to_tag="t2")
    assert [r.status for r in answered_upstream(p)] == [486]


def test_unroutable_target_answers_its_forward_error() -> None:
    """A target whose host is a name (no DNS) fails the branch with 503: 500 upstream."""
    p = forking("sip:bob@example.com")
    invite(p)
    assert p.manager.sent("INVITE") == []
    (final,) = answered_upstream(p)
    assert (final.status, final.reason) == (
        500, "Server Internal Error - next hop is not an IP address"
    )  # fmt: skip
    assert final.to.tag


def test_max_branches_limits_forking() -> None:
    """Only max_branches branches start; the rest count as 500 and lose to a 486."""
    config = Config(proxy=ProxyConfig(max_branches=2))
    p = forking(BOB1, BOB2, BOB3, config=config)
    one, two = invite(p)
    p.answer(one, 486, to_tag="t1")
    p.answer(two, 486, to_tag="t2")
    assert len(p.manager.sent("INVITE")) == 2
    assert [r.status for r in answered_upstream(p)] == [486]


def test_max_branches_bounds_failure_handler_retries() -> None:
    """A handler that always adds a target cannot fork past max_branches."""

    class Always(FailureHandler):
        def branches_failed(self, request: Any, response: Any, context: Any) -> Any:
            self.calls.append((request, response, context))
            return [target(BOB2)]

    config = Config(proxy=ProxyConfig(max_branches=3))
    p = forking(BOB1, config=config, failure_handlers=[Always()])
    invite(p)
    for _ in range(5):
        p.answer(p.manager.sent("INVITE")[-1], 486, to_tag="t")
        if answered_upstream(p):
            break
    assert len(p.manager.sent("INVITE")) == 3
    assert [r.status for r in answered_upstream(p)] == [486]


def test_max_branches_bounds_handler_of_unroutable_targets() -> None:
    """A handler that keeps adding targets that cannot even be prepared is bounded too."""

    class Always(FailureHandler):
        def branches_failed(self, request: Any, response: Any, context: Any) -> Any:
            self.calls.append((request, response, context))
            return [target("sip:bob@example.com")]

    handler = Always()
    config = Config(proxy=ProxyConfig(max_branches=4))
    p = forking(BOB1, config=config, failure_handlers=[handler])
    (one,) = invite(p)
    p.answer(one, 486, to_tag="t1")
    assert len(handler.calls) == 3
    assert [r.status for r in answered_upstream(p)] == [486]


def test_no_targets_answers_480() -> None:
    """A Forward with no targets: nothing to try, 480 upstream."""
    p = forking()
    invite(p)
    assert [r.status for r in answered_upstream(p)] == [480]


def test_2xx_after_cancel_and_487_still_goes_upstream() -> None:
    """A callee answering 200 after the caller's CANCEL (and our 487) still reaches the caller."""
    p = forking(BOB1)
    (one,) = invite(p)
    cancel_from_caller(p)
    assert [r.status for r in p.finals() if r.cseq.method == "INVITE"] == [487]
    p.answer(one, 200, to_tag="t1")
    invite_finals = [r for r in p.finals() if r.cseq.method == "INVITE"]
    assert [r.status for r in invite_finals] == [487, 200]


def test_non_invite_final_goes_through_the_server_transaction() -> None:
    """A BYE's 200 is sent by its server transaction, so a retransmitted BYE gets it again."""
    p = forking(BOB1)
    p.send("BYE", cseq="2 BYE")
    (sent,) = p.manager.sent("BYE")
    p.answer(sent, 200, to_tag="t1")
    assert [r.status for r in p.manager.upstream()] == [200]
    p.send("BYE", cseq="2 BYE")
    assert [r.status for r in p.manager.upstream()] == [200, 200]
    assert len(p.manager.sent("BYE")) == 1
    assert p.layer.unanswered() == 0


def test_final_response_naming_only_us_is_not_forwarded_as_is() -> None:
    """A final response whose only Via is ours (§16.7 step 3) becomes our own final upstream."""
    p = forking(BOB1)
    (one,) = invite(p)
    response = parsed_response(486, request=one, to_tag="t1")
    response.remove("Via")
    response.add("Via", one.top_via.render())
    p.receive(response, CALLEE_SOURCE)
    finals = answered_upstream(p)
    assert [r.status for r in finals] == [486]
    assert finals[0].top_via.branch == "z9hG4bKcaller1"
    assert p.stats.value("sip_handler_errors_total") == 0
