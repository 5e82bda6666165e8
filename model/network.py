"""The networks of AdaIN and Gatys: a VGG19 encoder sliced at named ReLUs, and the AdaIN decoder.

Both are built as ``nn.Sequential`` in the exact module order of the official AdaIN release files
(``vgg_normalised.pth``: 53 modules; ``decoder.pth``: 29 modules), so their state dicts load key for key. The
torchvision VGG19 layout (``features.N.*``) is mapped onto the same modules by :func:`torchvision_to_official`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

__all__ = [
    "ALL_LAYERS",
    "CAFFE_MEAN_BGR",
    "DECODER_MODULES",
    "ENCODER_MODULES",
    "GATYS_CONTENT_LAYER",
    "GATYS_STYLE_LAYERS",
    "RELU1_1",
    "RELU2_1",
    "RELU3_1",
    "RELU4_1",
    "RELU4_2",
    "RELU5_1",
    "RELU_INDEX",
    "STYLE_LAYERS",
    "Decoder",
    "Encoder",
    "InputNorm",
    "StopCheck",
    "build_decoder_sequential",
    "build_vgg_sequential",
    "caffe_input_state",
    "decoder_layout",
    "torchvision_to_official",
    "vgg_layout",
]

# Named activations of the normalised VGG19. The value is the index of the ReLU module in the official
# 53-module Sequential; a slice ``[:index + 1]`` ends at that activation.
RELU1_1 = "relu1_1"
RELU2_1 = "relu2_1"
RELU3_1 = "relu3_1"
RELU4_1 = "relu4_1"
RELU4_2 = "relu4_2"
RELU5_1 = "relu5_1"
RELU_INDEX: dict[str, int] = {RELU1_1: 3, RELU2_1: 10, RELU3_1: 17, RELU4_1: 30, RELU4_2: 33, RELU5_1: 43}
ALL_LAYERS: tuple[str, ...] = tuple(RELU_INDEX)

#: AdaIN's style loss layers (paper section 6) and the Gatys style layers (Gatys et al. 2016, section 2).
STYLE_LAYERS: tuple[str, ...] = (RELU1_1, RELU2_1, RELU3_1, RELU4_1)
GATYS_STYLE_LAYERS: tuple[str, ...] = (RELU1_1, RELU2_1, RELU3_1, RELU4_1, RELU5_1)
GATYS_CONTENT_LAYER = RELU4_2

#: Module counts of the official files: the full normalised VGG19 and the AdaIN decoder.
VGG_MODULES = 53
#: The AdaIN encoder is the first 31 modules (up to relu4_1).
ENCODER_MODULES = 31
DECODER_MODULES = 29

# (in_channels, out_channels) of each 3x3 conv of VGG19, "M" for a max-pool.
_VGG19_CFG: tuple[tuple[int, int] | str, ...] = (
    (3, 64), (64, 64), "M",
    (64, 128), (128, 128), "M",
    (128, 256), (256, 256), (256, 256), (256, 256), "M",
    (256, 512), (512, 512), (512, 512), (512, 512), "M",
    (512, 512), (512, 512), (512, 512), (512, 512),
)  # fmt: skip

# The decoder mirrors the encoder to relu4_1; "U" is a nearest x2 upsampling. The last conv has no ReLU.
_DECODER_CFG: tuple[tuple[int, int] | str, ...] = (
    (512, 256), "U",
    (256, 256), (256, 256), (256, 256), (256, 128), "U",
    (128, 128), (128, 64), "U",
    (64, 64), (64, 3),
)  # fmt: skip

#: Called between layers; returning True stops the forward pass with :class:`model.errors.Cancelled`.
StopCheck = Callable[[], bool]

#: Caffe's ImageNet mean pixel, (B, G, R) in 0..255: the input convention of the original (Caffe/Keras) VGG19.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

# ImageNet statistics used by torchvision's VGG weights.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def build_vgg_sequential() -> nn.Sequential:
    """The 53-module normalised VGG19 of the official ``vgg_normalised.pth``.

    Module 0 is a 1x1 conv that maps RGB in [0, 1] to mean-subtracted BGR x255 (the Caffe convention); every 3x3
    conv is preceded by reflection padding; pooling uses ``ceil_mode=True``, so odd sizes round up.
    """
    layers: list[nn.Module] = [nn.Conv2d(3, 3, kernel_size=1)]
    for item in _VGG19_CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=True))
        else:
            cin, cout = item
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, kernel_size=3), nn.ReLU()]
    assert len(layers) == VGG_MODULES, len(layers)
    return nn.Sequential(*layers)


def build_decoder_sequential() -> nn.Sequential:
    """The 29-module AdaIN decoder of the official ``decoder.pth``: no normalisation layers, nearest upsampling."""
    layers: list[nn.Module] = []
    last = len(_DECODER_CFG) - 1
    for position, item in enumerate(_DECODER_CFG):
        if item == "U":
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            continue
        cin, cout = item
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, kernel_size=3)]
        if position != last:
            layers.append(nn.ReLU())
    assert len(layers) == DECODER_MODULES, len(layers)
    return nn.Sequential(*layers)


def _layout(seq: nn.Sequential) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in seq.state_dict().items()}


def vgg_layout() -> dict[str, tuple[int, ...]]:
    """Keys and shapes of the official ``vgg_normalised.pth`` state dict."""
    return _layout(build_vgg_sequential())


def decoder_layout() -> dict[str, tuple[int, ...]]:
    """Keys and shapes of the official ``decoder.pth`` state dict."""
    return _layout(build_decoder_sequential())


def caffe_input_state() -> dict[str, torch.Tensor]:
    """Module 0 (the leading 1x1 conv) that maps RGB in [0, 1] to BGR x255 minus :data:`CAFFE_MEAN_BGR`.

    This is what the official ``vgg_normalised.pth`` folds into its first module; weights trained on Caffe's input
    convention (the original VGG19, its Keras port) get it here so that every encoder takes RGB in [0, 1].
    """
    rgb_to_bgr = torch.flip(torch.eye(3), dims=[0])  # row o picks input channel 2 - o
    return {"0.weight": (rgb_to_bgr * 255.0).reshape(3, 3, 1, 1), "0.bias": -torch.tensor(CAFFE_MEAN_BGR)}


def torchvision_to_official(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Maps torchvision ``vgg19`` weights (``features.N.*``, ``classifier.*``) onto the official 53-module layout.

    torchvision's ``features`` has no padding modules and no leading 1x1 conv, so conv ``features.N`` becomes module
    ``2 + 3 * k + pools_before`` of the official Sequential. Module 0 is set to the identity: torchvision inputs are
    normalised with the ImageNet mean/std by :class:`InputNorm` instead. ``classifier.*`` keys are dropped.
    """
    official_conv_indices = [i for i, m in enumerate(build_vgg_sequential()) if isinstance(m, nn.Conv2d)][1:]
    tv_conv_indices = sorted(
        {int(k.split(".")[1]) for k in state if k.startswith("features.") and k.endswith(".weight")}
    )
    if len(tv_conv_indices) != len(official_conv_indices):
        raise ValueError(
            f"expected {len(official_conv_indices)} convolutions in features.*, found {len(tv_conv_indices)}"
        )
    out: dict[str, torch.Tensor] = {
        "0.weight": torch.eye(3).reshape(3, 3, 1, 1).clone(),
        "0.bias": torch.zeros(3),
    }
    for tv_index, off_index in zip(tv_conv_indices, official_conv_indices, strict=True):
        out[f"{off_index}.weight"] = state[f"features.{tv_index}.weight"]
        out[f"{off_index}.bias"] = state[f"features.{tv_index}.bias"]
    return out


class InputNorm(nn.Module):
    """Per-channel ``(x - mean) / std`` on RGB in [0, 1]: the input convention of torchvision's VGG weights.

    The official AdaIN weights fold their normalisation into module 0, so for them this is the identity.
    """

    def __init__(self, mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0)) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    @classmethod
    def imagenet(cls) -> InputNorm:
        return cls(_IMAGENET_MEAN, _IMAGENET_STD)

    def is_identity(self) -> bool:
        return bool(torch.all(self.mean == 0) and torch.all(self.std == 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_identity():
            return x
        return (x - self.mean) / self.std


def _check_stop(should_stop: StopCheck | None) -> None:
    if should_stop is not None and should_stop():
        from model.errors import Cancelled  # local: errors imports nothing from here, but keep the edge explicit

        raise Cancelled("stopped between layers")


class Encoder(nn.Module):
    """Normalised VGG19, frozen, returning the activations the caller names.

    ``depth`` is the deepest layer kept: ``relu4_1`` for AdaIN (the official 31-module encoder) or ``relu5_1`` for
    Gatys. The modules keep their official indices, so ``load_state_dict`` takes the official file directly
    (``strict=False`` tolerates the unused deeper modules of a 53-module file; see :meth:`load_official`).
    """

    def __init__(self, depth: str = RELU4_1, norm: InputNorm | None = None) -> None:
        super().__init__()
        if depth not in RELU_INDEX:
            raise ValueError(f"depth must be one of {', '.join(ALL_LAYERS)}, got {depth!r}")
        self.depth = depth
        self.norm = norm if norm is not None else InputNorm()
        self.layers = build_vgg_sequential()[: RELU_INDEX[depth] + 1]
        self.requires_grad_(False)
        self.eval()

    def load_official(self, state: dict[str, torch.Tensor]) -> None:
        """Loads an official-layout state dict (``N.weight`` keys), ignoring modules deeper than ``depth``."""
        own = self.layers.state_dict()
        self.layers.load_state_dict({k: state[k] for k in own})

    def layer_names(self) -> tuple[str, ...]:
        return tuple(name for name, idx in RELU_INDEX.items() if idx < len(self.layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> the activation at ``depth``."""
        return self.features(x, (self.depth,))[self.depth]

    def features(
        self,
        x: torch.Tensor,
        names: Iterable[str],
        should_stop: StopCheck | None = None,
    ) -> dict[str, torch.Tensor]:
        """(B, 3, H, W) in [0, 1] -> ``{name: activation}`` for the requested layers, stopping at the deepest one."""
        wanted = {name: RELU_INDEX[name] for name in names}
        if not wanted:
            return {}
        last = max(wanted.values())
        if last >= len(self.layers):
            raise ValueError(f"layer deeper than this encoder's depth {self.depth!r}: {sorted(wanted)}")
        by_index = {idx: name for name, idx in wanted.items()}
        out: dict[str, torch.Tensor] = {}
        h = self.norm(x)
        for idx, module in enumerate(self.layers[: last + 1]):
            h = module(h)
            if idx in by_index:
                out[by_index[idx]] = h
            if isinstance(module, nn.ReLU):
                _check_stop(should_stop)
        return out


class Decoder(nn.Module):
    """The AdaIN decoder: relu4_1 features (B, 512, H/8, W/8) -> image (B, 3, H, W), unclamped."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = build_decoder_sequential()

    def load_official(self, state: dict[str, torch.Tensor]) -> None:
        self.layers.load_state_dict(state)

    def forward(self, feat: torch.Tensor, should_stop: StopCheck | None = None) -> torch.Tensor:
        h = feat
        for module in self.layers:
            h = module(h)
            if isinstance(module, nn.ReLU):
                _check_stop(should_stop)
        return h
