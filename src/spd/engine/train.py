"""``train(config)``: one Lightning run with the experiment config. CPU, one GPU, several GPUs
(DDP) or several nodes with the same call; checkpoints, resume, TensorBoard and CSV logs."""

from __future__ import annotations

import logging
import shutil
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint

from ..atomic import write_text
from ..data.class_stats import balanced_weights, class_frequencies
from ..data.errors import DataError
from ..data.scan import verified
from ..config import ExperimentConfig, to_dict
from ..labels import label_space
from .checkpoint_io import AtomicCheckpointIO, checkpoints_in, clean_checkpoint_folder
from .datamodule import SPDDataModule
from .devices import parse_device
from .loggers import run_loggers
from .module import SPDModule
from .run_lock import run_dir_lock

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    last_checkpoint: Path
    global_step: int
    metrics: dict[str, float]


def train(config: ExperimentConfig, name: str = "run", device: str = "auto", resume: bool | str = False,
          progress: bool = True, callbacks: list | None = None, overwrite: bool = False) -> TrainResult:
    """Trains; ``resume=True`` continues from the run's last checkpoint, a path from that file.
    A resumed run continues the run's logs (CSV and TensorBoard). A run folder that
    already holds checkpoints is an error unless resuming, or ``overwrite`` (which deletes them); so
    is a run folder that another ``train`` is using (:class:`~spd.engine.run_lock.RunInUse`)."""
    run_dir = Path(config.train.out_dir) / (config.train.name or name)
    with run_dir_lock(run_dir):
        return _train(config, run_dir, device, resume, progress, callbacks, overwrite)


def _train(config: ExperimentConfig, run_dir: Path, device: str, resume: bool | str, progress: bool,
           callbacks: list | None, overwrite: bool) -> TrainResult:
    t = config.train
    claim_run_dir(run_dir, resume=bool(resume), overwrite=overwrite)
    L.seed_everything(t.seed, workers=True, verbose=False)
    data = SPDDataModule(config)
    train_reader, val_reader = (verified(r, config.data.skip_corrupt) for r in data.readers())
    check_split_sizes(train_reader, val_reader, config.data.batch_size)
    parsing_space = train_reader.label_space
    resolved = to_dict(config)
    write_text(run_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))

    model = SPDModule(resolved, parsing_space, loss_weights=loss_class_weights(config, train_reader))
    accelerator, devices = parse_device(device, t.devices)
    checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="epoch{epoch:03d}-step{step:06d}",
                                 auto_insert_metric_name=False, save_last=True, **keep_newest(t.keep_checkpoints),
                                 every_n_train_steps=t.checkpoint_every_n_steps or None,
                                 # at every epoch's end, whatever the validation schedule
                                 save_on_train_epoch_end=True)
    trainer = L.Trainer(
        accelerator=accelerator, devices=devices, num_nodes=t.num_nodes, strategy=t.strategy,
        precision=t.precision, max_epochs=t.max_epochs, max_steps=t.max_steps,
        accumulate_grad_batches=t.accumulate_grad_batches, check_val_every_n_epoch=t.val_every_n_epochs,
        log_every_n_steps=t.log_every_n_steps, deterministic=t.deterministic, default_root_dir=run_dir,
        logger=run_loggers(run_dir, resume=bool(resume)),
        callbacks=[checkpoint, LearningRateMonitor("step"), *(callbacks or [])], plugins=[AtomicCheckpointIO()],
        enable_progress_bar=progress, enable_model_summary=False,
    )
    ckpt_path, start_step = None, 0
    if resume:
        ckpt_path = str(run_dir / "checkpoints" / "last.ckpt") if resume is True else str(resume)
        start_step = check_resumable(ckpt_path, model)
    clean_checkpoint_folder(run_dir / "checkpoints", start_step if resume else None)
    with warnings.catch_warnings():
        # The data module makes the loader resume mid-epoch (SPDDataModule.state_dict); Lightning
        # only knows of loaders that do it themselves and would warn that it is not resumable.
        warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch ended")
        trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if resume and trainer.global_step == start_step:
        log.warning("nothing to train: %s had already reached train.max_epochs=%d / max_steps=%d (step %d); raise "
                    "them to continue", ckpt_path, t.max_epochs, t.max_steps, start_step)
    return TrainResult(run_dir, run_dir / "checkpoints" / "last.ckpt", trainer.global_step, metrics)


def loss_class_weights(config: ExperimentConfig, reader) -> dict[str, torch.Tensor]:
    """The class weights of the parsing and part-index losses (``loss.class_balance`` /
    ``part_balance`` > 0), counted on the training labels; keyword arguments of MultiTaskLoss."""
    weights = {}
    for key, target, power, space in (("class_weights", "parsing", config.loss.class_balance, reader.label_space),
                                      ("part_weights", "densepose", config.loss.part_balance, "densepose")):
        if power == 0 or not any(getattr(r, target) is not None for r in reader.records):
            continue
        classes = label_space(space).classes
        weights[key] = balanced_weights(class_frequencies(reader, len(classes), target, seed=config.train.seed), power)
        log.info("%s class weights (power %g): %s", target, power,
                 " ".join(f"{name}={w:.2f}" for name, w in zip(classes, weights[key].tolist())))
    return weights


def check_resumable(path: str, model: SPDModule) -> int:
    """The global step of a run's checkpoint that ``model`` can resume from; otherwise an error
    naming the file and what is wrong, before Lightning would fail deep inside."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no checkpoint to resume from")
    if Path(path).stat().st_size == 0:
        raise ValueError(f"{path}: the checkpoint is empty (0 bytes)")
    if not zipfile.is_zipfile(path):  # what torch.save writes
        raise ValueError(f"{path}: not a PyTorch checkpoint (no zip archive: truncated, or another kind of file)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # torch raises several types for a truncated, empty or foreign file
        raise ValueError(f"{path}: cannot read the checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(ckpt, dict) or not {"state_dict", "loops", "optimizer_states"} <= ckpt.keys():
        raise ValueError(f"{path}: not a checkpoint of `spd train` (a bare state dict or exported weights?); --resume "
                         "needs a run's .ckpt. To start from weights, use model.backbone_weights or `spd predict`")
    own, theirs = model.state_dict(), ckpt["state_dict"]
    missing, unexpected = sorted(own.keys() - theirs.keys()), sorted(theirs.keys() - own.keys())
    wrong = sorted(k for k in own.keys() & theirs.keys() if tuple(own[k].shape) != tuple(theirs[k].shape))
    if missing or unexpected or wrong:
        first = (f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}" if unexpected
                 else f"{wrong[0]!r} has shape {tuple(theirs[wrong[0]].shape)}, this model {tuple(own[wrong[0]].shape)}")
        raise ValueError(f"{path}: written by another model than this config builds ({len(missing)} missing, "
                         f"{len(unexpected)} unexpected, {len(wrong)} misshapen weights; {first}); resume with the "
                         "config the run was trained with")
    return int(ckpt.get("global_step", 0))


def check_split_sizes(train_reader, val_reader, batch_size: int) -> None:
    """Training drops the last incomplete batch: a split smaller than one batch would train zero
    steps and still exit successfully."""
    if len(train_reader) < batch_size:
        raise DataError(train_reader.root, f"split {train_reader.split!r} has {len(train_reader)} images, fewer than "
                                           f"one batch of {batch_size}: add images or lower data.batch_size")
    if len(val_reader) == 0:
        raise DataError(val_reader.root, f"split {val_reader.split!r} has no images to validate on")


def keep_newest(k: int) -> dict:
    """ModelCheckpoint arguments that keep the ``k`` newest checkpoints (-1: all)."""
    # Without a monitored value Lightning can keep all or one; ranking by step keeps the newest k.
    return {"save_top_k": k} if k in (-1, 0) else {"save_top_k": k, "monitor": "step", "mode": "max"}


def claim_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuses to mix a new run's checkpoints with an earlier run's, which a later --resume or
    evaluation would then pick up; under DDP every rank passes here before any checkpoint exists."""
    folder = run_dir / "checkpoints"
    earlier = checkpoints_in(folder)  # nothing when the folder does not exist
    if not earlier or resume:
        return
    if not overwrite:
        raise FileExistsError(f"{folder} holds {len(earlier)} checkpoint(s) of an earlier run: continue it with "
                              "--resume, pick another train.name, or pass --overwrite to delete them")
    log.warning("deleting %d checkpoint(s) of an earlier run in %s (--overwrite)", len(earlier), folder)
    shutil.rmtree(folder, ignore_errors=True)  # ignore_errors: other DDP ranks may delete at once

