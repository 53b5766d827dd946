import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from spd.data.errors import DataError, Problem
from spd.data.pose_csv import format_pose_line, parse_pose_line, read_pose_csv

ROW = "100034_483681.jpg," + ",".join(["1,2,1"] * 15) + ",nan,nan,nan"


def test_parse_row_with_missing_joint(tmp_path):
    key, joints = parse_pose_line(ROW, tmp_path / "x.csv", 1)
    assert key == "100034_483681"
    assert joints.shape == (16, 3) and joints.dtype == np.float32
    assert np.isnan(joints[15]).all() and joints[0].tolist() == [1, 2, 1]


def test_a_joint_with_any_nan_coordinate_is_missing(tmp_path):
    row = "a.jpg,nan,2,1," + ",".join(["1,2,1"] * 15)
    _, joints = parse_pose_line(row, tmp_path / "x.csv", 1)
    assert np.isnan(joints[0]).all()


def test_malformed_rows_name_file_and_line(tmp_path):
    path = tmp_path / "lip_train_set.csv"
    path.write_text(ROW + "\n" + "b.jpg,1,2\n" + ROW.replace("1,2,1", "1,x,1", 1).replace("100034", "c") + "\n")
    with pytest.raises(DataError, match=r"lip_train_set.csv:2: expected 49"):
        read_pose_csv(path)
    problems: list[Problem] = []
    table = read_pose_csv(path, problems)
    assert list(table) == ["100034_483681"]
    assert [p.line for p in problems] == [2, 3]
    assert "'x'" in problems[1].message


def test_duplicate_ids_are_reported(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(ROW + "\n" + ROW + "\n")
    with pytest.raises(DataError, match="line 1"):
        read_pose_csv(path)


coordinate = st.one_of(st.just(math.nan), st.floats(-50, 500, allow_nan=False).map(lambda v: round(v, 2)))


@given(st.lists(st.tuples(coordinate, coordinate, st.sampled_from([0.0, 1.0])), min_size=16, max_size=16))
def test_format_then_parse_round_trips(joints):
    array = np.array(joints, np.float32)
    _, back = parse_pose_line(format_pose_line("a.jpg", array), None, 1)
    # A nan or negative coordinate is a missing joint (as LIP's evaluation reads the files).
    missing = np.isnan(array[:, :2]).any(axis=1) | (np.nan_to_num(array[:, :2], nan=0.0) < -0.5).any(axis=1)
    assert np.isnan(back[missing]).all()
    assert np.allclose(back[~missing], array[~missing])


def test_a_negative_coordinate_is_a_missing_joint_and_a_visibility_outside_0_1_2_an_error(tmp_path):
    _, joints = parse_pose_line("a.jpg,-1,5,1," + ",".join(["1,2,1"] * 15), tmp_path / "x.csv", 1)
    assert np.isnan(joints[0]).all() and joints[1].tolist() == [1, 2, 1]
    with pytest.raises(DataError, match=r"x.csv:4: visibility values \[7.0\] are not one of 0, 1, 2"):
        parse_pose_line("a.jpg,3,5,7," + ",".join(["1,2,1"] * 15), tmp_path / "x.csv", 4)
