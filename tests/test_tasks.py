"""A task is one module: a fourth task, defined here and nowhere under src/, trains, predicts,
evaluates, exports to ONNX and writes its output. The task is CE2P's body-boundary map: the
pixels whose 3x3 neighbourhood holds more than one parsing class."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from spd.config import load_config
from spd.data.detect import open_dataset
from spd.data.image_io import write_label
from spd.evaluation.evaluate import evaluate_model
from spd.export.formats import export_model, run_exported
from spd.inference import EvalConfig
from spd.labels import IGNORE_INDEX
from spd.losses import LossConfig, MultiTaskLoss, pixel_cross_entropy
from spd.metrics import ConfusionMatrix
from spd.model import SPDNet, preset
from spd.predict import Predictor
from spd.predict.writers import OutputSpec, choose_kinds, output_paths, write_outputs
from spd.tasks import Column, Output, Task, TaskMetric, Writer, register, unregister
from spd.tasks.base import argmax_labels
from spd.tasks.grids import resize_nearest
from spd.training.train import train
from spd.weights import load_checkpoint


def boundary(labels: torch.Tensor) -> torch.Tensor:
    """[B, H, W] class ids -> uint8 [B, H, W]: 1 where the 3x3 neighbourhood holds another class,
    255 where the label is unknown (255)."""
    x = labels.float()[:, None]
    high = F.max_pool2d(x, 3, 1, 1)
    low = -F.max_pool2d(-x, 3, 1, 1)
    edge = (high != low).to(torch.uint8)[:, 0]
    return torch.where(labels == IGNORE_INDEX, IGNORE_INDEX, edge).to(torch.uint8)


class EdgeMetric(TaskMetric):
    def __init__(self):
        self.confusion = ConfusionMatrix(2)
        self.states = (self.confusion,)

    def update(self, prediction, targets, here):
        if "edge" in prediction.extra and bool(targets["has_parsing"]):
            truth = boundary(here(targets["parsing"])[None].long())[0].long()
            self.confusion.update(here(prediction.extra["edge"]).long(), truth)

    def count_tensors(self):
        return [self.confusion.conf]

    def result(self):
        if not self.counted():
            return None
        return {"iou": round(100.0 * float(self.confusion.compute().iou[1]), 2)}


def write_edge(path, prediction, spec):
    write_label(path, prediction.extra["edge"], np.array([[0, 0, 0], [255, 255, 255]], dtype=np.uint8))


class Edge(Task):
    name = "edge"
    outputs = (Output("edge", "mean", "[B, 2, h, w] body-boundary logits"),)
    terms = ("edge",)
    writers = {"edge": Writer("_edge.png", write_edge)}
    columns = (Column("edge IoU", ("iou",)),)

    def channels(self, model_config):
        return 2

    def targets(self, batch, size, loss_config):
        edge = boundary(batch["parsing"].long())
        edge = edge if size is None else resize_nearest(edge, size, loss_config.resize)
        return {"edge": torch.where(batch["has_parsing"][:, None, None], edge.long(), IGNORE_INDEX)}

    def loss(self, outputs, targets, loss_config, weights):
        logits = outputs["edge"]
        return {"edge": pixel_cross_entropy(logits, targets(tuple(logits.shape[-2:]))["edge"])}

    def flip_permutation(self, output, model_config):
        return (0, 1)  # a boundary stays a boundary in the mirror

    def decode(self, maps, protocol, return_probs):
        return {"edge": argmax_labels(maps["edge"])}

    def metric(self, scoring):
        return EdgeMetric()

    def markdown(self, result):
        return ["", f"body boundary IoU: {result['iou']}"]

    def logged(self, result):
        return {"val/edge_iou": result["iou"]}


@pytest.fixture
def edge_task():
    task = register(Edge())
    yield task
    unregister("edge")


TASKS = "model.tasks=[parsing, edge]"
FEEDS = "model.feeds={parsing: [edge], edge: [parsing]}"


def test_the_boundary_target_marks_class_changes():
    labels = torch.zeros(1, 5, 6, dtype=torch.long)
    labels[0, :, 3:] = 2
    labels[0, 0, 0] = IGNORE_INDEX
    edge = boundary(labels)[0]
    assert edge[:, 2:4].eq(1).all() and edge[2:, :2].eq(0).all() and edge[:, 5].eq(0).all()
    assert int(edge[0, 0]) == IGNORE_INDEX


def test_registering_checks_names_and_an_unknown_task_names_the_known_ones(edge_task):
    with pytest.raises(ValueError, match="registered already"):
        register(Edge())
    clash = type("Clash", (Edge,), {"name": "clash"})()
    with pytest.raises(ValueError, match="belong to another task"):
        register(clash)
    with pytest.raises(ValueError, match="built-in"):
        unregister("parsing")
    with pytest.raises(ValueError, match="each must be one of parsing, pose, densepose, edge"):
        preset("cpu_s", tasks=("parsing", "edges"), feeds={})


def test_the_fourth_task_learns_on_one_batch(edge_task):
    """Its head, targets and loss fit together: 30 steps on one batch bring its term down."""
    torch.manual_seed(0)
    model = SPDNet(preset("cpu_s", tasks=("parsing", "edge"), feeds={"parsing": ("edge",), "edge": ("parsing",)}))
    labels = torch.zeros(2, 64, 64, dtype=torch.uint8)
    labels[:, 16:48, 20:44] = 5
    images = (labels[:, None].expand(-1, 3, -1, -1) * 40).to(torch.uint8)
    batch = {"parsing": labels, "has_parsing": torch.tensor([True, True])}
    loss = MultiTaskLoss(LossConfig(), tasks=model.config.tasks)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    terms = []
    for _ in range(30):
        out = loss(model(model.normalise(images)), batch)
        optimiser.zero_grad()
        out.total.backward()
        optimiser.step()
        terms.append(float(out.terms["edge"]))
    assert set(out.terms) == {"parsing", "edge"}
    assert terms[-1] < 0.5 * terms[0], terms


@pytest.mark.slow
def test_a_model_with_a_fourth_task_trains_predicts_evaluates_exports_and_writes(edge_task, tmp_path, synth_lip):
    overrides = [f"data.root={synth_lip}", "model.preset=cpu_s", TASKS, FEEDS, "model.fpn.decoder_width=16",
                 "model.fpn.head_width=16", "augment.size=[64, 48]", "augment.fit=true", "data.batch_size=6",
                 "data.num_workers=0", "train.max_epochs=1", f"train.out_dir={tmp_path / 'runs'}",
                 "train.log_every_n_steps=1", "eval.input_size=[64, 48]"]
    config, _ = load_config(None, overrides)
    result = train(config, device="cpu", progress=False)
    # 12 training images in batches of 6: 2 steps, then validation
    assert result.global_step == 2 and "val/edge_iou" in result.metrics and "train/edge" in result.metrics
    loaded = load_checkpoint(result.last_checkpoint, "cpu")
    model, settings = loaded.model, loaded.protocol
    assert model.config.tasks == ("parsing", "edge")

    # predict and write
    photo = next(synth_lip.rglob("*.jpg"))
    image = np.asarray(Image.open(photo).convert("RGB"))
    predictor = Predictor(model, settings, device="cpu")
    prediction = predictor(image)
    assert prediction.extra["edge"].shape == image.shape[:2] and prediction.extra["edge"].dtype == torch.uint8
    kinds = choose_kinds(None, model.config.tasks, None)
    assert kinds == ("parsing", "edge", "overlay")
    paths = output_paths(tmp_path / "out", "photo", kinds)
    (tmp_path / "out").mkdir()
    write_outputs(prediction, torch.from_numpy(image).permute(2, 0, 1), paths, OutputSpec(kinds, "lip"))
    written = np.asarray(Image.open(paths["edge"]))
    assert np.array_equal(written, prediction.extra["edge"].numpy())

    # the web page offers its file too
    from spd.serve.app import DemoApp

    app = DemoApp(predictor, "edge model")
    reply = app.predict(photo.read_bytes(), photo.name)
    assert reply["downloads"]["edge"].endswith("image_edge.png") and set(reply["downloads"]) == {"parsing (class ids)", "edge"}

    # evaluate
    scores = evaluate_model(model, open_dataset(synth_lip, "val"), settings, num_workers=0)
    assert 0 <= scores.edge["iou"] <= 100 and scores.parsing["miou"] is not None
    assert "body boundary IoU" in scores.markdown() and scores.to_json()["edge"] == scores.edge

    # export
    onnx = tmp_path / "model.onnx"
    report = export_model(model, settings, "onnx", onnx)
    assert report["max_abs_diff"] < 1e-3
    outputs = run_exported(onnx, "onnx", torch.randint(0, 255, (1, 3, 64, 48), dtype=torch.uint8))
    assert [tuple(o.shape[:2]) for o in outputs] == [(1, 20), (1, 2)]
    import onnxruntime

    meta = onnxruntime.InferenceSession(str(onnx)).get_modelmeta().custom_metadata_map
    assert json.loads(meta["outputs"]) == {"parsing": "[B, C, h, w] parsing logits (C classes of the label space)",
                                           "edge": "[B, 2, h, w] body-boundary logits"}


def test_a_registered_tasks_weight_comes_from_loss_weights(edge_task):
    tasks = ("parsing", "edge")
    assert MultiTaskLoss(LossConfig(parsing=0.5), tasks=tasks).fixed_task_weights() == {"parsing": 0.5, "edge": 1.0}
    assert MultiTaskLoss(LossConfig(weights={"edge": 2.0}), tasks=tasks).fixed_task_weights()["edge"] == 2.0
    with pytest.raises(ValueError, match=r"loss.weights names \['egde'\], which are not tasks of this model"):
        MultiTaskLoss(LossConfig(weights={"egde": 2.0}), tasks=tasks)
    with pytest.raises(ValueError, match="give the weight of pose as loss.pose"):
        LossConfig(weights={"pose": 2.0})
