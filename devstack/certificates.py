"""Real X.509 certificates made with the `openssl` CLI: a CA, server
certificates for the loopback address, client certificates. The TLS tests
use them, and so does Kueue's manager for its webhooks and visibility API."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


def _openssl(*args: str) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise RuntimeError("openssl is not installed: `apt-get install openssl`")
    result = subprocess.run([binary, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr[-1000:]}")


class CertificateAuthority:
    def __init__(
        self, directory: Path, name: str = "test-ca", days: int = 2, *, generate: bool = True
    ) -> None:
        """A new CA in `directory`; with `generate=False`, the one already
        there (`<name>.pem`, `<name>.key`)."""
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.cert = directory / f"{name}.pem"
        self.key = directory / f"{name}.key"
        if not generate:
            return
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days),
            "-keyout", str(self.key), "-out", str(self.cert), "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip

    def server(
        self, name: str, hosts: tuple[str, ...] = ("localhost", "127.0.0.1"), days: int = 1
    ) -> KeyPair:
        names = ",".join(f"IP:{h}" if h[0].isdigit() else f"DNS:{h}" for h in hosts)
        return self._issue(
            name, f"/CN={hosts[0]}", f"subjectAltName={names}\nextendedKeyUsage=serverAuth\n", days
        )

    def client(self, common_name: str, organizations: tuple[str, ...] = ()) -> KeyPair:
        subject = "".join(f"/O={o}" for o in organizations) + f"/CN={common_name}"
        return self._issue(common_name, subject, "extendedKeyUsage=clientAuth\n", 1)

    def _issue(self, name: str, subject: str, extensions: str, days: int) -> KeyPair:
        stem = self.directory / f"{name}-{uuid.uuid4().hex[:6]}"
        key, csr, cert = (
            stem.with_suffix(".key"),
            stem.with_suffix(".csr"),
            stem.with_suffix(".pem"),
        )
        ext = stem.with_suffix(".ext")
        ext.write_text(extensions)
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
                 "-subj", subject)  # fmt: skip
        _openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
            "-set_serial", str(uuid.uuid4().int >> 64), "-days", str(days), "-out", str(cert),
            "-extfile", str(ext),
        )  # fmt: skip
        return KeyPair(cert, key)
