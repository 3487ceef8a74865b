"""Tests for ``sipapp.tap``: command-line options, configuration errors, log set-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from twisted.application.service import Application, IServiceMaker, MultiService
from twisted.logger import ILogObserver, LogLevel
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.scripts.twistd import ServerOptions

from sipapp.config import Config, ConfigError, ListenSpec, LogConfig
from sipapp.tap import Options, ServerService, _runner_log_file, build_server, configure

#: Runs twistd with the interpreter under test, whatever the virtualenv's layout.
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def parse(*argv: str) -> Options:
    """``Options`` parsed from ``argv``."""
    options = Options()
    options.parseOptions(list(argv))
    return options


def twistd(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run twistd in the foreground with ``argv``, bounded in time."""
    return subprocess.run(
        [*TWISTD, "-n", "--pidfile=", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_defaults() -> None:
    """Without options nothing overrides the configuration."""
    options = parse()
    assert options["config"] is None
    assert options["listen"] == []
    assert options["log-level"] is None
    assert options["log-file"] is None


def test_all_options() -> None:
    """--config, --log-level and --log-file are read as given."""
    options = parse("--config", "a.toml", "--log-level", "debug", "--log-file", "x.log")
    assert (options["config"], options["log-level"], options["log-file"]) == (
        "a.toml",
        "debug",
        "x.log",
    )
    assert parse("-c", "b.toml")["config"] == "b.toml"


def test_repeated_listen_with_ipv6() -> None:
    """--listen may be repeated; bracketed IPv6 addresses are understood."""
    options = parse(
        "--listen", "udp:127.0.0.1:5060", "--listen=tcp:[::1]:5070", "--listen", "udp:[::1]:0"
    )
    assert options["listen"] == [
        ListenSpec("udp", "127.0.0.1", 5060),
        ListenSpec("tcp", "::1", 5070),
        ListenSpec("udp", "::1", 0),
    ]


def test_listen_is_not_shared_between_instances() -> None:
    """Each Options starts with its own empty listen list."""
    parse("--listen", "udp:127.0.0.1:5060")
    assert parse()["listen"] == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--listen", "udp:127.0.0.1:99999"], "--listen: 'udp:127.0.0.1:99999' port out of range"),
        (["--listen", "udp:::1:5060"], "--listen: 'udp:::1:5060' IPv6 address must be in"),
        (["--log-level", "loud"], "--log-level: 'loud' is not one of debug"),
    ],
)
def test_bad_options(argv: list[str], message: str) -> None:
    """A bad option value is a usage error naming the option."""
    with pytest.raises(usage.UsageError) as info:
        parse(*argv)
    assert str(info.value).startswith(message)


def test_configure_merges_file_and_options(tmp_path: Path) -> None:
    """The command line overrides the file; the file fills in the rest."""
    path = tmp_path / "sipapp.toml"
    path.write_text('[server]\nname = "edge"\n[log]\nlevel = "warn"\n')
    config, _ = configure(
        parse("--config", str(path), "--listen", "tcp:[::1]:0", "--log-level", "error")
    )
    assert config.server.name == "edge"
    assert config.transport.listen == (ListenSpec("tcp", "::1", 0),)
    assert config.log == LogConfig("error", None)


def test_configure_log_file_filters_by_level(tmp_path: Path) -> None:
    """The observer appends lines at or above the level to the log file."""
    log_file = tmp_path / "sipapp.log"
    _, observer = configure(parse("--log-level", "warn", "--log-file", str(log_file)))
    for level in (LogLevel.info, LogLevel.warn, LogLevel.error):
        observer(
            {
                "log_level": level,
                "log_namespace": "sipapp.test",
                "log_format": "{word} line",
                "word": level.name,
                "log_time": 0,
            }
        )
    assert [line.split(" ", 1)[1] for line in log_file.read_text().splitlines()] == [
        "[sipapp.test#warn] warn line",
        "[sipapp.test#error] error line",
    ]


@pytest.mark.parametrize(
    ("argv", "text", "where"),
    [
        (["--log-file", "{missing}"], "", "command line: --log-file: cannot open"),
        ([], '[log]\nfile = "{missing}"\n', "{config}: log.file: cannot open"),
    ],
)
def test_unopenable_log_file(tmp_path: Path, argv: list[str], text: str, where: str) -> None:
    """A log file that cannot be opened is a configuration error naming its source."""
    missing = str(tmp_path / "no" / "such" / "dir" / "x.log")
    path = tmp_path / "sipapp.toml"
    path.write_text(text.format(missing=missing))
    argv = [arg.format(missing=missing) for arg in argv]
    with pytest.raises(ConfigError) as info:
        configure(parse("--config", str(path), *argv))
    assert str(info.value).startswith(where.format(config=path))
    assert str(info.value).endswith(f"{missing!r}: No such file or directory")


def test_twistd_finds_the_plugin() -> None:
    """The installed package exposes the sipapp plugin to twistd."""
    makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
    assert makers["sipapp"].options is Options


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-n"], None),
        (["-n", "--logfile", "-"], None),
        (["-n", "--logfile", "twistd-own.log"], "twistd-own.log"),
        ([], "twistd.log"),
    ],
)
def test_twistd_log_options_are_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], expected: str | None
) -> None:
    """Without [log] file the log goes where twistd's own options send it."""
    monkeypatch.chdir(tmp_path)
    runner = ServerOptions()
    runner.parseOptions([*argv, "sipapp"])
    assert _runner_log_file(runner.subOptions) == expected
    configure(runner.subOptions)
    assert sorted(path.name for path in tmp_path.iterdir()) == ([expected] if expected else [])


def test_observer_handed_to_the_application() -> None:
    """Joining a twistd application gives it the server's log observer."""

    def observer(event: dict[str, object]) -> None:
        """Discard ``event``."""

    application = Application("sipapp")
    ServerService(observer).setServiceParent(application)  # type: ignore[arg-type]
    assert application.getComponent(ILogObserver) is observer


def test_existing_observer_is_kept() -> None:
    """An application that already has a log observer keeps it."""

    def first(event: dict[str, object]) -> None:
        """Discard ``event``."""

    application = Application("sipapp")
    application.setComponent(ILogObserver, first)
    ServerService(lambda event: None).setServiceParent(application)  # type: ignore[arg-type]
    assert application.getComponent(ILogObserver) is first


def test_plain_parent_is_fine() -> None:
    """Under a plain MultiService the observer is simply kept."""
    parent = MultiService()
    ServerService(None).setServiceParent(parent)
    assert len(list(parent)) == 1


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            '[transport]\nlisten = ["udp:127.0.0.1:0", "udp:1.2.3:99999"]\n',
            "{path}: transport.listen[1]: 'udp:1.2.3:99999' port out of range",
        ),
        ("[timers]\nt1 = -1\n", "{path}: timers.t1: must be greater than 0, not -1.0"),
        ("[server\n", "{path}: line 1: Expected ']' at the end of a table declaration"),
    ],
)
def test_twistd_bad_config_exits_with_one_line(tmp_path: Path, text: str, line: str) -> None:
    """`twistd -n sipapp --config bad.toml` exits non-zero printing one line: file, key, reason."""
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = twistd(tmp_path, "sipapp", "--config", str(path))
    assert result.returncode != 0
    output = (result.stdout + result.stderr).strip()
    assert "\n" not in output, output
    assert output.startswith(line.format(path=path)), output


def test_twistd_missing_config_file(tmp_path: Path) -> None:
    """A config file that does not exist stops twistd with one line naming it."""
    path = tmp_path / "absent.toml"
    result = twistd(tmp_path, "sipapp", "--config", str(path))
    assert result.returncode != 0
    assert (result.stdout + result.stderr).strip() == (
        f"{path}: cannot read: No such file or directory"
    )


def test_twistd_help_lists_sipapp(tmp_path: Path) -> None:
    """twistd started outside the source tree still lists the sipapp plugin."""
    result = subprocess.run(
        [*TWISTD, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert any(line.split()[:1] == ["sipapp"] for line in result.stdout.splitlines())


def test_defaults_need_no_file() -> None:
    """With no --config the server runs on the built-in defaults."""
    config, _ = configure(parse())
    assert config == Config()


def test_build_server_wires_the_components() -> None:
    """Transports hand messages to the transaction layer, which hands them to the proxy core."""
    from twisted.internet.testing import MemoryReactorClock

    from sipapp.proxy.core import ProxyCore
    from sipapp.transaction import TransactionLayer
    from sipapp.transport import TransportManager, TransportService

    reactor = MemoryReactorClock()
    server = build_server(Config(), reactor)
    (transport,) = list(server)
    assert isinstance(transport, TransportService)
    assert isinstance(transport.manager, TransportManager)
    layer = transport.manager.handler
    assert isinstance(layer, TransactionLayer)
    assert isinstance(layer.user, ProxyCore)
    assert layer.user.manager is transport.manager
    assert transport.in_flight() == 0
    assert transport.grace_period == Config().server.grace_period
