"""``DensePosePredictor``: DensePose R-CNN (a DensePose model-zoo ``.pkl``, no detectron2) with the
Predictor's interface, so that ``spd predict model_final_162be9.pkl PHOTOS --out DIR`` writes
detectron2's IUV images (``NAME_iuv.png``: I, 255 U, 255 V at the photo's size) and overlays of
photos, folders and videos, and Python code gets :class:`~spd.inference.Prediction` objects.

    from spd.predict import DensePosePredictor
    predictor = DensePosePredictor.from_zoo("model_final_162be9.pkl", people=None)  # every person
    result = predictor("photo.jpg")
    result.dp_index  # uint8 [H, W] part 0..24;  result.dp_uv: float32 [2, H, W]

Each photo's IUV holds its ``people`` most confident detections (1: the top-scoring one, the rule
of training's pseudo-labels; None: all), a more confident person drawn over a less confident one.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..densepose_rcnn import DensePoseRCNN, load_detector
from ..densepose_rcnn.pseudo_labels import iuv_of
from ..inference import Prediction
from ..ops.devices import torch_device
from ..ops.errors import InputError
from .batched import BatchedPredictor

class DensePosePredictor(BatchedPredictor):
    """``model``: a :class:`~spd.densepose_rcnn.DensePoseRCNN`; ``people``: how many of the most
    confident detections each IUV holds (None: all). The detector runs one image at a time (as
    detectron2's ``DefaultPredictor``); ``batch_size`` only groups the inputs read. Results are on
    the CPU, whatever the device."""

    tasks = ("densepose",)

    def __init__(self, model: DensePoseRCNN, device: str | torch.device = "auto", batch_size: int = 1,
                 people: int | None = 1, source: str = ""):
        super().__init__(batch_size)
        if people is not None and people < 1:
            raise InputError(f"people must be at least 1 (or None for all), got {people}")
        self.device = torch_device(device) if isinstance(device, str) else device
        self.model = model.to(self.device).eval()
        self.people = people
        self.description = f"DensePose R-CNN R{model.config.depth}-FPN"
        self.protocol = {"model": "DensePose R-CNN", "weights": source, "min_score": model.config.score_thresh,
                         "people": "all" if people is None else people}

    @classmethod
    def from_zoo(cls, path: str | Path, device: str | torch.device = "auto", batch_size: int = 1,
                 people: int | None = 1, min_score: float | None = None) -> "DensePosePredictor":
        """A DensePose model-zoo file (chart-based IUV models: R50-FPN, R101-FPN ...), read as
        numpy arrays only; ``min_score``: detections below it are dropped (default
        :attr:`DetectorConfig.score_thresh <spd.densepose_rcnn.DetectorConfig>`, apply_net.py's)."""
        overrides = {} if min_score is None else {"score_thresh": min_score}
        return cls(load_detector(path, **overrides), device, batch_size, people, Path(path).name)

    def predict_tensors(self, batch: list[tuple[torch.Tensor, str | None]], return_probs: bool = False) -> list[Prediction]:
        if return_probs:
            raise InputError("DensePose R-CNN gives no parsing probabilities (return_probs)")
        results = []
        for image, source in batch:
            found = self.model.detect(image.to(self.device), charts=self.people)
            index, uv = iuv_of(found, tuple(image.shape[-2:]), self.people)
            results.append(Prediction(dp_index=torch.from_numpy(index), dp_uv=torch.from_numpy(uv),
                                      protocol=dict(self.protocol), source=source))
        return results
