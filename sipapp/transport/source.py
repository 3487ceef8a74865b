"""Where a received SIP message came from: the ``Source`` value.

The transports build one ``Source`` per message and hand it to the message
handler with the message; the transport manager takes it back to send a
response (RFC 3261 §18.2.2). It is a plain value with no behaviour.
"""

from __future__ import annotations

import attrs

from sipapp.interfaces import IConnection


@attrs.frozen
class Source:
    """The peer and the local socket of one received message.

    ``transport`` is ``'UDP'``, ``'TCP'`` or ``'TLS'``; addresses are text
    without brackets (``'::1'``). ``connection`` is the stream connection the
    message arrived on (``None`` for UDP).
    """

    transport: str
    host: str
    port: int
    local_host: str
    local_port: int
    connection: IConnection | None = None
