"""The routing pipeline: the Python counterpart of a Kamailio routing script.

A request runs through small ``IRouteStep`` steps, in the order the
configuration names, until one decides: reply, forward or drop. Named
sub-routes let one list call another. Steps shipped here cover sanity
checks, Max-Forwards, the server's own OPTIONS, loose routing of in-dialog
requests, static routes and relaying; plugins add more.
"""

from sipapp.routing.decisions import CONTINUE, DROP, Decision, Forward, Reply, Target
from sipapp.routing.pipeline import Pipeline, RouteContext

__all__ = [
    "CONTINUE",
    "DROP",
    "Decision",
    "Forward",
    "Pipeline",
    "Reply",
    "RouteContext",
    "Target",
]
