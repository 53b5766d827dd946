"""``train(config)``: one Lightning run of an experiment config, the API behind ``spd train``, the
demo and the study. CPU, one GPU, several GPUs (DDP) or several nodes with the same call;
checkpoints, resume (exact, mid-epoch included), TensorBoard and CSV logs.

The global batch is ``data.batch_size`` images per optimiser step, split across the processes
(and accumulated batches): the recipe (batch, LR, schedule) is the same on one device or many.
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import lightning as L
import torch
import yaml
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import LearningRateMonitor, TQDMProgressBar

from ..config import ExperimentConfig, to_dict
from ..data.class_stats import balanced_weights, class_frequencies
from ..data.errors import DataError
from ..data.rules import compressed_labels, split_problem
from ..data.scan import verified
from ..labels import label_space
from ..ops.atomic import write_text
from ..ops.devices import parse_device
from ..ops.errors import InputError
from ..ops.state import WeightsError, check_state_dict, read_torch_file
from ..weights.files import training_state
from .auto_precision import resolve_train_precision
from .batch_end_checkpoint import BatchEndCheckpoint
from .checkpoint_io import AtomicCheckpointIO, checkpoints_in, clean_checkpoint_folder
from .datamodule import SPDDataModule, per_process_batch
from .loggers import run_loggers
from .module import SPDModule
from .run_lock import is_main_process, run_dir_lock

log = logging.getLogger(__name__)
REPLACED = ".checkpoints.replaced"  # an earlier run's checkpoints, kept until the new run has its own


@dataclass
class TrainResult:
    run_dir: Path
    last_checkpoint: Path
    global_step: int
    metrics: dict[str, float]


def train(config: ExperimentConfig, name: str = "run", device: str = "auto", resume: bool | str = False,
          progress: bool = True, callbacks: list | None = None, overwrite: bool = False) -> TrainResult:
    """Trains; ``resume=True`` continues from the run's last checkpoint, a path from that file.
    A resumed run continues the run's logs (CSV and TensorBoard). A run folder that already holds
    checkpoints is an error unless resuming, or ``overwrite`` (the earlier checkpoints are set
    aside once everything else has been checked, and deleted when the new run has written its
    first checkpoint); so is a run folder that another ``train`` is using
    (:class:`~spd.training.run_lock.RunInUse`)."""
    launch = parse_device(device, config.train.devices)
    check_cluster(config.train.num_nodes)
    if launch[0] == "cpu" and config.train.precision == "16-mixed":
        # Lightning would train in bf16 instead, while the run's config and checkpoints said 16-mixed.
        raise InputError("train.precision 16-mixed (float16 autocast) needs a GPU; on the CPU use bf16-mixed or 32-true")
    run_dir = Path(config.train.out_dir) / (config.train.name or name)
    with run_dir_lock(run_dir):
        return _train(config, run_dir, launch, resume, progress, callbacks, overwrite)


def _train(config: ExperimentConfig, run_dir: Path, launch: tuple, resume: bool | str, progress: bool,
           callbacks: list | None, overwrite: bool) -> TrainResult:
    """``launch``: (accelerator, devices) for the Trainer, from :func:`parse_device`."""
    t = config.train
    restore_interrupted_overwrite(run_dir)
    refuse_earlier_run(run_dir, resume=bool(resume), overwrite=overwrite)
    L.seed_everything(t.seed, workers=True, verbose=False)
    data = SPDDataModule(config)
    train_reader, val_reader = (verified(r, config.data.skip_corrupt) for r in data.readers())
    check_split_sizes(train_reader, val_reader, config.data.batch_size)
    if is_main_process() and not resume:
        warn_compressed(train_reader)  # said once per run: it decodes up to 200 labels
    # The parsing head predicts the training data's label space (LIP or ATR).
    config = replace(config, model=replace(config.model, parsing_space=train_reader.label_space))
    resume_from = None if not resume else run_dir / "checkpoints" / "last.ckpt" if resume is True else Path(resume)
    processes = int(os.environ.get("WORLD_SIZE") or (launch[1] if isinstance(launch[1], int) else 1) * t.num_nodes)
    config, choice = resolve_train_precision(config, launch[0], resume_from, processes)
    if choice.reason != "as asked" and is_main_process():
        log.info("train.precision auto: %s%s (%s)", config.train.precision,
                 ", channels-last" if choice.channels_last else "", choice.reason)
    t = config.train
    data.config = config
    resolved = to_dict(config)
    # A resumed run's class weights come from its checkpoint (into SPDModule's placeholders).
    module = SPDModule(resolved, initialise=not resume,
                       loss_weights=None if resume else loss_class_weights(config, train_reader))
    data.output_stride = module.model.output_stride
    if t.channels_last:
        module.model.to(memory_format=torch.channels_last)
    if t.compile:
        module.model.compile()
    accelerator, devices = launch
    if accelerator == "gpu":  # cuDNN's convolutions have their own TF32 switch (on by default)
        torch.set_float32_matmul_precision("high" if t.tf32 else "highest")
        torch.backends.cudnn.allow_tf32 = t.tf32
    # Lightning swaps the layers that train statistics for SyncBatchNorm, which PyTorch runs on GPUs
    # only; frozen ones (FrozenStatsBatchNorm2d) are left as they are, so a model with no other needs no GPU.
    trains_statistics = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in module.modules())
    sync_batchnorm = t.sync_batchnorm and (accelerator == "gpu" or not trains_statistics)
    if t.sync_batchnorm and not sync_batchnorm:
        log.warning("train.sync_batchnorm: PyTorch synchronises batch norm on GPUs only; on the CPU each process "
                    "keeps its own statistics")
    # at every epoch's last batch (and every n steps when asked), whatever the validation schedule
    checkpoint = BatchEndCheckpoint(dirpath=run_dir / "checkpoints", auto_insert_metric_name=False,
                                    **keep_newest(t.keep_checkpoints), every_n_train_steps=t.checkpoint_every_n_steps or None)
    bar = [TQDMProgressBar(refresh_rate=t.log_every_n_steps)] if progress else []
    trainer = lightning_trainer(
        accelerator=accelerator, devices=devices, num_nodes=t.num_nodes, strategy=t.strategy,
        precision=t.precision, max_epochs=t.max_epochs, max_steps=t.max_steps,
        accumulate_grad_batches=t.accumulate_grad_batches, check_val_every_n_epoch=t.val_every_n_epochs,
        log_every_n_steps=t.log_every_n_steps, default_root_dir=run_dir,
        # No deterministic kernel exists on CUDA for some operations: those warn instead of failing.
        deterministic="warn" if t.deterministic else False, benchmark=not t.deterministic,
        # The data module splits the epoch order across processes itself (EpochSampler).
        use_distributed_sampler=False, sync_batchnorm=sync_batchnorm,
        logger=run_loggers(run_dir, resume=bool(resume)),
        callbacks=[checkpoint, LearningRateMonitor("step"), *bar, ReplacedCheckpoints(run_dir), *(callbacks or [])],
        plugins=[AtomicCheckpointIO()], enable_progress_bar=progress, enable_model_summary=False,
    )
    per_process = per_process_batch(config.data.batch_size, trainer.world_size, t.accumulate_grad_batches)
    check_validation_shards(val_reader, trainer.world_size)
    if trainer.global_rank == 0:
        log.info("batch: %d images per optimiser step = %d process(es) x %d per process x %d accumulated; lr %g",
                 config.data.batch_size, trainer.world_size, per_process, t.accumulate_grad_batches, config.optim.lr)
        log.info("parsing classes: %s (%d, the training data's label space)", config.model.parsing_space,
                 config.model.num_parsing_classes)
    ckpt_path, start_step = None, 0
    if resume:
        ckpt_path = str(run_dir / "checkpoints" / "last.ckpt") if resume is True else str(resume)
        start_step = check_resumable(ckpt_path, module)
    if overwrite and not resume:
        set_aside_earlier_run(run_dir)
    if is_main_process():
        write_text(run_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
        clean_checkpoint_folder(run_dir / "checkpoints", start_step if resume else None)
    try:
        with warnings.catch_warnings():
            # The data module makes the loader resume mid-epoch (SPDDataModule.state_dict); Lightning
            # only knows of loaders that do it themselves and would warn that it is not resumable.
            warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch ended")
            trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    finally:
        restore_if_nothing_new(run_dir)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if resume and trainer.global_step == start_step:
        log.warning("nothing to train: %s had already reached train.max_epochs=%d / max_steps=%d (step %d); raise "
                    "them to continue", ckpt_path, t.max_epochs, t.max_steps, start_step)
    return TrainResult(run_dir, run_dir / "checkpoints" / "last.ckpt", trainer.global_step, metrics)


def lightning_trainer(**settings) -> L.Trainer:
    """``L.Trainer(**settings)``; settings Lightning refuses (a strategy whose package is missing,
    say) become an error naming them, not a traceback."""
    try:
        return L.Trainer(**settings)
    except MisconfigurationException as err:
        named = ", ".join(f"{k} {settings[k]!r}" for k in ("strategy", "accelerator", "devices", "num_nodes", "precision"))
        raise InputError(f"Lightning refused the run's settings ({named}): {err}") from None


def check_cluster(num_nodes: int) -> None:
    """Several nodes need a launcher, or a rendezvous address on each node; without either Lightning
    waits for ever for nodes that nobody starts."""
    if num_nodes == 1 or "MASTER_ADDR" in os.environ:
        return
    from lightning.fabric.plugins.environments import (LSFEnvironment, MPIEnvironment, SLURMEnvironment,
                                                       TorchElasticEnvironment)

    if any(env.detect() for env in (SLURMEnvironment, TorchElasticEnvironment, LSFEnvironment, MPIEnvironment)):
        return
    raise InputError(f"train.num_nodes {num_nodes}: no cluster launcher found (SLURM, torchrun, LSF, MPI) and "
                     "MASTER_ADDR is not set, so the other nodes would never join: run the same command on each "
                     "node with MASTER_ADDR, MASTER_PORT and NODE_RANK set, or under srun / torchrun "
                     "(docs/training.md); on one machine use --devices instead")


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


OPTIMISERS = {"adamw": "betas", "sgd": "momentum"}  # a key only that optimiser's parameter groups have


def check_resumable(path: str, module: SPDModule) -> int:
    """The global step of a run's checkpoint that ``module`` can resume from; otherwise an error
    naming the file and what is wrong, before Lightning would fail deep inside."""
    ckpt = read_torch_file(path, "checkpoint", mmap=True)
    if not isinstance(ckpt, dict) or not {"state_dict", "loops", "optimizer_states"} <= ckpt.keys():
        raise WeightsError(f"{path}: not a checkpoint of `spd train` (a bare state dict or exported weights?); --resume "
                           "needs a run's .ckpt. To start from weights, use model.init_from")
    check_state_dict(module.state_dict(), training_state(ckpt, path), path,
                     "the model this config builds (resume with the config the run was trained with)")
    groups = [g for state in ckpt["optimizer_states"] for g in state.get("param_groups", [])]
    wanted = module.cfg.optim.name
    found = next((name for name, key in OPTIMISERS.items() if groups and key in groups[0]), None)
    if found is not None and found != wanted:
        raise WeightsError(f"{path}: the run was trained with optim.name {found}, this config says {wanted}; resume "
                           f"with the optimiser it was trained with (optim.name={found})")
    return int(ckpt.get("global_step", 0))


def check_split_sizes(train_reader, val_reader, batch_size: int) -> None:
    """Training drops the last incomplete batch: a split smaller than one batch would train zero
    steps and still exit successfully."""
    if len(train_reader) < batch_size:
        raise DataError(train_reader.root, f"split {train_reader.split!r} has {len(train_reader)} images, fewer than "
                                           f"one batch of {batch_size}: add images or lower data.batch_size")
    empty = split_problem(val_reader.split, len(val_reader))
    if empty:
        raise DataError(val_reader.root, empty)


def check_validation_shards(val_reader, world_size: int) -> None:
    """Each process validates its own images (no duplicates): a process with none would skip the
    validation that the others then wait for in the metrics' all-gather."""
    if len(val_reader) < world_size:
        raise DataError(val_reader.root, f"split {val_reader.split!r} has {len(val_reader)} images, fewer than the "
                                         f"{world_size} processes that validate it: each needs at least one (add "
                                         "images or train on fewer devices)")


def warn_compressed(reader) -> None:
    """Labels saved lossily (JPEG ringing) train on wrong classes at every edge: said at the start."""
    found = compressed_labels(reader)
    if found:
        log.warning("%d of %d parsing labels of split %r look lossily compressed (saved as JPEG?), e.g. %s; their "
                    "edges carry wrong classes (`spd data check` lists them all)", len(found), len(reader.records),
                    reader.split, ", ".join(str(p) for p in found[:3]))


def keep_newest(k: int) -> dict:
    """ModelCheckpoint arguments that keep ``last.ckpt`` and the ``k`` newest numbered checkpoints
    (-1: all)."""
    if k == 0:
        # Lightning writes last.ckpt only beside a numbered checkpoint (save_last) or at the end of
        # fit: the one checkpoint is itself named "last", replaced at every save.
        return {"filename": "last", "save_top_k": 1, "save_last": False}
    # Without a monitored value Lightning can keep all or one; ranking by step keeps the newest k.
    ranking = {} if k == -1 else {"monitor": "step", "mode": "max"}
    return {"filename": "epoch{epoch:03d}-step{step:06d}", "save_top_k": k, "save_last": True, **ranking}


def refuse_earlier_run(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """A new run must not mix its checkpoints with an earlier run's, which a later --resume or
    evaluation would then pick up. Nothing is changed here (see :func:`set_aside_earlier_run`)."""
    # Set-aside ones count too: every process of a distributed run decides alike, before or after
    # rank 0 has put them back (restore_interrupted_overwrite).
    earlier = checkpoints_in(run_dir / "checkpoints") or checkpoints_in(run_dir / REPLACED)
    if earlier and not resume and not overwrite:
        raise FileExistsError(f"{run_dir / 'checkpoints'} holds {len(earlier)} checkpoint(s) of an earlier run: "
                              "continue it with --resume, pick another train.name, or pass --overwrite to replace them")


def set_aside_earlier_run(run_dir: Path) -> None:
    """--overwrite, once everything the new run needs has been checked: the earlier checkpoints move
    to ``RUN/.checkpoints.replaced`` until the new run has written its first one."""
    folder = run_dir / "checkpoints"
    if not is_main_process() or not checkpoints_in(folder):
        return
    aside = run_dir / REPLACED
    if aside.exists():  # left by a replacement that never finished: the older run is the one to keep
        shutil.rmtree(folder)
    else:
        folder.rename(aside)
    log.warning("--overwrite: the earlier run's checkpoints are set aside in %s and deleted once this run has "
                "written its first checkpoint", aside)


def restore_interrupted_overwrite(run_dir: Path) -> None:
    """A replacing run killed before its first checkpoint (kill -9, a lost node) left the earlier
    run's checkpoints set aside: they are put back before anything else, so that a plain run is
    refused as for any earlier run, --resume continues it, and --overwrite sets them aside again."""
    restore_if_nothing_new(run_dir, "an interrupted --overwrite had set aside the earlier run's checkpoints; "
                                    "they are back in %s")


def restore_if_nothing_new(run_dir: Path, message: str = "the run ended before its first checkpoint: the earlier "
                                                          "run's checkpoints are back in %s") -> None:
    """A replacing run that ended before its first checkpoint gives the earlier run's back."""
    aside, folder = run_dir / REPLACED, run_dir / "checkpoints"
    if is_main_process() and aside.is_dir() and not checkpoints_in(folder):
        if folder.exists():
            shutil.rmtree(folder)
        aside.rename(folder)
        log.warning(message, folder)


class ReplacedCheckpoints(L.Callback):
    """Deletes an earlier run's set-aside checkpoints once this run has one of its own."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir

    def _sweep(self) -> None:
        aside = self.run_dir / REPLACED
        if is_main_process() and aside.is_dir() and checkpoints_in(self.run_dir / "checkpoints"):
            shutil.rmtree(aside, ignore_errors=True)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._sweep()

    def on_fit_end(self, trainer, pl_module) -> None:
        self._sweep()
