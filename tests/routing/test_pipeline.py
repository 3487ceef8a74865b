"""Tests of sipapp.routing.pipeline: steps in order, sub-routes, Deferreds, building by name."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from sipapp.config import Config, ConfigError
from sipapp.interfaces import IRouteContext, IRouteStep
from sipapp.routing import CONTINUE, DROP, Pipeline, Reply, RouteContext
from sipapp.routing.pipeline import NO_DECISION, SubRoute, build_pipeline
from sipapp.routing.steps import builtin_steps
from sipapp.sip import Request
from sipapp.stats import Stats
from sipapp.testing import parsed_request
from sipapp.transport import Source

SOURCE = Source("UDP", "127.0.0.1", 5070, "127.0.0.1", 5060)


@implementer(IRouteStep)
class Step:
    """Records its name in the shared ``trail`` and answers ``decision``."""

    def __init__(self, name: str, trail: list[str], decision: Any = CONTINUE) -> None:
        self.name = name
        self.trail = trail
        self.decision = decision

    def handle(self, request: Any, context: Any) -> Any:
        """Note the call and answer."""
        self.trail.append(self.name)
        return self.decision


def context() -> RouteContext:
    """A route context for a request from the caller; nothing is 'myself'."""
    return RouteContext(SOURCE, Config(), Clock(), Stats(), lambda uri: False)


def route(pipeline: Pipeline, request: Request | None = None) -> Any:
    """The decision of ``pipeline`` for an INVITE (or ``request``)."""
    return pipeline.route(request or parsed_request(), context())


def test_route_context_provides_interface() -> None:
    """RouteContext provides IRouteContext, with empty flags per request."""
    ctx = context()
    assert verifyObject(IRouteContext, ctx)
    assert ctx.flags == {}
    assert context().flags is not ctx.flags


def test_steps_run_in_order_until_one_decides() -> None:
    """CONTINUE passes to the next step; the first decision ends the route."""
    trail: list[str] = []
    pipeline = Pipeline([Step("a", trail), Step("b", trail, Reply(404)), Step("c", trail)])
    assert route(pipeline) == Reply(404)
    assert trail == ["a", "b"]


def test_drop_is_a_decision() -> None:
    """DROP ends the route like any decision."""
    trail: list[str] = []
    assert route(Pipeline([Step("a", trail, DROP), Step("b", trail)])) is DROP
    assert trail == ["a"]


def test_no_decision_is_500() -> None:
    """A route that ends without a decision answers NO_DECISION, a 500."""
    trail: list[str] = []
    assert route(Pipeline([Step("a", trail), Step("b", trail)])) is NO_DECISION
    assert NO_DECISION.status == 500
    assert route(Pipeline([])) is NO_DECISION


def test_steps_may_change_the_request_for_later_steps() -> None:
    """A later step sees what an earlier one changed (and the flags it left)."""

    @implementer(IRouteStep)
    class Mark:
        name = "mark"

        def handle(self, request: Any, context: Any) -> Any:
            request.set("X-Marked", "yes")
            context.flags["marked"] = True
            return CONTINUE

    @implementer(IRouteStep)
    class Check:
        name = "check"

        def handle(self, request: Any, context: Any) -> Any:
            ok = request.get("x-marked") == "yes" and context.flags.get("marked")
            return Reply(200 if ok else 500)

    assert route(Pipeline([Mark(), Check()])) == Reply(200)


# -- sub-routes ------------------------------------------------------------------------------


def sub(name: str, *steps: Any) -> SubRoute:
    """A sub-route with ``steps`` (as build_pipeline makes them)."""
    subroute = SubRoute(name)
    subroute.steps = steps
    return subroute


def test_subroute_without_decision_returns_to_caller() -> None:
    """route:NAME runs its steps; without a decision the caller's next step runs."""
    trail: list[str] = []
    pipeline = Pipeline(
        [Step("a", trail), sub("s", Step("s1", trail), Step("s2", trail)),
         Step("b", trail, Reply(403))]
    )  # fmt: skip
    assert route(pipeline) == Reply(403)
    assert trail == ["a", "s1", "s2", "b"]


def test_subroute_decision_ends_the_route() -> None:
    """A decision inside a sub-route is the pipeline's decision."""
    trail: list[str] = []
    pipeline = Pipeline(
        [sub("s", Step("s1", trail, Reply(486)), Step("s2", trail)), Step("b", trail)]
    )
    assert route(pipeline) == Reply(486)
    assert trail == ["s1"]


def test_nested_subroutes() -> None:
    """A sub-route may call another sub-route."""
    trail: list[str] = []
    inner = sub("inner", Step("i", trail))
    outer = sub("outer", Step("o1", trail), inner, Step("o2", trail))
    assert route(Pipeline([outer, Step("m", trail, DROP)])) is DROP
    assert trail == ["o1", "i", "o2", "m"]


# -- Deferreds -------------------------------------------------------------------------------


def test_synchronous_route_returns_a_value() -> None:
    """Without waiting steps the decision is a plain value, not a Deferred."""
    trail: list[str] = []
    assert not isinstance(route(Pipeline([Step("a", trail, Reply(200))])), Deferred)


def test_deferred_step_resumes_the_rest() -> None:
    """A step's Deferred firing CONTINUE resumes with the following steps."""
    trail: list[str] = []
    waiting: Deferred[Any] = Deferred()
    pipeline = Pipeline([Step("a", trail, waiting), Step("b", trail, Reply(302))])
    result = route(pipeline)
    assert isinstance(result, Deferred)
    assert trail == ["a"]
    waiting.callback(CONTINUE)
    assert trail == ["a", "b"]
    assert result.result == Reply(302)  # type: ignore[attr-defined]


def test_deferred_decision_skips_the_rest() -> None:
    """A step's Deferred firing a decision ends the route."""
    trail: list[str] = []
    pipeline = Pipeline([Step("a", trail, succeed(Reply(480))), Step("b", trail)])
    result = route(pipeline)
    assert isinstance(result, Deferred)
    assert result.result == Reply(480)  # type: ignore[attr-defined]
    assert trail == ["a"]


def test_deferred_continue_at_the_end_is_no_decision() -> None:
    """A Deferred CONTINUE from the last step gives NO_DECISION."""
    trail: list[str] = []
    result = route(Pipeline([Step("a", trail, succeed(CONTINUE))]))
    assert result.result is NO_DECISION  # type: ignore[union-attr]


def test_deferred_inside_subroute_resumes_subroute_then_caller() -> None:
    """A waiting step in a sub-route resumes that sub-route, then the caller's steps."""
    trail: list[str] = []
    waiting: Deferred[Any] = Deferred()
    pipeline = Pipeline(
        [sub("s", Step("s1", trail, waiting), Step("s2", trail)), Step("b", trail, Reply(404))]
    )
    result = route(pipeline)
    assert trail == ["s1"]
    waiting.callback(CONTINUE)
    assert trail == ["s1", "s2", "b"]
    assert result.result == Reply(404)  # type: ignore[union-attr]


def test_two_waiting_steps_in_a_row() -> None:
    """Each waiting step resumes the route in turn."""
    trail: list[str] = []
    first: Deferred[Any] = Deferred()
    second: Deferred[Any] = Deferred()
    pipeline = Pipeline([Step("a", trail, first), Step("b", trail, second), Step("c", trail)])
    result = route(pipeline)
    first.callback(CONTINUE)
    assert trail == ["a", "b"]
    second.callback(CONTINUE)
    assert trail == ["a", "b", "c"]
    assert result.result is NO_DECISION  # type: ignore[union-attr]


def test_failing_deferred_step_fails_the_route() -> None:
    """A step's failure reaches the caller as a failed Deferred (the core answers 500)."""
    trail: list[str] = []
    waiting: Deferred[Any] = Deferred()
    result = route(Pipeline([Step("a", trail, waiting), Step("b", trail)]))
    waiting.errback(RuntimeError("lookup failed"))
    failures: list[Any] = []
    result.addErrback(failures.append)  # type: ignore[union-attr]
    assert failures[0].check(RuntimeError)
    assert trail == ["a"]


# -- build_pipeline ----------------------------------------------------------------------------


def named(trail: list[str], *names: str, decision: Any = CONTINUE) -> dict[str, Step]:
    """Steps by name that record themselves in ``trail``."""
    return {n: Step(n, trail, decision) for n in names}


def test_build_pipeline_resolves_names_in_order() -> None:
    """Names become the steps they name, in the configured order."""
    trail: list[str] = []
    steps = named(trail, "a", "b", "c")
    pipeline = build_pipeline(["c", "a"], {}, steps, plugins={})
    assert pipeline.main == (steps["c"], steps["a"])


def test_build_pipeline_with_subroutes() -> None:
    """route:NAME names a sub-route of [routing.routes]; the built route runs it."""
    trail: list[str] = []
    steps = named(trail, "a", "b", "c")
    pipeline = build_pipeline(["a", "route:checks", "c"], {"checks": ["b"]}, steps, plugins={})
    assert route(pipeline) is NO_DECISION
    assert trail == ["a", "b", "c"]


def test_build_pipeline_uses_plugins_and_builtins_win() -> None:
    """Plugins are found by name; a built-in of the same name is preferred."""
    trail: list[str] = []
    builtin = named(trail, "a")
    plugins = {"a": Step("plugin-a", trail), "extra": Step("extra", trail)}
    pipeline = build_pipeline(["a", "extra"], {}, builtin, plugins=plugins)
    assert pipeline.main == (builtin["a"], plugins["extra"])


def test_build_pipeline_unknown_step() -> None:
    """An unknown step name is a ConfigError keyed by its place in routing.main."""
    with pytest.raises(ConfigError) as caught:
        build_pipeline(["a", "nope"], {}, named([], "a"), plugins={})
    assert caught.value.key == "routing.main[1]"
    assert "'nope'" in caught.value.reason and "known: a" in caught.value.reason


def test_build_pipeline_unknown_step_in_subroute() -> None:
    """An unknown step inside a sub-route names that sub-route's key."""
    with pytest.raises(ConfigError) as caught:
        build_pipeline(["route:s"], {"s": ["a", "b", "x"]}, named([], "a", "b"), plugins={})
    assert caught.value.key == "routing.routes.s[2]"


def test_build_pipeline_unknown_subroute() -> None:
    """route:NAME for a NAME that [routing.routes] lacks is a ConfigError."""
    with pytest.raises(ConfigError) as caught:
        build_pipeline(["a", "route:missing"], {}, named([], "a"), plugins={})
    assert caught.value.key == "routing.main[1]"
    assert "missing" in caught.value.reason


@pytest.mark.parametrize(
    "routes",
    [
        {"s": ["route:s"]},
        {"s": ["a", "route:t"], "t": ["route:s"]},
        {"s": ["route:t"], "t": ["route:u"], "u": ["a", "route:t"]},
    ],
    ids=["self", "pair", "three"],
)
def test_build_pipeline_rejects_cycles(routes: dict[str, list[str]]) -> None:
    """Sub-routes calling each other in a circle are a ConfigError naming the chain."""
    with pytest.raises(ConfigError) as caught:
        build_pipeline(["route:s"], routes, named([], "a"), plugins={})
    assert caught.value.key is not None
    assert caught.value.key.startswith("routing.routes.")
    assert "call each other" in caught.value.reason


def test_build_pipeline_allows_shared_subroute() -> None:
    """Two sub-routes calling the same third one is no cycle."""
    trail: list[str] = []
    routes = {"s": ["route:u"], "t": ["route:u"], "u": ["a"]}
    pipeline = build_pipeline(["route:s", "route:t"], routes, named(trail, "a"), plugins={})
    route(pipeline)
    assert trail == ["a", "a"]


def test_default_configuration_builds() -> None:
    """The default [routing] main resolves with the built-in steps alone."""
    config = Config()
    pipeline = build_pipeline(config.routing.main, {}, builtin_steps(config), plugins={})
    assert [step.name for step in pipeline.main] == list(config.routing.main)


def test_build_pipeline_finds_plugins_by_default() -> None:
    """Without an explicit plugin table the sipapp.plugins package is searched."""
    config = Config()
    pipeline = build_pipeline(["sanity"], {}, builtin_steps(config))
    assert [step.name for step in pipeline.main] == ["sanity"]


def test_failure_handlers_are_found_by_name_in_order() -> None:
    """[proxy] failure_handlers names plugins; they come back in the configured order."""
    from sipapp.routing.pipeline import find_failure_handlers

    first, second = object(), object()
    plugins = {"voicemail": first, "forward_busy": second}
    assert find_failure_handlers(("forward_busy", "voicemail"), plugins) == [second, first]
    assert find_failure_handlers((), plugins) == []


def test_unknown_failure_handler_is_a_config_error() -> None:
    """A name no plugin provides stops the start with the key and the known names."""
    import pytest as _pytest

    from sipapp.config import ConfigError
    from sipapp.routing.pipeline import find_failure_handlers

    with _pytest.raises(ConfigError) as caught:
        find_failure_handlers(("nope",), {"voicemail": object()})
    assert caught.value.key == "proxy.failure_handlers[0]"
    assert "nope" in caught.value.reason and "voicemail" in caught.value.reason
