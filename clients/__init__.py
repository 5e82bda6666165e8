"""The Python client of the styletransfer service: ``from clients import StyleClient, StyleRef``.

The names live in :mod:`clients.client` and are re-exported here; the CLI is :mod:`clients.cli`. Importing this
package loads grpc and the generated stubs, never torch.
"""

from clients.client import (
    FrameResult,
    ImageInput,
    Job,
    JobKind,
    JobProgress,
    JobResult,
    JobState,
    ModelInfo,
    StreamCounters,
    StreamSettings,
    StyleClient,
    StyleInfo,
    StyleRef,
    StyleTransferError,
    StylizeResult,
    TLSConfig,
)

__all__ = [
    "FrameResult",
    "ImageInput",
    "Job",
    "JobKind",
    "JobProgress",
    "JobResult",
    "JobState",
    "ModelInfo",
    "StreamCounters",
    "StreamSettings",
    "StyleClient",
    "StyleInfo",
    "StyleRef",
    "StyleTransferError",
    "StylizeResult",
    "TLSConfig",
]
