"""The transaction layer: matching messages to transactions (RFC 3261 §17.1.3, §17.2.3).

``TransactionLayer`` is the ``IMessageHandler`` the transports deliver to.
A retransmitted request or an ACK for a non-2xx final is absorbed by its
server transaction; a response goes to its client transaction. What is new
goes up to the transaction user (the proxy core): requests with their new
server transaction, ACKs for 2xx (end to end, no transaction), CANCELs with
the INVITE transaction they cancel, and responses that match nothing.
"""

from __future__ import annotations

import secrets
from typing import Any

from twisted.logger import Logger
from zope.interface import implementer

from sipapp.interfaces import IMessageHandler, IStats, ITransportManager
from sipapp.sip import MAGIC_COOKIE, Request, Response, make_response
from sipapp.transaction.client import ClientTransaction, InviteClientTransaction
from sipapp.transaction.server import InviteServerTransaction, ServerTransaction
from sipapp.transaction.timers import Timers

log = Logger()


def server_key(request: Request) -> tuple[Any, ...]:
    """The key a request matches its server transaction by (§17.2.3).

    With an RFC 3261 branch: branch, sent-by and method (ACK counts as
    INVITE). Without one, the RFC 2543 fields: Request-URI, From tag,
    Call-ID, CSeq number, sent-by and method.
    """
    via = request.top_via
    branch = via.branch
    method = request.method
    if method == "ACK":
        method = "INVITE"
    if branch is not None and len(branch) > 7 and branch.startswith(MAGIC_COOKIE):
        return (branch, via.host, via.port, method)
    return (
        request.ruri,
        request.from_.tag,
        request.call_id,
        request.cseq.number,
        via.host,
        via.port,
        method,
    )


@implementer(IMessageHandler)
class TransactionLayer:
    """Holds every live transaction and routes messages to them."""

    def __init__(self, manager: ITransportManager, clock: Any, timers: Timers, stats: IStats):
        self.manager = manager
        self.clock = clock
        self.timers = timers
        self.stats = stats
        #: The transaction user (``ITransactionUser``), set by the composition root.
        self.user: Any = None
        self.server: dict[tuple[Any, ...], ServerTransaction] = {}
        self.client: dict[tuple[Any, ...], ClientTransaction] = {}

    def in_flight(self) -> int:
        """Live transactions, in any state."""
        return len(self.server) + len(self.client)

    def unanswered(self) -> int:
        """Transactions still waiting for a final response: shutdown waits for these.

        Those that only absorb retransmissions (Completed, Confirmed,
        Accepted) do not count.
        """
        waiting = ("trying", "proceeding", "calling")
        return sum(1 for tx in self.server.values() if tx.state in waiting) + sum(
            1 for tx in self.client.values() if tx.state in waiting
        )

    # -- IMessageHandler ---------------------------------------------------

    def receive(self, message: Any, source: Any) -> None:
        """Match ``message`` to a transaction or pass it to the user; never raises."""
        try:
            if isinstance(message, Response):
                self._response(message, source)
            else:
                self._request(message, source)
        except Exception:
            log.failure(
                "transaction layer failed on a message from {host}:{port}",
                host=source.host,
                port=source.port,
            )
            self.stats.inc("sip_handler_errors_total")

    def _response(self, response: Response, source: Any) -> None:
        tx = self.client.get((response.top_via.branch, response.cseq.method))
        if tx is not None:
            tx.receive_response(response)
        else:
            self.user.stray_response(response, source)

    def _request(self, request: Request, source: Any) -> None:
        key = server_key(request)
        tx = self.server.get(key)
        method = request.method
        if tx is not None:
            if method == "ACK":
                tx.ack(request)
                if tx.state == "accepted":
                    self.user.request_received(request, None, source)
            else:
                self.stats.inc("sip_retransmissions_absorbed_total")
                tx.retransmission(request)
            return
        if method == "ACK":
            self.user.request_received(request, None, source)
            return
        if method == "INVITE":
            tx = InviteServerTransaction(self, key, request, source)
        else:
            tx = ServerTransaction(self, key, request, source)
        self.server[key] = tx
        try:
            if method == "CANCEL":
                invite = self.server.get((*key[:-1], "INVITE"))
                self.user.cancel_received(request, tx, invite, source)
            else:
                self.user.request_received(request, tx, source)
        except Exception:
            self._abandon(tx)
            raise

    def _abandon(self, tx: ServerTransaction) -> None:
        """The user failed on a new request: answer 500 so the transaction can end.

        Without a final response it would stay in flight for ever (a
        non-INVITE in Trying and an INVITE in Proceeding run no timer).
        """
        if tx.state not in ("trying", "proceeding") or tx.request is None:
            return
        try:
            tx.respond(make_response(tx.request, 500, to_tag=secrets.token_hex(6)))
        except Exception:
            tx.stop()
            raise

    # -- client side -------------------------------------------------------------

    def start_client(
        self, request: Request, hop: tuple[str, str, int], user: Any
    ) -> ClientTransaction:
        """Create and start the client transaction sending ``request`` to ``hop``."""
        if request.method == "INVITE":
            tx: ClientTransaction = InviteClientTransaction(self, request, hop, user)
        else:
            tx = ClientTransaction(self, request, hop, user)
        self.client[tx.key] = tx
        tx.start()
        return tx

    def remove_client(self, tx: ClientTransaction) -> None:
        """Forget a terminated client transaction."""
        if self.client.get(tx.key) is tx:
            del self.client[tx.key]

    def remove_server(self, tx: ServerTransaction) -> None:
        """Forget a terminated server transaction."""
        if self.server.get(tx.key) is tx:
            del self.server[tx.key]

    def stop(self) -> None:
        """Terminate every transaction (at the end of a shutdown)."""
        for stx in list(self.server.values()):
            stx.stop()
        for ctx in list(self.client.values()):
            ctx.stop()
