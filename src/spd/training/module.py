"""The LightningModule: the model, the multi-task loss, the optimiser and schedule, and
validation with the evaluation protocol (confusion matrix at original resolution)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import lightning as L
import torch

from .. import __version__
from ..config import from_dict
from ..config.schema import ExperimentConfig
from ..evaluation.evaluator import Evaluator
from ..inference import predict_batch
from ..losses import LossOutput, MultiTaskLoss
from ..model import SPDNet
from ..tasks import NUM_DP_PARTS
from ..model.pretrained import load_encoder_weights
from ..ops.errors import LossNotFinite
from ..weights import init_from_file, read_model_file
from ..weights.files import training_state
from ..weights.record import model_description
from .run_lock import is_main_process

log = logging.getLogger(__name__)


def poly_schedule(max_steps: int, power: float, warmup: int):
    """LR multiplier per optimiser step: linear warm-up, then (1 - step / max_steps) ** power."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, 1.0 - step / max(1, max_steps)) ** power
    return factor


def validation_protocol(config: ExperimentConfig):
    """What validation during training predicts with: one scale, unmirrored, at the training crop
    size; cheap, and the same at every epoch. ``spd evaluate`` applies the configured test-time
    protocol (``config.eval``) instead."""
    return replace(config.eval, input_size=tuple(config.augment.size), scales=(1.0,), flip=False)


def build_model(config: ExperimentConfig, initialise: bool = True) -> SPDNet:
    """The network of an experiment; with ``initialise``, its starting weights as the config says
    (``model.backbone_weights``, then ``model.init_from``, whose input normalisation it adopts)."""
    m = config.model
    source = read_model_file(m.init_from) if initialise and m.init_from else None
    model = SPDNet(m, model_description(source.record, source.path)[1]) if source else SPDNet(m)
    if initialise and m.backbone_weights:
        log.info("encoder weights loaded from %s", load_encoder_weights(model.trunk, m.backbone_weights))
    if source:
        report = init_from_file(model, source)
        if is_main_process():  # every process of a distributed run builds the model
            log.info(report.summary())
    return model


class SPDModule(L.LightningModule):
    """``config`` is the resolved experiment config as a plain dict (saved in every checkpoint).
    ``loss_weights``: the class weights of :class:`MultiTaskLoss` (``class_weights``,
    ``part_weights``) when ``loss.class_balance`` / ``part_balance`` > 0, counted on the training
    labels (a resumed run gets them back from its checkpoint). ``initialise``: load the starting
    weights the config names (not when the weights come from a checkpoint anyway)."""

    def __init__(self, config: dict, initialise: bool = True, loss_weights: dict[str, torch.Tensor] | None = None):
        super().__init__()
        self.save_hyperparameters({"config": config})
        self.cfg: ExperimentConfig = from_dict(config)
        self.model = build_model(self.cfg, initialise)
        # Placeholders of the right size when no counts are given, so that a checkpoint's load.
        balance = self.cfg.loss
        weights = {"class_weights": torch.ones(self.model.config.num_parsing_classes) if balance.class_balance else None,
                   "part_weights": torch.ones(NUM_DP_PARTS + 1) if balance.part_balance else None}
        self.criterion = MultiTaskLoss(self.cfg.loss, **{**weights, **(loss_weights or {})}, tasks=self.model.config.tasks)
        self.evaluator: Evaluator | None = None
        self.last_loss: LossOutput | None = None  # the current step's, for callbacks that read its graph

    def forward(self, images: torch.Tensor):
        x = self.model.normalise(images)
        if self.cfg.train.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.last_loss = self.criterion(self(batch["image"]), batch)
        if self._check_now(batch_idx):
            self._check_finite(loss)
        size = batch["image"].shape[0]
        # The mean over processes (each has its own share of the batch): one small all-reduce per value.
        self.log("loss", loss.total, prog_bar=True, batch_size=size, sync_dist=True)
        self.log_dict({f"train/{k}": v.detach() for k, v in loss.terms.items()}, prog_bar=True, batch_size=size,
                      sync_dist=True)
        if self.criterion.log_vars is not None:
            self.log_dict({f"train/weight_{t}": w.detach() for t, w in self.criterion.task_weights().items()},
                          batch_size=size)
        return loss.total

    def _check_now(self, batch_idx: int) -> bool:
        """Whether to look at the loss's value this step (a host-device sync): at every logging
        step, and before every checkpoint. A non-finite loss makes every later one non-finite (the
        weights are then NaN), so the next check finds it before a checkpoint can keep it."""
        trainer, step = self.trainer, self.global_step + 1
        every = self.cfg.train.checkpoint_every_n_steps
        return (step % trainer.log_every_n_steps == 0 or batch_idx + 1 >= trainer.num_training_batches
                or (every > 0 and step % every == 0) or step >= trainer.max_steps > 0)

    def _check_finite(self, loss: LossOutput) -> None:
        """Stops every process together: a process that stopped alone would leave the others
        waiting in the gradient all-reduce until the collective's timeout (NCCL: minutes)."""
        finite = bool(torch.isfinite(loss.total.detach()))
        if self.trainer.strategy.reduce_boolean_decision(finite, all=True):
            return
        terms = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in loss.terms.items())
        where = (f"the loss is {float(loss.total.detach())} ({terms})" if not finite
                 else f"the loss is not finite in another process (here {float(loss.total.detach()):.4g})")
        raise LossNotFinite(f"training stopped at step {self.global_step}: {where}; it is checked every "
                                 f"{self.trainer.log_every_n_steps} steps and before every checkpoint")

    def on_validation_epoch_start(self) -> None:
        space = self.trainer.datamodule.val_reader.label_space if self.trainer.datamodule else self.model.config.parsing_space
        self.evaluator = Evaluator(self.model.config.parsing_space, space, tasks=self.model.config.tasks).to(self.device)
        self.val_protocol = validation_protocol(self.cfg)

    def validation_step(self, items: list[dict[str, Any]], batch_idx: int) -> None:
        """``items``: samples at their own sizes (a list, not stacked)."""
        predictions = predict_batch(self.model, [item["image"].to(self.device) for item in items], self.val_protocol)
        for prediction, item in zip(predictions, items):
            self.evaluator.update(prediction, item)

    def on_validation_epoch_end(self) -> None:
        # The evaluator's states are summed over processes already (torchmetrics).
        self.log_dict(self.evaluator.logged(self.evaluator.result({})), prog_bar=True, sync_dist=False)

    def configure_optimizers(self):
        o = self.cfg.optim
        # The loss's own parameters (learned task weights) train with the model, without weight decay.
        params = [{"params": [p for p in self.model.parameters() if p.requires_grad]}]
        if any(True for _ in self.criterion.parameters()):
            params.append({"params": list(self.criterion.parameters()), "weight_decay": 0.0})
        if o.name == "sgd":
            optimiser = torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
        else:
            optimiser = torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
        steps = int(self.trainer.estimated_stepping_batches)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, poly_schedule(steps, o.poly_power, o.warmup_steps))
        return {"optimizer": optimiser, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["spd"] = {"model": self.model.metadata(), "version": __version__}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # A checkpoint of an earlier layout resumes: its keys are brought to today's first.
        checkpoint["state_dict"] = training_state(checkpoint, "the checkpoint")
