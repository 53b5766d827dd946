import json
from pathlib import Path

import pytest

from spd.config import ConfigError, load_config

CONFIGS = Path(__file__).parent.parent / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_config_validates(path):
    config, resolved = load_config(path)
    assert "preset" not in resolved["model"]  # resolved once: the saved config is complete in itself
    assert load_config(None, [f"model={json.dumps(resolved['model'])}"])[0].model == config.model
    if path.stem not in ("demo", "study_full"):  # a recipe each, not one experiment per variant
        dataset, variant = path.stem.rsplit("_", 1)
        assert config.model.name == variant


def test_paper_experiments_exist_for_every_dataset_and_variant():
    for dataset in ("lip", "atr", "synth_A", "synth_B"):
        for variant in ("jppnet", "s", "sp", "sd", "spd"):
            assert (CONFIGS / f"{dataset}_{variant}.yaml").is_file()


def test_unknown_keys_and_bad_values_name_the_key_and_file(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("train: {max_epoch: 3}\n")
    with pytest.raises(ConfigError, match=r"x\.yaml.*unknown key 'train.max_epoch'"):
        load_config(path)
    path.write_text("optim: {lr: fast}\n")
    with pytest.raises(ConfigError, match="optim.lr: expected a number"):
        load_config(path)
    path.write_text("augment: {size: [1, 2, 3]}\n")
    with pytest.raises(ConfigError, match="augment.size: expected 2 values"):
        load_config(path)
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(None, ["train.max_epochs"])
    with pytest.raises(ConfigError, match="loss.pose_mode no longer exists"):
        load_config(None, ["loss.pose_mode=l1"])
    with pytest.raises(ConfigError, match="loss.dense_at must be one of"):
        load_config(None, ["loss.dense_at=full"])
    with pytest.raises(ConfigError, match="train.keep_checkpoints is out of range: -2"):
        load_config(None, ["train.keep_checkpoints=-2"])
    # A union takes either form; a value fitting neither names both.
    assert load_config(None, ["train.devices=4"])[0].train.devices == 4
    assert load_config(None, ["train.devices=auto"])[0].train.devices == "auto"
    with pytest.raises(ConfigError, match="train.devices: expected an integer or a string, got"):
        load_config(None, ["train.devices=[1, 2]"])


def test_base_files_and_overrides(tmp_path):
    (tmp_path / "base.yaml").write_text("train: {max_epochs: 5, seed: 1}\noptim: {lr: 0.5}\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\ntrain: {max_epochs: 7}\n")
    config, _ = load_config(tmp_path / "child.yaml", ["optim.lr=0.1", "model.train_scales=[1.0, 0.5]"])
    assert (config.train.max_epochs, config.train.seed, config.optim.lr) == (7, 1, 0.1)
    assert config.model.train_scales == (1.0, 0.5)
    # A preset and overrides of its family section, key by key.
    config, _ = load_config(None, ["model.preset=cpu_sd", "model.fpn.head_width=32"])
    assert (config.model.name, config.model.fpn.head_width, config.model.fpn.decoder_width) == ("cpu_sd", 32, 64)
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="include each other"):
        load_config(tmp_path / "loop.yaml")


def test_exponent_without_a_dot_is_a_number_and_words_are_not(tmp_path):
    from spd.config import ConfigError, load_config

    path = tmp_path / "c.yaml"
    path.write_text("optim: {lr: 1e-4, weight_decay: 5E-4}\n")
    config, _ = load_config(path)
    assert config.optim.lr == 1e-4 and config.optim.weight_decay == 5e-4
    for text in ("optim: {lr: fast}\n", "optim: {lr: .nan}\n", "optim: {lr: nan}\n"):
        path.write_text(text)
        with pytest.raises(ConfigError, match="optim.lr: expected a number"):
            load_config(path)


@pytest.mark.parametrize("text, message", [("optim: {lr: -1}", "optim.lr is out of range: -1.0"),
                                           ("optim: {name: adam}", "optim.name must be 'sgd' or 'adamw'"),
                                           ("optim: {momentum: 1.5}", "optim.momentum is out of range")])
def test_optimiser_values_are_checked_when_the_config_loads(tmp_path, text, message):
    from spd.config import ConfigError, load_config

    (tmp_path / "c.yaml").write_text(text + "\n")
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "c.yaml")


@pytest.mark.parametrize("key, value, message", [("scales", [0], "eval.scales must be positive"),
                                                 ("input_size", [-8, 64], "at least 8 px"),
                                                 ("resize", "crop", "eval.resize must be one of"),
                                                 ("stages", "some", "eval.stages must be one of")])
def test_test_time_settings_are_checked(tmp_path, key, value, message):
    import json

    from spd.config import ConfigError, load_config

    (tmp_path / "c.yaml").write_text(f"eval: {{{key}: {json.dumps(value)}}}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "c.yaml")


def test_bf16_true_is_refused_naming_why_and_the_alternatives(tmp_path):
    """bf16-true keeps the weights in bfloat16: the recipes' SGD updates mostly round away (1.5% of
    the weights changed in 5 steps against 87% in float32), so it is refused when the config loads."""
    path = tmp_path / "run.yaml"
    path.write_text("train: {precision: bf16-true}\n")
    with pytest.raises(ConfigError, match=r"run.yaml: train.precision bf16-true .*rounds away.*use bf16-mixed .* or 32-true"):
        load_config(path)
    assert load_config(None, ["train.precision=64-true"])[0].train.precision == "64-true"


@pytest.mark.parametrize("setting,why", [("model.preset=light", "the 'light' preset no longer exists: a ResNet-18 dilated"),
                                         ("model.branch_convs=2", "model.branch_convs no longer exists: the CPU family"),
                                         ("model.refine_fuse=3", "model.refine_fuse no longer exists: the CPU family")])
def test_removed_presets_and_keys_say_why(setting, why):
    with pytest.raises(ConfigError, match=why + ".*docs/changelog.md"):
        load_config(None, [setting])


def test_renamed_api_names_fail_with_the_new_name():
    import spd.config
    import spd.losses
    from spd.inference import Prediction
    from spd.model import preset
    from spd.predict import Predictor
    from spd.model import SPDNet

    with pytest.raises(AttributeError, match="SynthConfig is now spd.data.synthetic.SynthSpec"):
        spd.config.SynthConfig
    with pytest.raises(AttributeError, match="dp_uv_loss is now spd.losses.uv_loss"):
        spd.losses.dp_uv_loss
    with pytest.raises(AttributeError, match="output_stride is now SPDNet.output_stride"):
        preset("cpu_s").output_stride
    with pytest.raises(AttributeError, match="settings is now protocol"):
        Prediction().settings
    with pytest.raises(TypeError, match=r"Predictor\(protocol=...\)"):
        Predictor(SPDNet(preset("cpu_s")), settings=None, device="cpu")
