"""Client transactions (RFC 3261 §17.1, RFC 6026 §7.2).

``ClientTransaction`` is the non-INVITE state machine (Trying, Proceeding,
Completed, Terminated); ``InviteClientTransaction`` the INVITE one
(Calling, Proceeding, Completed, Accepted, Terminated), which also builds
the ACK for a non-2xx final (§17.1.1.3) and the CANCEL (§9.1). The user —
a branch of the proxy's response context — learns of responses, timeouts
and transport errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sipapp.sip import Request, Response

if TYPE_CHECKING:
    from sipapp.transaction.layer import TransactionLayer

CALLING = "calling"
TRYING = "trying"
PROCEEDING = "proceeding"
COMPLETED = "completed"
ACCEPTED = "accepted"
TERMINATED = "terminated"

#: Copied from the request into an ACK or CANCEL built hop by hop (§17.1.1.3, §9.1).
_HOP_HEADERS = ("call-id", "from", "route")


class _NullUser:
    """The user of a CANCEL's own transaction: its outcome needs no action."""

    def response_received(self, response: Response, transaction: Any) -> None:
        """Ignored."""

    def timed_out(self, transaction: Any) -> None:
        """Ignored."""

    def transport_failed(self, transaction: Any) -> None:
        """Ignored."""


NULL_USER = _NullUser()


class ClientTransaction:
    """A non-INVITE client transaction (§17.1.2)."""

    __slots__ = (
        "_interval",
        "_timeout",
        "_timer",
        "hop",
        "key",
        "layer",
        "request",
        "state",
        "user",
    )

    def __init__(
        self,
        layer: TransactionLayer,
        request: Request,
        hop: tuple[str, str, int],
        user: Any,
    ) -> None:
        self.layer = layer
        self.request: Request | None = request
        #: (transport, host, port) of the next hop, host an IP literal.
        self.hop = hop
        self.user = user
        self.key = (request.top_via.branch, request.method)
        self.state = TRYING
        self._interval = 0.0
        self._timer: Any = None
        self._timeout: Any = None

    @property
    def reliable(self) -> bool:
        """True when the next hop is over TCP or TLS."""
        return self.hop[0].upper() != "UDP"

    def _transmit(self) -> bool:
        transport, host, port = self.hop
        return self.layer.manager.send_request(
            self.request, transport, host, port, self._connection_failed
        )

    def _connection_failed(self) -> None:
        """A stream connection failed before the request went out (§17.1.4)."""
        if self.state in (CALLING, TRYING, PROCEEDING):
            self._fail()

    def start(self) -> None:
        """Send the request; start the retransmit timer (E, or A) and the timeout (F, or B)."""
        if not self._transmit():
            self._fail()
            return
        clock = self.layer.clock
        if not self.reliable:
            self._interval = self.layer.timers.t1
            self._timer = clock.callLater(self._interval, self._retransmit)
        self._timeout = clock.callLater(self._timeout_delay(), self._timed_out)

    def _timeout_delay(self) -> float:
        """Timer F."""
        return self.layer.timers.timer_f

    def _fail(self) -> None:
        self.layer.stats.inc("sip_transport_errors_total")
        self._terminate()
        self.user.transport_failed(self)

    def _retransmit(self) -> None:
        """Timer E: resend, doubling up to T2 (at T2 once Proceeding)."""
        if self.state not in (TRYING, PROCEEDING):
            return
        self._transmit()
        t2 = self.layer.timers.t2
        self._interval = t2 if self.state == PROCEEDING else min(2 * self._interval, t2)
        self._timer = self.layer.clock.callLater(self._interval, self._retransmit)

    #: The name of the timeout timer, for the counters.
    timeout_timer = "F"

    def _timed_out(self) -> None:
        """Timer F (B for INVITE): no final response in time."""
        self._timeout = None
        self.layer.stats.inc("sip_transaction_timeouts_total", timer=self.timeout_timer)
        self._terminate()
        self.user.timed_out(self)

    def receive_response(self, response: Response) -> None:
        """A response matched to this transaction."""
        state = self.state
        if state not in (TRYING, PROCEEDING):
            return
        if response.status < 200:
            self.state = PROCEEDING
            self.user.response_received(response, self)
            return
        self.state = COMPLETED
        self.request = None  # nothing is sent any more: free it
        self._cancel_timers()
        delay = self.layer.timers.timer_k(self.reliable)
        if delay:
            self._timer = self.layer.clock.callLater(delay, self._terminate)
        else:
            self._terminate()
        self.user.response_received(response, self)

    def _cancel_timers(self) -> None:
        for timer in (self._timer, self._timeout):
            if timer is not None and timer.active():
                timer.cancel()
        self._timer = self._timeout = None

    def _terminate(self) -> None:
        if self.state == TERMINATED:
            return
        self._cancel_timers()
        self.state = TERMINATED
        self.layer.remove_client(self)

    def stop(self) -> None:
        """Terminate at once (shutdown)."""
        self._terminate()


class InviteClientTransaction(ClientTransaction):
    """An INVITE client transaction (§17.1.1 with the Accepted state of RFC 6026)."""

    __slots__ = ("_ack", "_cancel_reason", "_cancel_wanted", "cancel_sent")

    def __init__(
        self,
        layer: TransactionLayer,
        request: Request,
        hop: tuple[str, str, int],
        user: Any,
    ) -> None:
        super().__init__(layer, request, hop, user)
        self.state = CALLING
        self._ack: Request | None = None
        self._cancel_wanted = False
        self._cancel_reason: str | None = None
        self.cancel_sent = False

    #: Timer B: no response in Calling, or no final 64*T1 after a CANCEL (§9.1).
    timeout_timer = "B"

    def _timeout_delay(self) -> float:
        """Timer B."""
        return self.layer.timers.timer_b

    def _retransmit(self) -> None:
        """Timer A: resend, doubling the interval each time."""
        if self.state != CALLING:
            return
        self._transmit()
        self._interval *= 2
        self._timer = self.layer.clock.callLater(self._interval, self._retransmit)

    def receive_response(self, response: Response) -> None:
        """A response matched to this transaction (§17.1.1.2, RFC 6026)."""
        state = self.state
        status = response.status
        if state in (CALLING, PROCEEDING):
            if status < 200:
                if state == CALLING:
                    self.state = PROCEEDING
                    self._cancel_timers()
                    if self._cancel_wanted:
                        self._send_cancel()
                self.user.response_received(response, self)
                return
            self._cancel_timers()
            clock = self.layer.clock
            if status < 300:
                self.state = ACCEPTED
                self._timer = clock.callLater(self.layer.timers.timer_m, self._terminate)
            else:
                self.state = COMPLETED
                self._send_ack(response)
                delay = self.layer.timers.timer_d(self.reliable)
                if delay:
                    self._timer = clock.callLater(delay, self._terminate)
                else:
                    self._terminate()
            self.request = None  # only the ACK (if any) is sent from now on
            self.user.response_received(response, self)
        elif state == ACCEPTED:
            if 200 <= status < 300:
                self.user.response_received(response, self)
        elif state == COMPLETED and status >= 300 and self._ack is not None:
            self.layer.manager.send_request(self._ack, *self.hop)

    def _send_ack(self, response: Response) -> None:
        """The ACK for a non-2xx final, sent on this transaction's hop (§17.1.1.3)."""
        ack = self._hop_request("ACK")
        to = response.get("to")
        if to is not None:
            ack.set("To", to)
        self._ack = ack
        self.layer.manager.send_request(ack, *self.hop)

    def _hop_request(self, method: str) -> Request:
        """An ACK or CANCEL sharing the INVITE's Request-URI, top Via and CSeq number."""
        request = self.request
        assert request is not None, "ACK and CANCEL are built before the request is released"
        out = Request(method, request.ruri)
        out.add("Via", request.top_via.render())
        out.add("Max-Forwards", "70")
        for h in request.headers:
            if h[0] in _HOP_HEADERS:
                out.headers.append(list(h))
        to = request.get("to")
        if to is not None:
            out.add("To", to)
        out.add("CSeq", f"{request.cseq.number} {method}")
        return out

    def cancel(self, reason: str | None = None) -> None:
        """Cancel this INVITE (§9.1): now if a provisional came, else when one comes."""
        if self.cancel_sent or self.state not in (CALLING, PROCEEDING):
            return
        self._cancel_reason = reason
        if self.state == PROCEEDING:
            self._send_cancel()
        else:
            self._cancel_wanted = True

    def _send_cancel(self) -> None:
        self.cancel_sent = True
        cancel = self._hop_request("CANCEL")
        if self._cancel_reason:
            cancel.add("Reason", self._cancel_reason)
        # §9.1: a callee that never answers the cancelled INVITE must not keep
        # this transaction (and the shutdown drain) alive: give up after 64*T1.
        self._timeout = self.layer.clock.callLater(self.layer.timers.timer_b, self._timed_out)
        self.layer.start_client(cancel, self.hop, NULL_USER)
