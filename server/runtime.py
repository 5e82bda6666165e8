"""Everything a servicer needs, built once at start-up and shared by the RPC groups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from model.family import StyleCode
from server.config import Config
from server.limits import Scheduler, StreamAdmission
from server.metrics import Metrics
from server.models import ModelRegistry
from server.presets import PresetCatalogue
from server.response_cache import CachedResponse
from server.style_cache import LRUCache
from server.styles import StyleStore

__all__ = ["Runtime"]


@dataclass
class Runtime:
    config: Config
    metrics: Metrics
    models: ModelRegistry
    styles: StyleStore
    presets: PresetCatalogue  # the built-in models' presets, listed beside ``styles``
    scheduler: Scheduler
    registered_codes: LRUCache[StyleCode]  # (style_id, code producer) -> codes of registered styles
    inline_codes: LRUCache[StyleCode]  # (image sha, style size, code producer) -> codes of inline styles
    responses: LRUCache[CachedResponse]  # Stylize responses of identical requests, weighed in bytes
    streams: StreamAdmission  # open StylizeStream calls
    jobs: Any = None  # the job manager (server/jobs), when jobs are enabled
    jobs_unavailable: str = ""  # why ``jobs`` is None although jobs are configured (the job store cannot be opened)
    batcher: Any = None  # the dynamic batcher (server/batcher.py), when batching is on
