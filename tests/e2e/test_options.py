"""End to end: the real server answers OPTIONS on every transport and shuts down cleanly.

The server runs as ``twistd -n sipapp`` on free loopback ports. SIPp drives
UDP and TCP; TLS is driven by Python's ``ssl`` module (the SIPp build here
has no TLS) with a throw-away self-signed certificate; raw sockets send what
a well-behaved client never would (malformed requests, stray responses).
"""

from __future__ import annotations

import socket
import ssl
import uuid
import warnings
from pathlib import Path

import pytest

from sipapp.testing import write_self_signed
from tests.e2e.harness import (
    ServerProcess,
    StartServer,
    family_of,
    free_port,
    header_values,
    host_for_uri,
    listen_arg,
    read_stream_message,
    run_sipp,
    sip_options,
    sipp_scenario,
    status_line,
    udp_exchange,
)

pytestmark = pytest.mark.e2e

HOSTS = [pytest.param("127.0.0.1", id="ipv4"), pytest.param("::1", id="ipv6")]


def start_udp_tcp(sipapp_server: StartServer, host: str) -> tuple[ServerProcess, int]:
    """A server listening on UDP and TCP at the same free port of ``host``."""
    port = free_port(host)
    server = sipapp_server(
        "--listen", listen_arg("udp", host, port), "--listen", listen_arg("tcp", host, port)
    )
    return server, port


@pytest.mark.parametrize("sipp_transport", ["u1", "t1"], ids=["udp", "tcp"])
@pytest.mark.parametrize("host", HOSTS)
def test_sipp_options_gets_200_with_allow(
    sipapp_server: StartServer, tmp_path: Path, host: str, sipp_transport: str
) -> None:
    """SIPp's OPTIONS (UDP/TCP, IPv4/IPv6) gets a 200 whose Allow lists INVITE and OPTIONS."""
    _, port = start_udp_tcp(sipapp_server, host)
    run = run_sipp(
        [
            f"{host_for_uri(host)}:{port}",
            "-sf",
            str(sipp_scenario("options_uac.xml")),
            "-t",
            sipp_transport,
            "-i",
            host,
            "-p",
            str(free_port(host)),
        ],
        workdir=tmp_path / "sipp",
        timeout=10,
    )
    run.assert_ok()


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and ::1 and its key, as PEM files."""
    cert, key = write_self_signed(tmp_path, "sipapp-e2e")
    return Path(cert), Path(key)


def start_tls(
    sipapp_server: StartServer, host: str, tls_files: tuple[Path, Path]
) -> tuple[ServerProcess, int]:
    """A server listening on TLS only at a free port of ``host``."""
    cert_path, key_path = tls_files
    port = free_port(host, ("tcp",))
    server = sipapp_server(
        "--listen",
        listen_arg("tls", host, port, certKey=str(cert_path), privateKey=str(key_path)),
    )
    return server, port


@pytest.mark.parametrize("host", HOSTS)
def test_tls_options_gets_200(
    sipapp_server: StartServer, tls_files: tuple[Path, Path], host: str
) -> None:
    """An OPTIONS over TLS (certificate checked for the loopback IP) gets a 200 back on it."""
    _, port = start_tls(sipapp_server, host, tls_files)
    context = ssl.create_default_context(cafile=str(tls_files[0]))
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as conn,
    ):
        local_host, local_port = conn.getsockname()[:2]
        call_id = f"{uuid.uuid4().hex}@e2e"
        conn.sendall(sip_options(host, port, local_host, local_port, "TLS", call_id=call_id))
        reply = read_stream_message(conn)
    assert status_line(reply).startswith("SIP/2.0 200 "), reply
    assert header_values(reply, "Call-ID") == [call_id]
    assert header_values(reply, "CSeq") == ["1 OPTIONS"]


@pytest.mark.parametrize("host", HOSTS)
def test_tls_refuses_tls_1_1(
    sipapp_server: StartServer, tls_files: tuple[Path, Path], host: str
) -> None:
    """A client that offers only TLS 1.1 gets a protocol_version alert: 1.2 is the minimum."""
    _, port = start_tls(sipapp_server, host, tls_files)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    # Security level 0 lets this OpenSSL offer TLS 1.1 at all: the refusal
    # below then comes from the server, not from the client's own policy.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        pytest.raises(ssl.SSLError) as refused,
    ):
        context.wrap_socket(raw).close()
    assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", refused.value


def test_sigterm_stops_with_exit_code_0(sipapp_server: StartServer) -> None:
    """SIGTERM makes the server close its sockets and exit with status 0, without a traceback."""
    server, port = start_udp_tcp(sipapp_server, "127.0.0.1")
    code = server.stop()
    log = server.log_text()
    assert "Traceback" not in log, log
    assert code == 0, f"exit code {code}\n--- server log ---\n{log}"
    # The ports are free again: nothing was left bound.
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind(("127.0.0.1", port))


def test_malformed_request_gets_400_naming_the_problem(sipapp_server: StartServer) -> None:
    """A request with a malformed CSeq over UDP gets a 400 whose reason phrase names CSeq."""
    host = "127.0.0.1"
    _, port = start_udp_tcp(sipapp_server, host)

    def build(local_host: str, local_port: int) -> bytes:
        good = sip_options(host, port, local_host, local_port)
        return good.replace(b"CSeq: 1 OPTIONS", b"CSeq: one OPTIONS")

    reply = udp_exchange(host, port, build, timeout=5)
    assert reply is not None, "no answer to a malformed request"
    line = status_line(reply)
    assert line.startswith("SIP/2.0 400 "), line
    assert "cseq" in line.lower(), line


@pytest.mark.parametrize("host", HOSTS)
def test_stray_response_is_dropped(sipapp_server: StartServer, host: str) -> None:
    """A response matching no transaction (top Via not ours) is dropped; the server answers on."""
    _, port = start_udp_tcp(sipapp_server, host)
    family = family_of(host)
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        local_port = sock.getsockname()[1]
        local = f"{host_for_uri(host)}:{local_port}"
        stray = (
            "SIP/2.0 200 OK\r\n"
            f"Via: SIP/2.0/UDP {local};branch=z9hG4bKstray{uuid.uuid4().hex[:12]}\r\n"
            f"From: <sip:a@{local}>;tag=1\r\n"
            f"To: <sip:b@{host_for_uri(host)}:{port}>;tag=2\r\n"
            f"Call-ID: stray-{uuid.uuid4().hex}\r\n"
            "CSeq: 1 INVITE\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        sock.sendto(stray, (host, port))
        # Datagrams from one socket are handled in order: if the stray
        # response produced anything, it would arrive before this answer.
        call_id = f"{uuid.uuid4().hex}@e2e"
        sock.sendto(sip_options(host, port, host, local_port, call_id=call_id), (host, port))
        sock.settimeout(5)
        reply, _ = sock.recvfrom(65535)
    assert status_line(reply).startswith("SIP/2.0 200 "), reply
    assert header_values(reply, "Call-ID") == [call_id], reply
