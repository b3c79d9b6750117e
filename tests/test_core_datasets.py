"""Tests for core.datasets: generators and their parameter rules, bundled data, the record.

Users' CSV and NPZ files are in test_core_datafiles.py.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from core.datasets import (
    BUNDLED,
    DATASETS,
    GENERATED,
    PARAM_RULES,
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
    assert "dataset.noise: got -1; noise must be a number >= 0" in text
    assert "dataset.factor: got 1.5" in text


def test_too_few_samples_for_the_classes_is_an_error():
    with pytest.raises(DatasetError, match=r"must be >= classes \(here 4 points for 5 classes\)"):
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
    with pytest.raises(DatasetError, match="iris takes no parameters"):
        load_dataset({"name": "iris", "n_samples": 10})


# ---------------------------------------------------------------- the Dataset record


def test_dataset_error_survives_pickling():
    err = pickle.loads(pickle.dumps(DatasetError(["one", "two"])))
    assert err.problems == ["one", "two"] and str(err) == "one\ntwo"


def test_dataset_checks_its_shapes():
    with pytest.raises(ValueError):
        Dataset(np.zeros((3, 2)), np.zeros(2), np.array([0, 1]), ("a", "b"), "d")
    with pytest.raises(ValueError):
        Dataset(np.zeros((3, 2)), np.zeros(3), np.array([0, 1]), ("a", "b"), "d", (1, 1, 2))


# ---------------------------------------------------------------- parameter rules


@pytest.mark.parametrize(
    "config, problem",
    [
        ({"name": "circles", "n_samples": 100_000_000_000},
         "dataset.n_samples: got 100000000000; n_samples must be an integer in [2, 10,000,000]"),
        ({"name": "blobs", "n_features": 10_001}, "n_features must be an integer in [1, 10000]"),
        ({"name": "spiral", "classes": 1001}, "classes must be an integer in [2, 1000]"),
        ({"name": "blobs", "n_samples": 100_000, "n_features": 1000},
         ("dataset.n_samples: got 100,000; n_samples x n_features must be at most 20,000,000 "
         "(here 100,000 x 1,000 = 100,000,000)")),
        ({"name": "spiral", "classes": 400}, ("dataset.classes: got 400; n_samples must be >= "
                                             "classes (here 300 points for 400 classes)")),
        ({"name": "circles", "n_samples": True}, "dataset.n_samples: got true; n_samples must"),
        ({"name": "blobs", "center_box": [1, -1]},
         "dataset.center_box: got [1, -1]; center_box must be [low, high]"),
    ],
)
def test_generator_sizes_are_bounded_before_anything_is_allocated(config, problem):
    with pytest.raises(DatasetError) as err:
        load_dataset(config, rng=rng())
    assert any(problem in p for p in err.value.problems), err.value.problems


def test_param_rules_cover_every_generator_parameter():
    taken = {p for name in GENERATED for p in dataset_param_names(name)}
    assert taken == set(PARAM_RULES)
