"""Tests for sipapp.transport.tls: contexts load from PEM files and refuse old TLS versions."""

from __future__ import annotations

import contextlib
import ssl
from pathlib import Path

import pytest
from OpenSSL import SSL
from twisted.internet.ssl import CertificateOptions

from sipapp.testing import write_self_signed
from sipapp.transport.tls import client_context, server_context, tls_version

# The clients below must really offer TLS 1.0 / 1.1 to prove the server refuses them.
pytestmark = pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")


class Outcome:
    """How a handshake over memory buffers ended on each side."""

    def __init__(self) -> None:
        self.client_version: str | None = None
        self.client_error: Exception | None = None
        self.server_error: Exception | None = None
        self.server_saw_bytes = False


def handshake(server: CertificateOptions, client: ssl.SSLContext) -> Outcome:
    """Run a TLS handshake between ``server`` and ``client`` without any socket."""
    outcome = Outcome()
    conn = SSL.Connection(server.getContext(), None)
    conn.set_accept_state()
    to_client, to_server = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client.wrap_bio(to_client, to_server)
    for _ in range(20):
        if outcome.client_error is None and outcome.client_version is None:
            try:
                tls.do_handshake()
                outcome.client_version = tls.version()
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as err:
                outcome.client_error = err
        data = to_server.read()
        if data:
            outcome.server_saw_bytes = True
            conn.bio_write(data)
        if outcome.server_error is None:
            try:
                conn.do_handshake()
            except SSL.WantReadError:
                pass
            except SSL.Error as err:
                outcome.server_error = err
        try:
            to_client.write(conn.bio_read(65536))
        except SSL.WantReadError:
            if outcome.client_version is not None or outcome.client_error is not None:
                break
    return outcome


def client(
    maximum: ssl.TLSVersion, minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1
) -> ssl.SSLContext:
    """A non-verifying client limited to [minimum, maximum] that really offers old versions."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = minimum
    context.maximum_version = maximum
    return context


@pytest.fixture
def pem(tmp_path: Path) -> tuple[str, str]:
    """A self-signed certificate and key in tmp_path."""
    return write_self_signed(tmp_path)


def test_server_context_handshakes_tls12_and_13(pem: tuple[str, str]) -> None:
    """A context from the PEM files completes TLS 1.2 and TLS 1.3 handshakes."""
    context = server_context(*pem)
    assert handshake(context, client(ssl.TLSVersion.TLSv1_2)).client_version == "TLSv1.2"
    assert handshake(context, client(ssl.TLSVersion.TLSv1_3)).client_version == "TLSv1.3"


def test_server_refuses_tls11(pem: tuple[str, str]) -> None:
    """A client that offers at most TLS 1.1 is refused by the server."""
    outcome = handshake(server_context(*pem), client(ssl.TLSVersion.TLSv1_1))
    assert outcome.client_version is None
    assert outcome.server_saw_bytes
    assert outcome.server_error is not None


def test_minimum_13_refuses_tls12(pem: tuple[str, str]) -> None:
    """With tls_min_version 1.3 a TLS 1.2 client is refused."""
    context = server_context(*pem, min_version="1.3")
    outcome = handshake(context, client(ssl.TLSVersion.TLSv1_2))
    assert outcome.client_version is None
    assert outcome.server_error is not None


def test_certificate_chain_is_loaded(tmp_path: Path) -> None:
    """Certificates after the first in the certKey file become the extra chain."""
    cert, key = write_self_signed(tmp_path, "leaf")
    other, _ = write_self_signed(tmp_path, "ca")
    Path(cert).write_bytes(Path(cert).read_bytes() + Path(other).read_bytes())
    context = server_context(cert, key)
    assert len(context.extraCertChain) == 1
    assert handshake(context, client(ssl.TLSVersion.TLSv1_3)).client_version == "TLSv1.3"


def test_bad_files_raise_value_error(tmp_path: Path, pem: tuple[str, str]) -> None:
    """Missing or mismatched files raise ValueError naming the file."""
    cert, key = pem
    with pytest.raises(ValueError, match=r"nope\.pem"):
        server_context(str(tmp_path / "nope.pem"), key)
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"empty\.pem"):
        server_context(str(empty), key)
    _, other_key = write_self_signed(tmp_path, "other")
    with pytest.raises(ValueError, match=r"\.crt"):
        server_context(cert, other_key)


def test_versions() -> None:
    """Only 1.2 and 1.3 are accepted as minimum versions."""
    with pytest.raises(ValueError, match=r"1\.1"):
        tls_version("1.1")
    with pytest.raises(ValueError):
        client_context("1.0")


def test_client_context_talks_to_server(pem: tuple[str, str]) -> None:
    """The outgoing client context (no verification) completes a handshake."""
    server = SSL.Connection(server_context(*pem).getContext(), None)
    server.set_accept_state()
    outgoing = SSL.Connection(client_context().getContext(), None)
    outgoing.set_connect_state()
    for _ in range(10):
        for side in (outgoing, server):
            with contextlib.suppress(SSL.WantReadError):
                side.do_handshake()
        for a, b in ((outgoing, server), (server, outgoing)):
            with contextlib.suppress(SSL.WantReadError):
                b.bio_write(a.bio_read(65536))
    assert outgoing.get_protocol_version_name() in ("TLSv1.2", "TLSv1.3")
    assert server.get_peer_finished() is not None
