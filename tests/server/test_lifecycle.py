"""Start-up, configuration, persistence across restarts, and graceful shutdown of a real server process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.config import ConfigError, load_config
from styletransfer.v1 import style_transfer_pb2 as pb
from styletransfer.v1 import style_transfer_pb2_grpc as pb_grpc
from tests.helpers import png_bytes, wait_for
from tests.server.test_limits import SLOW

STYLE = png_bytes(32, 32, seed=2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_registered_styles_survive_a_restart(start_server, tmp_path: Path) -> None:
    data = str(tmp_path / "shared-data")
    first = start_server(data_dir=data)
    style_id = first.stub().PutStyle(pb.PutStyleRequest(image=STYLE, style_size=32, display_name="keep")).style_id
    before = first.stub().Stylize(pb.StylizeRequest(content=png_bytes(40, 40, 1),
                                                    styles=[pb.StyleInput(style_id=style_id)]), timeout=60).image
    first.stop()
    second = start_server(data_dir=data)
    stub = second.stub()
    assert stub.GetStyle(pb.GetStyleRequest(style_id=style_id)).display_name == "keep"
    assert [s.style_id for s in stub.ListStyles(pb.ListStylesRequest()).styles] == [style_id]
    after = stub.Stylize(pb.StylizeRequest(content=png_bytes(40, 40, 1), styles=[pb.StyleInput(style_id=style_id)]),
                         timeout=60).image
    assert after == before


def test_config_from_flags_and_environment() -> None:
    env = {"STYLETRANSFER_PORT": "6000", "STYLETRANSFER_RANDOM_WEIGHTS": "true", "STYLETRANSFER_LOG_FORMAT": "json"}
    config = load_config(["--port", "7000", "--max-queue", "3"], env)
    assert (config.port, config.random_weights, config.log_format, config.max_queue) == (7000, True, "json", 3)
    with pytest.raises(ConfigError, match="STYLETRANSFER_WORKERS"):
        load_config([], {"STYLETRANSFER_WORKERS": "many"})
    with pytest.raises(ConfigError, match="--tls-cert and --tls-key"):
        load_config(["--tls-cert", "a.pem"], {})
    with pytest.raises(ConfigError, match="postgresql"):
        load_config(["--job-store", "mysql://x"], {})


def test_missing_adain_weights_start_the_server_with_what_it_has(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "--vgg", str(tmp_path / "vgg_normalised.pth"), "--decoder",
         str(tmp_path / "decoder.pth"), "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0",
         "--data-dir", str(tmp_path / "d")],
        stderr=subprocess.PIPE, text=True,
    )
    log = []
    try:
        for line in proc.stderr:  # ends at "serving", or at exit if the server failed to start
            log.append(line)
            if "serving styletransfer.v1.StyleTransfer" in line:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    text = "".join(log)
    assert "serving styletransfer.v1.StyleTransfer" in text
    assert f"not serving adain: {tmp_path / 'vgg_normalised.pth'} is missing (`make weights` fetches it)" in text


def test_sigterm_drains_calls_in_flight_then_exits_zero(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "--random-weights", "--host", "127.0.0.1", "--port", str(port),
         "--metrics-port", str(metrics_port), "--data-dir", str(tmp_path / "d"), "--grace-period", "60",
         "--log-format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        health = health_pb2_grpc.HealthStub(channel)

        def serving() -> bool:
            try:
                reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                return reply.status == health_pb2.HealthCheckResponse.SERVING
            except grpc.RpcError:
                return False

        wait_for(serving, timeout=120)
        stub = pb_grpc.StyleTransferStub(channel)
        in_flight = ThreadPoolExecutor(1).submit(stub.Stylize, SLOW, timeout=120)
        wait_for(lambda: _inflight(metrics_port) == 1)
        proc.send_signal(signal.SIGTERM)
        reply = in_flight.result()  # the call in flight completes
        assert reply.width == 512
        with pytest.raises(grpc.RpcError) as info:  # new calls are refused while draining or after
            pb_grpc.StyleTransferStub(grpc.insecure_channel(f"127.0.0.1:{port}")).ListModels(
                pb.ListModelsRequest(), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert proc.wait(timeout=60) == 0
        assert '"message": "stopped"' in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _inflight(port: int) -> float:
    import urllib.request

    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return -1
    for line in text.splitlines():
        if line.startswith("styletransfer_inflight_requests "):
            return float(line.split()[1])
    return -1


