import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from spd.data.detect import open_dataset
from spd.data.synthetic import SynthSpec, generate, get_domain, render_person
from spd.data.synthetic.classes import synthetic_classes
from spd.data.synthetic.writer import image_rng
from spd.labels import keypoint_space, label_space

KP = keypoint_space()
LIP = label_space("lip")


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != "synthetic.yaml"):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_generation_is_deterministic_from_the_seed(tmp_path):
    spec = SynthSpec(num=4, domain="A", seed=11, size=64)
    generate(tmp_path / "a", spec)
    generate(tmp_path / "b", spec)
    generate(tmp_path / "c", SynthSpec(num=4, domain="A", seed=12, size=64))
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")


def _people(domain, n=40, size=128):
    d = get_domain(domain)
    hw = (size, round(size * d.aspect))
    return [render_person(image_rng(0, domain, i), d, hw) for i in range(n)]


def _segment_distance(points, a, b):
    d = b - a
    t = np.clip(((points - a) @ d) / max(d @ d, 1e-9), 0, 1)
    return np.linalg.norm(points - (a + t[:, None] * d), axis=1)


def test_left_is_the_persons_left_in_front_and_back_views():
    # Left-arm pixels lie nearer the left arm's bones than the right arm's, whatever the view.
    classes = synthetic_classes()
    checked = {"front": 0, "back": 0}
    fractions = []
    for person in _people("A"):
        lip = classes.to("lip", person.labels)
        ys, xs = np.nonzero(lip == LIP.classes.index("Left-arm"))
        kp = person.keypoints
        chains = {side: [KP.index(f"{side}_{j}") for j in ("Shoulder", "Elbow", "Wrist")] for side in "LR"}
        if len(xs) < 20 or not all(np.isfinite(kp[c, :2]).all() for c in chains.values()):
            continue
        pts = np.stack([xs, ys], 1).astype(float)
        dist = {side: np.minimum(_segment_distance(pts, kp[c[0], :2], kp[c[1], :2]),
                                 _segment_distance(pts, kp[c[1], :2], kp[c[2], :2])) for side, c in chains.items()}
        fractions.append(float((dist["L"] < dist["R"]).mean()))
        checked[person.view] += 1
    assert checked["front"] > 5 and checked["back"] > 2
    assert np.mean(fractions) > 0.95


def test_densepose_agrees_with_parsing():
    classes = synthetic_classes()
    head_parts = (23, 24)
    for person in _people("A", n=15):
        lip = classes.to("lip", person.labels)
        face = lip == LIP.classes.index("Face")
        if face.any():  # back views show no face
            on_head = np.isin(person.dp_index[face], head_parts + (1, 2))  # the neck belongs to the torso
            assert on_head.mean() > 0.95
        # No DensePose part on background-labelled pixels except where garments leave gaps.
        assert (person.dp_index[lip == 0] > 0).mean() < 0.05
        fg = person.dp_index > 0
        assert ((person.dp_uv[:, fg] >= 0) & (person.dp_uv[:, fg] <= 1)).all()
        assert set(np.unique(person.dp_index)) <= set(range(25))


def test_keypoints_visible_inside_and_missing_outside():
    for person in _people("A", n=30, size=96):
        kp = person.keypoints
        present = np.isfinite(kp[:, 0])
        h, w = person.labels.shape
        assert ((kp[present, 0] >= -0.5) & (kp[present, 0] < w - 0.5)).all()
        assert np.isin(kp[present, 2], [0.0, 1.0]).all()


def test_domains_differ_in_framing_and_appearance():
    a, b = _people("A", n=30), _people("B", n=30)
    truncated = lambda people: np.mean([np.isnan(p.keypoints[:, 0]).any() for p in people])  # noqa: E731
    brightness = lambda people: np.mean([p.image[p.labels == 0].mean() for p in people])  # noqa: E731
    assert truncated(a) > truncated(b) + 0.2  # A frames people closer: more joints cut off
    assert brightness(b) > brightness(a) + 10  # B's backgrounds are lighter
    assert a[0].image.shape[1] != b[0].image.shape[1]  # different aspect ratios


def test_colour_alone_does_not_parse_people():
    # A per-pixel lookup from quantised colour to the majority class, fitted on 50 images and
    # scored on 20 others, must stay far from solving the task: shape and context are needed.
    classes = synthetic_classes()
    people = _people("A", n=70, size=96)

    def codes(p):
        q = (p.image // 16).astype(np.int64)
        return q[..., 0] * 256 + q[..., 1] * 16 + q[..., 2]

    counts = np.zeros((4096, 20))
    for p in people[:50]:
        np.add.at(counts, (codes(p).ravel(), classes.to("lip", p.labels).ravel()), 1)
    lookup = counts.argmax(1)
    conf = np.zeros((20, 20))
    for p in people[50:]:
        np.add.at(conf, (classes.to("lip", p.labels).ravel(), lookup[codes(p)].ravel()), 1)
    iou = np.diag(conf) / (conf.sum(0) + conf.sum(1) - np.diag(conf) + 1e-9)
    assert iou[conf.sum(1) > 0].mean() < 0.2  # measured: about 0.05


def test_every_lip_class_occurs_in_a_larger_sample(tmp_path):
    generate(tmp_path, SynthSpec(num=120, domain="A", seed=1, size=64))
    reader = open_dataset(tmp_path, "train")
    seen = set()
    for i in range(len(reader)):
        seen |= set(reader[i].parsing.unique().tolist())
    assert seen == set(range(20)), sorted(set(range(20)) - seen)


def test_atr_format_uses_atr_classes(synth_atr):
    reader = open_dataset(synth_atr, "all")
    seen = set()
    for i in range(len(reader)):
        seen |= set(reader[i].parsing.unique().tolist())
    assert seen <= set(range(18))
    assert {label_space("atr").classes.index(c) for c in ("belt", "bag")} & seen


@pytest.mark.parametrize("bad", [{"num": 0}, {"size": 8}, {"domain": "Z"}, {"format": "coco"}])
def test_bad_specs_are_rejected(tmp_path, bad):
    with pytest.raises((ValueError, KeyError)):
        generate(tmp_path, SynthSpec(**{"num": 2, **bad}))


def test_densepose_left_parts_lie_on_the_persons_left():
    # Pixels of the parts named "left" have their centroid on the left-shoulder side of the
    # right-to-left shoulder axis, in front and back views alike.
    names = label_space("densepose").classes
    left = [i for i, n in enumerate(names) if "left" in n.lower()]
    right = [i for i, n in enumerate(names) if "right" in n.lower()]
    head_left, head_right = names.index("Head left"), names.index("Head right")
    votes, head_votes = [], []
    for person in _people("A", n=40):
        kp = person.keypoints
        ls, rs = kp[KP.index("L_Shoulder"), :2], kp[KP.index("R_Shoulder"), :2]
        if not (np.isfinite(ls).all() and np.isfinite(rs).all()):
            continue
        axis = ls - rs

        def centroid(parts):
            ys, xs = np.nonzero(np.isin(person.dp_index, parts))
            return np.array([xs.mean(), ys.mean()]) if len(xs) >= 5 else None

        pairs = [(centroid(left), centroid(right), votes), (centroid([head_left]), centroid([head_right]), head_votes)]
        for l_c, r_c, out in pairs:
            if l_c is not None and r_c is not None:
                out.append(float((l_c - r_c) @ axis) > 0)
    assert len(head_votes) > 20 and np.mean(head_votes) > 0.95
    assert np.mean(votes) > 0.9


def test_generation_never_overwrites_or_mixes_data(tmp_path):
    from spd.data.errors import DataError
    from spd.data.synthetic import SynthSpec, generate

    user = tmp_path / "mine"
    user.mkdir()
    (user / "train_id.txt").write_text("my ids\n")
    with pytest.raises(DataError, match="not empty and has no synthetic.yaml"):
        generate(user, SynthSpec(num=2, size=32))
    assert sorted(p.name for p in user.iterdir()) == ["train_id.txt"]

    root = tmp_path / "synth"
    manifest = generate(root, SynthSpec(num=3, size=32, seed=1))
    stamp = manifest.stat().st_mtime_ns
    assert generate(root, SynthSpec(num=3, size=32, seed=1)) == manifest and manifest.stat().st_mtime_ns == stamp
    with pytest.raises(DataError, match=r"another spec: num 3 \(wanted 4\)"):
        generate(root, SynthSpec(num=4, size=32, seed=1))

    def interrupted(n):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path / "cut", SynthSpec(num=3, size=32), progress=interrupted)
    assert not (tmp_path / "cut").exists() and not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_several_processes_write_the_same_bytes(tmp_path):
    """Images are rendered by worker processes on a machine with cores to spare (the synth_* configs'
    20,000 people took about 12 minutes in one process): every file is the same, byte for byte, as
    one process writes it, and the progress callback still counts every image."""
    from spd.data.synthetic.writer import default_workers

    spec = SynthSpec(num=24, domain="A", seed=5, size=64, val_fraction=0.25)
    counted = []
    generate(tmp_path / "one", spec, workers=1)
    generate(tmp_path / "three", spec, progress=counted.append, workers=3)
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    assert len(files) >= 3 * 24 and sum(counted) == 24
    assert files == sorted(p.relative_to(tmp_path / "three") for p in (tmp_path / "three").rglob("*") if p.is_file())
    differ = [f for f in files if (tmp_path / "one" / f).read_bytes() != (tmp_path / "three" / f).read_bytes()]
    assert not differ, differ[:3]
    assert default_workers(100) == 1 and default_workers(20_000) == len(os.sched_getaffinity(0))


def test_a_mount_point_is_generated_into_and_a_read_only_one_refused_first(tmp_path, monkeypatch):
    """An empty mounted disk or container volume cannot be renamed onto: the data used to be rendered
    in a sibling folder and then lost at the rename (EBUSY). Now they are written into it, the
    manifest last; a read-only one is refused before anything is rendered."""
    from spd.data.errors import DataError

    volume = tmp_path / "volume"
    volume.mkdir()
    real_ismount = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == volume or real_ismount(p))
    real_replace = os.replace

    def replace(src, dst):  # what renaming onto a mount point does
        if Path(dst) == volume:
            raise OSError(16, "Device or resource busy")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    spec = SynthSpec(num=6, domain="A", seed=1, size=48, val_fraction=0.5)
    assert generate(volume, spec) == volume / "synthetic.yaml"
    assert len(open_dataset(volume, "train")) == 3 and sorted(p.name for p in tmp_path.iterdir()) == ["volume"]
    assert generate(volume, spec) == volume / "synthetic.yaml"  # complete: reused
    readonly = tmp_path / "ro"
    readonly.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == readonly else real_access(p, mode))
    with pytest.raises(DataError, match="is not writable"):
        generate(readonly, spec)
    assert not any(readonly.iterdir())


def test_synth_again_on_complete_data_writes_nothing(tmp_path, monkeypatch, capsys):
    """A complete dataset on a read-only mount: `spd data synth` with the same spec used to fail
    rewriting its contact sheet."""
    import spd.cli.data as cli_data
    from spd.cli.main import main

    args = ["data", "synth", str(tmp_path / "d"), "--num", "6", "--size", "48", "--domain", "A"]
    assert main(args) == 0
    monkeypatch.setattr(cli_data, "contact_sheet", lambda *a: (_ for _ in ()).throw(OSError(30, "Read-only file system")))
    assert main(args) == 0 and "(already there)" in capsys.readouterr().out
