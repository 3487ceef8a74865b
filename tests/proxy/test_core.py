"""Tests of sipapp.proxy.core: what the proxy does with each request, CANCEL and stray response.

The core runs over a real ``TransactionLayer`` with a fake transport manager
and a ``Clock``. Route decisions come from fake steps, or from the default
pipeline of built-in steps for the behaviour the server shows without any
routes configured.
"""

from __future__ import annotations

from typing import Any

from zope.interface.verify import verifyObject

from sipapp.config import Config, ServerConfig, StaticRoute
from sipapp.interfaces import ITransactionUser
from sipapp.routing import DROP, Forward, Reply
from sipapp.sip import MAGIC_COOKIE, Request, Via
from sipapp.testing import parsed_response

from .fakes import (
    CALLEE_SOURCE,
    CALLER_VIA,
    TCP_SOURCE,
    Fixed,
    Later,
    Proxy,
    incoming,
    target,
)

#: What the caller at 127.0.0.1:5070 addresses to the server itself.
SERVER = "sip:127.0.0.1:5060"


def answer_of(proxy: Proxy) -> Any:
    """The one final response the proxy sent."""
    (final,) = proxy.finals()
    return final


def test_core_provides_itransactionuser() -> None:
    """ProxyCore provides ITransactionUser."""
    assert verifyObject(ITransactionUser, Proxy([]).core)


# -- carrying out decisions ----------------------------------------------------------------


def test_invite_gets_100_trying_before_routing_decides() -> None:
    """An INVITE is answered 100 Trying at once, without a To tag or Server header."""
    p = Proxy([Later()])
    p.send("INVITE")
    (trying,) = p.manager.upstream()
    assert trying.status == 100
    assert trying.to.tag is None
    assert not trying.has("server")


def test_non_invite_gets_no_100() -> None:
    """A non-INVITE waiting for routing gets no 100 from the core."""
    p = Proxy([Later()])
    p.send("MESSAGE")
    assert p.statuses() == []


def test_reply_decision_is_sent_with_headers() -> None:
    """A Reply decision goes out with its reason, headers, a To tag and the Server header."""
    p = Proxy([Fixed(Reply(486, "Busy Here", (("Retry-After", "30"),)))])
    p.send("INVITE")
    assert p.statuses() == [100, 486]
    final = answer_of(p)
    assert final.reason == "Busy Here"
    assert final.get("retry-after") == "30"
    assert final.get("server") == "sipapp"
    assert final.to.tag
    assert p.stats.value("sip_local_replies_total", status="486") == 1


def test_drop_stops_the_server_transaction() -> None:
    """DROP: no answer, and the server transaction is gone."""
    p = Proxy([Fixed(DROP)])
    p.send("MESSAGE")
    assert p.statuses() == []
    assert p.layer.in_flight() == 0


def test_drop_of_invite_after_100() -> None:
    """A dropped INVITE keeps only its 100 Trying and leaves no transaction behind."""
    p = Proxy([Fixed(DROP)])
    p.send("INVITE")
    assert p.statuses() == [100]
    assert p.layer.in_flight() == 0


def test_deferred_reply_decision() -> None:
    """A decision that arrives later through a Deferred is carried out then."""
    step = Later()
    p = Proxy([step])
    p.send("MESSAGE")
    assert p.statuses() == []
    step.pending[0].callback(Reply(404))
    assert p.statuses() == [404]


def test_deferred_forward_decision() -> None:
    """A Forward that arrives later starts the branches then."""
    step = Later()
    p = Proxy([step])
    p.send("INVITE")
    assert p.manager.sent("INVITE") == []
    step.pending[0].callback(Forward((target("sip:bob@127.0.0.1:5090"),)))
    assert [r.ruri for r in p.manager.sent("INVITE")] == ["sip:bob@127.0.0.1:5090"]


def test_failed_deferred_decision_answers_500() -> None:
    """Routing that fails (an errback) is logged, counted and answered 500."""
    step = Later()
    p = Proxy([step])
    p.send("INVITE")
    step.pending[0].errback(RuntimeError("database down"))
    final = answer_of(p)
    assert (final.status, final.reason) == (500, "Server Internal Error - routing failed")
    assert p.stats.value("sip_handler_errors_total") == 1


def test_unknown_decision_answers_500() -> None:
    """A step answering something that is no decision gets a 500."""
    p = Proxy([Fixed("forward please")])
    p.send("OPTIONS")
    final = answer_of(p)
    assert final.status == 500
    assert "bad routing decision" in final.reason


def test_no_decision_answers_500() -> None:
    """A pipeline that never decides answers 500."""
    p = Proxy([])
    p.send("OPTIONS")
    assert p.statuses() == [500]


def test_cancel_while_routing_answers_487_and_ignores_the_decision() -> None:
    """A CANCEL before routing decided: 200 and 487 at once; the late Forward is ignored."""
    step = Later()
    p = Proxy([step])
    p.send("INVITE")
    p.send("CANCEL", cseq="1 CANCEL")
    assert sorted((r.cseq.method, r.status) for r in p.finals()) == [
        ("CANCEL", 200), ("INVITE", 487)
    ]  # fmt: skip
    step.pending[0].callback(Forward((target("sip:bob@127.0.0.1:5090"),)))
    assert p.manager.sent("INVITE") == []
    assert len(p.finals()) == 2


def test_cancel_without_invite_gets_481() -> None:
    """A CANCEL that matches no INVITE transaction gets 481."""
    p = Proxy([Later()])
    p.send("CANCEL", cseq="1 CANCEL")
    assert p.statuses() == [481]


# -- loops and spirals --------------------------------------------------------------------------


def back_from_downstream(forwarded: Request, uri: str | None = None) -> Request:
    """``forwarded`` as it comes back to us through a downstream hop (maybe retargeted)."""
    looped = forwarded.copy()
    looped.push_via(Via("UDP", "127.0.0.1", 5090, (("branch", "z9hG4bKdownstream1"),)))
    if uri is not None:
        looped.uri = target(uri).uri
    return looped


def relay_to_5090() -> Proxy:
    """A proxy that sends every request on unchanged, through 127.0.0.1:5090."""
    decision = Forward((target("sip:bob@example.com", next_hop="sip:127.0.0.1:5090"),))
    return Proxy([Fixed(decision)])


def test_loop_gets_482() -> None:
    """Our own forwarded request coming back unchanged is a loop: 482 (§16.3 step 4)."""
    p = relay_to_5090()
    p.send("INVITE")
    (out,) = p.manager.sent("INVITE")
    p.receive(back_from_downstream(out), CALLEE_SOURCE)
    assert len(p.manager.sent("INVITE")) == 1
    assert [r.status for r in p.finals()] == [482]
    assert p.finals()[0].top_via.branch == "z9hG4bKdownstream1"


def test_spiral_is_forwarded_again() -> None:
    """The request back with a new Request-URI is a spiral and goes on."""
    p = relay_to_5090()
    p.send("INVITE")
    (out,) = p.manager.sent("INVITE")
    p.receive(back_from_downstream(out, "sip:carol@example.com"), CALLEE_SOURCE)
    assert len(p.manager.sent("INVITE")) == 2
    assert [r.status for r in p.finals()] == []


# -- ACK for 2xx ---------------------------------------------------------------------------------


def in_dialog_ack(**kw: Any) -> Request:
    """The caller's ACK for a 2xx, routed through us by our Record-Route."""
    kw.setdefault("route", "<sip:127.0.0.1:5060;lr>")
    kw.setdefault("via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKack1")
    kw.setdefault("to", "<sip:bob@example.com>;tag=b1")
    return incoming("ACK", "sip:bob@127.0.0.1:5090", cseq="1 ACK", **kw)


def test_ack_for_2xx_forwarded_statelessly() -> None:
    """The end-to-end ACK goes on without a transaction, our Route removed, no Record-Route."""
    p = Proxy()
    p.receive(in_dialog_ack())
    (ack,) = p.manager.sent("ACK")
    assert p.manager.hops("ACK") == [("UDP", "127.0.0.1", 5090)]
    assert ack.ruri == "sip:bob@127.0.0.1:5090"
    assert not ack.has("route") and not ack.has("record-route")
    assert ack.max_forwards == 69
    assert ack.top_via.branch.startswith(MAGIC_COOKIE) and ack.top_via.branch.endswith(".a")
    assert p.statuses() == []
    assert p.layer.in_flight() == 0


def test_ack_for_2xx_branch_is_deterministic() -> None:
    """A retransmitted ACK leaves with the same branch; another dialog's ACK with another."""
    p = Proxy()
    p.receive(in_dialog_ack())
    p.receive(in_dialog_ack())
    p.receive(in_dialog_ack(to="<sip:bob@example.com>;tag=b2"))
    first, again, other = (a.top_via.branch for a in p.manager.sent("ACK"))
    assert first == again
    assert other != first


def test_ack_after_double_record_route_removes_both_routes() -> None:
    """Both of our Routes (r2=on) are removed before the ACK goes on."""
    p = Proxy()
    routes = "<sip:127.0.0.1:5060;transport=tcp;r2=on;lr>, <sip:127.0.0.1:5060;r2=on;lr>"
    p.receive(in_dialog_ack(route=routes))
    (ack,) = p.manager.sent("ACK")
    assert not ack.has("route")


def test_ack_without_our_route_is_dropped() -> None:
    """An in-dialog ACK that is not routed through us is dropped silently."""
    p = Proxy()
    p.receive(in_dialog_ack(route=None))
    assert p.manager.requests == [] and p.statuses() == []


# -- stray responses ----------------------------------------------------------------------------


def stray(top_via: str) -> Any:
    """A 200 with ``top_via`` above the caller's Via, for no transaction of ours."""
    request = incoming("INVITE", via=[top_via, CALLER_VIA])
    return parsed_response(200, request=request)


def test_stray_response_with_our_via_goes_on_by_the_next_via() -> None:
    """A response with our Via on top is forwarded statelessly to the next Via (§16.11)."""
    p = Proxy([])
    p.receive(stray("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKgone"), CALLEE_SOURCE)
    ((out, source),) = p.manager.responses
    assert out.get_all("via") == [CALLER_VIA]
    assert source.transport == "UDP"
    assert p.stats.value("sip_responses_stateless_total") == 1


def test_stray_response_not_for_us_dropped_and_counted() -> None:
    """A response whose top Via is not ours is dropped and counted."""
    p = Proxy([])
    p.receive(stray("SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKother"), CALLEE_SOURCE)
    assert p.manager.responses == []
    assert p.stats.value("sip_responses_unmatched_total") == 1


def test_stray_response_with_only_our_via_dropped_and_counted() -> None:
    """A response with our Via and nothing below it has nowhere to go."""
    p = Proxy([])
    request = incoming("INVITE", via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKgone")
    p.receive(parsed_response(200, request=request), CALLEE_SOURCE)
    assert p.manager.responses == []
    assert p.stats.value("sip_responses_unmatched_total") == 1


# -- the default pipeline: what the server answers with no routes -----------------------------


def default_answer(method: str, uri: str, *, config: Config | None = None, **kw: Any) -> Any:
    """The final answer of a proxy with the default pipeline to one request."""
    p = Proxy(config=config)
    p.send(method, uri, **kw)
    finals = p.finals()
    assert len(finals) <= 1
    return finals[0] if finals else None


def test_options_to_server_gets_200_with_capabilities() -> None:
    """OPTIONS addressed to the server is answered 200 with Allow, Accept, Supported."""
    response = default_answer("OPTIONS", SERVER)
    assert response.status == 200
    allow = [m.strip() for m in response.get("allow").split(",")]
    assert "INVITE" in allow and "OPTIONS" in allow and "CANCEL" in allow
    assert response.get("accept") == "application/sdp"
    assert response.has("supported")
    assert response.to.tag
    assert response.get("server") == "sipapp"


def test_options_to_alias_gets_200() -> None:
    """A configured alias counts as the server itself."""
    config = Config(server=ServerConfig(aliases=("sip.example.net",)))
    response = default_answer("OPTIONS", "sip:sip.example.net", config=config)
    assert response.status == 200


def test_options_to_alias_with_port() -> None:
    """An alias with a port matches only that port."""
    config = Config(server=ServerConfig(aliases=("sip.example.net:5080",)))
    assert default_answer("OPTIONS", "sip:sip.example.net:5080", config=config).status == 200
    assert default_answer("OPTIONS", "sip:sip.example.net:5081", config=config).status == 403


def test_options_to_user_at_server_is_not_for_the_server() -> None:
    """OPTIONS for a user on our address is for that user: 404 without routes."""
    assert default_answer("OPTIONS", "sip:bob@127.0.0.1:5060").status == 404


def test_unknown_method_gets_501_with_allow() -> None:
    """An unknown method gets 501 Not Implemented with Allow."""
    response = default_answer("FOO", "sip:bob@127.0.0.1")
    assert response.status == 501
    assert "INVITE" in response.get("allow")


def test_unknown_scheme_gets_416() -> None:
    """A Request-URI scheme we do not route gets 416."""
    assert default_answer("INVITE", "http://example.org/x").status == 416


def test_proxy_require_gets_420_with_unsupported() -> None:
    """Unsupported Proxy-Require option tags get 420 listing them."""
    response = default_answer("INVITE", "sip:bob@example.org", proxy_require="foo, bar")
    assert response.status == 420
    assert response.get("unsupported") == "foo, bar"


def test_max_forwards_zero_gets_483() -> None:
    """A request that would be forwarded with Max-Forwards 0 gets 483."""
    assert default_answer("INVITE", "sip:bob@example.org", max_forwards=0).status == 483


def test_local_user_gets_404_and_foreign_domain_403() -> None:
    """A user on our address is not found; a foreign domain is never relayed."""
    local = default_answer("INVITE", "sip:bob@127.0.0.1")
    foreign = default_answer("INVITE", "sip:bob@example.org")
    assert local.status == 404
    assert foreign.status == 403
    assert "relaying" in foreign.reason


def test_in_dialog_request_without_our_route_gets_404() -> None:
    """A BYE in a dialog we are not on gets 404."""
    response = default_answer("BYE", "sip:bob@127.0.0.1", to="<sip:bob@127.0.0.1>;tag=b2")
    assert response.status == 404


def test_ack_gets_no_answer() -> None:
    """An ACK is never answered."""
    assert default_answer("ACK", "sip:bob@127.0.0.1") is None


def test_static_route_forwards_with_the_default_pipeline() -> None:
    """A [[routes]] entry sends a matching INVITE to its target, user kept, Record-Routed."""
    config = Config(routes=(StaticRoute(("sip:127.0.0.1:5090",), domain="pstn.example"),))
    p = Proxy(config=config)
    p.send("INVITE", "sip:4930123@pstn.example")
    (out,) = p.manager.sent("INVITE")
    assert out.ruri == "sip:4930123@127.0.0.1:5090"
    assert out.get("record-route") == "<sip:127.0.0.1:5060;lr>"
    assert p.manager.hops("INVITE") == [("UDP", "127.0.0.1", 5090)]


def test_to_tag_is_stable_across_retransmissions() -> None:
    """The same request answered twice (a new transaction each time) gets the same To tag."""
    p = Proxy()
    for _ in range(2):  # TCP: the transaction ends with its answer, no absorption
        p.send("MESSAGE", "sip:bob@127.0.0.1", source=TCP_SOURCE)
    p.send("MESSAGE", "sip:bob@127.0.0.1", source=TCP_SOURCE, cseq="2 MESSAGE")
    first, again, other = (r.to.tag for r in p.finals())
    assert first == again
    assert other != first


def test_deferred_steps_keep_their_place() -> None:
    """Decisions arriving out of order each answer their own request."""
    step = Later()
    p = Proxy([step])
    p.send("MESSAGE", call_id="one@127.0.0.1")
    p.send("MESSAGE", call_id="two@127.0.0.1", via="SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK2")
    first, second = step.pending
    second.callback(Reply(486))
    first.callback(Reply(404))
    assert [(r.call_id, r.status) for r in p.finals()] == [
        ("two@127.0.0.1", 486), ("one@127.0.0.1", 404)
    ]  # fmt: skip
