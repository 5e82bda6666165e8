import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_FORMAT_UNSPECIFIED: _ClassVar[ImageFormat]
    IMAGE_FORMAT_PNG: _ClassVar[ImageFormat]
    IMAGE_FORMAT_JPEG: _ClassVar[ImageFormat]
    IMAGE_FORMAT_WEBP: _ClassVar[ImageFormat]

class ColorPreservation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COLOR_PRESERVATION_UNSPECIFIED: _ClassVar[ColorPreservation]
    COLOR_PRESERVATION_CORAL: _ClassVar[ColorPreservation]
    COLOR_PRESERVATION_LUMINANCE: _ClassVar[ColorPreservation]

class StreamPacing(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STREAM_PACING_UNSPECIFIED: _ClassVar[StreamPacing]
    STREAM_PACING_LIVE: _ClassVar[StreamPacing]
    STREAM_PACING_EVERY_FRAME: _ClassVar[StreamPacing]

class JobKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_KIND_UNSPECIFIED: _ClassVar[JobKind]
    JOB_KIND_GATYS: _ClassVar[JobKind]
    JOB_KIND_TRAIN: _ClassVar[JobKind]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]

class Optimizer(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPTIMIZER_UNSPECIFIED: _ClassVar[Optimizer]
    OPTIMIZER_LBFGS: _ClassVar[Optimizer]
    OPTIMIZER_ADAM: _ClassVar[Optimizer]

class GatysInit(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GATYS_INIT_UNSPECIFIED: _ClassVar[GatysInit]
    GATYS_INIT_CONTENT: _ClassVar[GatysInit]
    GATYS_INIT_NOISE: _ClassVar[GatysInit]
    GATYS_INIT_STYLE: _ClassVar[GatysInit]
IMAGE_FORMAT_UNSPECIFIED: ImageFormat
IMAGE_FORMAT_PNG: ImageFormat
IMAGE_FORMAT_JPEG: ImageFormat
IMAGE_FORMAT_WEBP: ImageFormat
COLOR_PRESERVATION_UNSPECIFIED: ColorPreservation
COLOR_PRESERVATION_CORAL: ColorPreservation
COLOR_PRESERVATION_LUMINANCE: ColorPreservation
STREAM_PACING_UNSPECIFIED: StreamPacing
STREAM_PACING_LIVE: StreamPacing
STREAM_PACING_EVERY_FRAME: StreamPacing
JOB_KIND_UNSPECIFIED: JobKind
JOB_KIND_GATYS: JobKind
JOB_KIND_TRAIN: JobKind
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState
OPTIMIZER_UNSPECIFIED: Optimizer
OPTIMIZER_LBFGS: Optimizer
OPTIMIZER_ADAM: Optimizer
GATYS_INIT_UNSPECIFIED: GatysInit
GATYS_INIT_CONTENT: GatysInit
GATYS_INIT_NOISE: GatysInit
GATYS_INIT_STYLE: GatysInit

class StyleInput(_message.Message):
    __slots__ = ("image", "style_id", "weight", "mask")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    STYLE_ID_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    style_id: str
    weight: float
    mask: bytes
    def __init__(self, image: _Optional[bytes] = ..., style_id: _Optional[str] = ..., weight: _Optional[float] = ..., mask: _Optional[bytes] = ...) -> None: ...

class Timing(_message.Message):
    __slots__ = ("queue_ms", "decode_ms", "compute_ms", "encode_ms", "total_ms")
    QUEUE_MS_FIELD_NUMBER: _ClassVar[int]
    DECODE_MS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_MS_FIELD_NUMBER: _ClassVar[int]
    ENCODE_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    queue_ms: float
    decode_ms: float
    compute_ms: float
    encode_ms: float
    total_ms: float
    def __init__(self, queue_ms: _Optional[float] = ..., decode_ms: _Optional[float] = ..., compute_ms: _Optional[float] = ..., encode_ms: _Optional[float] = ..., total_ms: _Optional[float] = ...) -> None: ...

class StylizeRequest(_message.Message):
    __slots__ = ("content", "styles", "alpha", "preserve_color", "color_preservation", "content_size", "style_size", "model", "output_format", "quality", "flatten_alpha", "skip_response_cache")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    STYLES_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    PRESERVE_COLOR_FIELD_NUMBER: _ClassVar[int]
    COLOR_PRESERVATION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SIZE_FIELD_NUMBER: _ClassVar[int]
    STYLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    FLATTEN_ALPHA_FIELD_NUMBER: _ClassVar[int]
    SKIP_RESPONSE_CACHE_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    styles: _containers.RepeatedCompositeFieldContainer[StyleInput]
    alpha: float
    preserve_color: bool
    color_preservation: ColorPreservation
    content_size: int
    style_size: int
    model: str
    output_format: ImageFormat
    quality: int
    flatten_alpha: bool
    skip_response_cache: bool
    def __init__(self, content: _Optional[bytes] = ..., styles: _Optional[_Iterable[_Union[StyleInput, _Mapping]]] = ..., alpha: _Optional[float] = ..., preserve_color: _Optional[bool] = ..., color_preservation: _Optional[_Union[ColorPreservation, str]] = ..., content_size: _Optional[int] = ..., style_size: _Optional[int] = ..., model: _Optional[str] = ..., output_format: _Optional[_Union[ImageFormat, str]] = ..., quality: _Optional[int] = ..., flatten_alpha: _Optional[bool] = ..., skip_response_cache: _Optional[bool] = ...) -> None: ...

class StylizeResponse(_message.Message):
    __slots__ = ("image", "mime_type", "width", "height", "model", "timing", "untrained", "request_id", "cached")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TIMING_FIELD_NUMBER: _ClassVar[int]
    UNTRAINED_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    mime_type: str
    width: int
    height: int
    model: str
    timing: Timing
    untrained: bool
    request_id: str
    cached: bool
    def __init__(self, image: _Optional[bytes] = ..., mime_type: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., model: _Optional[str] = ..., timing: _Optional[_Union[Timing, _Mapping]] = ..., untrained: _Optional[bool] = ..., request_id: _Optional[str] = ..., cached: _Optional[bool] = ...) -> None: ...

class TemporalOptions(_message.Message):
    __slots__ = ("enabled", "strength")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    strength: float
    def __init__(self, enabled: _Optional[bool] = ..., strength: _Optional[float] = ...) -> None: ...

class StreamSettings(_message.Message):
    __slots__ = ("styles", "alpha", "preserve_color", "color_preservation", "content_size", "style_size", "model", "output_format", "quality", "flatten_alpha", "temporal", "pacing")
    STYLES_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    PRESERVE_COLOR_FIELD_NUMBER: _ClassVar[int]
    COLOR_PRESERVATION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SIZE_FIELD_NUMBER: _ClassVar[int]
    STYLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    FLATTEN_ALPHA_FIELD_NUMBER: _ClassVar[int]
    TEMPORAL_FIELD_NUMBER: _ClassVar[int]
    PACING_FIELD_NUMBER: _ClassVar[int]
    styles: _containers.RepeatedCompositeFieldContainer[StyleInput]
    alpha: float
    preserve_color: bool
    color_preservation: ColorPreservation
    content_size: int
    style_size: int
    model: str
    output_format: ImageFormat
    quality: int
    flatten_alpha: bool
    temporal: TemporalOptions
    pacing: StreamPacing
    def __init__(self, styles: _Optional[_Iterable[_Union[StyleInput, _Mapping]]] = ..., alpha: _Optional[float] = ..., preserve_color: _Optional[bool] = ..., color_preservation: _Optional[_Union[ColorPreservation, str]] = ..., content_size: _Optional[int] = ..., style_size: _Optional[int] = ..., model: _Optional[str] = ..., output_format: _Optional[_Union[ImageFormat, str]] = ..., quality: _Optional[int] = ..., flatten_alpha: _Optional[bool] = ..., temporal: _Optional[_Union[TemporalOptions, _Mapping]] = ..., pacing: _Optional[_Union[StreamPacing, str]] = ...) -> None: ...

class StreamFrame(_message.Message):
    __slots__ = ("image", "sequence")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    sequence: int
    def __init__(self, image: _Optional[bytes] = ..., sequence: _Optional[int] = ...) -> None: ...

class StylizeStreamRequest(_message.Message):
    __slots__ = ("settings", "frame")
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    settings: StreamSettings
    frame: StreamFrame
    def __init__(self, settings: _Optional[_Union[StreamSettings, _Mapping]] = ..., frame: _Optional[_Union[StreamFrame, _Mapping]] = ...) -> None: ...

class StreamCounters(_message.Message):
    __slots__ = ("frames_received", "frames_stylized", "frames_dropped", "frames_failed")
    FRAMES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_STYLIZED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_DROPPED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FAILED_FIELD_NUMBER: _ClassVar[int]
    frames_received: int
    frames_stylized: int
    frames_dropped: int
    frames_failed: int
    def __init__(self, frames_received: _Optional[int] = ..., frames_stylized: _Optional[int] = ..., frames_dropped: _Optional[int] = ..., frames_failed: _Optional[int] = ...) -> None: ...

class FrameError(_message.Message):
    __slots__ = ("code", "status", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    status: str
    message: str
    def __init__(self, code: _Optional[int] = ..., status: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class StylizeStreamResponse(_message.Message):
    __slots__ = ("sequence", "image", "mime_type", "width", "height", "timing", "counters", "dropped", "error", "model", "untrained", "settings_version", "request_id")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TIMING_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    UNTRAINED_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    image: bytes
    mime_type: str
    width: int
    height: int
    timing: Timing
    counters: StreamCounters
    dropped: bool
    error: FrameError
    model: str
    untrained: bool
    settings_version: int
    request_id: str
    def __init__(self, sequence: _Optional[int] = ..., image: _Optional[bytes] = ..., mime_type: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., timing: _Optional[_Union[Timing, _Mapping]] = ..., counters: _Optional[_Union[StreamCounters, _Mapping]] = ..., dropped: _Optional[bool] = ..., error: _Optional[_Union[FrameError, _Mapping]] = ..., model: _Optional[str] = ..., untrained: _Optional[bool] = ..., settings_version: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class Style(_message.Message):
    __slots__ = ("style_id", "display_name", "width", "height", "style_size", "create_time", "size_bytes", "thumbnail", "builtin", "model")
    STYLE_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    STYLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_FIELD_NUMBER: _ClassVar[int]
    BUILTIN_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    style_id: str
    display_name: str
    width: int
    height: int
    style_size: int
    create_time: _timestamp_pb2.Timestamp
    size_bytes: int
    thumbnail: bytes
    builtin: bool
    model: str
    def __init__(self, style_id: _Optional[str] = ..., display_name: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., style_size: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., size_bytes: _Optional[int] = ..., thumbnail: _Optional[bytes] = ..., builtin: _Optional[bool] = ..., model: _Optional[str] = ...) -> None: ...

class PutStyleRequest(_message.Message):
    __slots__ = ("image", "style_size", "display_name")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    STYLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    style_size: int
    display_name: str
    def __init__(self, image: _Optional[bytes] = ..., style_size: _Optional[int] = ..., display_name: _Optional[str] = ...) -> None: ...

class GetStyleRequest(_message.Message):
    __slots__ = ("style_id",)
    STYLE_ID_FIELD_NUMBER: _ClassVar[int]
    style_id: str
    def __init__(self, style_id: _Optional[str] = ...) -> None: ...

class ListStylesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListStylesResponse(_message.Message):
    __slots__ = ("styles", "next_page_token")
    STYLES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    styles: _containers.RepeatedCompositeFieldContainer[Style]
    next_page_token: str
    def __init__(self, styles: _Optional[_Iterable[_Union[Style, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteStyleRequest(_message.Message):
    __slots__ = ("style_id",)
    STYLE_ID_FIELD_NUMBER: _ClassVar[int]
    style_id: str
    def __init__(self, style_id: _Optional[str] = ...) -> None: ...

class DeleteStyleResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "default_model")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    default_model: str
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., default_model: _Optional[str] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "encoder_source", "decoder_source", "encoder_sha256", "decoder_sha256", "device", "dtype", "untrained", "is_default", "metadata", "create_time", "family", "version", "weights_sha256", "provenance", "trained", "problem", "masks", "style_images", "defaults")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class WeightsSha256Entry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ProvenanceEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENCODER_SOURCE_FIELD_NUMBER: _ClassVar[int]
    DECODER_SOURCE_FIELD_NUMBER: _ClassVar[int]
    ENCODER_SHA256_FIELD_NUMBER: _ClassVar[int]
    DECODER_SHA256_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    UNTRAINED_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_SHA256_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    TRAINED_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    MASKS_FIELD_NUMBER: _ClassVar[int]
    STYLE_IMAGES_FIELD_NUMBER: _ClassVar[int]
    DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    encoder_source: str
    decoder_source: str
    encoder_sha256: str
    decoder_sha256: str
    device: str
    dtype: str
    untrained: bool
    is_default: bool
    metadata: _containers.ScalarMap[str, str]
    create_time: _timestamp_pb2.Timestamp
    family: str
    version: str
    weights_sha256: _containers.ScalarMap[str, str]
    provenance: _containers.ScalarMap[str, str]
    trained: bool
    problem: str
    masks: str
    style_images: bool
    defaults: ModelDefaults
    def __init__(self, name: _Optional[str] = ..., encoder_source: _Optional[str] = ..., decoder_source: _Optional[str] = ..., encoder_sha256: _Optional[str] = ..., decoder_sha256: _Optional[str] = ..., device: _Optional[str] = ..., dtype: _Optional[str] = ..., untrained: _Optional[bool] = ..., is_default: _Optional[bool] = ..., metadata: _Optional[_Mapping[str, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., family: _Optional[str] = ..., version: _Optional[str] = ..., weights_sha256: _Optional[_Mapping[str, str]] = ..., provenance: _Optional[_Mapping[str, str]] = ..., trained: _Optional[bool] = ..., problem: _Optional[str] = ..., masks: _Optional[str] = ..., style_images: _Optional[bool] = ..., defaults: _Optional[_Union[ModelDefaults, _Mapping]] = ...) -> None: ...

class ModelDefaults(_message.Message):
    __slots__ = ("style_size", "alpha", "content_size")
    STYLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SIZE_FIELD_NUMBER: _ClassVar[int]
    style_size: int
    alpha: float
    content_size: int
    def __init__(self, style_size: _Optional[int] = ..., alpha: _Optional[float] = ..., content_size: _Optional[int] = ...) -> None: ...

class DeleteModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteModelResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class JobProgress(_message.Message):
    __slots__ = ("step", "total_steps", "loss", "losses", "elapsed_seconds", "eta_seconds")
    class LossesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    LOSSES_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    step: int
    total_steps: int
    loss: float
    losses: _containers.ScalarMap[str, float]
    elapsed_seconds: float
    eta_seconds: float
    def __init__(self, step: _Optional[int] = ..., total_steps: _Optional[int] = ..., loss: _Optional[float] = ..., losses: _Optional[_Mapping[str, float]] = ..., elapsed_seconds: _Optional[float] = ..., eta_seconds: _Optional[float] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "kind", "state", "progress", "create_time", "start_time", "end_time", "error", "model_name", "attempts")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: JobKind
    state: JobState
    progress: JobProgress
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    error: str
    model_name: str
    attempts: int
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[_Union[JobKind, str]] = ..., state: _Optional[_Union[JobState, str]] = ..., progress: _Optional[_Union[JobProgress, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error: _Optional[str] = ..., model_name: _Optional[str] = ..., attempts: _Optional[int] = ...) -> None: ...

class GatysRequest(_message.Message):
    __slots__ = ("content", "styles", "iterations", "size", "start_size", "num_scales", "optimizer", "learning_rate", "content_weight", "style_weight", "tv_weight", "init", "preserve_color", "seed", "style_loss", "output_format", "quality")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    STYLES_FIELD_NUMBER: _ClassVar[int]
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    START_SIZE_FIELD_NUMBER: _ClassVar[int]
    NUM_SCALES_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    STYLE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    TV_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    INIT_FIELD_NUMBER: _ClassVar[int]
    PRESERVE_COLOR_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    STYLE_LOSS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    styles: _containers.RepeatedCompositeFieldContainer[StyleInput]
    iterations: int
    size: int
    start_size: int
    num_scales: int
    optimizer: Optimizer
    learning_rate: float
    content_weight: float
    style_weight: float
    tv_weight: float
    init: GatysInit
    preserve_color: bool
    seed: int
    style_loss: str
    output_format: ImageFormat
    quality: int
    def __init__(self, content: _Optional[bytes] = ..., styles: _Optional[_Iterable[_Union[StyleInput, _Mapping]]] = ..., iterations: _Optional[int] = ..., size: _Optional[int] = ..., start_size: _Optional[int] = ..., num_scales: _Optional[int] = ..., optimizer: _Optional[_Union[Optimizer, str]] = ..., learning_rate: _Optional[float] = ..., content_weight: _Optional[float] = ..., style_weight: _Optional[float] = ..., tv_weight: _Optional[float] = ..., init: _Optional[_Union[GatysInit, str]] = ..., preserve_color: _Optional[bool] = ..., seed: _Optional[int] = ..., style_loss: _Optional[str] = ..., output_format: _Optional[_Union[ImageFormat, str]] = ..., quality: _Optional[int] = ...) -> None: ...

class TrainRequest(_message.Message):
    __slots__ = ("content_dir", "style_dir", "iterations", "batch_size", "image_size", "lr", "lr_decay", "style_weight", "content_weight", "checkpoint_every", "model_name", "init_from", "seed", "num_processes", "warmup_steps", "pixel_weight")
    CONTENT_DIR_FIELD_NUMBER: _ClassVar[int]
    STYLE_DIR_FIELD_NUMBER: _ClassVar[int]
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    LR_FIELD_NUMBER: _ClassVar[int]
    LR_DECAY_FIELD_NUMBER: _ClassVar[int]
    STYLE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_EVERY_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    INIT_FROM_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    NUM_PROCESSES_FIELD_NUMBER: _ClassVar[int]
    WARMUP_STEPS_FIELD_NUMBER: _ClassVar[int]
    PIXEL_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    content_dir: str
    style_dir: str
    iterations: int
    batch_size: int
    image_size: int
    lr: float
    lr_decay: float
    style_weight: float
    content_weight: float
    checkpoint_every: int
    model_name: str
    init_from: str
    seed: int
    num_processes: int
    warmup_steps: int
    pixel_weight: float
    def __init__(self, content_dir: _Optional[str] = ..., style_dir: _Optional[str] = ..., iterations: _Optional[int] = ..., batch_size: _Optional[int] = ..., image_size: _Optional[int] = ..., lr: _Optional[float] = ..., lr_decay: _Optional[float] = ..., style_weight: _Optional[float] = ..., content_weight: _Optional[float] = ..., checkpoint_every: _Optional[int] = ..., model_name: _Optional[str] = ..., init_from: _Optional[str] = ..., seed: _Optional[int] = ..., num_processes: _Optional[int] = ..., warmup_steps: _Optional[int] = ..., pixel_weight: _Optional[float] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("state", "kind", "page_size", "page_token")
    STATE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    state: JobState
    kind: JobKind
    page_size: int
    page_token: str
    def __init__(self, state: _Optional[_Union[JobState, str]] = ..., kind: _Optional[_Union[JobKind, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetJobResultRequest(_message.Message):
    __slots__ = ("id", "preview")
    ID_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    id: str
    preview: bool
    def __init__(self, id: _Optional[str] = ..., preview: _Optional[bool] = ...) -> None: ...

class JobResult(_message.Message):
    __slots__ = ("image", "mime_type", "width", "height")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    mime_type: str
    width: int
    height: int
    def __init__(self, image: _Optional[bytes] = ..., mime_type: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...
