"""``python -m server.healthcheck``: exits 0 when the server answers SERVING on the standard gRPC health service.

The Docker image's HEALTHCHECK runs it (a ``grpc_health_probe`` without another binary). It reaches the server the
container runs: ``127.0.0.1`` on ``STYLETRANSFER_PORT`` (default 50051), plaintext unless ``--ca-cert`` is given
(with ``--cert``/``--key`` when the server requires client certificates). Exit 1 for NOT_SERVING (e.g. draining),
2 when the server cannot be reached in ``--timeout`` seconds. Imports grpc only, so it starts in a fraction of a second.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = ["check", "main"]


def check(target: str, *, service: str = "", timeout: float = 5.0,
          credentials: grpc.ChannelCredentials | None = None) -> int:
    """0 when ``target`` reports ``service`` SERVING, 1 when it reports anything else, 2 when it does not answer."""
    channel = grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                              timeout=timeout)
        except grpc.RpcError as exc:
            print(f"unhealthy: {target}: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 2
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        print(f"unhealthy: {target}: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}",
              file=sys.stderr)
        return 1
    return 0


def _credentials(args: argparse.Namespace) -> grpc.ChannelCredentials | None:
    if not args.ca_cert:
        return None

    def read(path: str | None) -> bytes | None:
        return Path(path).read_bytes() if path else None

    return grpc.ssl_channel_credentials(read(args.ca_cert), read(args.key), read(args.cert))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default=f"127.0.0.1:{os.environ.get('STYLETRANSFER_PORT', '50051')}",
                        help="host:port of the server (default 127.0.0.1:$STYLETRANSFER_PORT or :50051)")
    parser.add_argument("--service", default="", help="service name to check ('' is the whole server)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the answer")
    parser.add_argument("--ca-cert", help="PEM CA bundle: connect with TLS and trust it")
    parser.add_argument("--cert", help="PEM client certificate, for a server that requires one (mTLS)")
    parser.add_argument("--key", help="PEM key of --cert")
    args = parser.parse_args(argv)
    return check(args.target, service=args.service, timeout=args.timeout, credentials=_credentials(args))


if __name__ == "__main__":
    raise SystemExit(main())
