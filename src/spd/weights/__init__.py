"""SPD model files: training checkpoints (``.ckpt``, written by ``spd train``) and weights files
(``.safetensors``, written by ``spd export`` and ``spd convert``), read, written and checked in one
place, with one message style. Resume, the Predictor, evaluation, export, convert and
``model.init_from`` all go through here."""

from .files import WEIGHTS_FORMAT, LoadedModel, ModelFile, load_checkpoint, read_model_file, write_weights_file
from .init import InitReport, init_from_file
from .record import model_from_record, upgrade

__all__ = ["InitReport", "LoadedModel", "ModelFile", "WEIGHTS_FORMAT", "init_from_file", "load_checkpoint",
           "model_from_record", "read_model_file", "upgrade", "write_weights_file"]
