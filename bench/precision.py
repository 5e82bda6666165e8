"""Precisions side by side (``python -m bench --sections precision``): float32 and the reduced precisions this device
can run, in one run.

For each precision: the attainable rate of the large 3x3 convolution in that precision, AdaIN's seconds per image at
256 and 512 px with an inline and a registered style (calls alternate between precisions, so a change of the
machine's speed falls on all of them), GFLOP/s and efficiency against that precision's own attainable rate; the
serving latency at 256 and 512 px through a server started with ``--precision``; and the output's difference from
float32 on photos (the bundled ImageNet VGG19 behind a seeded decoder: real features), in 8-bit levels and in the
judge's distances (:mod:`model.quality`). Beside them, the reference implementation's eager float32 run at 512 px
(plain official modules, content and style encoded each call), which the end-to-end target compares against.

A CPU without native bfloat16 runs it on torch's generic convolution, tens of times slower: the section says so, and
calls that take over ``LONG_CALL`` seconds are timed once instead of repeated.
"""

from __future__ import annotations

import functools
import statistics
import sys
import time

import numpy as np
import torch

from bench.compute import alternating_seconds, attainable_gflops, test_image
from bench.flops import adain_flops
from bench.photos import load_photo
from bench.quality import PAIRS
from bench.serving import png_bytes, server
from model.adain.ops import adain, calc_mean_std
from model.adain.stylizer import AdaINModel
from model.devices import cpu_features, dtype_name, native_bf16
from model.encoders import BUNDLED
from model.family import StyleSource, StylizeOptions
from model.images import image_to_tensor
from model.quality import quality_score
from styletransfer.v1 import style_transfer_pb2 as pb

__all__ = ["LONG_CALL", "measure_precisions", "precision_table", "precision_targets"]

LONG_CALL = 10.0  # seconds: a call this long is timed once
STYLE_SIZE = 512
DIFFERENCE_SIDE = 128  # shorter side of the photos the output difference is measured on


def _precisions(device: torch.device) -> tuple[str, ...]:
    return ("fp32", "fp16", "bf16") if device.type == "cuda" else ("fp32", "bf16")


def _models(device: torch.device, precisions: tuple[str, ...], **kwargs) -> dict[str, AdaINModel]:
    return {p: AdaINModel.random(0, device=str(device), precision=p, **kwargs) for p in precisions}


def _compute(models: dict[str, AdaINModel], sizes: list[int], attainable: dict[str, float], quick: bool) -> list[dict]:
    """Seconds per image at each size, inline and registered style, the precisions' calls alternating."""
    style = test_image(STYLE_SIZE, seed=1)
    codes = {p: m.encode_style(style, style_size=STYLE_SIZE) for p, m in models.items()}
    rows = []
    for size in sizes:
        content = test_image(size, seed=2)
        for kind in ("inline", "registered"):
            runs = {p: functools.partial(m.stylize, content, [StyleSource(image=style) if kind == "inline"
                                                              else StyleSource(code=codes[p])],
                                         StylizeOptions(style_size=STYLE_SIZE)) for p, m in models.items()}
            samples = alternating_seconds(runs, 2 if quick else {256: 6}.get(size, 3), LONG_CALL)
            gflop = adain_flops(size, size, (STYLE_SIZE, STYLE_SIZE) if kind == "inline" else None) / 1e9
            for p, times in samples.items():
                seconds = statistics.median(times)
                rows.append({"precision": p, "size": size, "style": kind, "seconds": seconds, "samples": len(times),
                             "gflop": gflop, "gflops": gflop / seconds, "efficiency": gflop / seconds / attainable[p]})
            print(f"  {size} px, {kind}: " + ", ".join(f"{p} {statistics.median(t):.3f} s" for p, t in samples.items()),
                  file=sys.stderr, flush=True)
    return rows


def _serving(precision: str, sizes: list[int], quick: bool) -> dict[str, dict]:
    """1-client latency through gRPC with a registered style, the server started with ``--precision``."""
    out = {}
    with server("--precision", precision, timeout=600) as srv:
        style = srv.stub.PutStyle(pb.PutStyleRequest(image=png_bytes(test_image(STYLE_SIZE, 1)),
                                                     style_size=STYLE_SIZE), timeout=3600)
        for size in sizes:
            request = pb.StylizeRequest(content=png_bytes(test_image(size, 2)),  # computed, never a cache hit
                                        styles=[pb.StyleInput(style_id=style.style_id)], skip_response_cache=True)
            call = functools.partial(srv.stub.Stylize, request, timeout=3600)
            times = alternating_seconds({"grpc": call}, 3 if quick else {256: 12}.get(size, 6), LONG_CALL)["grpc"]
            out[str(size)] = {"p50_ms": statistics.median(times) * 1000, "calls": len(times)}
    return out


def _difference(device: torch.device, precisions: tuple[str, ...]) -> list[dict]:
    """Each reduced precision against float32 on the quality benchmark's photo pairs: 8-bit levels and the judge."""
    models = _models(device, precisions, encoder=BUNDLED)
    judge = models["fp32"].encoder
    rows = []
    for content_name, style_name in PAIRS:
        content = load_photo(content_name, DIFFERENCE_SIDE, fit="shorter")
        style = load_photo(style_name, DIFFERENCE_SIDE, fit="shorter")
        options = StylizeOptions(style_size=DIFFERENCE_SIDE)
        outputs = {p: np.asarray(m.stylize(content, [StyleSource(image=style)], options), dtype=np.int16)
                   for p, m in models.items()}
        scores = {p: quality_score(judge, torch.from_numpy(o).permute(2, 0, 1)[None].float() / 255,
                                   image_to_tensor(content), image_to_tensor(style)) for p, o in outputs.items()}
        for p in precisions[1:]:
            levels = np.abs(outputs[p] - outputs["fp32"])
            rows.append({"precision": p, "pair": f"{content_name} x {style_name}", "mean_levels": float(levels.mean()),
                         "worst_levels": int(levels.max()),
                         "content_change": scores[p].content / scores["fp32"].content - 1,
                         "style_change": scores[p].style / scores["fp32"].style - 1})
    return rows


def reference_seconds(model: AdaINModel, size: int, repeats: int) -> float:
    """The reference implementation's run (naoto0804/pytorch-AdaIN ``test.py``): the plain official modules in eager
    float32, content and style both encoded, in the default memory format."""
    encoder, decoder = model.encoder.to(model.device), model.decoder.to(model.device)
    content = image_to_tensor(test_image(size, 2)).to(model.device)
    style = image_to_tensor(test_image(STYLE_SIZE, 1)).to(model.device)

    def run() -> None:
        with torch.no_grad():
            mean, std = calc_mean_std(encoder(style))
            decoder(adain(encoder(content), mean, std)).clamp(0, 1).cpu()

    return statistics.median(alternating_seconds({"reference": run}, repeats, LONG_CALL)["reference"])


def measure_precisions(device: torch.device, quick: bool) -> dict:
    """The section's measurements (see the module's docstring)."""
    precisions = _precisions(device)
    native = native_bf16(cpu_features()) if device.type == "cpu" else device.type
    sizes = [256] if quick else [256, 512]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    models = _models(device, precisions)
    attainable = {p: attainable_gflops(device, 3 if quick else 10, m.dtype, LONG_CALL) for p, m in models.items()}
    print("  attainable: " + ", ".join(f"{p} {g:.1f} GFLOP/s" for p, g in attainable.items()), file=sys.stderr)
    result = {"device": str(device), "native_bf16": native or "", "started": started, "attainable_gflops": attainable,
              "dtypes": {p: dtype_name(m.dtype) for p, m in models.items()},
              "compute": _compute(models, sizes, attainable, quick),
              "reference_512_seconds": reference_seconds(models["fp32"], 512, 2 if quick else 4)}
    del models
    result["serving"] = {p: _serving(p, sizes, quick) for p in precisions}
    result["difference"] = _difference(device, precisions)
    return result


def _row(result: dict, precision: str, size: int, style: str) -> dict | None:
    return next((r for r in result["compute"] if (r["precision"], r["size"], r["style"]) == (precision, size, style)),
                None)


def precision_table(result: dict) -> list[str]:
    native = result["native_bf16"]
    machine = (f"native bfloat16 ({native})" if native else
               "**no native bfloat16 on this CPU**: bfloat16 runs on torch's generic convolution, not a bf16 path")
    attainable = ", ".join(f"{result['dtypes'][p]} {g:.1f}" for p, g in result["attainable_gflops"].items())
    lines = [f"Precisions on {result['device']}, {machine}. Attainable rate (3x3 conv, 256 ch, 128x128) by "
             f"precision, GFLOP/s: {attainable}.", "",
             "| precision | content | style | s / image | GFLOP/s | efficiency (own precision) | x float32 speed |",
             "|---|---|---|---|---|---|---|"]
    for r in result["compute"]:
        base = _row(result, "fp32", r["size"], r["style"])
        timed = "" if r["samples"] > 1 else " (1 call)"
        lines.append(f"| {result['dtypes'][r['precision']]} | {r['size']} px | {r['style']} | {r['seconds']:.3f}"
                     f"{timed} | {r['gflops']:.1f} | {r['efficiency']:.2f} | {base['seconds'] / r['seconds']:.2f} |")
    lines += ["", "| precision | content | gRPC p50 ms, 1 client, registered style | in-process ms | overhead ms |",
              "|---|---|---|---|---|"]
    for p, sizes in result["serving"].items():
        for size, s in sizes.items():
            local = _row(result, p, int(size), "registered")
            in_process = f"{local['seconds'] * 1000:.1f}" if local else "not measured"
            overhead = f"{s['p50_ms'] - local['seconds'] * 1000:.1f}" if local else ""
            lines.append(f"| {result['dtypes'][p]} | {size} px | {s['p50_ms']:.1f} | {in_process} | {overhead} |")
    lines += ["", f"Reference implementation, eager float32, 512 px (content and style encoded): "
                  f"{result['reference_512_seconds']:.3f} s.", "",
              f"| precision | photos ({DIFFERENCE_SIDE} px, bundled VGG19) | mean levels | worst levels "
              "| judge content | judge style |", "|---|---|---|---|---|---|"]
    for d in result["difference"]:
        lines.append(f"| {result['dtypes'][d['precision']]} | {d['pair']} | {d['mean_levels']:.2f} "
                     f"| {d['worst_levels']} | {d['content_change']:+.1%} | {d['style_change']:+.1%} |")
    return lines


def precision_targets(result: dict) -> list[tuple[str, str, bool]]:
    """bfloat16 at 512 px with a registered style >= 1.7x float32; gRPC bfloat16 at 512 px >= 4x the reference's
    eager float32 run. Without native bfloat16 the measured column says so."""
    fast, slow = _row(result, "bf16", 512, "registered"), _row(result, "fp32", 512, "registered")
    grpc = result["serving"].get("bf16", {}).get("512")
    if fast is None or slow is None or grpc is None:
        return []
    note = "" if result["native_bf16"] else " (no native bfloat16)"
    speedup = slow["seconds"] / fast["seconds"]
    end_to_end = result["reference_512_seconds"] * 1000 / grpc["p50_ms"]
    return [("bfloat16 512 px registered style >= 1.7 x float32", f"{speedup:.2f}x{note}", speedup >= 1.7),
            ("gRPC bfloat16 512 px >= 4 x the reference's eager float32", f"{end_to_end:.2f}x{note}",
             end_to_end >= 4.0)]
