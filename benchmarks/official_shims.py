"""Run the official ReferFormer code (wjn922/ReferFormer) from a directory outside this project, in memory only.

The official code cannot be imported as is on a CPU-only machine with current libraries and no internet. These
shims make it run without touching a file under its directory; they are applied while the model is built and
undone afterwards (``sys.path`` and ``sys.modules`` are restored), so the official ``models``/``util``/``opts``
packages never shadow anything else in the process:

- ``MultiScaleDeformableAttention`` (its compiled CUDA op) is a stub module whose forward is the official
  pure-PyTorch ``ms_deform_attn_core_pytorch`` (``models/ops/functions/ms_deform_attn_func.py``, the ``grid_sample``
  path the parity fixtures were made with); its backward is not provided (inference only);
- ``RobertaModel.from_pretrained('roberta-base')`` builds an untrained RoBERTa from a config instead (the sizes of
  our model's text encoder, roberta-base for the benchmark), and ``RobertaTokenizerFast.from_pretrained`` gives a
  :class:`FixedTokenizer` that returns the token ids the caller sets, so both models see the same ids;
- ``torchvision.models.<resnet>(pretrained=...)`` is called with ``weights=None`` (no download);
- ``fvcore.nn.weight_init`` (an initialiser only, the weights are overwritten) is a stub when fvcore is absent;
- ``float(torchvision.__version__[:3]) < 0.7`` (live in some revisions of ``util/misc.py``, commented out at the
  last commit) reads torchvision 0.29 as 0.2 and imports helpers that no longer exist, so while the official
  modules are imported ``torchvision.__version__`` is :data:`VERSION_FOR_OFFICIAL_CHECK` (restored after).

Weights: :func:`copy_weights` loads our model's state dict into the official one with strict key matching (the
parameter names are the official ones), so both compute the same function.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

OFFICIAL_ENV = "REFERFORMER_OFFICIAL_DIR"
DEFAULT_OFFICIAL_DIR = Path("/tmp/official_referformer")
OFFICIAL_PACKAGES = ("models", "util", "opts")
"""The official top-level modules this loader imports (and removes from ``sys.modules`` afterwards)."""

INFERENCE_FLAGS = ["--with_box_refine", "--binary", "--freeze_text_encoder", "--masks", "--device", "cpu"]
"""The official Ref-Youtube-VOS inference options (``scripts/dist_test_*.sh``), on CPU."""
VERSION_FOR_OFFICIAL_CHECK = "0.9"
"""What ``torchvision.__version__[:3]`` must read for the official check to take the modern branch (>= 0.7)."""


class OfficialCodeError(RuntimeError):
    """The directory does not hold the official ReferFormer code, or it could not be imported."""


def check_official_dir(path: str | Path) -> Path:
    """``path`` resolved, after checking that it looks like a checkout of wjn922/ReferFormer."""
    root = Path(path).expanduser().resolve()
    needed = ["models/referformer.py", "models/ops/functions/ms_deform_attn_func.py", "opts.py", "util/misc.py"]
    missing = [p for p in needed if not (root / p).is_file()]
    if missing:
        raise OfficialCodeError(f"{root} is not a checkout of the official ReferFormer code (missing {missing})")
    return root


def find_official_dir() -> Path | None:
    """The official checkout named by ``$REFERFORMER_OFFICIAL_DIR``, else ``/tmp/official_referformer``, if valid."""
    candidates = [os.environ.get(OFFICIAL_ENV), DEFAULT_OFFICIAL_DIR]
    for candidate in candidates:
        if not candidate:
            continue
        try:
            return check_official_dir(candidate)
        except OfficialCodeError:
            continue
    return None


class FixedTokenizer:
    """Stands in for ``RobertaTokenizerFast``: ``batch_encode_plus`` returns the ids set in ``input_ids``.

    The official ``forward_text`` only accepts strings and tokenises them itself; the benchmark and the tests feed
    token ids to our model, so the same ids reach the official text encoder through this object.
    """

    def __init__(self, input_ids: Tensor | None = None, attention_mask: Tensor | None = None) -> None:
        self.input_ids = input_ids
        self.attention_mask = attention_mask

    def batch_encode_plus(self, captions: list[str], padding: str = "longest", return_tensors: str = "pt"):
        from transformers import BatchEncoding

        if self.input_ids is None:
            raise OfficialCodeError("FixedTokenizer: set input_ids before calling the official model")
        if len(captions) != self.input_ids.shape[0]:
            raise OfficialCodeError(f"{len(captions)} captions for {self.input_ids.shape[0]} rows of token ids")
        mask = self.attention_mask if self.attention_mask is not None else torch.ones_like(self.input_ids)
        return BatchEncoding({"input_ids": self.input_ids, "attention_mask": mask})


@contextmanager
def _attribute(obj: Any, name: str, value: Any) -> Iterator[None]:
    """``obj.name = value`` inside the block, the previous value (or absence) restored after."""
    missing = object()
    before = getattr(obj, name, missing)
    setattr(obj, name, value)
    try:
        yield
    finally:
        if before is missing:
            delattr(obj, name)
        else:
            setattr(obj, name, before)


def _fvcore_stub() -> dict[str, types.ModuleType]:
    """``fvcore.nn.weight_init`` with fvcore's ``c2_xavier_fill``/``c2_msra_fill`` (initialisers only)."""
    def c2_xavier_fill(module: nn.Module) -> None:
        nn.init.kaiming_uniform_(module.weight, a=1)
        if module.bias is not None:
            nn.init.constant_(module.bias, 0)

    def c2_msra_fill(module: nn.Module) -> None:
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if module.bias is not None:
            nn.init.constant_(module.bias, 0)

    root, sub, leaf = (types.ModuleType(n) for n in ("fvcore", "fvcore.nn", "fvcore.nn.weight_init"))
    leaf.c2_xavier_fill, leaf.c2_msra_fill = c2_xavier_fill, c2_msra_fill
    root.nn, sub.weight_init = sub, leaf
    return {"fvcore": root, "fvcore.nn": sub, "fvcore.nn.weight_init": leaf}


def _msda_stub(core: dict[str, Callable[..., Tensor]]) -> types.ModuleType:
    """``MultiScaleDeformableAttention`` whose forward calls ``core["fn"]`` (the official PyTorch path)."""
    stub = types.ModuleType("MultiScaleDeformableAttention")

    def ms_deform_attn_forward(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor,
                               sampling_locations: Tensor, attention_weights: Tensor, im2col_step: int) -> Tensor:
        return core["fn"](value, spatial_shapes, sampling_locations, attention_weights)

    def ms_deform_attn_backward(*args: Any) -> None:
        raise OfficialCodeError("the shimmed official deformable attention is for inference only")

    stub.ms_deform_attn_forward, stub.ms_deform_attn_backward = ms_deform_attn_forward, ms_deform_attn_backward
    return stub


def _is_official(name: str) -> bool:
    return name.split(".")[0] in OFFICIAL_PACKAGES


@contextmanager
def _official_import_scope(root: Path, stubs: dict[str, types.ModuleType]) -> Iterator[None]:
    """``root`` first on ``sys.path`` and ``stubs`` in ``sys.modules`` inside the block; both restored after,
    with every official module imported inside removed (modules of the same names from elsewhere come back)."""
    import torchvision

    saved = {name: mod for name, mod in sys.modules.items() if _is_official(name) or name in stubs}
    for name in saved:
        del sys.modules[name]
    sys.modules.update(stubs)
    sys.path.insert(0, str(root))
    try:
        with _attribute(torchvision, "__version__", VERSION_FOR_OFFICIAL_CHECK):
            yield
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if _is_official(n) or n in stubs]:
            del sys.modules[name]
        sys.modules.update(saved)


def _without_pretrained(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """A torchvision model factory that ignores ``pretrained=`` and never downloads (``weights=None``)."""
    def build(*args: Any, pretrained: bool = False, **kwargs: Any) -> nn.Module:
        kwargs["weights"] = None
        return factory(*args, **kwargs)

    return build


class _RobertaFromConfig:
    """Stands in for ``RobertaModel``: ``from_pretrained`` builds an untrained model of the given sizes."""

    def __init__(self, text_spec: dict[str, Any]) -> None:
        self.text_spec = text_spec

    def from_pretrained(self, name: str, *args: Any, **kwargs: Any) -> nn.Module:
        from transformers import RobertaConfig, RobertaModel

        fields = {k: v for k, v in self.text_spec.items() if k != "model_type"}
        return RobertaModel(RobertaConfig(**fields), add_pooling_layer=True)


class _FixedTokenizerFactory:
    """Stands in for ``RobertaTokenizerFast``: ``from_pretrained`` gives a :class:`FixedTokenizer`."""

    @staticmethod
    def from_pretrained(name: str, *args: Any, **kwargs: Any) -> FixedTokenizer:
        return FixedTokenizer()


def official_args(backbone: str) -> argparse.Namespace:
    """The official ``opts`` parsed with the Ref-Youtube-VOS inference flags (call inside the import scope)."""
    opts = importlib.import_module("opts")
    return opts.get_args_parser().parse_args([*INFERENCE_FLAGS, "--backbone", backbone])


def build_official_model(official_dir: str | Path, backbone: str = "resnet50",
                         text_spec: dict[str, Any] | None = None) -> nn.Module:
    """The official ``ReferFormer`` (inference options, eval mode, untrained weights) built from ``official_dir``.

    ``text_spec``: RoBERTa config fields (``ReferFormerConfig.text_encoder``); roberta-base sizes by default. The
    official resizer takes 768 features, so ``hidden_size`` must be 768.
    """
    from referformer_core.config import ROBERTA_BASE

    root = check_official_dir(official_dir)
    spec = dict(text_spec if text_spec is not None else ROBERTA_BASE)
    if spec.get("model_type", "roberta") != "roberta" or int(spec["hidden_size"]) != 768:
        raise OfficialCodeError("the official model takes a RoBERTa text encoder with 768 features")
    core: dict[str, Callable[..., Tensor]] = {}
    stubs = {"MultiScaleDeformableAttention": _msda_stub(core)}
    if importlib.util.find_spec("fvcore") is None:
        stubs.update(_fvcore_stub())
    import torchvision.models

    try:
        with _official_import_scope(root, stubs):
            args = official_args(backbone)
            models = importlib.import_module("models")
            core["fn"] = importlib.import_module("models.ops.functions.ms_deform_attn_func").ms_deform_attn_core_pytorch
            referformer = importlib.import_module("models.referformer")
            factory = getattr(torchvision.models, backbone, None)
            with ExitStack() as patches:
                patches.enter_context(_attribute(referformer, "RobertaModel", _RobertaFromConfig(spec)))
                patches.enter_context(_attribute(referformer, "RobertaTokenizerFast", _FixedTokenizerFactory))
                if factory is not None:
                    patches.enter_context(_attribute(torchvision.models, backbone, _without_pretrained(factory)))
                model, _, _ = models.build_model(args)
    except OfficialCodeError:
        raise
    except (ImportError, AttributeError, TypeError) as e:
        raise OfficialCodeError(f"could not build the official model from {root}: {type(e).__name__}: {e}") from e
    return model.eval()


def copy_weights(ours: nn.Module, official: nn.Module) -> None:
    """Load our model's state dict into the official model, strict (both use the official parameter names)."""
    state = {k: v for k, v in ours.state_dict().items() if k != "text_encoder.embeddings.position_ids"}
    official.load_state_dict(state, strict=True)


def run_official(model: nn.Module, frames: Tensor, input_ids: Tensor,
                 attention_mask: Tensor | None = None) -> dict[str, Tensor]:
    """One clip through the official model as ``inference_ytvos.py`` calls it (no grad).

    ``frames [T, 3, H, W]`` normalised, ``input_ids [1, L]`` the expression's tokens. Returns the official output
    dict (``pred_logits [1, T, Q, 1]``, ``pred_boxes``, ``pred_masks [1, T, Q, H/4, W/4]``, ``reference_points``).
    """
    model.tokenizer = FixedTokenizer(input_ids, attention_mask)
    h, w = frames.shape[-2:]
    target = {"size": torch.as_tensor([int(h), int(w)], device=frames.device)}
    with torch.inference_mode():
        return model([frames], ["expression given as token ids"], [target])


def run_ours(model: nn.Module, frames: Tensor, input_ids: Tensor,
             attention_mask: Tensor | None = None) -> dict[str, Tensor]:
    """The same clip through our model, as the benchmark times it (``encode_frames`` + ``decode_each``)."""
    mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
    sizes = torch.tensor([list(frames.shape[-2:])], device=frames.device)
    with torch.inference_mode():
        return model.decode_each(model.encode_frames(frames[None]), model.encode_text(input_ids, mask), sizes)[0]


def max_abs_diff(ours: dict[str, Tensor], official: dict[str, Tensor],
                 keys: tuple[str, ...] = ("pred_logits", "pred_boxes", "pred_masks")) -> dict[str, float]:
    """``max |ours - official|`` for each output in ``keys``."""
    return {k: (ours[k].float() - official[k].float()).abs().max().item() for k in keys}
