"""Experiment configuration: typed dataclasses loaded from YAML, resolved once."""

from .load import ConfigError, from_dict, load_config, to_dict
from .schema import DataConfig, ExperimentConfig, OptimConfig, SynthConfig, TrainConfig

__all__ = ["ConfigError", "DataConfig", "ExperimentConfig", "OptimConfig", "SynthConfig", "TrainConfig", "from_dict",
           "load_config", "to_dict"]
