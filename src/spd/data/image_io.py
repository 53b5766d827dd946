"""Reading and writing images, label PNGs and IUV PNGs.

Everything decodes with Pillow: torchvision 0.29 deprecated its image decoders (in favour of
TorchCodec), and Pillow keeps palette ("P" mode) indices as class ids, which label PNGs need.
Images come out RGB uint8 [3, H, W] with EXIF orientation applied.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..ops.arrays import as_numpy
from ..ops.atomic import atomic_path
from ..ops.errors import InputError
from .errors import DataError

NUM_DENSEPOSE_PARTS = 25  # I in 0..24


# What Pillow raises for a file it cannot read as an image.
PIL_ERRORS = (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError)


def require_file(path: Path, what: str = "image file") -> None:
    """DataError naming ``path`` unless it is a non-empty file."""
    if not path.is_file():
        raise DataError(path, f"{what} not found")
    if path.stat().st_size == 0:
        raise DataError(path, f"{what} is empty (0 bytes)")


def read_image(path: Path | str) -> torch.Tensor:
    """RGB uint8 [3, H, W] with EXIF orientation applied. Grayscale, RGBA (composited on white), palette,
    CMYK and 16-bit images are converted. Raises DataError naming the file if it cannot be read."""
    path = Path(path)
    require_file(path)
    try:
        with Image.open(path) as im:
            return pil_to_tensor(im)
    except PIL_ERRORS as err:
        raise DataError(path, f"cannot decode image ({err})") from err


def pil_to_tensor(im: Image.Image) -> torch.Tensor:
    """RGB uint8 [3, H, W] of a Pillow image (its first frame if animated), EXIF orientation applied."""
    im = ImageOps.exif_transpose(im)
    if im.mode.startswith("I"):  # 16/32-bit gray: scale, don't clip
        gray = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or gray.max(initial=0) > 255 else 255.0
        rgb = np.repeat((gray * (255.0 / top)).round().clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)
    elif im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        # Transparent pixels carry arbitrary colours: show them on white, as a viewer would.
        rgba = im.convert("RGBA")
        rgb = np.asarray(Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB"))
    else:
        rgb = np.asarray(im.convert("RGB"))
    return torch.from_numpy(np.array(rgb, dtype=np.uint8, copy=True)).permute(2, 0, 1).contiguous()


def image_size(path: Path | str) -> tuple[int, int]:
    """(height, width) after EXIF orientation, from the header only."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except FileNotFoundError as err:
        raise DataError(path, "image file not found") from err
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise DataError(path, f"cannot read image header ({err})") from err
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def _read_png_array(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise DataError(path, f"{what} file not found")
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            array = np.asarray(im)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise DataError(path, f"cannot decode {what} ({err})") from err
    if mode not in ("P", "L", "I", "I;16", "I;16B", "I;16L", "RGB", "RGBA", "LA", "1"):
        raise DataError(path, f"unsupported {what} image mode {mode!r}")
    return array


def read_label(path: Path | str) -> torch.Tensor:
    """Class-id map uint8 [H, W] from a single-channel or palette PNG (pixel value = class id).
    A 3-channel file is accepted only if its channels are equal (a gray image saved as RGB)."""
    path = Path(path)
    array = _read_png_array(path, "label")
    if array.ndim == 3:
        if array.shape[2] in (2, 4):  # drop alpha
            array = array[..., :-1]
        if not (array == array[..., :1]).all():
            raise DataError(path, "label image has colour pixels; expected class ids "
                                  "(single-channel or palette PNG)")
        array = array[..., 0]
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if array.max(initial=0) > 255:
        raise DataError(path, f"label value {int(array.max())} does not fit 8 bits")
    return torch.from_numpy(array.astype(np.uint8, copy=True))


def read_iuv(path: Path | str) -> tuple[torch.Tensor, torch.Tensor]:
    """DensePose IUV PNG (I, 255*U, 255*V) -> (part index uint8 [H, W], uv float32 [2, H, W])."""
    path = Path(path)
    array = _read_png_array(path, "IUV")
    if array.ndim != 3 or array.shape[2] < 3:
        raise DataError(path, f"IUV image must have 3 channels (I, 255U, 255V), found shape {array.shape}")
    index = array[..., 0].astype(np.uint8)
    top = int(index.max(initial=0))
    if top >= NUM_DENSEPOSE_PARTS:
        raise DataError(path, f"part index {top} is outside 0..{NUM_DENSEPOSE_PARTS - 1}")
    uv = torch.from_numpy(array[..., 1:3].astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()
    return torch.from_numpy(index.copy()), uv


def _as_uint8_hw(array: np.ndarray | torch.Tensor) -> np.ndarray:
    array = as_numpy(array)
    if array.ndim != 2:
        raise InputError(f"expected a [H, W] array, got shape {array.shape}")
    return array.astype(np.uint8)


def write_label(path: Path | str, label: np.ndarray | torch.Tensor, palette: np.ndarray | None = None) -> None:
    """Writes class ids as a PNG (palettised when a uint8[N, 3] palette is given), atomically."""
    with atomic_path(path) as tmp:
        label_image(label, palette).save(tmp, format="PNG")


def label_image(label: np.ndarray | torch.Tensor, palette: np.ndarray | None = None) -> Image.Image:
    """Class ids [H, W] as a Pillow image: palettised ("P", pixel value = class id) with a palette."""
    array = _as_uint8_hw(label)
    height, width = array.shape
    im = Image.frombytes("P" if palette is not None else "L", (width, height), np.ascontiguousarray(array).tobytes())
    if palette is not None:
        flat = np.zeros((256, 3), dtype=np.uint8)
        flat[: len(palette)] = np.asarray(palette, dtype=np.uint8)[:256]
        im.putpalette(flat.reshape(-1).tolist())
    return im


def write_iuv(path: Path | str, index: np.ndarray | torch.Tensor, uv: np.ndarray | torch.Tensor) -> None:
    """Writes (I, 255*U, 255*V) as an 8-bit RGB PNG, atomically. ``uv`` is float [2, H, W] in [0, 1]."""
    with atomic_path(path) as tmp:
        iuv_image(index, uv).save(tmp, format="PNG")


def iuv_image(index: np.ndarray | torch.Tensor, uv: np.ndarray | torch.Tensor) -> Image.Image:
    """DensePose as an RGB Pillow image (I, 255*U, 255*V); ``uv`` float [2, H, W] in [0, 1]."""
    index = _as_uint8_hw(index)
    uv = as_numpy(uv)
    scaled = np.clip(np.nan_to_num(uv) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([index, scaled[0], scaled[1]], axis=-1))


def write_image(path: Path | str, image: np.ndarray | torch.Tensor, quality: int = 92) -> None:
    """Writes an RGB image (uint8 [H, W, 3] array or [3, H, W] tensor) as JPEG or PNG by suffix."""
    if isinstance(image, torch.Tensor):
        image = as_numpy(image.permute(1, 2, 0))
    path = Path(path)
    fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(
            tmp, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
