"""The experiment configuration: typed sections validated from YAML (configs/*.yaml). The model
section is the model's own :class:`~spd.model.ModelConfig` (a preset and overrides, resolved at load)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..data.synthetic import SynthSpec
from ..data.transforms import AugmentConfig
from ..inference.settings import EvalConfig
from ..losses import LossConfig
from ..model.config import PRESETS, ModelConfig
from ..ops.errors import InputError
from ..ops.validation import require, require_choice


@dataclass(frozen=True)
class DataConfig:
    RETIRED = {"pin_memory": "batches are pinned whenever CUDA is used",
               "persistent_workers": "workers persist across epochs whenever there are any"}
    root: str = "runs/data/synthetic_A"
    train_split: str = "train"
    val_split: str = "val"
    densepose: str | None = None        # folder of IUV PNGs (found by itself for synthetic data)
    synthetic: SynthSpec | None = None   # generate the data when data.root holds none yet
    batch_size: int = 8
    num_workers: int = 2
    skip_corrupt: bool = False
    # Scarce parsing labels: the fraction of the training images whose parsing labels are used (a
    # fixed random subset, the same for every train.seed); the others train pose and DensePose only.
    parsing_fraction: float = 1.0

    def __post_init__(self) -> None:
        require("data", [("batch_size", self.batch_size, self.batch_size >= 1, ">= 1"),
                         ("parsing_fraction", self.parsing_fraction, 0 < self.parsing_fraction <= 1, "in (0, 1]"),
                         ("num_workers", self.num_workers, self.num_workers >= 0, ">= 0 (0: load in the main process)")])


@dataclass(frozen=True)
class OptimConfig:
    name: str = "sgd"                   # "sgd" (JPPNet: momentum 0.9, poly) or "adamw"
    lr: float = 1e-4
    momentum: float = 0.9
    weight_decay: float = 0.0
    poly_power: float = 0.9             # lr * (1 - step / max_steps) ** power
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.name not in ("sgd", "adamw"):
            raise InputError(f"optim.name must be 'sgd' or 'adamw', got {self.name!r}")
        require("optim", [("lr", self.lr, self.lr > 0, "> 0"),
                          ("weight_decay", self.weight_decay, self.weight_decay >= 0, ">= 0"),
                          ("momentum", self.momentum, 0 <= self.momentum < 1, "in [0, 1)"),
                          ("poly_power", self.poly_power, self.poly_power >= 0, ">= 0"),
                          ("warmup_steps", self.warmup_steps, self.warmup_steps >= 0, ">= 0")])


# "auto": bf16-mixed (and channels-last) where a training step is faster so on this machine
# (spd.training.auto_precision), else 32-true; the run's saved config holds the answer.
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "64-true", "auto")
# bf16-true keeps the weights themselves in bfloat16, whose 8-bit mantissa rounds away any update
# below ~0.4% of a weight: 5 steps of the LIP recipe (SGD, lr 1e-4) changed 1.5% of a model's
# weights in bf16-true against 87% in float32 (docs/training.md).
BF16_TRUE = ("train.precision bf16-true keeps the weights in bfloat16, which rounds away SGD updates smaller than "
             "~0.4% of a weight (most of the recipes' updates): use bf16-mixed (bfloat16 compute, float32 weights; "
             "the paper configs' setting) or 32-true")


@dataclass(frozen=True)
class TrainConfig:
    max_epochs: int = 35
    max_steps: int = -1
    precision: str = "32-true"          # "bf16-mixed" on GPU; "auto": measured per machine
    accumulate_grad_batches: int = 1
    devices: int | str = 1              # processes per node: a count, or "auto" (every visible GPU)
    num_nodes: int = 1
    strategy: str = "auto"
    seed: int = 0
    out_dir: str = "runs"
    name: str | None = None             # run folder name; default: the config file's stem
    val_every_n_epochs: int = 1
    checkpoint_every_n_steps: int = 0   # 0: at the end of every epoch only
    # A full SPD checkpoint (weights + SGD momentum) is about 1 GB: keep the k newest besides
    # last.ckpt; -1 keeps every one, 0 only last.ckpt.
    keep_checkpoints: int = 3
    log_every_n_steps: int = 10
    # Deterministic algorithms where they exist: on CUDA some do not (2-D cross-entropy, bilinear
    # backward), and those warn once instead of stopping the run.
    deterministic: bool = False
    # Speed on GPUs (tested to compute the same function; each is a measured choice, docs/training.md):
    sync_batchnorm: bool = False        # batch-norm statistics over every process's batch (layers that train them)
    channels_last: bool = False         # NHWC memory format (faster convolutions with bf16 on recent GPUs)
    compile: bool = False               # torch.compile the network
    tf32: bool = True                   # TensorFloat-32 matrix products and convolutions on CUDA for the fp32 parts

    def __post_init__(self) -> None:
        if self.precision == "bf16-true":
            raise InputError(BF16_TRUE)
        require_choice("train.precision", self.precision, PRECISIONS)
        devices_ok = self.devices == "auto" if isinstance(self.devices, str) else self.devices >= 1
        require("train", [
            ("max_epochs", self.max_epochs, self.max_epochs >= 1 or (self.max_epochs == -1 and self.max_steps >= 1),
             ">= 1 (or -1 with max_steps set)"),
            ("max_steps", self.max_steps, self.max_steps == -1 or self.max_steps >= 1, ">= 1, or -1 (no limit)"),
            ("accumulate_grad_batches", self.accumulate_grad_batches, self.accumulate_grad_batches >= 1, ">= 1"),
            ("devices", self.devices, devices_ok, "a count >= 1 or 'auto'"),
            ("num_nodes", self.num_nodes, self.num_nodes >= 1, ">= 1"),
            ("val_every_n_epochs", self.val_every_n_epochs, self.val_every_n_epochs >= 1, ">= 1"),
            ("checkpoint_every_n_steps", self.checkpoint_every_n_steps, self.checkpoint_every_n_steps >= 0,
             ">= 0 (0: at the end of every epoch only)"),
            ("keep_checkpoints", self.keep_checkpoints, self.keep_checkpoints >= -1, "-1 (all), 0 or a count"),
            ("log_every_n_steps", self.log_every_n_steps, self.log_every_n_steps >= 1, ">= 1")])


@dataclass(frozen=True)
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=lambda: PRESETS["spd"])
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        if self.model.family == "schp":
            raise InputError(f"model {self.model.name!r}: the schp family serves SCHP's published weights (spd convert "
                             "schp) for predict, evaluate, serve and export; spd does not train it (SCHP trains with "
                             "in-place ABN's batch statistics, an edge loss and self-correction, none of which spd "
                             "implements)")
