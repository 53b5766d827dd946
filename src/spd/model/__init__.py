"""Models: a trunk that declares its feature maps, task branches with refinement, assembled from a
ModelConfig (see docs/architecture.md)."""

from .config import PRESETS, TASKS, DilatedConfig, FPNConfig, ModelConfig, SCHPConfig, model_config, preset
from .normalisation import CAFFE_BGR, InputNormalisation
from .outputs import ModelOutput, StageOutput, fuse_stages
from .spd_net import SPDNet, task_channels
from .trunk import FeatureInfo, Trunk

__all__ = ["CAFFE_BGR", "DilatedConfig", "FPNConfig", "FeatureInfo", "InputNormalisation", "ModelConfig", "ModelOutput",
           "PRESETS", "SCHPConfig", "SPDNet", "StageOutput", "TASKS", "Trunk", "fuse_stages", "model_config", "preset", "task_channels"]
