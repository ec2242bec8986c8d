"""The certificates of the TLS tests: the harness's own (devstack), which
also serves Kueue's webhooks."""

from devstack.certificates import CertificateAuthority, KeyPair

__all__ = ["CertificateAuthority", "KeyPair"]
