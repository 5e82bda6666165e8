"""Does ONNX Runtime's reduced precision help on this CPU? ``python -m bench.ort_int8`` writes
``bench/results/ort_int8.md``.

Three questions, each answered by a measurement in one run (calls alternate between the variants):

- bfloat16: can ONNX Runtime's CPU provider run a bfloat16 convolution at all (a one-node graph)?
- Magenta, whose graphs are int8 already: its transfer network with ONNX Runtime's fused int8 kernels (what is
  served) against the same graph with basic optimisations only (float convolutions between the graph's own
  quantise/dequantise nodes).
- AdaIN's exported float32 graphs (``--backend onnxruntime``) against the same graphs quantised to int8 by
  ``onnxruntime.quantization`` (static, QDQ, per-channel weights, calibrated on photos): speed, and the pictures'
  difference in 8-bit levels on photos (the bundled ImageNet VGG19 behind a seeded decoder). "Equal pictures" means
  the bound bfloat16 is held to (``tests/model/test_precision.py``): at most 1 level on average and 8 at worst.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.compute import alternating_seconds, test_image
from bench.photos import load_photo
from bench.quality import PAIRS
from model.adain.onnx_backend import FEATURES, IMAGE, OrtDecoder, OrtEncoder, decoder_onnx, encoder_onnx
from model.adain.ops import adain, calc_mean_std
from model.adain.stylizer import AdaINModel
from model.devices import cpu_features
from model.encoders import BUNDLED
from model.images import image_to_tensor, tensor_to_image
from model.network import RELU4_1
from model.ort import make_session

__all__ = ["main", "measure"]

RESULTS = Path(__file__).parent / "results"
MEAN_LEVELS, WORST_LEVELS = 1.0, 8  # "equal pictures"
INT8_FEATURES = ("avx512_vnni", "avx_vnni", "amx_int8")  # x86 instructions that speed up ONNX Runtime's int8


def bf16_conv_runs() -> str:
    """Whether the CPU provider has a bfloat16 Conv kernel: "yes", or ONNX Runtime's refusal, shortened."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "bf16",
        [helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [1, 8, 8, 8]),
         helper.make_tensor_value_info("w", TensorProto.BFLOAT16, [8, 8, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [1, 8, 8, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    try:
        make_session(model.SerializeToString(), device="cpu")
    except Exception as exc:  # ONNX Runtime raises its own exception types
        return f"no: {str(exc).splitlines()[0][:160]}"
    return "yes"


def _magenta(sizes: list[int], repeats: int) -> list[dict]:
    from model.magenta.engine import TRANSFORM, MagentaEngine
    from model.magenta.graphs import read_graph, with_symbolic_size

    engine = MagentaEngine(device="cpu")
    vector = engine.style_vector(test_image(256, 1))
    graph = with_symbolic_size(read_graph(TRANSFORM))
    sessions = {"int8 kernels": make_session(graph, device="cpu"),
                "float ops": make_session(graph, device="cpu", fuse_quantized=False)}
    rows = []
    for size in sizes:
        feeds = {TRANSFORM.inputs[0]: np.asarray(test_image(size, 2), np.float32)[None] / 255,
                 TRANSFORM.inputs[1]: vector.reshape(1, 1, 1, -1)}
        runs = {name: functools.partial(s.run, [TRANSFORM.output], feeds) for name, s in sessions.items()}
        samples = alternating_seconds(runs, repeats)
        outs = {name: (run()[0] * 255 + 0.5).clip(0, 255).astype(np.int16) for name, run in runs.items()}
        levels = np.abs(outs["int8 kernels"] - outs["float ops"])
        rows.append({"size": size, **{name: statistics.median(t) for name, t in samples.items()},
                     "mean_levels": float(levels.mean()), "worst_levels": int(levels.max())})
    return rows


class _Calibration:
    """``onnxruntime.quantization``'s calibration reader over a list of inputs."""

    def __init__(self, name: str, inputs: list[np.ndarray]) -> None:
        self._items = iter([{name: x} for x in inputs])

    def get_next(self) -> dict | None:
        return next(self._items, None)


def _quantised(graph: bytes, name: str, inputs: list[np.ndarray]) -> bytes:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    CalibrationDataReader.register(_Calibration)
    # Without VNNI, u8 x s8 products can saturate the 16-bit intermediate of AVX2's int8 multiply: 7-bit weights
    # avoid it, as ONNX Runtime's documentation recommends for such CPUs.
    reduce_range = not any(f in cpu_features() for f in INT8_FEATURES)
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "float.onnx", Path(folder) / "int8.onnx"
        source.write_bytes(graph)
        quantize_static(str(source), str(target), _Calibration(name, inputs), quant_format=QuantFormat.QDQ,
                        per_channel=True, reduce_range=reduce_range, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)
        return target.read_bytes()


def _networks(model: AdaINModel) -> dict[str, tuple[OrtEncoder, OrtDecoder]]:
    """The float32 graphs as ``--backend onnxruntime`` serves them, and their int8 quantisation, calibrated on the
    quality pairs' photos (encoder) and on the AdaIN targets of those pairs (decoder)."""
    photos = [image_to_tensor(load_photo(name, 256, fit="shorter")) for pair in PAIRS for name in pair]
    with torch.inference_mode():
        feats = [model.encoder(x) for x in photos]
    targets = [adain(feats[i], *calc_mean_std(feats[i + 1])).numpy() for i in range(0, len(feats), 2)]
    encoder, decoder = encoder_onnx(model.encoder), decoder_onnx(model.decoder)
    graphs = {"float32": (encoder, decoder),
              "int8": (_quantised(encoder, IMAGE, [x.numpy() for x in photos]), _quantised(decoder, FEATURES, targets))}
    return {name: (OrtEncoder(make_session(e, device="cpu")), OrtDecoder(make_session(d, device="cpu")))
            for name, (e, d) in graphs.items()}


def _stylize(networks: tuple[OrtEncoder, OrtDecoder], content: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor]
             ) -> np.ndarray:
    """AdaIN as the served model runs it without options: encode, re-normalise to the style's statistics, decode."""
    encoder, decoder = networks
    feat = encoder.features(content, (RELU4_1,))[RELU4_1]
    out = decoder(adain(feat, *stats))[:, :, :content.shape[2], :content.shape[3]]
    return np.asarray(tensor_to_image(out), np.int16)


def _style_stats(networks: tuple[OrtEncoder, OrtDecoder], style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return calc_mean_std(networks[0].features(style, (RELU4_1,))[RELU4_1])


def _adain(sizes: list[int], repeats: int) -> list[dict]:
    model = AdaINModel.random(0, device="cpu", precision="fp32", encoder=BUNDLED)
    variants = _networks(model)
    rows = []
    style = image_to_tensor(load_photo(PAIRS[0][1], 256, fit="shorter"))
    for size in sizes:
        content = image_to_tensor(load_photo(PAIRS[0][0], size, fit="shorter"))
        runs = {name: functools.partial(_stylize, nets, content, _style_stats(nets, style))
                for name, nets in variants.items()}
        samples = alternating_seconds(runs, repeats)
        rows.append({"size": size, **{name: statistics.median(t) for name, t in samples.items()}})
    for content_name, style_name in PAIRS:
        content = image_to_tensor(load_photo(content_name, 256, fit="shorter"))
        style = image_to_tensor(load_photo(style_name, 256, fit="shorter"))
        outs = {name: _stylize(nets, content, _style_stats(nets, style)) for name, nets in variants.items()}
        levels = np.abs(outs["int8"] - outs["float32"])
        rows.append({"pair": f"{content_name} x {style_name}", "mean_levels": float(levels.mean()),
                     "worst_levels": int(levels.max())})
    return rows


def measure(quick: bool = False) -> dict:
    import onnxruntime

    sizes, repeats = ([256], 2) if quick else ([256, 512], 6)
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "onnxruntime": onnxruntime.__version__,
            "int8_features": [f for f in INT8_FEATURES if f in cpu_features()], "bf16_conv": bf16_conv_runs(),
            "magenta": _magenta(sizes, repeats), "adain": _adain(sizes, repeats)}


def markdown(result: dict) -> str:
    vnni = ", ".join(result["int8_features"]) or "none (no VNNI, no AMX)"
    lines = [f"# ONNX Runtime's reduced precision on this CPU ({result['date']})", "",
             f"onnxruntime {result['onnxruntime']}; int8 dot-product instructions: {vnni}. `python -m bench.ort_int8`.",
             "", f"bfloat16 Conv on the CPU provider: {result['bf16_conv']}.", "",
             "| Magenta transfer network | int8 kernels s | float ops s | float / int8 | mean levels | worst levels |",
             "|---|---|---|---|---|---|"]
    for r in result["magenta"]:
        lines.append(f"| {r['size']} px | {r['int8 kernels']:.3f} | {r['float ops']:.3f} "
                     f"| {r['float ops'] / r['int8 kernels']:.2f} | {r['mean_levels']:.2f} | {r['worst_levels']} |")
    lines += ["", "| AdaIN, registered style | float32 graphs s | int8 graphs s | float32 / int8 |",
              "|---|---|---|---|"]
    for r in (r for r in result["adain"] if "size" in r):
        lines.append(f"| {r['size']} px | {r['float32']:.3f} | {r['int8']:.3f} | {r['float32'] / r['int8']:.2f} |")
    lines += ["", f"| AdaIN int8 against float32 (256 px) | mean levels | worst levels | equal (<= {MEAN_LEVELS:g} "
                  f"mean, <= {WORST_LEVELS} worst) |", "|---|---|---|---|"]
    for r in (r for r in result["adain"] if "pair" in r):
        equal = r["mean_levels"] <= MEAN_LEVELS and r["worst_levels"] <= WORST_LEVELS
        lines.append(f"| {r['pair']} | {r['mean_levels']:.2f} | {r['worst_levels']} | {'yes' if equal else 'no'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    text = markdown(measure(args.quick))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ort_int8.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
