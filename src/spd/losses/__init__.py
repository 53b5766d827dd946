"""The multi-task loss: each task's terms (declared by the task, :mod:`spd.tasks`) weighted and
summed over stages and scales. The built-in tasks' loss functions are re-exported here."""

from ..ops.renamed import module_getattr
from ..tasks.densepose import uv_loss
from ..tasks.parsing import parsing_loss, pixel_cross_entropy
from ..tasks.pose import pose_loss
from .total import LossConfig, LossOutput, MultiTaskLoss, stage_terms

__getattr__ = module_getattr("spd.losses", {"dp_uv_loss": "spd.losses.uv_loss (labels at the prediction's grid)",
                                            "dp_index_loss": "spd.losses.parsing_loss (with the part weights)"})
__all__ = ["LossConfig", "LossOutput", "MultiTaskLoss", "parsing_loss", "pixel_cross_entropy", "pose_loss",
           "stage_terms", "uv_loss"]
