"""Telling a wrong ``--security`` from an unreachable server: what the port speaks, by its first bytes.

The two mistakes look alike from inside a client and unlike the truth. With ``starttls`` or
``plain`` against an implicit-TLS port (993) the client waits for a greeting while the server
waits for a TLS hello, until the greeting times out: "cannot reach". With ``tls`` against a
plain port (143) the server's greeting arrives where a TLS record was expected: "wrong version
number". A second, short connection settles it: a plain port greets with ``* OK`` on its own; an
implicit-TLS port completes a TLS handshake. The probe logs in to nothing and sends no secret.
"""

from __future__ import annotations

import socket
import ssl

__all__ = ["PROBE_SECONDS", "security_hint"]

PROBE_SECONDS = 3.0
_GREETINGS = (b"* OK", b"* PREAUTH", b"* BYE")


def security_hint(host: str, port: int, security: str, timeout: float = PROBE_SECONDS) -> str | None:
    """Why a connection made with ``security`` failed, when the port speaks the other way; None
    when the probe finds nothing of the kind (the original error then stands)."""
    address = f"{host}:{port}"
    if security == "tls":
        if _greets_in_plain_text(host, port, timeout):
            return (f"{address} speaks plain IMAP (it sent a greeting before any TLS): it is a STARTTLS "
                    f"port, not an implicit-TLS one; use --security starttls with this port, or "
                    f"--security tls with the server's TLS port (usually 993)")
        return None
    if _completes_tls_handshake(host, port, timeout):
        return (f"{address} expects TLS from the first byte (implicit TLS) and sent no IMAP greeting: use "
                f"--security tls with this port, or --security {security} with the server's plain port "
                f"(usually 143)")
    return None


def _greets_in_plain_text(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            return sock.recv(16).startswith(_GREETINGS)
    except OSError:
        return False


def _completes_tls_handshake(host: str, port: int, timeout: float) -> bool:
    # Only "does it speak TLS at all": no certificate is trusted or even looked at, and nothing
    # is sent over the connection once the handshake is done.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host):
            return True
    except (OSError, ssl.SSLError):
        return False
