"""Models: backbone, task branches and refinement, assembled from a ModelConfig."""

from .build import build_model
from .config import PRESETS, TASKS, ModelConfig, preset
from .outputs import ModelOutput, StageOutput
from .spd_net import CAFFE_BGR, InputNormalisation, SPDNet

__all__ = ["CAFFE_BGR", "InputNormalisation", "build_model", "ModelConfig", "ModelOutput", "PRESETS", "SPDNet", "StageOutput", "TASKS", "preset"]
