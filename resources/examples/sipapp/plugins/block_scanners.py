"""An example route step plugin: refuse requests from well-known SIP scanners with 403.

Scanners such as SIPVicious (``friendly-scanner``, ``sipvicious``) and
``sipcli`` probe every public SIP server for open relays and weak
passwords; they announce themselves in the User-Agent header. This step
answers them 403 before any other step spends work on them.

To use it, put this file in a ``sipapp/plugins/`` directory (one with no
``__init__.py``) under any directory on ``sys.path``, for example
``/etc/sipapp/plugins/sipapp/plugins/block_scanners.py`` with
``PYTHONPATH=/etc/sipapp/plugins``, and name the step first in the routing
script::

    [routing]
    main = ["block_scanners", "sanity", "options", "max_forwards",
            "loose_route", "static", "reject"]

The server finds it with ``twisted.plugin.getPlugins(IRouteStep,
sipapp.plugins)`` by the ``name`` of the module-level object
``block_scanners``. To block other tools, edit ``SCANNERS`` or replace that
object with ``BlockScanners(("my-scanner", ...))``. Blocked requests are
counted in ``sip_scanners_blocked_total``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twisted.plugin import IPlugin
from zope.interface import implementer

from sipapp.interfaces import IRouteStep
from sipapp.routing.decisions import CONTINUE, DROP, Decision, Reply

#: User-Agent substrings (compared without regard to case) of the tools refused.
SCANNERS = ("friendly-scanner", "sipvicious", "sipcli")


@implementer(IPlugin, IRouteStep)
class BlockScanners:
    """403 Forbidden for a request whose User-Agent names one of ``scanners``."""

    def __init__(self, scanners: Iterable[str] = SCANNERS, name: str = "block_scanners") -> None:
        self.name = name
        self.scanners = tuple(s.lower() for s in scanners)

    def is_scanner(self, user_agent: str | None) -> bool:
        """True when ``user_agent`` contains one of the scanner names."""
        if not user_agent:
            return False
        agent = user_agent.lower()
        return any(scanner in agent for scanner in self.scanners)

    def handle(self, request: Any, context: Any) -> Decision:
        """403 for a scanner (an ACK, which gets no response, is dropped); else go on."""
        if not self.is_scanner(request.get("user-agent")):
            return CONTINUE
        context.stats.inc("sip_scanners_blocked_total")
        if request.method == "ACK":
            return DROP
        return Reply(403, "Forbidden")


#: The step the server finds; its ``name`` is what ``[routing] main`` refers to.
block_scanners = BlockScanners()
