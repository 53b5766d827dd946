"""DensePose R-CNN (chart-based IUV models of the DensePose model zoo) in PyTorch and torchvision
ops, without detectron2: the network, its inference as detectron2 runs it, and the zoo files."""

from .detector import ChartResult, DensePoseRCNN, Detections, DetectorConfig
from .weights import load_detector, read_zoo_file

__all__ = ["ChartResult", "DensePoseRCNN", "Detections", "DetectorConfig", "load_detector", "read_zoo_file"]
