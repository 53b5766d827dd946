"""Experiment configuration: typed dataclasses loaded from YAML."""

from .load import ConfigError, from_dict, load_config, to_dict
from .schema import DataConfig, EvalConfig, ExperimentConfig, ModelSection, OptimConfig, SynthConfig, TrainConfig

__all__ = ["ConfigError", "DataConfig", "EvalConfig", "ExperimentConfig", "ModelSection", "OptimConfig", "SynthConfig",
           "TrainConfig", "from_dict", "load_config", "to_dict"]
