"""How a run is launched on GPUs / several processes, checked on a CPU-only machine.

No GPU and no second process is started: CUDA is faked with ``torch.cuda.is_available`` /
``device_count`` patched, ``lightning.Trainer`` is replaced by a recorder that stops ``train()``
just before fitting (so the real code up to the Trainer runs: config, data, model, device
parsing), and tensors "on an accelerator" are a stand-in subclass that refuses ``.numpy()``.
Torch's global settings that Lightning changes (deterministic algorithms, cuDNN benchmark,
matmul precision, environment variables) are restored after each test."""

from __future__ import annotations

import logging
import os
from types import SimpleNamespace

import lightning
import pytest
import torch
from hypothesis import given, settings, strategies as st

from predict_helpers import TINY, StubNet, write_checkpoint
from spd.config import load_config
from spd.data.sampling import EpochSampler, epoch_order, shard
from spd.inference import EvalConfig, Prediction, predict_batch
from spd.ops.devices import parse_device, torch_device
from spd.training.datamodule import SPDDataModule, per_process_batch


# ---------------------------------------------------------------------------------------------
# Shared helpers


class Stopped(Exception):
    """Raised by the recording Trainer (and the fake train of the demo): the run ends there."""


@pytest.fixture(autouse=True)
def torch_globals():
    """Restores what Lightning's Trainer and train() change process-wide."""
    state = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic, torch.get_float32_matmul_precision(),
             torch.backends.cudnn.allow_tf32)
    environ = dict(os.environ)
    yield
    torch.use_deterministic_algorithms(state[0], warn_only=state[1])
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = state[2], state[3]
    torch.set_float32_matmul_precision(state[4])
    torch.backends.cudnn.allow_tf32 = state[5]
    os.environ.clear()
    os.environ.update(environ)


@pytest.fixture
def fake_gpus(monkeypatch):
    """This process sees 4 CUDA devices (nothing is ever run on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)


@pytest.fixture
def trainer_kwargs(monkeypatch):
    """The keyword arguments spd's train() gives ``lightning.Trainer``. ``build=True`` (set on the
    returned object) also builds the real Trainer with them before stopping."""
    record = SimpleNamespace(kwargs=None, build=False)
    real = lightning.Trainer

    def recording_trainer(*args, **kwargs):
        assert not args, "train() passes the Trainer's settings by name"
        record.kwargs = kwargs
        if record.build:
            real(**kwargs)
        raise Stopped

    monkeypatch.setattr(lightning, "Trainer", recording_trainer)
    return record


def tiny_config(tmp_path, data_root, *extra):
    config, _ = load_config(None, [*TINY, f"data.root={data_root}", "data.batch_size=2", "data.num_workers=0",
                                   "loss.class_balance=0", "loss.part_balance=0", f"train.out_dir={tmp_path}",
                                   "train.name=run", *extra])
    return config


def run_until_trainer(config, record, device="cpu"):
    from spd.training.train import train

    with pytest.raises(Stopped):
        train(config, device=device, progress=False)
    return record.kwargs


# ---------------------------------------------------------------------------------------------
# 1. train.deterministic


def test_deterministic_true_asks_for_warn_only_deterministic_algorithms(tmp_path, synth_lip, trainer_kwargs):
    """Guards ``deterministic="warn"``: ``True`` would make every CUDA op without a
    deterministic kernel (2-D cross-entropy, bilinear backward) stop the run with an error."""
    torch.use_deterministic_algorithms(False)
    trainer_kwargs.build = True  # the real Trainer: it is Lightning that sets torch's global mode
    kwargs = run_until_trainer(tiny_config(tmp_path, synth_lip, "train.deterministic=true"), trainer_kwargs)
    assert kwargs["deterministic"] == "warn" and kwargs["benchmark"] is False
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()


def test_deterministic_false_leaves_the_cudnn_autotuner_on(tmp_path, synth_lip, trainer_kwargs):
    """The default: no deterministic algorithms, cuDNN benchmark on (training crops have one size)."""
    kwargs = run_until_trainer(tiny_config(tmp_path, synth_lip), trainer_kwargs)
    assert kwargs["deterministic"] is False and kwargs["benchmark"] is True


# ---------------------------------------------------------------------------------------------
# 2. --device cuda:N and --devices


def test_cuda_n_selects_that_one_gpu(fake_gpus):
    """Guards ``parse_device``: ``cuda:N`` is GPU N alone, whatever the count of visible GPUs;
    ``cuda`` takes train.devices."""
    assert parse_device("cuda:2") == ("gpu", [2])
    assert parse_device("cuda:3", 1) == parse_device("cuda:3", "1") == ("gpu", [3])
    assert parse_device("cuda") == ("gpu", 1) and parse_device("cuda", "4") == ("gpu", 4)
    assert parse_device("cuda", "auto") == parse_device("auto", "auto") == ("gpu", "auto")
    assert torch_device("cuda:2") == torch.device("cuda:2") and torch_device("cuda") == torch.device("cuda")
    with pytest.raises(ValueError, match=r"cuda:4: only 4 GPU\(s\) visible"):
        parse_device("cuda:4")
    with pytest.raises(ValueError, match="expected cuda:N"):
        parse_device("cuda:one")


def test_cuda_n_with_several_devices_is_an_error_naming_the_way_out(fake_gpus):
    """docs/training.md: ``--device cuda:N`` cannot be combined with ``--devices`` (more than one);
    silently training on GPU N only, or on GPUs 0..k-1, would both ignore what was asked."""
    for devices in (2, "4"):
        with pytest.raises(ValueError, match=rf"--device cuda:1 names one GPU, but train.devices is {devices}") as err:
            parse_device("cuda:1", devices)
        assert "--devices N" in str(err.value) and "CUDA_VISIBLE_DEVICES" in str(err.value)


def test_cuda_n_without_cuda_is_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        parse_device("cuda:0")
    assert parse_device("auto") == ("cpu", 1)


def test_train_gives_the_trainer_gpu_n(tmp_path, synth_lip, fake_gpus, trainer_kwargs):
    """End to end as far as the Trainer: ``train(device="cuda:1")`` asks Lightning for GPU 1 only,
    the CLI's ``--devices 4`` with it is refused before anything runs, and ``cuda`` is one GPU."""
    kwargs = run_until_trainer(tiny_config(tmp_path, synth_lip), trainer_kwargs, device="cuda:1")
    assert kwargs["accelerator"] == "gpu" and kwargs["devices"] == [1]
    from spd.training.train import train

    with pytest.raises(ValueError, match="names one GPU"):
        train(tiny_config(tmp_path, synth_lip, "train.devices=4", "train.name=four"), device="cuda:1", progress=False)
    assert trainer_kwargs.kwargs is kwargs  # the second run never reached the Trainer
    # ``--device cuda`` without ``--devices``: one GPU, not DDP over all four (whose per-process
    # share of the LIP configs' global batch of 4 would not even divide on eight).
    kwargs = run_until_trainer(tiny_config(tmp_path, synth_lip, "train.name=one"), trainer_kwargs, device="cuda")
    assert kwargs["accelerator"] == "gpu" and kwargs["devices"] == 1


# ---------------------------------------------------------------------------------------------
# 3. spd demo trains on one device


def test_spd_demo_trains_on_one_device(tmp_path, monkeypatch):
    """Guards the demo's ``train.devices=1``: on a multi-GPU machine ``devices: auto`` would
    start one process per GPU for a CPU-sized demo (and the demo's own evaluation afterwards)."""
    import spd.demo
    from spd.cli.main import main

    seen = {}

    def fake_train(config, **kwargs):
        seen["config"], seen["kwargs"] = config, kwargs
        raise Stopped

    monkeypatch.setattr(spd.demo, "generate", lambda *args, **kwargs: None)  # 700 images: not needed here
    monkeypatch.setattr(spd.demo, "train", fake_train)
    with pytest.raises(Stopped):
        main(["demo", "--out", str(tmp_path / "demo"), "--device", "cuda", "--cross-domain", "0"])
    assert seen["config"].train.devices == 1
    assert seen["kwargs"]["device"] == "cuda"
    with pytest.raises(Stopped):
        spd.demo.run_demo(tmp_path / "demo2", cross_domain=0, progress=None, train_progress=False)
    assert seen["config"].train.devices == 1


def test_float16_autocast_on_the_cpu_is_refused_not_switched(tmp_path, synth_lip, trainer_kwargs, fake_gpus):
    """Lightning turns 16-mixed into bf16-mixed on the CPU with a warning, while the run's saved
    config would still say 16-mixed: refused before anything is written or read; on a GPU it is passed on."""
    config = tiny_config(tmp_path, synth_lip, "train.precision=16-mixed")
    from spd.training.train import train

    with pytest.raises(ValueError, match="16-mixed .* needs a GPU"):
        train(config, device="cpu", progress=False)
    assert not (tmp_path / "run").exists()  # not even the run folder's lock
    assert run_until_trainer(config, trainer_kwargs, device="cuda")["precision"] == "16-mixed"


# ---------------------------------------------------------------------------------------------
# 4. train.sync_batchnorm


def test_sync_batchnorm_reaches_the_trainer_on_gpus(tmp_path, synth_lip, fake_gpus, trainer_kwargs, caplog):
    """Guards ``train.sync_batchnorm``: the option must be passed to Lightning (which converts the batch-norm
    layers); without it DDP processes keep separate statistics."""
    with caplog.at_level(logging.WARNING, logger="spd.training.train"):
        kwargs = run_until_trainer(tiny_config(tmp_path, synth_lip, "train.sync_batchnorm=true"), trainer_kwargs,
                                   device="cuda")
    assert kwargs["sync_batchnorm"] is True and kwargs["accelerator"] == "gpu"
    assert "sync_batchnorm" not in caplog.text
    assert kwargs["use_distributed_sampler"] is False  # the data module splits the epoch itself


def test_sync_batchnorm_on_the_cpu_is_dropped_with_a_warning(tmp_path, synth_lip, trainer_kwargs, caplog):
    """PyTorch's SyncBatchNorm runs on GPUs only, so a CPU run (the synthetic
    configs set the option) must train rather than fail in the first forward; it says so."""
    with caplog.at_level(logging.WARNING, logger="spd.training.train"):
        kwargs = run_until_trainer(tiny_config(tmp_path, synth_lip, "train.sync_batchnorm=true"), trainer_kwargs)
    assert kwargs["sync_batchnorm"] is False and kwargs["accelerator"] == "cpu"
    assert "train.sync_batchnorm" in caplog.text and "GPUs only" in caplog.text


def test_sync_batchnorm_off_is_off(tmp_path, synth_lip, fake_gpus, trainer_kwargs, caplog):
    with caplog.at_level(logging.WARNING, logger="spd.training.train"):
        kwargs = run_until_trainer(tiny_config(tmp_path, synth_lip), trainer_kwargs, device="cuda")
    assert kwargs["sync_batchnorm"] is False and "sync_batchnorm" not in caplog.text


# ---------------------------------------------------------------------------------------------
# 5. Splitting samples across processes


@settings(max_examples=200, deadline=None)
@given(size=st.integers(0, 60), world=st.integers(1, 4))
def test_validation_shards_cover_every_image_exactly_once(size, world):
    """Guards ``shard``: validation under DDP must not pad (a padded image would be counted
    twice in the metrics) nor drop any image."""
    shards = [shard(size, rank, world) for rank in range(world)]
    everything = [i for s in shards for i in s]
    assert sorted(everything) == list(range(size))  # every index once: disjoint, complete, no duplicate
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_training_order_is_padded_by_its_own_beginning_when_it_does_not_divide():
    """docs/training.md: process r of n takes every n-th sample of the epoch order, padded by its own
    beginning to a multiple of n, so that every process makes the same number of steps (a process
    with fewer batches would hang the others in DDP's all-reduce)."""
    size, world = 10, 3
    order = epoch_order(size, seed=5, epoch=2)
    shares = []
    for rank in range(world):
        sampler = EpochSampler(size, seed=5, rank=rank, world_size=world)
        sampler.set_epoch(2)
        shares.append(list(sampler))
        assert len(sampler) == len(shares[-1]) == 4
    assert all(epoch == 2 for share in shares for epoch, _ in share)
    indices = [[i for _, i in share] for share in shares]
    assert set().union(*map(set, indices)) == set(range(size))
    padded = order + order[:2]  # 12 = 4 x 3: the first two samples of the order again
    assert indices == [padded[r::world] for r in range(world)]


@settings(max_examples=100, deadline=None)
@given(size=st.integers(1, 40), world=st.integers(1, 4), seed=st.integers(0, 5))
def test_training_shares_are_equal_complete_and_pad_only_as_needed(size, world, seed):
    shares = [[i for _, i in EpochSampler(size, seed, rank=r, world_size=world)] for r in range(world)]
    per_rank = -(-size // world)
    assert all(len(s) == per_rank for s in shares)
    flat = [i for s in shares for i in s]
    assert set(flat) == set(range(size))
    assert len(flat) - size == per_rank * world - size < world  # fewer than one padded sample per process


# ---------------------------------------------------------------------------------------------
# 6. The Predictor's results are on the CPU


class OnAccelerator(torch.Tensor):
    """A tensor as one on a GPU behaves here: ``.numpy()`` refuses; ``.cpu()`` / ``.to("cpu")``
    give a plain tensor."""

    def numpy(self, *args, **kwargs):
        raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the tensor first.")

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        target = kwargs.get("device", args[1] if len(args) > 1 else None)
        if func is torch.Tensor.cpu or (func is torch.Tensor.to and str(target).startswith("cpu")):
            return super().__torch_function__(func, types, args, kwargs).as_subclass(torch.Tensor)
        return super().__torch_function__(func, types, args, kwargs)


def test_the_predictor_copies_results_to_the_cpu(monkeypatch):
    """Guards the Predictor's copy to the CPU: docs/predict.md promises every tensor of a
    Prediction on the CPU whatever the device, with these dtypes; predict_batch leaves them on the
    model's device."""
    import spd.predict.predictor as predictor_module

    def on_accelerator(*args, **kwargs):
        out = predict_batch(*args, **kwargs)
        for p in out:
            for n in Prediction.TENSORS:
                if getattr(p, n) is not None:
                    setattr(p, n, getattr(p, n).as_subclass(OnAccelerator))
        return out

    monkeypatch.setattr(predictor_module, "predict_batch", on_accelerator)
    predictor = predictor_module.Predictor(StubNet(), EvalConfig(input_size=(32, 24)), device="cpu", batch_size=2)
    images = [torch.randint(0, 256, (3, 20 + i, 16), dtype=torch.uint8) for i in range(3)]
    results = predictor(images, return_probs=True)
    dtypes = {"parsing": torch.uint8, "parsing_probs": torch.float32, "keypoints": torch.float32,
              "keypoint_scores": torch.float32, "dp_index": torch.uint8, "dp_uv": torch.float32}
    for image, result in zip(images, results):
        for name, dtype in dtypes.items():
            t = getattr(result, name)
            assert type(t) is torch.Tensor and t.device.type == "cpu", name
            assert t.dtype == dtype, name
        assert result.parsing.shape == image.shape[1:] and result.dp_uv.shape == (2, *image.shape[1:])
        assert set(result.to_numpy()) == set(dtypes)  # .numpy() works on each


# ---------------------------------------------------------------------------------------------
# 7. export_model leaves the caller's model alone


@pytest.mark.parametrize("training", [True, False])
def test_export_leaves_the_callers_model_as_it_was(tmp_path, monkeypatch, training):
    """Guards the export's deep copy: exporting a model in the
    middle of training, or one on a GPU, must not switch it to eval mode, move it to the CPU, or
    update its batch-norm statistics with the check's random images."""
    from spd.export import export_model
    from spd.predict import load_checkpoint

    loaded = load_checkpoint(write_checkpoint(tmp_path / "m.ckpt"))
    model = loaded.model.train(training)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = {n: p for n, p in model.named_parameters()}
    moved = []
    real_cpu = torch.nn.Module.cpu

    def recording_cpu(self):
        moved.append(self)
        return real_cpu(self)

    monkeypatch.setattr(torch.nn.Module, "cpu", recording_cpu)
    report = export_model(model, loaded.protocol, "safetensors", tmp_path / "m.safetensors")
    assert report["max_abs_diff"] == 0.0
    assert all(m is not model for m in moved)  # the caller's model was never moved
    assert model.training is training and all(m.training is training for m in model.modules())
    after = model.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert all(p is params[n] for n, p in model.named_parameters())
    assert all(p.device.type == "cpu" for p in model.parameters())


# ---------------------------------------------------------------------------------------------
# 8. data.batch_size is the global batch


def test_global_batch_is_split_across_processes_and_accumulation():
    """The recipe's batch is per optimiser step, over every process."""
    assert per_process_batch(16, 1, 1) == 16
    assert per_process_batch(16, 8, 1) == 2
    assert per_process_batch(16, 4, 2) == 2
    assert per_process_batch(6, 3, 2) == 1


def test_a_global_batch_that_does_not_divide_is_an_error_naming_the_values():
    with pytest.raises(ValueError) as err:
        per_process_batch(6, 4, 1)
    message = str(err.value)
    assert "data.batch_size 6" in message and "4 process(es)" in message and "1 accumulated" in message
    assert "multiple of 4" in message
    with pytest.raises(ValueError, match=r"data.batch_size 8 .* 3 process\(es\) x 2 accumulated.* multiple of 6"):
        per_process_batch(8, 3, 2)


def test_the_run_says_how_the_global_batch_is_split(tmp_path, synth_lip, fake_gpus, monkeypatch, caplog):
    """The first thing a multi-GPU run logs: the global batch as processes x per process x accumulated."""
    class FourProcesses:  # the Trainer of rank 0 of 2 nodes x 2 GPUs, stopped at fit
        def __init__(self, **kwargs):
            self.world_size, self.global_rank = kwargs["num_nodes"] * kwargs["devices"], 0

        def fit(self, *args, **kwargs):
            raise Stopped

    from spd.training.train import train

    monkeypatch.setattr(lightning, "Trainer", FourProcesses)
    monkeypatch.setenv("MASTER_ADDR", "node0")  # as each node is started (docs/training.md)
    config = tiny_config(tmp_path, synth_lip, "data.batch_size=8", "train.devices=2", "train.num_nodes=2",
                         "train.accumulate_grad_batches=2", "optim.lr=0.02")
    with caplog.at_level("INFO", logger="spd.training.train"), pytest.raises(Stopped):
        train(config, device="cuda", progress=False)
    assert "batch: 8 images per optimiser step = 4 process(es) x 1 per process x 2 accumulated; lr 0.02" in caplog.messages


def test_validation_samples_carry_their_label_flags_as_python_bools(tmp_path, synth_lip):
    """The evaluator reads each sample's has_* flags: as tensors, which Lightning and DDP move to the
    GPU with the rest of a validation batch, every read would be a host sync."""
    data = SPDDataModule(tiny_config(tmp_path, synth_lip), output_stride=4)
    data.trainer = SimpleNamespace(global_rank=0, world_size=1, accumulate_grad_batches=1)
    samples = next(iter(data.val_dataloader()))
    flags = {k: v for item in samples for k, v in item.items() if k.startswith("has_")}
    assert flags and all(type(v) is bool for v in flags.values()), flags
    assert isinstance(samples[0]["image"], torch.Tensor)


def test_the_loaders_of_one_process_use_its_share(tmp_path, synth_lip):
    """The data module of process 1 of 4 with 2 accumulated batches: batches of 16 / 8 = 2 images
    from its own share of the epoch, and its own unpadded slice of the val split."""
    config = tiny_config(tmp_path, synth_lip, "data.batch_size=16")
    data = SPDDataModule(config, output_stride=4)
    data.trainer = SimpleNamespace(global_rank=1, world_size=4, accumulate_grad_batches=2)
    train_loader = data.train_dataloader()
    assert train_loader.batch_sampler.batch_size == 2 and train_loader.batch_sampler.drop_last
    sampler = train_loader.batch_sampler.sampler
    assert (sampler.rank, sampler.world_size) == (1, 4)
    val_loader = data.val_dataloader()
    size = len(data.readers()[1])
    assert list(val_loader.dataset.indices) == shard(size, 1, 4)
    data.trainer = SimpleNamespace(global_rank=0, world_size=3, accumulate_grad_batches=1)
    with pytest.raises(ValueError, match="data.batch_size 16"):
        data.train_dataloader()


# ---------------------------------------------------------------------------------------------
# Launch settings Lightning refuses, and nodes that nobody starts


def test_a_strategy_whose_package_is_missing_is_an_error_naming_it(tmp_path, synth_lip, trainer_kwargs):
    """``--strategy deepspeed`` without DeepSpeed: Lightning's MisconfigurationException became a
    traceback; now an error that names the setting."""
    trainer_kwargs.build = True
    with pytest.raises(ValueError, match=r"Lightning refused the run's settings \(strategy 'deepspeed'.*DeepSpeed"):
        run_until_trainer(tiny_config(tmp_path, synth_lip, "train.strategy=deepspeed"), trainer_kwargs)


def test_several_nodes_without_a_launcher_are_refused(tmp_path, synth_lip, trainer_kwargs, monkeypatch):
    """``--num-nodes 2`` on one machine with nothing set waited for ever for a second node."""
    from spd.training.train import train

    for name in [v for v in os.environ if v.startswith(("SLURM_", "TORCHELASTIC_", "LSB_", "OMPI_"))] + ["MASTER_ADDR"]:
        monkeypatch.delenv(name, raising=False)
    config = tiny_config(tmp_path, synth_lip, "train.num_nodes=2")
    with pytest.raises(ValueError, match="train.num_nodes 2: no cluster launcher found .* MASTER_ADDR, MASTER_PORT "
                                         "and NODE_RANK"):
        train(config, device="cpu", progress=False)
    monkeypatch.setenv("MASTER_ADDR", "node0")  # the documented way: every node given the address
    assert run_until_trainer(config, trainer_kwargs)["num_nodes"] == 2
