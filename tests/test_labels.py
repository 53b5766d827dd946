import numpy as np
import pytest

from spd.labels import keypoint_space, label_space, load_mapping
from spd.labels.spaces import LabelSpace


def test_lip_atr_densepose_sizes():
    assert label_space("lip").num_classes == 20
    assert label_space("atr").num_classes == 18
    assert label_space("densepose").num_classes == 25
    assert keypoint_space().num_joints == 16
    assert label_space("lip").classes[14] == "Left-arm"
    assert label_space("lip").palette[7] == (0, 119, 221)


def test_flip_tables_match_the_reference():
    assert label_space("densepose").flip_permutation == (
        0, 1, 2, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15, 18, 17, 20, 19, 22, 21, 24, 23)
    lip = label_space("lip").flip_permutation
    assert (lip[14], lip[15], lip[16], lip[17], lip[18], lip[19]) == (15, 14, 17, 16, 19, 18)
    atr = label_space("atr").flip_permutation
    assert (atr[9], atr[12], atr[14]) == (10, 13, 15)
    kp = keypoint_space()
    assert kp.flip_permutation[kp.index("L_Wrist")] == kp.index("R_Wrist")
    assert kp.flip_permutation[kp.index("Pelvis")] == kp.index("Pelvis")


@pytest.mark.parametrize("name", ["lip", "atr", "densepose"])
def test_flip_is_an_involution_and_keeps_ignore(name):
    space = label_space(name)
    perm = np.array(space.flip_permutation)
    assert (perm[perm] == np.arange(space.num_classes)).all()
    lut = space.flip_lut()
    assert lut[255] == 255 and (lut[lut] == np.arange(256)).all()


def test_flip_pairs_swap_left_and_right_names():
    space = label_space("lip")
    for a, b in space.flip_pairs:
        assert space.classes[a].replace("Left", "Right") == space.classes[b]
    kp = keypoint_space()
    for a, b in kp.flip_pairs:
        assert kp.joints[a].replace("R_", "L_") == kp.joints[b]


def test_bad_tables_are_rejected():
    with pytest.raises(ValueError, match="palette"):
        LabelSpace("x", ("a", "b"), ((0, 0, 0),), ())
    with pytest.raises(ValueError, match="out of range"):
        LabelSpace("x", ("a", "b"), ((0, 0, 0), (1, 1, 1)), ((0, 5),)).flip_permutation


def test_shared_and_super_mappings():
    shared = load_mapping("shared")
    lip, atr = shared.lut("lip"), shared.lut("atr")
    upper = shared.classes.index("upper-clothes")
    assert lip[5] == upper and lip[7] == upper and atr[4] == upper  # coat -> upper-clothes
    assert lip[3] == 255 and lip[8] == 255 and lip[10] == 255  # glove, socks, jumpsuits unmapped
    assert atr[8] == 255 and atr[16] == 255  # belt, bag unmapped
    # Left stays left across datasets.
    assert lip[14] == atr[14] == shared.classes.index("left-arm")
    assert lip[16] == atr[12] == shared.classes.index("left-leg")
    sup = load_mapping("super")
    assert sup.num_classes == 9
    assert {sup.lut("lip")[c] for c in (1, 2, 4, 13)} == {sup.classes.index("head")}
    assert all(sup.lut("lip")[c] != 255 for c in range(20))  # every LIP class has a super-class


def test_the_parts_mapping_joins_pascal_to_lip_and_atr():
    parts = load_mapping("parts")
    assert parts.classes == ("background", "head", "torso", "arms", "legs")
    pascal, lip, atr = (parts.lut(s) for s in ("pascal", "lip", "atr"))
    assert all(pascal[c] != 255 for c in range(7))  # every Pascal class has its part
    assert pascal[3] == pascal[4] == lip[14] == lip[15] == atr[14] == parts.classes.index("arms")  # upper + lower
    assert lip[6] == lip[10] == atr[7] == 255  # a dress spans torso and legs: left out
    by_name = {label_space("lip").classes[c]: parts.classes[lip[c]] for c in range(20) if lip[c] != 255}
    assert by_name["Face"] == "head" and by_name["Pants"] == "legs" and by_name["Coat"] == "torso"


def test_user_mapping_file(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("mine:\n  name: two\n  groups:\n    - {name: bg, lip: [0], atr: [0]}\n"
                    "    - {name: person, lip: [1, 2, 3], atr: [1, 2]}\n")
    m = load_mapping("mine", path)
    assert m.lut("lip")[:5].tolist() == [0, 1, 1, 1, 255]
    path.write_text("mine:\n  name: bad\n  groups:\n    - {name: bg, lip: [0, 40]}\n")
    with pytest.raises(ValueError, match="40 is out of range"):
        load_mapping("mine", path)
    with pytest.raises(KeyError, match="nope"):
        load_mapping("nope", path)


def test_a_mapping_without_the_models_space_is_refused_not_scored_zero():
    from spd.ops.errors import InputError
    from spd.tasks.base import Scoring
    from spd.tasks.parsing import ParsingMetric

    with pytest.raises(InputError, match=r"mapping 'lip-atr-shared' has no pascal classes .* \(--map parts\)"):
        ParsingMetric(Scoring("pascal", "lip", load_mapping("shared")))
    assert ParsingMetric(Scoring("pascal", "atr", load_mapping("parts"))).classes[1] == "head"
