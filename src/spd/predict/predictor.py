"""``Predictor``: a trained model applied to images, Lightning-free.

    from spd import Predictor
    predictor = Predictor.from_checkpoint("model.ckpt", device="auto", flip=True)
    result = predictor("photo.jpg")          # one image -> one Prediction
    results = predictor([img_a, img_b])      # a list -> a list, run in batches
    labels = result.parsing.numpy()          # uint8 [H, W] at the photo's size, on the CPU
"""

from __future__ import annotations

import logging

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..inference import INFERENCE_PRECISIONS, EvalConfig, Prediction, predict_batch, resolve_precision
from ..model import SPDNet
from ..ops.devices import torch_device
from ..ops.renamed import renamed
from ..ops.validation import require_choice
from ..weights import load_checkpoint
from .batched import BatchedPredictor

log = logging.getLogger(__name__)


class Predictor(BatchedPredictor):
    """``model``: an :class:`~spd.model.SPDNet` (or anything with its ``config``, ``normalise`` and
    ``predict_stages``). ``protocol``: the test-time protocol (``EvalConfig``: input size, scales,
    flip, stages, resize policy, pose decoder); keyword arguments override single fields.
    ``precision``: ``"auto"`` (bf16 and channels-last where faster for this model on this machine:
    :func:`~spd.inference.resolve_precision`; ``precision_choice`` says what and why), ``"32"``
    or ``"bf16"`` (the network under bfloat16 autocast; the outputs' resizing and decoding stay in
    float32). The Predictor owns ``model``: it moves it to ``device``, puts it in eval mode and, where
    ``auto`` chose it, turns its weights channels-last. Results are on the CPU, whatever the device."""

    def __init__(self, model: SPDNet, protocol: EvalConfig = EvalConfig(), device: str | torch.device = "auto",
                 batch_size: int = 4, precision: str = "auto", **overrides: Any):
        if "settings" in overrides:
            raise TypeError("Predictor(settings=...) is now Predictor(protocol=...)")
        super().__init__(batch_size)
        require_choice("precision", precision, INFERENCE_PRECISIONS)
        self.device = torch_device(device) if isinstance(device, str) else device
        self.model = model.to(self.device).eval()
        self.protocol = replace(protocol, **_typed(overrides))
        self.precision_choice = resolve_precision(precision, self.model, self.protocol.input_size)
        self.precision_choice.apply(self.model)
        if precision == "auto":
            log.info("%s", self.precision_choice)
        self.precision = self.precision_choice.precision
        self.tasks, self.parsing_space = self.model.config.tasks, self.model.config.parsing_space
        self.description = self.model.config.name

    settings = renamed("settings", "protocol")

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "auto", batch_size: int = 4,
                        precision: str = "auto", **overrides: Any) -> "Predictor":
        """A training checkpoint (``.ckpt``) or exported weights (``.safetensors``); the test-time
        protocol recorded with the model is the default."""
        loaded = load_checkpoint(path)
        return cls(loaded.model, loaded.protocol, device, batch_size, precision, **overrides)

    def predict_tensors(self, batch: list[tuple[torch.Tensor, str | None]], return_probs: bool = False) -> list[Prediction]:
        """``batch``: (uint8 RGB [3, H, W], source name) pairs of any sizes."""
        # On a GPU the copies run asynchronously, from and into pinned host memory, with one wait
        # per batch instead of a blocking copy per tensor (inputs, then five outputs per image).
        cuda = self.device.type == "cuda"
        images = [(image.pin_memory() if cuda and image.device.type == "cpu" and not image.is_pinned() else image)
                  .to(self.device, non_blocking=cuda) for image, _ in batch]
        out = predict_batch(self.model, images, self.protocol, self.precision, return_probs)
        results = [replace(result.to("cpu", non_blocking=cuda), source=source) for result, (_, source) in zip(out, batch)]
        if cuda:
            torch.cuda.current_stream(self.device).synchronize()  # the results have arrived before anyone reads them
        return results


def _typed(overrides: dict[str, Any]) -> dict[str, Any]:
    """Lists given for tuple fields (``scales=[1, 0.75]``) become tuples; unknown names are errors."""
    known = set(EvalConfig.__dataclass_fields__)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown test-time setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
