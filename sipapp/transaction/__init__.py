"""RFC 3261 §17 transactions (with the RFC 6026 Accepted state).

``TransactionLayer`` sits between the transports and the proxy core: it
matches every message to its transaction, absorbs retransmissions, runs
timers A to M from an injected clock, and hands new requests and final
outcomes to its transaction user.
"""

from sipapp.transaction.client import ClientTransaction, InviteClientTransaction
from sipapp.transaction.layer import TransactionLayer
from sipapp.transaction.server import InviteServerTransaction, ServerTransaction
from sipapp.transaction.timers import Timers

__all__ = [
    "ClientTransaction",
    "InviteClientTransaction",
    "InviteServerTransaction",
    "ServerTransaction",
    "Timers",
    "TransactionLayer",
]
