"""The response context of a stateful proxy (RFC 3261 §16.7): branches and the best response.

A ``ResponseContext`` holds one forwarded request's branches, started in
groups (all at once for parallel forking, one group after another for
serial forking by q-value). Provisional responses go upstream at once, as
does every 2xx, which also cancels the other branches; a 6xx cancels the
rest. When every branch has failed, the failure handlers may add branches
(LCR failover, call forwarding); otherwise the best final response goes
upstream, with the challenges of all 401/407 responses combined. Timer C
(§16.8) guards INVITE branches that got a provisional but no final.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from sipapp.interfaces import IClientTransactionUser
from sipapp.proxy.forward import ForwardError, Hop
from sipapp.routing.decisions import Target
from sipapp.sip import Request, Response

if TYPE_CHECKING:
    from sipapp.proxy.core import ProxyCore

log = Logger()

#: RFC 3326 Reason for CANCELs sent because another branch answered.
REASON_ANSWERED_ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'
_CHALLENGES = ("www-authenticate", "proxy-authenticate")


def group_targets(targets: Sequence[Target], serial: bool) -> list[list[Target]]:
    """Target groups in the order they are tried: by descending q, or one by one when serial."""
    if serial:
        return [[t] for t in targets]
    groups: dict[float, list[Target]] = {}
    for target in targets:
        groups.setdefault(target.q, []).append(target)
    return [groups[q] for q in sorted(groups, reverse=True)]


def _rank(response: Response) -> tuple[int, int]:
    """Lower is better (§16.7 step 6): 6xx first, then 3xx, 4xx, 5xx; challenges preferred."""
    status = response.status
    klass = status // 100
    order = 0 if klass == 6 else klass
    return order, 0 if status in (401, 407) else 1


@implementer(IClientTransactionUser)
class Branch:
    """One forwarded copy of the request and its client transaction."""

    __slots__ = ("context", "done", "hop", "provisional", "timer_c", "tx")

    def __init__(self, context: ResponseContext, hop: Hop) -> None:
        self.context = context
        self.hop = hop
        self.tx: Any = None
        self.timer_c: Any = None
        self.provisional = False
        self.done = False

    def response_received(self, response: Response, transaction: Any) -> None:
        """A response from downstream (ignored once the context is released)."""
        if self.context is not None:
            self.context.branch_response(self, response)

    def timed_out(self, transaction: Any) -> None:
        """Timer B / F: the branch failed with 408 (§16.7 step 2)."""
        if self.context is not None:
            self.context.branch_synthetic(self, 408)

    def transport_failed(self, transaction: Any) -> None:
        """The request could not be sent: 503 (§16.7 step 2, RFC 3263)."""
        if self.context is not None:
            self.context.branch_synthetic(self, 503)

    def cancel(self, reason: str | None) -> None:
        """CANCEL this branch if it is an unanswered INVITE."""
        tx = self.tx
        request = tx.request if tx is not None else None
        if not self.done and request is not None and request.method == "INVITE":
            tx.cancel(reason)

    def stop_timer_c(self) -> None:
        """Stop timer C."""
        timer = self.timer_c
        if timer is not None:
            if timer.active():
                timer.cancel()
            self.timer_c = None


class ResponseContext:
    """The branches of one forwarded request and what goes upstream (§16.7)."""

    def __init__(
        self,
        core: ProxyCore,
        transaction: Any,
        request: Request,
        source: Any,
        loop_part: str,
        groups: Iterable[list[Target]],
    ) -> None:
        self.core = core
        self.transaction = transaction
        self.request = request
        self.source = source
        self.loop_part = loop_part
        self.groups: deque[list[Target]] = deque(groups)
        self.branches: list[Branch] = []
        self.finals: list[tuple[Response, bool]] = []  # (response, synthesized)
        self.pending = 0
        self.tried = 0  # targets attempted, counted against max_branches
        self.starting = False  # inside _next_group: a branch failing at once must wait
        self.answered = False  # a final (2xx, or the best) went upstream
        self.cancelled = False
        self.asking = False  # waiting for failure handlers
        self.is_invite = request.method == "INVITE"
        transaction.context = self

    # -- starting branches ---------------------------------------------------

    def start(self) -> None:
        """Start the first group of branches."""
        self._next_group()
        self._check_done()

    def _next_group(self) -> None:
        # A branch may fail while it starts (transport error): its _check_done
        # must not send a final while the rest of the group is still starting.
        self.starting = True
        try:
            while self.groups and not self.pending and not self.cancelled:
                for target in self.groups.popleft():
                    self._start_branch(target)
        finally:
            self.starting = False

    def _start_branch(self, target: Target) -> None:
        core = self.core
        if self.tried >= core.config.proxy.max_branches:
            self.finals.append(
                (self._synthesize(500, "Server Internal Error - too many branches"), True)
            )
            return
        self.tried += 1
        branch_id = core.forwarder.branch(self.loop_part)
        try:
            out, hop = core.forwarder.prepare(
                self.request, target, self.source, branch_id, initial=self.request.to.tag is None
            )
        except ForwardError as error:
            self.finals.append((self._synthesize(error.status, error.reason), True))
            return
        branch = Branch(self, hop)
        self.branches.append(branch)
        self.pending += 1
        if self.is_invite:
            branch.timer_c = core.clock.callLater(core.timers.timer_c, self._timer_c, branch)
        branch.tx = core.layer.start_client(out, hop, branch)

    def add_targets(self, targets: Sequence[Target], serial: bool = False) -> None:
        """More branches (from a failure handler): tried after the current ones."""
        self.groups.extend(group_targets(targets, serial))

    # -- responses -------------------------------------------------------------

    def branch_response(self, branch: Branch, response: Response) -> None:
        """§16.7 steps 3-10 for one response of one branch."""
        status = response.status
        if status < 200:
            if status == 100:
                return
            if self.is_invite:
                branch.provisional = True
                self._restart_timer_c(branch)
            if not self.answered:
                self._upstream(response)
            return
        if status < 300:
            if not branch.done:
                self._finish(branch)
            self.answered = True
            self._upstream(response)
            if self.is_invite:
                self._cancel_pending(REASON_ANSWERED_ELSEWHERE)
            self.groups.clear()
            if not self.pending:
                self._settled()
            return
        if branch.done:
            return
        self._finish(branch)
        if self.answered:
            return
        self.finals.append((response, False))
        if status >= 600:
            self.groups.clear()
            self._cancel_pending(None)
        self._check_done()

    def branch_synthetic(self, branch: Branch, status: int) -> None:
        """A branch failed without a response (timeout, transport error)."""
        if branch.done:
            return
        self._finish(branch)
        if not self.answered:
            self.finals.append((self._synthesize(status), True))
            self._check_done()

    def _finish(self, branch: Branch) -> None:
        branch.done = True
        branch.stop_timer_c()
        branch.tx = None
        self.pending -= 1
        if self.answered and not self.pending:
            self._settled()

    def _timer_c(self, branch: Branch) -> None:
        """§16.8: no final in time. CANCEL after a provisional; either way the branch is a 408."""
        branch.timer_c = None
        self.core.stats.inc("sip_transaction_timeouts_total", timer="C")
        if branch.provisional:
            branch.cancel(None)
        self.branch_synthetic(branch, 408)

    def _restart_timer_c(self, branch: Branch) -> None:
        timer = branch.timer_c
        if timer is not None and timer.active():
            timer.reset(self.core.timers.timer_c)

    # -- the end -------------------------------------------------------------------

    def _check_done(self) -> None:
        if self.pending or self.answered or self.asking or self.starting:
            return
        if self.groups and not self.cancelled:
            self._next_group()
            if self.pending:
                return
            self._check_done()
            return
        if not self.finals:
            self._send_final(self._synthesize(480 if not self.cancelled else 487), True)
            return
        best, synthesized = min(self.finals, key=lambda f: _rank(f[0]))
        if self.cancelled or self.transaction.state not in ("proceeding", "trying"):
            self._send_final(best, synthesized)
            return
        handlers = self.core.failure_handlers
        # Once max_branches targets were tried, more from a handler could never start.
        if handlers and best.status < 600 and self.tried < self.core.config.proxy.max_branches:
            self._ask_handlers(list(handlers), best, synthesized)
            return
        self._send_final(best, synthesized)

    def _ask_handlers(self, handlers: list[Any], best: Response, synthesized: bool) -> None:
        """Offer the failure to each handler in turn until one adds targets."""
        while handlers:
            handler = handlers.pop(0)
            try:
                result = handler.branches_failed(self.request, best, self)
            except Exception:
                log.failure("failure handler {handler} raised", handler=handler)
                continue
            if isinstance(result, Deferred):
                self.asking = True
                result.addCallback(self._handler_answered, handlers, best, synthesized)
                result.addErrback(self._handler_failed, handlers, best, synthesized)
                return
            if result:
                self._retry(result)
                return
        self._send_final(best, synthesized)

    def _handler_answered(
        self, result: Any, handlers: list[Any], best: Response, synthesized: bool
    ) -> None:
        self.asking = False
        if self.cancelled:
            self._check_done()
        elif result:
            self._retry(result)
        else:
            self._ask_handlers(handlers, best, synthesized)

    def _handler_failed(
        self, failure: Any, handlers: list[Any], best: Response, synthesized: bool
    ) -> None:
        log.failure("failure handler failed", failure)
        self._handler_answered(None, handlers, best, synthesized)

    def _retry(self, targets: Sequence[Target]) -> None:
        self.core.stats.inc("sip_failover_total")
        self.add_targets(targets)
        self._check_done()

    def _settled(self) -> None:
        """Answered and no branch pending: only 2xx retransmissions can still pass.

        The request is no longer needed; the server transaction keeps this
        context for its remaining 32 s, so free what is large now.
        """
        self.request = None  # type: ignore[assignment]
        self.finals = []

    def _send_final(self, best: Response, synthesized: bool) -> None:
        self.answered = True
        if self.cancelled and synthesized:
            best = self._synthesize(487)
            synthesized = True
        if best.status == 503:
            # §16.7 step 6, and §16.9 for a branch that could not be sent: a 503
            # upstream would say that this proxy is unavailable.
            detail = best.reason.partition(" - ")[2] if synthesized else ""
            best = best.copy()
            best.status = 500
            best.reason = "Server Internal Error - " + (detail or "downstream unavailable")
        if best.status in (401, 407):
            best = self._with_all_challenges(best)
        if synthesized:
            self.transaction.respond(best)
        else:
            self._upstream(best)
        if not self.pending:
            self._settled()

    def _with_all_challenges(self, best: Response) -> Response:
        """§16.7 step 7: every WWW-/Proxy-Authenticate of every 401/407 in one response."""
        challenges: list[tuple[str, str]] = []
        for response, _ in self.finals:
            if response.status in (401, 407) and response is not best:
                for key in _CHALLENGES:
                    challenges.extend((key, value) for value in response.get_all(key))
        if not challenges:
            return best
        best = best.copy()
        for key, value in challenges:
            best.add(
                "Proxy-Authenticate" if key == "proxy-authenticate" else "WWW-Authenticate", value
            )
        return best

    # -- sending ---------------------------------------------------------------------

    def _upstream(self, response: Response) -> None:
        """Forward a downstream response: our Via removed (§16.7 step 9).

        A 2xx that arrives after the server transaction already sent another
        final (a 487 after CANCEL) still goes upstream, statelessly: the
        callee answered and must get its ACK (§16.7 step 5).
        """
        out = response.copy()
        out.pop_via()
        if not out.has("via"):
            # §16.7 step 3: it names only us, so it cannot go upstream as it is.
            self.core.stats.inc("sip_responses_unmatched_total")
            if out.status < 200 or self.request is None:
                return
            out = self._synthesize(out.status, out.reason)
        transaction = self.transaction
        if (
            self.is_invite
            and 200 <= out.status < 300
            and transaction.state not in ("proceeding", "accepted")
        ):
            self.core.manager.send_response(out, self.source)
            return
        transaction.respond(out)

    def _synthesize(self, status: int, reason: str | None = None) -> Response:
        return self.core.local_response(self.request, status, reason)

    def _cancel_pending(self, reason: str | None) -> None:
        for branch in self.branches:
            if not branch.done:
                branch.cancel(reason)

    def release(self) -> None:
        """The server transaction ended: drop every reference so memory is freed now.

        Branches whose client transactions live on ignore what still arrives.
        """
        for branch in self.branches:
            branch.stop_timer_c()
            branch.context = None  # type: ignore[assignment]
        self.branches = []
        self.finals = []
        self.groups.clear()

    def cancel(self, reason: str | None) -> None:
        """A CANCEL for the request arrived (§16.10): cancel every pending branch."""
        self.cancelled = True
        self.groups.clear()
        self._cancel_pending(reason)
        if not self.answered and not any(b.provisional for b in self.branches):
            # Nobody downstream answered yet: the caller need not wait for timer B.
            self._send_final(self._synthesize(487), True)
        self._check_done()
