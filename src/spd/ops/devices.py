"""``--device auto|cpu|cuda[:n]`` -> Lightning's accelerator and devices."""

from __future__ import annotations

import torch

from .errors import InputError


def parse_device(device: str, devices: int | str = 1) -> tuple[str, str | int | list[int]]:
    """(accelerator, devices) for the Trainer. ``cuda:n`` picks GPU n; ``cuda`` takes ``devices`` GPUs
    (``"auto"``: every visible one)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return "cpu", 1 if devices == "auto" else _count(devices)
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InputError(f"--device {device}: CUDA is not available on this machine (use --device cpu)")
        if ":" in device:
            text = device.split(":", 1)[1]
            if not text.isdigit():
                raise InputError(f"--device {device}: expected cuda:N with N a GPU index")
            if devices not in ("auto", 1, "1"):
                raise InputError(f"--device {device} names one GPU, but train.devices is {devices}: use --device cuda "
                                 "with --devices N (and CUDA_VISIBLE_DEVICES to choose which GPUs)")
            index = int(text)
            if index >= torch.cuda.device_count():
                raise InputError(f"--device {device}: only {torch.cuda.device_count()} GPU(s) visible")
            return "gpu", [index]
        return "gpu", "auto" if devices == "auto" else _count(devices)
    raise InputError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")


def _count(devices: int | str) -> int:
    try:
        return int(devices)
    except ValueError:
        raise InputError(f"train.devices must be 'auto' or a number, got {devices!r}") from None


def torch_device(device: str) -> torch.device:
    """A torch.device for single-process work (evaluation, prediction)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    accelerator, devices = parse_device(device)
    return torch.device(f"cuda:{devices[0]}" if isinstance(devices, list) else "cuda") if accelerator == "gpu" else torch.device("cpu")
