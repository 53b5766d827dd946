"""Colours and textures of garments, skin, hair and backgrounds."""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from .domains import Domain

SKIN_TONES = np.array([[255, 224, 196], [241, 194, 158], [224, 172, 125], [198, 134, 86], [161, 102, 64],
                       [120, 75, 45], [88, 56, 36]], dtype=np.float32)
HAIR_COLOURS = np.array([[20, 16, 14], [60, 40, 28], [110, 75, 45], [200, 165, 100], [150, 60, 30],
                         [170, 170, 170]], dtype=np.float32)
PATTERNS = ("solid", "solid", "stripes", "checks", "dots", "waves")


@dataclass
class Texture:
    """A colour pattern evaluated at pixel coordinates, with a linear shading ramp."""

    base: np.ndarray          # float32 [3], 0..255
    second: np.ndarray        # float32 [3]
    pattern: str
    period: float
    direction: np.ndarray     # unit vector of the pattern
    shade: np.ndarray         # shading gradient per pixel (brightness change per pixel, x and y)
    shade_origin: np.ndarray  # pixel where the shading is neutral

    def paint(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """float32 [h, w, 3] colours at the given pixel coordinates."""
        t = xs * self.direction[0] + ys * self.direction[1]
        if self.pattern == "stripes":
            mix = (np.sin(2 * np.pi * t / self.period) > 0).astype(np.float32)
        elif self.pattern == "checks":
            s = -xs * self.direction[1] + ys * self.direction[0]
            mix = ((np.floor(t / self.period) + np.floor(s / self.period)) % 2).astype(np.float32)
        elif self.pattern == "dots":
            s = -xs * self.direction[1] + ys * self.direction[0]
            a, b = np.mod(t, self.period) - self.period / 2, np.mod(s, self.period) - self.period / 2
            mix = (a * a + b * b < (self.period * 0.28) ** 2).astype(np.float32)
        elif self.pattern == "waves":
            mix = (0.5 + 0.5 * np.sin(2 * np.pi * t / self.period + np.sin(xs / 9.0) * 2)).astype(np.float32)
        else:
            mix = np.zeros_like(xs)
        colour = self.base + mix[..., None] * (self.second - self.base)
        light = 1.0 + (xs - self.shade_origin[0]) * self.shade[0] + (ys - self.shade_origin[1]) * self.shade[1]
        return colour * np.clip(light, 0.55, 1.45)[..., None]


def hsv_colour(rng: np.random.Generator, saturation: tuple[float, float], value: tuple[float, float]) -> np.ndarray:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*saturation), rng.uniform(*value))
    return np.array([r, g, b], dtype=np.float32) * 255.0


def _unit(rng: np.random.Generator) -> np.ndarray:
    a = rng.uniform(0, 2 * np.pi)
    return np.array([np.cos(a), np.sin(a)], dtype=np.float32)


def make_texture(rng: np.random.Generator, base: np.ndarray, scale: float, patterned: bool = True,
                 second: np.ndarray | None = None, centre: np.ndarray | None = None) -> Texture:
    """``scale`` (pixels) sets the pattern period and the shading gradient's reach."""
    pattern = str(rng.choice(PATTERNS)) if patterned else "solid"
    if second is None:
        second = np.clip(base * rng.uniform(0.3, 0.8) + rng.uniform(0, 120, 3), 0, 255).astype(np.float32)
    shade = _unit(rng) * rng.uniform(0.0, 0.35) / max(scale, 1.0)
    return Texture(base.astype(np.float32), second, pattern, float(rng.uniform(0.08, 0.3) * scale), _unit(rng),
                   shade.astype(np.float32), centre if centre is not None else np.zeros(2, np.float32))


def garment_colour(rng: np.random.Generator, domain: Domain) -> np.ndarray:
    return hsv_colour(rng, domain.saturation, domain.value)


def skin_colour(rng: np.random.Generator) -> np.ndarray:
    tone = SKIN_TONES[rng.integers(len(SKIN_TONES))]
    return np.clip(tone + rng.normal(0, 8, 3), 0, 255).astype(np.float32)


def hair_colour(rng: np.random.Generator) -> np.ndarray:
    return np.clip(HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))] + rng.normal(0, 10, 3), 0, 255).astype(np.float32)
