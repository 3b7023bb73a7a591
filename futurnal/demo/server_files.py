"""Files a throwaway IMAP server needs from its owner: a certificate and a reachable directory."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

__all__ = ["require_searchable", "self_signed_certificate"]


def self_signed_certificate(cert_path: Path, key_path: Path) -> None:
    """A certificate for 127.0.0.1 and localhost that is its own CA (clients pass it as --cafile).

    Kept when both files exist, so a restarted server presents the same certificate.
    """
    if cert_path.exists() and key_path.exists():
        return
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl is not installed: run `apt-get install openssl` as root")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "365", "-subj", "/CN=localhost",
         "-keyout", str(key_path), "-out", str(cert_path),
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,digitalSignature,keyCertSign"],
        check=True, capture_output=True, timeout=30,
    )
    key_path.chmod(0o600)


def require_searchable(root: Path, who: str) -> None:
    """As root, servers drop to unprivileged users, who must be able to traverse down to ``root``."""
    for path in (root, *root.parents):
        if not path.stat().st_mode & stat.S_IXOTH:
            raise RuntimeError(
                f"{path} is not searchable by other users, so {who} cannot reach {root}: "
                "`chmod o+x` it or use another root"
            )
