"""SIPp as the load generator of the call-rate benchmark: callees, callers and what they saw.

`Callee` is one long-running SIPp UAS (``resources/sipp/bench_uas.xml``) on
a free loopback port; `run_callers` starts one SIPp UAC per share of a call
rate (``resources/sipp/bench_uac.xml``, each on fresh ports), waits for all
of them (bounded) and sums what they report: calls placed, calls completed,
retransmissions, the INVITE-to-200 times of every completed call (from
``-trace_rtt``) and the distinct errors of their ``-trace_err`` logs. Every
SIPp run has ``-m``, ``-timeout`` and ``-recv_timeout``; ``-nd`` keeps SIPp
from sending clean-up BYEs of its own, so only the scenario's traffic is
measured.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import attrs
from callservers import HOST, REPO_ROOT, BenchError, free_port

SCENARIOS = REPO_ROOT / "resources" / "sipp"
UAS_SCENARIO = SCENARIOS / "bench_uas.xml"
UAC_SCENARIO = SCENARIOS / "bench_uac.xml"

#: A call whose next message is this late fails (ms); bounds every call.
RECV_TIMEOUT_MS = 5000
#: SIPp error logs are cut at this size (bytes).
MAX_LOG_SIZE = 20_000_000

_EVENT = re.compile(r"\d{4}-\d\d-\d\d\t[\d:.]+\t[\d.]+: ")
#: Call ids in SIPp's messages, in the forms it writes them.
_CALL_ID = re.compile(
    r"(?<=Call-I[dD] ')[^']*|(?<=Call-I[dD]: )[^,\s]*|(?<=Dead call )\S+|(?<=for call: )\S+"
)


def sipp_path() -> str:
    """The ``sipp`` program; `BenchError` when it is not installed."""
    program = shutil.which("sipp")
    if program is None:
        raise BenchError("sipp is not installed (apt-get install sip-tester)")
    return program


def sipp_version() -> str:
    """``SIPp v3.6.1`` or similar."""
    done = subprocess.run(
        [sipp_path(), "-v"], capture_output=True, text=True, timeout=10, check=False
    )
    found = re.search(r"SIPp v[\w.]+", done.stdout + done.stderr)
    return found.group(0) if found else "SIPp (version unknown)"


def _common_args(workdir: Path, port: int) -> list[str]:
    """Options every SIPp process here gets: loopback only, fresh ports, bounded logs."""
    return [
        "-i", HOST, "-p", str(port), "-mp", str(free_port(span=2)), "-t", "u1",
        "-nostdin", "-nd",
        "-trace_err", "-error_file", str(workdir / "errors.log"),
        "-max_log_size", str(MAX_LOG_SIZE),
        "-trace_stat", "-stf", str(workdir / "stat.csv"), "-fd", "1",
        "-ci", HOST, "-cp", str(free_port()),
    ]  # fmt: skip


def last_stats(path: Path) -> dict[str, str]:
    """The last row of a SIPp ``-trace_stat`` file, by column name; ``{}`` before the first."""
    if not path.exists():
        return {}
    lines = [line for line in path.read_text("utf-8", "replace").splitlines() if line.strip()]
    if len(lines) < 2:
        return {}
    return dict(zip(lines[0].split(";"), lines[-1].split(";"), strict=False))


def _count(stats: dict[str, str], column: str) -> int:
    try:
        return int(stats.get(column, "0") or 0)
    except ValueError:
        return 0


def summarise_errors(text: str) -> Counter[str]:
    """SIPp ``-trace_err`` events by kind: the first line of each, call ids blanked out."""
    found: Counter[str] = Counter()
    for event in _EVENT.split(text)[1:]:
        lines = [line.strip() for line in event.splitlines() if line.strip()]
        if not lines:
            continue
        first = lines[0]
        if first.endswith(":") and len(lines) > 1:  # the message itself follows
            first = f"{first} {lines[1]}"
        found[_CALL_ID.sub("…", first)] += 1
    return found


class Callee:
    """A SIPp UAS answering every call sent to ``127.0.0.1:port``; runs until `stop`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.command = [
            sipp_path(), "-sf", str(UAS_SCENARIO), *_common_args(workdir, self.port),
            "-recv_timeout", str(4 * RECV_TIMEOUT_MS),
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def user(self) -> str:
        """The Request-URI user that both servers route to this callee."""
        return f"u{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Start SIPp and wait (bounded) until its UDP port is taken."""
        self.process = subprocess.Popen(
            self.command,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(self.workdir / "stderr.log").open("wb"),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"SIPp UAS exited with {self.process.returncode}: {self.command}")
            if _port_taken(self.port):
                return
            time.sleep(0.05)  # polling for the bind, bounded by the deadline
        raise BenchError(f"SIPp UAS did not bind {HOST}:{self.port} within {timeout} s")

    def failed_calls(self) -> int:
        """Calls this callee counted as failed so far."""
        return _count(last_stats(self.workdir / "stat.csv"), "FailedCall(C)")

    def errors(self) -> Counter[str]:
        """This callee's error events by kind."""
        path = self.workdir / "errors.log"
        return summarise_errors(path.read_text("utf-8", "replace")) if path.exists() else Counter()

    def stop(self) -> None:
        """SIGTERM, a bounded wait, SIGKILL if ignored."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


@attrs.frozen
class CallerReport:
    """What the SIPp callers of one step reported, summed over all of them."""

    placed: int  # calls asked for (-m)
    completed: int  # SIPp "Successful call"
    sipp_failed: int  # SIPp "Failed call"
    retransmissions: int
    dead_messages: int  # late messages for calls SIPp had already finished
    setup_ms: tuple[int, ...]  # INVITE -> 200 per completed call, sorted (ms resolution)
    failures: Counter[str]  # SIPp's failed-call counters by reason ("TimeoutOnRecv", ...)
    errors: Counter[str]
    exit_codes: tuple[int, ...]
    wall_seconds: float


def split_rate(rate: int, per_process: int) -> list[int]:
    """``rate`` calls/s shared as evenly as possible by processes of at most ``per_process``."""
    count = max(1, -(-rate // per_process))
    base, extra = divmod(rate, count)
    return [base + (1 if index < extra else 0) for index in range(count)]


def run_callers(
    server_port: int,
    callees: Sequence[Callee],
    rates: Sequence[int],
    seconds: float,
    workdir: Path,
) -> CallerReport:
    """One SIPp UAC per entry of ``rates`` (the i-th calling callee i), all at once; bounded."""
    if len(rates) > len(callees):
        raise BenchError(f"{len(rates)} callers need as many callees, have {len(callees)}")
    limit = seconds + 2 * RECV_TIMEOUT_MS / 1000 + 10
    started = []
    begin = time.monotonic()
    for index, (rate, callee) in enumerate(zip(rates, callees, strict=False)):
        directory = workdir / f"uac-{index}"
        directory.mkdir(parents=True, exist_ok=True)
        calls = max(1, round(rate * seconds))
        command = [
            sipp_path(), f"{HOST}:{server_port}", "-sf", str(UAC_SCENARIO), "-s", callee.user,
            *_common_args(directory, free_port()),
            "-r", str(rate), "-m", str(calls), "-l", str(max(100, rate * 10)),
            "-recv_timeout", str(RECV_TIMEOUT_MS),
            "-timeout", f"{limit:g}s", "-timeout_error",
            "-trace_rtt", "-rtt_freq", "1",
        ]  # fmt: skip
        process = subprocess.Popen(
            command,
            cwd=directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(directory / "stderr.log").open("wb"),
        )
        started.append((process, directory, calls))
    codes = []
    for process, _directory, _calls in started:
        remaining = max(1.0, begin + limit + 15 - time.monotonic())
        try:
            codes.append(process.wait(remaining))
        except subprocess.TimeoutExpired:
            process.kill()
            codes.append(process.wait(10))
    wall = time.monotonic() - begin
    return _collect(started, codes, wall)


def _collect(
    started: Sequence[tuple[subprocess.Popen[bytes], Path, int]],
    codes: Sequence[int],
    wall: float,
) -> CallerReport:
    placed = completed = failed = retrans = dead = 0
    setup: list[int] = []
    errors: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    for _process, directory, calls in started:
        stats = last_stats(directory / "stat.csv")
        for column in stats:
            reason = column.removeprefix("Failed").removesuffix("(C)")
            if column == f"Failed{reason}(C)" and reason != "Call" and _count(stats, column):
                failures[reason] += _count(stats, column)
        placed += calls
        completed += _count(stats, "SuccessfulCall(C)")
        failed += _count(stats, "FailedCall(C)")
        retrans += _count(stats, "Retransmissions(C)")
        dead += _count(stats, "DeadCallMsgs(C)") + _count(stats, "OutOfCallMsgs(C)")
        for rtt in directory.glob("*_rtt.csv"):
            for line in rtt.read_text("utf-8", "replace").splitlines()[1:]:
                parts = line.split(";")
                if len(parts) >= 3 and parts[2].strip() == "1":
                    setup.append(int(float(parts[1])))
        error_log = directory / "errors.log"
        if error_log.exists():
            errors += summarise_errors(error_log.read_text("utf-8", "replace"))
    return CallerReport(
        placed=placed,
        completed=completed,
        sipp_failed=failed,
        retransmissions=retrans,
        dead_messages=dead,
        setup_ms=tuple(sorted(setup)),
        failures=failures,
        errors=errors,
        exit_codes=tuple(codes),
        wall_seconds=wall,
    )
