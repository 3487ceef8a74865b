"""Helpers for the end-to-end tests: free loopback ports, the real server, SIPp.

`ServerProcess` runs ``twistd -n sipapp`` as a child process on loopback
ports, waits until it answers and stops it with SIGTERM; `run_sipp` runs one
bounded SIPp scenario; `sip_options` and `udp_exchange` build and send raw
messages for the cases SIPp cannot express. Nothing here sleeps a fixed time:
every wait polls a condition in short steps up to a deadline. This module is
not for unit tests, which never start processes or touch the network.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, NamedTuple

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SIPP_SCENARIOS = REPO_ROOT / "resources" / "sipp"

LOOPBACK = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}

#: ``twistd`` run from the interpreter that runs the tests, so the child uses
#: the same virtualenv. ``python -m twisted`` is ``twist``, which has no ``-n``.
TWISTD = [
    sys.executable,
    "-c",
    "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()",
]

START_TIMEOUT = 15.0
STOP_TIMEOUT = 15.0
PROBE_TIMEOUT = 0.2

# Ports handed out in this session: a later test never reuses an earlier
# one, so late retransmissions of a finished run cannot reach a new one.
_handed_out: set[int] = set()


def require_tool(name: str) -> str:
    """The full path of the program ``name``; fails the test when it is not installed."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name!r} is not on PATH: the end-to-end tests need it. "
            "Run `make deps` to install the test tools.",
            pytrace=False,
        )
    return path


def host_for_uri(host: str) -> str:
    """``host`` as it appears in a URI or a Via: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host else host


def family_of(host: str) -> socket.AddressFamily:
    """The address family of a numeric loopback address."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(
    family: socket.AddressFamily | str = socket.AF_INET,
    kinds: Iterable[str] = ("udp", "tcp"),
) -> int:
    """A loopback port that is free for every socket type in ``kinds`` at once.

    ``family`` is ``socket.AF_INET`` / ``socket.AF_INET6`` or a loopback
    address. The port is new in this test session. ``tls`` counts as ``tcp``.
    """
    if isinstance(family, str):
        family = family_of(family)
    host = LOOPBACK[family]
    types = [socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM for kind in kinds]
    if not types:
        raise ValueError("free_port needs at least one socket kind")
    for _ in range(200):
        with socket.socket(family, types[0]) as first:
            first.bind((host, 0))
            port: int = first.getsockname()[1]
            if port in _handed_out:
                continue
            if all(_can_bind(family, kind, host, port) for kind in types[1:]):
                _handed_out.add(port)
                return port
    raise RuntimeError(f"no port free for {list(kinds)} on {host} after 200 attempts")


def _can_bind(family: socket.AddressFamily, kind: int, host: str, port: int) -> bool:
    with socket.socket(family, kind) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def listen_arg(transport: str, host: str, port: int, **options: str) -> str:
    """A ``--listen`` value: ``udp:[::1]:5060``, ``tls:127.0.0.1:5061:certKey=…``."""
    text = f"{transport}:{host_for_uri(host)}:{port}"
    return "".join([text, *(f":{key}={value}" for key, value in options.items())])


class Endpoint(NamedTuple):
    """One socket the server was told to listen on."""

    transport: str  # 'udp' | 'tcp' | 'tls'
    host: str  # no brackets
    port: int


def parse_listen_arg(text: str) -> Endpoint:
    """The transport, host and port of a ``--listen`` value (options ignored)."""
    transport, _, rest = text.partition(":")
    if rest.startswith("["):
        host, _, rest = rest[1:].partition("]")
        rest = rest.removeprefix(":")
    else:
        host, _, rest = rest.partition(":")
    port = rest.partition(":")[0]
    return Endpoint(transport.lower(), host, int(port))


def listen_endpoints(args: Sequence[str]) -> list[Endpoint]:
    """Every ``--listen`` in a command line, in order."""
    found = []
    for index, arg in enumerate(args):
        if arg == "--listen" and index + 1 < len(args):
            found.append(parse_listen_arg(args[index + 1]))
        elif arg.startswith("--listen="):
            found.append(parse_listen_arg(arg.removeprefix("--listen=")))
    return found


def sip_options(
    target_host: str,
    target_port: int,
    local_host: str,
    local_port: int,
    transport: str = "UDP",
    *,
    call_id: str | None = None,
    branch: str | None = None,
) -> bytes:
    """A well-formed OPTIONS addressed to the server itself (RFC 3261 §11)."""
    call_id = call_id or f"{uuid.uuid4().hex}@e2e"
    branch = branch or f"z9hG4bK{uuid.uuid4().hex[:16]}"
    target = f"{host_for_uri(target_host)}:{target_port}"
    local = f"{host_for_uri(local_host)}:{local_port}"
    lines = [
        f"OPTIONS sip:{target} SIP/2.0",
        f"Via: SIP/2.0/{transport} {local};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:e2e@{local}>;tag={uuid.uuid4().hex[:8]}",
        f"To: <sip:{target}>",
        f"Call-ID: {call_id}",
        "CSeq: 1 OPTIONS",
        f"Contact: <sip:e2e@{local}>",
        "Accept: application/sdp",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def udp_exchange(
    host: str,
    port: int,
    build: Callable[[str, int], bytes],
    *,
    timeout: float = 5.0,
    step: float = PROBE_TIMEOUT,
) -> bytes | None:
    """Send ``build(local_host, local_port)`` over UDP and return the first reply.

    Resends every ``step`` seconds (as a UDP client retransmits) until a
    datagram arrives or ``timeout`` passes; ``None`` when nothing came back.
    """
    family = family_of(host)
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK[family], 0))
        local_port = sock.getsockname()[1]
        data = build(LOOPBACK[family], local_port)
        sock.settimeout(step)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.sendto(data, (host, port))
            try:
                reply, _ = sock.recvfrom(65535)
            except TimeoutError:
                continue
            return reply
    return None


def read_stream_message(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Read one SIP message from a stream socket (TCP or TLS), framed by Content-Length.

    Fails the test when the peer closes or stays silent before the message
    is complete.
    """
    sock.settimeout(timeout)
    buffer = b""
    while True:
        head, sep, rest = buffer.partition(b"\r\n\r\n")
        if sep:
            lengths = header_values(head + sep, "Content-Length") or header_values(head + sep, "l")
            length = int(lengths[0]) if lengths else 0
            if len(rest) >= length:
                return head + sep + rest[:length]
        try:
            chunk = sock.recv(65535)
        except TimeoutError:
            pytest.fail(f"no complete SIP message within {timeout} s; got {buffer!r}")
        if not chunk:
            pytest.fail(f"connection closed before a complete SIP message; got {buffer!r}")
        buffer += chunk


def status_line(reply: bytes) -> str:
    """The first line of a SIP message, decoded."""
    return reply.split(b"\r\n", 1)[0].decode("utf-8", "replace")


def header_values(reply: bytes, name: str) -> list[str]:
    """The values of every header line called ``name`` (case-insensitive) in a message."""
    head = reply.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    wanted = name.lower()
    values = []
    for line in head.split("\r\n")[1:]:
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == wanted:
            values.append(value.strip())
    return values


class ServerProcess:
    """The real sipapp server (``twistd -n sipapp ARGS``) running as a child process.

    Its stdout and stderr go to ``workdir/server-N.log``. It runs from the
    repository root with the repository first on ``PYTHONPATH``, so
    ``twisted/plugins/sipapp_plugin.py`` is found.
    """

    _count = 0

    def __init__(self, args: Sequence[str], workdir: Path) -> None:
        ServerProcess._count += 1
        self.args = list(args)
        self.workdir = workdir
        self.log_path = workdir / f"server-{ServerProcess._count}.log"
        self.endpoints = listen_endpoints(self.args)
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def command(self) -> list[str]:
        """The full command line of the server."""
        return [*TWISTD, "-n", "--pidfile=", "sipapp", *self.args]

    def start(self) -> None:
        """Start the process (does not wait for it to answer)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])]
        )
        env["PYTHONUNBUFFERED"] = "1"
        self._log_file = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def log_text(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text("utf-8", "replace")

    @property
    def returncode(self) -> int | None:
        """The exit code once the process has ended, else ``None``."""
        return None if self.process is None else self.process.poll()

    def wait_exit(self, timeout: float = STOP_TIMEOUT) -> int:
        """Wait (bounded) for the process to end by itself; its exit code."""
        assert self.process is not None, "server was never started"
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"server did not exit within {timeout} s\n--- server log ---\n{self.log_text()}",
                pytrace=False,
            )

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Poll until the server answers; fail with its log when it exits or stays silent.

        With a UDP socket configured it must answer an OPTIONS (any response);
        otherwise a TCP connect to its first stream port must succeed.
        """
        if not self.endpoints:
            raise ValueError("wait_ready needs at least one --listen argument")
        target = next((e for e in self.endpoints if e.transport == "udp"), self.endpoints[0])
        probe = self._probe_udp if target.transport == "udp" else self._probe_connect
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.returncode is not None:
                pytest.fail(
                    f"server exited with {self.returncode} while starting\n"
                    f"command: {self.command}\n--- server log ---\n{self.log_text()}",
                    pytrace=False,
                )
            if probe(target):
                return
        pytest.fail(
            f"server did not answer on {target} within {timeout} s\n"
            f"command: {self.command}\n--- server log ---\n{self.log_text()}",
            pytrace=False,
        )

    @staticmethod
    def _probe_udp(target: Endpoint) -> bool:
        def build(local_host: str, local_port: int) -> bytes:
            return sip_options(target.host, target.port, local_host, local_port)

        reply = udp_exchange(target.host, target.port, build, timeout=PROBE_TIMEOUT)
        return reply is not None and reply.startswith(b"SIP/2.0 ")

    @staticmethod
    def _probe_connect(target: Endpoint) -> bool:
        try:
            with socket.create_connection((target.host, target.port), timeout=PROBE_TIMEOUT):
                return True
        except OSError:
            # Refused (not listening yet): wait one probe interval, as the UDP probe does.
            time.sleep(PROBE_TIMEOUT)
            return False

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """Send SIGTERM and wait (bounded) for the exit; returns the exit code.

        A process that outlives ``timeout`` is killed and the test fails.
        """
        assert self.process is not None, "server was never started"
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
                self._close_log()
                pytest.fail(
                    f"server ignored SIGTERM for {timeout} s and was killed\n"
                    f"--- server log ---\n{self.log_text()}",
                    pytrace=False,
                )
        self._close_log()
        code = self.process.returncode
        assert code is not None
        return code

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


#: The ``sipapp_server`` fixture: ``start(*args, wait=True) -> ServerProcess``.
StartServer = Callable[..., ServerProcess]


class SippRun(NamedTuple):
    """The outcome of one SIPp run."""

    returncode: int
    stdout: str
    errors: str  # the -trace_err log ("" when SIPp wrote none)
    command: list[str]
    messages: str = ""  # the -trace_msg log: every message sent and received

    def describe(self) -> str:
        """A failure message: the command, the exit code, SIPp's error log, messages and output."""
        return (
            f"sipp exited with {self.returncode}\ncommand: {' '.join(self.command)}\n"
            f"--- sipp error log ---\n{self.errors[-6000:] or '(empty)'}\n"
            f"--- sipp messages (tail) ---\n{self.messages[-8000:] or '(none)'}\n"
            f"--- sipp output (tail) ---\n{self.stdout[-3000:]}"
        )

    def assert_ok(self) -> None:
        """Fail the test, showing SIPp's error log, unless every call succeeded."""
        if self.returncode != 0:
            pytest.fail(self.describe(), pytrace=False)


def sipp_scenario(name: str) -> Path:
    """The path of a scenario in ``resources/sipp``."""
    path = SIPP_SCENARIOS / name
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


class _SippFiles(NamedTuple):
    """The command line of one SIPp run and the logs it writes."""

    command: list[str]
    errors: Path
    messages: Path


def _sipp_command(args: Sequence[str], workdir: Path, timeout: float, calls: int) -> _SippFiles:
    """The full, bounded SIPp command line for ``args``, logging into ``workdir``."""
    sipp = require_tool("sipp")
    workdir.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:8]
    error_file = workdir / f"sipp-{run_id}-errors.log"
    message_file = workdir / f"sipp-{run_id}-messages.log"
    command = [
        sipp,
        *args,
        "-nostdin",
        "-m",
        str(calls),
        "-timeout",
        f"{timeout:g}s",
        "-timeout_error",
        "-trace_err",
        "-error_file",
        str(error_file),
        "-trace_msg",
        "-message_file",
        str(message_file),
        "-ci",
        "127.0.0.1",
        "-cp",
        str(free_port(socket.AF_INET, ("udp",))),
    ]
    return _SippFiles(command, error_file, message_file)


def _read_log(path: Path) -> str:
    return path.read_text("utf-8", "replace") if path.exists() else ""


def run_sipp(
    args: Sequence[str],
    *,
    workdir: Path,
    timeout: float = 10.0,
    calls: int = 1,
) -> SippRun:
    """Run SIPp once, bounded, and return its exit code, output and logs.

    Adds ``-nostdin -m CALLS -timeout Ts -timeout_error -trace_err -trace_msg``
    and a fresh loopback control port; ``args`` hold the rest (remote address,
    ``-sf``, ``-t``, ``-i``, ``-p``). Exit code 0 means every call succeeded.
    """
    files = _sipp_command(args, workdir, timeout, calls)
    command = files.command
    try:
        done = subprocess.run(
            command,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout + 10,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode("utf-8", "replace")
        run = SippRun(-1, output, _read_log(files.errors), command, _read_log(files.messages))
        pytest.fail(run.describe(), pytrace=False)
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    return SippRun(
        done.returncode, output, _read_log(files.errors), command, _read_log(files.messages)
    )


def write_config(directory: Path, text: str) -> Path:
    """Write a TOML configuration into ``directory`` under a new name; its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"sipapp-{uuid.uuid4().hex[:8]}.toml"
    path.write_text(text, "utf-8")
    return path


def wait_bound(
    host: str, port: int, kinds: Iterable[str] = ("udp",), timeout: float = START_TIMEOUT
) -> bool:
    """Poll until some process has bound ``port`` for every kind in ``kinds``.

    True once a bind of our own fails with "address in use" for each kind;
    False when ``timeout`` passes first.
    """
    family = family_of(host)
    types = [socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM for kind in kinds]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_can_bind(family, kind, host, port) for kind in types):
            return True
        time.sleep(0.02)  # a poll step, not a fixed wait
    return False


class SippProcess:
    """SIPp running in the background (typically a UAS), bounded by its own ``-timeout``.

    ``wait`` collects the outcome as a `SippRun`; ``stop`` ends a run that is
    still going (SIGTERM by its own process id, then SIGKILL).
    """

    def __init__(self, files: _SippFiles, workdir: Path, timeout: float) -> None:
        self.command = files.command
        self.files = files
        self.timeout = timeout
        self.output_path = files.errors.with_name(
            files.errors.name.replace("-errors.log", "-output.log")
        )
        self._output = self.output_path.open("wb")
        self.process = subprocess.Popen(
            self.command,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )

    def _result(self, returncode: int) -> SippRun:
        self._output.close()
        return SippRun(
            returncode,
            _read_log(self.output_path),
            _read_log(self.files.errors),
            self.command,
            _read_log(self.files.messages),
        )

    def wait(self, timeout: float | None = None) -> SippRun:
        """Wait (bounded: by default SIPp's own timeout plus 10 s) for the end of the run."""
        limit = self.timeout + 10 if timeout is None else timeout
        try:
            code = self.process.wait(limit)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(self._result(-1).describe(), pytrace=False)
        return self._result(code)

    def stop(self) -> None:
        """End the run if it is still going; does nothing once it has exited."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if not self._output.closed:
            self._output.close()


def start_sipp(
    args: Sequence[str],
    *,
    workdir: Path,
    timeout: float = 10.0,
    calls: int = 1,
    listen: tuple[str, int, str] | None = None,
) -> SippProcess:
    """Start SIPp in the background, bounded as `run_sipp` bounds it.

    With ``listen=(host, port, kind)`` ("udp" or "tcp") this returns only once
    SIPp has bound that port, so a UAS is ready before its caller starts;
    the test fails (with SIPp's output) when it does not within the start
    timeout.
    """
    files = _sipp_command(args, workdir, timeout, calls)
    sipp = SippProcess(files, workdir, timeout)
    if listen is not None:
        host, port, kind = listen
        ready = False
        deadline = time.monotonic() + START_TIMEOUT
        while not ready and time.monotonic() < deadline and sipp.process.poll() is None:
            ready = wait_bound(host, port, (kind,), timeout=0.2)
        if not ready:
            sipp.stop()
            pytest.fail(
                f"sipp did not bind {kind} {host}:{port}\n"
                + sipp._result(sipp.process.returncode or -1).describe(),
                pytrace=False,
            )
    return sipp


def sipp_stats(path: Path) -> dict[str, str]:
    """The last row of a SIPp ``-trace_stat`` CSV file (``;``-separated), by column name."""
    lines = [line for line in path.read_text("utf-8", "replace").splitlines() if line.strip()]
    if len(lines) < 2:
        raise ValueError(f"{path} holds no statistics row")
    names = lines[0].split(";")
    values = lines[-1].split(";")
    return dict(zip(names, values, strict=False))
