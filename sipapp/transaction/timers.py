"""Transaction timer values (RFC 3261 §17 and Table 4, RFC 6026 timers L and M).

``Timers`` holds T1, T2, T4 and the proxy's timer C; every other timer is
derived from them, and is zero on a reliable transport where the RFC says so.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Timers:
    """T1 (RTT estimate), T2 (maximum non-INVITE retransmit interval), T4, and timer C."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    timer_c: float = 180.0

    @property
    def timer_b(self) -> float:
        """INVITE client transaction timeout: 64*T1."""
        return 64 * self.t1

    @property
    def timer_f(self) -> float:
        """Non-INVITE client transaction timeout: 64*T1."""
        return 64 * self.t1

    @property
    def timer_h(self) -> float:
        """Wait time for an ACK: 64*T1."""
        return 64 * self.t1

    @property
    def timer_l(self) -> float:
        """RFC 6026 Accepted state of a server INVITE transaction: 64*T1."""
        return 64 * self.t1

    @property
    def timer_m(self) -> float:
        """RFC 6026 Accepted state of a client INVITE transaction: 64*T1."""
        return 64 * self.t1

    def timer_d(self, reliable: bool) -> float:
        """Wait for response retransmits (INVITE client): 32 s for UDP, 0 reliable."""
        return 0.0 if reliable else max(32.0, 64 * self.t1)

    def timer_i(self, reliable: bool) -> float:
        """Wait for ACK retransmits: T4 for UDP, 0 reliable."""
        return 0.0 if reliable else self.t4

    def timer_j(self, reliable: bool) -> float:
        """Wait for non-INVITE request retransmits: 64*T1 for UDP, 0 reliable."""
        return 0.0 if reliable else 64 * self.t1

    def timer_k(self, reliable: bool) -> float:
        """Wait for response retransmits (non-INVITE client): T4 for UDP, 0 reliable."""
        return 0.0 if reliable else self.t4
