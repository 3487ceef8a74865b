"""Call-rate benchmark: sipapp and Kamailio as stateful record-routing proxies, ramped with SIPp.

Each server runs on a free loopback UDP port with one route per SIPp callee
(``resources/sipp/bench_uas.xml``). SIPp callers (``bench_uac.xml``: INVITE,
100, 180, 200, ACK, BYE, 200; ACK and BYE follow the Record-Route) place
calls at a rising rate, one step of ``--step-seconds`` per rate, each step
with fresh SIPp callers (one per ``--per-process`` calls/s). Per step it
records completed and failed calls, the INVITE-to-200 time (p50, p99), the
server's CPU time (``/proc/PID/stat``, all its processes) per call, how busy
the whole machine was, the server's memory and the datagrams the kernel
dropped at the server's full socket. A server's result is the
highest rate with fewer than 1 % failed calls; its ramp stops at the first
step above that. Kamailio runs with one UDP worker (``children=1``, the same
single-process footing as sipapp) and, unless ``--quick``, with two.

    python benchmarks/calls.py                 # full ramp, tables into docs/performance.md
    python benchmarks/calls.py --quick         # short steps, fewer rates, docs untouched
    python benchmarks/calls.py --rates 100,200 --step-seconds 10 --servers sipapp
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import attrs
from callreport import FAIL_LIMIT, ServerRun, Step, environment, markdown, write_docs
from callservers import (
    REPO_ROOT,
    BenchError,
    ServerUnderTest,
    all_cpu,
    cpu_between,
    cpu_seconds,
    kamailio_version,
    memory_kib,
    udp_drops,
    udp_receive_errors,
)
from sippload import Callee, run_callers, sipp_version, split_rate

KAMAILIO_CFG = REPO_ROOT / "benchmarks" / "kamailio" / "kamailio.cfg"
DEFAULT_RATES = "100,200,300,400,500,600,800,1000,1250,1500,2000,2500,3000,3500,4000"
QUICK_RATES = "100,200,400,800,1600"
#: A step is not started unless this much (s) beyond its length is left of the budget:
#: its callers may run 35 s past the step, then the server settles and stops.
STEP_MARGIN = 60.0


def log(text: str) -> None:
    """Progress on standard error (standard output carries the tables)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


class MemorySampler:
    """Samples the memory of a set of processes every ``interval`` s in a thread; keeps the peak."""

    def __init__(self, pids: list[int], interval: float = 0.25) -> None:
        self.pids = pids
        self.interval = interval
        self.peak = memory_kib(pids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, memory_kib(self.pids))

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def settle(server: ServerUnderTest, limit: float = 8.0, idle: float = 0.05) -> float:
    """Wait until the server uses under ``idle`` of a core over 0.5 s, at most ``limit`` s."""
    start = time.monotonic()
    while time.monotonic() - start < limit and server.alive():
        before = cpu_seconds(server.pids())
        time.sleep(0.5)  # the measuring window, not a wait for an event
        if cpu_seconds(server.pids()) - before < idle * 0.5:
            break
    return time.monotonic() - start


def run_step(
    server: ServerUnderTest,
    callees: list[Callee],
    rate: int,
    args: argparse.Namespace,
    workdir: Path,
) -> Step:
    """One step of the ramp: fresh SIPp callers at ``rate`` calls/s for ``args.step_seconds``."""
    rates = split_rate(rate, args.per_process)
    pids = server.pids()
    callee_failed = sum(c.failed_calls() for c in callees)
    drops_before = udp_drops(server.port), udp_receive_errors()
    cpu_before = cpu_seconds(pids)
    machine_before = all_cpu()
    with MemorySampler(pids) as sampler:
        report = run_callers(server.port, callees, rates, args.step_seconds, workdir)
    machine_used = cpu_between(machine_before, all_cpu())
    cpu_active = cpu_seconds(pids) - cpu_before
    memory_end = memory_kib(pids)
    # Work the step left behind (timers, retransmissions) is part of its cost.
    settle(server)
    return Step(
        rate=rate,
        processes=len(rates),
        report=report,
        server_cpu=cpu_seconds(pids) - cpu_before,
        server_cpu_active=cpu_active,
        machine_busy=machine_used / (report.wall_seconds * (os.cpu_count() or 1)),
        memory_end_kib=memory_end,
        memory_peak_kib=max(sampler.peak, memory_end),
        callee_failed=sum(c.failed_calls() for c in callees) - callee_failed,
        server_drops=udp_drops(server.port) - drops_before[0],
        machine_drops=udp_receive_errors() - drops_before[1],
    )


def ramp(
    name: str, args: argparse.Namespace, root: Path, deadline: float, children: int = 1
) -> ServerRun:
    """Start a server and its callees, warm it up, run the ramp, stop everything."""
    workdir = root / (name if name == "sipapp" else f"kamailio-{children}")
    workdir.mkdir(parents=True, exist_ok=True)
    most = max(len(split_rate(rate, args.per_process)) for rate in args.rates)
    callees = [Callee(workdir / f"uas-{index}") for index in range(most)]
    server: ServerUnderTest | None = None
    steps: list[Step] = []
    note = ""
    try:
        for callee in callees:
            callee.start()
        if name == "sipapp":
            server = ServerUnderTest.sipapp(workdir, {c.user: c.port for c in callees})
        else:
            server = ServerUnderTest.kamailio(workdir, KAMAILIO_CFG, children)
        server.start()
        memory_start = memory_kib(server.pids())
        warm = run_callers(server.port, callees, [min(50, args.rates[0])], 2, workdir / "warm-up")
        if warm.completed == 0:
            raise BenchError(
                f"{server.name} completed no call while warming up: {_top(warm.errors)}"
            )
        settle(server)
        for index, rate in enumerate(args.rates):
            if time.monotonic() + args.step_seconds + STEP_MARGIN > deadline:
                note = f"time budget reached before the {rate} calls/s step"
                break
            step = run_step(server, callees, rate, args, workdir / f"step-{index}-{rate}")
            steps.append(step)
            log(f"{server.name}: {step.describe()}")
            if not server.alive():
                note = f"the server exited with {server.stop()} during the {rate} calls/s step"
                break
            if step.failed_ratio >= FAIL_LIMIT:
                break
    finally:
        ramp_log = ""
        if server is not None:
            ramp_log = server.log_text()
            server.stop()
        for callee in callees:
            callee.stop()
    callee_errors: Counter[str] = Counter()
    for callee in callees:
        callee_errors += callee.errors()
    return ServerRun(
        name=server.name,
        kind=name,
        steps=tuple(steps),
        memory_start_kib=memory_start,
        callee_errors=callee_errors,
        server_log=ramp_log,
        stop_log=server.log_text()[len(ramp_log) :],
        note=note,
    )


def _top(errors: Counter[str]) -> str:
    return (
        "; ".join(f"{count} x {text}" for text, count in errors.most_common(3)) or "no SIPp error"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; ``--quick`` fills in shorter defaults."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", help=f"calls/s per step (default {DEFAULT_RATES})")
    parser.add_argument("--step-seconds", type=float, help="length of a step (default 15)")
    parser.add_argument(
        "--per-process", type=int, default=1000, help="most calls/s per SIPp caller"
    )
    parser.add_argument("--servers", default="sipapp,kamailio", help="sipapp, kamailio or both")
    parser.add_argument("--kamailio-children", help="worker counts for Kamailio (default 1,2)")
    parser.add_argument(
        "--budget-minutes", type=float, default=14.0, help="stop starting steps after"
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"5 s steps at {QUICK_RATES}, children=1"
    )
    parser.add_argument(
        "--docs", type=Path, help="markdown file with <!-- calls:begin/end --> markers"
    )
    parser.add_argument("--no-docs", action="store_true", help="print only")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument(
        "--workdir", type=Path, help="keep configs and logs here (default: a temp dir)"
    )
    args = parser.parse_args(argv)
    args.rates = [
        int(r) for r in (args.rates or (QUICK_RATES if args.quick else DEFAULT_RATES)).split(",")
    ]
    if not args.rates or min(args.rates) <= 0:
        parser.error("--rates needs positive integers")
    args.step_seconds = args.step_seconds or (5.0 if args.quick else 15.0)
    children = args.kamailio_children or ("1" if args.quick else "1,2")
    args.kamailio_children = [int(c) for c in children.split(",")]
    args.servers = [s.strip() for s in args.servers.split(",")]
    if set(args.servers) - {"sipapp", "kamailio"}:
        parser.error("--servers takes sipapp and/or kamailio")
    if args.docs is None and not args.quick:
        args.docs = REPO_ROOT / "docs" / "performance.md"
    if args.no_docs:
        args.docs = None
    return args


def main(argv: list[str] | None = None) -> int:
    """Run every ramp, print the tables, write them into the docs."""
    args = parse_args(argv)
    start = time.monotonic()
    deadline = start + args.budget_minutes * 60
    command = shlex.join(
        ["python", "benchmarks/calls.py", *(sys.argv[1:] if argv is None else argv)]
    )
    if os.environ.get("MAKELEVEL"):  # started by make: name the target too
        command = f"make bench` → `{command}"
    env = environment(command, kamailio_version(), sipp_version(), args)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="sipapp-bench-"))
    log(f"call-rate benchmark: logs and SIPp files in {root}")
    runs: list[ServerRun] = []
    plan = [("sipapp", 1)] if "sipapp" in args.servers else []
    if "kamailio" in args.servers:
        plan += [("kamailio", children) for children in args.kamailio_children]
    for name, children in plan:
        try:
            runs.append(ramp(name, args, root, deadline, children))
        except BenchError as error:
            log(f"{name}: {error}")
            runs.append(ServerRun.failed(name, children, str(error)))
    env = attrs.evolve(env, minutes=(time.monotonic() - start) / 60)
    text = markdown(env, runs)
    sys.stdout.write(text + "\n")
    if args.docs is not None:
        write_docs(args.docs, text)
        log(f"results written into {args.docs}")
    if args.json is not None:
        args.json.write_text(json.dumps([run.as_dict() for run in runs], indent=2) + "\n")
    log(f"done in {(time.monotonic() - start) / 60:.1f} min at {datetime.datetime.now():%H:%M}")
    return 0 if runs and all(run.steps for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
