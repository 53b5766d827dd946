"""Visual domains of the synthetic dataset: different appearance statistics and framing, so that
cross-dataset experiments (train on one, test on the other) can be run without real data.

A ("wild", LIP-like): cluttered scenes, varied poses, in-plane rotation, close framing that
truncates people at the image border, occluding objects.
B ("fashion", ATR-like): portrait images of mostly upright full bodies on calmer backgrounds,
more dresses, skirts, belts and bags, and a different colour palette.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...ops.errors import UnknownName


@dataclass(frozen=True)
class Domain:
    name: str
    aspect: float                          # image width / height
    person_scale: tuple[float, float]      # person height / image height
    shift: float                           # std of the person's offset from the centre (fraction of size)
    rotation_std: float                    # degrees of in-plane body rotation
    pose_range: float                      # 0..1, how far limbs move from a standing pose
    back_view: float                       # probability of a back view
    saturation: tuple[float, float]        # garment colour saturation range (HSV)
    value: tuple[float, float]             # garment colour brightness range (HSV)
    background_value: tuple[float, float]  # background brightness range
    clutter: tuple[int, int]               # number of distractor shapes (limb-like and objects)
    occluder: float                        # probability of an object in front of the person
    noise_std: float                       # per-pixel Gaussian noise (0..255 scale)
    blur: tuple[float, float]              # Gaussian blur radius range, pixels
    garments: dict[str, float]             # probabilities of optional garments and accessories
    default_format: str                    # "lip" or "atr"


DOMAINS = {
    "A": Domain(
        name="A", aspect=0.8, person_scale=(0.8, 1.35), shift=0.08, rotation_std=10.0, pose_range=1.0,
        back_view=0.3, saturation=(0.2, 0.9), value=(0.25, 0.95), background_value=(0.2, 0.9),
        clutter=(3, 9), occluder=0.35, noise_std=5.0, blur=(0.0, 0.8),
        garments={"dress": 0.12, "coat": 0.2, "jumpsuit": 0.06, "skirt": 0.15, "shorts": 0.2, "hat": 0.25,
                  "sunglasses": 0.15, "scarf": 0.12, "gloves": 0.08, "socks": 0.3, "belt": 0.1, "bag": 0.1,
                  "long_hair": 0.4, "open_coat": 0.6},
        default_format="lip",
    ),
    "B": Domain(
        name="B", aspect=0.66, person_scale=(0.75, 0.92), shift=0.03, rotation_std=3.0, pose_range=0.45,
        back_view=0.1, saturation=(0.4, 1.0), value=(0.45, 1.0), background_value=(0.6, 1.0),
        clutter=(0, 3), occluder=0.05, noise_std=2.0, blur=(0.0, 0.4),
        garments={"dress": 0.3, "coat": 0.15, "jumpsuit": 0.03, "skirt": 0.35, "shorts": 0.1, "hat": 0.15,
                  "sunglasses": 0.25, "scarf": 0.2, "gloves": 0.03, "socks": 0.15, "belt": 0.3, "bag": 0.35,
                  "long_hair": 0.6, "open_coat": 0.4},
        default_format="atr",
    ),
}


def get_domain(name: str) -> Domain:
    try:
        return DOMAINS[name.upper()]
    except KeyError:
        raise UnknownName(f"unknown synthetic domain {name!r}; known: {', '.join(DOMAINS)}") from None
