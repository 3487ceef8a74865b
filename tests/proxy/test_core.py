"""Tests for sipapp.proxy.core: the answers the server gives before routing exists."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from sipapp.config import Config, ServerConfig
from sipapp.interfaces import IMessageHandler, ITransportManager
from sipapp.proxy.core import SipCore
from sipapp.sip import Response, parse_message, validate
from sipapp.stats import Stats
from sipapp.transport import Source


@implementer(ITransportManager)
class FakeManager:
    """Records what the core sends; 127.0.0.1:5060 is 'myself'."""

    def __init__(self) -> None:
        self.sent: list[tuple[Response, Any]] = []

    def send_response(self, response: Any, source: Any) -> bool:
        self.sent.append((response, source))
        return True

    def send_request(self, request: Any, transport: str, host: str, port: int) -> bool:
        return True

    def local_via(self, transport: str, family: int) -> tuple[str, int]:
        return ("127.0.0.1", 5060)

    def is_local(self, host: str, port: int | None, transport: str | None) -> bool:
        return host == "127.0.0.1" and port in (None, 5060)


SOURCE = Source("UDP", "127.0.0.1", 40000, "127.0.0.1", 5060, None)


def request(method: str = "OPTIONS", uri: str = "sip:127.0.0.1:5060", **extra: str) -> bytes:
    headers = {
        "Via": "SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-1;rport",
        "Max-Forwards": "70",
        "From": "<sip:alice@example.net>;tag=a1",
        "To": f"<{uri}>",
        "Call-ID": "c1@127.0.0.1",
        "CSeq": f"1 {method}",
        "Content-Length": "0",
    }
    headers.update({k.replace("_", "-"): v for k, v in extra.items()})
    lines = [f"{method} {uri} SIP/2.0"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer(data: bytes, aliases: tuple[str, ...] = ()) -> Response | None:
    """Feed ``data`` to a fresh core and return the one response it sent, if any."""
    manager = FakeManager()
    core = SipCore(Config(server=ServerConfig(aliases=aliases)), manager, Stats(), Clock())
    message = parse_message(data)
    validate(message)
    core.receive(message, SOURCE)
    assert len(manager.sent) <= 1
    return manager.sent[0][0] if manager.sent else None


def test_provides_interface() -> None:
    """SipCore provides IMessageHandler."""
    core = SipCore(Config(), FakeManager(), Stats(), Clock())
    assert verifyObject(IMessageHandler, core)


def test_options_to_server_gets_200_with_capabilities() -> None:
    """OPTIONS addressed to the server is answered 200 with Allow, Accept, Supported."""
    response = answer(request())
    assert response is not None and response.status == 200
    assert "INVITE" in response.get("Allow") and "OPTIONS" in response.get("Allow")
    assert response.get("Accept") == "application/sdp"
    assert response.has("Supported")
    assert response.to.tag
    assert response.get("Server") == "sipapp"


def test_options_to_alias_gets_200() -> None:
    """A configured alias counts as the server itself."""
    response = answer(request(uri="sip:sip.example.net"), aliases=("sip.example.net",))
    assert response is not None and response.status == 200


def test_options_with_max_forwards_zero_to_server_gets_200() -> None:
    """OPTIONS with Max-Forwards 0 to the server is answered by it (§16.3 step 3)."""
    response = answer(request(Max_Forwards="0"))
    assert response is not None and response.status == 200


def test_max_forwards_zero_elsewhere_gets_483() -> None:
    """A request that would be forwarded with Max-Forwards 0 gets 483."""
    response = answer(request("INVITE", "sip:bob@example.org", Max_Forwards="0"))
    assert response is not None and response.status == 483


def test_unknown_method_gets_501_with_allow() -> None:
    """An unknown method gets 501 Not Implemented with Allow."""
    response = answer(request("FOO", "sip:bob@127.0.0.1"))
    assert response is not None and response.status == 501
    assert response.has("Allow")


def test_unknown_scheme_gets_416() -> None:
    """A Request-URI scheme we do not route gets 416."""
    response = answer(request("INVITE", "http://example.org/x"))
    assert response is not None and response.status == 416


def test_proxy_require_gets_420_with_unsupported() -> None:
    """Unsupported Proxy-Require option tags get 420 listing them."""
    response = answer(request("INVITE", "sip:bob@example.org", Proxy_Require="foo, bar"))
    assert response is not None and response.status == 420
    assert response.get("Unsupported") == "foo, bar"


def test_local_user_gets_404_and_foreign_domain_403() -> None:
    """A user on our address is not found; a foreign domain is never relayed."""
    local = answer(request("INVITE", "sip:bob@127.0.0.1"))
    foreign = answer(request("INVITE", "sip:bob@example.org"))
    assert local is not None and local.status == 404
    assert foreign is not None and foreign.status == 403
    assert "relaying" in foreign.reason


def test_in_dialog_request_and_cancel_get_481() -> None:
    """In-dialog requests to us and CANCELs match nothing yet: 481."""
    bye = request("BYE", "sip:bob@127.0.0.1", To="<sip:bob@127.0.0.1>;tag=b2")
    assert (r := answer(bye)) is not None and r.status == 481
    assert (r := answer(request("CANCEL", "sip:bob@127.0.0.1"))) is not None and r.status == 481
    foreign = request("BYE", "sip:bob@example.org", To="<sip:bob@example.org>;tag=b2")
    assert (r := answer(foreign)) is not None and r.status == 403


def test_ack_gets_no_answer() -> None:
    """An ACK is never answered."""
    assert answer(request("ACK", "sip:bob@127.0.0.1")) is None


def test_to_tag_is_stable_across_retransmissions() -> None:
    """The same request answered twice carries the same To tag."""
    manager = FakeManager()
    core = SipCore(Config(), manager, Stats(), Clock())
    for _ in range(2):
        message = parse_message(request("INVITE", "sip:bob@127.0.0.1"))
        core.receive(message, SOURCE)
    assert manager.sent[0][0].to.tag == manager.sent[1][0].to.tag


def test_stray_response_is_dropped_and_counted() -> None:
    """A response that matches nothing is dropped and counted."""
    manager = FakeManager()
    stats = Stats()
    core = SipCore(Config(), manager, stats, Clock())
    data = (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\n"
        b"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    core.receive(parse_message(data), SOURCE)
    assert manager.sent == []
    assert stats.value("sip_responses_unmatched_total") == 1


def test_handler_failure_answers_500_and_is_counted() -> None:
    """An exception inside the core is logged, counted and answered 500, never raised."""

    class Exploding(FakeManager):
        def is_local(self, host: str, port: int | None, transport: str | None) -> bool:
            raise RuntimeError("boom")

    manager = Exploding()
    stats = Stats()
    core = SipCore(Config(), manager, stats, Clock())
    core.receive(parse_message(request()), SOURCE)
    assert manager.sent[0][0].status == 500
    assert stats.value("sip_handler_errors_total") == 1
