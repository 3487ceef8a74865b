"""SIP transports over Twisted (RFC 3261 §18): UDP, TCP and TLS, IPv4 and IPv6.

``Source`` names where a message came from, ``TransportManager`` owns the
sockets and picks one for each outgoing message, ``TransportService`` opens
them at start-up and drains them on shutdown. Name resolution (RFC 3263) is
not done here.
"""

from sipapp.transport.manager import TransportManager
from sipapp.transport.service import TransportService
from sipapp.transport.source import Source

__all__ = ["Source", "TransportManager", "TransportService"]
