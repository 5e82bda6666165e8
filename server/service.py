"""The StyleTransfer servicer, composed of one mixin per RPC group.

Each mixin keeps its methods short (validate -> schedule -> respond) and relies on ``server.errors`` for status
codes. Another RPC group (e.g. jobs) plugs in by adding its mixin to ``StyleTransferService``'s bases; RPCs with no
mixin answer UNIMPLEMENTED through the generated base class.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from model.images import probe_image
from server.costs import check_display_name, check_style
from server.errors import REQUEST_ID_HEADER, DataLoss, InvalidArgument, server_stream, unary
from server.jobs.rpc import JobRpcs
from server.logs import request_id_var
from server.models import ModelEntry
from server.presets import PRESETS_TOKEN, PresetCatalogue, model_for
from server.response_cache import tagged
from server.runtime import Runtime
from server.stream import StreamSession
from server.styles import StyleRecord, StyleStore, style_id_for
from server.stylize import (
    cached_response,
    check_stylize_request,
    keep_response,
    registered_size,
    run_put_style,
    run_stylize,
)
from styletransfer.v1 import style_transfer_pb2 as pb
from styletransfer.v1 import style_transfer_pb2_grpc as pb_grpc

__all__ = ["StyleTransferService"]


def _timestamp(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def _deadline(context: grpc.aio.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def _cancel_event(context: grpc.aio.ServicerContext) -> threading.Event:
    event = threading.Event()
    context.add_done_callback(lambda _: event.set())
    return event


class _Base:
    runtime: Runtime

    async def _schedule(self, work, context: grpc.aio.ServicerContext):
        return await self.runtime.scheduler.run(work, deadline=_deadline(context), cancelled=_cancel_event(context))


class StylizeRpcs(_Base):
    @unary
    async def Stylize(self, request: pb.StylizeRequest, context: grpc.aio.ServicerContext) -> pb.StylizeResponse:
        received = time.perf_counter()
        # The request's presets choose their model; else the named one (may load a trained model).
        model = await asyncio.to_thread(model_for, self.runtime.presets, request, self.runtime.models.get)
        options = check_stylize_request(request, self.runtime, model)
        key, kept = await asyncio.to_thread(cached_response, self.runtime, request, model, options)
        if kept is not None:  # no queue, no compute: the bytes an identical request got
            return pb.StylizeResponse(image=kept.image, mime_type=kept.mime_type, width=kept.width,
                                      height=kept.height, model=kept.model, untrained=kept.untrained, cached=True,
                                      timing=pb.Timing(total_ms=(time.perf_counter() - received) * 1000),
                                      request_id=request_id_var.get())
        timed = await self._schedule(run_stylize(self.runtime, model, request, options), context)
        out = timed.value
        if key is not None:
            keep_response(self.runtime, key, model, out)
        self.runtime.metrics.compute.labels(model.info.name).observe(out.compute_ms / 1000)
        self.runtime.metrics.image_pixels.observe(out.width * out.height)
        timing = pb.Timing(queue_ms=timed.queue_seconds * 1000, decode_ms=out.decode_ms, compute_ms=out.compute_ms,
                           encode_ms=out.encode_ms, total_ms=(time.perf_counter() - received) * 1000)
        return pb.StylizeResponse(image=out.data, mime_type=out.mime_type, width=out.width, height=out.height,
                                  model=model.info.name, timing=timing, untrained=model.info.untrained,
                                  request_id=request_id_var.get())


class StreamRpcs(_Base):
    @server_stream
    async def StylizeStream(self, request_iterator: AsyncIterator[pb.StylizeStreamRequest],
                            context: grpc.aio.ServicerContext) -> AsyncIterator[pb.StylizeStreamResponse]:
        with self.runtime.streams.admit():
            # at once: the caller learns its request id, and that the stream was admitted, before sending frames
            await context.send_initial_metadata(((REQUEST_ID_HEADER, request_id_var.get()),))
            session = StreamSession(self.runtime, deadline=_deadline(context), cancelled=_cancel_event(context),
                                    request_id=request_id_var.get())
            async for response in session.run(request_iterator):
                yield response


def _style_message(record: StyleRecord, thumbnail: bytes = b"") -> pb.Style:
    return pb.Style(style_id=record.style_id, display_name=record.display_name, width=record.width,
                    height=record.height, style_size=record.style_size, create_time=_timestamp(record.create_time),
                    size_bytes=record.size_bytes, thumbnail=thumbnail)


async def _with_thumbnails(styles: StyleStore, records: list[StyleRecord]) -> list[pb.Style]:
    """Style messages with their thumbnails (read or made off the event loop)."""
    thumbnails = await asyncio.to_thread(lambda: [styles.thumbnail(r.style_id) for r in records])
    return [_style_message(r, t) for r, t in zip(records, thumbnails, strict=True)]


async def _presets_with_thumbnails(presets: PresetCatalogue, style_ids: list[str]) -> list[pb.Style]:
    """Preset messages with their thumbnails (rendered off the event loop the first time)."""
    thumbnails = await asyncio.to_thread(lambda: [presets.thumbnail(i) for i in style_ids])
    return [presets.message(i, t) for i, t in zip(style_ids, thumbnails, strict=True)]


def _list_page(presets: PresetCatalogue, styles: StyleStore, page_size: int, token: str
               ) -> tuple[list[str], list[StyleRecord], str]:
    """A ListStyles page: presets first, then registered styles. Tokens ``presets:<n>`` continue the presets at
    ``n`` (``n`` = their count: the registered styles from their first); others are the style store's."""
    ids = [e.preset.style_id for e in presets.entries()]
    if token and not token.startswith(PRESETS_TOKEN):
        records, following = styles.list(page_size, token)
        return [], records, following
    try:
        offset = int(token.removeprefix(PRESETS_TOKEN) or 0)
    except ValueError:
        raise InvalidArgument("page_token is not a token this server issued") from None
    page = ids[offset : offset + page_size]
    if offset + len(page) < len(ids):
        return page, [], f"{PRESETS_TOKEN}{offset + len(page)}"
    room = page_size - len(page)
    if room == 0:  # the presets filled the page: a token only if registered styles follow
        return page, [], f"{PRESETS_TOKEN}{len(ids)}" if styles.list(1, "")[0] else ""
    records, following = styles.list(room, "")
    return page, records, following


class StyleRpcs(_Base):
    @unary
    async def PutStyle(self, request: pb.PutStyleRequest, context: grpc.aio.ServicerContext) -> pb.Style:
        if not request.image:
            raise InvalidArgument("image: a style image is required")
        check_display_name(request.display_name)
        config = self.runtime.config
        # Without a size, each model encodes the style at its own default size (registered_size).
        size = request.style_size if request.HasField("style_size") else None
        model = self.runtime.models.default if self.runtime.models.default_name else None  # encodes it now
        if model is not None and not model.capabilities.style_images:
            model = None  # a presets-only default: each model makes its code on first use
        width, height = probe_image(request.image, field="image", max_pixels=config.max_image_pixels)
        check_style("image", width, height, registered_size(model, size), config,
                    model.capabilities.min_side if model is not None else 1)
        style_id = style_id_for(request.image, size)
        styles = self.runtime.styles
        with contextlib.suppress(LookupError, DataLoss):  # already registered: idempotent (a damaged one is replaced)
            return (await _with_thumbnails(styles, [await asyncio.to_thread(styles.get, style_id)]))[0]
        timed = await self._schedule(run_put_style(self.runtime, model, request.image, size), context)
        code, (width, height), image = timed.value
        record = StyleRecord(style_id, request.display_name, width, height, size, time.time(), len(image))
        stored, _ = await asyncio.to_thread(styles.put, image, record, code)
        if code is not None:
            self.runtime.registered_codes.put((style_id, code.producer), code)
        return (await _with_thumbnails(styles, [stored]))[0]

    @unary
    async def GetStyle(self, request: pb.GetStyleRequest, context: grpc.aio.ServicerContext) -> pb.Style:
        if self.runtime.presets.get(request.style_id) is not None:
            return (await _presets_with_thumbnails(self.runtime.presets, [request.style_id]))[0]
        record = await asyncio.to_thread(self.runtime.styles.get, request.style_id)
        return (await _with_thumbnails(self.runtime.styles, [record]))[0]

    @unary
    async def ListStyles(self, request: pb.ListStylesRequest, context: grpc.aio.ServicerContext
                         ) -> pb.ListStylesResponse:
        if request.page_size > 1000:
            raise InvalidArgument("page_size must be at most 1000")
        # Parsing every style's metadata takes long with thousands of styles: off the event loop (health checks and
        # every other call are answered meanwhile).
        presets, records, token = await asyncio.to_thread(_list_page, self.runtime.presets, self.runtime.styles,
                                                          request.page_size or 100, request.page_token)
        styles = await _presets_with_thumbnails(self.runtime.presets, presets)
        styles += await _with_thumbnails(self.runtime.styles, records)
        return pb.ListStylesResponse(styles=styles, next_page_token=token)

    @unary
    async def DeleteStyle(self, request: pb.DeleteStyleRequest, context: grpc.aio.ServicerContext
                          ) -> pb.DeleteStyleResponse:
        self.runtime.presets.refuse_delete(request.style_id)
        await asyncio.to_thread(self.runtime.styles.delete, request.style_id)
        self.runtime.responses.discard_where(tagged([request.style_id]))
        self.runtime.registered_codes.discard_where(lambda key: key[0] == request.style_id)
        return pb.DeleteStyleResponse()


def _model_message(entry: ModelEntry) -> pb.ModelInfo:
    info = entry.info
    weights, provenance = dict(info.weights), dict(info.provenance)
    return pb.ModelInfo(
        name=info.name, family=info.family, version=info.version, weights_sha256=weights, provenance=provenance,
        encoder_source=provenance.get("encoder", ""), decoder_source=provenance.get("decoder", ""),
        encoder_sha256=weights.get("encoder", ""), decoder_sha256=weights.get("decoder", ""), device=info.device,
        dtype=info.dtype, untrained=info.untrained, is_default=entry.is_default, trained=entry.trained,
        problem=entry.problem, metadata={k: str(v) for k, v in info.metadata.items()},
        create_time=_timestamp(entry.create_time), masks=entry.capabilities.masks.value,
        style_images=entry.capabilities.style_images,
        defaults=pb.ModelDefaults(style_size=info.defaults.style_size, alpha=info.defaults.alpha,
                                  content_size=info.defaults.content_size))


class ModelRpcs(_Base):
    @unary
    async def ListModels(self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
                         ) -> pb.ListModelsResponse:
        entries = await asyncio.to_thread(self.runtime.models.list)  # a directory scan: off the event loop
        return pb.ListModelsResponse(models=[_model_message(e) for e in entries],
                                     default_model=self.runtime.models.default_name)

    @unary
    async def DeleteModel(self, request: pb.DeleteModelRequest, context: grpc.aio.ServicerContext
                          ) -> pb.DeleteModelResponse:
        await asyncio.to_thread(self.runtime.models.delete, request.name)
        self.runtime.responses.discard_where(tagged([request.name.rpartition("/")[2]]))  # a trained model's name
        return pb.DeleteModelResponse()


class StyleTransferService(StylizeRpcs, StreamRpcs, StyleRpcs, ModelRpcs, JobRpcs, pb_grpc.StyleTransferServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
