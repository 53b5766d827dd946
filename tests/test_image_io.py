import numpy as np
import pytest
import torch
from PIL import Image

from spd.ops.atomic import atomic_path
from spd.data.errors import DataError
from spd.data.image_io import image_size, read_image, read_iuv, read_label, write_iuv, write_label


def test_read_rgb_grayscale_rgba_and_palette(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (6, 5, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    assert torch.equal(read_image(tmp_path / "a.png"), torch.from_numpy(rgb).permute(2, 0, 1))
    Image.fromarray(rgb[..., 0]).save(tmp_path / "g.png")
    gray = read_image(tmp_path / "g.png")
    assert gray.shape == (3, 6, 5) and torch.equal(gray[0], gray[2])
    # Transparent pixels are shown on white, as an image viewer shows them; opaque ones keep their colour.
    alpha = np.full((6, 5, 1), 255, np.uint8)
    alpha[0] = 0
    Image.fromarray(np.concatenate([rgb, alpha], -1)).save(tmp_path / "a4.png")
    expected = rgb.copy()
    expected[0] = 255
    assert torch.equal(read_image(tmp_path / "a4.png"), torch.from_numpy(expected).permute(2, 0, 1))
    Image.fromarray(rgb).convert("P").save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").shape == (3, 6, 5)


def test_exif_orientation_is_applied(fixtures):
    # 1_2.jpg stores the 12x8 image rotated; EXIF orientation 6 turns it back upright.
    path = fixtures / "lip_flat" / "train_images" / "1_2.jpg"
    with Image.open(path) as im:
        assert im.size == (12, 8)  # stored: width 12, height 8
    assert read_image(path).shape == (3, 12, 8)
    assert image_size(path) == (12, 8)


def test_corrupt_and_missing_files_name_the_file(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    with pytest.raises(DataError, match="broken.jpg"):
        read_image(bad)
    with pytest.raises(DataError, match="not found"):
        read_image(tmp_path / "none.jpg")
    with pytest.raises(DataError, match="broken.jpg"):
        read_label(bad)


def test_labels_keep_palette_indices(tmp_path):
    label = np.array([[0, 5, 14], [19, 255, 7]], np.uint8)
    write_label(tmp_path / "p.png", label, np.zeros((20, 3), np.uint8) + 200)
    with Image.open(tmp_path / "p.png") as im:
        assert im.mode == "P"
    assert read_label(tmp_path / "p.png").tolist() == label.tolist()
    write_label(tmp_path / "l.png", label)
    assert read_label(tmp_path / "l.png").tolist() == label.tolist()


def test_colour_label_is_rejected_but_gray_rgb_is_accepted(tmp_path):
    label = np.zeros((3, 3, 3), np.uint8)
    label[1, 1] = (5, 5, 5)
    Image.fromarray(label).save(tmp_path / "gray_rgb.png")
    assert read_label(tmp_path / "gray_rgb.png")[1, 1] == 5
    label[0, 0] = (255, 0, 0)
    Image.fromarray(label).save(tmp_path / "colour.png")
    with pytest.raises(DataError, match="colour.png.*class ids"):
        read_label(tmp_path / "colour.png")


def test_iuv_round_trip_and_range(tmp_path):
    index = np.array([[0, 3], [24, 1]], np.uint8)
    uv = np.stack([np.array([[0, 0.5], [1, 0.25]]), np.array([[0, 0.2], [0.8, 1.0]])]).astype(np.float32)
    write_iuv(tmp_path / "x.png", index, uv)
    i2, uv2 = read_iuv(tmp_path / "x.png")
    assert i2.tolist() == index.tolist()
    assert torch.allclose(uv2, torch.from_numpy(uv), atol=1 / 255)
    Image.fromarray(np.full((2, 2, 3), 30, np.uint8)).save(tmp_path / "bad.png")
    with pytest.raises(DataError, match="bad.png: part index 30"):
        read_iuv(tmp_path / "bad.png")


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_sixteen_bit_gray_is_scaled_not_clipped(tmp_path):
    array = np.array([[0, 65535], [32768, 1000]], np.uint16)
    Image.fromarray(array).save(tmp_path / "g16.png")
    image = read_image(tmp_path / "g16.png")
    assert image[0].tolist() == [[0, 255], [128, 4]]


def test_written_files_get_the_umask_mode_not_0600(tmp_path):
    import os
    import stat

    from spd.data.image_io import write_label

    old = os.umask(0o022)
    try:
        write_label(tmp_path / "l.png", np.zeros((4, 4), np.uint8))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "l.png").stat().st_mode) == 0o644
