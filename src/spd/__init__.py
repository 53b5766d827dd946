"""SPD: multi-task human parsing (segmentation, pose, DensePose) on one shared backbone.

The Python API (the command line is a thin layer over it)::

    spd.load_config(path, overrides) -> (ExperimentConfig, resolved dict)
    spd.train(config, ...)           -> TrainResult            (spd train)
    spd.evaluate_model(model, reader, protocol, ...)           (spd evaluate)
    spd.load_checkpoint(path)        -> LoadedModel            (any SPD model file)
    spd.Predictor.from_checkpoint(path)(images) -> Prediction  (spd predict)
    spd.DensePosePredictor.from_zoo(path)(images) -> Prediction (spd predict FILE.pkl: DensePose R-CNN)
    spd.run_demo(out)                                          (spd demo)
"""

__version__ = "0.1.0"

# Lazy, so that `import spd` (and the command line's start-up) does not import torch.
_API = {"Predictor": "spd.predict", "DensePosePredictor": "spd.predict", "Prediction": "spd.inference", "train": "spd.training",
        "load_config": "spd.config", "evaluate_model": "spd.evaluation", "load_checkpoint": "spd.weights",
        "run_demo": "spd.demo"}


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'spd' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
