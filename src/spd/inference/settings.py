"""The test-time protocol: the ``eval`` section of an experiment config, recorded with every model
and the default of the Predictor, ``spd evaluate``, ``spd predict``, ``spd serve`` and export."""

from __future__ import annotations

from dataclasses import dataclass

from ..model.outputs import STAGE_CHOICES
from ..ops.errors import InputError
from ..ops.validation import require_choice

# "affine": SCHP's crop (the aspect ratio kept, the image's first and last pixel centres on the
# canvas's, black around), always with interpolation "align_corners".
RESIZE_POLICIES = ("squash", "letterbox", "affine")
# "jppnet": the official evaluation (heatmaps nearest-resized to the original size, integer argmax).
POSE_DECODERS = ("subpixel", "argmax", "jppnet")
# "align_corners": SCHP's (pixel centres at integer coordinates; outputs upsampled to the canvas,
# then warped back to the photo), with resize "affine" only.
INTERPOLATIONS = ("half_pixel", "tf_legacy", "align_corners")
MAX_INPUT_PIXELS = 4096 * 4096  # per scale: beyond this the network's activations exceed any memory


@dataclass(frozen=True)
class EvalConfig:
    input_size: tuple[int, int] = (384, 384)  # each image is resized to this (x each scale) before the network
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    stages: str = "all"                 # "all": mean of every stage's logits (JPPNet); "final"
    resize: str = "squash"              # "squash" to input_size (JPPNet), "letterbox" (keeps the aspect ratio), "affine" (SCHP)
    pose_decoder: str = "subpixel"      # bilinear heatmaps, argmax refined by a parabola fit; "argmax"; "jppnet"
    # Resizes of the image to the network and of its outputs back: "half_pixel" (F.interpolate,
    # align_corners=False), "tf_legacy" (TF1's resize_images, as JPPNet's evaluation) or
    # "align_corners" (SCHP's, with resize "affine").
    interpolation: str = "half_pixel"

    def __post_init__(self) -> None:
        choices = {"stages": STAGE_CHOICES, "resize": RESIZE_POLICIES, "pose_decoder": POSE_DECODERS,
                   "interpolation": INTERPOLATIONS}
        for key, allowed in choices.items():
            require_choice(f"eval.{key}", getattr(self, key), allowed)
        if (self.resize == "affine") != (self.interpolation == "align_corners"):
            raise InputError(f"eval.resize {self.resize!r} with eval.interpolation {self.interpolation!r}: SCHP's "
                             "affine crop and its align_corners resampling go together (resize: affine, "
                             "interpolation: align_corners), and neither with another")
        if self.resize == "affine" and self.pose_decoder == "jppnet":
            raise InputError("eval.pose_decoder 'jppnet' reads JPPNet's legacy resizes, which resize 'affine' has not")
        if len(self.input_size) != 2 or min(self.input_size) < 8:
            raise InputError(f"eval.input_size must be [H, W], each at least 8 px, got {list(self.input_size)}")
        if not self.scales or not all(0 < s < float("inf") for s in self.scales):
            raise InputError(f"eval.scales must be positive numbers, got {list(self.scales)}")
        largest = self.input_size[0] * self.input_size[1] * max(self.scales) ** 2
        if largest > MAX_INPUT_PIXELS:
            raise InputError(f"eval.input_size {list(self.input_size)} at scale {max(self.scales)} is "
                             f"{largest / 1e6:.0f} megapixels per image, more than the {MAX_INPUT_PIXELS / 1e6:.0f} "
                             "that fit any device's memory; images of any size are resized to the input size")
