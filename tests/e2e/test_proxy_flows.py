"""End to end: calls through the proxy, SIPp caller -> sipapp -> SIPp callee.

Every test starts the real server with a static route to one or more SIPp
callees on free loopback ports, runs a SIPp caller against it and checks
both ends. The scenarios in ``resources/sipp`` do the checking that matters:
the callee insists that the INVITE, the ACK and the BYE come from the proxy
(its Via on top) and carry its Record-Route, and the caller sends ACK and
BYE along the learnt route set, so a proxy that loses the route or lets a
request bypass it fails the call. Every SIPp flow runs over UDP and over
TCP (caller and callees on the same transport; the static route targets of a
TCP run carry ``;transport=tcp``), except the packet loss test, which is for
UDP only. Each SIPp run is bounded (``-m``, ``-timeout``, ``-timeout_error``)
and uses ports of its own.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.e2e.harness import (
    ServerProcess,
    SippProcess,
    SippRun,
    StartServer,
    free_port,
    header_values,
    listen_arg,
    run_sipp,
    sipp_scenario,
    sipp_stats,
    start_sipp,
    status_line,
    write_config,
)

pytestmark = pytest.mark.e2e

HOST = "127.0.0.1"
#: The user part every routed call dials; the static route matches its prefix.
CALLEE = "49301"
#: SIPp's transport flag and the socket kind a callee of that transport binds.
TRANSPORTS = {"udp": ("u1", "udp"), "tcp": ("t1", "tcp")}
BOTH = [pytest.param("udp", id="udp"), pytest.param("tcp", id="tcp")]


class Route(NamedTuple):
    """One ``[[routes]]`` entry of the proxy's configuration."""

    targets: tuple[str, ...]
    user_prefix: str = "49"
    serial: bool = False


class Proxy(NamedTuple):
    """The running server and the port it listens on (UDP and TCP)."""

    server: ServerProcess
    port: int

    @property
    def address(self) -> str:
        """``host:port`` as SIPp's remote address and as the proxy's Via sent-by."""
        return f"{HOST}:{self.port}"


def target(port: int, transport: str = "udp") -> str:
    """A static route target: a callee on ``port`` reached over ``transport``."""
    return f"sip:{HOST}:{port}" + (";transport=tcp" if transport == "tcp" else "")


def proxy_config(routes: Sequence[Route], t1: float) -> str:
    """The TOML configuration: timers and the static routes.

    A short shutdown grace period keeps the teardown quick: these tests
    check calls, not how long a shutdown waits for unfinished ones.
    """
    lines = ["[server]", "grace_period = 1.0", ""]
    lines += ["[timers]", f"t1 = {t1}", "", "[proxy]", "record_route = true", ""]
    for route in routes:
        targets = ", ".join(f'"{t}"' for t in route.targets)
        lines += [
            "[[routes]]",
            f'user_prefix = "{route.user_prefix}"',
            f"targets = [{targets}]",
            f"serial = {'true' if route.serial else 'false'}",
            "",
        ]
    return "\n".join(lines)


def start_proxy(
    sipapp_server: StartServer,
    tmp_path: Path,
    routes: Sequence[Route],
    *,
    t1: float = 0.5,
    port: int | None = None,
) -> Proxy:
    """The server with ``routes``, listening on UDP and TCP at one free port."""
    port = port if port is not None else free_port(HOST)
    config = write_config(tmp_path, proxy_config(routes, t1))
    server = sipapp_server(
        "--config",
        str(config),
        "--listen",
        listen_arg("udp", HOST, port),
        "--listen",
        listen_arg("tcp", HOST, port),
    )
    return Proxy(server, port)


@pytest.fixture
def callees() -> Iterator[list[SippProcess]]:
    """SIPp callees started by a test; any still running at teardown is stopped."""
    started: list[SippProcess] = []
    yield started
    for process in started:
        process.stop()


def free_callee_port(transport: str) -> int:
    """A fresh port for a callee of ``transport``."""
    return free_port(HOST, (TRANSPORTS[transport][1],))


def start_callee(
    callees: list[SippProcess],
    tmp_path: Path,
    scenario: str,
    transport: str,
    port: int,
    proxy: Proxy,
    *extra: str,
    calls: int = 1,
    timeout: float = 15.0,
) -> SippProcess:
    """Start a SIPp callee on ``port``; returns once it listens."""
    flag, kind = TRANSPORTS[transport]
    process = start_sipp(
        [
            "-sf",
            str(sipp_scenario(scenario)),
            "-t",
            flag,
            "-i",
            HOST,
            "-p",
            str(port),
            "-set",
            "proxy",
            proxy.address,
            *extra,
        ],
        workdir=tmp_path / f"callee-{port}",
        timeout=timeout,
        calls=calls,
        listen=(HOST, port, kind),
    )
    callees.append(process)
    return process


def run_caller(
    tmp_path: Path,
    scenario: str,
    transport: str,
    proxy: Proxy,
    *extra: str,
    user: str = CALLEE,
    calls: int = 1,
    timeout: float = 10.0,
) -> SippRun:
    """Run a SIPp caller against the proxy, dialling ``user``; its outcome."""
    return run_sipp(
        [
            proxy.address,
            "-sf",
            str(sipp_scenario(scenario)),
            "-s",
            user,
            "-t",
            TRANSPORTS[transport][0],
            "-i",
            HOST,
            "-p",
            str(free_port(HOST, (TRANSPORTS[transport][1],))),
            *extra,
        ],
        workdir=tmp_path / f"caller-{uuid.uuid4().hex[:8]}",
        timeout=timeout,
        calls=calls,
    )


def assert_all_ok(proxy: Proxy, caller: SippRun, *callees: SippProcess) -> None:
    """Fail, showing every failed run and the server log, unless all calls succeeded."""
    runs = [("caller", caller)] + [
        (f"callee {index}", callee.wait()) for index, callee in enumerate(callees, 1)
    ]
    failed = [f"=== {name} ===\n{run.describe()}" for name, run in runs if run.returncode != 0]
    if failed:
        log = proxy.server.log_text()[-6000:]
        pytest.fail("\n".join([*failed, "=== server log (tail) ===", log]), pytrace=False)


# -- 1. a basic call, record-routed ------------------------------------------------


@pytest.mark.parametrize("transport", BOTH)
def test_call_is_record_routed_end_to_end(
    sipapp_server: StartServer, tmp_path: Path, callees: list[SippProcess], transport: str
) -> None:
    """INVITE/100/180/200/ACK/BYE/200 through the proxy: Record-Route ;lr, ACK and BYE via it."""
    port = free_callee_port(transport)
    proxy = start_proxy(sipapp_server, tmp_path, [Route((target(port, transport),))])
    callee = start_callee(callees, tmp_path, "call_uas.xml", transport, port, proxy)
    caller = run_caller(tmp_path, "call_uac.xml", transport, proxy)
    assert_all_ok(proxy, caller, callee)


# -- 2. a call that changes transport at the proxy -----------------------------------


@pytest.mark.parametrize(
    ("caller_transport", "callee_transport"),
    [pytest.param("udp", "tcp", id="udp-to-tcp"), pytest.param("tcp", "udp", id="tcp-to-udp")],
)
def test_call_across_transports_is_double_record_routed(
    sipapp_server: StartServer,
    tmp_path: Path,
    callees: list[SippProcess],
    caller_transport: str,
    callee_transport: str,
) -> None:
    """A UDP caller reaches a TCP callee (and back): two r2=on Record-Routes, BYE completes."""
    port = free_callee_port(callee_transport)
    proxy = start_proxy(sipapp_server, tmp_path, [Route((target(port, callee_transport),))])
    callee = start_callee(
        callees, tmp_path, "call_uas_double_rr.xml", callee_transport, port, proxy
    )
    caller = run_caller(tmp_path, "call_uac.xml", caller_transport, proxy)
    assert_all_ok(proxy, caller, callee)


# -- 3. calls that do not connect ------------------------------------------------------


@pytest.mark.parametrize("transport", BOTH)
def test_cancel_while_ringing_ends_with_487(
    sipapp_server: StartServer, tmp_path: Path, callees: list[SippProcess], transport: str
) -> None:
    """A caller hanging up while it rings: the callee gets the CANCEL, the caller a 487."""
    port = free_callee_port(transport)
    proxy = start_proxy(sipapp_server, tmp_path, [Route((target(port, transport),))])
    callee = start_callee(callees, tmp_path, "cancel_uas.xml", transport, port, proxy)
    caller = run_caller(tmp_path, "cancel_uac.xml", transport, proxy)
    assert_all_ok(proxy, caller, callee)


@pytest.mark.parametrize("transport", BOTH)
def test_busy_callee_486_reaches_the_caller(
    sipapp_server: StartServer, tmp_path: Path, callees: list[SippProcess], transport: str
) -> None:
    """A busy callee's 486 is relayed to the caller, and the proxy ACKs the callee."""
    port = free_callee_port(transport)
    proxy = start_proxy(sipapp_server, tmp_path, [Route((target(port, transport),))])
    callee = start_callee(callees, tmp_path, "busy_uas.xml", transport, port, proxy)
    caller = run_caller(
        tmp_path, "rejected_uac.xml", transport, proxy,
        "-key", "max_forwards", "70", "-set", "expect", "486",
    )  # fmt: skip
    assert_all_ok(proxy, caller, callee)


def split_stream(data: bytes) -> list[bytes]:
    """The complete SIP messages in a stream's bytes, framed by Content-Length."""
    messages: list[bytes] = []
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            return messages
        lengths = header_values(head + sep, "Content-Length") or header_values(head + sep, "l")
        length = int(lengths[0]) if lengths else 0
        if len(rest) < length:
            return messages
        messages.append(head + sep + rest[:length])
        data = rest[length:]


class SilentCallee(NamedTuple):
    """A callee that takes requests and never answers: a bound (and listening) socket."""

    sock: socket.socket
    transport: str
    port: int

    def requests(self, timeout: float = 1.0) -> list[bytes]:
        """Every request that reached it, in order (the kernel kept them while nobody read).

        Waits up to ``timeout`` for the first one; the rest must be there already.
        """
        self.sock.settimeout(timeout)
        if self.transport == "udp":
            found = [self.sock.recvfrom(65535)[0]]
            self.sock.setblocking(False)
            while True:
                try:
                    found.append(self.sock.recvfrom(65535)[0])
                except BlockingIOError:
                    return found
        connection, _ = self.sock.accept()
        data = b""
        with connection:
            connection.settimeout(timeout)
            while not split_stream(data):
                try:
                    chunk = connection.recv(65535)
                except TimeoutError:
                    chunk = b""
                if not chunk:
                    pytest.fail(f"no complete request on the TCP connection; got {data!r}")
                data += chunk
            connection.setblocking(False)
            while True:
                try:
                    chunk = connection.recv(65535)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                data += chunk
        return split_stream(data)


@contextmanager
def silent_callee(transport: str) -> Iterator[SilentCallee]:
    """A socket of ``transport`` on a free loopback port that never answers.

    Over UDP the datagrams queue up unread; over TCP the kernel completes the
    proxy's connection (the listen backlog) and buffers what it writes, so
    nobody needs to accept before the test reads it.
    """
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    port = free_callee_port(transport)
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((HOST, port))
        if transport == "tcp":
            sock.listen(4)
        yield SilentCallee(sock, transport, port)


@pytest.mark.parametrize("transport", BOTH)
def test_unanswered_invite_ends_with_408(
    sipapp_server: StartServer, tmp_path: Path, transport: str
) -> None:
    """A callee that never answers: timer B (64*T1 = 3.2 s, TCP too) fires, the caller gets 408.

    Timer A retransmits the INVITE over UDP only: over TCP it is sent once.
    """
    with silent_callee(transport) as silent:
        proxy = start_proxy(
            sipapp_server, tmp_path, [Route((target(silent.port, transport),))], t1=0.05
        )
        caller = run_caller(
            tmp_path, "rejected_uac.xml", transport, proxy,
            "-key", "max_forwards", "70", "-set", "expect", "408",
        )  # fmt: skip
        requests = silent.requests()
    assert_all_ok(proxy, caller)
    invite = requests[0]
    # The static route keeps the user and takes the target's host, port and parameters.
    ruri = target(silent.port, transport).replace("sip:", f"sip:{CALLEE}@", 1)
    assert status_line(invite).startswith(f"INVITE {ruri} "), invite
    assert header_values(invite, "Via")[0].startswith(f"SIP/2.0/{transport.upper()} "), invite
    assert all(request == invite for request in requests), requests
    if transport == "udp":
        assert len(requests) > 1, "timer A never retransmitted the INVITE over UDP"
    else:
        assert len(requests) == 1, f"the INVITE was retransmitted over TCP: {requests}"


# -- 4. forking ------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", BOTH)
def test_parallel_fork_cancels_the_branch_that_did_not_answer(
    sipapp_server: StartServer, tmp_path: Path, callees: list[SippProcess], transport: str
) -> None:
    """Two phones ring at once; one answers, the other gets a CANCEL; the call completes."""
    answering, ringing = free_callee_port(transport), free_callee_port(transport)
    route = Route((target(answering, transport), target(ringing, transport)), serial=False)
    proxy = start_proxy(sipapp_server, tmp_path, [route])
    # The answering phone rings for 300 ms first, so the other one rings too.
    first = start_callee(
        callees, tmp_path, "call_uas.xml", transport, answering, proxy, "-d", "300"
    )
    second = start_callee(callees, tmp_path, "cancel_uas.xml", transport, ringing, proxy)
    caller = run_caller(tmp_path, "call_uac.xml", transport, proxy)
    assert_all_ok(proxy, caller, first, second)


@pytest.mark.parametrize("transport", BOTH)
def test_serial_fork_tries_the_next_target_after_503(
    sipapp_server: StartServer, tmp_path: Path, callees: list[SippProcess], transport: str
) -> None:
    """Serial forking: the first target's 503 stays at the proxy, the second one answers."""
    unavailable, answering = free_callee_port(transport), free_callee_port(transport)
    route = Route((target(unavailable, transport), target(answering, transport)), serial=True)
    proxy = start_proxy(sipapp_server, tmp_path, [route])
    first = start_callee(callees, tmp_path, "unavailable_uas.xml", transport, unavailable, proxy)
    second = start_callee(callees, tmp_path, "call_uas.xml", transport, answering, proxy)
    # call_uac.xml has no place for a 503: seeing one fails the call.
    caller = run_caller(tmp_path, "call_uac.xml", transport, proxy)
    assert_all_ok(proxy, caller, first, second)


# -- 5. a lossy network ----------------------------------------------------------------------


def test_calls_survive_10_percent_packet_loss(
    sipapp_server: StartServer, tmp_path: Path, callees: list[SippProcess]
) -> None:
    """100 calls with 10 % loss at both ends: retransmissions repair at least 99 of them.

    UDP only: loss on a reliable transport is TCP's job. The stream repairs
    it below SIP, and a SIP element retransmits (timers A, E, G) only over an
    unreliable transport (RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1), so a lossy
    TCP run would test the kernel, not the proxy.
    """
    calls = 100
    port = free_callee_port("udp")
    proxy = start_proxy(sipapp_server, tmp_path, [Route((target(port),))], t1=0.1)
    callee = start_callee(
        callees, tmp_path, "loss_uas.xml", "udp", port, proxy, "-lost", "10",
        calls=calls, timeout=40,
    )  # fmt: skip
    stats = tmp_path / "caller-stats.csv"
    caller = run_caller(
        tmp_path, "call_uac.xml", "udp", proxy,
        "-lost", "10", "-r", "20", "-trace_stat", "-stf", str(stats), "-fd", "1",
        calls=calls, timeout=25,
    )  # fmt: skip
    callee.stop()
    row = sipp_stats(stats)
    succeeded, failed = int(row["SuccessfulCall(C)"]), int(row["FailedCall(C)"])
    if succeeded < 0.99 * calls:
        pytest.fail(
            f"{succeeded} of {calls} calls succeeded ({failed} failed, the rest unfinished)\n"
            + caller.describe()
            + "\n=== server log (tail) ===\n"
            + proxy.server.log_text()[-4000:],
            pytrace=False,
        )


# -- 6. loops and hop limits ------------------------------------------------------------------


@pytest.mark.parametrize("transport", BOTH)
def test_request_routed_back_to_the_proxy_gets_482(
    sipapp_server: StartServer, tmp_path: Path, transport: str
) -> None:
    """A static route pointing at the proxy itself: the looping INVITE gets 482 Loop Detected."""
    port = free_port(HOST)
    proxy = start_proxy(
        sipapp_server, tmp_path, [Route((target(port, transport),), user_prefix="99")], port=port
    )
    caller = run_caller(
        tmp_path, "rejected_uac.xml", transport, proxy,
        "-key", "max_forwards", "70", "-set", "expect", "482", user="99123",
    )  # fmt: skip
    assert_all_ok(proxy, caller)


@pytest.mark.parametrize("transport", BOTH)
def test_max_forwards_zero_gets_483(
    sipapp_server: StartServer, tmp_path: Path, transport: str
) -> None:
    """An INVITE with Max-Forwards 0 to a routable user is refused with 483 Too Many Hops."""
    route = Route((target(free_callee_port(transport), transport),))
    proxy = start_proxy(sipapp_server, tmp_path, [route])
    caller = run_caller(
        tmp_path, "rejected_uac.xml", transport, proxy,
        "-key", "max_forwards", "0", "-set", "expect", "483",
    )  # fmt: skip
    assert_all_ok(proxy, caller)


# -- raw exchanges: what SIPp cannot send -------------------------------------------------


def raw_request(method: str, proxy: Proxy, client: socket.socket) -> bytes:
    """A request from ``client`` for the routed callee, sent to the proxy."""
    local = f"{HOST}:{client.getsockname()[1]}"
    return (
        f"{method} sip:{CALLEE}@{proxy.address} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {local};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:caller@{local}>;tag={uuid.uuid4().hex[:8]}\r\n"
        f"To: <sip:{CALLEE}@{proxy.address}>\r\n"
        f"Call-ID: {uuid.uuid4().hex}@e2e\r\n"
        f"CSeq: 1 {method}\r\n"
        f"Contact: <sip:caller@{local}>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def raw_answer(forwarded: bytes, status: str, *, vias: int | None = None) -> bytes:
    """A callee's response to ``forwarded``: its first ``vias`` Vias (all by default)."""
    head = forwarded.split(b"\r\n\r\n", 1)[0].decode()
    lines = [f"SIP/2.0 {status}"]
    seen_vias = 0
    for line in head.split("\r\n")[1:]:
        name = line.split(":", 1)[0].strip().lower()
        if name == "via":
            seen_vias += 1
            if vias is None or seen_vias <= vias:
                lines.append(line)
        elif name == "to":
            lines.append(f"{line};tag=callee1")
        elif name in ("from", "call-id", "cseq"):
            lines.append(line)
    return ("\r\n".join([*lines, "Content-Length: 0", "", ""])).encode()


@pytest.fixture
def raw_ends() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A raw UDP caller and callee on loopback, each with a 2 s receive timeout."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as callee,
    ):
        for sock in (client, callee):
            sock.bind((HOST, 0))
            sock.settimeout(2)
        yield client, callee


def receive_final(client: socket.socket, proxy: Proxy, what: str) -> bytes:
    """The first final (non-1xx) response ``client`` receives; fails with the server log."""
    while True:
        try:
            data, _ = client.recvfrom(65535)
        except TimeoutError:
            pytest.fail(
                f"{what}\n--- server log (tail) ---\n{proxy.server.log_text()[-4000:]}",
                pytrace=False,
            )
        if not status_line(data).startswith("SIP/2.0 1"):
            return data


def test_retransmitted_request_gets_the_forwarded_final_response_again(
    sipapp_server: StartServer, tmp_path: Path, raw_ends: tuple[socket.socket, socket.socket]
) -> None:
    """A UDP client whose 200 was lost retransmits; the proxy repeats the 200 (§17.2.2)."""
    client, callee = raw_ends
    proxy = start_proxy(
        sipapp_server, tmp_path, [Route((target(callee.getsockname()[1]),))], t1=0.1
    )
    request = raw_request("OPTIONS", proxy, client)
    client.sendto(request, (HOST, proxy.port))
    forwarded, proxy_address = callee.recvfrom(65535)
    callee.sendto(raw_answer(forwarded, "200 OK"), proxy_address)
    first = receive_final(client, proxy, "the 200 of the callee never reached the client")
    assert status_line(first).startswith("SIP/2.0 200 "), first
    # The 200 "was lost": the client sends the same request again.
    client.sendto(request, (HOST, proxy.port))
    again = receive_final(
        client, proxy, "the proxy did not repeat the 200 for a retransmitted OPTIONS"
    )
    assert status_line(again).startswith("SIP/2.0 200 "), again
    assert header_values(again, "To") == header_values(first, "To")


def test_final_response_without_the_callers_via_does_not_break_the_proxy(
    sipapp_server: StartServer, tmp_path: Path, raw_ends: tuple[socket.socket, socket.socket]
) -> None:
    """A broken callee drops the caller's Via from its 486: no crash, the caller gets a final."""
    client, callee = raw_ends
    proxy = start_proxy(
        sipapp_server, tmp_path, [Route((target(callee.getsockname()[1]),))], t1=0.1
    )
    client.sendto(raw_request("INVITE", proxy, client), (HOST, proxy.port))
    forwarded, proxy_address = callee.recvfrom(65535)
    # Only the proxy's own Via: nothing left to forward by (§16.7 step 3).
    callee.sendto(raw_answer(forwarded, "486 Busy Here", vias=1), proxy_address)
    final = receive_final(client, proxy, "the caller got no final response for its INVITE")
    assert int(status_line(final).split()[1]) >= 300, final
    # The sipapp_server fixture fails the test if the server logged a traceback.
