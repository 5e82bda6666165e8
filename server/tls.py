"""Server credentials: TLS from --tls-cert/--tls-key, and mutual TLS when --tls-client-ca is set, for the gRPC port
and, with the same files and rules, for the HTTP gateway's port."""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc

from server.config import Config

__all__ = ["http_ssl_context", "server_credentials"]


def server_credentials(config: Config) -> grpc.ServerCredentials | None:
    """None for plaintext; otherwise SSL credentials that require a client certificate when a client CA is given."""
    if not config.tls_enabled:
        return None
    key, cert = Path(config.tls_key).read_bytes(), Path(config.tls_cert).read_bytes()
    client_ca = Path(config.tls_client_ca).read_bytes() if config.tls_client_ca else None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca,
                                       require_client_auth=client_ca is not None)


def http_ssl_context(config: Config) -> ssl.SSLContext | None:
    """The same TLS for HTTP: None for plaintext; a client certificate signed by --tls-client-ca when it is set."""
    if not config.tls_enabled:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key)
    if config.tls_client_ca:
        context.load_verify_locations(config.tls_client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
