"""The twistd service that opens the SIP sockets and drains them on shutdown.

``TransportService`` opens every socket when the application starts (a socket
that cannot be opened stops the process with a non-zero exit). On shutdown it
sets the manager draining — new out-of-dialog requests get 503 while
transactions in flight finish — polls ``in_flight`` on the injected clock
until it reaches 0 or ``grace_period`` has passed, then closes the sockets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger()

#: How often the drain checks ``in_flight`` (seconds).
POLL_INTERVAL = 0.05


class TransportService(Service):
    """Starts and gracefully stops a ``TransportManager``."""

    name = "sip-transport"

    def __init__(
        self,
        manager: Any,
        clock: Any,
        grace_period: float,
        in_flight: Callable[[], int],
        before_close: Callable[[], None] | None = None,
    ) -> None:
        self.manager = manager
        self.clock = clock
        self.grace_period = grace_period
        self.in_flight = in_flight
        #: Called once draining ends, before the sockets close (ends every
        #: transaction so that no timer fires on a closed socket).
        self.before_close = before_close

    def startService(self) -> None:
        """Open the sockets; ``SystemExit`` (non-zero) when one cannot be opened."""
        Service.startService(self)  # type: ignore[no-untyped-call]
        failures: list[Failure] = []

        def failed(failure: Failure) -> None:
            log.critical("cannot start: {error}", error=failure.getErrorMessage())
            failures.append(failure)

        # listen() binds synchronously, so a failure is known before it returns.
        self.manager.listen().addErrback(failed)
        if failures:
            raise SystemExit(f"sipapp: {failures[0].getErrorMessage()}")

    def stopService(self) -> Deferred[None]:
        """Drain, then close; the returned ``Deferred`` fires when closed."""
        Service.stopService(self)  # type: ignore[no-untyped-call]
        self.manager.draining = True
        started = self.clock.seconds()
        done: Deferred[None] = Deferred()

        def check() -> None:
            pending = self.in_flight()
            waited = self.clock.seconds() - started
            if pending and waited < self.grace_period:
                self.clock.callLater(POLL_INTERVAL, check)
                return
            if pending:
                log.warn(
                    "grace period of {grace}s over with {pending} transactions in flight",
                    grace=self.grace_period,
                    pending=pending,
                )
            else:
                log.info("drained after {waited:.2f}s", waited=waited)
            if self.before_close is not None:
                self.before_close()
            self.manager.stop().chainDeferred(done)

        check()
        return done
