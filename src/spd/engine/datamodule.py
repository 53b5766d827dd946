"""Lightning data module: readers from the config, the joint augmentation for training, original
resolution samples for validation, loaders that keep a GPU fed."""

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
from ..data.sampling import EpochSampler, ResumableBatchSampler
from ..data.synthetic import MANIFEST, SynthSpec, generate
from ..data.transforms import train_transform
from ..model import preset

log = logging.getLogger(__name__)


def first_item(batch: list) -> dict:
    return batch[0]


def ensure_data(config: ExperimentConfig) -> Path:
    """The dataset folder; generated first when the config says it is synthetic and it is absent."""
    root = Path(config.data.root)
    synth = config.data.synthetic
    if synth is not None:
        # Reuses data of the same spec; refuses (DataError) a folder holding anything else.
        if not (root / MANIFEST).is_file():
            log.info("generating the synthetic dataset (domain %s, %d images) in %s", synth.domain, synth.num, root)
        generate(root, SynthSpec(num=synth.num, domain=synth.domain, seed=synth.seed, size=synth.size,
                                 val_fraction=synth.val_fraction))
    return root


class SPDDataModule(L.LightningDataModule):
    def __init__(self, config: ExperimentConfig):
        super().__init__()
        self.config = config
        # Heatmap targets live on the model's output grid; the stride does not depend on the labels.
        self.codec = HeatmapCodec(stride=preset(config.model.preset, **config.model.overrides()).output_stride)
        self.train_reader: ParsingReader | None = None
        self.val_reader: ParsingReader | None = None
        self.skip_batches = 0  # batches of the epoch a mid-epoch checkpoint had already trained on

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

    def _loader(self, dataset, **kwargs) -> torch.utils.data.DataLoader:
        d = self.config.data
        return torch.utils.data.DataLoader(
            dataset, num_workers=d.num_workers, pin_memory=d.pin_memory and torch.cuda.is_available(),
            persistent_workers=d.persistent_workers and d.num_workers > 0, **kwargs)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        reader, _ = self.readers()
        transform = train_transform(self.config.augment, reader.label_space)
        dataset = ParsingDataset(reader, transform, self.codec, self.config.data.skip_corrupt, self.config.train.seed,
                                 dense_heatmaps=self.config.augment.recipe == "jppnet")
        sampler = EpochSampler(len(dataset), self.config.train.seed)
        batches = ResumableBatchSampler(sampler, self.config.data.batch_size, drop_last=True, skip=self.skip_batches)
        return self._loader(dataset, batch_sampler=batches)

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        _, reader = self.readers()
        dataset = ParsingDataset(reader, None, self.codec, self.config.data.skip_corrupt)
        return self._loader(dataset, batch_size=1, collate_fn=first_item)
