"""The cost model (server/costs.py) at its edges: exactly at a bound passes, one past it is refused."""

from __future__ import annotations

import tracemalloc

import pytest

from model.adain import CAPABILITIES as ADAIN
from server.config import Config
from server.costs import (
    MAX_DISPLAY_NAME,
    check_content,
    check_display_name,
    check_finite,
    check_gatys_scale,
    check_style,
    check_style_count,
    check_train_batch,
    shown,
)
from server.errors import InvalidArgument
from styletransfer.v1 import style_transfer_pb2 as pb

CONFIG = Config(max_style_pixels=512 * 1024, max_output_pixels=1024 * 1024, gatys_max_pixels=256 * 256,
                max_styles=3, train_max_batch_pixels=8 * 256 * 256)


def test_style_pixels_are_counted_after_resizing() -> None:
    assert check_style("s", 1024, 2048, 512, CONFIG, 1) == (512, 1024)  # exactly at the bound
    with pytest.raises(InvalidArgument, match="over the limit"):
        check_style("s", 1024, 2050, 512, CONFIG, 1)  # 512 x 1025: one row too many
    with pytest.raises(InvalidArgument, match="1024000"):
        check_style("s", 2000, 1, 512, CONFIG, 1)  # the 88-byte PNG that became 512 x 1,024,000
    with pytest.raises(InvalidArgument, match="over the limit"):
        check_style("s", 4096, 4096, 0, CONFIG, 1)  # style_size 0 keeps the (allowed) source size: too big to encode
    with pytest.raises(InvalidArgument, match="over the limit"):
        check_style("s", 64, 64, 20000, CONFIG, 1)  # a huge style_size on a small image


def test_images_need_the_shorter_side_the_models_network_takes() -> None:
    side = ADAIN.min_side
    assert check_content("c", side, 40, 0, CONFIG, side) == (side, 40)
    with pytest.raises(InvalidArgument, match="at least 9 px"):
        check_content("c", side - 1, 40, 0, CONFIG, side)
    with pytest.raises(InvalidArgument, match="at least 9 px"):
        check_style("s", 64, 64, 8, CONFIG, side)  # resized down to 8 px
    assert check_content("c", 2, 3, 0, CONFIG, 1) == (2, 3)  # a model whose network takes any size


def test_content_output_bound() -> None:
    assert check_content("c", 64, 64, 1024, CONFIG, 1) == (1024, 1024)
    with pytest.raises(InvalidArgument, match="content_size"):
        check_content("c", 64, 65, 1024, CONFIG, 1)


def test_every_gatys_scale_is_bounded() -> None:
    assert check_gatys_scale("scale 0", 64, 64, 256, CONFIG) == (256, 256)
    with pytest.raises(InvalidArgument, match="over the limit"):
        check_gatys_scale("scale 0", 64, 64, 6000, CONFIG)  # start_size 6000 with a 64 px final size
    with pytest.raises(InvalidArgument, match="at least 40 px"):
        check_gatys_scale("scale 0", 2000, 1, 64, CONFIG)


def test_counts_batches_and_strings() -> None:
    check_style_count(3, CONFIG)
    with pytest.raises(InvalidArgument, match="at most 3"):
        check_style_count(4, CONFIG)
    check_train_batch(8, 256, CONFIG)
    with pytest.raises(InvalidArgument, match="per step"):
        check_train_batch(3000, 256, CONFIG)
    check_display_name("x" * MAX_DISPLAY_NAME)
    with pytest.raises(InvalidArgument, match="display_name"):
        check_display_name("x" * (MAX_DISPLAY_NAME + 1))


def test_non_finite_numbers_are_refused_in_nested_fields_too() -> None:
    check_finite(pb.GatysRequest(style_weight=1e30, styles=[pb.StyleInput(weight=2.0)]))
    for request in (pb.GatysRequest(style_weight=float("inf")), pb.GatysRequest(tv_weight=float("nan")),
                    pb.GatysRequest(learning_rate=float("-inf")), pb.TrainRequest(lr=float("inf")),
                    pb.TrainRequest(style_weight=float("nan")), pb.TrainRequest(pixel_weight=float("inf")),
                    pb.StylizeRequest(styles=[pb.StyleInput(), pb.StyleInput(weight=float("inf"))])):
        with pytest.raises(InvalidArgument, match="finite"):
            check_finite(request)


def test_finite_check_reads_no_bytes_field() -> None:
    """Each read of a bytes field copies it: the check of a request at the message limit must not copy its images."""
    image = bytes(8 << 20)
    request = pb.StylizeRequest(content=image, styles=[pb.StyleInput(image=image, mask=image, weight=1.0)])
    tracemalloc.start()
    try:
        check_finite(request)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < len(image) // 8, peak


def test_shown_strings_are_bounded_and_escaped() -> None:
    assert shown("evil-id\nINFO forged") == repr("evil-id\nINFO forged")
    assert "\n" not in shown("a\nb")
    assert len(shown("x" * 1_000_000)) < 80
