"""Tests for sipapp.proxy.stateless: the transaction-less mode for front-end balancers."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from sipapp.config import Config, ProxyConfig
from sipapp.interfaces import IMessageHandler
from sipapp.proxy.core import ProxyCore
from sipapp.proxy.stateless import StatelessProxy, stateless_branch
from sipapp.routing import DROP, Forward, Pipeline, Reply
from sipapp.sip import Request
from sipapp.stats import Stats
from sipapp.testing import parsed_response
from sipapp.transaction import Timers, TransactionLayer

from .fakes import BOB1, CALLEE_SOURCE, UDP_SOURCE, FakeManager, incoming, target


class Decide:
    """A route step that always answers ``decision``."""

    name = "decide"

    def __init__(self, decision: Any) -> None:
        self.decision = decision

    def handle(self, request: Request, context: Any) -> Any:
        return self.decision


def stateless(decision: Any) -> tuple[StatelessProxy, FakeManager, Stats]:
    """A stateless proxy whose pipeline answers ``decision``."""
    config = Config(proxy=ProxyConfig(stateless=True))
    manager = FakeManager()
    stats = Stats()
    clock = Clock()
    pipeline = Pipeline([Decide(decision)])
    layer = TransactionLayer(manager, clock, Timers(), stats)
    core = ProxyCore(config, manager, layer, pipeline, stats, clock)
    proxy = StatelessProxy(config, manager, pipeline, stats, clock, core)
    return proxy, manager, stats


FORWARD = Forward((target(BOB1),))


def test_provides_message_handler() -> None:
    """StatelessProxy provides IMessageHandler and keeps nothing for shutdown to wait for."""
    proxy, _, _ = stateless(FORWARD)
    assert verifyObject(IMessageHandler, proxy)
    assert proxy.unanswered() == 0


def test_forwards_without_100_trying_or_transaction() -> None:
    """An INVITE is forwarded at once, with no 100 Trying and no transaction kept."""
    proxy, manager, _ = stateless(FORWARD)
    proxy.receive(incoming("INVITE"), UDP_SOURCE)
    assert manager.statuses() == []
    (sent,) = manager.sent("INVITE")
    assert sent.ruri == BOB1
    assert sent.max_forwards == 69
    assert manager.hops() == [("UDP", "127.0.0.1", 5090)]


def test_retransmission_cancel_and_ack_share_the_branch() -> None:
    """A retransmitted INVITE, its CANCEL and its hop-by-hop ACK leave with one branch (§16.11)."""
    proxy, manager, _ = stateless(FORWARD)
    proxy.receive(incoming("INVITE"), UDP_SOURCE)
    proxy.receive(incoming("INVITE"), UDP_SOURCE)
    proxy.receive(incoming("CANCEL", cseq="1 CANCEL"), UDP_SOURCE)
    proxy.receive(incoming("ACK", cseq="1 ACK", to="<sip:bob@example.com>;tag=b1"), UDP_SOURCE)
    branches = {r.top_via.branch for r in manager.sent()}
    assert len(manager.sent()) == 4
    assert branches == {stateless_branch(incoming("INVITE"))}


def test_different_requests_get_different_branches() -> None:
    """Two requests with different incoming branches leave with different branches."""
    first = incoming("INVITE")
    second = incoming("INVITE", via="SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKother;rport")
    assert stateless_branch(first) != stateless_branch(second)


def test_response_goes_back_by_the_next_via() -> None:
    """A response with our Via on top is sent on with that Via removed."""
    proxy, manager, stats = stateless(FORWARD)
    proxy.receive(incoming("INVITE"), UDP_SOURCE)
    (sent,) = manager.sent("INVITE")
    proxy.receive(parsed_response(180, request=sent, to_tag="b1"), CALLEE_SOURCE)
    (response,) = manager.upstream()
    assert response.status == 180
    assert response.top_via.branch == "z9hG4bKcaller1"
    assert stats.value("sip_responses_stateless_total") == 1


def test_reply_decision_is_answered_but_never_to_ack() -> None:
    """A Reply is sent statelessly with a To tag and Server header; an ACK gets nothing."""
    proxy, manager, _ = stateless(Reply(404))
    proxy.receive(incoming("INVITE"), UDP_SOURCE)
    proxy.receive(incoming("ACK", cseq="1 ACK"), UDP_SOURCE)
    (response,) = manager.upstream()
    assert response.status == 404
    assert response.to.tag
    assert response.get("Server") == "sipapp"


def test_forward_without_targets_is_480() -> None:
    """A Forward with no targets is answered 480."""
    proxy, manager, _ = stateless(Forward(()))
    proxy.receive(incoming("INVITE"), UDP_SOURCE)
    assert manager.statuses() == [480]


def test_unresolvable_target_is_answered_503() -> None:
    """A target whose host is not an IP address is answered 503 at once."""
    proxy, manager, _ = stateless(Forward((target("sip:bob@gw.example.net"),)))
    proxy.receive(incoming("INVITE"), UDP_SOURCE)
    assert manager.statuses() == [503]
    assert manager.requests == []


def test_drop_sends_nothing() -> None:
    """DROP sends neither a response nor a request."""
    proxy, manager, _ = stateless(DROP)
    proxy.receive(incoming("INVITE"), UDP_SOURCE)
    assert manager.requests == [] and manager.responses == []


def test_failed_send_is_answered_503() -> None:
    """A UDP send that fails at once is answered 503."""
    proxy, manager, _ = stateless(FORWARD)
    manager.unreachable.add(("127.0.0.1", 5090))
    proxy.receive(incoming("INVITE"), UDP_SOURCE)
    assert manager.statuses() == [503]
