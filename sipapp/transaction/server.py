"""Server transactions (RFC 3261 §17.2, RFC 6026 §7.1).

``ServerTransaction`` is the non-INVITE state machine (Trying, Proceeding,
Completed, Terminated); ``InviteServerTransaction`` the INVITE one
(Proceeding, Completed, Confirmed, Accepted, Terminated). The transaction
user answers through ``respond``; the layer feeds retransmissions and ACKs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sipapp.sip import Request, Response

if TYPE_CHECKING:
    from sipapp.transaction.layer import TransactionLayer

TRYING = "trying"
PROCEEDING = "proceeding"
COMPLETED = "completed"
CONFIRMED = "confirmed"
ACCEPTED = "accepted"
TERMINATED = "terminated"


class ServerTransaction:
    """A non-INVITE server transaction (§17.2.2)."""

    __slots__ = ("_timer", "context", "key", "last_response", "layer", "request", "source", "state")

    def __init__(
        self, layer: TransactionLayer, key: tuple[Any, ...], request: Request, source: Any
    ) -> None:
        self.layer = layer
        self.key = key
        self.request: Request | None = request
        self.source = source
        self.state = TRYING
        self.last_response: Response | None = None
        self._timer: Any = None
        #: Whatever the transaction user keeps with this transaction (its response context).
        self.context: Any = None

    @property
    def reliable(self) -> bool:
        """True when the request came over TCP or TLS."""
        return self.source.transport.upper() != "UDP"  # type: ignore[no-any-return]

    def _send(self, response: Response) -> None:
        self.layer.manager.send_response(response, self.source)

    def respond(self, response: Response) -> None:
        """Send ``response`` from the transaction user and move the state on."""
        if self.state in (COMPLETED, TERMINATED):
            return
        self.last_response = response
        self._send(response)
        if response.status < 200:
            self.state = PROCEEDING
            return
        self.state = COMPLETED
        self.request = None  # only the response is repeated from now on
        delay = self.layer.timers.timer_j(self.reliable)
        if delay:
            self._timer = self.layer.clock.callLater(delay, self._terminate)
        else:
            self._terminate()

    def retransmission(self, request: Request) -> None:
        """The same request again: repeat the last response, if any (§17.2.2)."""
        if self.last_response is not None and self.state in (PROCEEDING, COMPLETED):
            self._send(self.last_response)

    def ack(self, request: Request) -> None:
        """An ACK cannot match a non-INVITE transaction; ignored."""

    def _terminate(self) -> None:
        self._timer = None
        self.state = TERMINATED
        self.last_response = None
        context, self.context = self.context, None
        if context is not None:
            context.release()  # breaks the reference cycles so memory is freed at once
        self.layer.remove_server(self)

    def stop(self) -> None:
        """Terminate at once, cancelling timers (shutdown)."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._terminate()


class InviteServerTransaction(ServerTransaction):
    """An INVITE server transaction (§17.2.1 with the Accepted state of RFC 6026)."""

    __slots__ = ("_interval", "_timer_h", "cancelled")

    def __init__(
        self, layer: TransactionLayer, key: tuple[Any, ...], request: Request, source: Any
    ) -> None:
        super().__init__(layer, key, request, source)
        self.state = PROCEEDING
        self._interval = 0.0
        self._timer_h: Any = None
        #: Set when a CANCEL for this INVITE arrived (§16.10).
        self.cancelled = False

    def respond(self, response: Response) -> None:
        """Send a response; 2xx leads to Accepted, 3xx-6xx to Completed."""
        state = self.state
        status = response.status
        if state == ACCEPTED:
            if 200 <= status < 300:
                self._send(response)  # a 2xx retransmission from the TU
            return
        if state != PROCEEDING:
            return
        self.last_response = response
        self._send(response)
        if status < 200:
            return
        timers = self.layer.timers
        clock = self.layer.clock
        # From here on no request is needed: free it for the 32 s that remain.
        self.request = None
        if status < 300:
            self.state = ACCEPTED
            self.last_response = None  # the TU re-sends 2xx itself (RFC 6026)
            self._timer = clock.callLater(timers.timer_l, self._terminate)
            return
        self.state = COMPLETED
        if not self.reliable:
            self._interval = timers.t1
            self._timer = clock.callLater(self._interval, self._timer_g)
        self._timer_h = clock.callLater(timers.timer_h, self._timer_h_fired)

    def retransmission(self, request: Request) -> None:
        """A retransmitted INVITE: repeat the last provisional or final (§17.2.1)."""
        if self.last_response is not None and self.state in (PROCEEDING, COMPLETED):
            self._send(self.last_response)

    def ack(self, request: Request) -> None:
        """An ACK for our non-2xx final: Completed -> Confirmed, absorbed hop by hop."""
        if self.state != COMPLETED:
            return
        self.state = CONFIRMED
        self._cancel_timers()
        delay = self.layer.timers.timer_i(self.reliable)
        if delay:
            self._timer = self.layer.clock.callLater(delay, self._terminate)
        else:
            self._terminate()

    def _timer_g(self) -> None:
        if self.state != COMPLETED or self.last_response is None:
            return
        self._send(self.last_response)
        self._interval = min(2 * self._interval, self.layer.timers.t2)
        self._timer = self.layer.clock.callLater(self._interval, self._timer_g)

    def _timer_h_fired(self) -> None:
        """No ACK came (§17.2.1): give up."""
        self._timer_h = None
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self.layer.stats.inc("sip_transaction_timeouts_total", timer="H")
        self._terminate()

    def _cancel_timers(self) -> None:
        for timer in (self._timer, self._timer_h):
            if timer is not None and timer.active():
                timer.cancel()
        self._timer = self._timer_h = None

    def stop(self) -> None:
        """Terminate at once, cancelling timers (shutdown)."""
        self._cancel_timers()
        self._terminate()
