"""DensePose R-CNN without detectron2, against detectron2 itself: fixtures/densepose_rcnn/golden.npz
was made by tools/densepose_reference.py (DefaultPredictor and apply_net.py dump's conversion) with
the random weights of densepose_golden.py, written as a model-zoo .pkl, which the test writes
again and loads with spd's reader."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from densepose_golden import DETECTIONS, FIXTURES, PHOTOS, SEED, UV_STEP, draw_weights, photo_paths
from spd.data.image_io import read_image
from spd.densepose_rcnn import DensePoseRCNN, load_detector
from spd.ops.state import WeightsError


def zoo_arrays() -> dict[str, np.ndarray]:
    shapes = {k: tuple(v.shape) for k, v in DensePoseRCNN().state_dict().items()}
    return draw_weights(shapes, SEED)


@pytest.fixture(scope="module")
def zoo_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("zoo") / "model_final_random.pkl"
    with open(path, "wb") as f:
        pickle.dump({"model": zoo_arrays(), "__author__": "test"}, f)
    return path


@pytest.fixture
def small_inputs(monkeypatch):
    """Photos resized to a short side of 256 px instead of 800: for tests of what the commands do
    with the detector's results (the numbers are checked at detectron2's size against its own)."""
    import spd.densepose_rcnn.detector as detector

    monkeypatch.setattr(detector, "MIN_SIZE", 256)
    monkeypatch.setattr(detector, "MAX_SIZE", 448)


@pytest.fixture(scope="module")
def golden():
    with np.load(FIXTURES / "golden.npz") as f:
        return dict(f)


def test_boxes_scores_parts_and_uv_equal_detectron2s(zoo_file, golden):
    model = load_detector(zoo_file, detections_per_image=DETECTIONS)
    assert model.config.depth == 50 and model.config.decoder
    for name, path in zip(PHOTOS, photo_paths()):
        found = model.detect(read_image(path))
        boxes, scores = golden[f"{name}/boxes"], golden[f"{name}/scores"]
        assert len(found.boxes) == len(boxes) == DETECTIONS, name
        np.testing.assert_allclose(found.boxes.numpy(), boxes, atol=1e-3, rtol=0)
        np.testing.assert_allclose(found.scores.numpy(), scores, atol=1e-5, rtol=0)
        for i, chart in enumerate(found.charts):
            labels = golden[f"{name}/{i}/labels"]
            assert chart.labels.shape == labels.shape, (name, i)
            same = chart.labels.numpy() == labels
            assert same.mean() >= 0.999, (name, i, same.mean())
            assert len(np.unique(labels)) >= 10  # a chart with many parts, not one label
            uv = chart.uv[:, ::UV_STEP, ::UV_STEP].numpy()
            agree = same[::UV_STEP, ::UV_STEP]
            np.testing.assert_allclose(uv[:, agree], golden[f"{name}/{i}/uv"][:, agree], atol=1e-4, rtol=0)


def test_wrong_files_are_refused_naming_what_they_are(tmp_path, zoo_file):
    def write(name, obj):
        with open(tmp_path / name, "wb") as f:
            pickle.dump(obj, f)
        return tmp_path / name

    arrays = zoo_arrays()
    mask_rcnn = {k: v for k, v in arrays.items() if not k.startswith("roi_heads.densepose")}
    mask_rcnn["roi_heads.mask_head.mask_fcn1.weight"] = np.zeros((256, 256, 3, 3), np.float32)
    with pytest.raises(WeightsError, match=r"mask.pkl: a Mask R-CNN model \(no roi_heads.densepose_predictor"):
        load_detector(write("mask.pkl", {"model": mask_rcnn}))
    cse = {**arrays, "roi_heads.embedder.smpl_27554.embedding": np.zeros((27554, 16), np.float32)}
    with pytest.raises(WeightsError, match="cse.pkl: a DensePose CSE model"):
        load_detector(write("cse.pkl", {"model": cse}))
    partial = {k: v for k, v in arrays.items() if not k.startswith("roi_heads.densepose_head.body_conv_fcn8")}
    with pytest.raises(WeightsError, match=r"2 missing \(roi_heads.densepose_head.body_conv_fcn8.bias"):
        load_detector(write("partial.pkl", {"model": partial}))
    del arrays, mask_rcnn, cse, partial

    class Payload:
        def __reduce__(self):
            return (print, ("this must not run",))

    with pytest.raises(WeightsError, match="code.pkl: not a model-zoo file of numpy arrays: it holds builtins.print"):
        load_detector(write("code.pkl", {"model": {"w": Payload()}}))
    class Pointers:  # numpy's own ndarray called on the file's bytes: an object array of forged pointers
        def __reduce__(self):
            return (np.ndarray, ((1,), np.dtype("O"), b"A" * 8))

    with pytest.raises(WeightsError, match="pointers.pkl: not a model-zoo file of numeric arrays"):
        load_detector(write("pointers.pkl", {"model": {"w": Pointers()}}))
    with pytest.raises(WeightsError, match="objects.pkl: not a model-zoo file of numeric arrays"):
        load_detector(write("objects.pkl", {"model": {"w": np.array([1, "a"], dtype=object)}}))
    arrays = zoo_arrays()
    wc1m = {**arrays, "roi_heads.densepose_predictor.fine_segm_confidence_lowres.weight": np.zeros((512, 1, 4, 4), np.float32)}
    with pytest.raises(WeightsError, match="wc1m.pkl: a model with segmentation confidences"):
        load_detector(write("wc1m.pkl", {"model": wc1m}))
    from spd.densepose_rcnn.boxes import cell_anchors

    # Older files carry the anchors: the generated ones are accepted, others refused.
    old = {**arrays, **{f"proposal_generator.anchor_generator.cell_anchors.{i}": cell_anchors(s).numpy()
                        for i, s in enumerate((32, 64, 128, 256, 512))}}
    assert load_detector(write("old.pkl", {"model": old})).config.depth == 50
    old["proposal_generator.anchor_generator.cell_anchors.2"] = old["proposal_generator.anchor_generator.cell_anchors.2"] * 2
    with pytest.raises(WeightsError, match="cell_anchors.2' holds other anchors"):
        load_detector(write("old2.pkl", {"model": old}))
    del arrays, wc1m, old
    (tmp_path / "cut.pkl").write_bytes(zoo_file.read_bytes()[:1000])
    with pytest.raises(WeightsError, match=r"cut.pkl: not a detectron2 model-zoo .pkl \(not a pickle, or damaged: "
                                           "pickle data was truncated"):
        load_detector(tmp_path / "cut.pkl")
    torch.save({"model": {}}, tmp_path / "torch.pth")
    with pytest.raises(WeightsError, match="torch.pth: not a detectron2 model-zoo .pkl"):
        load_detector(tmp_path / "torch.pth")


def test_spd_data_densepose_writes_the_top_persons_iuv_resumes_and_shards(tmp_path, zoo_file, golden, capsys):
    from spd.cli.main import main
    from spd.data.image_io import read_iuv

    images = tmp_path / "images"
    images.mkdir()
    for path in photo_paths():
        (images / path.name).write_bytes(path.read_bytes())
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    out = tmp_path / "iuv"
    # The fixture's four detections per image are DETECTIONS; the command keeps its default (100),
    # which does not change the top-scoring one.
    assert main(["data", "densepose", str(images), "--weights", str(zoo_file), "--out", str(out), "--device", "cpu"]) == 1
    printed = capsys.readouterr()
    assert "3 IUV maps written" in printed.out and "1 failed" in printed.out and "broken.jpg" in printed.err
    for name in PHOTOS:
        index, uv = read_iuv(out / f"{name.rsplit('.', 1)[0]}.png")
        x0, y0 = (int(v) for v in golden[f"{name}/boxes"][0][:2])
        labels = golden[f"{name}/0/labels"]
        h, w = min(labels.shape[0], index.shape[0] - y0), min(labels.shape[1], index.shape[1] - x0)
        inside = index[y0:y0 + h, x0:x0 + w].numpy()
        assert (inside == labels[:h, :w]).mean() >= 0.999, name
        assert int((index > 0).sum()) == int((inside > 0).sum())  # nothing outside the top box
    # A second run finds everything done and predicts nothing.
    assert main(["data", "densepose", str(images), "--weights", str(zoo_file), "--out", str(out), "--device", "cpu"]) == 1
    assert "0 IUV maps written" in capsys.readouterr().out
    # Shard 1 of 2 takes every second image from the second (sorted: broken, landscape, small, three);
    # at a score no detection reaches, it is listed as having no person, and not tried again.
    other = tmp_path / "shard"
    for _ in range(2):
        assert main(["data", "densepose", str(images), "--weights", str(zoo_file), "--out", str(other),
                     "--shard", "1/2", "--min-score", "0.999"]) == 0
    assert (other / "no_detection.1-of-2.txt").read_text() == "landscape\nthree\n"
    assert "0 IUV maps written" in capsys.readouterr().out.splitlines()[-1]
    assert main(["data", "densepose", str(images), "--weights", str(zoo_file), "--out", str(other), "--shard", "2/2"]) == 2
    # Other settings into the same folder are refused: a folder never mixes them.
    assert main(["data", "densepose", str(images), "--weights", str(zoo_file), "--out", str(other), "--shard", "0/2",
                 "--min-score", "0.5"]) == 2
    assert "made with other settings (min_score 0.999 -> 0.5)" in capsys.readouterr().err


def test_pseudo_labels_of_a_dataset_pass_spd_data_check_and_reach_training(tmp_path, zoo_file, capsys, small_inputs):
    """LIP's three commands on synthetic data: check, densepose, then what training reads."""
    from spd.cli.main import main
    from spd.data.detect import open_dataset
    from spd.data.image_io import read_iuv
    from spd.data.synthetic import SynthSpec, generate

    root = tmp_path / "LIP"
    generate(root, SynthSpec(num=3, size=48, format="lip", val_fraction=0.34))
    iuv = tmp_path / "LIP_iuv"
    for split in ("train", "val"):
        assert main(["data", "densepose", str(root / "TrainVal_images" / f"{split}_images"), "--weights", str(zoo_file),
                     "--out", str(iuv), "--device", "cpu"]) == 0
    assert sorted(p.name for p in iuv.glob("*.png")) == [f"synA_00000{i}.png" for i in range(3)]
    # --batch-size: images of one input shape (all three here) through the backbone together, and
    # each file what the image alone gives.
    batched = tmp_path / "LIP_iuv_batched"
    assert main(["data", "densepose", str(root / "TrainVal_images" / "train_images"), "--weights", str(zoo_file),
                 "--out", str(batched), "--device", "cpu", "--batch-size", "2"]) == 0
    for path in batched.glob("*.png"):
        assert path.read_bytes() == (iuv / path.name).read_bytes(), path.name
    assert len(list(batched.glob("*.png"))) == 2
    assert main(["data", "check", str(root), "--densepose", str(iuv)]) == 0, capsys.readouterr().out
    reader = open_dataset(root, "train", densepose_dir=iuv)
    sample = reader[0]
    index, uv = read_iuv(iuv / f"{sample.id}.png")
    assert sample.has_densepose and torch.equal(sample.dp_index, index) and int((index > 0).sum()) > 0


def test_every_person_is_pasted_the_more_confident_on_top():
    from spd.densepose_rcnn.detector import ChartResult, Detections
    from spd.densepose_rcnn.pseudo_labels import iuv_of

    first = ChartResult(torch.full((4, 4), 3, dtype=torch.long), torch.full((2, 4, 4), 0.25))
    second = ChartResult(torch.full((4, 6), 7, dtype=torch.long), torch.full((2, 4, 6), 0.75))
    second.labels[:, 0] = 0  # background inside its box: the person below shows through
    found = Detections(torch.tensor([[2.0, 1.0, 6.0, 5.0], [0.0, 2.0, 6.0, 6.0]]), torch.tensor([0.9, 0.6]),
                       [first, second])
    index, uv = iuv_of(found, (8, 8), people=None)
    assert (index[1:5, 2:6] == 3).all() and np.allclose(uv[:, 1:5, 2:6], 0.25)  # the more confident, on top
    assert (index[5, 1:6] == 7).all() and index[5, 0] == 0 and np.allclose(uv[:, 5, 1:6], 0.75)
    only_top, _ = iuv_of(found, (8, 8), people=1)
    assert (only_top == np.where(index == 3, 3, 0)).all()


def test_spd_predict_with_a_zoo_file_writes_detectron2s_iuv_of_photos_and_videos(tmp_path, zoo_file, capsys,
                                                                                  small_inputs):
    """``spd predict FILE.pkl``: NAME_iuv.png as ``spd data densepose`` writes it (one function
    composes both), the overlay, a video's per-frame IUV files; the Python API and the web page
    give the same.
    (The top person only: DensePose of every detection costs seconds more per image here.)"""
    av = pytest.importorskip("av")
    from spd.cli.main import main
    from spd.data.image_io import read_iuv, write_iuv
    from spd.predict import DensePosePredictor

    # One photo (the detector costs seconds per image on a CPU), several people in it.
    photos = tmp_path / "photos"
    photos.mkdir()
    name = "three.jpg"
    (photos / name).write_bytes((FIXTURES / name).read_bytes())
    out = tmp_path / "out"
    assert main(["predict", str(zoo_file), str(photos), "--out", str(out), "--device", "cpu"]) == 0
    index, uv = read_iuv(out / "three_iuv.png")
    assert (out / "three_overlay.jpg").is_file()
    # The Python API: the same IUV, which is spd data densepose's file (both compose it with
    # iuv_of, whose every-person rule test_every_person_is_pasted_... checks).
    predictor = DensePosePredictor.from_zoo(zoo_file, device="cpu")
    result = predictor(str(photos / name))
    assert torch.equal(result.dp_index, index) and result.parsing is None and result.protocol["people"] == 1
    write_iuv(tmp_path / "api.png", result.dp_index, result.dp_uv)
    assert (tmp_path / "api.png").read_bytes() == (out / "three_iuv.png").read_bytes() and int((index > 0).sum()) > 0
    assert DensePosePredictor(predictor.model, "cpu", people=None).protocol["people"] == "all"
    # The web page (spd serve FILE.pkl): the DensePose panel and the same IUV file to download.
    from spd.serve import DemoApp

    app = DemoApp(predictor, predictor.description)
    reply = app.predict((photos / name).read_bytes(), name)
    assert set(reply["panels"]) == {"densepose"} and reply["legend"] is None
    assert reply["downloads"] == {"DensePose (IUV PNG)": f"result/{reply['id']}/image_iuv.png"}
    served = tmp_path / "served_iuv.png"
    served.write_bytes(app.result_file(reply["id"], "image_iuv.png")[1])
    assert torch.equal(read_iuv(served)[0], index)
    # A video: the overlay video and one IUV file per frame.
    frame = np.asarray(read_image(FIXTURES / "small.jpg").permute(1, 2, 0))
    clip = tmp_path / "clip.mp4"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = frame.shape[1], frame.shape[0], "yuv420p"
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    assert main(["predict", str(zoo_file), str(clip), "--out", str(out), "--device", "cpu"]) == 0
    assert [p.name for p in (out / "clip_iuv").iterdir()] == ["000000.png"]
    index, _ = read_iuv(out / "clip_iuv" / "000000.png")
    assert index.shape == frame.shape[:2] and int((index > 0).sum()) > 0
    assert (out / "clip_overlay.mp4").is_file()
    # Flags of the other kind of model are errors naming them.
    capsys.readouterr()
    assert main(["predict", str(zoo_file), str(photos), "--out", str(tmp_path / "x"), "--mask", "upper-body"]) == 2
    assert "predicts no parsing" in capsys.readouterr().err
    assert main(["predict", str(zoo_file), str(photos), "--out", str(tmp_path / "x"), "--scales", "1", "0.5"]) == 2
    assert "--scales: test-time settings apply to SPD models" in capsys.readouterr().err
    assert main(["predict", str(zoo_file), str(photos), "--out", str(tmp_path / "x"), "--precision", "bf16"]) == 2
    assert "--precision: test-time settings apply to SPD models" in capsys.readouterr().err


def test_batches_group_images_of_one_input_shape_and_a_failed_batch_runs_image_by_image(tmp_path, monkeypatch):
    """spd data densepose --batch-size: which images go through the backbone together (a fake
    detector records it), the bound on waiting images, and a failure named for its image."""
    from PIL import Image

    import spd.densepose_rcnn.pseudo_labels as pseudo
    from spd.densepose_rcnn.detector import Detections, DetectorConfig, input_shape
    from spd.densepose_rcnn.pseudo_labels import densepose_pseudo_labels

    images = tmp_path / "images"
    images.mkdir()
    sizes = {"a": (120, 80), "b": (80, 120), "c": (120, 80), "d": (80, 120), "e": (120, 80), "f": (121, 80),
             "bad": (120, 80)}
    for key, (w, h) in sizes.items():
        Image.new("RGB", (w, h), (80, 90, 100)).save(images / f"{key}.png")
    (images / "broken.jpg").write_bytes(b"not an image")
    assert input_shape(80, 120) == input_shape(80, 121)  # the same network input: they may batch

    class Fake:
        config = DetectorConfig()
        batches = []

        def detect_batch(self, group, charts=None):
            self.batches.append(sorted(int(img[0, 0, 0]) for img in group))
            if any(int(img[0, 0, 0]) == 1 for img in group):
                raise RuntimeError("out of memory")
            return [Detections(torch.zeros(0, 4), torch.zeros(0)) for _ in group]

    # Each image carries its index in its first pixel, so the fake can say which it was given.
    order = sorted(p.stem for p in images.iterdir() if p.suffix == ".png")
    real_read = pseudo.read_image

    def read(path):
        image = real_read(path).clone()
        image[0, 0, 0] = 1 if path.stem == "bad" else 10 + order.index(path.stem)
        return image

    monkeypatch.setattr(pseudo, "read_image", read)
    ticks = []
    fake = Fake()
    result = densepose_pseudo_labels(fake, images, tmp_path / "out", batch_size=2, tick=ticks.append)
    index = {key: 10 + order.index(key) for key in order if key != "bad"}
    # Sorted ids: a, b, bad, broken, c, d, e, f. a and bad share a shape: a batch, which fails and
    # is run again image by image; b and d, then c and e, then f (121 x 80: the shape of 120 x 80) alone.
    assert fake.batches == [sorted([index["a"], 1]), [index["a"]], [1], sorted([index["b"], index["d"]]),
                            sorted([index["c"], index["e"]]), [index["f"]]]
    assert [path for path, _ in result.failed] == [str(images / "bad.png"), str(images / "broken.jpg")]
    assert "out of memory" in result.failed[0][1] and sorted(result.no_person) == ["a", "b", "c", "d", "e", "f"]
    assert sum(ticks) == 8  # every image once
