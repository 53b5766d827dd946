"""JPPNet's official graph, rebuilt in TensorFlow (tf.compat.v1) from the authors' release, to check
that SPD's ``jppnet`` preset and ``spd convert jppnet-tf`` compute the same function.

It draws random weights (tests/jppnet_golden.py), runs the graph on a small input and writes:
  OUT/jppnet.ckpt.*       a real TensorFlow checkpoint with the official variable names
  OUT/golden.npz          every stage's parsing and pose output at every scale and fused (NCHW)
  OUT/variables.txt       the graph's variables, "name d0,d1,..." per line
  OUT/small.ckpt.*        a tiny TensorFlow checkpoint (a few dtypes and shapes) for reader tests
The committed tests/fixtures/jppnet_golden.npz, jppnet_tf_variables.txt and tf_small.ckpt.* were made
with this script:

    pip install tensorflow-cpu==2.21.0 numpy
    python tools/jppnet_tf_graph.py --out /tmp/jppnet_tf

Needs TensorFlow; SPD itself does not. Scopes, layer order, strides, dilations, padding, the
batch-norm epsilon and the multi-scale resizes follow the official model and training script.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from jppnet_golden import SEED, draw_weights, golden_input  # noqa: E402

tf1 = tf.compat.v1
N_CLASSES, N_JOINTS = 20, 16
SCALES = (1.0, 0.75, 0.5)
# (stage name, blocks, bottleneck width, output width, stride of the first block, dilation)
STAGES = (("2", 3, 64, 256, 1, 1), ("3", 4, 128, 512, 2, 1), ("4", 23, 256, 1024, 1, 2), ("5", 3, 512, 2048, 1, 4))


def block_names(stage: str, blocks: int) -> list[str]:
    """res2a, res2b, res2c; res3a, res3b1..b3; res4a, res4b1..b22; res5a, res5b, res5c."""
    if blocks <= 3:
        return [f"{stage}{c}" for c in "abc"[:blocks]]
    return [f"{stage}a"] + [f"{stage}b{i}" for i in range(1, blocks)]


def conv(x, scope, k, cout, stride=1, rate=1, bias=True, relu=False, kernel="weights", bias_name="biases"):
    with tf1.variable_scope(scope):
        w = tf1.get_variable(kernel, [k, k, int(x.shape[-1]), cout])
        y = (tf1.nn.atrous_conv2d(x, w, rate, padding="SAME") if rate > 1
             else tf1.nn.conv2d(x, w, [1, stride, stride, 1], padding="SAME"))
        if bias:
            y = tf1.nn.bias_add(y, tf1.get_variable(bias_name, [cout]))
        return tf1.nn.relu(y) if relu else y


def head_conv(x, scope, k, cout, rate=1, relu=True):
    """The official ``conv2d`` / ``atrous_conv2d`` helpers: variables ``w`` and ``b``."""
    return conv(x, scope, k, cout, rate=rate, relu=relu, kernel="w", bias_name="b")


def batch_norm(x, scope, relu):
    with tf1.variable_scope(scope):
        c = int(x.shape[-1])
        beta, gamma = tf1.get_variable("beta", [c]), tf1.get_variable("gamma", [c])
        mean = tf1.get_variable("moving_mean", [c], trainable=False)
        var = tf1.get_variable("moving_variance", [c], trainable=False)
        y = tf1.nn.fused_batch_norm(x, gamma, beta, mean, var, epsilon=0.001, is_training=False)[0]
        return tf1.nn.relu(y) if relu else y


def backbone(x):
    """-> (res4b22_relu, res5c_relu)."""
    x = batch_norm(conv(x, "conv1", 7, 64, stride=2, bias=False), "bn_conv1", relu=True)
    x = tf1.nn.max_pool(x, [1, 3, 3, 1], [1, 2, 2, 1], padding="SAME")
    features = {}
    for stage, blocks, mid, out, stride, rate in STAGES:
        for i, name in enumerate(block_names(stage, blocks)):
            s = stride if i == 0 else 1
            shortcut = x
            if i == 0:
                shortcut = batch_norm(conv(x, f"res{name}_branch1", 1, out, stride=s, bias=False), f"bn{name}_branch1", False)
            y = batch_norm(conv(x, f"res{name}_branch2a", 1, mid, stride=s, bias=False), f"bn{name}_branch2a", True)
            y = batch_norm(conv(y, f"res{name}_branch2b", 3, mid, rate=rate, bias=False), f"bn{name}_branch2b", True)
            y = batch_norm(conv(y, f"res{name}_branch2c", 1, out, bias=False), f"bn{name}_branch2c", False)
            x = tf1.nn.relu(shortcut + y)
        features[stage] = x
    return features["4"], features["5"]


def aspp(x, names, rates=(6, 12, 18, 24), head=False):
    make = head_conv if head else conv
    return tf1.add_n([make(x, n, 3, N_CLASSES, rate=r, relu=False) for n, r in zip(names, rates)])


def pose_net(res4):
    with tf1.variable_scope("fc1_pose"):
        x = res4
        for i, c in enumerate((512, 512, 256, 256, 256, 256), 1):
            x = head_conv(x, f"pose_conv{i}", 3, c)
        feature = x
        x = head_conv(x, "pose_conv7", 1, 512)
        return head_conv(x, "pose_conv8", 1, N_JOINTS, relu=False), feature


def refine(task, own, other, feature, scope):
    """pose_refine / parsing_refine: remap both previous outputs, concat (own first), trunk."""
    prefix = "" if task == "pose" else "parsing_"
    with tf1.variable_scope(scope):
        pose_prev, parsing_prev = (own, other) if task == "pose" else (other, own)
        pose_r = head_conv(pose_prev, "pose_remap", 1, 128)
        parsing_r = head_conv(parsing_prev, "parsing_remap", 1, 128)
        x = tf1.concat([pose_r, parsing_r, feature] if task == "pose" else [parsing_r, pose_r, feature], 3)
        for i, (k, c) in enumerate(((3, 512), (5, 256), (7, 256), (9, 256)), 1):
            x = head_conv(x, f"{prefix}conv{i}", k, c)
        new_feature = x
        x = head_conv(x, f"{prefix}conv5", 1, 256)
        if task == "pose":
            return head_conv(x, "conv6", 1, N_JOINTS, relu=False), new_feature
        return aspp(x, [f"parsing_human{i}" for i in range(1, 5)], head=True), new_feature


def jppnet(image):
    """One scale: stage -> (parsing, pose)."""
    res4, res5 = backbone(image)
    s1 = aspp(res5, [f"fc1_human_c{i}" for i in range(4)])
    fs1 = conv(conv(res5, "res5d_branch2a_parsing", 3, 512, relu=True), "res5d_branch2b_parsing", 3, 256, relu=True)
    p1, fp1 = pose_net(res4)
    p2, fp2 = refine("pose", p1, s1, fp1, "fc2_pose")
    s2, fs2 = refine("parsing", s1, p1, fs1, "fc2_parsing")
    s3, _ = refine("parsing", s2, p2, fs2, "fc3_parsing")
    p3, _ = refine("pose", p2, s2, fp2, "fc3_pose")
    return [(s1, p1), (s2, p2), (s3, p3)]


def write_small_checkpoint(prefix: Path) -> None:
    """Variables of several dtypes and ranks, in their own graph, saved by TensorFlow's Saver."""
    with tf1.Graph().as_default():
        rng = np.random.default_rng(0)
        values = {"scope/kernel": rng.standard_normal((3, 3, 2, 4)).astype(np.float32),
                  "scope/bias": np.arange(4, dtype=np.float32), "count": np.array(7, dtype=np.int64),
                  "half": np.linspace(-1, 1, 5).astype(np.float16), "ids": np.arange(6, dtype=np.int32).reshape(2, 3)}
        variables = [tf1.get_variable(name, initializer=value) for name, value in values.items()]
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            tf1.train.Saver(variables).save(sess, str(prefix), write_meta_graph=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tf1.disable_eager_execution()
    x = golden_input()
    image = tf1.placeholder(tf.float32, x.shape)
    h, w = x.shape[1:3]
    per_scale = {}
    with tf1.variable_scope("", reuse=tf1.AUTO_REUSE):
        for s in SCALES:
            scaled = image if s == 1.0 else tf1.image.resize_images(image, [int(h * s), int(w * s)])
            per_scale[s] = jppnet(scaled)
    outputs = {}
    for stage in range(3):
        for t, task in enumerate(("parsing", "pose")):
            full = per_scale[1.0][stage][t]
            size = tf1.shape(full)[1:3]
            resize = tf1.image.resize_nearest_neighbor if task == "pose" else tf1.image.resize_images
            resized = [full] + [resize(per_scale[s][stage][t], size) for s in SCALES[1:]]
            outputs[f"{task}/stage{stage}/fused"] = tf1.reduce_mean(tf1.stack(resized), axis=0)
            for s in SCALES:
                outputs[f"{task}/stage{stage}/scale{s}"] = per_scale[s][stage][t]
    variables = tf1.global_variables()
    values = draw_weights({v.op.name: tuple(v.shape.as_list()) for v in variables}, SEED)
    with tf1.Session() as sess:
        for v in variables:
            v.load(values[v.op.name], sess)
        tf1.train.Saver(variables).save(sess, str(args.out / "jppnet.ckpt"), write_meta_graph=False)
        result = sess.run(outputs, {image: x})
    np.savez_compressed(args.out / "golden.npz", **{k: np.transpose(v, (0, 3, 1, 2)) for k, v in result.items()})
    (args.out / "variables.txt").write_text("".join(f"{v.op.name} {','.join(str(d) for d in v.shape.as_list())}\n"
                                                   for v in sorted(variables, key=lambda v: v.op.name)))
    write_small_checkpoint(args.out / "small.ckpt")
    trainable = len(tf1.trainable_variables())
    print(f"{len(variables)} variables ({trainable} trainable), "
          f"{sum(int(np.prod(v.shape.as_list())) for v in tf1.trainable_variables()):,} trainable parameters; "
          f"wrote {args.out}/jppnet.ckpt and golden.npz")


if __name__ == "__main__":
    main()
