"""`python -m bench`: one run, one machine; writes bench/results/results.{md,json} and chart.png.

The run is a list of sections (`SECTIONS`); each prints its progress and, once measured, is written to the results
files at once, so a run stopped half-way keeps what it measured. Adding a measurement is adding a `Section`: a key in
results.json, a title, a function that measures it and a function that renders its Markdown table.
`python -m bench --sections serving,gatys` runs only those.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

from server.malloc import retain_freed_memory

# As `python -m server` does, and before torch is imported, so that in-process numbers are the server's.
retain_freed_memory()

import torch  # noqa: E402

from bench import report  # noqa: E402
from bench.backends import backends_table, bench_backends  # noqa: E402
from bench.compute import (  # noqa: E402
    attainable_gflops,
    measure_compute,
    measure_magenta,
    measure_presets,
    sample_seconds,
    test_image,
)
from bench.gatys_peer import measure_gatys_peer, peer_table, write_peer_results  # noqa: E402
from bench.precision import measure_precisions, precision_table  # noqa: E402
from bench.quality import measure_quality, quality_table  # noqa: E402
from bench.response_cache import measure_response_cache, response_cache_table  # noqa: E402
from bench.serving import peak_rss_bytes, png_bytes, reset_peak_rss, run_load, server  # noqa: E402
from bench.streaming import machine, measure_streaming, streaming_table  # noqa: E402
from bench.temporal import measure_temporal, temporal_table  # noqa: E402
from model.adain.stylizer import AdaINModel  # noqa: E402
from model.devices import select_device  # noqa: E402
from model.family import StyleSource, StylizeOptions  # noqa: E402
from styletransfer.v1 import style_transfer_pb2 as pb  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def machine_info(device: torch.device) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "cpu": machine()["cpu"],
            "cores": torch.get_num_threads(), "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def bench_serving(model: AdaINModel, quick: bool) -> dict:
    """Avatar workload: 256 px content, a registered style; 1, 4 and 16 concurrent clients; plus 512 px overhead.

    The in-process reference is timed right before and right after the gRPC runs, so a drift of the machine's speed
    during the run (shared hosts) affects both sides alike.
    """
    out: dict = {}
    with server() as srv:
        out["startup_seconds"] = srv.startup_seconds
        style = srv.stub.PutStyle(pb.PutStyleRequest(image=png_bytes(test_image(512, 1)), style_size=512), timeout=120)
        stats = model.encode_style(test_image(512, 1), style_size=512)
        for size in (256, 512):
            # every call computes: the response cache would answer the repeats of one request in milliseconds
            request = pb.StylizeRequest(content=png_bytes(test_image(size, 2)),
                                        styles=[pb.StyleInput(style_id=style.style_id)], skip_response_cache=True)
            run = functools.partial(model.stylize, test_image(size, 2), [StyleSource(code=stats)], StylizeOptions())
            # 256 px calls take 0.15 s here: enough of them that throughput is not decided by a few slow ones.
            repeats = 3 if quick else (16 if size == 256 else 8)
            in_process = sample_seconds(run, repeats)
            srv.stub.Stylize(request, timeout=300)  # warm-up, as sample_seconds does in-process
            levels = (1,) if size == 512 else (1, 4, 16)
            runs = [run_load(srv.stub, request, c, (6 if quick else 48) if size == 256 else (3 if quick else 8))
                    for c in levels]
            in_process += sample_seconds(run, repeats, warmup=0)
            out[str(size)] = {"in_process_seconds": statistics.median(in_process),
                              "in_process_mean_seconds": statistics.fmean(in_process),
                              "runs": [asdict(r) | {"throughput": r.throughput} for r in runs]}
    return out


def bench_memory(sizes: tuple[int, ...]) -> dict:
    """Peak RSS of the server while it stylizes one content image of each size (fresh peak per image)."""
    out = {}
    with server("--max-image-pixels", str(4096 * 4096), "--max-output-pixels", str(4096 * 4096)) as srv:
        style = pb.StyleInput(image=png_bytes(test_image(512, 1)))
        srv.stub.Stylize(pb.StylizeRequest(content=png_bytes(test_image(64, 2)), styles=[style]), timeout=120)
        for size in sizes:
            content = png_bytes(test_image(size, 3), "JPEG")
            reset_peak_rss(srv.proc.pid)
            start = time.perf_counter()
            srv.stub.Stylize(pb.StylizeRequest(content=content, styles=[style], output_format=pb.IMAGE_FORMAT_JPEG),
                             timeout=900)
            out[f"{size}x{size}"] = {"peak_rss_bytes": peak_rss_bytes(srv.proc.pid),
                                     "seconds": time.perf_counter() - start}
    return out


def _stamp(stamps: list[float], _progress: object) -> None:
    stamps.append(time.perf_counter())


def bench_gatys(device: torch.device, sizes: tuple[int, ...], iterations: int) -> dict:
    from model.encoders import load_encoder, random_spec
    from model.gatys import GatysOptions, stylize_gatys
    from model.network import RELU5_1

    encoder, _ = load_encoder(random_spec(0), RELU5_1)
    encoder.to(device)
    out = {}
    for size in sizes:
        options = GatysOptions(iterations=iterations, size=size)
        stamps: list[float] = []
        stylize_gatys(encoder, test_image(size, 2), [(test_image(size, 1), 1.0)], options, device=device,
                      on_progress=functools.partial(_stamp, stamps))
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        out[str(size)] = {"seconds_per_iteration": sorted(gaps)[len(gaps) // 2], "iterations": iterations}
    return out


@dataclass
class Run:
    """What the sections of one run share: the parsed flags, the device, one model, and the results so far."""

    args: argparse.Namespace
    device: torch.device
    results: dict

    @cached_property
    def model(self) -> AdaINModel:
        return AdaINModel.random(seed=0, device=self.args.device)


@dataclass(frozen=True)
class Section:
    """One measured part of the benchmark, stored under ``results[key]`` as soon as ``measure`` returns."""

    key: str
    title: str  # printed while it runs
    measure: Callable[[Run], object]
    table: Callable[[object], list[str]]  # its Markdown lines in results.md


def _compute(run: Run) -> list[dict]:
    sizes = [256, 512] if run.args.quick else [256, 512, 1024]
    attainable = run.results["attainable_gflops"]
    return [asdict(r) for r in measure_compute(run.model, sizes, attainable)]


SECTIONS: list[Section] = [
    Section("attainable_gflops", "attainable rate of a large 3x3 convolution",
            lambda run: attainable_gflops(run.device), report.attainable_table),
    Section("compute", "model compute at 256/512/1024 px, inline and cached style", _compute, report.compute_table),
    Section("backends", "torch vs onnxruntime at 256/512/1024 px, inline and registered style",
            lambda run: bench_backends(run.model, [256, 512] if run.args.quick else [256, 512, 1024], run.args.quick),
            backends_table),
    Section("precision", "float32 beside bfloat16 (and float16 on CUDA): compute, serving latency, output difference",
            lambda run: measure_precisions(run.device, run.args.quick), precision_table),
    Section("magenta", "the Magenta family's stylize at 256/512 px, inline and cached style",
            lambda run: measure_magenta([256] if run.args.quick else [256, 512], run.args.device,
                                        run.results.get("compute")), report.magenta_table),
    Section("presets", "the presets model beside Magenta at 256/512 px, interleaved",
            lambda run: measure_presets([256, 512], run.args.device, 3 if run.args.quick else 10),
            report.presets_table),
    Section("serving", "serving through gRPC at 1, 4 and 16 clients",
            lambda run: bench_serving(run.model, run.args.quick), report.serving_table),
    Section("streaming", "StylizeStream frames per second at 256/512 px, EVERY_FRAME and LIVE, against unary",
            lambda run: measure_streaming(run.args.quick, run.args.out), streaming_table),
    Section("response_cache", "Stylize answered from the response cache against computed, 256 px, alternated",
            lambda run: measure_response_cache(256, 5 if run.args.quick else 20), response_cache_table),
    Section("memory", "server peak RSS for large content",
            lambda run: bench_memory((1024,) if run.args.quick else (2048, 4096)), report.memory_table),
    Section("gatys_peer", "Gatys against python -m pastiche (300 steps) at 128 and 256 px, one evaluator",
            lambda run: measure_gatys_peer((128,) if run.args.quick else (128, 256), run.args.out,
                                           lambda rows: write_peer_results(rows, run.args.out)),
            peer_table),
    Section("quality", "every servable model, Gatys and an untrained baseline on photo x style pairs, one evaluator",
            lambda run: measure_quality(out=run.args.out), quality_table),
    Section("temporal", "per-frame against temporally stabilised video on clips with known motion, every family",
            lambda run: measure_temporal(frames=6 if run.args.quick else 12, out=run.args.out), temporal_table),
    Section("gatys", "Gatys seconds per iteration",
            lambda run: bench_gatys(run.device, (128,) if run.args.quick else (256, 512), 4 if run.args.quick else 6),
            report.gatys_table),
]


def write_results(results: dict, sections: Sequence[Section], out: Path) -> None:
    """Writes results.json and results.md (and the chart once its sections exist) from what is measured so far."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    tables = {s.key: s.table for s in sections}
    (out / "results.md").write_text(report.write_markdown(results, tables))
    if report.can_chart(results):
        report.write_chart(results, out / "chart.png")


def run_sections(run: Run, sections: Sequence[Section], out: Path) -> None:
    """Measures each section in turn, printing progress to stderr and writing the results after each one."""
    for number, section in enumerate(sections, 1):
        prefix = f"[{number}/{len(sections)}] {section.key}"
        print(f"{prefix}: {section.title} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        run.results[section.key] = section.measure(run)
        write_results(run.results, sections, out)
        print(f"{prefix}: done in {time.perf_counter() - start:.1f} s, written to {out}", file=sys.stderr, flush=True)


def select_sections(names: str | None) -> list[Section]:
    """The sections named in ``names`` (comma-separated, run order kept), or all of them."""
    if not names:
        return list(SECTIONS)
    wanted = names.split(",")
    known = [s.key for s in SECTIONS]
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise SystemExit(f"unknown sections {unknown}; choose from {known}")
    return [s for s in SECTIONS if s.key in wanted]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and no 16 MP run (a smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--sections", help=f"comma-separated subset of: {','.join(s.key for s in SECTIONS)}")
    args = parser.parse_args(argv)
    sections = select_sections(args.sections)
    device = select_device(args.device)
    results: dict = {"machine": machine_info(device), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if "compute" in {s.key for s in sections} and "attainable_gflops" not in {s.key for s in sections}:
        sections.insert(0, SECTIONS[0])  # efficiency is relative to this run's attainable rate
    run_sections(Run(args, device, results), sections, args.out)
    print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()
