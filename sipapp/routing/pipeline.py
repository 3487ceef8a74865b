"""Running route steps in order: the main route, named sub-routes, and plugins.

``Pipeline.route`` runs the steps of the main route until one decides. A
step named ``route:NAME`` runs the sub-route NAME and, when that ends
without a decision, the caller goes on (Kamailio's ``route(NAME)``). A step
may answer at once or with a ``Deferred``; the pipeline stays synchronous
until a step really waits. ``build_pipeline`` resolves the configured names
to built-in steps and ``IRouteStep`` plugins, and fails at start-up with a
``ConfigError`` for a name it cannot find or a sub-route that calls itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from sipapp.config import Config, ConfigError
from sipapp.interfaces import IFailureHandler, IRouteContext, IRouteStep
from sipapp.routing.decisions import CONTINUE, Decision, Reply
from sipapp.sip import Request

log = Logger()

#: What a pipeline that ends without any decision answers.
NO_DECISION = Reply(500, "Server Internal Error - no routing decision")


@implementer(IRouteContext)
class RouteContext:
    """Everything a step may use besides the request: one per request."""

    __slots__ = ("clock", "config", "flags", "is_myself", "source", "stats")

    def __init__(self, source: Any, config: Config, clock: Any, stats: Any, is_myself: Any) -> None:
        self.source = source
        self.config = config
        self.clock = clock
        self.stats = stats
        self.is_myself = is_myself
        self.flags: dict[str, Any] = {}


class SubRoute:
    """The step ``route:NAME``: runs another list of steps."""

    def __init__(self, name: str) -> None:
        self.name = f"route:{name}"
        self.target = name
        self.steps: tuple[Any, ...] = ()


class Pipeline:
    """The main route and its sub-routes, ready to run."""

    def __init__(self, main: Sequence[Any]) -> None:
        self.main = tuple(main)

    def route(self, request: Request, context: RouteContext) -> Decision | Deferred[Decision]:
        """The decision for ``request``: a value, or a ``Deferred`` when a step waits."""
        result = _run(self.main, 0, request, context)
        if result is CONTINUE:
            return NO_DECISION
        if isinstance(result, Deferred):
            return result.addCallback(lambda d: NO_DECISION if d is CONTINUE else d)
        return result


def _run(
    steps: tuple[Any, ...], start: int, request: Request, context: RouteContext
) -> Decision | Deferred[Decision]:
    """Run ``steps[start:]``; CONTINUE when none decided."""
    for index in range(start, len(steps)):
        step = steps[index]
        if isinstance(step, SubRoute):
            result: Any = _run(step.steps, 0, request, context)
        else:
            result = step.handle(request, context)
        if result is CONTINUE:
            continue
        if isinstance(result, Deferred):
            return result.addCallback(_resume, steps, index + 1, request, context)
        return result  # type: ignore[no-any-return]
    return CONTINUE


def _resume(
    result: Decision, steps: tuple[Any, ...], start: int, request: Request, context: RouteContext
) -> Decision | Deferred[Decision]:
    if result is CONTINUE:
        return _run(steps, start, request, context)
    return result


def find_plugins(interface: Any = IRouteStep) -> dict[str, Any]:
    """Plugins in ``sipapp.plugins`` providing ``interface`` (route steps by default), by name."""
    from twisted.plugin import getPlugins

    import sipapp.plugins

    found: dict[str, Any] = {}
    for plugin in getPlugins(interface, sipapp.plugins):
        found[plugin.name] = plugin
    return found


def find_failure_handlers(
    names: Sequence[str], plugins: Mapping[str, Any] | None = None
) -> list[Any]:
    """The ``IFailureHandler`` plugins named in ``[proxy] failure_handlers``, in order.

    Raises ``ConfigError`` naming the key for a name no plugin has.
    """
    if not names:
        return []
    available = dict(plugins) if plugins is not None else find_plugins(IFailureHandler)
    handlers = []
    for index, name in enumerate(names):
        if name not in available:
            known = ", ".join(sorted(available)) or "none installed"
            raise ConfigError(
                None,
                f"proxy.failure_handlers[{index}]",
                f"unknown failure handler {name!r} (known: {known})",
            )
        handlers.append(available[name])
    return handlers


def build_pipeline(
    main: Sequence[str],
    routes: Mapping[str, Sequence[str]],
    builtins: Mapping[str, Any],
    plugins: Mapping[str, Any] | None = None,
) -> Pipeline:
    """Resolve step names to steps. Raises ``ConfigError`` naming the bad key."""
    available: dict[str, Any] = dict(plugins if plugins is not None else find_plugins())
    available.update(builtins)
    subroutes: dict[str, SubRoute] = {name: SubRoute(name) for name in routes}

    def resolve(names: Iterable[str], key: str) -> tuple[Any, ...]:
        steps = []
        for index, name in enumerate(names):
            if name.startswith("route:"):
                sub = subroutes.get(name[6:])
                if sub is None:
                    raise ConfigError(None, f"{key}[{index}]", f"no sub-route named {name[6:]!r}")
                steps.append(sub)
            elif name in available:
                steps.append(available[name])
            else:
                known = ", ".join(sorted(available))
                raise ConfigError(
                    None, f"{key}[{index}]", f"unknown step {name!r} (known: {known})"
                )
        return tuple(steps)

    for name, sub in subroutes.items():
        sub.steps = resolve(routes[name], f"routing.routes.{name}")
    _check_cycles(subroutes)
    return Pipeline(resolve(main, "routing.main"))


def _check_cycles(subroutes: Mapping[str, SubRoute]) -> None:
    def visit(sub: SubRoute, path: tuple[str, ...]) -> None:
        if sub.target in path:
            chain = " -> ".join((*path, sub.target))
            raise ConfigError(
                None, f"routing.routes.{path[0]}", f"sub-routes call each other: {chain}"
            )
        for step in sub.steps:
            if isinstance(step, SubRoute):
                visit(step, (*path, sub.target))

    for sub in subroutes.values():
        visit(sub, ())
