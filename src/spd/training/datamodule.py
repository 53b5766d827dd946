"""Lightning data module: readers from the config, the joint augmentation for training, original
resolution samples for validation, loaders that keep a GPU fed, and the sample order split across
processes by this module itself (not by Lightning: see :class:`~spd.data.sampling.EpochSampler`)."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch

from ..config.schema import ExperimentConfig
from ..data.dataset import ParsingDataset
from ..data.detect import open_dataset
from ..data.heatmaps import HeatmapCodec
from ..data.reader import ParsingReader
from ..data.sampling import EpochSampler, ResumableBatchSampler, shard
from ..data.synthetic import MANIFEST, SynthSpec, generate
from ..data.transforms import train_transform
from ..ops.errors import InputError

log = logging.getLogger(__name__)


def ensure_data(config: ExperimentConfig) -> Path:
    """The dataset folder; generated first when the config says it is synthetic and it is absent.
    Safe in every process of a distributed run at once: generation is locked per folder, the
    others wait and then reuse it."""
    root = Path(config.data.root)
    synth = config.data.synthetic
    if synth is not None:
        # Reuses data of the same spec; refuses (DataError) a folder holding anything else.
        if not (root / MANIFEST).is_file():
            log.info("generating the synthetic dataset (domain %s, %d images) in %s", synth.domain, synth.num, root)
        generate(root, synth)
    return root


def per_process_batch(batch_size: int, world_size: int, accumulate: int) -> int:
    """``data.batch_size`` is the global batch (images per optimiser step); each process loads its
    share of it per forward pass."""
    parts = world_size * accumulate
    if batch_size % parts:
        raise InputError(f"data.batch_size {batch_size} (images per optimiser step) does not divide among {world_size} "
                         f"process(es) x {accumulate} accumulated batch(es); make it a multiple of {parts}")
    return batch_size // parts


def listed(batch: list) -> list:
    """Collate of validation: samples keep their own sizes, and their has_* flags become Python
    bools. The evaluator reads the flags per sample; as tensors, which Lightning and DDP move to the
    GPU with the rest, each read would be a host sync."""
    return [{k: bool(v) if k.startswith("has_") else v for k, v in item.items()} for item in batch]


class SPDDataModule(L.LightningDataModule):
    def __init__(self, config: ExperimentConfig, output_stride: int | None = None):
        """``output_stride``: the model's (``SPDNet.output_stride``, its trunk's declaration), where
        the heatmap targets are made; :func:`~spd.training.train` sets it once the model is built."""
        super().__init__()
        self.config = config
        self.output_stride = output_stride
        self.train_reader: ParsingReader | None = None
        self.val_reader: ParsingReader | None = None
        self.skip_batches = 0  # batches of the epoch a mid-epoch checkpoint had already trained on

    @property
    def codec(self) -> HeatmapCodec:
        """Heatmap targets on the model's output grid."""
        if self.output_stride is None:
            raise RuntimeError("SPDDataModule.output_stride is not set: give the model's (SPDNet.output_stride)")
        return HeatmapCodec(stride=self.output_stride)

    def state_dict(self) -> dict:
        # Lightning's own progress counts the batches whose step has run, whatever the loader has
        # prefetched; at an end-of-epoch checkpoint this is the whole epoch, so nothing is skipped.
        trainer = self.trainer
        if trainer is None or trainer.state.fn != "fit":
            return {}
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return {"batches_done": int(done % max(1, trainer.num_training_batches))}

    def load_state_dict(self, state: dict) -> None:
        # Lightning builds the training loader once per fit (before it restores the loops, so the
        # epoch is not known yet); the skip applies to its first pass, the checkpoint's epoch.
        self.skip_batches = int(state.get("batches_done", 0))

    def prepare_data(self) -> None:
        ensure_data(self.config)

    def readers(self) -> tuple[ParsingReader, ParsingReader]:
        if self.train_reader is None:
            d = self.config.data
            root = ensure_data(self.config)
            self.train_reader = open_dataset(root, d.train_split, d.densepose)
            if d.parsing_fraction < 1:
                self.train_reader = self.train_reader.keep_parsing(d.parsing_fraction)
            self.val_reader = open_dataset(root, d.val_split, d.densepose)
        return self.train_reader, self.val_reader

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def batch_per_process(self) -> int:
        trainer = self.trainer
        return per_process_batch(self.config.data.batch_size, self._rank()[1],
                                 trainer.accumulate_grad_batches if trainer is not None else 1)

    def _loader(self, dataset, **kwargs) -> torch.utils.data.DataLoader:
        workers = self.config.data.num_workers
        return torch.utils.data.DataLoader(dataset, num_workers=workers, pin_memory=torch.cuda.is_available(),
                                           persistent_workers=workers > 0, **kwargs)

    def train_dataset(self) -> ParsingDataset:
        """The training split, augmented and with its targets, as training loads it (the benchmarks
        time and train on this too)."""
        reader, _ = self.readers()
        transform = train_transform(self.config.augment, reader.label_space)
        return ParsingDataset(reader, transform, self.codec, self.config.data.skip_corrupt, self.config.train.seed,
                              dense_heatmaps=self.config.augment.recipe == "jppnet")

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        dataset = self.train_dataset()
        rank, world = self._rank()
        sampler = EpochSampler(len(dataset), self.config.train.seed, rank=rank, world_size=world)
        batches = ResumableBatchSampler(sampler, self.batch_per_process(), drop_last=True, skip=self.skip_batches)
        return self._loader(dataset, batch_sampler=batches)

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        _, reader = self.readers()
        rank, world = self._rank()
        dataset = ParsingDataset(reader, None, self.codec, self.config.data.skip_corrupt)
        subset = torch.utils.data.Subset(dataset, shard(len(dataset), rank, world))
        return self._loader(subset, batch_size=self.batch_per_process(), collate_fn=listed)
