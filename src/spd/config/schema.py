"""The experiment configuration: typed sections validated from YAML (configs/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..data.transforms import AugmentConfig
from ..validation import require
from ..losses import LossConfig


@dataclass(frozen=True)
class SynthConfig:
    """Generate the data when ``data.root`` holds none yet (the embedded default)."""

    domain: str = "A"
    num: int = 600
    size: int = 160
    seed: int = 0
    val_fraction: float = 0.15


@dataclass(frozen=True)
class DataConfig:
    root: str = "runs/data/synthetic_A"
    train_split: str = "train"
    val_split: str = "val"
    densepose: str | None = None        # folder of IUV PNGs (found by itself for synthetic data)
    synthetic: SynthConfig | None = None
    batch_size: int = 8
    num_workers: int = 2
    pin_memory: bool = True
    persistent_workers: bool = True
    skip_corrupt: bool = False
    # Scarce parsing labels: the fraction of the training images whose parsing labels are used (a
    # fixed random subset, the same for every train.seed); the others train pose and DensePose only.
    parsing_fraction: float = 1.0

    def __post_init__(self) -> None:
        require("data", [("batch_size", self.batch_size, self.batch_size >= 1, ">= 1"),
                         ("parsing_fraction", self.parsing_fraction, 0 < self.parsing_fraction <= 1, "in (0, 1]"),
                         ("num_workers", self.num_workers, self.num_workers >= 0, ">= 0 (0: load in the main process)")])


@dataclass(frozen=True)
class ModelSection:
    preset: str = "spd"
    family: str | None = None             # "dilated" (full size) or "fpn" (the CPU family)
    backbone: str | None = None           # fpn family encoder, e.g. "resnet18"
    decoder_width: int | None = None
    head_width: int | None = None
    branch_convs: int | None = None       # fpn family: 3x3 convs per initial branch
    refine_fuse: int | None = None        # fpn family: kernel (1 or 3) of each refinement's first conv
    depth: int | None = None
    layout: str | None = None             # dilated family: "caffe" (official JPPNet graph) or "torchvision"
    output_stride: int | None = None
    width: float | None = None
    refine_stages: int | None = None
    scales: tuple[float, ...] | None = None
    frozen_bn: bool | None = None
    head_init: str | None = None          # "jppnet" (N(0, 0.01)) or "kaiming" (for training from scratch)
    backbone_weights: str | None = None  # None, "imagenet" or a state-dict path

    def __post_init__(self) -> None:
        from ..model.config import preset  # every model setting is checked when the config loads

        try:
            preset(self.preset, **self.overrides())
        except KeyError as err:
            raise ValueError(err.args[0]) from None

    def overrides(self) -> dict:
        keys = ("family", "backbone", "decoder_width", "head_width", "branch_convs", "refine_fuse", "depth", "layout",
                "output_stride", "width", "refine_stages", "scales", "frozen_bn", "head_init")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


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
            raise ValueError(f"optim.name must be 'sgd' or 'adamw', got {self.name!r}")
        require("optim", [("lr", self.lr, self.lr > 0, "> 0"),
                          ("weight_decay", self.weight_decay, self.weight_decay >= 0, ">= 0"),
                          ("momentum", self.momentum, 0 <= self.momentum < 1, "in [0, 1)"),
                          ("poly_power", self.poly_power, self.poly_power >= 0, ">= 0"),
                          ("warmup_steps", self.warmup_steps, self.warmup_steps >= 0, ">= 0")])


@dataclass(frozen=True)
class TrainConfig:
    max_epochs: int = 35
    max_steps: int = -1
    precision: str = "32-true"          # "bf16-mixed" on GPU
    accumulate_grad_batches: int = 1
    devices: int | str = "auto"          # a count, or "auto"
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
    deterministic: bool = False

    def __post_init__(self) -> None:
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


RESIZE_POLICIES = ("squash", "letterbox")
# "jppnet": the official evaluation (heatmaps nearest-resized to the original size, integer argmax).
POSE_DECODERS = ("subpixel", "argmax", "jppnet")
INTERPOLATIONS = ("half_pixel", "tf_legacy")


@dataclass(frozen=True)
class EvalConfig:
    input_size: tuple[int, int] = (384, 384)  # each image is resized to this (x each scale) before the network
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    stages: str = "all"                 # "all": mean of every stage's logits (JPPNet); "final"
    resize: str = "squash"              # "squash" to input_size (JPPNet) or "letterbox" (keeps the aspect ratio)
    pose_decoder: str = "subpixel"      # bilinear heatmaps, argmax refined by a parabola fit; "argmax"; "jppnet"
    # Resizes of the image to the network and of its outputs back: "half_pixel" (F.interpolate,
    # align_corners=False) or "tf_legacy" (TF1's resize_images, as JPPNet's evaluation).
    interpolation: str = "half_pixel"

    def __post_init__(self) -> None:
        choices = {"stages": ("all", "final"), "resize": RESIZE_POLICIES, "pose_decoder": POSE_DECODERS,
                   "interpolation": INTERPOLATIONS}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"eval.{key} must be one of {', '.join(allowed)}, got {getattr(self, key)!r}")
        if min(self.input_size) < 8 or not self.scales or min(self.scales) <= 0:
            raise ValueError(f"eval.input_size must be at least 8 px and eval.scales positive, got "
                             f"{list(self.input_size)} and {list(self.scales)}")


@dataclass(frozen=True)
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelSection = field(default_factory=ModelSection)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
