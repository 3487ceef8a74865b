"""Results of the call-rate benchmark: per-step figures, per-server summaries, markdown.

`Step` holds what one step of a ramp measured and derives the figures shown
(failed share, p50/p99 call setup, CPU per call); `ServerRun` is one server's
ramp and the problems it logged; `markdown` renders everything as the tables
that ``docs/performance.md`` carries between ``<!-- calls:begin -->`` and
``<!-- calls:end -->``, and `write_docs` puts them there. No measuring here.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
from sippload import CallerReport

BEGIN = "<!-- calls:begin -->"
END = "<!-- calls:end -->"
FAIL_LIMIT = 0.01

_SIPAPP_PROBLEM = re.compile(r"#(warn|error|critical)\]|Traceback \(most recent call last\)")
_KAMAILIO_PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL|ALERT|BUG):")
_LOG_PREFIX = re.compile(r"^(\d{4}-\d\d-\d\dT[\d:]+[+-]\d{4} |\s*\d+\(\d+\) )")


def percentile(values: tuple[int, ...], share: float) -> int | None:
    """The nearest-rank percentile of sorted ``values``; ``None`` for none."""
    if not values:
        return None
    rank = max(1, -(-len(values) * share // 1))
    return values[int(rank) - 1]


@attrs.frozen
class Step:
    """One rate of a ramp: what SIPp saw and what the server used."""

    rate: int
    processes: int
    report: CallerReport
    server_cpu: float  # CPU s (user + system) of all the server's processes, step and settling
    server_cpu_active: float  # the same while the callers ran
    machine_busy: float  # share of all cores busy while the callers ran, 0..1
    memory_end_kib: int
    memory_peak_kib: int
    callee_failed: int  # calls the SIPp callees failed during the step
    server_drops: int  # datagrams the kernel dropped at the server's full socket
    machine_drops: int  # the same for every UDP socket of the machine (SIPp's too)

    @property
    def failed(self) -> int:
        """Calls placed that did not complete (failed, or unfinished when SIPp gave up)."""
        return self.report.placed - self.report.completed

    @property
    def failed_ratio(self) -> float:
        """``failed`` as a share of the calls placed."""
        return self.failed / max(self.report.placed, 1)

    @property
    def cpu_ms_per_call(self) -> float | None:
        """Server CPU milliseconds per completed call."""
        return self.server_cpu * 1000 / self.report.completed if self.report.completed else None

    @property
    def server_busy(self) -> float:
        """Server CPU time while the callers ran over their wall time: 1.0 is one core."""
        return self.server_cpu_active / max(self.report.wall_seconds, 1e-9)

    def describe(self) -> str:
        """One progress line."""
        per_call = self.cpu_ms_per_call
        setup = self.report.setup_ms
        return (
            f"{self.rate} calls/s: {self.report.completed}/{self.report.placed} completed, "
            f"{self.failed_ratio:.2%} failed, setup p50 {_ms(percentile(setup, 0.5))} "
            f"p99 {_ms(percentile(setup, 0.99))} ms, "
            f"CPU {'-' if per_call is None else f'{per_call:.3f}'} ms/call, "
            f"{self.server_busy:.0%} of a core, machine {self.machine_busy:.0%} busy"
        )

    def as_dict(self) -> dict[str, Any]:
        """The step as plain JSON-ready values."""
        return {
            "rate": self.rate,
            "sipp_callers": self.processes,
            "placed": self.report.placed,
            "completed": self.report.completed,
            "failed": self.failed,
            "sipp_failed": self.report.sipp_failed,
            "setup_p50_ms": percentile(self.report.setup_ms, 0.5),
            "setup_p99_ms": percentile(self.report.setup_ms, 0.99),
            "server_cpu_s": round(self.server_cpu, 3),
            "cpu_ms_per_call": self.cpu_ms_per_call,
            "server_cpu_active_s": round(self.server_cpu_active, 3),
            "server_busy": round(self.server_busy, 3),
            "machine_busy": round(self.machine_busy, 3),
            "memory_end_kib": self.memory_end_kib,
            "memory_peak_kib": self.memory_peak_kib,
            "uac_retransmissions": self.report.retransmissions,
            "late_messages": self.report.dead_messages,
            "callee_failed": self.callee_failed,
            "server_udp_drops": self.server_drops,
            "machine_udp_drops": self.machine_drops,
            "failure_reasons": dict(self.report.failures),
            "wall_s": round(self.report.wall_seconds, 2),
            "errors": dict(self.report.errors.most_common(10)),
        }


@attrs.frozen
class ServerRun:
    """One server's ramp."""

    name: str
    kind: str  # 'sipapp' | 'kamailio'
    steps: tuple[Step, ...]
    memory_start_kib: int
    callee_errors: Counter[str]
    server_log: str  # up to the end of the ramp
    stop_log: str  # written while stopping
    note: str = ""

    @classmethod
    def failed(cls, kind: str, children: int, reason: str) -> ServerRun:
        """A server whose ramp could not run at all."""
        name = "sipapp" if kind == "sipapp" else f"Kamailio children={children}"
        return cls(name, kind, (), 0, Counter(), "", "", reason)

    @property
    def best(self) -> Step | None:
        """The step at the highest rate with fewer than 1 % failed calls."""
        good = [s for s in self.steps if s.failed_ratio < FAIL_LIMIT]
        return max(good, key=lambda s: s.rate) if good else None

    @property
    def stopped_by_failures(self) -> bool:
        """True when the ramp ended on a step with 1 % or more failed calls."""
        return bool(self.steps) and self.steps[-1].failed_ratio >= FAIL_LIMIT

    def log_problems(self, stopping: bool = False) -> Counter[str]:
        """Warnings and errors logged during the ramp (or while stopping), by text.

        Timestamps and process ids are removed, so repeats count together.
        """
        pattern = _SIPAPP_PROBLEM if self.kind == "sipapp" else _KAMAILIO_PROBLEM
        found: Counter[str] = Counter()
        for line in (self.stop_log if stopping else self.server_log).splitlines():
            if pattern.search(line):
                found[_LOG_PREFIX.sub("", line).strip()[:200]] += 1
        return found

    def as_dict(self) -> dict[str, Any]:
        """The run as plain JSON-ready values."""
        best = self.best
        return {
            "server": self.name,
            "best_rate": best.rate if best else None,
            "memory_start_kib": self.memory_start_kib,
            "note": self.note,
            "steps": [s.as_dict() for s in self.steps],
            "callee_errors": dict(self.callee_errors.most_common(10)),
            "log_problems": dict(self.log_problems().most_common(10)),
            "log_problems_stopping": dict(self.log_problems(stopping=True).most_common(10)),
        }


@attrs.frozen
class Environment:
    """Where and how the benchmark ran."""

    command: str
    date: str
    cpus: int
    cpu_model: str
    system: str
    python: str
    kamailio: str
    sipp: str
    step_seconds: float
    per_process: int
    load_before: float
    minutes: float = 0.0


def environment(command: str, kamailio: str, sipp: str, args: argparse.Namespace) -> Environment:
    """The machine and the versions, read now."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    system = f"{platform.system()} {platform.release()}"
    os_release = Path("/etc/os-release")
    if os_release.exists():
        found = re.search(r'^PRETTY_NAME="?([^"\n]*)', os_release.read_text(), re.MULTILINE)
        if found:
            system = f"{found.group(1)}, {system}"
    return Environment(
        command=command,
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cpus=os.cpu_count() or 1,
        cpu_model=model,
        system=system,
        python=f"{platform.python_implementation()} {platform.python_version()}",
        kamailio=kamailio,
        sipp=sipp,
        step_seconds=args.step_seconds,
        per_process=args.per_process,
        load_before=os.getloadavg()[0],
    )


def _ms(value: int | None) -> str:
    if value is None:
        return "-"
    return "< 1" if value == 0 else str(value)


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f}"


def _step_row(step: Step) -> str:
    per_call = step.cpu_ms_per_call
    report = step.report
    cells = [
        f"{step.rate:,}",
        str(step.processes),
        f"{report.placed:,}",
        f"{step.failed:,} ({step.failed_ratio:.1%})",
        _ms(percentile(report.setup_ms, 0.5)),
        _ms(percentile(report.setup_ms, 0.99)),
        f"{step.server_cpu:.1f}",
        "-" if per_call is None else f"{per_call:.3f}",
        "-" if per_call is None else f"{per_call:.2f}",
        f"{step.server_busy:.0%}",
        f"{step.machine_busy:.0%}",
        f"{_mib(step.memory_end_kib)} / {_mib(step.memory_peak_kib)}",
        f"{report.retransmissions:,}",
        f"{step.server_drops:,} / {step.machine_drops:,}",
    ]
    return "| " + " | ".join(cells) + " |"


STEP_HEADER = (
    "| rate (calls/s) | SIPp callers | calls | failed | setup p50 (ms) | setup p99 (ms) "
    "| server CPU (s) | CPU per call (ms) | CPU per 1,000 calls (s) | server busy (of one core) "
    "| machine busy (all cores) | server memory end / peak (MiB) | caller retransmissions "
    "| UDP drops at server / machine |\n"
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
    "| ---: |"
)


def _summary(runs: list[ServerRun], env: Environment) -> list[str]:
    lines = [
        "| server | highest rate with < 1 % failed (calls/s) | CPU per call there (ms) "
        "| setup p99 there (ms) | server memory at start → end of ramp (MiB) | ramp ended by |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for run in runs:
        best = run.best
        if run.stopped_by_failures:
            ended = f"≥ 1 % failed at {run.steps[-1].rate:,} calls/s"
        else:
            ended = run.note or "end of the rate list (the result is a lower bound)"
        end_memory = _mib(run.steps[-1].memory_end_kib) if run.steps else "-"
        per_call = best.cpu_ms_per_call if best else None
        lines.append(
            f"| {run.name} | {f'{best.rate:,}' if best else 'none'} "
            f"| {'-' if per_call is None else f'{per_call:.3f}'} "
            f"| {_ms(percentile(best.report.setup_ms, 0.99)) if best else '-'} "
            f"| {_mib(run.memory_start_kib)} → {end_memory} | {ended} |"
        )
    lines += ["", *_ratios(runs)]
    return lines


def _ratios(runs: list[ServerRun]) -> list[str]:
    sipapp = next((r for r in runs if r.kind == "sipapp"), None)
    kamailio = next((r for r in runs if r.kind == "kamailio" and r.steps), None)
    if sipapp is None or kamailio is None or sipapp.best is None or kamailio.best is None:
        return ["No ratio: a ramp is missing or completed no step."]
    rate_ratio = sipapp.best.rate / kamailio.best.rate
    bound = "" if kamailio.stopped_by_failures else " (Kamailio's figure is a lower bound)"
    lines = [
        f"- Call rate, sipapp / {kamailio.name}: {sipapp.best.rate:,} / {kamailio.best.rate:,} "
        f"= **{rate_ratio:.2f}**{bound}."
    ]
    passed = {s.rate: s for s in kamailio.steps if s.failed_ratio < FAIL_LIMIT}
    common = [s for s in sipapp.steps if s.failed_ratio < FAIL_LIMIT and s.rate in passed]
    if common:
        ours = common[-1]
        theirs = passed[ours.rate]
        mine, other = ours.cpu_ms_per_call, theirs.cpu_ms_per_call
        if mine and other:
            lines.append(
                f"- CPU per call at {ours.rate:,} calls/s (the highest rate both completed), "
                f"sipapp / {kamailio.name}: {mine:.3f} / {other:.3f} ms = **{mine / other:.1f}x**."
            )
    last = kamailio.steps[-1]
    if kamailio.stopped_by_failures and last.machine_busy >= 0.9 and last.server_busy < 0.7:
        lines.append(
            f"- {kamailio.name} failed calls at {last.rate:,} calls/s with the machine "
            f"{last.machine_busy:.0%} busy but itself only {last.server_busy:.0%} of a core: "
            "SIPp, sharing the cores, was the limit there, not Kamailio."
        )
    return lines


def _problems(run: ServerRun) -> list[str]:
    lines = []
    if run.note:
        lines.append(f"- Note: {run.note}.")
    if run.steps:
        last = run.steps[-1]
        if last.failed:
            unfinished = last.failed - last.report.sipp_failed
            failures = last.report.failures.most_common()
            reasons = [f"{reason} {count:,}" for reason, count in failures]
            if unfinished > 0:
                reasons.append(f"not finished when the step ended {unfinished:,}")
            lines.append(
                f"- Failed calls at {last.rate:,} calls/s by SIPp's reason: {', '.join(reasons)}."
            )
        if last.report.errors:
            lines.append(f"- SIPp caller errors at {last.rate:,} calls/s (count x first line):")
            lines += [
                f"  - {count} x `{text[:160]}`" for text, count in last.report.errors.most_common(5)
            ]
    if run.callee_errors:
        lines.append("- SIPp callee errors over the whole ramp:")
        lines += [
            f"  - {count} x `{text[:160]}`" for text, count in run.callee_errors.most_common(5)
        ]
    for stopping, when in ((False, "during the ramp"), (True, "while stopping (SIGTERM)")):
        problems = run.log_problems(stopping)
        if problems:
            lines.append(f"- Server log {when}, warnings and errors:")
            lines += [f"  - {count} x `{text[:160]}`" for text, count in problems.most_common(5)]
        elif run.steps:
            lines.append(f"- The server logged no warning or error {when}.")
    return lines


def markdown(env: Environment, runs: list[ServerRun]) -> str:
    """Everything as markdown: environment, summary, ratio, one table per server."""
    lines = [
        f"Measured {env.date} with `{env.command}` ({env.minutes:.1f} min): {env.cpus} cores "
        f'(`nproc`), CPU "{env.cpu_model}", {env.system}; {env.python}; {env.kamailio}; '
        f"{env.sipp}. Steps of {env.step_seconds:g} s, at most {env.per_process:,} calls/s per "
        f"SIPp caller; load average {env.load_before:.2f} at the start. SIPp, the callees and "
        "the server share the cores.",
        "",
        *_summary(runs, env),
    ]
    for run in runs:
        lines += ["", f"#### {run.name}", ""]
        if run.steps:
            lines += [STEP_HEADER, *(_step_row(s) for s in run.steps), ""]
        lines += _problems(run) or ["- Nothing to report."]
    return "\n".join(lines)


def write_docs(path: Path, text: str) -> None:
    """Put ``text`` between the markers in ``path`` (appended with the markers when missing)."""
    current = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in current and END in current:
        head, _, rest = current.partition(BEGIN)
        _, _, tail = rest.partition(END)
        path.write_text(head + block + tail)
    else:
        path.write_text(current.rstrip("\n") + "\n\n## Call-rate results\n\n" + block + "\n")
