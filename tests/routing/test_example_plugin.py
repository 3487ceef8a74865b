"""Tests of the example route step plugin resources/examples/sipapp/plugins/block_scanners.py.

The unit tests put a copy of the example in a ``sipapp/plugins/`` directory
on ``sys.path`` (a copy, so Twisted's ``dropin.cache`` is written to a
temporary directory), find it with ``getPlugins`` and load it by name
through ``build_pipeline``. The end-to-end test runs the real server with
the example directory on ``PYTHONPATH``.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.plugin import getPlugins, pluginPackagePaths
from zope.interface.verify import verifyObject

import sipapp.plugins
from sipapp.config import DEFAULT_MAIN_ROUTE, Config, ConfigError, RoutingConfig
from sipapp.interfaces import IRouteStep
from sipapp.routing import CONTINUE, DROP, Reply, RouteContext
from sipapp.routing.pipeline import Pipeline, build_pipeline
from sipapp.routing.steps import builtin_steps
from sipapp.sip import Request, SipUri
from sipapp.stats import Stats
from sipapp.testing import parsed_request
from sipapp.transport import Source
from tests.e2e.harness import (
    REPO_ROOT,
    ServerProcess,
    free_port,
    sip_options,
    status_line,
    udp_exchange,
)

EXAMPLES = REPO_ROOT / "resources" / "examples"
PLUGIN = EXAMPLES / "sipapp" / "plugins" / "block_scanners.py"
MODULE = "sipapp.plugins.block_scanners"
SOURCE = Source("UDP", "127.0.0.1", 5070, "127.0.0.1", 5060)
#: The default routing script with the example step in front.
MAIN = ("block_scanners", *DEFAULT_MAIN_ROUTE)


@pytest.fixture
def plugin_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the example in TMP/site/sipapp/plugins/, with TMP/site on sys.path.

    ``sipapp.plugins`` computed its search path when it was first imported,
    so it is extended here exactly as a fresh import would extend it.
    """
    site = tmp_path / "site"
    plugins = site / "sipapp" / "plugins"
    plugins.mkdir(parents=True)
    shutil.copy(PLUGIN, plugins)
    monkeypatch.syspath_prepend(str(site))
    extra = [p for p in pluginPackagePaths("sipapp.plugins") if p not in sipapp.plugins.__path__]
    monkeypatch.setattr(sipapp.plugins, "__path__", [*sipapp.plugins.__path__, *extra])
    yield plugins
    sys.modules.pop(MODULE, None)


def context() -> RouteContext:
    """A route context whose server is 127.0.0.1:5060."""

    def is_myself(uri: Any) -> bool:
        return isinstance(uri, SipUri) and (uri.host, uri.port) == ("127.0.0.1", 5060)

    return RouteContext(SOURCE, Config(), Clock(), Stats(), is_myself)


def options(user_agent: str | None, method: str = "OPTIONS") -> Request:
    """A request to the server itself with ``user_agent`` (None: no User-Agent header)."""
    return parsed_request(method, "sip:127.0.0.1:5060", user_agent=user_agent)


def example_pipeline() -> Pipeline:
    """The pipeline of a configuration whose [routing] main names block_scanners."""
    config = Config(routing=RoutingConfig(main=MAIN))
    return build_pipeline(config.routing.main, config.routing.routes, builtin_steps(config))


def test_example_is_found_by_getplugins(plugin_on_path: Path) -> None:
    """getPlugins(IRouteStep, sipapp.plugins) finds the step named block_scanners."""
    found = {step.name: step for step in getPlugins(IRouteStep, sipapp.plugins)}
    assert "block_scanners" in found
    assert verifyObject(IRouteStep, found["block_scanners"])
    assert (plugin_on_path / "dropin.cache").exists()


def test_example_loaded_by_name_blocks_scanner(plugin_on_path: Path) -> None:
    """Named in [routing] main, it refuses a scanner's OPTIONS with 403."""
    pipeline = example_pipeline()
    assert pipeline.main[0].name == "block_scanners"
    assert pipeline.route(options("friendly-scanner"), context()) == Reply(403, "Forbidden")


def test_example_loaded_by_name_lets_phone_through(plugin_on_path: Path) -> None:
    """A phone's OPTIONS passes the step and the server answers it 200."""
    decision = example_pipeline().route(options("Yealink SIP-T46S 66.86.0.15"), context())
    assert isinstance(decision, Reply) and decision.status == 200


def test_without_the_plugin_the_name_is_unknown() -> None:
    """Without the example on the path, naming block_scanners is a ConfigError."""
    with pytest.raises(ConfigError) as caught:
        example_pipeline()
    assert caught.value.key == "routing.main[0]"
    assert "block_scanners" in caught.value.reason


@pytest.mark.parametrize(
    "agent", ["friendly-scanner", "SIPVicious/0.3.4", "sipcli/v1.8", "Mozilla (Friendly-Scanner)"]
)
def test_example_matches_scanner_names_in_any_case(plugin_on_path: Path, agent: str) -> None:
    """Each listed scanner name is found anywhere in the User-Agent, in any case."""
    step = example_pipeline().main[0]
    ctx = context()
    assert step.handle(options(agent, "INVITE"), ctx) == Reply(403, "Forbidden")
    assert ctx.stats.value("sip_scanners_blocked_total") == 1


def test_example_passes_requests_without_user_agent(plugin_on_path: Path) -> None:
    """No User-Agent, or an empty one, is no scanner."""
    step = example_pipeline().main[0]
    assert step.handle(options(None), context()) is CONTINUE
    assert step.handle(options(""), context()) is CONTINUE


def test_example_drops_a_scanners_ack(plugin_on_path: Path) -> None:
    """An ACK gets no response: a scanner's ACK is dropped."""
    step = example_pipeline().main[0]
    assert step.handle(options("sipvicious", "ACK"), context()) is DROP


def test_example_scanner_list_is_configurable(plugin_on_path: Path) -> None:
    """BlockScanners takes its own list of names."""
    __import__(MODULE)
    module = sys.modules[MODULE]
    step = module.BlockScanners(["evil-dialer"])
    assert step.handle(options("Evil-Dialer 2.0"), context()) == Reply(403, "Forbidden")
    assert step.handle(options("friendly-scanner"), context()) is CONTINUE


# -- end to end ---------------------------------------------------------------------------------


def with_user_agent(message: bytes, user_agent: str) -> bytes:
    """``message`` with a User-Agent header added before Content-Length."""
    header = f"User-Agent: {user_agent}\r\nContent-Length:".encode()
    return message.replace(b"Content-Length:", header)


@pytest.mark.e2e
def test_server_with_example_plugin_over_udp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real server, example dir on PYTHONPATH, refuses a scanner (403) and answers a phone."""
    # A copy, so the server writes its plugin cache outside the repository.
    examples = tmp_path / "examples"
    shutil.copytree(EXAMPLES, examples)
    monkeypatch.setenv("PYTHONPATH", str(examples))
    config = tmp_path / "sipapp.toml"
    steps = ", ".join(f'"{name}"' for name in MAIN)
    config.write_text(f"[routing]\nmain = [{steps}]\n", "utf-8")
    port = free_port("127.0.0.1", ("udp",))
    server = ServerProcess(["--config", str(config), "--listen", f"udp:127.0.0.1:{port}"], tmp_path)
    server.start()
    try:
        server.wait_ready()

        def ask(agent: str) -> bytes | None:
            def build(host: str, local: int) -> bytes:
                return with_user_agent(sip_options("127.0.0.1", port, host, local), agent)

            return udp_exchange("127.0.0.1", port, build)

        scanner = ask("friendly-scanner")
        phone = ask("Yealink SIP-T46S 66.86.0.15")
    finally:
        assert server.stop() == 0
    log = server.log_text()
    assert scanner is not None and status_line(scanner) == "SIP/2.0 403 Forbidden", log
    assert phone is not None and status_line(phone).startswith("SIP/2.0 200 "), log
    assert "Traceback (most recent call last)" not in log
    assert (examples / "sipapp" / "plugins" / "dropin.cache").exists()
