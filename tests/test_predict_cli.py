"""``spd predict`` on files, folders, globs and videos."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from predict_helpers import TINY, write_checkpoint
from spd.cli.main import main
from spd.labels.relabel import load_relabel


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "m.ckpt")


def _photos(root):
    rng = np.random.default_rng(0)
    (root / "sub").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(root / "a.jpg")
    Image.fromarray(rng.integers(0, 256, (25, 50), dtype=np.uint8)).save(root / "sub" / "gray.png")
    rgba = Image.fromarray(rng.integers(0, 256, (20, 20, 4), dtype=np.uint8), "RGBA")
    rgba.save(root / "sub" / "alpha.png")
    frames = [Image.new("P", (16, 24), i) for i in range(3)]
    frames[0].save(root / "anim.gif", save_all=True, append_images=frames[1:])
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: stored 30 x 20, shown 20 x 30
    Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(root / "rotated.jpg", exif=exif)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (root / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("not an input")


def test_predict_a_folder_reports_and_skips_unreadable_files(tmp_path, checkpoint, capsys):
    _photos(tmp_path / "in")
    (tmp_path / "in" / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")  # a dangling link is said, not hidden
    out = tmp_path / "out"
    # What a run killed while writing left (atomic_path's hidden temporary) is removed by the next one.
    (out / "sub").mkdir(parents=True)
    (out / "sub" / ".gray_parsing.k3x9_a0q.tmp.png").write_bytes(b"half a png")
    (out / "sub" / ".other.k3x9_a0q.tmp.png").write_bytes(b"not ours to remove")
    code = main(["predict", str(checkpoint), str(tmp_path / "in"), "--out", str(out), "--device", "cpu",
                 "--batch-size", "2", "--labels", "atr"])
    err = capsys.readouterr().err
    assert code == 1  # some inputs were skipped
    assert "broken.jpg" in err and "empty.png" in err and "notes.txt" not in err
    assert f"gone.jpg: a broken link (to {tmp_path / 'deleted.jpg'})" in err and "removed 1 temporary file" in err
    assert sorted(p.name for p in (out / "sub").glob(".*")) == [".other.k3x9_a0q.tmp.png"]
    (out / "sub" / ".other.k3x9_a0q.tmp.png").unlink()
    for name, size in (("a", (40, 30)), ("sub/gray", (25, 50)), ("sub/alpha", (20, 20)), ("anim", (24, 16)),
                       ("rotated", (30, 20))):
        parsing = Image.open(out / f"{name}_parsing.png")
        assert parsing.mode == "P" and parsing.size[::-1] == size
        labels = np.asarray(Image.open(out / f"{name}_labels.png"))
        lut = load_relabel("atr").lut
        assert np.array_equal(labels, lut[np.asarray(parsing)])  # ATR ids of the LIP prediction
        record = json.loads((out / f"{name}_keypoints.json").read_text())
        assert len(record["keypoints"]) == 16 * 3 and (record["height"], record["width"]) == size
        assert np.asarray(Image.open(out / f"{name}_iuv.png")).shape == (*size, 3)
        assert Image.open(out / f"{name}_overlay.jpg").width >= 2 * size[1]
    assert not list(out.rglob("*.tmp*"))


def test_outputs_are_not_overwritten_unless_asked(tmp_path, checkpoint, capsys):
    Image.new("RGB", (20, 30)).save(tmp_path / "p.png")
    args = ["predict", str(checkpoint), str(tmp_path / "p.png"), "--out", str(tmp_path / "out"), "--device", "cpu",
            "--outputs", "parsing,keypoints"]
    assert main(args) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p_keypoints.json", "p_parsing.png"]
    before = (tmp_path / "out" / "p_parsing.png").stat().st_mtime_ns
    assert main(args) == 2
    assert "p_parsing.png exists" in capsys.readouterr().err
    assert (tmp_path / "out" / "p_parsing.png").stat().st_mtime_ns == before
    assert main([*args, "--overwrite"]) == 0


def test_bad_requests_are_refused_before_any_work(tmp_path, checkpoint, capsys):
    parsing_only = write_checkpoint(tmp_path / "s.ckpt", [*TINY, "model.preset=cpu_s"])
    Image.new("RGB", (20, 30)).save(tmp_path / "p.png")
    cases = [([str(parsing_only), str(tmp_path / "p.png"), "--outputs", "keypoints"], "the model has no pose branch"),
             ([str(checkpoint), str(tmp_path / "p.png"), "--outputs", "halo"], "unknown output 'halo'"),
             ([str(checkpoint), str(tmp_path / "p.png"), "--labels", "lip"], "maps atr classes"),
             ([str(checkpoint), str(tmp_path / "p.png"), "--labels", str(tmp_path / "none.yaml")], "neither a built-in"),
             ([str(tmp_path / "p.png"), str(tmp_path / "p.png")], "p.png: not a checkpoint (neither the zip archive")]
    for args, message in cases:
        assert main(["predict", *args, "--out", str(tmp_path / "out"), "--device", "cpu"]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_globs_and_a_user_label_set(tmp_path, checkpoint, capsys):
    for name in ("x1.png", "x2.png", "y.png"):
        Image.new("RGB", (12, 12), "white").save(tmp_path / name)
    mine = tmp_path / "mine.yaml"
    lip = ["Background", "Hat", "Hair", "Glove", "Sunglasses", "Upper-clothes", "Dress", "Coat", "Socks", "Pants",
           "Jumpsuits", "Scarf", "Skirt", "Face", "Left-arm", "Right-arm", "Left-leg", "Right-leg", "Left-shoe",
           "Right-shoe"]
    body = {c: ("person" if c != "Background" else "bg") for c in lip}
    mine.write_text(json.dumps({"name": "mine", "source": "lip", "classes": ["bg", "person"], "map": body,
                                "palette": [[0, 0, 0], [255, 255, 255]]}))
    assert main(["predict", str(checkpoint), str(tmp_path / "x*.png"), "--out", str(tmp_path / "o"), "--device", "cpu",
                 "--labels", str(mine), "--outputs", "labels"]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["x1_labels.png", "x2_labels.png"]
    assert set(np.unique(np.asarray(Image.open(tmp_path / "o" / "x1_labels.png")))) <= {0, 1}
    del body["Hat"]
    mine.write_text(json.dumps({"source": "lip", "classes": ["bg", "person"], "map": body}))
    assert main(["predict", str(checkpoint), str(tmp_path / "y.png"), "--out", str(tmp_path / "o"), "--device", "cpu",
                 "--labels", str(mine)]) == 2
    assert "no target for lip class 'Hat'" in capsys.readouterr().err


def test_video_gives_an_overlay_video_and_keypoints_per_frame(tmp_path, checkpoint, capsys):
    av = pytest.importorskip("av")
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=12)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        for i in range(7):
            frame = av.VideoFrame.from_ndarray(np.full((32, 48, 3), 30 * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 100)
    out = tmp_path / "out"
    code = main(["predict", str(checkpoint), str(path), str(tmp_path / "bad.mp4"), "--out", str(out), "--device", "cpu",
                 "--batch-size", "3"])
    assert code == 1 and "bad.mp4" in capsys.readouterr().err
    record = json.loads((out / "clip_keypoints.json").read_text())
    assert record["fps"] == 12 and [f["frame"] for f in record["frames"]] == list(range(7))
    with av.open(str(out / "clip_overlay.mp4")) as video:
        stream = video.streams.video[0]
        frames = list(video.decode(stream))
        assert len(frames) == 7 and stream.average_rate == 12 and frames[0].width >= 96
    assert not (out / "bad_overlay.mp4").exists() and not list(out.glob(".*"))
    # Every image output also per frame, in a folder of its own; none for the broken video.
    for kind in ("parsing", "iuv"):
        assert sorted(p.name for p in (out / f"clip_{kind}").iterdir()) == [f"{i:06d}.png" for i in range(7)]
    assert not (out / "bad_parsing").exists()
    # --overwrite with a shorter video replaces a folder whole: no frame of the earlier run is left.
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=12)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        for packet in [*stream.encode(av.VideoFrame.from_ndarray(np.zeros((32, 48, 3), np.uint8), format="rgb24")),
                       *stream.encode()]:
            container.mux(packet)
    # A killed run's half-filled frame folder (a temporary name) goes too.
    (out / ".clip_iuv.k3x9_a0q.tmp").mkdir()
    (out / ".clip_iuv.k3x9_a0q.tmp" / "000000.png").write_bytes(b"half a frame")
    assert main(["predict", str(checkpoint), str(path), "--out", str(out), "--device", "cpu",
                 "--outputs", "iuv", "--overwrite"]) == 0
    assert [p.name for p in (out / "clip_iuv").iterdir()] == ["000000.png"] and not list(out.glob(".*"))


def test_mask_of_named_sets_and_classes_grown_by_pixels(tmp_path, checkpoint, capsys):
    from spd.labels.masks import parse_mask

    rng = np.random.default_rng(3)
    (tmp_path / "in").mkdir()
    Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(tmp_path / "in" / "a.png")
    out = tmp_path / "out"
    assert main(["predict", str(checkpoint), str(tmp_path / "in"), "--out", str(out), "--device", "cpu",
                 "--mask", "Upper-body,face,hair", "--mask-dilate", "2", "--outputs", "parsing,mask"]) == 0
    parsing = np.asarray(Image.open(out / "a_parsing.png"))
    mask = np.asarray(Image.open(out / "a_mask.png"))
    assert set(np.unique(mask)) <= {0, 255} and mask.shape == parsing.shape
    ids = parse_mask("upper-body,face,hair", "lip").classes
    assert ids == (2, 3, 5, 7, 13, 14, 15)  # hair, glove, upper-clothes, coat, face, left and right arm
    inside = np.isin(parsing, ids)
    assert inside.any() and not inside.all()
    # Grown by 2: every pixel within 2 rows and 2 columns of a class pixel, and no other.
    ys, xs = np.nonzero(inside)
    grid_y, grid_x = np.mgrid[:40, :30]
    near = np.zeros_like(inside)
    for y, x in zip(ys, xs):
        near |= (abs(grid_y - y) <= 2) & (abs(grid_x - x) <= 2)
    assert np.array_equal(mask == 255, near)
    for args, message in ((["--mask", "shirt"], "--mask 'shirt': neither a set (upper-body, lower-body, dresses, "
                                                "person) nor a class of the model's lip label space"),
                          (["--mask-dilate", "3"], "--mask-dilate grows the --mask: give --mask too"),
                          (["--outputs", "mask"], "--outputs mask needs --mask")):
        assert main(["predict", str(checkpoint), str(tmp_path / "in"), "--out", str(tmp_path / "x"), *args]) == 2
        assert message in capsys.readouterr().err


def test_every_mask_set_names_classes_of_every_parsing_space():
    from spd.labels import PARSING_SPACES
    from spd.labels.masks import mask_sets, parse_mask

    for name, by_space in mask_sets().items():
        assert set(by_space) == set(PARSING_SPACES), name
        for space, classes in by_space.items():
            assert len(parse_mask(name, space).classes) == len(classes), (name, space)
