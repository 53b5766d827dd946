"""Lightning data module: readers from the config, the joint augmentation for training, original
resolution samples for validation, loaders that keep a GPU fed."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch

from ..config.schema import ExperimentConfig
from ..data.dataset import EpochSampler, ParsingDataset
from ..data.detect import open_dataset
from ..data.heatmaps import HeatmapCodec
from ..data.reader import ParsingReader
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
    if synth is not None and not (root / MANIFEST).is_file():
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

    def prepare_data(self) -> None:
        ensure_data(self.config)

    def readers(self) -> tuple[ParsingReader, ParsingReader]:
        if self.train_reader is None:
            d = self.config.data
            root = ensure_data(self.config)
            self.train_reader = open_dataset(root, d.train_split, d.densepose)
            self.val_reader = open_dataset(root, d.val_split, d.densepose)
        return self.train_reader, self.val_reader

    def _loader(self, dataset, batch_size: int, sampler=None, collate_fn=None) -> torch.utils.data.DataLoader:
        d = self.config.data
        return torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, num_workers=d.num_workers, collate_fn=collate_fn,
            pin_memory=d.pin_memory and torch.cuda.is_available(),
            persistent_workers=d.persistent_workers and d.num_workers > 0, drop_last=sampler is not None)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        reader, _ = self.readers()
        transform = train_transform(self.config.augment, reader.label_space)
        dataset = ParsingDataset(reader, transform, self.codec, self.config.data.skip_corrupt, self.config.train.seed)
        return self._loader(dataset, self.config.data.batch_size, EpochSampler(len(dataset), self.config.train.seed))

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        _, reader = self.readers()
        dataset = ParsingDataset(reader, None, self.codec, self.config.data.skip_corrupt)
        return self._loader(dataset, 1, collate_fn=first_item)
