"""The server's configuration: one TOML file read into frozen, typed values.

Every section is an ``@attrs.frozen`` class whose fields are the keys, their
types and their defaults; one generic loader walks those fields, so adding a
key means adding a field. A file that cannot be used raises ``ConfigError``
whose text names the file, the key and the reason on one line. This module
reads and checks values; it does not open sockets or log files.
"""

import ipaddress
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from sipapp.sip import ParseError, SipUri, parse_uri

TRANSPORTS = ("udp", "tcp", "tls")
LOG_LEVELS = ("debug", "info", "warn", "error", "critical")
TLS_VERSIONS = ("1.2", "1.3")
TLS_OPTIONS = ("certKey", "privateKey")

T = TypeVar("T")


class ConfigError(Exception):
    """A configuration that cannot be used; ``str()`` is ``FILE: KEY: reason`` on one line."""

    def __init__(self, file: str | None, key: str | None, reason: str) -> None:
        super().__init__(file, key, reason)
        self.file = file
        self.key = key
        self.reason = reason

    def __str__(self) -> str:
        return ": ".join(part for part in (self.file, self.key, self.reason) if part)

    def located(self, file: str | None, section: str = "") -> "ConfigError":
        """This error, said of ``file`` and with ``section`` in front of its key."""
        key = self.key or ""
        if section:
            key = section + key if key.startswith("[") or not key else f"{section}.{key}"
        return ConfigError(file, key or None, self.reason)


def _check(
    test: Callable[[Any], bool], reason: str
) -> Callable[[object, "attrs.Attribute[Any]", Any], None]:
    """An attrs validator raising ``ConfigError`` keyed by the field's name."""

    def validate(_instance: object, attribute: "attrs.Attribute[Any]", value: Any) -> None:
        if not test(value):
            raise ConfigError(None, attribute.name, reason.format(value=value))

    return validate


def _one_of(choices: Sequence[str]) -> Callable[[object, "attrs.Attribute[Any]", Any], None]:
    return _check(lambda v: v in choices, "{value!r} is not one of " + ", ".join(choices))


_positive = _check(lambda v: v > 0, "must be greater than 0, not {value!r}")
_not_negative = _check(lambda v: v >= 0, "must not be negative, not {value!r}")


def _path_or_none(value: str | None) -> str | None:
    """An empty path (or ``-``) means the default destination: standard output."""
    return None if value in (None, "", "-") else value


@attrs.frozen
class ListenSpec:
    """One socket to open: ``transport:host:port``, plus the certificate for TLS."""

    transport: str  # 'udp' | 'tcp' | 'tls'
    host: str  # an IP address literal, IPv6 without brackets
    port: int  # 0 picks a free port
    cert_key: str | None = None  # tls only: PEM certificate file
    private_key: str | None = None  # tls only: PEM private key file

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        text = f"{self.transport}:{host}:{self.port}"
        for name, value in zip(TLS_OPTIONS, (self.cert_key, self.private_key), strict=True):
            if value is not None:
                text += f":{name}={value}"
        return text


def parse_listen(text: str) -> ListenSpec:
    """Parse ``udp:127.0.0.1:5060``, ``tcp:[::1]:5060`` or
    ``tls:127.0.0.1:5061:certKey=/p/cert.pem:privateKey=/p/key.pem``.

    The host must be an IP address literal: the server binds addresses, it
    does not resolve names. Raises ``ConfigError`` (without file or key).
    """

    def bad(reason: str) -> ConfigError:
        return ConfigError(None, None, f"{text!r} {reason}")

    transport, _, rest = text.partition(":")
    transport = transport.lower()
    if transport not in TRANSPORTS:
        raise bad("transport must be one of " + ", ".join(TRANSPORTS))
    fields = rest.split(":")
    count = len(fields)
    while count and "=" in fields[count - 1]:
        count -= 1
    host, colon, port_text = ":".join(fields[:count]).rpartition(":")
    if not colon:
        raise bad("needs transport:host:port")
    if not (port_text.isascii() and port_text.isdigit()):
        raise bad("port is not a number")
    port = int(port_text)
    if port > 65535:
        raise bad("port out of range")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise bad("IPv6 address must be in brackets, as in [::1]:5060")
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        raise bad(f"{host!r} is not an IP address") from None
    options: dict[str, str] = {}
    for option in fields[count:]:
        name, _, value = option.partition("=")
        if name not in TLS_OPTIONS or not value or name in options:
            raise bad(f"bad option {option!r} (expected certKey=FILE and privateKey=FILE)")
        options[name] = value
    if transport == "tls" and len(options) < len(TLS_OPTIONS):
        raise bad("tls needs certKey=FILE and privateKey=FILE")
    if transport != "tls" and options:
        raise bad("certKey and privateKey are for tls only")
    return ListenSpec(
        transport, host, port, options.get("certKey"), options.get("privateKey")
    )


@attrs.frozen
class ServerConfig:
    """``[server]``: who we are and how long a shutdown may take."""

    name: str = "sipapp"
    aliases: tuple[str, ...] = ()
    grace_period: float = attrs.field(default=5.0, validator=_not_negative)


@attrs.frozen
class TransportConfig:
    """``[transport]``: the sockets and the limits on what arrives on them."""

    listen: tuple[ListenSpec, ...] = attrs.field(
        default=(ListenSpec("udp", "127.0.0.1", 5060), ListenSpec("tcp", "127.0.0.1", 5060)),
        validator=_check(lambda v: len(v) > 0, "needs at least one address"),
    )
    max_message_size: int = attrs.field(default=65536, validator=_positive)
    udp_buffer: int = attrs.field(default=4 * 1024 * 1024, validator=_positive)
    idle_timeout: float = attrs.field(default=300.0, validator=_positive)
    connect_timeout: float = attrs.field(default=5.0, validator=_positive)
    force_rport: bool = False
    tls_min_version: str = attrs.field(default="1.2", validator=_one_of(TLS_VERSIONS))


@attrs.frozen
class LogConfig:
    """``[log]``: the lowest level written, and where (``None``: standard output)."""

    level: str = attrs.field(default="info", validator=_one_of(LOG_LEVELS))
    file: str | None = attrs.field(default=None, converter=_path_or_none)


@attrs.frozen
class TimerConfig:
    """``[timers]``: RFC 3261 §17 T1, T2 and T4, and the proxy's timer C (§16.8), in seconds."""

    t1: float = attrs.field(default=0.5, validator=_positive)
    t2: float = attrs.field(default=4.0, validator=_positive)
    t4: float = attrs.field(default=5.0, validator=_positive)

    timer_c: float = attrs.field(default=180.0, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.t2 < self.t1:
            raise ConfigError(None, "t2", f"must not be less than t1 ({self.t1}), not {self.t2}")


def _sip_uri_text(value: str) -> bool:
    """True for text that parses as a sip: or sips: URI."""
    try:
        return isinstance(parse_uri(value, "target"), SipUri)
    except ParseError:
        return False


@attrs.frozen
class ProxyConfig:
    """``[proxy]``: how requests are forwarded (RFC 3261 §16)."""

    record_route: bool = True
    stateless: bool = False
    max_branches: int = attrs.field(default=16, validator=_positive)
    failure_handlers: tuple[str, ...] = ()


#: The default routing script: checks, the server's own OPTIONS (answered even
#: with Max-Forwards 0, §16.3 step 3), in-dialog routing, static routes, and a
#: refusal for everything else.
DEFAULT_MAIN_ROUTE = ("sanity", "options", "max_forwards", "loose_route", "static", "reject")


@attrs.frozen
class RoutingConfig:
    """``[routing]``: the step names of the main route and of named sub-routes."""

    main: tuple[str, ...] = attrs.field(
        default=DEFAULT_MAIN_ROUTE,
        validator=_check(lambda v: len(v) > 0, "needs at least one step"),
    )
    routes: dict[str, tuple[str, ...]] = attrs.field(factory=dict)


@attrs.frozen
class StaticRoute:
    """One ``[[routes]]`` entry: requests whose Request-URI matches go to ``targets``."""

    targets: tuple[str, ...] = attrs.field(
        validator=[
            _check(lambda v: len(v) > 0, "needs at least one target"),
            _check(lambda v: all(_sip_uri_text(t) for t in v), "{value!r} has a non-SIP URI"),
        ]
    )
    domain: str | None = None
    user_prefix: str | None = None
    serial: bool = False


@attrs.frozen
class Config:
    """The whole configuration: one value per section."""

    server: ServerConfig = attrs.field(factory=ServerConfig)
    transport: TransportConfig = attrs.field(factory=TransportConfig)
    log: LogConfig = attrs.field(factory=LogConfig)
    timers: TimerConfig = attrs.field(factory=TimerConfig)
    proxy: ProxyConfig = attrs.field(factory=ProxyConfig)
    routing: RoutingConfig = attrs.field(factory=RoutingConfig)
    routes: tuple[StaticRoute, ...] = ()


def _describe(value: object) -> str:
    """``value`` as a TOML reader would name it: ``a boolean (true)``."""
    for kind, name in ((bool, "a boolean"), (int, "an integer"), (float, "a float"),
                       (str, "a string"), (list, "an array"), (dict, "a table")):
        if isinstance(value, kind):
            shown = str(value).lower() if kind is bool else repr(value)
            return name if kind in (list, dict) else f"{name} ({shown})"
    return f"a {type(value).__name__}"


def _expect(value: Any, kinds: type | tuple[type, ...], name: str) -> Any:
    """``value`` when it has one of ``kinds`` (a boolean is never a number)."""
    if not isinstance(value, kinds) or (isinstance(value, bool) and kinds is not bool):
        raise ConfigError(None, None, f"expected {name}, got {_describe(value)}")
    return value


def _each(value: Any, convert: Callable[[Any], T]) -> tuple[T, ...]:
    """An array converted item by item; an error's key says which item."""
    items = []
    for index, item in enumerate(_expect(value, list, "an array")):
        try:
            items.append(convert(item))
        except ConfigError as error:
            inner = f".{error.key}" if error.key else ""
            raise ConfigError(None, f"[{index}]{inner}", error.reason) from None
    return tuple(items)


_CONVERTERS: dict[Any, Callable[[Any], Any]] = {
    str: lambda v: _expect(v, str, "a string"),
    str | None: lambda v: _expect(v, str, "a string"),
    int: lambda v: _expect(v, int, "an integer"),
    float: lambda v: float(_expect(v, (int, float), "a number")),
    bool: lambda v: _expect(v, bool, "a boolean (true or false)"),
    tuple[str, ...]: lambda v: _each(v, _CONVERTERS[str]),
    tuple[ListenSpec, ...]: lambda v: _each(v, lambda s: parse_listen(_CONVERTERS[str](s))),
    dict[str, tuple[str, ...]]: lambda v: _table_of(v, _CONVERTERS[tuple[str, ...]]),
    tuple[StaticRoute, ...]: lambda v: _each(
        v, lambda t: _build(StaticRoute, _expect(t, dict, "a table"))
    ),
}


def _table_of(value: Any, convert: Callable[[Any], T]) -> dict[str, T]:
    """A table whose values are converted one by one; an error's key names the entry."""
    out = {}
    for key, item in _expect(value, dict, "a table").items():
        try:
            out[key] = convert(item)
        except ConfigError as error:
            raise error.located(None, key) from None
    return out


def _build(cls: type[T], table: Mapping[str, Any], unknown: str = "unknown key") -> T:
    """``cls`` made from a TOML table: each key converted by its field's type."""
    fields = attrs.fields_dict(cls)  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields:
            raise ConfigError(None, key, unknown)
        kind: Any = fields[key].type
        try:
            if attrs.has(kind):  # a section
                values[key] = _build(kind, _expect(value, dict, "a table"))
            else:
                values[key] = _CONVERTERS[kind](value)
        except ConfigError as error:
            raise error.located(None, key) from None
    for name, field in fields.items():
        if field.default is attrs.NOTHING and name not in values:
            raise ConfigError(None, name, "required key is missing")
    return cls(**values)


def _syntax_error(error: tomllib.TOMLDecodeError, text: str) -> ConfigError:
    """A TOML syntax error keyed by its line number."""
    found = re.fullmatch(r"(.*) \(at (?:line (\d+), column (\d+)|end of document)\)", str(error))
    if found is None:
        return ConfigError(None, None, str(error))
    message, line, column = found.groups()
    if line is None:
        return ConfigError(None, f"line {len(text.splitlines()) or 1}", f"{message} at end of file")
    return ConfigError(None, f"line {line}", f"{message} (column {column})")


def load_config(path: str | None) -> Config:
    """The configuration in the TOML file ``path``; built-in defaults for ``None``.

    Every key is optional; an unknown key, a wrong type or a bad value raises
    ``ConfigError`` naming ``path`` and the key.
    """
    if path is None:
        return Config()
    try:
        with open(path, "rb") as stream:
            text = stream.read().decode("utf-8")
        data = tomllib.loads(text)
    except OSError as error:
        raise ConfigError(path, None, f"cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, None, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise _syntax_error(error, text).located(path) from None
    try:
        return _build(Config, data, "unknown section")
    except ConfigError as error:
        raise error.located(path) from None


def merge_options(
    config: Config,
    *,
    listen: Sequence[ListenSpec | str] | None = None,
    log_level: str | None = None,
    log_file: str | None = None,
) -> Config:
    """``config`` with the command line's choices in place of the file's.

    A non-empty ``listen`` replaces the whole list of sockets; ``log_file``
    ``"-"`` means standard output. ``None`` leaves a value as it is. Raises
    ``ConfigError`` said of the ``command line``.
    """
    try:
        transport = config.transport
        if listen:
            specs = tuple(parse_listen(s) if isinstance(s, str) else s for s in listen)
            transport = attrs.evolve(transport, listen=specs)
        changes = {"level": log_level, "file": log_file}
        log = attrs.evolve(config.log, **{k: v for k, v in changes.items() if v is not None})
    except ConfigError as error:
        option = {"level": "--log-level", "file": "--log-file"}.get(error.key or "", "--listen")
        raise ConfigError("command line", option, error.reason) from None
    return attrs.evolve(config, transport=transport, log=log)
