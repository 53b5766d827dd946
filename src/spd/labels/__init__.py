"""Label spaces and cross-dataset mappings, defined once as data (the YAML files here)."""

from .mapping import LabelMapping, MappingGroup, load_mapping
from .spaces import IGNORE_INDEX, LABEL_SPACES, PARSING_SPACES, KeypointSpace, LabelSpace, keypoint_space, label_space

__all__ = ["IGNORE_INDEX", "LABEL_SPACES", "PARSING_SPACES", "KeypointSpace", "LabelMapping", "LabelSpace", "MappingGroup",
           "keypoint_space", "label_space", "load_mapping"]
