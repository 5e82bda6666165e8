"""The server's configuration: one frozen dataclass, filled from command-line flags and ``STYLETRANSFER_*`` variables.

Each field's default, type and help text live here once; :func:`load_config` derives the argparse flags
(``--field-name``) and the environment variable names (``STYLETRANSFER_FIELD_NAME``) from the fields, and the same
for every model family's own options (:class:`model.declaration.Option`, e.g. AdaIN's ``--vgg``), which the families
declare and ``Config.model_options`` holds. Precedence: flag, then environment, then default.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clients.client import DEFAULT_MAX_MESSAGE
from model.declaration import Family
from model.limits import MAX_IMAGE_PIXELS, MAX_STYLE_PIXELS
from model.registry import FAMILIES

__all__ = ["ENV_PREFIX", "MIB", "Config", "ConfigError", "Setting", "build_parser", "load_config", "settings"]

ENV_PREFIX = "STYLETRANSFER_"
MIB = 1024 * 1024
# What a browser sends in ``Origin``: lower-case scheme and host, an optional port, no path or trailing slash.
_ORIGIN = re.compile(r"https?://([a-z0-9.-]+|\[[0-9a-f:.]+\])(:[0-9]{1,5})?")


class ConfigError(ValueError):
    """A flag or environment variable holds a value that cannot be used."""


def _opt(default: Any, help: str, choices: Sequence[str] | None = None) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class Config:
    # --- transport ---
    host: str = _opt("0.0.0.0", "address to listen on")
    port: int = _opt(50051, "gRPC port (0 picks a free port, which is logged)")
    metrics_port: int = _opt(9090, "Prometheus /metrics port; 0 disables the endpoint")
    metrics_host: str = _opt("", "address of the metrics endpoint; empty means the same as --host")
    http_port: int = _opt(0, "HTTP/JSON gateway and browser playground port (on --host, TLS and auth as for gRPC); "
                             "0 disables them")
    http_cors_origins: str = _opt("", "browser origins allowed to call the HTTP API from other sites (CORS): "
                                      "comma-separated scheme://host[:port], matched exactly, or '*' for any origin "
                                      "(then without credentials); empty sends no CORS headers")
    http_header_timeout: float = _opt(20.0, "seconds a client has to send a request's headers on the HTTP port, "
                                            "from connecting or from the first byte of a later request; slower "
                                            "clients are disconnected")
    http_body_timeout: float = _opt(30.0, "longest pause in seconds while the HTTP port receives a request body or "
                                          "sends a response (a client that stops reading); the connection is then "
                                          "closed")
    http_idle_timeout: float = _opt(75.0, "seconds an idle keep-alive connection to the HTTP port stays open")
    http_max_connections: int = _opt(1000, "most open connections to the HTTP port (lowered to fit the process's "
                                           "file-descriptor limit); more wait in the listen queue until one closes")
    http_max_streams: int = _opt(100, "most open streaming replies on the HTTP port (WatchJob event streams, "
                                      "StylizeStream WebSockets); more are refused with 429")
    http_max_fields: int = _opt(1000, "most fields in one HTTP request body: form fields or parts, or JSON values "
                                      "(objects, arrays, their members and elements)")
    max_message_bytes: int = _opt(DEFAULT_MAX_MESSAGE, "largest request or response message in bytes (the "
                                                       "Python client's default and its bound on files it reads)")
    max_connection_age: float = _opt(0.0, "seconds after which a client connection is closed so clients rebalance "
                                          "across replicas; 0 keeps connections forever")
    grace_period: float = _opt(30.0, "seconds that calls in flight may take to finish after SIGTERM/SIGINT")
    log_format: str = _opt("text", "log line format", ("text", "json"))
    log_level: str = _opt("INFO", "logging level", ("DEBUG", "INFO", "WARNING", "ERROR"))

    # --- security ---
    tls_cert: str = _opt("", "PEM server certificate; with --tls-key enables TLS")
    tls_key: str = _opt("", "PEM private key of --tls-cert")
    tls_client_ca: str = _opt("", "PEM CA bundle; when set, clients must present a certificate it signed (mTLS)")
    auth_tokens_file: str = _opt("", "file of accepted bearer tokens, one per line ('#' comments); empty disables auth")

    # --- model ---
    data_dir: str = _opt("data", "directory for registered styles, jobs, results and trained models")
    random_weights: bool = _opt(False, "use seeded random weights instead of files: development only, outputs are "
                                       "not real stylizations")
    random_seed: int = _opt(0, "seed of --random-weights")
    default_model: str = _opt("", "the model requests that name none use: a name or family/version from ListModels; "
                                  "empty picks the first model served")
    trained_models_cached: int = _opt(4, "trained models kept loaded at once (least recently used are unloaded)")
    device: str = _opt("auto", "compute device; auto picks CUDA when present", ("auto", "cpu", "cuda"))
    precision: str = _opt("auto", "what torch models and Train jobs compute in (docs/performance.md); auto is fp16 on "
                                  "CUDA, bf16 on a CPU with native bfloat16 (AVX512_BF16, AMX-BF16, Arm BF16), fp32 "
                                  "on other CPUs; fp16 is refused on CPU", ("auto", "fp32", "fp16", "bf16"))

    # --- stylize limits and scheduling ---
    max_image_pixels: int = _opt(MAX_IMAGE_PIXELS, "largest decoded image (width x height; 16 MP = 4096x4096), "
                                                   "checked from the header before decoding")
    max_output_pixels: int = _opt(16_777_216, "largest stylized output (width x height) after content_size")
    max_style_pixels: int = _opt(MAX_STYLE_PIXELS, "largest style image as encoded, after style_size (width x "
                                                   "height; styles are encoded whole, about 0.5 GB of memory per "
                                                   "megapixel)")
    max_styles: int = _opt(8, "most styles in one request")
    workers: int = _opt(0, "inference workers running Stylize at once; 0 picks 1 on CPU and 2 on CUDA")
    torch_threads: int = _opt(0, "torch intra-op threads per worker; 0 divides the cores among the workers")
    max_queue: int = _opt(16, "Stylize calls that may wait for a worker; more get RESOURCE_EXHAUSTED at once")
    style_cache_entries: int = _opt(64, "LRU entries of style statistics for repeated inline style images")
    response_cache_mb: int = _opt(64, "MiB of Stylize responses kept to answer identical requests without computing "
                                      "them again (least recently used go first); 0 turns the response cache off")
    tile_size: int = _opt(1024, "content larger than this many pixels per side is encoded and decoded in tiles; "
                                "0 disables tiling")
    retain_memory_mb: int = _opt(1024, "freed tensor memory (MiB) kept in the process for later requests instead of "
                                       "being unmapped and faulted in again (glibc malloc tuning, server/malloc.py); "
                                       "0 keeps malloc's defaults")
    batching: str = _opt("auto", "dynamic batching of same-size requests; auto is on for CUDA, off for CPU",
                         ("auto", "on", "off"))
    max_batch_size: int = _opt(8, "largest dynamic batch")
    max_batch_delay_ms: float = _opt(5.0, "longest a request waits for others to join its batch")

    # --- streams (StylizeStream) ---
    stream_max_concurrent: int = _opt(16, "StylizeStream calls open at once; one more gets RESOURCE_EXHAUSTED")
    stream_max_frame_pixels: int = _opt(4_194_304, "largest frame of a stream (width x height), as sent (checked "
                                                   "from its header) and as stylized; a larger frame gets an error "
                                                   "of its own and the stream goes on")
    stream_max_frames: int = _opt(100_000, "frames one stream may send; the next one ends the stream with "
                                           "RESOURCE_EXHAUSTED once the earlier frames are answered")
    stream_idle_timeout: float = _opt(60.0, "seconds a stream may go without a message from its client while none "
                                            "of its frames is waiting or being stylized; then it ends with "
                                            "DEADLINE_EXCEEDED. 0 waits forever")
    stream_max_buffered_frames: int = _opt(4, "frames a stream holds (waiting, being stylized, or stylized and not "
                                              "yet sent), at least 2; then the server stops reading and gRPC flow "
                                              "control slows the sender")

    # --- jobs (Gatys and Train) ---
    job_store: str = _opt("", "job store: empty for SQLite in the data directory, or a postgresql:// URL shared "
                              "by several replicas")
    job_workers: int = _opt(1, "jobs running at once on this server (they run at lower CPU priority than Stylize); 0 "
                               "runs none here and leaves them to other replicas of a shared --job-store")
    max_queued_jobs: int = _opt(100, "jobs that may wait; more get RESOURCE_EXHAUSTED")
    job_retention_hours: float = _opt(168.0, "finished jobs and their results are deleted after this many hours; "
                                             "0 keeps them forever")
    job_max_attempts: int = _opt(3, "times a job may start without ending cleanly (its worker or the server died, "
                                     "e.g. out of memory) before it is FAILED instead of run again")
    job_lease_seconds: float = _opt(30.0, "a running job whose worker has not renewed its lease for this long is "
                                          "queued again (shared stores)")
    gatys_max_iterations: int = _opt(2000, "most optimisation steps per scale of a Gatys job")
    gatys_default_iterations: int = _opt(100, "steps per scale when a Gatys request leaves iterations at 0")
    gatys_max_pixels: int = _opt(4_194_304, "largest Gatys output (width x height)")
    gatys_checkpoint_every: int = _opt(50, "Gatys steps between checkpoints of the image and optimiser state")

    # --- training ---
    datasets_root: str = _opt("", "root of Train's content_dir/style_dir; empty means <data-dir>/datasets")
    train_max_iterations: int = _opt(200_000, "most steps of a Train job")
    train_default_iterations: int = _opt(160_000, "steps when a Train request leaves iterations at 0")
    train_checkpoint_every: int = _opt(1000, "steps between checkpoints when a request leaves checkpoint_every at 0")
    train_max_batch_pixels: int = _opt(1_048_576, "most pixels of one Train step, batch_size x image_size^2 "
                                                  "(16 x 256^2; activation memory grows with it)")
    train_processes: int = _opt(1, "DistributedDataParallel processes per Train job when the request says 0")
    train_max_processes: int = _opt(8, "most DistributedDataParallel processes a Train request may ask for")

    # --- the model families' own options (model/registry.py), by name; a flag each, like the fields above ---
    model_options: Mapping[str, Any] = field(default_factory=dict, metadata={"families": True})

    def option(self, name: str, families: Sequence[Family] = FAMILIES) -> Any:
        """A family option's value: the one given, else the family's declared default (ValueError when unknown)."""
        if name in self.model_options:
            return self.model_options[name]
        declared = {option.name: option for family in families for option in family.options}
        if name not in declared:
            raise ValueError(f"no model family declares an option {name!r}")
        return declared[name].default

    def build_context(self, family: Family):  # -> model.declaration.BuildContext
        """What ``family``'s builder gets: device, precision, threads, random weights and its own option values."""
        return family.context(self.model_options, device=self.device, precision=self.precision,
                              threads=self.torch_threads, random_weights=self.random_weights,
                              random_seed=self.random_seed)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def datasets_path(self) -> Path:
        return Path(self.datasets_root) if self.datasets_root else self.data_path / "datasets"

    @property
    def cors_origins(self) -> tuple[str, ...]:
        """--http-cors-origins as a tuple: exact origins, ``("*",)`` for any, or empty (no CORS)."""
        return tuple(origin.strip() for origin in self.http_cors_origins.split(",") if origin.strip())

    @property
    def tls_enabled(self) -> bool:
        return bool(self.tls_cert or self.tls_key)

    def validate(self, families: Sequence[Family] = FAMILIES) -> Config:
        """Raises :class:`ConfigError` naming the first unusable setting; returns self for chaining."""
        for name in ("port", "metrics_port", "http_port"):
            if not 0 <= getattr(self, name) <= 65535:
                raise ConfigError(f"--{_flag(name)} must be in 0..65535")
        positive = ("max_message_bytes", "max_image_pixels", "max_output_pixels", "max_style_pixels", "max_styles",
                    "max_batch_size", "gatys_max_iterations", "gatys_default_iterations", "gatys_max_pixels",
                    "gatys_checkpoint_every", "job_max_attempts", "train_max_iterations", "train_default_iterations",
                    "train_checkpoint_every", "train_max_batch_pixels", "train_processes", "train_max_processes",
                    "trained_models_cached", "stream_max_frame_pixels", "stream_max_frames", "http_header_timeout",
                    "http_body_timeout", "http_idle_timeout", "http_max_connections", "http_max_streams",
                    "http_max_fields")
        for name in positive:
            if not getattr(self, name) > 0:  # "not >" refuses NaN too
                raise ConfigError(f"--{_flag(name)} must be positive")
        for name in ("http_header_timeout", "http_body_timeout", "http_idle_timeout"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"--{_flag(name)} must be a finite number of seconds")
        non_negative = ("workers", "torch_threads", "max_queue", "style_cache_entries", "response_cache_mb",
                        "tile_size", "max_queued_jobs", "job_workers", "grace_period", "max_connection_age",
                        "job_retention_hours", "max_batch_delay_ms", "job_lease_seconds", "retain_memory_mb",
                        "stream_max_concurrent", "stream_idle_timeout")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ConfigError(f"--{_flag(name)} must not be negative")
        if self.stream_max_buffered_frames < 2:  # one being stylized and one waiting, or LIVE could never drop
            raise ConfigError("--stream-max-buffered-frames must be at least 2")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("--tls-cert and --tls-key go together")
        if self.tls_client_ca and not self.tls_enabled:
            raise ConfigError("--tls-client-ca needs --tls-cert and --tls-key")
        if self.job_store and not self.job_store.startswith(("postgresql://", "postgres://")):
            raise ConfigError("--job-store must be empty (SQLite) or a postgresql:// URL")
        self._validate_cors_origins()
        self._validate_model_options(families)
        return self

    def _validate_model_options(self, families: Sequence[Family]) -> None:
        """Every given option is declared and within its choices; then each family checks its own together."""
        declared = {option.name: option for family in families for option in family.options}
        for name, value in self.model_options.items():
            option = declared.get(name)
            if option is None:
                raise ConfigError(f"no model family declares an option {name!r}")
            if option.choices and value not in option.choices:
                raise ConfigError(f"--{_flag(name)} must be one of {', '.join(option.choices)}, got {value!r}")
        for family in families:
            if family.validate is not None:
                try:
                    family.validate(self.build_context(family))
                except ValueError as exc:
                    raise ConfigError(str(exc)) from None

    def _validate_cors_origins(self) -> None:
        """An origin that can never equal a browser's ``Origin`` header would silently allow nothing."""
        origins = self.cors_origins
        if "*" in origins and len(origins) > 1:
            raise ConfigError("--http-cors-origins: '*' allows every origin, so it stands alone")
        for origin in origins:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ConfigError(f"--http-cors-origins: {origin!r} is not an origin; expected lower-case "
                                  "scheme://host[:port] without a path or trailing slash, e.g. https://app.example.com")


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"not a boolean: {text!r}")


@dataclass(frozen=True)
class Setting:
    """One flag and environment variable: a :class:`Config` field or a model family's own option."""

    name: str
    default: Any
    help: str
    kind: type  # str, int, float or bool
    choices: Sequence[str] | None = None
    family: str = ""  # the family that declares it; empty for the server's own settings

    @property
    def flag(self) -> str:
        return f"--{_flag(self.name)}"

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


_KINDS = {"str": str, "int": int, "float": float, "bool": bool}


def settings(families: Sequence[Family] = FAMILIES) -> list[Setting]:
    """Every setting: the Config fields, then each family's options. ValueError when a family's option would take a
    name that is already a setting (its flag and variable would be ambiguous)."""
    found = [Setting(f.name, f.default, f.metadata["help"], _KINDS[str(f.type)], f.metadata["choices"])
             for f in dataclasses.fields(Config) if not f.metadata.get("families")]
    taken = {s.name for s in found}
    for family in families:
        for option in family.options:
            if option.name in taken:
                raise ValueError(f"model family {family.name!r}: option {option.name!r} is already a setting")
            taken.add(option.name)
            found.append(Setting(option.name, option.default, option.help, option.kind, option.choices, family.name))
    return found


def build_parser(families: Sequence[Family] = FAMILIES) -> argparse.ArgumentParser:
    """An argparse parser with one flag per setting; defaults are left unset to detect flags given."""
    parser = argparse.ArgumentParser(
        prog="styletransfer-server",
        description="styletransfer gRPC server. Every flag can also be set as STYLETRANSFER_<FLAG_NAME>.",
    )
    for s in settings(families):
        owner = f"{s.family}: " if s.family else ""
        help_text = f"{owner}{s.help} (env {s.env}; default {s.default!r})"
        if s.kind is bool:
            parser.add_argument(s.flag, dest=s.name, action="store_const", const=True, default=None, help=help_text)
        else:
            parser.add_argument(s.flag, dest=s.name, type=s.kind, default=None, choices=s.choices, help=help_text)
    return parser


def _from_env(s: Setting, raw: str) -> Any:
    try:
        if s.kind is bool:
            return _parse_bool(raw)
        if s.kind in (int, float):
            return s.kind(raw)
    except ValueError as exc:
        raise ConfigError(f"{s.env}: {exc}") from None
    if s.choices and raw not in s.choices:
        raise ConfigError(f"{s.env} must be one of {', '.join(s.choices)}, got {raw!r}")
    return raw


def load_config(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None,
                families: Sequence[Family] = FAMILIES) -> Config:
    """Builds and validates the configuration from flags (``argv``) and the environment (``environ``), with the
    options of ``families``."""
    environ = os.environ if environ is None else environ
    args = build_parser(families).parse_args(argv)
    values: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for s in settings(families):
        given = getattr(args, s.name)
        if given is None and (raw := environ.get(s.env)) is not None:
            given = _from_env(s, raw)
        if given is not None:
            (options if s.family else values)[s.name] = given
    return Config(**values, model_options=options).validate(families)
