"""Tests for ``sipapp.config``: defaults, every key read, every error named."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from sipapp.config import (
    Config,
    ConfigError,
    ListenSpec,
    LogConfig,
    ProxyConfig,
    RoutingConfig,
    ServerConfig,
    StaticRoute,
    TimerConfig,
    TransportConfig,
    load_config,
    merge_options,
    parse_listen,
)

RESOURCES = Path(__file__).resolve().parents[1] / "resources"

#: A file that sets every key to a value that is not its default.
EVERY_KEY = """
[server]
name = "edge-1"
aliases = ["sip.example.net", "127.0.0.1"]
grace_period = 2.5

[transport]
listen = ["udp:[::1]:5070", "tls:127.0.0.1:5071:certKey=/etc/c.pem:privateKey=/etc/k.pem"]
max_message_size = 4096
udp_buffer = 1048576
idle_timeout = 30.0
connect_timeout = 2
force_rport = true
tls_min_version = "1.3"

[log]
level = "debug"
file = "/var/log/sipapp.log"

[timers]
t1 = 0.25
t2 = 2.0
t4 = 3.0
timer_c = 90.0

[proxy]
record_route = false
stateless = true
max_branches = 4
failure_handlers = ["voicemail"]

[routing]
main = ["sanity", "route:pstn", "reject"]

[routing.routes]
pstn = ["static"]

[[routes]]
domain = "pstn.example"
user_prefix = "49"
targets = ["sip:127.0.0.1:5090", "sip:127.0.0.1:5092;transport=tcp"]
serial = true
"""

EVERY_KEY_CONFIG = Config(
    server=ServerConfig(name="edge-1", aliases=("sip.example.net", "127.0.0.1"), grace_period=2.5),
    transport=TransportConfig(
        listen=(
            ListenSpec("udp", "::1", 5070),
            ListenSpec("tls", "127.0.0.1", 5071, "/etc/c.pem", "/etc/k.pem"),
        ),
        max_message_size=4096,
        udp_buffer=1048576,
        idle_timeout=30.0,
        connect_timeout=2.0,
        force_rport=True,
        tls_min_version="1.3",
    ),
    log=LogConfig(level="debug", file="/var/log/sipapp.log"),
    timers=TimerConfig(t1=0.25, t2=2.0, t4=3.0, timer_c=90.0),
    proxy=ProxyConfig(
        record_route=False, stateless=True, max_branches=4, failure_handlers=("voicemail",)
    ),
    routing=RoutingConfig(main=("sanity", "route:pstn", "reject"), routes={"pstn": ("static",)}),
    routes=(
        StaticRoute(
            targets=("sip:127.0.0.1:5090", "sip:127.0.0.1:5092;transport=tcp"),
            domain="pstn.example",
            user_prefix="49",
            serial=True,
        ),
    ),
)


def write(tmp_path: Path, text: str, name: str = "sipapp.toml") -> str:
    """Write ``text`` to a file under ``tmp_path`` and return its path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def load_error(tmp_path: Path, text: str) -> tuple[str, ConfigError]:
    """Load ``text`` expecting a ``ConfigError``; return the file path and the error."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return path, info.value


def test_no_file_gives_defaults() -> None:
    """Without a file the configuration is the documented defaults."""
    config = load_config(None)
    assert config == Config()
    assert config.server == ServerConfig("sipapp", (), 5.0)
    assert config.transport.listen == (
        ListenSpec("udp", "127.0.0.1", 5060),
        ListenSpec("tcp", "127.0.0.1", 5060),
    )
    assert (config.transport.max_message_size, config.transport.idle_timeout) == (65536, 300.0)
    assert (config.transport.connect_timeout, config.transport.force_rport) == (5.0, False)
    assert config.transport.tls_min_version == "1.2"
    assert config.log == LogConfig("info", None)
    assert config.timers == TimerConfig(0.5, 4.0, 5.0)


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    """An empty file, and empty sections, leave every default in place."""
    assert load_config(write(tmp_path, "")) == Config()
    assert load_config(write(tmp_path, "[server]\n[transport]\n[log]\n[timers]\n")) == Config()


def test_shipped_file_is_the_defaults() -> None:
    """resources/sipapp.toml spells out exactly the built-in defaults."""
    assert load_config(str(RESOURCES / "sipapp.toml")) == Config()


def test_every_key_is_read(tmp_path: Path) -> None:
    """Every key of every section is read into its field with its type."""
    assert load_config(write(tmp_path, EVERY_KEY)) == EVERY_KEY_CONFIG


def test_every_key_is_covered() -> None:
    """The every-key sample sets each field of each section to a non-default value."""
    default = Config()
    assert EVERY_KEY_CONFIG.routes != default.routes
    for field in attrs.fields(StaticRoute):
        assert f"\n{field.name} = " in EVERY_KEY, field.name
    for section in attrs.fields(Config):
        if not attrs.has(section.type):
            continue
        for field in attrs.fields(section.type):
            value = getattr(getattr(EVERY_KEY_CONFIG, section.name), field.name)
            assert value != getattr(getattr(default, section.name), field.name), field.name
            table = f"\n[{section.name}.{field.name}]\n"
            assert f"\n{field.name} = " in EVERY_KEY or table in EVERY_KEY, field.name


def test_integer_for_float_is_a_float(tmp_path: Path) -> None:
    """An integer where a number is expected becomes a float."""
    config = load_config(write(tmp_path, "[timers]\nt1 = 1\nt2 = 8\n"))
    assert config.timers.t1 == 1.0
    assert isinstance(config.timers.t1, float)


def test_empty_log_file_means_stdout(tmp_path: Path) -> None:
    """``file = ""`` (or ``-``) in [log] means standard output."""
    assert load_config(write(tmp_path, '[log]\nfile = ""\n')).log.file is None
    assert load_config(write(tmp_path, '[log]\nfile = "-"\n')).log.file is None


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("[bogus]\n", "bogus", "unknown section"),
        ("name = 'x'\n", "name", "unknown section"),
        ("[server]\nnmae = 'x'\n", "server.nmae", "unknown key"),
        ("server = 1\n", "server", "expected a table, got an integer (1)"),
        ("[server]\nname = 7\n", "server.name", "expected a string, got an integer (7)"),
        ("[server]\naliases = 'a'\n", "server.aliases", "expected an array, got a string ('a')"),
        ("[server]\naliases = ['a', 2]\n", "server.aliases[1]", "expected a string"),
        ("[server]\ngrace_period = -1\n", "server.grace_period", "must not be negative"),
        ("[server]\ngrace_period = 'long'\n", "server.grace_period", "expected a number"),
        ("[transport]\nmax_message_size = 0\n", "transport.max_message_size", "greater than 0"),
        ("[transport]\nmax_message_size = 1.5\n", "transport.max_message_size", "an integer"),
        ("[transport]\nmax_message_size = true\n", "transport.max_message_size", "a boolean"),
        ("[transport]\nidle_timeout = -5\n", "transport.idle_timeout", "greater than 0"),
        ("[transport]\nconnect_timeout = false\n", "transport.connect_timeout", "a number"),
        ("[transport]\nforce_rport = 1\n", "transport.force_rport", "expected a boolean"),
        ("[transport]\ntls_min_version = 1.2\n", "transport.tls_min_version", "a string"),
        ("[transport]\ntls_min_version = '1.1'\n", "transport.tls_min_version", "'1.1' is not"),
        ("[transport]\nlisten = []\n", "transport.listen", "at least one address"),
        ("[transport]\nlisten = 'udp:127.0.0.1:5060'\n", "transport.listen", "an array"),
        ("[transport]\nlisten = [5060]\n", "transport.listen[0]", "expected a string"),
        (
            "[transport]\nlisten = ['udp:127.0.0.1:5060', 'udp:1.2.3:99999']\n",
            "transport.listen[1]",
            "'udp:1.2.3:99999' port out of range",
        ),
        ("[transport]\nlisten = ['udp:localhost:5060']\n", "transport.listen[0]", "not an IP"),
        ("[transport]\nlisten = ['tls:127.0.0.1:5061']\n", "transport.listen[0]", "certKey"),
        ("[log]\nlevel = 'loud'\n", "log.level", "'loud' is not one of debug, info"),
        ("[log]\nfile = 3\n", "log.file", "expected a string"),
        ("[timers]\nt1 = -0.5\n", "timers.t1", "greater than 0"),
        ("[timers]\nt2 = 0\n", "timers.t2", "greater than 0"),
        ("[timers]\nt4 = -1\n", "timers.t4", "greater than 0"),
        ("[timers]\nt1 = 5.0\nt2 = 4.0\n", "timers.t2", "must not be less than t1"),
    ],
)
def test_bad_value_names_file_and_key(tmp_path: Path, text: str, key: str, reason: str) -> None:
    """Each bad value is reported on one line as FILE: KEY: reason."""
    path, error = load_error(tmp_path, text)
    message = str(error)
    assert message.startswith(f"{path}: {key}: "), message
    assert reason in message
    assert "\n" not in message
    assert (error.file, error.key) == (path, key)


def test_missing_file(tmp_path: Path) -> None:
    """A file that does not exist is named with the reason."""
    path = str(tmp_path / "absent.toml")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: cannot read: No such file or directory"


def test_syntax_error_names_line(tmp_path: Path) -> None:
    """A TOML syntax error names the line it is on."""
    path, error = load_error(tmp_path, "[server]\nname = 'x'\ngrace_period = \n")
    assert str(error) == f"{path}: line 3: Invalid value (column 16)"


def test_syntax_error_at_end_of_file(tmp_path: Path) -> None:
    """An error found only at the end of the file names the last line."""
    path, error = load_error(tmp_path, "[server]\nname = 'x\n")
    assert str(error).startswith(f"{path}: line 2: ")


def test_duplicate_section_is_an_error(tmp_path: Path) -> None:
    """A section declared twice is a syntax error with its line."""
    path, error = load_error(tmp_path, "[log]\nlevel = 'info'\n[log]\n")
    assert str(error).startswith(f"{path}: line 3: ")


def test_not_utf8(tmp_path: Path) -> None:
    """A file that is not UTF-8 text is refused by name."""
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"[server]\nname = '\xe9'\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert str(info.value) == f"{path}: not UTF-8 text"


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("udp:127.0.0.1:5060", ListenSpec("udp", "127.0.0.1", 5060)),
        ("tcp:[::1]:5060", ListenSpec("tcp", "::1", 5060)),
        ("udp:[0:0:0:0:0:0:0:1]:0", ListenSpec("udp", "::1", 0)),
        ("TCP:127.0.0.1:65535", ListenSpec("tcp", "127.0.0.1", 65535)),
        (
            "tls:127.0.0.1:5061:certKey=/p/c.pem:privateKey=/p/k.pem",
            ListenSpec("tls", "127.0.0.1", 5061, "/p/c.pem", "/p/k.pem"),
        ),
        (
            "tls:[::1]:5061:privateKey=k.pem:certKey=c.pem",
            ListenSpec("tls", "::1", 5061, "c.pem", "k.pem"),
        ),
    ],
)
def test_parse_listen(text: str, spec: ListenSpec) -> None:
    """Listen specs parse into transport, address, port and TLS files; str() renders them."""
    assert parse_listen(text) == spec
    assert parse_listen(str(spec)) == spec


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("udp", "needs transport:host:port"),
        ("udp:127.0.0.1", "needs transport:host:port"),
        ("sctp:127.0.0.1:5060", "transport must be one of udp, tcp, tls"),
        ("udp:127.0.0.1:", "port is not a number"),
        ("udp:127.0.0.1:50x", "port is not a number"),
        ("udp:127.0.0.1:-1", "port is not a number"),
        ("udp:127.0.0.1:65536", "port out of range"),
        ("udp:::1:5060", "IPv6 address must be in brackets"),
        ("udp:[::1:5060", "IPv6 address must be in brackets"),
        ("udp:127.0.0.256:5060", "is not an IP address"),
        ("udp:[]:5060", "is not an IP address"),
        ("tls:127.0.0.1:5061:certKey=c.pem", "tls needs certKey=FILE and privateKey=FILE"),
        ("tcp:127.0.0.1:5060:certKey=c.pem:privateKey=k.pem", "for tls only"),
        ("tls:127.0.0.1:5061:certKey=c:privateKey=k:colour=red", "bad option 'colour=red'"),
        ("tls:127.0.0.1:5061:certKey=:privateKey=k", "bad option 'certKey='"),
        ("tls:127.0.0.1:5061:certKey=a:certKey=b", "bad option 'certKey=b'"),
    ],
)
def test_parse_listen_errors(text: str, reason: str) -> None:
    """A bad listen spec is refused, quoting the spec and saying why."""
    with pytest.raises(ConfigError) as info:
        parse_listen(text)
    assert str(info.value).startswith(repr(text))
    assert reason in str(info.value)


def test_error_text() -> None:
    """ConfigError renders the parts it has, joined on one line."""
    assert str(ConfigError("a.toml", "log.level", "bad")) == "a.toml: log.level: bad"
    assert str(ConfigError("a.toml", None, "bad")) == "a.toml: bad"
    assert str(ConfigError(None, None, "bad")) == "bad"
    assert str(ConfigError(None, "[2]", "bad").located("a.toml", "x.y")) == "a.toml: x.y[2]: bad"


def test_merge_nothing_keeps_config() -> None:
    """Without command-line choices the configuration is unchanged."""
    assert merge_options(EVERY_KEY_CONFIG) == EVERY_KEY_CONFIG
    assert merge_options(EVERY_KEY_CONFIG, listen=[]) == EVERY_KEY_CONFIG


def test_merge_listen_replaces_the_whole_list() -> None:
    """--listen replaces the file's listen list, it does not add to it."""
    merged = merge_options(
        EVERY_KEY_CONFIG, listen=[ListenSpec("tcp", "127.0.0.1", 0), "udp:[::1]:0"]
    )
    assert merged.transport.listen == (
        ListenSpec("tcp", "127.0.0.1", 0),
        ListenSpec("udp", "::1", 0),
    )
    assert attrs.evolve(merged, transport=EVERY_KEY_CONFIG.transport) == EVERY_KEY_CONFIG


def test_merge_log_options() -> None:
    """--log-level and --log-file override [log]; --log-file - means standard output."""
    merged = merge_options(EVERY_KEY_CONFIG, log_level="error", log_file="/tmp/other.log")
    assert merged.log == LogConfig("error", "/tmp/other.log")
    assert merge_options(EVERY_KEY_CONFIG, log_file="-").log == LogConfig("debug", None)
    assert merge_options(EVERY_KEY_CONFIG, log_level="warn").log.file == "/var/log/sipapp.log"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"log_level": "loud"}, "command line: --log-level: 'loud' is not one of"),
        ({"listen": ["udp:127.0.0.1:99999"]}, "command line: --listen: 'udp:127.0.0.1:99999'"),
    ],
)
def test_merge_errors_name_the_option(options: dict[str, object], message: str) -> None:
    """A bad command-line value is reported against its option."""
    with pytest.raises(ConfigError) as info:
        merge_options(Config(), **options)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)
