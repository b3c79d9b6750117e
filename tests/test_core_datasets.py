"""Tests for core.datasets: generators, bundled data, CSV / NPZ files and their errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from core.datasets import (
    BUNDLED,
    DATASETS,
    GENERATED,
    Dataset,
    DatasetError,
    dataset_param_names,
    load_dataset,
)

# name -> (default m, default K)
GENERATOR_DEFAULTS = {
    "circles": (400, 2), "moons": (400, 2), "flower": (400, 2), "spiral": (300, 3),
    "blobs": (300, 3),
}


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def write(path, text: str):
    path.write_text(text)
    return path


# ---------------------------------------------------------------- generators


def test_the_tables_list_every_builtin_dataset():
    assert set(GENERATED) == set(GENERATOR_DEFAULTS)
    assert set(BUNDLED) == {"digits", "breast_cancer", "iris", "wine"}
    assert set(DATASETS) == set(GENERATED) | set(BUNDLED)


@pytest.mark.parametrize("name", sorted(GENERATOR_DEFAULTS))
def test_generators_have_their_default_shapes_and_classes(name):
    m, k = GENERATOR_DEFAULTS[name]
    data = load_dataset({"name": name}, rng=rng())
    assert data.X.shape == (m, 2) and data.X.dtype == np.float64
    assert data.y.shape == (m,) and data.y.dtype == np.int64
    assert data.classes.tolist() == list(range(k))
    assert np.bincount(data.y).min() >= m // k
    assert data.name == name and data.predefined is None
    assert data.n_features == 2 and data.n_classes == k
    assert data.feature_names == ("x0", "x1")


@pytest.mark.parametrize("name", sorted(GENERATOR_DEFAULTS))
def test_generators_repeat_with_a_seed_and_differ_with_another(name):
    a = load_dataset({"name": name}, rng=rng(7))
    b = load_dataset({"name": name}, rng=rng(7))
    c = load_dataset({"name": name}, rng=rng(8))
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.allclose(a.X, c.X)


def test_generators_never_touch_the_global_random_state():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    for name in GENERATED:
        load_dataset({"name": name}, rng=rng())
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_circles_inner_ring_has_radius_ratio_point_eight():
    data = load_dataset({"name": "circles", "noise": 0.0}, rng=rng())
    radius = np.linalg.norm(data.X, axis=1)
    np.testing.assert_allclose(radius[data.y == 0], 1.0)
    np.testing.assert_allclose(radius[data.y == 1], 0.8)
    noisy = load_dataset({"name": "circles", "n_samples": 2000}, rng=rng())
    r = np.linalg.norm(noisy.X, axis=1)
    assert r[noisy.y == 1].mean() / r[noisy.y == 0].mean() == pytest.approx(0.8, abs=0.01)


def test_circles_factor_and_sizes_are_configurable():
    data = load_dataset({"name": "circles", "n_samples": 51, "noise": 0, "factor": 0.5},
                        rng=rng())
    assert data.X.shape == (51, 2)
    np.testing.assert_allclose(np.linalg.norm(data.X[data.y == 1], axis=1), 0.5)


def test_flower_has_400_points_in_two_classes_within_its_petals():
    data = load_dataset({"name": "flower"}, rng=rng())
    assert data.X.shape == (400, 2)
    assert np.bincount(data.y).tolist() == [200, 200]
    assert np.linalg.norm(data.X, axis=1).max() < 4.0 + 1.5


def test_flower_noise_scales_the_spread():
    clean = load_dataset({"name": "flower", "noise": 0.0}, rng=rng())
    r = np.linalg.norm(clean.X, axis=1)
    assert r.max() <= 4.0 + 1e-9


def test_spiral_and_blobs_take_classes_and_features():
    spiral = load_dataset({"name": "spiral", "classes": 5, "n_samples": 101}, rng=rng())
    assert spiral.n_classes == 5 and spiral.X.shape == (101, 2)
    blobs = load_dataset({"name": "blobs", "classes": 4, "n_features": 6,
                          "cluster_std": 0.1}, rng=rng())
    assert blobs.X.shape == (300, 6) and blobs.n_classes == 4
    # tight blobs: every point is nearest its own class mean
    means = np.stack([blobs.X[blobs.y == k].mean(0) for k in range(4)])
    nearest = np.argmin(((blobs.X[:, None, :] - means) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(nearest, blobs.y)


def test_unknown_generator_keys_name_the_key_and_the_allowed_ones():
    with pytest.raises(DatasetError) as err:
        load_dataset({"name": "moons", "factor": 0.5, "classes": 3}, rng=rng())
    assert len(err.value.problems) == 2
    assert "'factor'" in str(err.value) and "n_samples, noise" in str(err.value)


def test_bad_generator_values_are_all_reported():
    with pytest.raises(DatasetError) as err:
        load_dataset({"name": "circles", "n_samples": 1, "noise": -1, "factor": 1.5},
                     rng=rng())
    text = str(err.value)
    assert len(err.value.problems) == 3
    assert "dataset.noise: -1" in text and ">= 0" in text and "dataset.factor" in text


def test_too_few_samples_for_the_classes_is_an_error():
    with pytest.raises(DatasetError, match="cannot fill 5 classes"):
        load_dataset({"name": "spiral", "n_samples": 4, "classes": 5}, rng=rng())


def test_unknown_dataset_name_lists_the_builtin_ones():
    with pytest.raises(DatasetError, match="unknown dataset 'cirles'.*circles"):
        load_dataset({"name": "cirles"}, rng=rng())


def test_generators_need_an_rng():
    with pytest.raises(ValueError, match="Generator"):
        load_dataset({"name": "circles"})


def test_dataset_param_names_lists_each_generators_keys():
    assert dataset_param_names("circles") == ("n_samples", "noise", "factor")
    assert "classes" in dataset_param_names("spiral")
    assert dataset_param_names("iris") == ()
    with pytest.raises(DatasetError):
        dataset_param_names("nope")


# ---------------------------------------------------------------- bundled


@pytest.mark.parametrize("name, shape, k", [
    ("digits", (1797, 64), 10), ("breast_cancer", (569, 30), 2),
    ("iris", (150, 4), 3), ("wine", (178, 13), 3),
])
def test_bundled_datasets_load_with_their_shapes(name, shape, k):
    data = load_dataset({"name": name})
    assert data.X.shape == shape and data.n_classes == k
    assert len(data.feature_names) == shape[1] and data.y.max() == k - 1


def test_bundled_labels_are_the_real_target_names():
    data = load_dataset("breast_cancer")
    assert data.classes.tolist() == ["benign", "malignant"]
    assert np.bincount(data.y).tolist() == [357, 212]
    assert load_dataset("iris").classes.tolist() == ["setosa", "versicolor", "virginica"]
    assert load_dataset("digits").classes.tolist() == list(range(10))


def test_bundled_datasets_take_no_extra_keys():
    with pytest.raises(DatasetError, match="allowed: none"):
        load_dataset({"name": "iris", "n_samples": 10})


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


def test_dataset_error_survives_pickling():
    err = pickle.loads(pickle.dumps(DatasetError(["one", "two"])))
    assert err.problems == ["one", "two"] and str(err) == "one\ntwo"


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


def test_dataset_checks_its_shapes():
    with pytest.raises(ValueError):
        Dataset(np.zeros((3, 2)), np.zeros(2), np.array([0, 1]), ("a", "b"), "d")
    with pytest.raises(ValueError):
        Dataset(np.zeros((3, 2)), np.zeros(3), np.array([0, 1]), ("a", "b"), "d", (1, 1, 2))


def test_npz_shape_mismatch_is_reported_with_label_problems(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.zeros((3, 2)), y=np.array([0.0, np.nan]))
    with pytest.raises(DatasetError) as err:
        load_dataset({"path": "d.npz", "target": "y"}, base_dir=tmp_path)
    assert len(err.value.problems) == 2
    assert "'y'" in err.value.problems[0] and "(3, 2)" in err.value.problems[1]
