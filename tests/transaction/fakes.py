"""Fakes for the transaction tests: a recording transport manager and user, and a harness."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from zope.interface import implementer

from sipapp.interfaces import ITransportManager
from sipapp.sip import Request, Response
from sipapp.stats import Stats
from sipapp.testing import parsed_request
from sipapp.transaction import Timers, TransactionLayer
from sipapp.transport import Source

#: Where requests come from in the server-side tests.
UDP_SOURCE = Source("UDP", "127.0.0.1", 5070, "127.0.0.1", 5060)
TCP_SOURCE = Source("TCP", "127.0.0.1", 5070, "127.0.0.1", 5060)

#: The next hop of the client-side tests.
UDP_HOP = ("UDP", "127.0.0.1", 5080)
TCP_HOP = ("TCP", "127.0.0.1", 5080)

#: The branch of the requests the client-side tests send.
CLIENT_BRANCH = "z9hG4bKc1ient0001"
CLIENT_VIA = f"SIP/2.0/UDP 127.0.0.1:5060;branch={CLIENT_BRANCH}"


@implementer(ITransportManager)
class FakeManager:
    """Records every send attempt with the clock time; ``fail`` makes sends return False."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.fail = False
        #: (time, request, transport, host, port) for every send_request call.
        self.requests: list[tuple[float, Request, str, str, int]] = []
        #: The on_failure callback given with each send (None for none).
        self.on_failure: list[Any] = []
        #: (time, response, source) for every send_response call.
        self.responses: list[tuple[float, Response, Any]] = []

    def send_response(self, response: object, source: object) -> bool:
        assert isinstance(response, Response)
        self.responses.append((self.clock.seconds(), response, source))
        return not self.fail

    def send_request(
        self, request: object, transport: str, host: str, port: int, on_failure: Any = None
    ) -> bool:
        assert isinstance(request, Request)
        self.requests.append((self.clock.seconds(), request, transport, host, port))
        self.on_failure.append(on_failure)
        return not self.fail

    def local_via(self, transport: str, family: int = 2) -> tuple[str, int]:
        return ("127.0.0.1", 5060)

    def is_local(self, host: str, port: int | None, transport: str | None = None) -> bool:
        return host == "127.0.0.1" and port == 5060

    # -- views for assertions ------------------------------------------------

    def request_times(self, method: str | None = None) -> list[float]:
        """When each request (of ``method``, if given) was sent."""
        return [t for t, r, *_ in self.requests if method is None or r.method == method]

    def sent(self, method: str) -> list[Request]:
        """Every request of ``method`` sent, in order."""
        return [r for _, r, *_ in self.requests if r.method == method]

    def response_times(self, status: int | None = None) -> list[float]:
        """When each response (with ``status``, if given) was sent."""
        return [t for t, r, _ in self.responses if status is None or r.status == status]

    def statuses(self) -> list[int]:
        """The status of every response sent, in order."""
        return [r.status for _, r, _ in self.responses]


class RecordingUser:
    """A transaction user (server and client side) that records every call.

    ``events`` holds tuples whose first item names the call. ``raise_in``
    names calls that raise ``RuntimeError`` (after being recorded).
    """

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.raise_in: set[str] = set()

    def _record(self, *event: Any) -> None:
        self.events.append(event)
        if event[0] in self.raise_in:
            raise RuntimeError(f"user failed in {event[0]}")

    # server side (the layer's user)
    def request_received(self, request: Request, transaction: Any, source: Any) -> None:
        self._record("request", request, transaction, source)

    def cancel_received(self, request: Request, transaction: Any, invite: Any, source: Any) -> None:
        self._record("cancel", request, transaction, invite, source)

    def stray_response(self, response: Response, source: Any) -> None:
        self._record("stray", response, source)

    # client side (a client transaction's user)
    def response_received(self, response: Response, transaction: Any) -> None:
        self._record("response", response, transaction)

    def timed_out(self, transaction: Any) -> None:
        self._record("timed_out", transaction)

    def transport_failed(self, transaction: Any) -> None:
        self._record("transport_failed", transaction)

    def named(self, name: str) -> list[tuple[Any, ...]]:
        """The events of one kind."""
        return [e for e in self.events if e[0] == name]

    def statuses(self) -> list[int]:
        """The status of every response passed to ``response_received``."""
        return [e[1].status for e in self.named("response")]


class Harness:
    """A transaction layer on a ``Clock`` with a fake manager, a recording user and real Stats."""

    def __init__(self, timers: Timers | None = None) -> None:
        self.clock = Clock()
        self.manager = FakeManager(self.clock)
        self.stats = Stats()
        self.user = RecordingUser()
        self.timers = timers or Timers()
        self.layer = TransactionLayer(self.manager, self.clock, self.timers, self.stats)
        self.layer.user = self.user

    def receive(self, message: Request | Response, source: Source = UDP_SOURCE) -> None:
        """Deliver ``message`` to the layer as a transport would."""
        self.layer.receive(message, source)

    def last_transaction(self) -> Any:
        """The transaction handed up with the most recent new request or CANCEL."""
        for event in reversed(self.user.events):
            if event[0] in ("request", "cancel"):
                return event[2]
        raise AssertionError("no request reached the user")

    def run(self, until: float) -> None:
        """Advance the clock call by call up to ``until``, so each send records its exact time."""
        clock = self.clock
        while True:
            calls = [c.getTime() for c in clock.getDelayedCalls() if c.getTime() <= until]
            if not calls:
                break
            clock.advance(max(min(calls) - clock.seconds(), 0.0))
        clock.advance(max(until - clock.seconds(), 0.0))

    def pending(self) -> int:
        """Delayed calls still scheduled on the clock."""
        return len(self.clock.getDelayedCalls())


def client_request(method: str = "INVITE", **overrides: Any) -> Request:
    """A request as the proxy would send it: our Via with ``CLIENT_BRANCH`` on top."""
    overrides.setdefault("via", CLIENT_VIA)
    return parsed_request(method, **overrides)
