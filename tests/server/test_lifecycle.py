"""Start-up, configuration, persistence across restarts, and graceful shutdown of a real server process."""

from __future__ import annotations

import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from server.config import ConfigError, load_config
from styletransfer.v1 import style_transfer_pb2 as pb
from styletransfer.v1 import style_transfer_pb2_grpc as pb_grpc
from tests.helpers import free_port, png_bytes, random_weights_args, server_process, wait_for

STYLE = png_bytes(32, 32, seed=2)
# Upscaled on the server to 512 px: a call that is still computing when SIGTERM comes on most machines (the test
# holds either way: a call that finished before the signal is not in flight, and new calls are refused after it).
IN_FLIGHT = pb.StylizeRequest(content=png_bytes(64, 64, 1), styles=[pb.StyleInput(image=png_bytes(32, 32, 2))],
                              content_size=512, style_size=32)


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


@pytest.mark.slow  # a server process
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


@pytest.mark.slow  # a server process
def test_sigterm_drains_calls_in_flight_then_exits_zero(tmp_path: Path) -> None:
    port, metrics_port, log = free_port(), free_port(), tmp_path / "server.log"
    args = random_weights_args(tmp_path / "d", port, "--metrics-port", str(metrics_port), "--grace-period", "60",
                               "--log-format", "json")
    with server_process(args, port, log, timeout=120) as node:
        in_flight = ThreadPoolExecutor(1).submit(node.stub.Stylize, IN_FLIGHT, timeout=120)
        wait_for(lambda: _inflight(metrics_port) == 1)
        node.proc.send_signal(signal.SIGTERM)
        reply = in_flight.result()  # the call in flight completes
        assert reply.width == 512
        with pytest.raises(grpc.RpcError) as info:  # new calls are refused while draining or after
            pb_grpc.StyleTransferStub(grpc.insecure_channel(f"127.0.0.1:{port}")).ListModels(
                pb.ListModelsRequest(), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert node.proc.wait(timeout=60) == 0
    assert '"message": "stopped"' in log.read_text()


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


