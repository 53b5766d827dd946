"""Run by tests/test_training.py as its own program (Lightning starts the second DDP process by
running it again): trains a tiny model on two CPU processes and records, per process, which
sample ids each step trained on, with sums of their augmented images and labels, and which
validation images each process scored. ``python ddp_sample_ids.py OUT_JSONL INTERRUPT_STEP|0 RESUME(0|1) KEY=VALUE...``"""

import json
import sys

import lightning as L

from spd.config import load_config
from spd.training import train


class RecordSamples(L.Callback):
    def __init__(self, path: str):
        self.path = path

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        # The sums tell whether the augmentation repeats: it is seeded by (seed, epoch, index).
        self._write(trainer, {"epoch": trainer.current_epoch, "step": trainer.global_step, "ids": list(batch["id"]),
                              "image_sum": float(batch["image"].double().sum()),
                              "label_sum": float(batch["parsing"].double().sum())})

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._write(trainer, {"loss_at_step": trainer.global_step, "loss": float(outputs["loss"])})

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        if not trainer.sanity_checking:
            self._write(trainer, {"epoch": trainer.current_epoch, "val_ids": [item["id"] for item in batch]})

    def _write(self, trainer, row: dict) -> None:
        with open(f"{self.path}.rank{trainer.global_rank}", "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")


class Interrupt(L.Callback):
    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise SystemExit(3)


if __name__ == "__main__":
    out, interrupt, resume, *overrides = sys.argv[1:]
    config, _ = load_config(None, overrides)
    callbacks = [RecordSamples(out)] + ([Interrupt(int(interrupt))] if int(interrupt) else [])
    train(config, device="cpu", resume=bool(int(resume)), progress=False, callbacks=callbacks)
