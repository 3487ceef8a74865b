"""Send every torture message to a live server inside a private network namespace.

Run only as ``unshare -n sh -c 'ip link set lo up && exec python torture_driver.py OUT'``
(``tests/e2e/test_torture_live.py`` does this): the messages name hosts such
as example.com and 192.0.2.x, and in a namespace with nothing but loopback no
reply or forward can leave the machine whatever the server does.

For each message the driver binds the UDP port its top Via names (5060 by
default, 5061 for TLS) on 127.0.0.1, so a response sent by RFC 3261 §18.2.2
(received + sent-by port) arrives there, sends the message from that socket,
then sends an OPTIONS probe from the same socket. The server handles
datagrams in order, so once the probe's 200 arrives every response to the
message has arrived too: no fixed waits. The results go to OUT as JSON.
"""

from __future__ import annotations

import json
import os
import select
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import REPO_ROOT, ServerProcess

TORTURE = REPO_ROOT / "tests" / "data" / "torture"
SERVER_PORT = 15060
LISTEN_PORTS = (5060, 5061, 6050, 19823)
DEADLINE = 5.0


def message_file(file: str) -> Path:
    """The wire form of a corpus file (RFC 5118 messages in their CRLF variant)."""
    if file.startswith("rfc5118/"):
        return TORTURE / "rfc5118-wire" / (Path(file).name + ".dat")
    return TORTURE / file


def via_port(data: bytes) -> int:
    """The port a §18.2.2 response to ``data`` goes to: the top Via's, or its default."""
    for line in data.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"via", b"v"):
            text = value.decode("latin-1")
            transport = text.split("/")[-1].split()[0].upper() if text.count("/") >= 2 else ""
            sent_by = text.split(";")[0].split(",")[0].split()[-1] if text.split() else ""
            if sent_by.startswith("["):
                port = sent_by.rpartition("]")[2].lstrip(":")
            else:
                port = sent_by.rpartition(":")[2] if ":" in sent_by else ""
            if port.isdigit() and int(port) in LISTEN_PORTS:
                return int(port)
            return 5061 if transport == "TLS" else 5060
    return 5060


def probe(port: int, n: int) -> bytes:
    """An OPTIONS to the server itself from ``127.0.0.1:port``."""
    return (
        f"OPTIONS sip:127.0.0.1:{SERVER_PORT} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-probe-{n};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@127.0.0.1>;tag=p{n}\r\n"
        f"To: <sip:127.0.0.1:{SERVER_PORT}>\r\n"
        f"Call-ID: probe-{n}@127.0.0.1\r\n"
        f"CSeq: {n} OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def exchange(
    sockets: dict[int, socket.socket], port: int, data: bytes, n: int
) -> dict[str, object]:
    """Send ``data`` then a probe from ``port``; collect replies until the probe's answer."""
    target = ("127.0.0.1", SERVER_PORT)
    sockets[port].sendto(data, target)
    sockets[port].sendto(probe(port, n), target)
    replies: list[dict[str, object]] = []
    deadline = time.monotonic() + DEADLINE
    alive = False
    while time.monotonic() < deadline and not alive:
        ready, _, _ = select.select(list(sockets.values()), [], [], 0.1)
        for sock in ready:
            reply, _ = sock.recvfrom(65536)
            head = reply.split(b"\r\n", 1)[0].decode("utf-8", "replace")
            if f"probe-{n}@".encode() in reply:
                alive = head.startswith("SIP/2.0 200")
                continue
            replies.append({"port": sock.getsockname()[1], "status_line": head})
    return {"alive": alive, "replies": replies}


def main(out: str) -> int:
    """Run the corpus against a fresh server; write the results to ``out``."""
    rows = [line.rstrip("\n").split("\t") for line in (TORTURE / "EXPECTED.tsv").open()][1:]
    files = [(row[0], message_file(row[4])) for row in rows]
    files.append(("baddn-derived", TORTURE / "rfc4475-derived" / "baddn.dat"))
    workdir = Path(tempfile.mkdtemp(prefix="sipapp-torture-"))
    server = ServerProcess([f"--listen=udp:127.0.0.1:{SERVER_PORT}"], workdir)
    server.start()
    results: dict[str, object] = {}
    sockets: dict[int, socket.socket] = {}
    try:
        server.wait_ready()
        for port in LISTEN_PORTS:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", port))
            sockets[port] = sock
        for n, (name, path) in enumerate(files, start=1):
            data = path.read_bytes()
            results[name] = exchange(sockets, via_port(data), data, n)
    finally:
        for sock in sockets.values():
            sock.close()
        code = server.stop()
        results["_server"] = {"exit_code": code, "log": server.log_text()[-20000:]}
    Path(out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    if os.environ.get("SIPAPP_NETNS") != "1":
        sys.exit("refusing to run outside a private network namespace (SIPAPP_NETNS=1)")
    sys.exit(main(sys.argv[1]))
