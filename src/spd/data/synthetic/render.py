"""Renders one synthetic person: image, parsing labels (synthetic classes), DensePose IUV and the 16
keypoints with visibility, all from the same geometry.

Shapes are painted back to front by depth ``z``: torso 0, head 0.5, arms +-1 (in front of or
behind the torso), legs -0.5, background clutter -10, occluding objects +10. Garments are drawn
just above the body part they cover and do not change the DensePose target (which describes the
body beneath). A joint is visible (v = 1) when nothing deeper than its own body part covers it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter

from .appearance import garment_colour, hair_colour, hsv_colour, make_texture, skin_colour, Texture
from .classes import synthetic_classes
from .domains import Domain
from .raster import Patch, capsule, clip_along, ellipse, polygon
from .skeleton import (ARMS, HEAD_TOP, LEGS, NECK, PELVIS, SPINE, Skeleton, sample_skeleton)

# DensePose part of each body piece: (front view, back view) per DensePose's part groups.
DP_PARTS = {
    ("torso", None): (1, 2),
    ("hand", "right"): (3, 3), ("hand", "left"): (4, 4),
    ("foot", "left"): (5, 5), ("foot", "right"): (6, 6),
    ("thigh", "right"): (7, 9), ("thigh", "left"): (8, 10),
    ("shin", "right"): (11, 13), ("shin", "left"): (12, 14),
    ("upper_arm", "left"): (15, 17), ("upper_arm", "right"): (16, 18),
    ("forearm", "left"): (19, 21), ("forearm", "right"): (20, 22),
    ("head", "right"): (23, 23), ("head", "left"): (24, 24),
}
CLUTTER_Z, OCCLUDER_Z = -10.0, 10.0


def dp_part(piece: str, side: str | None, view: str) -> int:
    front, back = DP_PARTS[(piece, side)]
    return front if view == "front" else back


@dataclass
class Layer:
    z: float
    patch: Patch | None
    label: int
    texture: Texture
    dp: int | None = None  # None: DensePose untouched; 0: background; 1..24: body part


@dataclass
class Outfit:
    top: str                      # upper_clothes | coat | dress | jumpsuit
    lower: str | None             # pants | shorts | skirt | None (dress, jumpsuit)
    sleeves: tuple[float, float]  # covered fraction of upper arm, forearm
    skirt_length: float           # fraction of body height below the waist
    textures: dict[str, Texture]
    extras: dict[str, bool] = field(default_factory=dict)


@dataclass
class SyntheticPerson:
    image: np.ndarray      # uint8 [H, W, 3]
    labels: np.ndarray     # uint8 [H, W], synthetic classes (classes.py)
    dp_index: np.ndarray   # uint8 [H, W], 0..24
    dp_uv: np.ndarray      # float32 [2, H, W]
    keypoints: np.ndarray  # float32 [16, 3]: x, y, v (1 visible, 0 occluded); nan outside the image
    view: str
    occluded: float = 0.0  # fraction of the body's pixels hidden by an occluding object (0: none)


def sample_outfit(rng: np.random.Generator, domain: Domain, body: float, view: str) -> Outfit:
    p = domain.garments
    roll = rng.random()
    top = ("dress" if roll < p["dress"] else "jumpsuit" if roll < p["dress"] + p["jumpsuit"]
           else "coat" if roll < p["dress"] + p["jumpsuit"] + p["coat"] else "upper_clothes")
    lower = None
    if top in ("upper_clothes", "coat"):
        roll = rng.random()
        lower = "skirt" if roll < p["skirt"] else "shorts" if roll < p["skirt"] + p["shorts"] else "pants"
    sleeves = [(0.0, 0.0), (0.5, 0.0), (1.0, 0.5), (1.0, 1.0)][rng.integers(4)]
    if top == "coat":
        sleeves = (1.0, float(rng.choice([0.6, 1.0])))
    names = ["top", "inner", "lower", "hat", "scarf", "gloves", "socks", "shoes", "belt", "bag"]
    textures = {n: make_texture(rng, garment_colour(rng, domain), body * 0.3) for n in names}
    textures["skin"] = make_texture(rng, skin_colour(rng), body, patterned=False)
    textures["hair"] = make_texture(rng, hair_colour(rng), body * 0.1, patterned=False)
    textures["dark"] = make_texture(rng, np.array([30, 25, 25], np.float32), body, patterned=False)
    textures["lens"] = make_texture(rng, hsv_colour(rng, (0, 0.5), (0.0, 0.25)), body, patterned=False)
    extras = {k: bool(rng.random() < p[k]) for k in
              ("hat", "scarf", "gloves", "socks", "belt", "bag", "long_hair", "open_coat")}
    extras["sunglasses"] = view == "front" and bool(rng.random() < p["sunglasses"])
    extras["belt"] = extras["belt"] and lower in ("pants", "shorts", "skirt")
    return Outfit(top, lower, sleeves, float(rng.uniform(0.14, 0.44)), textures, extras)


def _labels(outfit: Outfit) -> tuple[int, int]:
    """Synthetic class ids of the torso and pelvis coverings."""
    c = synthetic_classes()
    torso = {"upper_clothes": "upper_clothes", "coat": "coat", "dress": "dress", "jumpsuit": "jumpsuit_upper"}
    pelvis = {"pants": "pants", "shorts": "pants", "skirt": "skirt"}
    lower = pelvis[outfit.lower] if outfit.lower else ("dress" if outfit.top == "dress" else "jumpsuit_lower")
    return c.id(torso[outfit.top]), c.id(lower)


def body_layers(sk: Skeleton, outfit: Outfit, hw: tuple[int, int]) -> list[Layer]:
    """Body pieces with their DensePose parts, and the garments over them."""
    c = synthetic_classes()
    d, j, up, side, view, b = sk.dims, sk.joints, sk.up, sk.side, sk.view, sk.height
    t = outfit.textures
    torso_label, pelvis_label = _labels(outfit)
    lower_texture = t["top"] if outfit.lower is None else t["lower"]
    torso_part = dp_part("torso", None, view)
    layers: list[Layer] = []

    # Torso from the shoulders to the hips, and the pelvis below it: always covered by garments.
    shoulders = [j[ARMS[s][0]] + o * side * d["r_upper_arm"] * 0.6 + up * 0.02 * b for s, o in (("left", 1), ("right", -1))]
    hips = [j[LEGS[s][0]] + o * side * 0.012 * b for s, o in (("left", 1), ("right", -1))]
    torso_poly = np.array([shoulders[0], shoulders[1], hips[1], hips[0]])
    width = 2 * d["shoulder"] + 2 * d["r_upper_arm"]
    layers.append(Layer(0.0, polygon(torso_poly, j[PELVIS], up, d["pelvis_to_neck"], width, hw), torso_label,
                        t["top"], torso_part))
    crotch = j[PELVIS] - up * 0.11 * b
    pelvis_poly = np.array([hips[0] + up * 0.03 * b, hips[1] + up * 0.03 * b,
                            crotch - side * d["hip"] * 0.7, crotch + side * d["hip"] * 0.7])
    layers.append(Layer(0.01, polygon(pelvis_poly, crotch, up, 0.14 * b, width, hw), pelvis_label, lower_texture,
                        torso_part))
    layers.append(Layer(0.02, capsule(j[SPINE], j[NECK] + up * 0.01 * b, d["r_neck"], d["r_neck"], hw),
                        c.id("face"), t["skin"], torso_part))

    # Head: face in front, hair behind; DensePose splits it into the person's right and left half.
    centre = sk.head_center()
    head = ellipse(centre, up, d["head_a"], d["head_b"], hw)
    if head is not None:
        v_grows = np.array([-up[1], up[0]])  # raster.ellipse's v increases along this vector
        left_half = head.v > 0.5 if float(v_grows @ side) > 0 else head.v < 0.5
        for side_name, half in (("left", left_half), ("right", ~left_half)):
            label = c.id("face") if view == "front" else c.id("hair")
            texture = t["skin"] if view == "front" else t["hair"]
            layers.append(Layer(0.5, Patch(head.y0, head.x0, head.mask & half, head.u, head.v), label, texture,
                                dp_part("head", side_name, view)))
    if view == "front":
        cap = ellipse(centre + up * 0.12 * d["head_a"], up, d["head_a"] * 1.06, d["head_b"] * 1.1, hw)
        layers.append(Layer(0.51, clip_along(cap, 0.66, 1.0), c.id("hair"), t["hair"]))
        across = np.array([up[1], -up[0]])
        eyes = [centre + up * 0.12 * d["head_a"] + s * across * 0.38 * d["head_b"] for s in (-1, 1)]
        for eye in eyes:
            layers.append(Layer(0.512, ellipse(eye, up, 0.09 * d["head_a"], 0.12 * d["head_b"], hw), c.id("face"), t["dark"]))
        layers.append(Layer(0.512, ellipse(centre - up * 0.5 * d["head_a"], up, 0.06 * d["head_a"], 0.3 * d["head_b"], hw),
                            c.id("face"), t["dark"]))
        if outfit.extras["sunglasses"]:
            for eye in eyes:
                layers.append(Layer(0.52, ellipse(eye, up, 0.2 * d["head_a"], 0.3 * d["head_b"], hw),
                                    c.id("sunglasses"), t["lens"]))
            layers.append(Layer(0.52, capsule(eyes[0], eyes[1], 0.04 * d["head_a"], 0.04 * d["head_a"], hw),
                                c.id("sunglasses"), t["lens"]))
    if outfit.extras["long_hair"]:
        length = b * 0.22
        z = -0.2 if view == "front" else 0.45
        layers.append(Layer(z, capsule(centre, centre - up * length, d["head_b"] * 1.15, d["head_b"] * 0.9, hw),
                            c.id("hair"), t["hair"]))
    if outfit.extras["hat"]:
        crown = ellipse(centre + up * 0.45 * d["head_a"], up, d["head_a"] * 0.62, d["head_b"] * 1.12, hw)
        layers.append(Layer(0.53, clip_along(crown, 0.3, 1.0), c.id("hat"), t["hat"]))
        layers.append(Layer(0.53, ellipse(centre + up * 0.38 * d["head_a"], up, d["head_a"] * 0.14, d["head_b"] * 1.5, hw),
                            c.id("hat"), t["hat"]))
    if outfit.extras["scarf"]:
        layers.append(Layer(0.45, capsule(j[SPINE] + side * d["shoulder"] * 0.55, j[SPINE] - side * d["shoulder"] * 0.55,
                                          d["r_neck"] * 1.3, d["r_neck"] * 1.3, hw), c.id("scarf"), t["scarf"]))
        end = j[SPINE] + side * d["shoulder"] * 0.3
        layers.append(Layer(0.46, capsule(end, end - up * 0.17 * b, d["r_neck"] * 0.8, d["r_neck"] * 0.9, hw),
                            c.id("scarf"), t["scarf"]))

    # Arms and legs, each piece with its sleeve / trouser leg over it.
    top_label = torso_label
    for name in ("left", "right"):
        shoulder, elbow, wrist = (j[k] for k in ARMS[name])
        z = sk.arm_depth[name]
        arm = c.id(f"arm_{name}")
        upper = capsule(shoulder, elbow, d["r_upper_arm"], d["r_forearm"], hw)
        fore = capsule(elbow, wrist, d["r_forearm"], d["r_wrist"], hw)
        layers += [Layer(z, upper, arm, t["skin"], dp_part("upper_arm", name, view)),
                   Layer(z + 0.01, fore, arm, t["skin"], dp_part("forearm", name, view))]
        direction = (wrist - elbow) / max(np.linalg.norm(wrist - elbow), 1e-6)
        hand_label, hand_texture = (c.id(f"glove_{name}"), t["gloves"]) if outfit.extras["gloves"] else (arm, t["skin"])
        layers.append(Layer(z + 0.02, ellipse(wrist + direction * d["hand"] * 0.45, direction, d["hand"] * 0.6,
                                              d["r_wrist"] * 1.3, hw), hand_label, hand_texture, dp_part("hand", name, view)))
        if outfit.extras["gloves"]:
            layers.append(Layer(z + 0.021, clip_along(capsule(elbow, wrist, d["r_forearm"] * 1.1, d["r_wrist"] * 1.15, hw), 0.8, 1.0),
                                hand_label, hand_texture))
        up_cover, fore_cover = outfit.sleeves
        sleeve_texture = t["top"]
        if up_cover > 0:
            layers.append(Layer(z + 0.005, clip_along(capsule(shoulder, elbow, d["r_upper_arm"] * 1.2, d["r_forearm"] * 1.2, hw),
                                                      0.0, up_cover), top_label, sleeve_texture))
        if fore_cover > 0:
            layers.append(Layer(z + 0.015, clip_along(capsule(elbow, wrist, d["r_forearm"] * 1.2, d["r_wrist"] * 1.25, hw),
                                                      0.0, fore_cover), top_label, sleeve_texture))

        hip, knee, ankle = (j[k] for k in LEGS[name])
        z = sk.leg_depth[name]
        leg = c.id(f"leg_{name}")
        layers += [Layer(z, capsule(hip, knee, d["r_thigh"], d["r_knee"], hw), leg, t["skin"], dp_part("thigh", name, view)),
                   Layer(z + 0.01, capsule(knee, ankle, d["r_knee"], d["r_ankle"], hw), leg, t["skin"], dp_part("shin", name, view))]
        direction = (ankle - knee) / max(np.linalg.norm(ankle - knee), 1e-6)
        layers.append(Layer(z + 0.02, ellipse(ankle + direction * d["foot"] * 0.35, direction, d["foot"] * 0.8,
                                              d["r_ankle"] * 1.55, hw), c.id(f"shoe_{name}"), t["shoes"], dp_part("foot", name, view)))
        if outfit.extras["socks"]:
            layers.append(Layer(z + 0.012, clip_along(capsule(knee, ankle, d["r_knee"] * 1.08, d["r_ankle"] * 1.12, hw), 0.65, 1.0),
                                c.id(f"socks_{name}"), t["socks"]))
        if outfit.lower in ("pants", "shorts") or outfit.top == "jumpsuit":
            legs_label = c.id("jumpsuit_lower") if outfit.top == "jumpsuit" else c.id("pants")
            legs_texture = t["top"] if outfit.top == "jumpsuit" else t["lower"]
            thigh_cover, shin_cover = (0.6, 0.0) if outfit.lower == "shorts" else (1.0, 1.0)
            layers.append(Layer(z + 0.005, clip_along(capsule(hip, knee, d["r_thigh"] * 1.15, d["r_knee"] * 1.2, hw), 0.0, thigh_cover),
                                legs_label, legs_texture))
            if shin_cover:
                layers.append(Layer(z + 0.015, capsule(knee, ankle, d["r_knee"] * 1.2, d["r_ankle"] * 1.3, hw), legs_label, legs_texture))

    # Skirts, coat hems, belts and bags lie over the legs and the torso.
    if outfit.lower == "skirt" or outfit.top == "dress":
        length = b * outfit.skirt_length
        flare = d["hip"] * 0.6
        waist = [h + up * 0.04 * b for h in hips]
        skirt = np.array([waist[0], waist[1], waist[1] - up * length - side * flare, waist[0] - up * length + side * flare])
        layers.append(Layer(0.05, polygon(skirt, waist[0], -up, length, width, hw), pelvis_label, lower_texture))
    if outfit.top == "coat":
        hem = 0.15 * b
        coat = np.array([shoulders[0], shoulders[1], hips[1] - up * hem - side * 0.02 * b, hips[0] - up * hem + side * 0.02 * b])
        layers.append(Layer(0.06, polygon(coat, j[PELVIS], up, d["pelvis_to_neck"], width, hw), c.id("coat"), t["top"]))
        if outfit.extras["open_coat"]:
            strip = 0.28 * d["shoulder"]
            inner = np.array([j[SPINE] + side * strip, j[SPINE] - side * strip, j[PELVIS] - side * strip, j[PELVIS] + side * strip])
            layers.append(Layer(0.07, polygon(inner, j[PELVIS], up, d["pelvis_to_neck"], width, hw), c.id("upper_clothes"), t["inner"]))
    if outfit.extras["belt"]:
        band = 0.018 * b
        belt = np.array([hips[0] + up * (0.03 * b + band), hips[1] + up * (0.03 * b + band), hips[1] + up * 0.03 * b, hips[0] + up * 0.03 * b])
        layers.append(Layer(0.08, polygon(belt, j[PELVIS], up, band, width, hw), c.id("belt"), t["belt"]))
    if outfit.extras["bag"]:
        holder = "left" if j[ARMS["left"][0]][0] > 0 else "right"
        sign = 1.0 if holder == "left" else -1.0
        bag_centre = j[LEGS[holder][0]] + side * sign * 0.1 * b + up * 0.02 * b
        strap_top = j[ARMS["right" if holder == "left" else "left"][0]]
        layers.append(Layer(0.9, capsule(strap_top, bag_centre, 0.008 * b, 0.008 * b, hw), c.id("bag"), t["bag"]))
        layers.append(Layer(0.9, ellipse(bag_centre, up, 0.07 * b, 0.06 * b, hw), c.id("bag"), t["bag"]))
    return layers


def background(rng: np.random.Generator, domain: Domain, hw: tuple[int, int]) -> np.ndarray:
    """float32 [H, W, 3]: a smooth colour field times low-frequency noise, or a patterned wall."""
    h, w = hw
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    base = hsv_colour(rng, (0.0, 0.6), domain.background_value)
    texture = make_texture(rng, base, max(h, w) * 1.5, patterned=rng.random() < 0.5,
                           centre=np.array([w / 2, h / 2], np.float32))
    image = texture.paint(ys, xs)
    if rng.random() < 0.5:  # a floor below a horizon line
        horizon = rng.uniform(0.5, 0.85) * h
        floor = hsv_colour(rng, (0.0, 0.5), domain.background_value)
        image = np.where((ys > horizon)[..., None], floor * (0.8 + 0.4 * ys[..., None] / h), image)
    cells = rng.random((int(rng.integers(3, 9)), int(rng.integers(3, 9)), 3)).astype(np.float32)
    noise = np.asarray(Image.fromarray((cells * 255).astype(np.uint8)).resize((w, h), Image.BILINEAR), np.float32) / 255.0
    return image * (0.75 + 0.5 * noise)


def clutter_layers(rng: np.random.Generator, domain: Domain, hw: tuple[int, int]) -> list[Layer]:
    """Limb-like capsules in skin and garment colours, and other objects, all labelled background."""
    h, w = hw
    size = float(min(h, w))
    layers = []
    for i in range(int(rng.integers(domain.clutter[0], domain.clutter[1] + 1))):
        colour = skin_colour(rng) if rng.random() < 0.4 else garment_colour(rng, domain)
        texture = make_texture(rng, colour, size * 0.3)
        a = rng.uniform([0, 0], [w, h])
        kind = rng.random()
        if kind < 0.6:
            b = a + rng.normal(0, 0.25 * size, 2)
            patch = capsule(a, b, rng.uniform(0.02, 0.06) * size, rng.uniform(0.015, 0.05) * size, hw)
        elif kind < 0.8:
            patch = ellipse(a, np.array([1.0, 0.0]), rng.uniform(0.04, 0.15) * size, rng.uniform(0.04, 0.15) * size, hw)
        else:
            half = rng.uniform(0.03, 0.15, 2) * size
            corners = np.array([a - half, a + [half[0], -half[1]], a + half, a + [-half[0], half[1]]])
            patch = polygon(corners, a, np.array([0.0, 1.0]), 1.0, 1.0, hw)
        layers.append(Layer(CLUTTER_Z + 0.01 * i, patch, 0, texture))
    return layers


def occluder_layer(rng: np.random.Generator, domain: Domain, sk: Skeleton, hw: tuple[int, int]) -> list[Layer]:
    if rng.random() >= domain.occluder:
        return []
    target = sk.joints[rng.integers(16)] + rng.normal(0, 0.08 * sk.height, 2)
    half = rng.uniform(0.06, 0.16, 2) * sk.height
    corners = np.array([target - half, target + [half[0], -half[1]], target + half, target + [-half[0], half[1]]])
    texture = make_texture(rng, garment_colour(rng, domain), sk.height * 0.3)
    return [Layer(OCCLUDER_Z, polygon(corners, target, np.array([0.0, 1.0]), 1.0, 1.0, hw), 0, texture, dp=0)]


def joint_depths(sk: Skeleton) -> np.ndarray:
    """Depth of the body part each joint lies on (for the visibility test)."""
    z = np.full(16, 0.1)
    for name, (root, middle, end) in ARMS.items():
        z[root] = max(sk.arm_depth[name], 0.1)
        z[middle] = z[end] = sk.arm_depth[name] + 0.03
    for name, (root, middle, end) in LEGS.items():
        z[middle] = z[end] = sk.leg_depth[name] + 0.03
    z[NECK], z[HEAD_TOP] = 0.5, 0.6
    return z


def composite(layers: list[Layer], canvas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Paints layers back to front; returns (labels, z-buffer, dp index, dp uv)."""
    h, w = canvas.shape[:2]
    labels = np.zeros((h, w), np.uint8)
    zbuf = np.full((h, w), -np.inf, np.float32)
    dp_index = np.zeros((h, w), np.uint8)
    dp_uv = np.zeros((2, h, w), np.float32)
    for layer in sorted((l for l in layers if l.patch is not None), key=lambda l: l.z):
        p = layer.patch
        win, m = p.window, p.mask
        ys, xs = np.nonzero(m)
        canvas[win][m] = layer.texture.paint((ys + p.y0).astype(np.float32), (xs + p.x0).astype(np.float32))
        labels[win][m] = layer.label
        zbuf[win][m] = layer.z
        if layer.dp is not None:
            dp_index[win][m] = layer.dp
            for channel, values in enumerate((p.u, p.v)):
                dp_uv[channel][win][m] = values[m] if layer.dp else 0.0
    return labels, zbuf, dp_index, dp_uv


def render_person(rng: np.random.Generator, domain: Domain, hw: tuple[int, int]) -> SyntheticPerson:
    sk = sample_skeleton(rng, domain, hw)
    outfit = sample_outfit(rng, domain, sk.height, sk.view)
    canvas = background(rng, domain, hw)
    clutter = clutter_layers(rng, domain, hw)  # drawn in this order: each consumes the image's random stream
    body = body_layers(sk, outfit, hw)
    occluders = occluder_layer(rng, domain, sk, hw)
    labels, zbuf, dp_index, dp_uv = composite(clutter + body + occluders, canvas)

    keypoints = np.full((16, 3), np.nan, np.float32)
    ix, iy = np.round(sk.joints[:, 0]).astype(int), np.round(sk.joints[:, 1]).astype(int)
    inside = (ix >= 0) & (ix < hw[1]) & (iy >= 0) & (iy < hw[0])
    depth = joint_depths(sk)
    for k in np.nonzero(inside)[0]:
        visible = zbuf[iy[k], ix[k]] <= depth[k] + 0.05
        keypoints[k] = (sk.joints[k, 0], sk.joints[k, 1], 1.0 if visible else 0.0)

    if domain.noise_std > 0:
        canvas += rng.standard_normal(canvas.shape, dtype=np.float32) * domain.noise_std
    image = np.clip(canvas, 0, 255).astype(np.uint8)
    radius = rng.uniform(*domain.blur)
    if radius > 0.25:
        image = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius)))
    return SyntheticPerson(image, labels, dp_index, dp_uv, keypoints, sk.view, hidden_fraction(body, occluders, hw))


def hidden_fraction(body: list[Layer], occluders: list[Layer], hw: tuple[int, int]) -> float:
    """The fraction of the body's pixels that occluding objects cover."""
    if not occluders:
        return 0.0
    masks = []
    for layers in (body, occluders):
        mask = np.zeros(hw, bool)
        for layer in layers:
            if layer.patch is not None:
                mask[layer.patch.window] |= layer.patch.mask
        masks.append(mask)
    return float((masks[0] & masks[1]).sum() / max(1, masks[0].sum()))
