"""Server credentials: TLS from --tls-cert/--tls-key, and mutual TLS when --tls-client-ca is set."""

from __future__ import annotations

from pathlib import Path

import grpc

from server.config import Config

__all__ = ["server_credentials"]


def server_credentials(config: Config) -> grpc.ServerCredentials | None:
    """None for plaintext; otherwise SSL credentials that require a client certificate when a client CA is given."""
    if not config.tls_enabled:
        return None
    key, cert = Path(config.tls_key).read_bytes(), Path(config.tls_cert).read_bytes()
    client_ca = Path(config.tls_client_ca).read_bytes() if config.tls_client_ca else None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca,
                                       require_client_auth=client_ca is not None)
