"""What every predictor offers: one image or a list of them in, Predictions out, computed a batch
at a time by the subclass's ``predict_tensors``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch

from ..inference import Prediction
from ..ops.errors import InputError
from .sources import to_image_tensor


class BatchedPredictor:
    """``batch_size`` images go to :meth:`predict_tensors` together; ``tasks`` are the tasks whose
    outputs the Predictions hold, ``parsing_space`` their parsing label space (None without one),
    ``description`` the model in a few words."""

    tasks: tuple[str, ...] = ()
    parsing_space: str | None = None
    description: str = ""

    def __init__(self, batch_size: int):
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size

    def __call__(self, images: Any, return_probs: bool = False) -> Prediction | list[Prediction]:
        """One image (path, PIL image, numpy array or uint8 tensor) -> one Prediction; a list of
        them -> a list. Raises naming the file or the list index of an input it cannot read."""
        if isinstance(images, (list, tuple)):
            return list(self.predict_iter(images, return_probs))
        return next(self.predict_iter([images], return_probs))

    def predict_iter(self, images: Iterable[Any], return_probs: bool = False) -> Iterator[Prediction]:
        """Predictions in input order, computed ``batch_size`` images at a time."""
        batch: list[tuple[torch.Tensor, str | None]] = []
        for i, item in enumerate(images):
            batch.append(to_image_tensor(item, i))
            if len(batch) == self.batch_size:
                yield from self.predict_tensors(batch, return_probs)
                batch = []
        if batch:
            yield from self.predict_tensors(batch, return_probs)

    def predict_tensors(self, batch: list[tuple[torch.Tensor, str | None]], return_probs: bool = False) -> list[Prediction]:
        """``batch``: (uint8 RGB [3, H, W], source name) pairs of any sizes."""
        raise NotImplementedError
