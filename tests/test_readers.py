import math
import shutil

import numpy as np
import pytest

from spd.data import DataError, read_atr, read_lip
from spd.data.atr import make_split, split_sizes
from spd.data.detect import open_dataset


def test_lip_official_layout_with_extra_folder_level(fixtures):
    reader = read_lip(fixtures / "lip_official", "train", densepose_dir=fixtures / "lip_iuv")
    assert reader.layout == "LIP official archive"
    assert [r.id for r in reader.records] == ["100034_483681", "100142_449784"]
    sample = reader[0]
    assert sample.image.shape == (3, 12, 8) and sample.parsing.shape == (12, 8)
    assert sample.parsing[4, 6] == 14 and sample.parsing[4, 1] == 15  # palette PNG read as ids
    assert sample.keypoints.shape == (16, 2)
    assert math.isnan(sample.keypoints[2, 0]) and math.isnan(sample.visibility[2])  # nan row -> missing
    assert sample.keypoints[0].tolist() == [6, 5] and sample.visibility[4] == 0
    assert sample.has_densepose and sample.dp_index[4, 3] == 2
    # The second image is grayscale and has no IUV file: kept, and marked.
    second = reader[1]
    assert second.image.shape == (3, 12, 8) and not second.has_densepose
    assert reader.missing_densepose == ["100142_449784"]


def test_lip_val_without_labels_is_marked(fixtures, caplog):
    reader = read_lip(fixtures / "lip_official", "val")
    assert reader.missing_parsing == ["100050_200000"]
    assert not reader[0].has_parsing and reader[0].has_pose
    assert "have no parsing label" in caplog.text


def test_lip_flat_layout_without_pose(fixtures):
    reader = read_lip(fixtures / "lip_flat", "train")
    assert reader.layout == "LIP flat layout"
    assert not reader.has_pose and not reader[0].has_pose
    rotated = reader[1]  # EXIF orientation 6: upright after reading, matching its label
    assert rotated.image.shape[-2:] == rotated.parsing.shape


def test_lip_missing_layout_says_what_it_looked_for(tmp_path):
    with pytest.raises(DataError, match="TrainVal_images/train_images"):
        read_lip(tmp_path, "train")


def test_lip_missing_image_is_an_error_naming_the_id(fixtures, tmp_path):
    root = tmp_path / "lip"
    shutil.copytree(fixtures / "lip_flat", root)
    (root / "train_images" / "1_1.jpg").unlink()
    with pytest.raises(DataError, match="'1_1'"):
        read_lip(root, "train")


def test_atr_split_is_deterministic_and_written(fixtures, tmp_path):
    root = tmp_path / "atr"
    shutil.copytree(fixtures / "atr", root)
    train = read_atr(root, "train")
    val, test = read_atr(root, "val"), read_atr(root, "test")
    ids = [r.id for r in train.records + val.records + test.records]
    assert sorted(ids) == sorted(p.stem for p in (root / "humanparsing" / "JPEGImages").iterdir())
    assert (root / "humanparsing" / "splits" / "train.txt").is_file()
    assert not train.has_pose and not train[0].has_pose and train[0].parsing.max() <= 17
    again = make_split(ids)
    assert make_split(list(reversed(ids))) == again  # independent of listing order


def test_atr_split_sizes_follow_the_release():
    assert split_sizes(17_706) == (16_006, 700, 1_000)
    assert split_sizes(100, val=10, test=5) == (85, 10, 5)
    with pytest.raises(ValueError):
        split_sizes(10, val=8, test=8)


def test_generated_lip_and_atr_read_back(synth_lip, synth_atr):
    lip = open_dataset(synth_lip, "train")
    assert lip.layout == "LIP official archive" and len(lip) == 12 and len(open_dataset(synth_lip, "val")) == 4
    s = lip[0]
    assert s.has_parsing and s.has_pose and s.has_densepose
    assert s.parsing.max() < 20 and s.dp_index.max() <= 24
    atr = open_dataset(synth_atr, "train")
    assert atr.layout == "ATR humanparsing layout" and atr.label_space == "atr"
    assert sum(len(open_dataset(synth_atr, sp)) for sp in ("train", "val", "test")) == 20
    a = atr[0]
    assert a.has_parsing and not a.has_pose and a.has_densepose
    assert a.parsing.max() < 18


def test_every_generated_parsing_class_is_in_range_and_images_match(synth_lip):
    reader = open_dataset(synth_lip, "train")
    for i in range(len(reader)):
        s = reader[i]
        assert s.image.shape[-2:] == s.parsing.shape == s.dp_index.shape
        assert np.isin(s.parsing.numpy(), np.arange(20)).all()


def test_gif_and_tiff_images_are_indexed(tmp_path):
    from PIL import Image

    from spd.data.reader import IMAGE_SUFFIXES, index_files

    for name in ("a.gif", "b.tiff"):
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    (tmp_path / "c.txt").write_text("not an image")
    assert sorted(index_files(tmp_path, IMAGE_SUFFIXES)) == ["a", "b"]
