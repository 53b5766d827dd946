"""Run by tests/test_training.py as its own program (Lightning starts the second DDP process by
running it again): trains a tiny model on two CPU processes and records, per process, which
sample ids each step trained on. ``python ddp_sample_ids.py OUT_JSONL INTERRUPT_STEP|0 RESUME(0|1) KEY=VALUE...``"""

import json
import sys

import lightning as L

from spd.config import load_config
from spd.training import train


class RecordSamples(L.Callback):
    def __init__(self, path: str):
        self.path = path

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        with open(f"{self.path}.rank{trainer.global_rank}", "a", encoding="utf-8") as f:
            f.write(json.dumps({"epoch": trainer.current_epoch, "step": trainer.global_step, "ids": list(batch["id"])})
                    + "\n")


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
