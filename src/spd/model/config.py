"""One configurable model: which tasks exist, which branch feeds which refinement, how many
refinement stages, input scales, backbone, output stride, head width. Named presets make JPPNet,
S, SP, SD and SPD the same code with different settings."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

TASKS = ("parsing", "pose", "densepose")
FAMILIES = ("dilated", "fpn")
NUM_DP_PARTS = 24  # DensePose body parts; the part-index head has one more class, background


@dataclass(frozen=True)
class ModelConfig:
    name: str = "spd"
    tasks: tuple[str, ...] = TASKS
    # For each task, the other tasks whose previous-stage outputs its refinement takes (1x1 remaps),
    # in concatenation order after the task's own previous output.
    feeds: dict[str, tuple[str, ...]] = field(default_factory=lambda: {
        "parsing": ("pose", "densepose"), "pose": ("parsing", "densepose"), "densepose": ("parsing", "pose")})
    refine_stages: int = 2
    # "dilated": JPPNet's graph (a dilated ResNet of ``depth``, heads on res4 / res5 at
    # ``output_stride``). "fpn": the CPU family (encoder ``backbone``, a top-down decoder of
    # ``decoder_width`` channels to the encoder's finest stride, compact heads of ``head_width``).
    family: str = "dilated"
    depth: int = 101               # ResNet depth: 18, 34, 50 or 101 (dilated family)
    # Dilated family: "caffe" is the official JPPNet graph (DeepLab-v2 ResNet, TensorFlow padding
    # and resizes); "torchvision" is torchvision's ResNet v1.5, which its ImageNet files fit.
    layout: str = "caffe"
    output_stride: int = 8         # input pixels per output cell
    backbone: str = "resnet18"     # a name of spd.model.encoders.ENCODERS (fpn family)
    decoder_width: int = 64
    head_width: int = 64
    # fpn family: 3x3 convs in each initial branch, and the kernel (1 or 3) of the refinement's
    # first conv, which fuses the remapped outputs with the task's feature.
    branch_convs: int = 2
    refine_fuse: int = 3
    frozen_bn: bool = True
    scales: tuple[float, ...] = (1.0, 0.75, 0.5)  # the whole network runs at each; outputs are fused
    width: float = 1.0             # head channel multiplier (1.0 = JPPNet's widths)
    # Head convs have no batch norm. JPPNet draws their weights from a normal of std 0.01
    # truncated at 2 std (Glorot uniform for fc1_human and the parsing feature convs, which have
    # no initialiser in its code), which suits fine-tuning from ImageNet; from scratch the signal
    # fades through the ~10 convs of a pose or refinement branch, and "kaiming" (He, fan-in) keeps
    # its scale.
    head_init: str = "jppnet"      # "jppnet" or "kaiming"
    parsing_space: str = "lip"     # label space of the parsing head: "lip" (20 classes) or "atr" (18)
    num_joints: int = 16

    def __post_init__(self) -> None:
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown or not self.tasks:
            raise ValueError(f"model tasks {list(self.tasks)}: each must be one of {TASKS}")
        for task, sources in self.feeds.items():
            if task in self.tasks:
                bad = [s for s in sources if s not in self.tasks or s == task]
                if bad:
                    raise ValueError(f"model feeds[{task!r}] names {bad}, which are not other tasks of this model")
        if self.refine_stages < 0:
            raise ValueError(f"refine_stages must be >= 0, got {self.refine_stages}")
        if self.head_init not in ("jppnet", "kaiming"):
            raise ValueError(f"head_init must be 'jppnet' or 'kaiming', got {self.head_init!r}")
        if self.parsing_space not in ("lip", "atr"):
            raise ValueError(f"parsing_space must be 'lip' or 'atr', got {self.parsing_space!r}")
        from .backbone import LAYOUTS

        if self.layout not in LAYOUTS:
            raise ValueError(f"model layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.branch_convs < 1 or self.refine_fuse not in (1, 3):
            raise ValueError(f"branch_convs must be >= 1 and refine_fuse 1 or 3, got {self.branch_convs}, "
                             f"{self.refine_fuse}")
        if self.family not in FAMILIES:
            raise ValueError(f"model family must be one of {FAMILIES}, got {self.family!r}")
        if self.family == "fpn":
            from .encoders import ENCODERS

            if self.backbone not in ENCODERS:
                raise ValueError(f"unknown model backbone {self.backbone!r}; known: {', '.join(ENCODERS)}")
            finest = ENCODERS[self.backbone].strides[0]
            if self.output_stride != finest:
                raise ValueError(f"the fpn family predicts at its encoder's finest stride ({finest} for "
                                 f"{self.backbone}), got output_stride {self.output_stride}")
            if min(self.decoder_width, self.head_width) < 8:
                raise ValueError(f"decoder_width and head_width must be >= 8, got {self.decoder_width}, {self.head_width}")
        if not self.scales or self.scales[0] != 1.0:
            raise ValueError(f"scales must start with 1.0 (the fused output's size), got {self.scales}")

    @property
    def num_parsing_classes(self) -> int:
        from ..labels import label_space

        return label_space(self.parsing_space).num_classes

    def feeders(self, task: str) -> tuple[str, ...]:
        return tuple(self.feeds.get(task, ()))


_PAIR = {"parsing": ("pose",), "pose": ("parsing",)}
PRESETS: dict[str, ModelConfig] = {
    # The JPPNet graph as its official code builds it: parsing and pose refine each other.
    "jppnet": ModelConfig(name="jppnet", tasks=("parsing", "pose"), feeds=_PAIR),
    # The SPD paper's ablations: segmentation only, + pose, + dense pose, all three.
    "s": ModelConfig(name="s", tasks=("parsing",), feeds={}),
    "sp": ModelConfig(name="sp", tasks=("parsing", "pose"), feeds=_PAIR),
    "sd": ModelConfig(name="sd", tasks=("parsing", "densepose"),
                      feeds={"parsing": ("densepose",), "densepose": ("parsing",)}),
    "spd": ModelConfig(name="spd"),
}
# A CPU-sized SPD: ResNet-18, quarter-width heads, one refinement stage, one scale. It is meant to
# train from scratch, so its batch-norm statistics update (frozen statistics suit pretrained weights)
# and its heads start from He initialisation.
PRESETS["light"] = replace(PRESETS["spd"], name="light", depth=18, width=0.25, refine_stages=1, scales=(1.0,),
                           frozen_bn=False, head_init="kaiming")
# The CPU family: ResNet-18 with a top-down decoder to stride 4 and compact branches (batch norm,
# He initialisation), trained from scratch. The same four variants as the full-size presets. One
# 3x3 conv per initial branch and a 1x1 fusing conv in the refinement cost cpu_spd 28% fewer
# FLOPs than two and a 3x3, at the same mIoU after 300 CPU s (8.9 against 9.0).
for _name in ("s", "sp", "sd", "spd"):
    PRESETS[f"cpu_{_name}"] = replace(PRESETS[_name], name=f"cpu_{_name}", family="fpn", output_stride=4,
                                      refine_stages=1, scales=(1.0,), frozen_bn=False, head_init="kaiming",
                                      branch_convs=1, refine_fuse=1)


def preset(name: str, **overrides) -> ModelConfig:
    if name not in PRESETS:
        raise KeyError(f"unknown model preset {name!r}; known: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)
