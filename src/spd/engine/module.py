"""The LightningModule: the model, the multi-task loss, the optimiser and schedule, and
validation with the evaluation protocol (confusion matrix at original resolution)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import lightning as L
import torch

from .. import __version__
from ..config import from_dict
from ..config.schema import ExperimentConfig
from ..losses import LossOutput, MultiTaskLoss
from ..model import build_model
from ..model.config import NUM_DP_PARTS
from ..predict.checkpoint import model_config
from .evaluator import Evaluator
from .inference import predict_image


def poly_schedule(max_steps: int, power: float, warmup: int):
    """LR multiplier per optimiser step: linear warm-up, then (1 - step / max_steps) ** power."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, 1.0 - step / max(1, max_steps)) ** power
    return factor


class SPDModule(L.LightningModule):
    """``config`` is the resolved experiment config as a plain dict (saved in every checkpoint).
    ``loss_weights``: the class weights of :class:`MultiTaskLoss` (``class_weights``,
    ``part_weights``) when ``loss.class_balance`` / ``part_balance`` > 0, counted on the training
    labels (a resumed run gets them back from its checkpoint)."""

    def __init__(self, config: dict, parsing_space: str = "lip", load_backbone: bool = True,
                 loss_weights: dict[str, torch.Tensor] | None = None):
        super().__init__()
        self.save_hyperparameters({"config": config, "parsing_space": parsing_space})
        self.cfg: ExperimentConfig = from_dict(config)
        weights = self.cfg.model.backbone_weights if load_backbone else None
        self.model = build_model(model_config(self.cfg, parsing_space), weights)
        # Placeholders of the right size when no counts are given, so that a checkpoint's loads.
        balance = self.cfg.loss
        weights = {"class_weights": torch.ones(self.model.config.num_parsing_classes) if balance.class_balance else None,
                   "part_weights": torch.ones(NUM_DP_PARTS + 1) if balance.part_balance else None}
        self.criterion = MultiTaskLoss(self.cfg.loss, **{**weights, **(loss_weights or {})}, tasks=self.model.config.tasks)
        self.evaluator: Evaluator | None = None
        self.last_loss: LossOutput | None = None  # the current step's, for callbacks that read its graph

    def forward(self, images: torch.Tensor):
        return self.model(self.model.normalise(images))

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.last_loss = self.criterion(self(batch["image"]), batch)
        if not torch.isfinite(loss.total):
            terms = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in loss.terms.items())
            raise FloatingPointError(f"training stopped at step {self.global_step}: the loss is "
                                     f"{float(loss.total.detach())} ({terms})")
        size = batch["image"].shape[0]
        self.log("loss", loss.total, prog_bar=True, batch_size=size)
        self.log_dict({f"train/{k}": v.detach() for k, v in loss.terms.items()}, prog_bar=True, batch_size=size)
        if self.criterion.log_vars is not None:
            self.log_dict({f"train/weight_{t}": w.detach() for t, w in self.criterion.task_weights().items()},
                          batch_size=size)
        return loss.total

    def on_validation_epoch_start(self) -> None:
        tasks = self.model.config.tasks
        space = self.trainer.datamodule.val_reader.label_space if self.trainer.datamodule else self.model.config.parsing_space
        self.evaluator = Evaluator(self.model.config.parsing_space, space, pose="pose" in tasks,
                                   densepose="densepose" in tasks).to(self.device)
        # Validation runs one scale, unmirrored, at the training crop size: cheap, and the same
        # protocol at every epoch. `spd evaluate` applies the configured test-time protocol.
        self.val_protocol = replace(self.cfg.eval, input_size=tuple(self.cfg.augment.size), scales=(1.0,), flip=False)

    def validation_step(self, item: dict[str, Any], batch_idx: int) -> None:
        self.evaluator.update(predict_image(self.model, item["image"].to(self.device), self.val_protocol), item)

    def on_validation_epoch_end(self) -> None:
        result = self.evaluator.result({})
        metrics = {}
        if result.parsing:
            metrics["val/miou"] = result.parsing["miou"] or 0.0
            metrics["val/pixel_acc"] = result.parsing["pixel_accuracy"] or 0.0
        if result.pose:
            metrics["val/pckh"] = result.pose["pckh"]["Total"] or 0.0
        if result.densepose:
            metrics["val/dp_part_miou"] = result.densepose["part_miou"] or 0.0
        self.log_dict(metrics, prog_bar=True, sync_dist=False)

    def configure_optimizers(self):
        o = self.cfg.optim
        # The loss's own parameters (learned task weights) train with the model, without weight decay.
        params = [{"params": [p for p in self.model.parameters() if p.requires_grad]}]
        if any(True for _ in self.criterion.parameters()):
            params.append({"params": list(self.criterion.parameters()), "weight_decay": 0.0})
        if o.name == "sgd":
            optimiser = torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
        elif o.name == "adamw":
            optimiser = torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
        else:
            raise ValueError(f"optim.name must be 'sgd' or 'adamw', got {o.name!r}")
        steps = int(self.trainer.estimated_stepping_batches)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, poly_schedule(steps, o.poly_power, o.warmup_steps))
        return {"optimizer": optimiser, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["spd"] = {"model": self.model.metadata(), "version": __version__}
