"""DensePose model-zoo files (``model_final_162be9.pkl`` ...): a pickle of ``{"model": {name: numpy
array}, ...}`` in detectron2's names. They are read with an unpickler that builds numpy arrays and
plain containers only: any other object in the file is refused, so no code from it runs. What the
file holds decides the network (ResNet depth, the DensePose decoder), and a file that is not a
chart-based DensePose R-CNN is refused, naming what it is.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import torch

from ..ops.state import WeightsError
from . import boxes as B
from .detector import DensePoseRCNN, DetectorConfig

# U, V confidence estimators of the "WC1" / "WC2" models: they change no label and no U, V.
_CONFIDENCE = re.compile(r"^roi_heads\.densepose_predictor\.(sigma_\d|kappa_[uv])_lowres\.")
# Segmentation confidences ("WC1M" / "WC2M") rescale the part logits per pixel, which moves the
# labels at the box's size: not computed here, so such files are refused.
_SEGM_CONFIDENCE = re.compile(r"^roi_heads\.densepose_predictor\.(fine|coarse)_segm_confidence_lowres\.")
_IGNORED = ("pixel_mean", "pixel_std")
# Older detectron2 saved the anchors with the weights; they must be the ones this code generates.
_ANCHORS = re.compile(r"^proposal_generator\.anchor_generator\.cell_anchors\.(\d)$")


class _NdarrayToken:
    """What the pickle gets for ``numpy.ndarray``: only :func:`_reconstruct` accepts it, so the
    file cannot call ``ndarray(shape, dtype, buffer)`` itself (an object array over the file's
    bytes would be a set of pointers that the next call dereferences)."""


class _CheckedArray(np.ndarray):
    """An array whose pickled state is checked before numpy reads it: numbers only."""

    def __setstate__(self, state):
        dtype = state[2] if isinstance(state, tuple) and len(state) >= 5 else None
        if not isinstance(dtype, np.dtype) or dtype.hasobject or dtype.kind not in "fiub":
            raise pickle.UnpicklingError("an array that is not of numbers")
        super().__setstate__(state)


def _reconstruct(cls, shape, typecode):
    if cls is not _NdarrayToken:
        raise pickle.UnpicklingError("numpy _reconstruct of something other than an array")
    return np.ndarray.__new__(_CheckedArray, shape, np.dtype(typecode))


def _dtype(*args):
    dt = np.dtype(*args)
    if dt.hasobject:
        raise pickle.UnpicklingError("an array of Python objects")
    return dt


def _scalar(dt, *args):
    if not isinstance(dt, np.dtype) or dt.hasobject:
        raise pickle.UnpicklingError("a numpy scalar of Python objects")
    return np.frombuffer(args[0], dtype=dt, count=1)[0] if args else dt.type()


# The globals a pickle of numeric numpy arrays needs (numpy 1's and 2's module names; protocol 2
# bytes), each bound to a guarded stand-in.
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"): _reconstruct, ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy", "ndarray"): _NdarrayToken, ("numpy", "dtype"): _dtype,
            ("numpy.core.multiarray", "scalar"): _scalar, ("numpy._core.multiarray", "scalar"): _scalar}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if (module, name) in (("_codecs", "encode"), ("collections", "OrderedDict")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name}")


def read_zoo_file(path: Path | str) -> dict[str, np.ndarray]:
    """The ``model`` dict of a detectron2 model-zoo ``.pkl``; WeightsError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: DensePose weights file not found")
    try:
        with open(path, "rb") as f:
            obj = _ArraysOnly(f, encoding="latin1").load()
    except pickle.UnpicklingError as err:
        what = str(err)
        if what in ("an array that is not of numbers", "an array of Python objects", "a numpy scalar of Python objects",
                    "numpy _reconstruct of something other than an array"):
            raise WeightsError(f"{path}: not a model-zoo file of numeric arrays: it holds {what}, which is not "
                               "loaded") from None
        if "." in what and " " not in what:
            raise WeightsError(f"{path}: not a model-zoo file of numpy arrays: it holds {what} objects, which are "
                               "not loaded (loading them could run code)") from None
        raise WeightsError(f"{path}: not a detectron2 model-zoo .pkl (not a pickle, or damaged: {what})") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, ImportError, MemoryError,
            OverflowError, RecursionError) as err:
        raise WeightsError(f"{path}: cannot read the model-zoo .pkl ({type(err).__name__}; truncated or damaged?)") from None
    model = obj.get("model") if isinstance(obj, dict) else None
    if not isinstance(model, dict) or not all(isinstance(v, np.ndarray) for v in model.values()):
        raise WeightsError(f"{path}: not a detectron2 model-zoo file: expected a dict with 'model' (names -> arrays)")
    model = {str(k): np.asarray(v).view(np.ndarray) for k, v in model.items()}
    odd = next((k for k, v in model.items() if v.dtype.kind not in "fiub"), None)
    if odd is not None:
        raise WeightsError(f"{path}: {odd!r} is an array of {model[odd].dtype}, not of numbers")
    return model


def detector_config(arrays: dict[str, np.ndarray], path: Path | str) -> DetectorConfig:
    """The network the arrays describe; refuses Mask R-CNN, CSE-embedding and other files."""
    names = set(arrays)
    if any(n.startswith("res2_") or n.startswith("conv1_w") for n in names):
        raise WeightsError(f"{path}: Detectron (Caffe2) variable names; a DensePose model of detectron2's model zoo "
                           "was expected")
    if any(n.startswith("roi_heads.embedder") or n.startswith("roi_heads.densepose_predictor.embed") for n in names):
        raise WeightsError(f"{path}: a DensePose CSE model (continuous surface embeddings); this reads chart-based "
                           "IUV models (e.g. densepose_rcnn_R_50_FPN_s1x, model_final_162be9.pkl)")
    segm = next((n for n in sorted(names) if _SEGM_CONFIDENCE.match(n)), None)
    if segm is not None:
        raise WeightsError(f"{path}: a model with segmentation confidences ({segm}: the zoo's WC1M / WC2M variants), "
                           "which rescale the part scores per pixel; this reads the chart models without them")
    if not any(n.startswith("roi_heads.densepose_predictor.index_uv_lowres") for n in names):
        kind = ("a Mask R-CNN model" if any(n.startswith("roi_heads.mask_head") for n in names) else
                "a keypoint R-CNN model" if any(n.startswith("roi_heads.keypoint_head") for n in names) else
                "not a DensePose model")
        raise WeightsError(f"{path}: {kind} (no roi_heads.densepose_predictor.index_uv_lowres); a chart-based "
                           "DensePose R-CNN (e.g. model_final_162be9.pkl, densepose_rcnn_R_50_FPN_s1x) was expected")
    blocks = 1 + max((int(m.group(1)) for n in names if (m := re.match(r"backbone\.bottom_up\.res4\.(\d+)\.", n))),
                     default=-1)
    depth = {6: 50, 23: 101}.get(blocks)
    if depth is None:
        raise WeightsError(f"{path}: a backbone with {blocks} res4 blocks; ResNet-50 (6) or -101 (23) was expected")
    return DetectorConfig(depth=depth, decoder=any(n.startswith("roi_heads.decoder.") for n in names))


def load_detector(path: Path | str, **overrides) -> DensePoseRCNN:
    """The DensePose R-CNN of a model-zoo file, in eval mode on the CPU. ``overrides``: fields of
    :class:`DetectorConfig` (the score threshold, say)."""
    arrays = read_zoo_file(path)
    config = detector_config(arrays, path)
    model = DensePoseRCNN(DetectorConfig(**{**config.__dict__, **overrides}))
    own = model.state_dict()
    for key in sorted(k for k in arrays if _ANCHORS.match(k)):
        level = int(_ANCHORS.match(key).group(1))
        expected = B.cell_anchors(B.ANCHOR_SIZES[level]).numpy() if level < len(B.ANCHOR_SIZES) else None
        if expected is None or arrays[key].shape != expected.shape or not np.allclose(arrays[key], expected, atol=1e-3):
            raise WeightsError(f"{path}: {key!r} holds other anchors than DensePose R-CNN's (sizes 32-512, aspect "
                               "ratios 0.5, 1, 2); this model was trained with another anchor generator")
    kept = {k: v for k, v in arrays.items() if not _CONFIDENCE.match(k) and k not in _IGNORED and not _ANCHORS.match(k)}
    missing = sorted(own.keys() - kept.keys())
    unknown = sorted(kept.keys() - own.keys())
    wrong = sorted(k for k in own.keys() & kept.keys() if tuple(kept[k].shape) != tuple(own[k].shape))
    if missing or unknown or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
        if unknown:
            parts.append(f"{len(unknown)} unknown ({', '.join(unknown[:3])}{', ...' if len(unknown) > 3 else ''})")
        if wrong:
            parts.append(f"{wrong[0]!r} has shape {tuple(kept[wrong[0]].shape)}, expected {tuple(own[wrong[0]].shape)}")
        raise WeightsError(f"{path}: not a DensePose R-CNN R{config.depth}-FPN of the expected layout: " + "; ".join(parts))
    state = {k: torch.from_numpy(np.ascontiguousarray(kept[k])).to(own[k].dtype) for k in own}
    bad = next((k for k, v in state.items() if not bool(torch.isfinite(v).all())), None)
    if bad is not None:
        raise WeightsError(f"{path}: {bad!r} holds NaN or infinite values")
    model.load_state_dict(state)
    return model.eval()
