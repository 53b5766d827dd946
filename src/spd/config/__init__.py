"""Experiment configuration: typed dataclasses loaded from YAML, resolved once."""

from ..ops.renamed import module_getattr
from .load import ConfigError, from_dict, load_config, to_dict
from .schema import DataConfig, ExperimentConfig, OptimConfig, TrainConfig

__all__ = ["ConfigError", "DataConfig", "ExperimentConfig", "OptimConfig", "TrainConfig", "from_dict",
           "load_config", "to_dict"]

__getattr__ = module_getattr("spd.config", {
    "SynthConfig": "spd.data.synthetic.SynthSpec (one spec for `data.synthetic` and `spd data synth`)"})
