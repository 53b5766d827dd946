"""SPD: multi-task human parsing (segmentation, pose, DensePose) on one shared backbone."""

__version__ = "0.1.0"
