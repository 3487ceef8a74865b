"""Tests of sipapp.routing.steps: each built-in route step on its own."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from sipapp.config import Config, StaticRoute
from sipapp.interfaces import IRouteStep
from sipapp.routing import CONTINUE, DROP, Forward, Reply, RouteContext, Target
from sipapp.routing.steps import (
    ALLOW,
    LooseRoute,
    MaxForwards,
    Options,
    Reject,
    Relay,
    Sanity,
    Static,
    builtin_steps,
)
from sipapp.sip import Request, SipUri, parse_uri
from sipapp.stats import Stats
from sipapp.testing import parsed_request
from sipapp.transport import Source

SOURCE = Source("UDP", "127.0.0.1", 5070, "127.0.0.1", 5060)
#: Our Record-Route value, as a route set entry.
OUR_ROUTE = "<sip:127.0.0.1:5060;lr>"
IN_DIALOG = "<sip:bob@example.com>;tag=b1"


def is_myself(uri: Any) -> bool:
    """127.0.0.1:5060 (any transport) is the server."""
    return isinstance(uri, SipUri) and (uri.host, uri.port or 5060) == ("127.0.0.1", 5060)


def context() -> RouteContext:
    """A route context whose server is 127.0.0.1:5060."""
    return RouteContext(SOURCE, Config(), Clock(), Stats(), is_myself)


def run(step: Any, request: Request) -> Any:
    """``step``'s decision for ``request``."""
    return step.handle(request, context())


def sip(text: str) -> SipUri:
    """``text`` parsed as a SIP URI."""
    uri = parse_uri(text, "test")
    assert isinstance(uri, SipUri)
    return uri


@pytest.mark.parametrize("name", list(builtin_steps(Config())))
def test_builtin_steps_provide_iroutestep(name: str) -> None:
    """Every built-in step provides IRouteStep and is listed under its own name."""
    step = builtin_steps(Config())[name]
    assert verifyObject(IRouteStep, step)
    assert step.name == name


def test_builtin_step_names() -> None:
    """The built-in steps are the ones the documentation names."""
    assert set(builtin_steps(Config())) == {
        "sanity", "max_forwards", "options", "loose_route", "static", "relay", "reject"
    }  # fmt: skip


# -- sanity ----------------------------------------------------------------------------------


def test_sanity_passes_a_good_request() -> None:
    """A well-formed request (sip, sips or tel Request-URI) continues."""
    for uri in ("sip:bob@example.com", "sips:bob@example.com", "tel:+4930123"):
        assert run(Sanity(), parsed_request("INVITE", uri)) is CONTINUE


def test_sanity_unknown_scheme_416() -> None:
    """A Request-URI scheme we cannot route gets 416."""
    decision = run(Sanity(), parsed_request("INVITE", "http://example.com/bob"))
    assert isinstance(decision, Reply) and decision.status == 416


def test_sanity_proxy_require_420_with_unsupported() -> None:
    """Proxy-Require tags we do not support get 420 listing them in Unsupported."""
    decision = run(Sanity(), parsed_request(proxy_require="foo, bar"))
    assert decision == Reply(420, None, (("Unsupported", "foo, bar"),))


def test_sanity_bare_magic_cookie_branch_400() -> None:
    """A branch that is only the magic cookie gets 400."""
    request = parsed_request(via="SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK")
    decision = run(Sanity(), request)
    assert isinstance(decision, Reply) and decision.status == 400
    assert "magic cookie" in (decision.reason or "")


def test_sanity_leaves_max_forwards_to_its_step() -> None:
    """Max-Forwards 0 is not sanity's business (the options step may answer first)."""
    assert run(Sanity(), parsed_request(max_forwards=0)) is CONTINUE


# -- max_forwards ----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(0, Reply(483)), (1, CONTINUE), (None, CONTINUE)])
def test_max_forwards(value: int | None, expected: Any) -> None:
    """0 gets 483 Too Many Hops; 1 or no header continues."""
    assert run(MaxForwards(), parsed_request(max_forwards=value)) == expected


# -- options ---------------------------------------------------------------------------------


def test_options_to_server_200() -> None:
    """OPTIONS to the server's address (no user) gets 200 with Allow, Accept, Supported."""
    decision = run(Options(), parsed_request("OPTIONS", "sip:127.0.0.1:5060"))
    assert isinstance(decision, Reply) and decision.status == 200
    headers = dict(decision.headers)
    assert headers["Allow"] == ALLOW and "INVITE" in ALLOW
    assert headers["Accept"] == "application/sdp"
    assert "Supported" in headers


@pytest.mark.parametrize(
    ("method", "uri"),
    [
        ("OPTIONS", "sip:bob@127.0.0.1:5060"),
        ("OPTIONS", "sip:example.com"),
        ("OPTIONS", "tel:+4930123"),
        ("INVITE", "sip:127.0.0.1:5060"),
    ],
    ids=["user-at-us", "foreign", "tel", "not-options"],
)
def test_options_continues_unless_for_the_server(method: str, uri: str) -> None:
    """OPTIONS for a user, for another host, or another method: not the options step's."""
    assert run(Options(), parsed_request(method, uri)) is CONTINUE


# -- loose_route -----------------------------------------------------------------------------


def test_loose_route_initial_request_without_route_continues() -> None:
    """An initial request with no Route goes on to the next step unchanged."""
    request = parsed_request()
    before = request.to_bytes()
    assert run(LooseRoute(), request) is CONTINUE
    assert request.to_bytes() == before


def test_loose_route_removes_our_route_from_initial_request() -> None:
    """A pre-loaded Route naming us is removed; the initial request continues."""
    request = parsed_request(route=[OUR_ROUTE, "<sip:127.0.0.1:5090;lr>"])
    assert run(LooseRoute(), request) is CONTINUE
    assert [str(r.uri) for r in request.routes] == ["sip:127.0.0.1:5090;lr"]


def test_loose_route_in_dialog_forwarded_after_removing_our_route() -> None:
    """An in-dialog request with our Route on top: removed, forwarded to the Request-URI."""
    request = parsed_request("BYE", "sip:bob@127.0.0.1:5090", to=IN_DIALOG, route=OUR_ROUTE)
    decision = run(LooseRoute(), request)
    assert decision == Forward((Target(sip("sip:bob@127.0.0.1:5090")),))
    assert not request.has("route")


def test_loose_route_removes_both_double_record_route_entries() -> None:
    """After a double Record-Route both of our Routes (r2=on) are removed, not the next."""
    routes = "<sip:127.0.0.1:5060;transport=tcp;r2=on;lr>, <sip:127.0.0.1:5060;r2=on;lr>"
    request = parsed_request(
        "BYE", "sip:bob@127.0.0.1:5090", to=IN_DIALOG, route=[routes, "<sip:127.0.0.1:5094;lr>"]
    )
    assert isinstance(run(LooseRoute(), request), Forward)
    assert [str(r.uri) for r in request.routes] == ["sip:127.0.0.1:5094;lr"]


def test_loose_route_keeps_foreign_top_route() -> None:
    """A top Route that is not ours stays; an in-dialog request without ours gets 404."""
    request = parsed_request(
        "BYE", "sip:bob@127.0.0.1:5090", to=IN_DIALOG, route="<sip:127.0.0.1:5094;lr>"
    )
    decision = run(LooseRoute(), request)
    assert isinstance(decision, Reply) and decision.status == 404
    assert len(request.routes) == 1


def test_loose_route_in_dialog_without_route_404() -> None:
    """An in-dialog request that is not routed through us gets 404."""
    decision = run(LooseRoute(), parsed_request("BYE", "sip:bob@127.0.0.1:5090", to=IN_DIALOG))
    assert isinstance(decision, Reply) and decision.status == 404


def test_loose_route_in_dialog_ack_without_route_dropped() -> None:
    """An ACK that is not routed through us is dropped: an ACK gets no response."""
    request = parsed_request("ACK", "sip:bob@127.0.0.1:5090", to=IN_DIALOG)
    assert run(LooseRoute(), request) is DROP


def test_loose_route_strict_router_fixup() -> None:
    """Request-URI is our Record-Route (a strict router before us): the last Route replaces it."""
    request = parsed_request(
        "BYE", "sip:127.0.0.1:5060;lr", to=IN_DIALOG,
        route=["<sip:127.0.0.1:5094;lr>", "<sip:bob@127.0.0.1:5090>"],
    )  # fmt: skip
    decision = run(LooseRoute(), request)
    assert request.ruri == "sip:bob@127.0.0.1:5090"
    assert [str(r.uri) for r in request.routes] == ["sip:127.0.0.1:5094;lr"]
    assert decision == Forward((Target(sip("sip:bob@127.0.0.1:5090")),))


def test_loose_route_strict_router_fixup_last_route() -> None:
    """A strict-routed request whose only Route is the remote target is forwarded there."""
    request = parsed_request(
        "BYE", "sip:127.0.0.1:5060;lr", to=IN_DIALOG, route="<sip:bob@127.0.0.1:5090>"
    )
    decision = run(LooseRoute(), request)
    assert request.ruri == "sip:bob@127.0.0.1:5090"
    assert not request.has("route")
    assert decision == Forward((Target(sip("sip:bob@127.0.0.1:5090")),))


def test_loose_route_strict_fixup_needs_lr_and_no_user() -> None:
    """A Request-URI of ours with a user part (a user here) is not a Record-Route value."""
    request = parsed_request("INVITE", "sip:bob@127.0.0.1:5060;lr", route="<sip:carol@x.test>")
    assert run(LooseRoute(), request) is CONTINUE
    assert request.ruri == "sip:bob@127.0.0.1:5060;lr"


def test_loose_route_in_dialog_to_tel_uri_416() -> None:
    """An in-dialog request routed through us to a non-SIP Request-URI gets 416."""
    request = parsed_request("BYE", "tel:+4930123", to=IN_DIALOG, route=OUR_ROUTE)
    decision = run(LooseRoute(), request)
    assert isinstance(decision, Reply) and decision.status == 416


# -- static ----------------------------------------------------------------------------------


def static(*routes: StaticRoute) -> Static:
    """A static step over ``routes``."""
    return Static(routes)


PSTN = StaticRoute(
    ("sip:127.0.0.1:5090", "sip:127.0.0.1:5092;transport=tcp"), domain="pstn.example"
)


def test_static_domain_match_keeps_user() -> None:
    """A matching domain forwards to every target, user kept, target's host, port and params."""
    decision = run(static(PSTN), parsed_request("INVITE", "sip:4930123@PSTN.example;user=phone"))
    assert isinstance(decision, Forward) and not decision.serial
    assert [str(t.uri) for t in decision.targets] == [
        "sip:4930123@127.0.0.1:5090", "sip:4930123@127.0.0.1:5092;transport=tcp"
    ]  # fmt: skip
    assert [str(t.next_hop) for t in decision.targets] == list(PSTN.targets)


def test_static_domain_must_match_exactly() -> None:
    """Another domain, or a subdomain, does not match."""
    for uri in ("sip:4930123@example.com", "sip:4930123@a.pstn.example"):
        assert run(static(PSTN), parsed_request("INVITE", uri)) is CONTINUE


def test_static_user_prefix() -> None:
    """user_prefix matches the start of the user part, in any domain when none is set."""
    route = StaticRoute(("sip:127.0.0.1:5090",), user_prefix="49")
    assert isinstance(run(static(route), parsed_request("INVITE", "sip:4930@x.test")), Forward)
    assert run(static(route), parsed_request("INVITE", "sip:3930@x.test")) is CONTINUE
    assert run(static(route), parsed_request("INVITE", "sip:x.test")) is CONTINUE


def test_static_domain_and_prefix_together() -> None:
    """With both set, both must match."""
    route = StaticRoute(("sip:127.0.0.1:5090",), domain="pstn.example", user_prefix="49")
    assert isinstance(run(static(route), parsed_request("INVITE", "sip:49@pstn.example")), Forward)
    assert run(static(route), parsed_request("INVITE", "sip:33@pstn.example")) is CONTINUE
    assert run(static(route), parsed_request("INVITE", "sip:49@other.example")) is CONTINUE


def test_static_first_matching_entry_wins_and_serial() -> None:
    """Entries are tried in order; serial is carried into the decision."""
    first = StaticRoute(("sip:127.0.0.1:5094",), user_prefix="4930", serial=True)
    second = StaticRoute(("sip:127.0.0.1:5096",), user_prefix="49")
    decision = run(static(first, second), parsed_request("INVITE", "sip:4930123@x.test"))
    assert isinstance(decision, Forward) and decision.serial
    assert [str(t.uri) for t in decision.targets] == ["sip:4930123@127.0.0.1:5094"]
    decision = run(static(first, second), parsed_request("INVITE", "sip:4940123@x.test"))
    assert [str(t.uri) for t in decision.targets] == ["sip:4940123@127.0.0.1:5096"]


def test_static_ignores_non_sip_request_uri() -> None:
    """A tel: Request-URI is not matched by the table."""
    route = StaticRoute(("sip:127.0.0.1:5090",))
    assert run(static(route), parsed_request("INVITE", "tel:+4930123")) is CONTINUE


def test_static_from_config() -> None:
    """builtin_steps builds the static step from the configuration's [[routes]]."""
    step = builtin_steps(Config(routes=(PSTN,)))["static"]
    assert isinstance(run(step, parsed_request("INVITE", "sip:1@pstn.example")), Forward)


# -- relay and reject ------------------------------------------------------------------------


def test_relay_forwards_foreign_request_uri() -> None:
    """relay forwards a request for another host to its Request-URI."""
    request = parsed_request("INVITE", "sip:bob@127.0.0.1:5090")
    assert run(Relay(), request) == Forward((Target(request.uri),))


def test_relay_leaves_our_uri_alone() -> None:
    """A Request-URI of ours is not relayed."""
    assert run(Relay(), parsed_request("INVITE", "sip:bob@127.0.0.1:5060")) is CONTINUE


def test_reject_our_address_404() -> None:
    """A request for a user on our address: 404."""
    assert run(Reject(), parsed_request("INVITE", "sip:bob@127.0.0.1")) == Reply(404)


def test_reject_foreign_403() -> None:
    """A request for another domain is refused: no open relay."""
    decision = run(Reject(), parsed_request("INVITE", "sip:bob@example.com"))
    assert decision == Reply(403, "Forbidden - relaying denied")


def test_reject_unknown_method_501_with_allow() -> None:
    """An unknown method gets 501 with Allow, wherever it goes."""
    decision = run(Reject(), parsed_request("FOO", "sip:bob@example.com"))
    assert decision == Reply(501, None, (("Allow", ALLOW),))


def test_reject_ack_dropped() -> None:
    """An ACK is never answered: dropped."""
    assert run(Reject(), parsed_request("ACK", "sip:bob@example.com")) is DROP
