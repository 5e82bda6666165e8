"""AdaINModel options, caching, masks, colour modes, sizes, devices, pairing and cancellation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from model.adain.stylizer import AdaINModel
from model.color import rgb_to_yiq
from model.errors import Cancelled, IncompatibleModelError, InvalidOptionError
from model.family import ColorMode, StyleCode, StyleSource, StylizeOptions
from model.images import image_to_tensor
from model.network import build_vgg_sequential
from model.weights import random_decoder_state, random_vgg_state, save_decoder_checkpoint
from tests.helpers import make_image

pytestmark = pytest.mark.slow  # AdaIN passes at test sizes, seconds each on a CPU

CONTENT = make_image(45, 37, seed=1)
STYLE = make_image(40, 48, seed=2)
STYLE2 = make_image(56, 32, seed=3)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(int)


@pytest.mark.parametrize("size", [(45, 37), (64, 64), (33, 70), (9, 17)])
def test_output_has_exactly_the_content_size(random_model: AdaINModel, size: tuple[int, int]) -> None:
    out = random_model.stylize(make_image(*size), [StyleSource(image=STYLE)])
    assert out.size == size and out.mode == "RGB"


def test_content_size_resizes_the_shorter_side(random_model: AdaINModel) -> None:
    out = random_model.stylize(CONTENT, [StyleSource(image=STYLE)], StylizeOptions(content_size=20))
    assert out.size == (24, 20)  # 45x37 -> shorter side 20, longer int(20 * 45 / 37) = 24


def test_cached_statistics_give_the_same_image(random_model: AdaINModel) -> None:
    options = StylizeOptions(style_size=32)
    stats = random_model.encode_style(STYLE, style_size=32)
    assert (stats.width, stats.height) == (32, 38)
    direct = random_model.stylize(CONTENT, [StyleSource(image=STYLE)], options)
    cached = random_model.stylize(CONTENT, [StyleSource(code=stats)], options)
    assert np.array_equal(pixels(direct), pixels(cached))


def test_style_stats_serialise(random_model: AdaINModel) -> None:
    stats = random_model.encode_style(STYLE, style_size=0)
    back = StyleCode.from_bytes(stats.to_bytes())
    assert torch.equal(back.tensors["mean"], stats.tensors["mean"]) and torch.equal(back.tensors["std"],
                                                                                    stats.tensors["std"])
    assert (back.producer, back.width, back.height) == (random_model.code_identity, 40, 48)
    assert stats.nbytes == 2 * 512 * 4


def test_alpha_zero_reconstructs_content_features_and_alpha_changes_output(random_model: AdaINModel) -> None:
    full = random_model.stylize(CONTENT, [StyleSource(image=STYLE)], StylizeOptions(alpha=1.0))
    half = random_model.stylize(CONTENT, [StyleSource(image=STYLE)], StylizeOptions(alpha=0.5))
    none = random_model.stylize(CONTENT, [StyleSource(image=STYLE)], StylizeOptions(alpha=0.0))
    other = random_model.stylize(CONTENT, [StyleSource(image=STYLE2)], StylizeOptions(alpha=0.0))
    assert np.array_equal(pixels(none), pixels(other))  # alpha 0: the style does not matter
    assert not np.array_equal(pixels(full), pixels(half))


def test_weights_interpolate_between_styles(random_model: AdaINModel) -> None:
    def run(w1: float, w2: float) -> np.ndarray:
        return pixels(random_model.stylize(CONTENT, [StyleSource(image=STYLE, weight=w1),
                                                     StyleSource(image=STYLE2, weight=w2)]))

    only_first = pixels(random_model.stylize(CONTENT, [StyleSource(image=STYLE)]))
    assert np.abs(run(1.0, 0.0) - only_first).max() <= 1
    assert np.abs(run(0.5, 0.5) - only_first).max() > 2


def test_masks_give_each_region_its_style(random_model: AdaINModel) -> None:
    content = make_image(64, 64, seed=4)
    left = Image.new("L", (64, 64), 0)
    left.paste(255, (0, 0, 32, 64))
    right = Image.eval(left, lambda v: 255 - v)
    masked = pixels(random_model.stylize(content, [StyleSource(image=STYLE, mask=left),
                                                   StyleSource(image=STYLE2, mask=right)]))
    only1 = pixels(random_model.stylize(content, [StyleSource(image=STYLE)]))
    only2 = pixels(random_model.stylize(content, [StyleSource(image=STYLE2)]))
    # far from the seam, each half looks like its own style far more than like the other one
    left_half, right_half = (slice(None), slice(0, 16)), (slice(None), slice(48, 64))
    assert np.abs(masked[left_half] - only1[left_half]).mean() < np.abs(masked[left_half] - only2[left_half]).mean()
    assert np.abs(masked[right_half] - only2[right_half]).mean() < np.abs(masked[right_half] - only1[right_half]).mean()


def test_region_no_mask_covers_keeps_the_content_features(random_model: AdaINModel) -> None:
    content = make_image(64, 64, seed=5)
    empty = Image.new("L", (64, 64), 0)
    unstyled = random_model.stylize(content, [StyleSource(image=STYLE, mask=empty)])
    reconstruction = random_model.stylize(content, [StyleSource(image=STYLE)], StylizeOptions(alpha=0.0))
    assert np.abs(pixels(unstyled) - pixels(reconstruction)).max() <= 1


def test_luminance_mode_keeps_content_chrominance(random_model: AdaINModel) -> None:
    out = random_model.stylize(CONTENT, [StyleSource(image=STYLE)], StylizeOptions(color=ColorMode.LUMINANCE))
    plain = random_model.stylize(CONTENT, [StyleSource(image=STYLE)])
    yiq_out, yiq_content = rgb_to_yiq(image_to_tensor(out)), rgb_to_yiq(image_to_tensor(CONTENT))
    yiq_plain = rgb_to_yiq(image_to_tensor(plain))
    chroma_err = (yiq_out[:, 1:] - yiq_content[:, 1:]).abs().mean()
    assert chroma_err < (yiq_plain[:, 1:] - yiq_content[:, 1:]).abs().mean() / 3
    assert (yiq_out[:, :1] - yiq_plain[:, :1]).abs().mean() < 0.02  # luminance comes from the stylized image


def test_coral_needs_the_image(random_model: AdaINModel) -> None:
    stats = random_model.encode_style(STYLE)
    with pytest.raises(InvalidOptionError, match=r"styles\[0\]"):
        random_model.stylize(CONTENT, [StyleSource(code=stats)], StylizeOptions(color=ColorMode.CORAL))


@pytest.mark.parametrize(
    "styles, options, option",
    [
        ([StyleSource(image=STYLE)], StylizeOptions(alpha=1.5), "alpha"),
        ([StyleSource(image=STYLE)], StylizeOptions(alpha=-0.1), "alpha"),
        ([], StylizeOptions(), "styles"),
        ([StyleSource(image=STYLE, weight=-1)], StylizeOptions(), r"styles\[0\].weight"),
        ([StyleSource(image=STYLE, weight=float("nan"))], StylizeOptions(), r"styles\[0\].weight"),
        ([StyleSource(image=STYLE, weight=0)], StylizeOptions(), "styles.weight"),
        ([StyleSource()], StylizeOptions(), r"styles\[0\]"),
        ([StyleSource(image=STYLE)], StylizeOptions(content_size=-1), "content_size"),
        ([StyleSource(image=STYLE)], StylizeOptions(tile_size=100), "tile_size"),
    ],
)
def test_invalid_options_name_the_option(random_model: AdaINModel, styles, options, option: str) -> None:
    with pytest.raises(InvalidOptionError, match=f"^{option}"):
        random_model.stylize(CONTENT, styles, options)


def test_should_stop_cancels_between_layers(random_model: AdaINModel) -> None:
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(Cancelled):
        random_model.stylize(CONTENT, [StyleSource(image=STYLE)], should_stop=stop)
    assert len(calls) == 4


def test_tiled_and_untiled_outputs_agree(random_model: AdaINModel) -> None:
    content = make_image(136, 104, seed=6)
    whole = random_model.stylize(content, [StyleSource(image=STYLE)])
    tiled = random_model.stylize(content, [StyleSource(image=STYLE)], StylizeOptions(tile_size=48))
    assert np.abs(pixels(whole) - pixels(tiled)).max() <= 2


def test_random_models_are_flagged_and_deterministic() -> None:
    a, b = AdaINModel.random(5, device="cpu"), AdaINModel.random(5, device="cpu")
    assert a.info.untrained and a.info.provenance["encoder"] == "random(seed=5)"
    assert a.info.weights == b.info.weights and a.code_identity == b.code_identity
    assert a.code_identity != AdaINModel.random(6, device="cpu").code_identity
    assert np.array_equal(pixels(a.stylize(CONTENT, [StyleSource(image=STYLE)])),
                          pixels(b.stylize(CONTENT, [StyleSource(image=STYLE)])))


def test_decoder_trained_against_another_encoder_is_refused(tmp_path) -> None:
    torch.save(random_vgg_state(0), tmp_path / "vgg_normalised.pth")
    save_decoder_checkpoint(tmp_path / "mine.safetensors", random_decoder_state(0), encoder_sha256="f" * 64,
                            metadata={})
    with pytest.raises(IncompatibleModelError, match="trained against encoder ffffffffffff"):
        AdaINModel.from_files(str(tmp_path / "vgg_normalised.pth"), str(tmp_path / "mine.safetensors"), device="cpu")


def test_matching_checkpoint_and_torchvision_layout_load(tmp_path) -> None:
    from model.weights import sha256_file

    vgg_path = tmp_path / "vgg19-dcbb9e9d.pth"
    official = random_vgg_state(1)
    convs = [i for i, m in enumerate(build_vgg_sequential()) if isinstance(m, torch.nn.Conv2d)][1:]
    tv_state, position = {}, 0
    for index, conv in enumerate(convs):
        tv_state[f"features.{position}.weight"] = official[f"{conv}.weight"]
        tv_state[f"features.{position}.bias"] = official[f"{conv}.bias"]
        position += 2 + (1 if index in (1, 3, 7, 11) else 0)  # relu, and a pool after blocks
    tv_state["classifier.0.weight"] = torch.zeros(2, 2)
    torch.save(tv_state, vgg_path)
    save_decoder_checkpoint(tmp_path / "dec.safetensors", random_decoder_state(1),
                            encoder_sha256=sha256_file(vgg_path), metadata={"steps": "3"})
    model = AdaINModel.from_files(str(vgg_path), str(tmp_path / "dec.safetensors"), device="cpu")
    assert model.encoder.norm.is_identity() is False  # torchvision weights take ImageNet normalisation
    assert model.info.metadata["steps"] == "3"
    assert model.stylize(CONTENT, [StyleSource(image=STYLE)]).size == CONTENT.size


def test_a_batch_gives_each_request_its_own_image(random_model: AdaINModel) -> None:
    from model.family import BatchItem

    content2 = make_image(45, 37, seed=9)
    items = [BatchItem(CONTENT, (StyleSource(image=STYLE),), StylizeOptions(alpha=0.6)),
             BatchItem(content2, (StyleSource(image=STYLE2, mask=Image.new("L", (45, 37), 255)),),
                       StylizeOptions(color=ColorMode.LUMINANCE))]
    batched = random_model.stylize_batch(items)
    alone = [random_model.stylize(i.content, i.styles, i.options) for i in items]
    for a, b in zip(batched, alone, strict=True):
        assert np.abs(pixels(a) - pixels(b)).max() <= 1
    with pytest.raises(ValueError, match="one size"):
        random_model.stylize_batch([items[0], BatchItem(make_image(20, 20), (StyleSource(image=STYLE),))])
