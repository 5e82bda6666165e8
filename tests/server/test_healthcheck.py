"""``python -m server.healthcheck``, the Docker image's HEALTHCHECK, against a real server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from grpc_health.v1 import health_pb2

from server.healthcheck import check
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_serving_draining_and_unreachable_servers(server) -> None:
    env = os.environ | {"PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'clients' / 'generated'}"}
    done = subprocess.run([sys.executable, "-m", "server.healthcheck", "--target", server.target], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    server._run(server.server.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING))
    assert check(server.target) == 1
    assert check(f"127.0.0.1:{free_port()}", timeout=1.0) == 2
