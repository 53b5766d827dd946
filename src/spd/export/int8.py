"""``spd export --format onnx --int8 --calibrate FOLDER``: the ONNX file quantised to 8 bits for ONNX
Runtime on a CPU (static quantisation: weights per channel int8, activations uint8 with ranges
measured on the calibration photos; QDQ format), then compared with the float32 file on those
photos: how many pixels keep their parsing class (at the network's output grid), the largest
change of the other outputs, and the latency of both in ONNX Runtime."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..data.image_io import read_image
from ..data.reader import IMAGE_SUFFIXES, index_files
from ..ops.atomic import atomic_path
from ..ops.errors import InputError


def calibration_images(folder: Path | str, size: tuple[int, int], count: int) -> list[np.ndarray]:
    """Up to ``count`` photos of ``folder`` (sorted by name) as uint8 [1, 3, H, W] at ``size``,
    resized as the graph expects its input (bilinear, to the model's input size)."""
    folder = Path(folder)
    files = index_files(folder, IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"--calibrate {folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    out = []
    for key in sorted(files)[:count]:
        rgb = read_image(files[key]).permute(1, 2, 0).numpy()
        resized = np.asarray(Image.fromarray(rgb).resize((size[1], size[0]), Image.Resampling.BILINEAR))
        out.append(np.ascontiguousarray(resized.transpose(2, 0, 1)[None]))
    return out


class _Reader:
    """onnxruntime's CalibrationDataReader: one {"image": batch} per call, then None."""

    def __init__(self, images: list[np.ndarray]):
        self.images = iter(images)

    def get_next(self) -> dict[str, np.ndarray] | None:
        image = next(self.images, None)
        return None if image is None else {"image": image}


def quantize(float_path: Path, int8_path: Path, images: list[np.ndarray]) -> None:
    """Static QDQ quantisation of ``float_path`` into ``int8_path`` (written under a temporary name),
    the float file's metadata kept and the quantisation recorded."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    with atomic_path(int8_path) as tmp:
        quantize_static(str(float_path), str(tmp), _Reader(images), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        proto = onnx.load_model(str(tmp))
        kept = {p.key for p in proto.metadata_props}
        for prop in onnx.load_model(str(float_path), load_external_data=False).metadata_props:
            if prop.key not in kept:
                proto.metadata_props.add(key=prop.key, value=prop.value)
        proto.metadata_props.add(key="quantization", value=f"static int8 (QDQ; weights per channel int8, activations "
                                                            f"uint8, MinMax ranges over {len(images)} photos)")
        onnx.save_model(proto, str(tmp))


def _session(path: Path):
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _latency(session, image: np.ndarray, repeat: int = 3) -> float:
    session.run(None, {"image": image})
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        session.run(None, {"image": image})
        best = min(best, time.perf_counter() - start)
    return best


def compare(float_path: Path, int8_path: Path, images: list[np.ndarray]) -> dict[str, Any]:
    """Agreement of the int8 file with the float32 one on ``images``, and both latencies."""
    float_session, int8_session = _session(float_path), _session(int8_path)
    names = [o.name for o in float_session.get_outputs()]
    same, total, diffs = 0, 0, {}
    for image in images:
        a = dict(zip(names, float_session.run(names, {"image": image})))
        b = dict(zip(names, int8_session.run(names, {"image": image})))
        if "parsing" in a:
            same += int((a["parsing"].argmax(1) == b["parsing"].argmax(1)).sum())
            total += a["parsing"].argmax(1).size
        for name in names:
            diffs[name] = max(diffs.get(name, 0.0), float(np.abs(a[name] - b[name]).max()))
    return {"parsing_agreement": same / total if total else None, "max_abs_diff": diffs,
            "latency_s": {"float32": round(_latency(float_session, images[0]), 4),
                          "int8": round(_latency(int8_session, images[0]), 4)},
            "calibration_photos": len(images)}
