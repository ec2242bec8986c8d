"""The certificates of the TLS tests: the harness's own authority and key
pairs (devstack, which also serves Kueue's webhooks), and the set the
integration tests share."""

from __future__ import annotations

from dataclasses import dataclass

from devstack.certificates import CertificateAuthority, KeyPair

__all__ = ["CertificateAuthority", "Certificates", "KeyPair"]


@dataclass(frozen=True)
class Certificates:
    ca: CertificateAuthority
    server: KeyPair
    alice: KeyPair  # CN=alice, O=ml
    admin: KeyPair  # CN=root-of-all, O=tc-admins
    rogue_ca: CertificateAuthority  # trusted by nobody
    rogue_alice: KeyPair  # CN=alice, signed by the rogue CA

    def server_tls(self) -> dict[str, object]:
        """API settings for TLS with the server's certificate."""
        return {"tls_cert_file": self.server.cert, "tls_key_file": self.server.key}

    def mtls(self) -> dict[str, object]:
        """API settings for TLS that also checks client certificates against
        the CA and takes their subject as the caller (auth mode `mtls`)."""
        return {**self.server_tls(), "tls_client_ca_file": self.ca.cert, "auth_modes": ["mtls"]}
