"""Data layer: readers for LIP / ATR / DensePose IUV, joint augmentation, targets, synthetic data."""

from .atr import read_atr, write_split
from .errors import DataError, Problem
from .lip import read_lip
from .reader import ParsingReader
from .sample import Record, Sample

__all__ = ["DataError", "ParsingReader", "Problem", "Record", "Sample", "read_atr", "read_lip", "write_split"]
