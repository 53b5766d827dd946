"""``spd export``: ONNX, TorchScript and safetensors files of a trained model, each written to a
temporary name and renamed, each carrying the metadata needed to use it (input convention,
normalisation, label names, output layout), each checked against PyTorch after writing."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..inference import EvalConfig
from ..labels import keypoint_space, label_space
from ..model import SPDNet
from ..ops.arrays import as_numpy
from ..ops.atomic import atomic_path
from ..ops.errors import InputError
from ..ops.validation import require_choice
from ..weights import WEIGHTS_FORMAT, load_checkpoint, write_weights_file
from .wrapper import ExportWrapper, output_descriptions

FORMATS = {"onnx": ".onnx", "torchscript": ".pt", "safetensors": ".safetensors"}
OPSET = 18
INPUT_CONVENTION = ("image: uint8 [B, 3, H, W], RGB, 0..255 (normalisation is inside the graph); resize to the "
                    "model's input size first (see 'eval.input_size')")


def metadata(model: SPDNet, protocol: EvalConfig, experiment: dict | None, fmt: str) -> dict[str, str]:
    """String key -> string value, as ONNX metadata_props, TorchScript extra files and safetensors allow."""
    meta = {"format": WEIGHTS_FORMAT if fmt == "safetensors" else f"spd-{fmt}/1", "spd_version": __version__,
            "model": json.dumps(model.metadata()), "eval": json.dumps(asdict(protocol)),
            "input": INPUT_CONVENTION, "outputs": json.dumps(output_descriptions(model)),
            "output_stride": str(model.output_stride),
            "classes": json.dumps(label_space(model.config.parsing_space).classes),
            "joints": json.dumps(keypoint_space().joints)}
    if fmt == "onnx":
        meta["opset"] = str(OPSET)
    if experiment is not None:
        meta["experiment"] = json.dumps(experiment)
    return meta


def example_input(protocol: EvalConfig, batch: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, *protocol.input_size), dtype=torch.uint8, generator=g)


# The export traces the network and checks the file against PyTorch at its input size, with a batch
# of 2: a 4000 x 4000 input grew past 16 GB and two minutes. ONNX and safetensors files take any size
# once written; a TorchScript trace keeps the size it was traced at.
MAX_EXPORT_PIXELS = 2048 * 2048


def _write_onnx(wrapper: ExportWrapper, example: torch.Tensor, path: Path, meta: dict[str, str]) -> None:
    import onnx

    dims = {0: torch.export.Dim("batch", min=1), 2: torch.export.Dim.AUTO, 3: torch.export.Dim.AUTO}
    program = torch.onnx.export(wrapper, (example,), dynamo=True, opset_version=OPSET, input_names=["image"],
                                output_names=list(wrapper.names), dynamic_shapes={"image": dims}, verbose=False)
    proto = program.model_proto
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save_model(proto, str(path))


def _write_torchscript(wrapper: ExportWrapper, example: torch.Tensor, path: Path, meta: dict[str, str]) -> None:
    traced = torch.jit.trace(wrapper, (example,), check_trace=False)
    torch.jit.save(traced, str(path), _extra_files={f"spd/{k}": v for k, v in meta.items()})


def run_exported(path: Path, fmt: str, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The exported file's outputs on ``image`` (ONNX through onnxruntime on the CPU)."""
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return tuple(torch.from_numpy(o) for o in session.run(None, {"image": as_numpy(image)}))
    if fmt == "torchscript":
        return tuple(torch.jit.load(str(path))(image))
    loaded = load_checkpoint(path)
    return ExportWrapper(loaded.model, loaded.protocol.stages)(image)


def export_model(model: SPDNet, protocol: EvalConfig, fmt: str, path: Path | str,
                 experiment: dict[str, Any] | None = None) -> dict[str, Any]:
    """Writes ``path`` and checks it: the largest absolute difference from PyTorch on a random
    batch at the model's input size and at another size (other batch size too, where the format
    has dynamic shapes). Returns {"path", "format", "max_abs_diff", "checked_shapes", ...}."""
    require_choice("--format", fmt, FORMATS)
    path = Path(path)
    h, w = protocol.input_size
    if h * w > MAX_EXPORT_PIXELS:
        raise InputError(f"--input-size {h} {w}: {h * w / 1e6:.1f} megapixels; the export is traced and checked at "
                         f"its input size (a batch of 2), at most {MAX_EXPORT_PIXELS / 1e6:.1f} megapixels (2048 x "
                         "2048). ONNX and safetensors files run at any size: export at the model's own input size")
    model = copy.deepcopy(model).cpu().eval()  # the caller's model stays where it is
    wrapper = ExportWrapper(model, protocol.stages).eval()  # eval as a whole: dropout must not be traced
    meta = metadata(model, protocol, experiment, fmt)
    example = example_input(protocol)
    # Under a temporary name until the check has passed: a failed or interrupted check leaves nothing.
    with torch.no_grad(), atomic_path(path) as tmp:
        try:
            if fmt == "onnx":
                _write_onnx(wrapper, example, tmp, meta)
            elif fmt == "torchscript":
                _write_torchscript(wrapper, example, tmp, meta)
            else:
                write_weights_file(model, tmp, meta)
        except OSError as err:  # a full disk, a lost mount: named by the file asked for
            raise OSError(f"writing {path}: {err}") from None
        stride = model.output_stride
        # TorchScript traces fix the shapes of the interpolations: check it at the traced size only.
        shapes = [tuple(example.shape)] + ([] if fmt == "torchscript" else [(1, 3, h + 2 * stride, w + stride)])
        diff = 0.0
        for shape in shapes:
            image = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
            for a, b in zip(run_exported(tmp, fmt, image), wrapper(image)):
                if a.shape != b.shape:
                    raise RuntimeError(f"{path}: exported output shape {tuple(a.shape)} differs from PyTorch's "
                                       f"{tuple(b.shape)} at input {shape}")
                diff = max(diff, float((a.float() - b.float()).abs().max()))
    return {"path": str(path), "format": fmt, "max_abs_diff": diff, "checked_shapes": [list(s) for s in shapes],
            "outputs": list(wrapper.names), "opset": OPSET if fmt == "onnx" else None,
            "bytes": path.stat().st_size}
