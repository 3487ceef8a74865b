"""The servers under test in the call-rate benchmark, and what they cost the machine.

`ServerUnderTest` runs one SIP server (sipapp under ``twistd -n``, or
Kamailio in the foreground) as a child process on a free loopback UDP port,
waits until it answers an OPTIONS and stops it by its process id.
`cpu_seconds` and `memory_kib` read ``/proc`` for a process and all its
descendants (Kamailio forks its workers), `all_cpu` every process's CPU
time. `free_port` hands out loopback ports that are new in
this run. Every wait is bounded and polls; nothing here sleeps a fixed time
to let something happen. Not for the tests: ``tests/e2e/harness.py`` does the
same job there, with pytest's failure reporting.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"

#: ``twistd`` from the interpreter that runs the benchmark (the project's virtualenv).
TWISTD = [
    sys.executable,
    "-c",
    "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()",
]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
PROBE_TIMEOUT = 0.2

_handed_out: set[int] = set()


class BenchError(Exception):
    """The benchmark cannot go on; the message says why, for the operator."""


def free_port(span: int = 0) -> int:
    """A loopback port free for UDP and TCP, with ``port + span`` free as well; new in this run.

    ``span=2`` suits SIPp's ``-mp``, which binds the port and the port two above it.
    """
    for _ in range(500):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((HOST, 0))
            port: int = probe.getsockname()[1]
        wanted = {port, port + span}
        if wanted & _handed_out or port + span > 65535:
            continue
        if all(
            _can_bind(kind, p) for p in wanted for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM)
        ):
            _handed_out.update(wanted)
            return port
    raise BenchError("no free loopback port after 500 attempts")


def _can_bind(kind: int, port: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _stat_fields(pid: int) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command name (field 3 onwards)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            parent = int(_stat_fields(int(entry.name))[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """User plus system CPU time of ``pids`` (``/proc/PID/stat`` utime + stime)."""
    ticks = 0
    for pid in pids:
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue  # ended meanwhile
        ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def memory_kib(pids: Sequence[int]) -> int:
    """Proportional set size of ``pids`` in KiB: shared memory counted once across them.

    Falls back to the resident set size (VmRSS) where ``smaps_rollup`` is missing.
    """
    total = 0
    for pid in pids:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            key = "Pss:"
        except OSError:
            try:
                rollup = Path(f"/proc/{pid}/status").read_text()
                key = "VmRSS:"
            except OSError:
                continue
        for line in rollup.splitlines():
            if line.startswith(key):
                total += int(line.split()[1])
                break
    return total


def all_cpu() -> dict[int, float]:
    """CPU seconds of every live process by pid; key 0 holds this process's ended children.

    Summed per process because ``/proc/stat`` undercounts on some virtual
    machines. Ended children (the SIPp callers of a step, once waited for)
    count through ``getrusage(RUSAGE_CHILDREN)``.
    """
    found: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            found[int(entry.name)] = cpu_seconds([int(entry.name)])
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    found[0] = usage.ru_utime + usage.ru_stime
    return found


def cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two `all_cpu` snapshots (processes new since count whole)."""
    return sum(max(0.0, used - before.get(pid, 0.0)) for pid, used in after.items())


def udp_drops(port: int) -> int:
    """Datagrams the kernel dropped for want of buffer at the UDP sockets bound to ``port``."""
    total = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 12 and int(fields[1].rsplit(":", 1)[1], 16) == port:
                total += int(fields[-1])
    return total


def udp_receive_errors() -> int:
    """The machine's UDP ``RcvbufErrors`` (``/proc/net/snmp``): drops at full sockets."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    names, values = [fields for fields in lines if fields[0] == "Udp:"][:2]
    return int(dict(zip(names, values, strict=False)).get("RcvbufErrors", 0))


def options_probe(port: int, timeout: float = PROBE_TIMEOUT) -> bool:
    """True when something at ``127.0.0.1:port`` answers an OPTIONS over UDP with a response."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        local = sock.getsockname()[1]
        message = "\r\n".join(
            [
                f"OPTIONS sip:{HOST}:{port} SIP/2.0",
                f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport",
                "Max-Forwards: 70",
                f"From: <sip:bench@{HOST}:{local}>;tag={uuid.uuid4().hex[:8]}",
                f"To: <sip:{HOST}:{port}>",
                f"Call-ID: {uuid.uuid4().hex}@bench",
                "CSeq: 1 OPTIONS",
                "Content-Length: 0",
                "",
                "",
            ]
        )
        sock.settimeout(timeout)
        sock.sendto(message.encode(), (HOST, port))
        try:
            reply = sock.recv(65535)
        except TimeoutError:
            return False
    return reply.startswith(b"SIP/2.0 ")


def _kill_if_running(pid: int, program: str) -> None:
    """SIGKILL ``pid`` if it still runs ``program`` (a reused pid is left alone)."""
    try:
        if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0] == program.encode():
            os.kill(pid, signal.SIGKILL)
    except (OSError, ProcessLookupError):
        pass


def kamailio_path() -> str | None:
    """The ``kamailio`` program: on PATH, or in /usr/sbin (not on every user's PATH)."""
    return shutil.which("kamailio") or shutil.which("kamailio", path="/usr/sbin:/usr/local/sbin")


def kamailio_version() -> str:
    """``kamailio 5.6.3`` (from ``kamailio -v``), or ``not installed``."""
    program = kamailio_path()
    if program is None:
        return "not installed"
    done = subprocess.run([program, "-v"], capture_output=True, text=True, timeout=10, check=False)
    first = done.stdout.split("\n", 1)[0]
    return first.removeprefix("version:").strip().split(" (")[0] or "unknown"


class ServerUnderTest:
    """One SIP server process on ``127.0.0.1:port`` (UDP) whose log goes to ``log_path``."""

    def __init__(self, name: str, command: list[str], port: int, log_path: Path) -> None:
        self.name = name
        self.command = command
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @classmethod
    def sipapp(cls, workdir: Path, routes: dict[str, int]) -> ServerUnderTest:
        """sipapp, stateful and record-routing, with a ``[[routes]]`` entry per user -> port."""
        port = free_port()
        config = workdir / "sipapp.toml"
        lines = [
            "# Written by benchmarks/calls.py for one run.",
            "[proxy]",
            "record_route = true",
            "stateless = false",
        ]
        for user, target in routes.items():
            lines += [
                "",
                "[[routes]]",
                f'user_prefix = "{user}"',
                f'targets = ["sip:{HOST}:{target}"]',
            ]
        config.write_text("\n".join(lines) + "\n")
        command = [
            *TWISTD, "-n", "--pidfile=", "sipapp",
            "--config", str(config), "--listen", f"udp:{HOST}:{port}",
        ]  # fmt: skip
        return cls("sipapp", command, port, workdir / "sipapp.log")

    @classmethod
    def kamailio(cls, workdir: Path, cfg: Path, children: int) -> ServerUnderTest:
        """Kamailio in the foreground (-DD), logging to stderr (-E); 1 GB shm, 8 MB pkg memory."""
        program = kamailio_path()
        if program is None:
            raise BenchError("kamailio is not installed (apt-get install kamailio)")
        port = free_port()
        rundir = workdir / f"kamailio-{children}-run"
        rundir.mkdir(parents=True, exist_ok=True)
        command = [
            program, "-f", str(cfg), "-DD", "-E", "-m", "1024", "-M", "8",
            "-Y", str(rundir), "-w", str(rundir),
            "-A", f"LISTEN=udp:{HOST}:{port}", "-A", f"CHILDREN={children}",
        ]  # fmt: skip
        return cls(
            f"Kamailio children={children}", command, port, workdir / f"kamailio-{children}.log"
        )

    def start(self) -> None:
        """Start the process and wait (bounded) until it answers an OPTIONS."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])]
        )
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(
                    f"{self.name} exited with {self.process.returncode} while starting\n"
                    f"command: {' '.join(self.command)}\n{self.log_text()[-3000:]}"
                )
            if options_probe(self.port):
                return
        self.stop()
        raise BenchError(
            f"{self.name} did not answer on {HOST}:{self.port} within {START_TIMEOUT} s"
        )

    @property
    def pid(self) -> int:
        """The process id of the server's main process."""
        assert self.process is not None, "server was never started"
        return self.process.pid

    def alive(self) -> bool:
        """True while the main process runs."""
        return self.process is not None and self.process.poll() is None

    def pids(self) -> list[int]:
        """The main process and every process it forked."""
        return descendants(self.pid) if self.alive() else []

    def log_text(self) -> str:
        """Everything the server wrote so far."""
        return self.log_path.read_text("utf-8", "replace") if self.log_path.exists() else ""

    def stop(self) -> int | None:
        """SIGTERM, a bounded wait, SIGKILL if ignored; the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            family = self.pids()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
                for pid in family[1:]:  # workers the killed main process left behind
                    _kill_if_running(pid, self.command[0])
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.process.returncode
