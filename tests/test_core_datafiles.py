"""Tests for core.datafiles: users' CSV and NPZ files, one file or train/dev/test files."""

from __future__ import annotations

import warnings
import zipfile

import numpy as np
import pytest

from core.datasets import DatasetError, load_dataset


def write(path, text: str):
    path.write_text(text)
    return path


# ---------------------------------------------------------------- CSV


def test_csv_round_trip_with_string_labels(tmp_path):
    write(tmp_path / "data.csv", "a,label,b\n1,cat,2.5\n3,dog,-4\n\n5,cat,6e1\n")
    data = load_dataset({"path": "data.csv", "target": "label"}, base_dir=tmp_path)
    np.testing.assert_array_equal(data.X, [[1, 2.5], [3, -4], [5, 60]])
    assert data.feature_names == ("a", "b")
    assert data.classes.tolist() == ["cat", "dog"]
    assert data.y.tolist() == [0, 1, 0]
    assert data.name == "data" and data.predefined is None


def test_csv_numeric_labels_stay_numbers(tmp_path):
    write(tmp_path / "d.csv", "x,y\n0.1,1\n0.2,0\n0.3,1\n")
    data = load_dataset({"path": str(tmp_path / "d.csv"), "target": "y"})
    assert data.classes.dtype.kind == "i" and data.classes.tolist() == [0, 1]
    assert data.y.tolist() == [1, 0, 1]


def test_missing_file_names_the_resolved_path(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_dataset({"path": "sub/nope.csv", "target": "y"}, base_dir=tmp_path)
    assert str(tmp_path / "sub" / "nope.csv") in str(err.value)


def test_unknown_extension_lists_the_allowed_ones(tmp_path):
    write(tmp_path / "d.xlsx", "x")
    with pytest.raises(DatasetError, match=r"'\.xlsx'.*\.csv, \.npz"):
        load_dataset({"path": "d.xlsx", "target": "y"}, base_dir=tmp_path)


def test_missing_target_column_lists_the_columns(tmp_path):
    write(tmp_path / "d.csv", "a,b,class\n1,2,x\n")
    with pytest.raises(DatasetError) as err:
        load_dataset({"path": "d.csv", "target": "label"}, base_dir=tmp_path)
    text = str(err.value)
    assert "d.csv" in text and "'label'" in text and "'a', 'b', 'class'" in text


def test_text_in_feature_cells_names_file_row_column_and_value(tmp_path):
    write(tmp_path / "d.csv", "a,b,label\n1,2,x\n3,oops,y\n4,5,x\n")
    with pytest.raises(DatasetError) as err:
        load_dataset({"path": "d.csv", "target": "label"}, base_dir=tmp_path)
    (problem,) = err.value.problems
    assert "d.csv" in problem and "column 'b'" in problem and "row 3 'oops'" in problem


def test_every_problem_in_a_file_is_reported_at_once(tmp_path):
    write(tmp_path / "d.csv", "a,b,c,label\nx,1,2,p\n1,zz,,q\n1,2,3,p\n")
    with pytest.raises(DatasetError) as err:
        load_dataset({"path": "d.csv", "target": "label"}, base_dir=tmp_path)
    problems = err.value.problems
    assert len(problems) == 3
    assert str(err.value) == "\n".join(problems)
    assert any("column 'a'" in p and "row 2 'x'" in p for p in problems)
    assert any("column 'b'" in p and "row 3 'zz'" in p for p in problems)
    assert any("column 'c'" in p and "empty" in p and "row 3" in p for p in problems)
    assert all("d.csv" in p for p in problems)


def test_many_bad_rows_are_summarized(tmp_path):
    rows = "".join(f"{i},bad{i},x\n" for i in range(10))
    write(tmp_path / "d.csv", "a,b,label\n" + rows + "1,2,y\n")
    with pytest.raises(DatasetError) as err:
        load_dataset({"path": "d.csv", "target": "label"}, base_dir=tmp_path)
    assert "and 7 more" in str(err.value) and "row 2 'bad0'" in str(err.value)


def test_nan_in_a_feature_is_rejected(tmp_path):
    write(tmp_path / "d.csv", "a,label\n1,x\nnan,y\n")
    with pytest.raises(DatasetError, match=r"column 'a'.*row 3 'nan'"):
        load_dataset({"path": "d.csv", "target": "label"}, base_dir=tmp_path)


def test_values_beyond_float32_are_refused_in_csv_and_npz(tmp_path):
    # 1e308 once passed with numpy's overflow warning and trained on an infinite column.
    write(tmp_path / "d.csv", "a,b,label\n1,2,x\n1e308,3,y\n4,-5e38,x\n3e38,1,y\n")
    with pytest.raises(DatasetError, match=r"column 'a' holds values beyond float32's range \(±3.4e38\): row 3;"):
        load_dataset({"path": "d.csv", "target": "label"}, base_dir=tmp_path)
    np.savez(tmp_path / "d.npz", X=np.array([[1.0, 2.0], [1e39, 0.0], [3.0, 4.0]]), y=np.array([0, 1, 0]))
    with pytest.raises(DatasetError, match=r"array 'X' holds values beyond float32's range \(±3.4e38\) at row index 1"):
        load_dataset({"path": "d.npz", "target": "y"}, base_dir=tmp_path)


def test_empty_target_cell_is_an_error(tmp_path):
    write(tmp_path / "d.csv", "a,label\n1,x\n2,\n3,y\n")
    with pytest.raises(DatasetError, match=r"d\.csv.*target column 'label'.*row 3"):
        load_dataset({"path": "d.csv", "target": "label"}, base_dir=tmp_path)


def test_target_with_one_class_is_an_error(tmp_path):
    write(tmp_path / "d.csv", "a,label\n1,x\n2,x\n")
    with pytest.raises(DatasetError, match=r"d\.csv.*one class \('x'\).*at least 2"):
        load_dataset({"path": "d.csv", "target": "label"}, base_dir=tmp_path)


def test_ragged_rows_name_the_row_and_the_width(tmp_path):
    write(tmp_path / "d.csv", "a,b,label\n1,2,x\n1,2\n1,2,3,y\n4,5,y\n")
    with pytest.raises(DatasetError) as err:
        load_dataset({"path": "d.csv", "target": "label"}, base_dir=tmp_path)
    text = str(err.value)
    assert "d.csv" in text and "row 3 has 2" in text and "row 4 has 4" in text
    assert "3 columns" in text


@pytest.mark.parametrize("content, expected", [
    ("", "empty"), ("\n\n", "empty"), ("a,label\n", "no data rows"),
])
def test_empty_files_are_errors(tmp_path, content, expected):
    write(tmp_path / "d.csv", content)
    with pytest.raises(DatasetError, match=expected):
        load_dataset({"path": "d.csv", "target": "label"}, base_dir=tmp_path)


def test_target_only_file_has_no_features(tmp_path):
    write(tmp_path / "d.csv", "label\nx\ny\n")
    with pytest.raises(DatasetError, match="no feature columns"):
        load_dataset({"path": "d.csv", "target": "label"}, base_dir=tmp_path)


def test_file_configs_check_their_keys():
    with pytest.raises(DatasetError) as err:
        load_dataset({"path": "d.csv", "label": "y"})
    assert len(err.value.problems) == 2  # unknown 'label', missing 'target'
    with pytest.raises(DatasetError, match="exactly one"):
        load_dataset({"name": "iris", "path": "d.csv", "target": "y"})


# ---------------------------------------------------------------- NPZ


def test_npz_with_an_X_array(tmp_path):
    X = np.arange(12.0).reshape(6, 2)
    np.savez(tmp_path / "d.npz", X=X, y=np.array([2, 0, 2, 0, 1, 1]))
    data = load_dataset({"path": "d.npz", "target": "y"}, base_dir=tmp_path)
    np.testing.assert_array_equal(data.X, X)
    assert data.classes.tolist() == [0, 1, 2] and data.y.tolist() == [2, 0, 2, 0, 1, 1]
    assert data.feature_names == ("x0", "x1")


def test_npz_with_one_array_per_column(tmp_path):
    np.savez(tmp_path / "d.npz", height=np.array([1.0, 2, 3]), width=np.array([4, 5, 6]),
             kind=np.array(["b", "a", "b"]))
    data = load_dataset({"path": "d.npz", "target": "kind"}, base_dir=tmp_path)
    assert data.feature_names == ("height", "width")
    np.testing.assert_array_equal(data.X, [[1, 4], [2, 5], [3, 6]])
    assert data.classes.tolist() == ["a", "b"] and data.y.tolist() == [1, 0, 1]


def test_npz_problems_name_the_array(tmp_path):
    np.savez(tmp_path / "d.npz", a=np.array([1.0, np.nan]), b=np.array(["x", "y"]),
             y=np.array([0, 1]))
    with pytest.raises(DatasetError) as err:
        load_dataset({"path": "d.npz", "target": "y"}, base_dir=tmp_path)
    assert len(err.value.problems) == 2
    assert "'a'" in str(err.value) and "row index 1" in str(err.value)
    assert "'b'" in str(err.value) and "numeric" in str(err.value)


def test_npz_missing_target_lists_the_arrays(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.zeros((2, 2)), label=np.array([0, 1]))
    with pytest.raises(DatasetError, match=r"d\.npz.*'y'.*'X', 'label'"):
        load_dataset({"path": "d.npz", "target": "y"}, base_dir=tmp_path)


def test_npz_with_pickled_objects_is_refused(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.zeros((2, 1)), y=np.array([{}, []], dtype=object))
    with pytest.raises(DatasetError, match="pickle"):
        load_dataset({"path": "d.npz", "target": "y"}, base_dir=tmp_path)


# ---------------------------------------------------------------- separate files


def test_separate_files_keep_their_blocks_in_order(tmp_path):
    write(tmp_path / "train.csv", "a,b,label\n1,2,x\n3,4,y\n5,6,x\n")
    write(tmp_path / "dev.csv", "b,a,label\n20,10,y\n")  # same columns, other order
    write(tmp_path / "test.csv", "a,b,label\n100,200,z\n300,400,x\n")
    with pytest.warns(UserWarning, match="lacks"):  # z: a test class the train file lacks
        data = load_dataset({"train": "train.csv", "dev": "dev.csv", "test": "test.csv",
                             "target": "label"}, base_dir=tmp_path)
    assert data.predefined == (3, 1, 2)
    np.testing.assert_array_equal(data.X[:, 0], [1, 3, 5, 10, 100, 300])
    assert data.classes.tolist() == ["x", "y", "z"]
    assert data.y.tolist() == [0, 1, 0, 1, 2, 0]


def test_separate_npz_files(tmp_path):
    for part, n in (("tr", 4), ("dv", 2), ("te", 2)):
        np.savez(tmp_path / f"{part}.npz", X=np.ones((n, 3)), y=np.arange(n) % 2)
    data = load_dataset({"train": "tr.npz", "dev": "dv.npz", "test": "te.npz", "target": "y"},
                        base_dir=tmp_path)
    assert data.predefined == (4, 2, 2) and data.X.shape == (8, 3)


def test_separate_files_with_different_columns_are_an_error(tmp_path):
    write(tmp_path / "train.csv", "a,b,label\n1,2,x\n3,4,y\n")
    write(tmp_path / "dev.csv", "a,c,label\n1,2,x\n")
    write(tmp_path / "test.csv", "a,b,label\n1,2,x\n")
    with pytest.raises(DatasetError, match=r"dev\.csv.*missing \['b'\], extra \['c'\]"):
        load_dataset({"train": "train.csv", "dev": "dev.csv", "test": "test.csv",
                      "target": "label"}, base_dir=tmp_path)


def test_separate_files_report_problems_of_every_file(tmp_path):
    write(tmp_path / "train.csv", "a,label\n1,x\nq,y\n")
    write(tmp_path / "test.csv", "a,label\n1,x\n")
    with pytest.raises(DatasetError) as err:
        load_dataset({"train": "train.csv", "dev": "dev.csv", "test": "test.csv",
                      "target": "label"}, base_dir=tmp_path)
    assert len(err.value.problems) == 2
    assert "'q'" in err.value.problems[0] and "dev.csv" in err.value.problems[1]


def test_separate_files_need_all_three_parts():
    with pytest.raises(DatasetError, match="dataset.test: missing"):
        load_dataset({"train": "a.csv", "dev": "b.csv", "target": "y"})


def test_npz_shape_mismatch_is_reported_with_label_problems(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.zeros((3, 2)), y=np.array([0.0, np.nan]))
    with pytest.raises(DatasetError) as err:
        load_dataset({"path": "d.npz", "target": "y"}, base_dir=tmp_path)
    assert len(err.value.problems) == 2
    assert "'y'" in err.value.problems[0] and "(3, 2)" in err.value.problems[1]


# ---------------------------------------------------------------- files that only look right


def test_npz_byte_labels_that_are_not_utf8_are_a_problem_not_a_crash(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.zeros((2, 1)), y=np.array([b"\xff", b"ok"]))
    with pytest.raises(DatasetError) as err:
        load_dataset({"path": "d.npz", "target": "y"}, base_dir=tmp_path)
    [problem] = err.value.problems
    assert "target 'y' holds byte strings that are not UTF-8 text (e.g. b'\\xff')" in problem


def test_npz_utf8_byte_labels_become_text(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.arange(2.0).reshape(2, 1), y=np.array([b"b", b"a"]))
    data = load_dataset({"path": "d.npz", "target": "y"}, base_dir=tmp_path)
    assert data.classes.tolist() == ["a", "b"]


def test_npz_member_that_is_not_an_npy_array_is_named(tmp_path):
    with zipfile.ZipFile(tmp_path / "d.npz", "w") as z:
        z.writestr("X.npy", b"garbage")
        with z.open("y.npy", "w") as f:
            np.save(f, np.array([0, 1]))
    with pytest.raises(DatasetError) as err:
        load_dataset({"path": "d.npz", "target": "y"}, base_dir=tmp_path)
    [problem] = err.value.problems
    assert problem.endswith("d.npz: 'X' is not a .npy array; a .npz must hold only arrays, as "
                            "numpy.savez writes them")


@pytest.mark.parametrize("shape", [(4, 0), (4,)])
def test_npz_X_needs_at_least_one_feature_column(tmp_path, shape):
    np.savez(tmp_path / "d.npz", X=np.zeros(shape), y=np.array([0, 1, 0, 1]))
    with pytest.raises(DatasetError, match=r"array 'X' has shape \(4,( 0)?\); expected \(4, n\) "
                       r"with n >= 1 feature columns"):
        load_dataset({"path": "d.npz", "target": "y"}, base_dir=tmp_path)


def test_a_text_file_named_npz_is_not_called_pickled(tmp_path):
    write(tmp_path / "d.npz", "a,label\n1,0\n2,1\n")
    with pytest.raises(DatasetError) as err:
        load_dataset({"path": "d.npz", "target": "label"}, base_dir=tmp_path)
    assert "not a .npz (zip) file" in str(err.value)
    assert "pickle" not in str(err.value)


SPLIT = {"train": "train.csv", "dev": "dev.csv", "test": "test.csv", "target": "label"}


def test_a_train_file_with_one_class_is_refused_even_when_dev_has_two(tmp_path):
    write(tmp_path / "train.csv", "a,label\n1,x\n2,x\n")
    write(tmp_path / "dev.csv", "a,label\n1,x\n2,y\n")
    write(tmp_path / "test.csv", "a,label\n1,y\n")
    with pytest.raises(DatasetError, match=r"dataset.train \(train.csv\): the target has one "
                       r"class \('x'\) in 2 examples; the train file needs at least 2 classes"):
        load_dataset(SPLIT, base_dir=tmp_path)


def test_dev_or_test_classes_the_train_file_lacks_warn(tmp_path):
    write(tmp_path / "train.csv", "a,label\n1,0\n2,1\n")
    write(tmp_path / "dev.csv", "a,label\n1,2\n2,1\n3,2\n")
    write(tmp_path / "test.csv", "a,label\n1,0\n")
    with pytest.warns(UserWarning) as said:
        data = load_dataset(SPLIT, base_dir=tmp_path)
    assert data.classes.tolist() == [0, 1, 2]
    [warning] = said
    assert str(warning.message).startswith("dataset.dev (dev.csv): 2 of 3 examples have classes "
                                           "the train file lacks (2)")


def test_dev_and_test_within_the_train_classes_do_not_warn(tmp_path):
    write(tmp_path / "train.csv", "a,label\n1,0\n2,1\n")
    write(tmp_path / "dev.csv", "a,label\n1,1\n")
    write(tmp_path / "test.csv", "a,label\n1,0\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_dataset(SPLIT, base_dir=tmp_path)
