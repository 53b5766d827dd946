"""When training checkpoints are written: only at the end of a training batch.

With ``train.max_steps`` set, Lightning 2.6 counts every resume as a restart, also from a
checkpoint written at an epoch's end (``FitLoop.restarting``); it then trains one more batch in
the finished epoch and numbers the following epochs, and so the sampler's orders, one ahead, so
that a resumed run trains on other samples than an uninterrupted one. A checkpoint written at the
end of the epoch's last batch resumes exactly (with the epoch count corrected in
``on_train_start``), as does one written mid-epoch. Uses ModelCheckpoint's private saving methods
(Lightning 2.6); tests/test_training.py exercises every path."""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint


class BatchEndCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that saves every ``every_n_train_steps`` steps (None: not by count), at
    the last batch of every epoch, and at the run's last step; never at an epoch's or a
    validation's end."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        epoch_ends = trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        run_ends = 0 < trainer.max_steps <= trainer.global_step
        if ((epoch_ends or run_ends) and self._last_global_step_saved != trainer.global_step
                and not self._should_skip_saving_checkpoint(trainer)):
            candidates = self._monitor_candidates(trainer)
            self._save_topk_checkpoint(trainer, candidates)
            self._save_last_checkpoint(trainer, candidates)

    def on_train_start(self, trainer, pl_module) -> None:
        super().on_train_start(trainer, pl_module)
        fit = trainer.fit_loop
        epoch = fit.epoch_loop
        if fit.restarted_mid_epoch and epoch.restarted_on_train_batch_end and epoch.batch_progress.is_last_batch:
            # Resumed from an epoch's last batch: Lightning counts the epoch as done (FitLoop.reset) but
            # then neither readies nor starts the next one (on_advance_start skips both for a restart
            # mid-epoch), which leaves its epoch counters one behind; a second resume then trained
            # an epoch again. Counted here as an uninterrupted run counts them.
            fit.epoch_progress.increment_ready()
            fit.epoch_progress.increment_started()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        pass

    def on_validation_end(self, trainer, pl_module) -> None:
        pass
