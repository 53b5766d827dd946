"""A legend of label classes: palette swatches with their names, wrapped to a width."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..labels import label_space


def font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def legend(space: str, width: int, swatch: int = 14, only: Iterable[int] | None = None) -> np.ndarray:
    """uint8 [h, width, 3]: the classes of label space ``space`` (those in ``only``, if given) with
    their palette colours; ``swatch`` (pixels) sets the scale of the swatches and text."""
    labels = label_space(space)
    face = font(max(8, round(swatch * 6 / 7)))
    keep = set(only) if only is not None else None
    entries = [(name, tuple(int(c) for c in labels.palette_array()[i])) for i, name in enumerate(labels.classes)
               if keep is None or i in keep]
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    sizes = [swatch * 2 + int(probe.textlength(name, font=face)) for name, _ in entries]
    lines, x = [[]], 0
    for entry, size in zip(entries, sizes):
        if x + size > width and lines[-1]:
            lines.append([])
            x = 0
        lines[-1].append((entry, x))
        x += size
    line_height = swatch + swatch // 2
    im = Image.new("RGB", (width, line_height * len(lines) + 4), "white")
    draw = ImageDraw.Draw(im)
    for row, line in enumerate(lines):
        y = 2 + row * line_height
        for (name, colour), x0 in line:
            draw.rectangle([x0, y, x0 + swatch, y + swatch], fill=colour, outline="black")
            draw.text((x0 + swatch + swatch // 3, y + swatch / 2), name, fill="black", font=face, anchor="lm")
    return np.asarray(im)
