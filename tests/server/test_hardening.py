"""Regression tests of issue 16 (hardening), each case against a real server: refused before any work, or served."""

from __future__ import annotations

import io
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image

from styletransfer.v1 import style_transfer_pb2 as pb
from tests.helpers import code_of, encode, make_image, png_bytes
from tests.server.test_train import make_datasets, train_request

INVALID = grpc.StatusCode.INVALID_ARGUMENT
CONTENT = png_bytes(32, 32, 1)
STYLE = png_bytes(32, 32, 2)
INF = float("inf")


def stylize(**fields) -> pb.StylizeRequest:
    return pb.StylizeRequest(**{"content": CONTENT, "styles": [pb.StyleInput(image=STYLE)], "style_size": 32,
                                **fields})


def gatys(**fields) -> pb.GatysRequest:
    return pb.GatysRequest(**{"content": CONTENT, "styles": [pb.StyleInput(image=STYLE)], "iterations": 2,
                              **fields})


# --- 1. cost model: tiny requests that asked for huge work --------------------------------------------------------

def test_style_pixels_after_resizing_are_bounded(start_server) -> None:
    stub = start_server(max_style_pixels=64 * 64).stub()
    sliver = encode(Image.new("RGB", (2000, 1)))  # the 88-byte PNG that became 512 x 1,024,000 pixels
    assert len(sliver) < 100
    assert code_of(lambda: stub.PutStyle(pb.PutStyleRequest(image=sliver), timeout=30)) == INVALID
    assert code_of(lambda: stub.PutStyle(pb.PutStyleRequest(image=sliver, style_size=0), timeout=30)) == INVALID
    big = png_bytes(128, 128)  # style_size 0 keeps 128 x 128: over 64 x 64
    assert code_of(lambda: stub.PutStyle(pb.PutStyleRequest(image=big, style_size=0), timeout=30)) == INVALID
    assert code_of(lambda: stub.PutStyle(pb.PutStyleRequest(image=STYLE, style_size=20000), timeout=30)) == INVALID
    assert code_of(lambda: stub.Stylize(stylize(style_size=20000), timeout=30)) == INVALID
    assert code_of(lambda: stub.Stylize(stylize(styles=[pb.StyleInput(image=sliver)]), timeout=30)) == INVALID
    # at the bound it is served
    assert stub.PutStyle(pb.PutStyleRequest(image=big, style_size=64), timeout=60).width == 64
    assert stub.Stylize(stylize(style_size=64), timeout=60).width == 32


def test_registered_styles_are_bounded_at_the_request_style_size(start_server) -> None:
    stub = start_server(max_style_pixels=64 * 64).stub()
    style = stub.PutStyle(pb.PutStyleRequest(image=STYLE, style_size=32), timeout=60)
    coral = stylize(styles=[pb.StyleInput(style_id=style.style_id)], style_size=20000,
                    color_preservation=pb.COLOR_PRESERVATION_CORAL)  # re-encodes the stored image at 20000 px
    assert code_of(lambda: stub.Stylize(coral, timeout=30)) == INVALID


def test_gatys_sizes_at_every_scale_and_style_counts_are_bounded(start_server) -> None:
    stub = start_server(gatys_max_pixels=128 * 128, max_styles=3).stub()
    start_too_big = gatys(size=64, start_size=6000, num_scales=2)
    assert code_of(lambda: stub.SubmitGatys(start_too_big, timeout=30)) == INVALID
    many = gatys(styles=[pb.StyleInput(image=STYLE, weight=1)] * 4)
    assert code_of(lambda: stub.SubmitGatys(many, timeout=30)) == INVALID
    assert code_of(lambda: stub.Stylize(stylize(styles=[pb.StyleInput(image=STYLE, weight=1)] * 4))) == INVALID
    sliver = gatys(content=png_bytes(2000, 4), size=64)  # 64 x 0 px at its only scale
    assert code_of(lambda: stub.SubmitGatys(sliver, timeout=30)) == INVALID
    assert stub.SubmitGatys(gatys(size=64, start_size=32, num_scales=2), timeout=30).id


def test_train_batch_pixels_are_bounded(start_server, tmp_path: Path) -> None:
    make_datasets(tmp_path / "data" / "datasets")
    stub = start_server(train_max_batch_pixels=4 * 32 * 32).stub()
    assert code_of(lambda: stub.Train(train_request(batch_size=3000), timeout=30)) == INVALID
    assert code_of(lambda: stub.Train(train_request(batch_size=5), timeout=30)) == INVALID
    assert stub.Train(train_request(batch_size=4), timeout=30).id


@pytest.mark.parametrize("fields", [{"style_weight": INF}, {"tv_weight": INF}, {"learning_rate": INF},
                                    {"content_weight": float("nan")}])
def test_gatys_refuses_non_finite_numbers(server, fields) -> None:
    assert code_of(lambda: server.stub().SubmitGatys(gatys(**fields), timeout=30)) == INVALID


@pytest.mark.parametrize("fields", [{"lr": INF}, {"style_weight": INF}, {"lr_decay": float("nan")}])
def test_train_refuses_non_finite_numbers(start_server, tmp_path: Path, fields) -> None:
    make_datasets(tmp_path / "data" / "datasets")
    stub = start_server().stub()
    assert code_of(lambda: stub.Train(train_request(**fields), timeout=30)) == INVALID


def test_stylize_refuses_non_finite_numbers(server) -> None:
    stub = server.stub()
    assert code_of(lambda: stub.Stylize(stylize(alpha=float("nan")), timeout=30)) == INVALID
    two = [pb.StyleInput(image=STYLE, weight=1), pb.StyleInput(image=STYLE, weight=INF)]
    assert code_of(lambda: stub.Stylize(stylize(styles=two), timeout=30)) == INVALID


def test_display_names_are_bounded(server) -> None:
    long_name = pb.PutStyleRequest(image=STYLE, display_name="x" * 257)
    assert code_of(lambda: server.stub().PutStyle(long_name, timeout=30)) == INVALID
    assert server.stub().PutStyle(pb.PutStyleRequest(image=STYLE, display_name="x" * 256)).display_name


def test_put_style_stores_the_image_not_its_trailing_bytes(server, tmp_path: Path) -> None:
    padded = STYLE + b"\0" * 1_000_000
    style = server.stub().PutStyle(pb.PutStyleRequest(image=padded, style_size=32), timeout=60)
    stored = (tmp_path / "data" / "styles" / style.style_id / "image").read_bytes()
    assert style.size_bytes == len(stored) < 10_000
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(stored)).convert("RGB")),
                          np.asarray(Image.open(io.BytesIO(STYLE)).convert("RGB")))


# --- 3. client faults are never INTERNAL --------------------------------------------------------------------------

def test_images_too_small_for_the_networks_are_invalid_not_internal(server) -> None:
    stub = server.stub()
    assert code_of(lambda: stub.Stylize(stylize(content=png_bytes(8, 40)), timeout=30)) == INVALID
    assert code_of(lambda: stub.Stylize(stylize(content=png_bytes(64, 64), content_size=8), timeout=30)) == INVALID
    assert code_of(lambda: stub.Stylize(stylize(style_size=8), timeout=30)) == INVALID
    assert code_of(lambda: stub.PutStyle(pb.PutStyleRequest(image=png_bytes(8, 64), style_size=0))) == INVALID
    assert stub.Stylize(stylize(content=png_bytes(9, 40), style_size=9), timeout=60).width == 9


def test_coral_with_uniform_images_is_served(server) -> None:
    flat = encode(Image.new("RGB", (32, 32), (200, 30, 30)))
    stub = server.stub()
    for fields in ({"content": flat}, {"styles": [pb.StyleInput(image=flat)]}):
        reply = stub.Stylize(stylize(color_preservation=pb.COLOR_PRESERVATION_CORAL, **fields), timeout=60)
        assert reply.width == 32


def test_mpo_camera_jpegs_are_accepted(server) -> None:
    buf = io.BytesIO()
    frames = [make_image(32, 32, 3), make_image(32, 32, 4)]
    frames[0].save(buf, format="MPO", save_all=True, append_images=frames[1:])
    assert Image.open(io.BytesIO(buf.getvalue())).format == "MPO"
    assert server.stub().Stylize(stylize(content=buf.getvalue()), timeout=60).width == 32


def test_pillow_limit_is_set_once_and_never_toggled(server) -> None:
    from model.images import decode_image

    assert server.config.max_image_pixels == Image.MAX_IMAGE_PIXELS
    decode_image(CONTENT, field="content", max_pixels=10**9)
    assert server.config.max_image_pixels == Image.MAX_IMAGE_PIXELS
