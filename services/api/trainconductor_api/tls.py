"""TLS for the gRPC port, from certificate files that are read again when
they change.

gRPC asks for the certificate configuration at every new connection; the
answer is "unchanged" until a file's modification time, size or inode
changes (a Secret volume swaps a symlink; cert-manager rewrites the files).
Connections already open keep the certificate they started with.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import grpc

log = logging.getLogger(__name__)

_Stamp = tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class _Files:
    cert: Path
    key: Path
    client_ca: Path | None

    def paths(self) -> list[Path]:
        return [self.cert, self.key, *([self.client_ca] if self.client_ca else [])]


class ReloadingCertificates:
    def __init__(self, cert: Path, key: Path, client_ca: Path | None = None) -> None:
        self._files = _Files(cert, key, client_ca)
        # At start, unreadable or mismatched files are an error: fail loudly.
        self._stamp = self._stamps()
        self._initial = self._load()

    def server_credentials(self) -> grpc.ServerCredentials:
        # None means "unchanged" to gRPC; the stubs do not say so.
        fetch = cast(Callable[[], grpc.ServerCertificateConfiguration], self.fetch)
        return grpc.dynamic_ssl_server_credentials(
            self._initial,
            fetch,
            # With a client CA every client must present a certificate it
            # signed; gRPC has no "verify if presented" for Python servers.
            require_client_authentication=self._files.client_ca is not None,
        )

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """The new configuration when the files changed, else None (unchanged)."""
        try:
            stamp = self._stamps()
            if stamp == self._stamp:
                return None
            configuration = self._load()
            if self._stamps() != stamp:
                return None  # changed while being read: take it at the next connection
        except Exception as err:  # noqa: BLE001 - called from gRPC's core: never raise
            # A rotation half done (new certificate, old key): keep serving
            # the last good pair and look again at the next connection.
            log.warning(
                "TLS files not reloaded; keeping the previous certificate",
                extra={"error": f"{type(err).__name__}: {str(err)[:200]}"},
            )
            return None
        self._stamp = stamp
        log.info("TLS certificate reloaded", extra={"cert_file": str(self._files.cert)})
        return configuration

    def _stamps(self) -> _Stamp:
        stamps = []
        for path in self._files.paths():
            st = os.stat(path)
            stamps.append((st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(stamps)

    def _load(self) -> grpc.ServerCertificateConfiguration:
        files = self._files
        # The standard library checks that the key belongs to the certificate
        # and that the CA bundle parses, which gRPC would only find out at a
        # handshake.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(files.cert, files.key)
        if files.client_ca:
            context.load_verify_locations(cafile=files.client_ca)
        return grpc.ssl_server_certificate_configuration(
            [(files.key.read_bytes(), files.cert.read_bytes())],
            root_certificates=files.client_ca.read_bytes() if files.client_ca else None,
        )
