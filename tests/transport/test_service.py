"""Tests for sipapp.transport.service: start-up binding and graceful drain on shutdown."""

from __future__ import annotations

import pytest
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock

from sipapp.transport import TransportService
from sipapp.transport.manager import ListenError


class FakeManager:
    """Records listen/stop calls; stop() returns a Deferred the test controls."""

    def __init__(self, listen_error: Exception | None = None) -> None:
        self.draining = False
        self.listen_error = listen_error
        self.listened = 0
        self.stopped: Deferred[None] | None = None

    def listen(self) -> Deferred[list[object]]:
        self.listened += 1
        if self.listen_error is not None:
            return fail(self.listen_error)
        return succeed([])

    def stop(self) -> Deferred[None]:
        self.stopped = Deferred()
        return self.stopped


def test_start_listens() -> None:
    """startService opens the sockets."""
    manager = FakeManager()
    service = TransportService(manager, Clock(), 5.0, lambda: 0)
    service.startService()
    assert manager.listened == 1
    assert service.running


def test_bind_failure_exits() -> None:
    """A socket that cannot be opened stops start-up with a non-zero SystemExit."""
    manager = FakeManager(ListenError("cannot listen on udp:127.0.0.1:5060: in use"))
    service = TransportService(manager, Clock(), 5.0, lambda: 0)
    with pytest.raises(SystemExit) as raised:
        service.startService()
    assert "udp:127.0.0.1:5060" in str(raised.value.code)


def test_drain_waits_for_in_flight() -> None:
    """stopService drains: 503 mode at once, sockets closed when nothing is in flight."""
    clock = Clock()
    manager = FakeManager()
    pending = [3]
    service = TransportService(manager, clock, 5.0, lambda: pending[0])
    service.startService()
    done = service.stopService()
    assert manager.draining
    assert manager.stopped is None
    clock.advance(1.0)
    assert manager.stopped is None
    pending[0] = 0
    clock.advance(0.05)
    assert manager.stopped is not None
    assert not done.called
    manager.stopped.callback(None)
    assert done.called
    assert clock.seconds() < 2


def test_drain_gives_up_after_grace_period() -> None:
    """Transactions still in flight after grace_period do not hold the shutdown."""
    clock = Clock()
    manager = FakeManager()
    service = TransportService(manager, clock, 2.0, lambda: 1)
    service.startService()
    done = service.stopService()
    clock.advance(1.9)
    assert manager.stopped is None
    clock.pump([0.05] * 4)
    assert manager.stopped is not None
    manager.stopped.callback(None)
    assert done.called
    assert clock.getDelayedCalls() == []


def test_nothing_in_flight_stops_at_once() -> None:
    """With nothing in flight the sockets close without waiting."""
    manager = FakeManager()
    service = TransportService(manager, Clock(), 5.0, lambda: 0)
    service.startService()
    service.stopService()
    assert manager.stopped is not None


def test_before_close_runs_once_after_draining_and_before_the_sockets_close() -> None:
    """The before_close hook (ending every transaction) runs after the drain, before stop()."""
    clock = Clock()
    manager = FakeManager()
    calls: list[bool] = []
    pending = [1]
    service = TransportService(
        manager, clock, 5.0, lambda: pending[0], lambda: calls.append(manager.stopped is None)
    )
    service.startService()
    service.stopService()
    clock.advance(0.5)
    assert calls == []
    pending[0] = 0
    clock.advance(0.05)
    assert calls == [True]
    assert manager.stopped is not None
