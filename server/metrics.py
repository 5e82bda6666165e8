"""Every Prometheus metric the server exports, in one registry per server instance (tests run several at once).

Names follow Prometheus conventions (``_total`` counters, ``_seconds`` durations), all prefixed ``styletransfer_``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.process_collector import ProcessCollector

__all__ = ["LATENCY_BUCKETS", "Metrics", "transport_of"]

#: 10 ms .. 60 s, roughly x2 apart: a 256 px avatar on a GPU up to a 16 MP print on a CPU.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 60.0)
PIXEL_BUCKETS = (65_536, 262_144, 1_048_576, 4_194_304, 16_777_216)
JOB_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)


def transport_of(peer: str) -> str:
    """The ``transport`` label of a call: ``http`` for the HTTP gateway, whose calls alone arrive over the server's
    Unix socket (``server.http.gateway``), ``grpc`` for the rest."""
    return "http" if peer.startswith("unix:") else "grpc"


#: model_info's labels, each an attribute of :class:`ServedModel` but ``model`` (its ``name``).
MODEL_INFO_LABELS = ("model", "family", "version", "device", "dtype", "untrained")


class ServedModel(Protocol):
    """What model_info labels a served model by (``model.family.ModelInfo`` has these)."""

    name: str
    family: str
    version: str
    device: str
    dtype: str
    untrained: bool


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        r = self.registry
        p = "styletransfer_"
        self.requests = Counter(p + "requests", "RPCs by method, status code and transport (grpc or http)",
                                ["method", "code", "transport"], registry=r)
        # By status code: latency objectives read OK calls only (instant rejections would pull quantiles down).
        self.request_duration = Histogram(p + "request_duration_seconds", "end-to-end RPC latency in the server",
                                          ["method", "code", "transport"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_wait = Histogram(p + "queue_wait_seconds", "time a Stylize call waited for a worker",
                                    buckets=LATENCY_BUCKETS, registry=r)
        self.compute = Histogram(p + "compute_seconds", "model compute time of a Stylize call", ["model"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.inflight = Gauge(p + "inflight_requests", "Stylize calls running on a worker", registry=r)
        self.queued = Gauge(p + "queued_requests", "Stylize calls waiting for a worker", registry=r)
        self.queue_capacity = Gauge(p + "queue_capacity", "Stylize calls that may wait (--max-queue)", registry=r)
        self.stopped = Counter(p + "computations_stopped", "computations stopped between layers", ["reason"],
                               registry=r)
        self.image_pixels = Histogram(p + "image_pixels", "pixels of stylized content images",
                                      buckets=PIXEL_BUCKETS, registry=r)
        self.style_cache_hits = Counter(p + "style_cache_hits", "style statistics served from a cache", ["cache"],
                                        registry=r)
        self.style_cache_misses = Counter(p + "style_cache_misses", "style statistics that had to be computed",
                                          ["cache"], registry=r)
        self.response_cache_hits = Counter(p + "response_cache_hits", "Stylize calls answered from the response cache",
                                           registry=r)
        self.response_cache_misses = Counter(p + "response_cache_misses", "Stylize calls the response cache could not "
                                             "answer (computed, then kept)", registry=r)
        self.response_cache_bytes = Gauge(p + "response_cache_bytes", "bytes held by the response cache", registry=r)
        self.response_cache_entries = Gauge(p + "response_cache_entries", "responses held by the response cache",
                                            registry=r)
        self.model_info = Gauge(p + "model_info", "served models (value 1)", MODEL_INFO_LABELS, registry=r)
        self.batch_size = Histogram(p + "batch_size", "requests per model batch", buckets=(1, 2, 4, 8, 16, 32),
                                    registry=r)
        self.streams_active = Gauge(p + "streams_active", "StylizeStream calls open", registry=r)
        self.stream_frames = Counter(p + "stream_frames", "stream frames by model and what happened to them: "
                                     "received, stylized, dropped (replaced by a newer frame, LIVE pacing), failed",
                                     ["model", "event"], registry=r)
        self.stream_frame_latency = Histogram(p + "stream_frame_latency_seconds", "from reading a stream's frame to "
                                              "its stylized response", ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.jobs_transitions = Counter(p + "jobs", "job state transitions", ["kind", "state"], registry=r)
        self.jobs = Gauge(p + "jobs_current", "jobs by kind and state", ["kind", "state"], registry=r)
        self.job_queue_length = Gauge(p + "job_queue_length", "jobs waiting for a worker", registry=r)
        self.job_duration = Histogram(p + "job_duration_seconds", "running time of finished jobs", ["kind"],
                                      buckets=JOB_BUCKETS, registry=r)
        self.job_step = Gauge(p + "job_step", "current step of running jobs", ["job_id", "kind"], registry=r)
        self.job_loss = Gauge(p + "job_loss", "latest loss terms of running jobs", ["job_id", "kind", "term"],
                              registry=r)
        self.train_steps_per_second = Gauge(p + "train_steps_per_second", "training speed of running jobs",
                                            ["job_id"], registry=r)
        self.http_connections = Gauge(p + "http_connections", "open connections to the HTTP port", registry=r)
        self.http_streams = Gauge(p + "http_streams", "open streaming replies on the HTTP port", registry=r)
        self.http_closed = Counter(p + "http_connections_closed", "HTTP connections the server closed early, by "
                                   "reason: header or body timeout, a client that stopped reading, a malformed "
                                   "request", ["reason"], registry=r)
        for cache in ("registered", "inline"):
            self.style_cache_hits.labels(cache)
            self.style_cache_misses.labels(cache)

    def set_response_cache_size(self, nbytes: int, entries: int) -> None:
        self.response_cache_bytes.set(nbytes)
        self.response_cache_entries.set(entries)

    def observe_call(self, method: str, code: str, seconds: float, transport: str = "grpc") -> None:
        self.requests.labels(method, code, transport).inc()
        self.request_duration.labels(method, code, transport).observe(seconds)

    def set_models(self, models: Iterable[ServedModel]) -> None:
        """Makes model_info list exactly ``models``: a series per served model, none left for a removed one."""
        wanted = {(m.name, m.family, m.version, m.device, m.dtype, str(m.untrained).lower()) for m in models}
        current = {tuple(s.labels[k] for k in MODEL_INFO_LABELS)
                   for metric in self.model_info.collect() for s in metric.samples}
        for labels in current - wanted:
            with contextlib.suppress(KeyError):
                self.model_info.remove(*labels)
        for labels in wanted:
            self.model_info.labels(*labels).set(1)

    def forget_job(self, job_id: str, kind: str) -> None:
        """Drops a finished job's per-job series so the label set does not grow without bound."""
        for gauge, labels in ((self.job_step, (job_id, kind)), (self.train_steps_per_second, (job_id,))):
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)
        for term in [s.labels["term"] for m in self.job_loss.collect() for s in m.samples
                     if s.labels.get("job_id") == job_id]:
            with contextlib.suppress(KeyError):
                self.job_loss.remove(job_id, kind, term)

    def serve(self, host: str, port: int) -> object | None:
        """Starts the /metrics HTTP endpoint; returns the server (port 0 disables it)."""
        if port == 0:
            return None
        server, _thread = start_http_server(port, addr=host or "0.0.0.0", registry=self.registry)
        return server
