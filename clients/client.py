"""A typed Python client for the styletransfer service. Imports grpc and the generated stubs only (never torch).

Every RPC error becomes one exception, :class:`StyleTransferError`, carrying the gRPC status code and the server's
message; every call has a timeout.
"""

from __future__ import annotations

import dataclasses
import enum
import io
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import grpc

from styletransfer.v1 import style_transfer_pb2 as pb
from styletransfer.v1 import style_transfer_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "EXTENSIONS",
    "FrameResult",
    "ImageInput",
    "Job",
    "JobKind",
    "JobProgress",
    "JobResult",
    "JobState",
    "ModelDefaults",
    "ModelInfo",
    "StreamCounters",
    "StreamSettings",
    "StyleClient",
    "StyleInfo",
    "StyleRef",
    "StyleTransferError",
    "StylizeResult",
    "TLSConfig",
    "format_for_path",
]

#: Largest message sent or received, and so the most read of an image file; also the server's --max-message-bytes.
DEFAULT_MAX_MESSAGE = 32 * 1024 * 1024


class StyleTransferError(Exception):
    """A failed call: ``code`` is the gRPC status (``grpc.StatusCode.INVALID_ARGUMENT``...), ``details`` why."""

    def __init__(self, code: grpc.StatusCode, details: str, request_id: str = "") -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        self.request_id = request_id  # the server's id of the call, as in its logs

    @classmethod
    def from_rpc_error(cls, exc: grpc.RpcError) -> StyleTransferError:
        trailers = dict(exc.trailing_metadata() or ()) if hasattr(exc, "trailing_metadata") else {}
        return cls(exc.code(), exc.details() or "", str(trailers.get("x-request-id", "")))


@dataclass(frozen=True)
class StyleRef:
    """A registered style, by the id PutStyle returned."""

    style_id: str


ImageInput = Union[str, os.PathLike, bytes, "Image.Image"]
StyleInput = Union[ImageInput, StyleRef]  # noqa: UP007 - ImageInput holds a string forward reference


@dataclass(frozen=True)
class TLSConfig:
    """TLS settings: ``root_certificates`` to trust (PEM; None = system roots), and a client key pair for mTLS."""

    root_certificates: bytes | None = None
    private_key: bytes | None = None
    certificate_chain: bytes | None = None


#: Output formats by file extension (the names the requests' ``output_format`` takes).
EXTENSIONS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}


def format_for_path(path: str | os.PathLike) -> str:
    """The image format a file name asks for ("png", "jpeg", "webp"); ValueError for any other extension."""
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        raise ValueError(f"{os.fspath(path)}: cannot write {suffix or 'a file without extension'}; "
                         f"use one of {', '.join(EXTENSIONS)}")
    return EXTENSIONS[suffix]


class _EncodedImage:
    """What a result holding encoded image bytes (``self.image``, ``self.mime_type``) can do with them."""

    image: bytes
    mime_type: str

    def to_pil(self) -> Image.Image:
        from PIL import Image

        return Image.open(io.BytesIO(self.image))

    def save(self, path: str | os.PathLike) -> None:
        """Writes the image in the format ``path``'s extension names: the server's bytes as they are when they are
        in that format already, else re-encoded (e.g. a PNG job result saved as ``.webp``)."""
        fmt = format_for_path(path)
        if self.mime_type == f"image/{fmt}":
            Path(path).write_bytes(self.image)
            return
        image = self.to_pil()
        if fmt == "jpeg" and image.mode not in ("RGB", "L"):
            image = image.convert("RGB")  # JPEG has no alpha channel
        image.save(path, format=fmt.upper(), **({"lossless": True} if fmt == "webp" else {"quality": 95}))


@dataclass(frozen=True)
class StylizeResult(_EncodedImage):
    image: bytes
    mime_type: str
    width: int
    height: int
    model: str
    untrained: bool
    request_id: str
    timing: dict[str, float] = field(default_factory=dict)
    cached: bool = False  # served from the server's response cache (an identical request computed it)


@dataclass(frozen=True)
class StyleInfo:
    style_id: str
    display_name: str
    width: int  # of the stored image; 0 for presets, which have no image
    height: int
    style_size: int | None  # None: registered without one; each model encodes it at its own default size
    size_bytes: int
    builtin: bool = False  # a model's built-in preset: read-only, used with its model only
    model: str = ""  # the model a preset belongs to; empty for registered styles
    thumbnail: bytes = b""  # a JPEG for galleries, at most 160 px a side


@dataclass(frozen=True)
class ModelDefaults:
    """What a model uses for the options a call leaves unset (they differ between families)."""

    style_size: int
    alpha: float
    content_size: int


@dataclass(frozen=True)
class ModelInfo:
    name: str
    encoder_source: str
    decoder_source: str
    encoder_sha256: str
    decoder_sha256: str
    device: str
    dtype: str
    untrained: bool
    is_default: bool
    metadata: dict[str, str]
    family: str = ""  # e.g. "adain", "magenta"
    version: str = ""  # within the family; requests may name the model "family/version"
    weights_sha256: dict[str, str] = field(default_factory=dict)  # role ("encoder", "decoder", ...) -> hex
    provenance: dict[str, str] = field(default_factory=dict)  # role -> file path, package or "random(seed=N)"
    trained: bool = False  # made by a Train job: delete_model may remove it
    problem: str = ""  # why the model cannot be used; empty when it can
    masks: str = ""  # "native" or "composited": how the model honours masks
    style_images: bool = True  # False: it renders only its built-in presets (list_styles: builtin, model)
    defaults: ModelDefaults | None = None  # None from a server that does not report them


@dataclass(frozen=True)
class JobResult(_EncodedImage):
    image: bytes
    mime_type: str
    width: int
    height: int


class JobState(enum.IntEnum):
    """A job's state (the proto's ``JobState`` values, so they compare equal to ``pb.JOB_STATE_*``)."""

    UNSPECIFIED = pb.JOB_STATE_UNSPECIFIED
    QUEUED = pb.JOB_STATE_QUEUED
    RUNNING = pb.JOB_STATE_RUNNING
    SUCCEEDED = pb.JOB_STATE_SUCCEEDED
    FAILED = pb.JOB_STATE_FAILED
    CANCELLED = pb.JOB_STATE_CANCELLED

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class JobKind(enum.IntEnum):
    """What a job does (the proto's ``JobKind`` values)."""

    UNSPECIFIED = pb.JOB_KIND_UNSPECIFIED
    GATYS = pb.JOB_KIND_GATYS
    TRAIN = pb.JOB_KIND_TRAIN


@dataclass(frozen=True)
class JobProgress:
    step: int
    total_steps: int  # 0 until a worker has started the job
    loss: float
    losses: dict[str, float]
    elapsed_seconds: float  # running time over all attempts
    eta_seconds: float  # the server's estimate from this attempt's rate


@dataclass(frozen=True)
class Job:
    id: str
    kind: JobKind
    state: JobState
    progress: JobProgress
    error: str
    model_name: str
    attempts: int
    create_time: datetime | None
    start_time: datetime | None
    end_time: datetime | None

    @classmethod
    def from_proto(cls, job: pb.Job) -> Job:
        def when(field: str) -> datetime | None:
            return getattr(job, field).ToDatetime(tzinfo=UTC) if job.HasField(field) else None

        p = job.progress
        progress = JobProgress(p.step, p.total_steps, p.loss, dict(p.losses), p.elapsed_seconds, p.eta_seconds)
        return cls(job.id, JobKind(job.kind), JobState(job.state), progress, job.error, job.model_name,
                   job.attempts, when("create_time"), when("start_time"), when("end_time"))


@dataclass(frozen=True)
class StreamCounters:
    """A stream's counts of frames as of one result."""

    received: int
    stylized: int
    dropped: int
    failed: int


_CODES = {code.value[0]: code for code in grpc.StatusCode}


@dataclass(frozen=True)
class FrameResult(_EncodedImage):
    """One frame of a stream: ``image`` when it was stylized, else ``dropped`` (LIVE pacing) or ``error``."""

    sequence: int  # the frame's index among the frames sent
    image: bytes
    mime_type: str
    width: int
    height: int
    model: str
    untrained: bool
    settings_version: int  # 1 for the first settings, one more for each StreamSettings sent among the frames
    timing: dict[str, float]
    counters: StreamCounters
    dropped: bool = False
    error: StyleTransferError | None = None

    @property
    def ok(self) -> bool:
        return not self.dropped and self.error is None

    @classmethod
    def from_proto(cls, reply: pb.StylizeStreamResponse) -> FrameResult:
        c = reply.counters
        error = None
        if reply.HasField("error"):
            error = StyleTransferError(_CODES.get(reply.error.code, grpc.StatusCode.UNKNOWN), reply.error.message,
                                       reply.request_id)
        return cls(reply.sequence, reply.image, reply.mime_type, reply.width, reply.height, reply.model,
                   reply.untrained, reply.settings_version, _timing(reply.timing),
                   StreamCounters(c.frames_received, c.frames_stylized, c.frames_dropped, c.frames_failed),
                   reply.dropped, error)


# Local files that cannot be read fail like a server's refusal would, with the code closest to the cause.
_READ_ERRORS = ((FileNotFoundError, grpc.StatusCode.NOT_FOUND), (PermissionError, grpc.StatusCode.PERMISSION_DENIED),
                (OSError, grpc.StatusCode.INVALID_ARGUMENT))


def _read_file(path: str | os.PathLike, limit: int) -> bytes:
    """A file's bytes, read no further than one message can carry (``/dev/zero`` is not read for ever)."""
    try:
        with open(path, "rb") as file:
            data = file.read(limit + 1)
    except OSError as exc:
        code = next(code for kind, code in _READ_ERRORS if isinstance(exc, kind))
        raise StyleTransferError(code, f"{os.fspath(path)}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise StyleTransferError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{os.fspath(path)}: larger than {limit} bytes, "
                                 "the most one message carries (max_message_bytes)")
    return data


def _image_bytes(image: ImageInput, limit: int = DEFAULT_MAX_MESSAGE) -> bytes:
    if isinstance(image, bytes):
        return image
    if isinstance(image, (str, os.PathLike)):
        return _read_file(image, limit)
    buf = io.BytesIO()  # a PIL image: sent losslessly
    image.save(buf, format="PNG")
    return buf.getvalue()


def _style_input(style: StyleInput, weight: float, mask: ImageInput | None,
                 limit: int = DEFAULT_MAX_MESSAGE) -> pb.StyleInput:
    message = pb.StyleInput(weight=weight)
    if isinstance(style, StyleRef):
        message.style_id = style.style_id
    else:
        message.image = _image_bytes(style, limit)
    if mask is not None:
        message.mask = _image_bytes(mask, limit)
    return message


_FORMATS = {"png": pb.IMAGE_FORMAT_PNG, "jpeg": pb.IMAGE_FORMAT_JPEG, "jpg": pb.IMAGE_FORMAT_JPEG,
            "webp": pb.IMAGE_FORMAT_WEBP}
_COLOR = {False: (False, pb.COLOR_PRESERVATION_UNSPECIFIED), True: (True, pb.COLOR_PRESERVATION_CORAL),
          "coral": (True, pb.COLOR_PRESERVATION_CORAL), "luminance": (True, pb.COLOR_PRESERVATION_LUMINANCE)}


def _fill(message: Any, style: StyleInput | Sequence[StyleInput], *, alpha: float | None = None,
          weights: Sequence[float] | None = None, masks: Sequence[ImageInput | None] | None = None,
          preserve_color: bool | str = False, content_size: int | None = None, style_size: int | None = None,
          model: str = "", output_format: str = "png", quality: int = 0, flatten_alpha: bool = False,
          limit: int = DEFAULT_MAX_MESSAGE) -> Any:
    """Sets the fields a Stylize request and a stream's settings share (they have the same names in both)."""
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    weights = list(weights) if weights is not None else [1.0] * len(styles)
    masks = list(masks) if masks is not None else [None] * len(styles)
    if len(weights) != len(styles) or len(masks) != len(styles):
        raise ValueError("weights and masks must have one entry per style")
    if output_format not in _FORMATS:
        raise ValueError(f"output_format must be one of {', '.join(_FORMATS)}")
    if preserve_color not in _COLOR:
        raise ValueError("preserve_color must be False, True, 'coral' or 'luminance'")
    message.styles.extend(_style_input(s, w, m, limit) for s, w, m in zip(styles, weights, masks, strict=True))
    message.preserve_color, message.color_preservation = _COLOR[preserve_color]
    message.model, message.output_format, message.quality = model, _FORMATS[output_format], quality
    message.flatten_alpha = flatten_alpha
    for name, value in (("alpha", alpha), ("content_size", content_size), ("style_size", style_size)):
        if value is not None:
            setattr(message, name, value)
    return message


def _timing(timing: pb.Timing) -> dict[str, float]:
    return {name: getattr(timing, name) for name in ("queue_ms", "decode_ms", "compute_ms", "encode_ms", "total_ms")}


_PACING = {"every_frame": pb.STREAM_PACING_EVERY_FRAME, "live": pb.STREAM_PACING_LIVE}


@dataclass(frozen=True)
class StreamSettings:
    """A stream's settings: :meth:`StyleClient.stylize_stream` builds the first from its arguments, and one placed
    among the frames replaces them from the next frame on. The fields are :meth:`StyleClient.stylize`'s, plus
    ``temporal``: True stabilises the frames (less flicker) at the server's default strength, a number in [0, 1]
    sets the strength."""

    style: StyleInput | Sequence[StyleInput]
    alpha: float | None = None
    weights: Sequence[float] | None = None
    masks: Sequence[ImageInput | None] | None = None
    preserve_color: bool | str = False
    content_size: int | None = None
    style_size: int | None = None
    model: str = ""
    output_format: str = "png"
    quality: int = 0
    flatten_alpha: bool = False
    temporal: bool | float = False

    def to_proto(self, pacing: int = pb.STREAM_PACING_UNSPECIFIED, limit: int = DEFAULT_MAX_MESSAGE
                 ) -> pb.StreamSettings:
        """The settings message; image files are read no further than ``limit`` bytes."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("style",
                                                                                                     "temporal")}
        settings = _fill(pb.StreamSettings(pacing=pacing), self.style, **fields, limit=limit)
        if self.temporal is not False:
            settings.temporal.enabled = True
            if self.temporal is not True:
                settings.temporal.strength = self.temporal
        return settings


def _stream_messages(first: pb.StreamSettings, frames: Iterable[ImageInput | StreamSettings],
                     failure: list[BaseException], limit: int) -> Iterator[pb.StylizeStreamRequest]:
    """The messages of a stream: the settings, then each frame numbered by its index. An exception of ``frames``
    (an unreadable file) ends the stream cleanly and is kept in ``failure`` for the caller to raise: raised here,
    gRPC would cancel the call and log it."""
    try:
        yield pb.StylizeStreamRequest(settings=first)
        sequence = 0
        for item in frames:
            if isinstance(item, StreamSettings):
                yield pb.StylizeStreamRequest(settings=item.to_proto(limit=limit))
                continue
            yield pb.StylizeStreamRequest(frame=pb.StreamFrame(image=_image_bytes(item, limit), sequence=sequence))
            sequence += 1
    except Exception as exc:
        failure.append(exc)


def _in_order(results: Iterable[FrameResult]) -> Iterator[FrameResult]:
    """Results by sequence number. Under LIVE pacing a dropped frame (or one refused on receipt) is answered at once,
    before the frame still being stylized; it waits here for its turn."""
    early: dict[int, FrameResult] = {}
    expected = 0
    for result in results:
        early[result.sequence] = result
        while expected in early:
            yield early.pop(expected)
            expected += 1
    yield from (early[k] for k in sorted(early))


def _defaults(message: pb.ModelInfo) -> ModelDefaults | None:
    if not message.HasField("defaults"):
        return None
    d = message.defaults
    return ModelDefaults(d.style_size, round(d.alpha, 6), d.content_size)  # alpha travels as a 32-bit float


class StyleClient:
    """``with StyleClient("localhost:50051") as client: client.stylize("photo.jpg", "starry.jpg").save("out.png")``."""

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        tls: bool | TLSConfig = False,
        timeout: float = 60.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE,
    ) -> None:
        options = [("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes)]
        if tls:
            cfg = tls if isinstance(tls, TLSConfig) else TLSConfig()
            creds = grpc.ssl_channel_credentials(cfg.root_certificates, cfg.private_key, cfg.certificate_chain)
            self._channel = grpc.secure_channel(target, creds, options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self._stub = pb_grpc.StyleTransferStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout = timeout
        self.target = target
        self.max_message_bytes = max_message_bytes  # also the most read of an image file

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> StyleClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        try:
            return getattr(self._stub, method)(request, timeout=timeout or self.timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise StyleTransferError.from_rpc_error(exc) from None

    def _stream(self, method: str, request: Any, timeout: float | None) -> Iterator[Any]:
        try:
            yield from getattr(self._stub, method)(request, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise StyleTransferError.from_rpc_error(exc) from None

    # --- Stylize ------------------------------------------------------------------------------------------------

    def stylize(
        self,
        content: ImageInput,
        style: StyleInput | Sequence[StyleInput],
        *,
        alpha: float | None = None,
        weights: Sequence[float] | None = None,
        masks: Sequence[ImageInput | None] | None = None,
        preserve_color: bool | str = False,
        content_size: int | None = None,
        style_size: int | None = None,
        model: str = "",
        output_format: str = "png",
        quality: int = 0,
        flatten_alpha: bool = False,
        skip_response_cache: bool = False,
        timeout: float | None = None,
    ) -> StylizeResult:
        """Stylizes ``content`` with one style or several (blended by ``weights``, optionally masked). A style is an
        image or a ``StyleRef`` (a registered style or a built-in preset, which picks its model when ``model`` is
        empty).

        A transparent content keeps its alpha channel in PNG and WebP results unless ``flatten_alpha``.
        ``skip_response_cache`` makes the server compute the image even when it holds an identical request's."""
        limit = self.max_message_bytes
        request = _fill(pb.StylizeRequest(content=_image_bytes(content, limit),
                                          skip_response_cache=skip_response_cache),
                        style, alpha=alpha, weights=weights, masks=masks, preserve_color=preserve_color,
                        content_size=content_size, style_size=style_size, model=model, output_format=output_format,
                        quality=quality, flatten_alpha=flatten_alpha, limit=limit)
        reply = self._call("Stylize", request, timeout)
        return StylizeResult(reply.image, reply.mime_type, reply.width, reply.height, reply.model, reply.untrained,
                             reply.request_id, _timing(reply.timing), reply.cached)

    def stylize_stream(
        self,
        frames: Iterable[ImageInput | StreamSettings],
        style: StyleInput | Sequence[StyleInput],
        *,
        pacing: str = "every_frame",
        timeout: float | None = None,
        **options: Any,
    ) -> Iterator[FrameResult]:
        """Stylizes ``frames`` (any iterable of images: paths, bytes, PIL images) over one stream, yielding one
        :class:`FrameResult` per frame, in order, as results arrive. The styles are encoded once for the stream.

        ``options`` are :class:`StreamSettings`' fields (``alpha``, ``weights``, ``content_size``, ``temporal``,
        ...). A :class:`StreamSettings` among the frames replaces the settings from the next frame on. ``pacing``
        "every_frame" stylizes every frame (a faster producer is slowed down); "live" keeps latency bounded by
        dropping frames that wait while a newer one arrives (their results have ``dropped`` set). A frame the
        server cannot stylize has ``error`` set and the stream goes on; a stream error raises StyleTransferError,
        and so does an exception of ``frames`` (after the results of the frames before it). No timeout unless given.
        """
        if pacing not in _PACING:
            raise ValueError(f"pacing must be one of {', '.join(_PACING)}")
        settings = StreamSettings(style, **options)
        first = settings.to_proto(_PACING[pacing], self.max_message_bytes)  # bad options raise here, not later
        return self._stream_results(first, frames, timeout)

    def _stream_results(self, first: pb.StreamSettings, frames: Iterable[ImageInput | StreamSettings],
                        timeout: float | None) -> Iterator[FrameResult]:
        failure: list[BaseException] = []
        call = self._stub.StylizeStream(_stream_messages(first, frames, failure, self.max_message_bytes),
                                        timeout=timeout,
                                        metadata=self._metadata)
        try:
            yield from _in_order(map(FrameResult.from_proto, call))
        except grpc.RpcError as exc:
            raise StyleTransferError.from_rpc_error(exc) from None
        finally:
            call.cancel()  # a caller that stops iterating early ends the stream (a no-op once it has ended)
        if failure:
            raise failure[0]

    # --- styles -------------------------------------------------------------------------------------------------

    @staticmethod
    def _style(message: pb.Style) -> StyleInfo:
        size = message.style_size if message.HasField("style_size") else None
        return StyleInfo(message.style_id, message.display_name, message.width, message.height, size,
                         message.size_bytes, message.builtin, message.model, message.thumbnail)

    def put_style(self, image: ImageInput, *, style_size: int | None = None, display_name: str = "") -> StyleInfo:
        request = pb.PutStyleRequest(image=_image_bytes(image, self.max_message_bytes), display_name=display_name)
        if style_size is not None:
            request.style_size = style_size
        return self._style(self._call("PutStyle", request))

    def get_style(self, style_id: str) -> StyleInfo:
        return self._style(self._call("GetStyle", pb.GetStyleRequest(style_id=style_id)))

    def list_styles(self, page_size: int = 100) -> Iterator[StyleInfo]:
        """Every style: the served models' built-in presets first (``builtin``, ``model``), then registered ones."""
        token = ""
        while True:
            reply = self._call("ListStyles", pb.ListStylesRequest(page_size=page_size, page_token=token))
            yield from (self._style(s) for s in reply.styles)
            token = reply.next_page_token
            if not token:
                return

    def delete_style(self, style_id: str) -> None:
        """Removes a registered style; a built-in preset is refused (FAILED_PRECONDITION)."""
        self._call("DeleteStyle", pb.DeleteStyleRequest(style_id=style_id))

    def models(self) -> list[ModelInfo]:
        reply = self._call("ListModels", pb.ListModelsRequest())
        return [ModelInfo(m.name, m.encoder_source, m.decoder_source, m.encoder_sha256, m.decoder_sha256, m.device,
                          m.dtype, m.untrained, m.is_default, dict(m.metadata), m.family, m.version,
                          dict(m.weights_sha256), dict(m.provenance), m.trained, m.problem, m.masks, m.style_images,
                          _defaults(m))
                for m in reply.models]

    def delete_model(self, name: str) -> None:
        """Removes a model a Train job made (by name or "family/version"); the server refuses a built-in one
        (FAILED_PRECONDITION) and an unknown one (NOT_FOUND)."""
        self._call("DeleteModel", pb.DeleteModelRequest(name=name))

    # --- jobs -----------------------------------------------------------------------------------------------------

    def submit_gatys(self, content: ImageInput, style: StyleInput | Sequence[StyleInput], *,
                     weights: Sequence[float] | None = None, **options: Any) -> Job:
        """Starts a Gatys job; ``options`` are GatysRequest fields (iterations, size, optimizer, seed, ...)."""
        styles = list(style) if isinstance(style, (list, tuple)) else [style]
        weights = list(weights) if weights is not None else [1.0] * len(styles)
        limit = self.max_message_bytes
        inputs = [_style_input(s, w, None, limit) for s, w in zip(styles, weights, strict=True)]
        request = pb.GatysRequest(content=_image_bytes(content, limit), styles=inputs, **options)
        return Job.from_proto(self._call("SubmitGatys", request))

    def train(self, **fields: Any) -> Job:
        """Starts a Train job; ``fields`` are TrainRequest fields (content_dir, style_dir, model_name, ...)."""
        return Job.from_proto(self._call("Train", pb.TrainRequest(**fields)))

    def get_job(self, job_id: str) -> Job:
        return Job.from_proto(self._call("GetJob", pb.GetJobRequest(id=job_id)))

    def list_jobs(self, *, state: int = JobState.UNSPECIFIED, kind: int = JobKind.UNSPECIFIED,
                  page_size: int = 50) -> Iterator[Job]:
        token = ""
        while True:
            reply = self._call("ListJobs", pb.ListJobsRequest(state=state, kind=kind, page_size=page_size,
                                                              page_token=token))
            yield from map(Job.from_proto, reply.jobs)
            token = reply.next_page_token
            if not token:
                return

    def cancel_job(self, job_id: str) -> Job:
        return Job.from_proto(self._call("CancelJob", pb.CancelJobRequest(id=job_id)))

    def watch_job(self, job_id: str, *, timeout: float | None = None) -> Iterator[Job]:
        """Yields the job at once and on every change until it ends (no timeout unless given)."""
        return map(Job.from_proto, self._stream("WatchJob", pb.WatchJobRequest(id=job_id), timeout))

    def job_result(self, job_id: str) -> JobResult:
        reply = self._call("GetJobResult", pb.GetJobResultRequest(id=job_id))
        return JobResult(reply.image, reply.mime_type, reply.width, reply.height)
