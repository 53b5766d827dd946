"""Exporting a trained model: ONNX, TorchScript, safetensors (see :func:`export_model`)."""

from .formats import FORMATS, export_model, run_exported
from .wrapper import ExportWrapper

__all__ = ["ExportWrapper", "FORMATS", "export_model", "run_exported"]
