"""What a route step answers: continue, reply, forward or drop.

The values are frozen and cheap; ``CONTINUE`` and ``DROP`` are singletons a
step returns as they are.
"""

from __future__ import annotations

import attrs

from sipapp.sip import SipUri


@attrs.frozen
class Target:
    """One destination: the Request-URI to send and, optionally, the next hop.

    ``next_hop`` is where the request physically goes (Kamailio's
    destination URI); without it the Route set or the Request-URI decides.
    ``route`` is a Route set to put in front (e.g. a registration's Path).
    ``q`` orders serial forking.
    """

    uri: SipUri
    next_hop: SipUri | None = None
    route: tuple[str, ...] = ()
    q: float = 1.0


@attrs.frozen
class Continue:
    """No decision: the next step runs."""


@attrs.frozen
class Drop:
    """Silently discard the request."""


@attrs.frozen
class Reply:
    """Answer the request with ``status`` (and extra headers)."""

    status: int
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@attrs.frozen
class Forward:
    """Proxy the request to ``targets``: in parallel, or one after another when ``serial``."""

    targets: tuple[Target, ...]
    serial: bool = False


CONTINUE = Continue()
DROP = Drop()

Decision = Continue | Drop | Reply | Forward
