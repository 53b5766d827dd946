"""Articulated 2-D skeleton in the 16 LIP joints with body proportions, joint-angle limits, an
in-plane rotation and a front or back view. "Left" is always the person's left: in a front view
it lies towards the image's right, in a back view towards its left."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .domains import Domain

# LIP / MPII joint indices (labels/lip.yaml).
R_ANKLE, R_KNEE, R_HIP, L_HIP, L_KNEE, L_ANKLE, PELVIS, SPINE, NECK, HEAD_TOP = range(10)
R_WRIST, R_ELBOW, R_SHOULDER, L_SHOULDER, L_ELBOW, L_WRIST = range(10, 16)

# Limb chains per side: (root joint, middle joint, end joint).
ARMS = {"left": (L_SHOULDER, L_ELBOW, L_WRIST), "right": (R_SHOULDER, R_ELBOW, R_WRIST)}
LEGS = {"left": (L_HIP, L_KNEE, L_ANKLE), "right": (R_HIP, R_KNEE, R_ANKLE)}

# Proportions as fractions of body height (head top to soles), after standard figure drawing.
PROPORTIONS = {
    "pelvis_to_spine": 0.27, "pelvis_to_neck": 0.33, "head_center": 0.09, "head_a": 0.072, "head_b": 0.056,
    "shoulder": 0.105, "hip": 0.075, "upper_arm": 0.17, "forearm": 0.15, "hand": 0.06,
    "thigh": 0.235, "shin": 0.225, "foot": 0.045,
    "r_upper_arm": 0.034, "r_forearm": 0.026, "r_wrist": 0.019, "r_thigh": 0.055, "r_knee": 0.038,
    "r_ankle": 0.024, "r_neck": 0.028,
}


def rotate(vec: np.ndarray, degrees: float) -> np.ndarray:
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    return np.array([c * vec[0] - s * vec[1], s * vec[0] + c * vec[1]], dtype=np.float64)


@dataclass
class Skeleton:
    joints: np.ndarray          # float64 [16, 2], image pixels
    height: float               # body height in pixels
    up: np.ndarray              # unit vector from pelvis towards the head
    side: np.ndarray            # unit vector towards the person's left
    view: str                   # "front" or "back"
    dims: dict[str, float]      # PROPORTIONS scaled to pixels, with per-person variation
    arm_depth: dict[str, float]  # "left"/"right" -> z (in front of the torso when > 0)
    leg_depth: dict[str, float]

    def head_center(self) -> np.ndarray:
        return self.joints[NECK] + self.up * self.dims["head_center"]


def _limb(rng: np.random.Generator, root: np.ndarray, down: np.ndarray, out: np.ndarray, lengths: tuple[float, float],
          spread: tuple[float, float], bend: tuple[float, float], pose_range: float) -> tuple[np.ndarray, np.ndarray]:
    """Middle and end joints of a two-segment limb. ``spread`` limits the angle away from the body
    (degrees, towards ``out``); ``bend`` limits the flexion of the second segment."""
    angle = rng.uniform(*spread) * pose_range
    first = np.cos(np.deg2rad(angle)) * down + np.sin(np.deg2rad(angle)) * out
    middle = root + first * lengths[0]
    flex = rng.uniform(*bend) * pose_range * rng.choice([-1.0, 1.0])
    end = middle + rotate(first, flex) * lengths[1]
    return middle, end


def sample_skeleton(rng: np.random.Generator, domain: Domain, hw: tuple[int, int]) -> Skeleton:
    height_px, width_px = hw
    body = height_px * rng.uniform(*domain.person_scale)
    dims = {k: v * body * rng.uniform(0.92, 1.08) for k, v in PROPORTIONS.items()}
    view = "back" if rng.random() < domain.back_view else "front"
    tilt = float(np.clip(rng.normal(0.0, domain.rotation_std), -3 * domain.rotation_std, 3 * domain.rotation_std))
    up = rotate(np.array([0.0, -1.0]), tilt)
    image_right = rotate(np.array([1.0, 0.0]), tilt)
    side = image_right if view == "front" else -image_right

    j = np.zeros((16, 2))
    j[PELVIS] = 0.0
    j[SPINE] = up * dims["pelvis_to_spine"]
    j[NECK] = up * dims["pelvis_to_neck"]
    j[HEAD_TOP] = j[NECK] + up * (dims["head_center"] + dims["head_a"])
    for name, sign in (("left", 1.0), ("right", -1.0)):
        out = side * sign
        shoulder, elbow, wrist = ARMS[name]
        j[shoulder] = j[SPINE] + out * dims["shoulder"]
        j[elbow], j[wrist] = _limb(rng, j[shoulder], -up, out, (dims["upper_arm"], dims["forearm"]),
                                   spread=(-12.0, 150.0), bend=(0.0, 135.0), pose_range=domain.pose_range)
        hip, knee, ankle = LEGS[name]
        j[hip] = -up * 0.02 * body + out * dims["hip"]
        j[knee], j[ankle] = _limb(rng, j[hip], -up, out, (dims["thigh"], dims["shin"]),
                                  spread=(-8.0, 40.0), bend=(0.0, 70.0), pose_range=domain.pose_range)

    # Place the body's extent around the image centre, with a random offset.
    lo = np.minimum(j.min(axis=0), j[HEAD_TOP] - dims["head_b"])
    hi = j.max(axis=0) + dims["foot"]
    centre = np.array([width_px, height_px]) / 2.0 + rng.normal(0.0, domain.shift, 2) * np.array([width_px, height_px])
    j += centre - (lo + hi) / 2.0
    arm_depth = {k: (1.0 if rng.random() < 0.55 else -1.0) + rng.uniform(-0.05, 0.05) for k in ARMS}
    leg_depth = {k: -0.5 + rng.uniform(-0.05, 0.05) for k in LEGS}
    return Skeleton(j, body, up, side, view, dims, arm_depth, leg_depth)
