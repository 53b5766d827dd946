"""The model's configuration: which tasks exist, which branch feeds which refinement, how many
refinement stages, and one section for the model family, which sets the trunk and the heads'
design. Named presets make JPPNet, S, SP, SD and SPD (and the CPU family's four variants) the same
code with different settings; a YAML ``model:`` mapping names a preset and overrides its fields.

Three families:

* ``dilated``: JPPNet's graph. A dilated ResNet (output stride 8 by default) whose res4 and res5
  the heads read; JPPNet's heads (no batch norm, kernels up to 9x9).
* ``fpn``: the CPU family. A ResNet encoder and a light top-down decoder to stride 4, compact heads
  with batch norm, for training from scratch on a CPU.
* ``schp``: SCHP's network (deep-stem ResNet-101, pyramid pooling, edge module, decoder and
  fusion head; parsing only), for SCHP's published weights (``spd convert schp``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..labels import PARSING_SPACES, keypoint_space, label_space
from ..ops.errors import InputError, UnknownName
from ..ops.renamed import renamed
from ..tasks import NUM_DP_PARTS, task_names  # noqa: F401 (NUM_DP_PARTS: here too, where it was)
from ..tasks.registry import BUILT_IN
from .resnets import FPN_ENCODERS, RESNETS
from ..ops.typed import ConfigError, build, merge, to_dict
from ..ops.validation import require_choice

TASKS = BUILT_IN  # the default model's tasks; a model may have any registered task (spd.tasks)
LAYOUTS = ("caffe", "torchvision")
HEAD_INITS = ("jppnet", "kaiming")
OUTPUT_STRIDES = (8, 16, 32)
FAMILY_SECTIONS = ("dilated", "fpn", "schp")


@dataclass(frozen=True)
class DilatedConfig:
    """The dilated family (JPPNet's graph)."""

    depth: int = 101
    # "caffe": the official JPPNet graph (DeepLab-v2 ResNet, TensorFlow padding); "torchvision":
    # torchvision's ResNet v1.5, which its ImageNet files fit.
    layout: str = "caffe"
    output_stride: int = 8
    # Batch norm with its running statistics always (JPPNet fine-tunes from ImageNet); false to
    # learn them, as training from scratch needs.
    frozen_bn: bool = True
    width: float = 1.0          # head channel multiplier (1.0: JPPNet's widths)
    # JPPNet draws head weights from N(0, 0.01) truncated at 2 std, which suits fine-tuning; from
    # scratch the signal fades through a branch's ~10 convs, and "kaiming" (He, fan-in) keeps it.
    head_init: str = "jppnet"

    def __post_init__(self) -> None:
        require_choice("model.dilated.depth", self.depth, tuple(RESNETS))
        require_choice("model.dilated.layout", self.layout, LAYOUTS)
        require_choice("model.dilated.output_stride", self.output_stride, OUTPUT_STRIDES)
        require_choice("model.dilated.head_init", self.head_init, HEAD_INITS)
        if not self.width > 0:
            raise InputError(f"model.dilated.width must be > 0, got {self.width!r}")


@dataclass(frozen=True)
class FPNConfig:
    """The fpn family (the CPU family)."""

    encoder: str = "resnet18"
    decoder_width: int = 64     # channels of the decoder's stride-4 map, which every branch reads
    head_width: int = 64        # channels of each branch's feature

    def __post_init__(self) -> None:
        require_choice("model.fpn.encoder", self.encoder, tuple(FPN_ENCODERS))
        for key in ("decoder_width", "head_width"):
            if getattr(self, key) < 8:
                raise InputError(f"model.fpn.{key} must be >= 8, got {getattr(self, key)!r}")


@dataclass(frozen=True)
class SCHPConfig:
    """The schp family: SCHP's network as published (ResNet-101, its widths); nothing to choose.
    Its parsing head has the classes of ``model.parsing_space``."""


@dataclass(frozen=True)
class ModelConfig:
    name: str = "spd"
    tasks: tuple[str, ...] = TASKS
    # For each task, the other tasks whose previous-stage outputs its refinement takes (1x1 remaps),
    # in concatenation order after the task's own previous output.
    feeds: dict[str, tuple[str, ...]] = field(default_factory=lambda: {
        "parsing": ("pose", "densepose"), "pose": ("parsing", "densepose"), "densepose": ("parsing", "pose")})
    refine_stages: int = 2
    # The input pyramid of JPPNet's training graph: the network runs at each scale and each stage's
    # output is fused over them (test-time scales are eval.scales, a separate choice).
    train_scales: tuple[float, ...] = (1.0, 0.75, 0.5)
    parsing_space: str = "lip"  # label space of the parsing head: "lip" (20 classes) or "atr" (18)
    dilated: DilatedConfig | None = None
    fpn: FPNConfig | None = None
    schp: SCHPConfig | None = None
    # Initial weights, used when training starts (never when a model file is loaded):
    backbone_weights: str | None = None  # the encoder's: "imagenet", a state-dict file or a TF checkpoint prefix
    init_from: str | None = None         # another SPD model's file: parameters matched by name

    RETIRED = {"num_joints": "the pose head has one channel per joint of the keypoint space (16, LIP's)",
               "branch_convs": "the CPU family's initial branches have one 3x3 conv (two cost 28% more FLOPs "
                               "for the same mIoU)",
               "refine_fuse": "the CPU family's refinement fuses with a 1x1 conv (a 3x3 one cost more FLOPs "
                              "for the same mIoU)"}
    # Presets that are gone, and why (docs/changelog.md).
    RETIRED_PRESETS = {"light": "a ResNet-18 dilated SPD at output stride 16, superseded by the CPU family "
                                "(cpu_s ... cpu_spd, stride-4 outputs)"}
    RENAMED = {"scales": "train_scales", "family": "dilated or model.fpn (a section per family)",
               "backbone": "fpn.encoder", "decoder_width": "fpn.decoder_width", "head_width": "fpn.head_width",
               "depth": "dilated.depth", "layout": "dilated.layout", "output_stride": "dilated.output_stride",
               "width": "dilated.width", "frozen_bn": "dilated.frozen_bn", "head_init": "dilated.head_init"}

    def __post_init__(self) -> None:
        known = task_names()
        unknown = [t for t in self.tasks if t not in known]
        if unknown or not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise InputError(f"model.tasks {list(self.tasks)}: each must be one of {', '.join(known)}, once")
        for task, sources in self.feeds.items():
            if task in self.tasks:
                bad = [s for s in sources if s not in self.tasks or s == task]
                if bad:
                    raise InputError(f"model.feeds[{task!r}] names {bad}, which are not other tasks of this model")
        if self.refine_stages < 0:
            raise InputError(f"model.refine_stages must be >= 0, got {self.refine_stages}")
        require_choice("model.parsing_space", self.parsing_space, PARSING_SPACES)
        if not self.train_scales or self.train_scales[0] != 1.0 or min(self.train_scales) <= 0:
            raise InputError(f"model.train_scales must start with 1.0 (the fused output's size) and be positive, "
                             f"got {list(self.train_scales)}")
        given = [f for f in FAMILY_SECTIONS if getattr(self, f) is not None]
        if len(given) != 1:
            raise InputError(f"model: give exactly one family section, model.{', model.'.join(FAMILY_SECTIONS)} "
                             f"(got {', '.join(given) or 'none'}; to switch a preset's family, set the other "
                             "section to null)")
        if self.schp is not None and (self.tasks != ("parsing",) or self.refine_stages != 1):
            raise InputError(f"model: the schp family is SCHP's network, parsing with one refinement stage (its fusion "
                             f"head); got tasks {list(self.tasks)}, refine_stages {self.refine_stages}")

    @property
    def num_joints(self) -> int:
        """The pose head's channels: the LIP joints (the keypoint space, data)."""
        return keypoint_space().num_joints

    output_stride = renamed("output_stride", "SPDNet.output_stride (the stride its trunk declares for the maps "
                                            "the heads read)")

    @property
    def family(self) -> str:
        return next(f for f in FAMILY_SECTIONS if getattr(self, f) is not None)

    @property
    def num_parsing_classes(self) -> int:
        return label_space(self.parsing_space).num_classes

    def feeders(self, task: str) -> tuple[str, ...]:
        return tuple(self.feeds.get(task, ()))

    @classmethod
    def expand(cls, doc: dict, where: str = "model") -> dict:
        """A YAML model mapping -> the full field mapping: ``preset: NAME`` gives the starting values,
        the other keys override them (family sections key by key). Without a preset, a mapping that
        has a family section stands alone (a model file's record, a model written out in full);
        one without either starts from ``spd``."""
        name = doc.pop("preset", None)
        if name is None and any(f in doc for f in FAMILY_SECTIONS):
            return doc
        name = name or "spd"
        if name in cls.RETIRED_PRESETS:
            raise ConfigError(f"{where}.preset: the {name!r} preset no longer exists: {cls.RETIRED_PRESETS[name]} "
                              f"(docs/changelog.md); known: {', '.join(PRESETS)}")
        if name not in PRESETS:
            raise ConfigError(f"{where}.preset: unknown model preset {name!r}; known: {', '.join(PRESETS)}")
        return merge(to_dict(PRESETS[name]), doc)



def model_config(doc: dict | None = None, where: str = "model") -> ModelConfig:
    """A YAML-style model mapping (``{"preset": "cpu_s", "fpn": {"head_width": 32}}``) -> ModelConfig."""
    return build(ModelConfig, dict(doc or {}), where)


_PAIR = {"parsing": ("pose",), "pose": ("parsing",)}
_VARIANTS = {
    # The SPD paper's ablations: segmentation only, + pose, + dense pose, all three.
    "s": dict(tasks=("parsing",), feeds={}),
    "sp": dict(tasks=("parsing", "pose"), feeds=_PAIR),
    "sd": dict(tasks=("parsing", "densepose"), feeds={"parsing": ("densepose",), "densepose": ("parsing",)}),
    "spd": dict(),
}
ABLATION = tuple(_VARIANTS)  # the variant names, parsing alone first
PRESETS: dict[str, ModelConfig] = {
    # The JPPNet graph as its official code builds it: parsing and pose refine each other.
    "jppnet": ModelConfig(name="jppnet", dilated=DilatedConfig(), **_VARIANTS["sp"]),
    **{name: ModelConfig(name=name, dilated=DilatedConfig(), **v) for name, v in _VARIANTS.items()},
    # The CPU family: ResNet-18 with a top-down decoder to stride 4 and compact branches, one
    # refinement stage, one scale, trained from scratch.
    **{f"cpu_{name}": ModelConfig(name=f"cpu_{name}", refine_stages=1, train_scales=(1.0,), fpn=FPNConfig(), **v)
       for name, v in _VARIANTS.items()},
    # SCHP's network, for its published weights; spd convert schp sets the label space.
    **{f"schp_{space}": ModelConfig(name=f"schp_{space}", tasks=("parsing",), feeds={}, refine_stages=1,
                                    train_scales=(1.0,), parsing_space=space, schp=SCHPConfig())
       for space in PARSING_SPACES},
}


def preset(name: str, **overrides) -> ModelConfig:
    """A preset, with fields replaced (``dilated=...`` / ``fpn=...`` replace a whole section)."""
    if name not in PRESETS:
        raise UnknownName(f"unknown model preset {name!r}; known: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)
