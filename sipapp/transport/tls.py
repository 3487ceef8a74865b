"""TLS context factories for SIP over TLS (RFC 3261 §26.2.1, RFC 5630).

``server_context`` loads a PEM certificate (optionally followed by its chain)
and a PEM private key into a Twisted ``CertificateOptions`` that refuses
protocol versions below the configured minimum (1.2 or 1.3).
``client_context`` is the context for outgoing TLS connections: it does not
verify the peer's certificate yet (a ``tls_verify`` / CA bundle setting is the
planned addition). Nothing here opens a socket.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from twisted.internet.ssl import CertificateOptions, TLSVersion

_VERSIONS = {"1.2": TLSVersion.TLSv1_2, "1.3": TLSVersion.TLSv1_3}


def tls_version(text: str) -> object:
    """The ``TLSVersion`` constant for ``'1.2'`` or ``'1.3'``; ``ValueError`` otherwise."""
    try:
        return _VERSIONS[text.strip()]
    except KeyError:
        raise ValueError(
            f"unsupported TLS minimum version {text!r} (use one of: 1.2, 1.3)"
        ) from None


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as err:
        raise ValueError(f"cannot read TLS {what} {path}: {err.strerror}") from None


def server_context(cert_key: str, private_key: str, min_version: str = "1.2") -> CertificateOptions:
    """A server context from PEM files; ``ValueError`` naming the file when unusable.

    The context is built at once, so a key that does not match the
    certificate is reported here rather than at the first connection.
    """
    version = tls_version(min_version)
    cert_pem = _read(cert_key, "certificate")
    key_pem = _read(private_key, "private key")
    try:
        certificates: list[Any] = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise ValueError(f"no PEM certificate in {cert_key}") from None
    try:
        key: Any = load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as err:
        raise ValueError(f"cannot load TLS private key {private_key}: {err}") from None
    options = CertificateOptions(
        privateKey=key,
        certificate=certificates[0],
        extraCertChain=certificates[1:] or None,
        raiseMinimumTo=version,
    )
    try:
        options.getContext()
    except Exception as err:
        raise ValueError(
            f"TLS certificate {cert_key} does not match key {private_key}: {err}"
        ) from None
    return options


def client_context(min_version: str = "1.2") -> CertificateOptions:
    """The context for outgoing TLS connections (no peer verification yet)."""
    return CertificateOptions(verify=False, raiseMinimumTo=tls_version(min_version))
