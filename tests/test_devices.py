"""Code that hands tensors to a user, a file or a web page must not assume they are on the CPU.
No GPU is needed to check it: :class:`OnDevice` is a tensor that behaves as one on an accelerator
does here (``.numpy()`` refuses, mixing it with a CPU tensor in an operation refuses, ``.cpu()``
gives a plain tensor)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from predict_helpers import write_checkpoint
from spd.inference import Prediction
from spd.predict import Predictor
from spd.predict.writers import OutputSpec, all_kinds, output_paths, write_outputs


class OnDevice(torch.Tensor):
    @staticmethod
    def wrap(t: torch.Tensor) -> "OnDevice":
        return t.as_subclass(OnDevice)

    def numpy(self, *args, **kwargs):
        raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the tensor "
                        "to host memory first.")

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.Tensor.cpu,) or (func is torch.Tensor.to and _to_cpu(args, kwargs)):
            return super().__torch_function__(func, types, args, kwargs).as_subclass(torch.Tensor)
        if func in (torch.Tensor.__repr__, torch.Tensor.__format__):
            return super().__torch_function__(func, types, args, kwargs)
        flat = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        flat += [x for a in args if isinstance(a, (list, tuple)) for x in a if isinstance(x, torch.Tensor)]
        if any(type(a) is torch.Tensor and a.dim() > 0 for a in flat) and any(isinstance(a, OnDevice) for a in flat):
            raise RuntimeError(f"Expected all tensors to be on the same device ({func.__name__}: cuda:0 and cpu)")
        return super().__torch_function__(func, types, args, kwargs)


def _to_cpu(args, kwargs) -> bool:
    target = kwargs.get("device", args[1] if len(args) > 1 else None)
    return str(target).startswith("cpu")


def test_the_stand_in_refuses_what_a_cuda_tensor_refuses():
    t = OnDevice.wrap(torch.ones(3))
    with pytest.raises(TypeError, match="cuda"):
        t.numpy()
    with pytest.raises(RuntimeError, match="same device"):
        t * torch.tensor([1.0, 2.0, 3.0])
    assert type(t.cpu()) is torch.Tensor and t.to("cpu").numpy().sum() == 3


def _on_device(prediction: Prediction) -> Prediction:
    return Prediction(**{**vars(prediction), **{n: OnDevice.wrap(getattr(prediction, n)) for n in Prediction.TENSORS
                                              if getattr(prediction, n) is not None}})


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return Predictor.from_checkpoint(write_checkpoint(tmp_path_factory.mktemp("m") / "m.ckpt"), device="cpu")


def test_every_writer_takes_tensors_on_a_device(tmp_path, predictor):
    """Including an overlay of a photo over 2048 px, drawn scaled down (CUDA keypoints times a CPU
    tensor used to abort the run there)."""
    image = torch.randint(0, 256, (3, 2100, 40), dtype=torch.uint8)
    prediction = _on_device(predictor(image))
    from spd.labels.masks import parse_mask

    spec = OutputSpec(tuple(k for k in all_kinds() if k != "labels"), "lip", mask=parse_mask("upper-body", "lip", 3))
    paths = output_paths(tmp_path, "x", spec.kinds)
    write_outputs(prediction, OnDevice.wrap(image), paths, spec)
    assert all(p.is_file() for p in paths.values())


def test_the_web_page_takes_results_on_a_device(predictor, monkeypatch):
    import io

    from PIL import Image

    from spd.serve import DemoApp

    original = predictor.predict_tensors
    monkeypatch.setattr(predictor, "predict_tensors", lambda batch: [_on_device(p) for p in original(batch)])
    app = DemoApp(predictor, "m")
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((30, 20, 3), np.uint8)).save(buffer, format="PNG")
    reply = app.predict(buffer.getvalue(), "x.png")
    assert set(reply["panels"]) == {"parsing", "skeleton", "densepose"}
