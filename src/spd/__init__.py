"""SPD: multi-task human parsing (segmentation, pose, DensePose) on one shared backbone."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy, so that `import spd` (and the command line's start-up) does not import torch.
    if name in ("Predictor", "Prediction"):
        from . import predict
        return getattr(predict, name)
    raise AttributeError(f"module 'spd' has no attribute {name!r}")
