"""``spd data check`` must find every planted fault in a corrupted copy, in one pass."""

import shutil

import numpy as np
import pytest
from PIL import Image

from spd.cli.main import main
from spd.data.check import check_dataset


@pytest.fixture()
def corrupted(synth_lip, tmp_path):
    root = tmp_path / "lip"
    shutil.copytree(synth_lip, root)
    images = root / "TrainVal_images" / "train_images"
    labels = root / "TrainVal_parsing_annotations" / "train_segmentations"
    ids = (root / "TrainVal_images" / "train_id.txt").read_text().split()
    faults = {}
    # 1. a listed image that does not exist
    (images / f"{ids[0]}.jpg").unlink()
    faults["missing image"] = ids[0]
    # 2. an unreadable image
    (images / f"{ids[1]}.jpg").write_bytes(b"\xff\xd8 garbage")
    faults["corrupt image"] = f"{ids[1]}.jpg"
    # 3. a label of the wrong size
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(labels / f"{ids[2]}.png")
    faults["size mismatch"] = f"{ids[2]}.png"
    # 4. a label value outside 0..19 (and not 255)
    label = np.array(Image.open(labels / f"{ids[3]}.png"))
    label[0, 0] = 40
    Image.fromarray(label).save(labels / f"{ids[3]}.png")
    faults["bad label value"] = "[40]"
    # 5. a missing label
    (labels / f"{ids[4]}.png").unlink()
    faults["missing label"] = "no label PNG"
    # 6. malformed CSV rows: too few fields, a non-number, a row for a missing image
    csv = root / "TrainVal_pose_annotations" / "lip_train_set.csv"
    rows = csv.read_text().splitlines()
    rows[5] = ",".join(rows[5].split(",")[:10])
    fields = rows[6].split(",")
    fields[4] = "abc"
    rows[6] = ",".join(fields)
    rows.append("ghost_image.jpg," + ",".join(["1,1,1"] * 16))
    csv.write_text("\n".join(rows) + "\n")
    faults["short row"] = "lip_train_set.csv:6"
    faults["bad number"] = "lip_train_set.csv:7"
    faults["ghost row"] = "ghost_image"
    # 7. an IUV map with a part index outside 0..24
    Image.fromarray(np.full((96, 77, 3), 30, np.uint8)).save(root / "densepose" / f"{ids[7]}.png")
    faults["bad IUV"] = "part index 30"
    # 8. a label that went through JPEG compression and was saved as PNG again
    import io

    buffer = io.BytesIO()
    Image.open(labels / f"{ids[8]}.png").convert("L").save(buffer, "JPEG", quality=90)
    noisy = np.minimum(np.array(Image.open(buffer)), 19)  # in range: only the noise gives it away
    Image.fromarray(noisy.astype(np.uint8)).save(labels / f"{ids[8]}.png")
    faults["JPEG-noise label"] = "looks lossily compressed"
    return root, faults


def test_check_finds_every_planted_fault(corrupted):
    root, faults = corrupted
    report = check_dataset(root, root / "densepose")
    text = report.format()
    assert not report.ok
    for name, needle in faults.items():
        assert needle in text, f"{name} not reported ({needle!r})\n{text}"
    # Rows 6 and 7 leave their images without a pose row: reported too.
    assert text.count("no row for image") == 2


def test_clean_data_passes_and_cli_exit_codes(synth_lip, corrupted, capsys):
    assert check_dataset(synth_lip, synth_lip / "densepose").ok
    assert main(["data", "check", str(synth_lip)]) == 0
    root, _ = corrupted
    assert main(["data", "check", str(root)]) == 1
    out = capsys.readouterr().out
    assert "problems:" in out


def test_check_atr_fixture_and_unknown_layout(fixtures, tmp_path, capsys):
    report = check_dataset(fixtures / "atr")
    assert report.ok and report.counts["all"]["images"] == 5
    assert main(["data", "check", str(tmp_path)]) == 2
    assert "no known dataset layout" in capsys.readouterr().err


def test_check_sees_what_training_uses(synth_lip, tmp_path):
    """Training reads ROOT/densepose by itself, needs a val split and the manifest's people."""
    from spd.data.errors import DataError

    root = tmp_path / "lip"
    shutil.copytree(synth_lip, root)
    iuv = sorted((root / "densepose").iterdir())[0]
    Image.fromarray(np.full((96, 77, 3), 30, np.uint8)).save(iuv)
    report = check_dataset(root)  # no --densepose: the automatic folder is checked all the same
    text = report.format()
    assert "part index 30" in text and "training uses this folder" in text
    val = root / "TrainVal_images" / "val_images"
    shutil.rmtree(val)
    val.write_text("")
    text = check_dataset(root).format()
    assert f"{val}: is a file, where the split's image folder should be" in text
    assert "describes 16 generated people, but 12 images are readable" in text
    partial = tmp_path / ".lip.partial-x1y2"
    shutil.copytree(synth_lip, partial)
    with pytest.raises(DataError, match="interrupted synthetic generation"):
        check_dataset(partial)


def test_check_notes_very_large_images(fixtures, tmp_path):
    root = tmp_path / "flat"
    shutil.copytree(fixtures / "lip_flat", root)
    image = sorted((root / "train_images").iterdir())[0]
    Image.fromarray(np.zeros((8, 4100, 3), np.uint8)).save(image)
    Image.fromarray(np.zeros((8, 4100), np.uint8)).save(root / "train_segmentations" / f"{image.stem}.png")
    report = check_dataset(root)
    assert report.ok and any("side over 4000 px" in n and image.name in n for n in report.notes)
