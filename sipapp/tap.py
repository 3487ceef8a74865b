"""The composition root: ``twistd -n sipapp`` options and the service tree.

``Options`` reads the command line, ``makeService`` loads the configuration,
sets up logging and assembles the server (``build_server``): this is the one
place where concrete classes are chosen and the global reactor is used.
Nothing else imports this module.
"""

import gc
import signal
from typing import Any

from twisted.application.service import IServiceCollection, MultiService
from twisted.logger import ILogObserver, Logger
from twisted.python import usage
from twisted.python.components import Componentized

from sipapp import __version__
from sipapp.config import (
    LOG_LEVELS,
    Config,
    ConfigError,
    load_config,
    merge_options,
    parse_listen,
)
from sipapp.logging import make_observer
from sipapp.proxy.core import ProxyCore
from sipapp.proxy.stateless import StatelessProxy
from sipapp.routing.pipeline import build_pipeline, find_failure_handlers
from sipapp.routing.steps import builtin_steps
from sipapp.stats import Stats
from sipapp.transaction import Timers, TransactionLayer
from sipapp.transport import TransportManager, TransportService

log = Logger()


class Options(usage.Options):
    """``twistd sipapp`` options; each one overrides the configuration file."""

    synopsis = "[--config FILE] [--listen SPEC]... [--log-level LEVEL] [--log-file FILE]"
    optParameters = [  # noqa: N815 - the name usage.Options looks for
        ["config", "c", None, "TOML configuration file (default: built-in defaults)."],
        ["log-level", None, None, "Lowest level logged: " + ", ".join(LOG_LEVELS) + "."],
        ["log-file", None, None, "File to append the log to; - for standard output."],
    ]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self["listen"] = []

    def opt_listen(self, spec: str) -> None:
        """Listen on SPEC, e.g. udp:127.0.0.1:5060 or tcp:[::1]:5060 (repeatable)."""
        try:
            self["listen"].append(parse_listen(spec))
        except ConfigError as error:
            raise usage.UsageError(f"--listen: {error.reason}") from None

    def postOptions(self) -> None:
        level = self["log-level"]
        if level is not None and level not in LOG_LEVELS:
            raise usage.UsageError(
                f"--log-level: {level!r} is not one of " + ", ".join(LOG_LEVELS)
            )


class ServerService(MultiService):
    """The root of the service tree; gives twistd the server's log observer.

    twistd uses an application's ``ILogObserver`` component in place of its
    default observer (unless ``--logger`` is given), so joining the
    application is where the observer is handed over.
    """

    def __init__(self, observer: ILogObserver | None = None, reactor: Any = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.observer = observer
        self.reactor = reactor

    def startService(self) -> None:
        """Start every service; once running, SIGTERM means a graceful stop with exit 0."""
        super().startService()  # type: ignore[no-untyped-call]
        if self.reactor is not None:
            self.reactor.callWhenRunning(self._handle_sigterm)

    def _handle_sigterm(self) -> None:
        """Replace the reactor's SIGTERM handler, which makes twistd exit with the signal.

        An operator's ``systemctl stop`` is a normal end: the services drain
        (``stopService``) and the process exits 0.
        """
        reactor = self.reactor

        def stop(signum: int, frame: object) -> None:
            log.info("SIGTERM received: stopping gracefully")
            reactor.callFromThread(reactor.stop)

        signal.signal(signal.SIGTERM, stop)

    def setServiceParent(self, parent: IServiceCollection) -> None:
        super().setServiceParent(parent)  # type: ignore[no-untyped-call]
        if self.observer is None or not isinstance(parent, Componentized):
            return
        if parent.getComponent(ILogObserver) is None:  # type: ignore[no-untyped-call]
            parent.setComponent(ILogObserver, self.observer)  # type: ignore[no-untyped-call]


def _runner_log_file(options: usage.Options) -> str | None:
    """The file twistd itself would log to: its ``--logfile``, ``twistd.log`` for a daemon."""
    runner = options.parent
    if runner is None:
        return None
    logfile = runner.get("logfile")
    if logfile and logfile != "-":
        return str(logfile)
    return None if runner.get("nodaemon", True) else "twistd.log"


def configure(options: Options) -> tuple[Config, ILogObserver]:
    """The configuration and the log observer that ``options`` ask for.

    Raises ``ConfigError`` for a file, option or log file that cannot be used.
    """
    path = options["config"]
    config = merge_options(
        load_config(path),
        listen=options["listen"],
        log_level=options["log-level"],
        log_file=options["log-file"],
    )
    default_file = _runner_log_file(options)
    try:
        observer = make_observer(config.log, default_file)
    except OSError as error:
        if options["log-file"] is not None:
            source, key = "command line", "--log-file"
        elif config.log.file is not None:
            source, key = path, "log.file"
        else:
            source, key = "twistd", "--logfile"
        target = config.log.file or default_file
        raise ConfigError(source, key, f"cannot open {target!r}: {error.strerror}") from None
    return config, observer


def build_server(
    config: Config, reactor: Any, observer: ILogObserver | None = None
) -> ServerService:
    """Every component, built from ``config`` and connected, under one service."""
    server = ServerService(observer, reactor)
    stats = Stats()
    manager = TransportManager(reactor, config.transport, stats)
    timers = config.timers
    layer = TransactionLayer(
        manager, reactor, Timers(timers.t1, timers.t2, timers.t4, timers.timer_c), stats
    )
    pipeline = build_pipeline(config.routing.main, config.routing.routes, builtin_steps(config))
    handlers = find_failure_handlers(config.proxy.failure_handlers)
    core = ProxyCore(config, manager, layer, pipeline, stats, reactor, handlers)
    layer.user = core
    handler: Any = layer
    if config.proxy.stateless:
        handler = StatelessProxy(config, manager, pipeline, stats, reactor, core)
    manager.handler = handler
    transport = TransportService(
        manager, reactor, config.server.grace_period, handler.unanswered, layer.stop
    )
    transport.setServiceParent(server)  # type: ignore[no-untyped-call]
    return server


def tune_garbage_collector() -> None:
    """Collect young objects less often, and the old generation rarely.

    A busy proxy keeps tens of thousands of transactions alive for their
    timers (32 s each). With CPython's default thresholds the collector
    walks them many times a second, a third of the CPU at a thousand calls
    per second. Larger young generations that are promoted often keep each
    pause short (a few ms for the young, about 20 ms for the middle
    generation); full collections become rare. Most garbage never needs the
    collector: transactions break their reference cycles when they end.
    Objects made during start-up are frozen out of collection altogether.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 5, 1000)


def makeService(options: Options) -> MultiService:
    """The server that ``twistd sipapp`` runs.

    A configuration that cannot be used ends the process here, before any
    socket opens, with one line naming the file, the key and the reason.
    """
    try:
        config, observer = configure(options)
    except ConfigError as error:
        raise SystemExit(str(error)) from None
    from twisted.internet import reactor

    log.info(
        "sipapp {version}, configuration from {source}, sockets: {listen}",
        version=__version__,
        source=options["config"] or "built-in defaults",
        listen=", ".join(str(spec) for spec in config.transport.listen),
    )
    tune_garbage_collector()
    try:
        return build_server(config, reactor, observer)
    except ConfigError as error:
        raise SystemExit(str(error.located(options["config"] or "built-in defaults"))) from None
