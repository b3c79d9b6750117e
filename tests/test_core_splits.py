"""Tests for core.splits: the split rule, sizes, normalization and prepared data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from core.datasets import Dataset, DatasetError, load_dataset
from core.splits import Normalizer, PreparedData, prepare, split_fractions, split_sizes


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def make_dataset(m: int = 50, n: int = 3, seed: int = 0, predefined=None) -> Dataset:
    r = np.random.default_rng(seed)
    X = r.normal(5.0, 3.0, (m, n))
    y = np.arange(m) % 2
    return Dataset(X, y, np.array(["no", "yes"]), tuple(f"f{i}" for i in range(n)), "toy",
                   predefined)


# ---------------------------------------------------------------- the split rule


def test_auto_split_is_60_20_20_below_a_million():
    assert split_fractions(999_999) == (0.6, 0.2, 0.2)
    assert split_fractions(10, "auto") == (0.6, 0.2, 0.2)
    assert split_fractions(10, None) == (0.6, 0.2, 0.2)


def test_auto_split_is_98_1_1_from_a_million():
    assert split_fractions(1_000_000) == (0.98, 0.01, 0.01)
    assert split_sizes(1_000_000, split_fractions(1_000_000)) == (980_000, 10_000, 10_000)


def test_given_fractions_are_used():
    assert split_fractions(100, {"train": 0.7, "dev": 0.15, "test": 0.15}) == (0.7, 0.15, 0.15)
    assert split_fractions(100, [0.5, 0.25, 0.25]) == (0.5, 0.25, 0.25)
    assert split_sizes(100, (0.7, 0.15, 0.15)) == (70, 15, 15)


@pytest.mark.parametrize("split, match", [
    ({"train": 0.7, "dev": 0.2, "test": 0.2}, "sum to"),
    ({"train": 0.8, "dev": 0.2}, "expected keys"),
    ({"train": 1.0, "dev": 0.0, "test": 0.0}, "split.train"),
    ((0.5, 0.5), "3 fractions"),
    ("halves", "unknown rule"),
    ({"train": "0.6", "dev": 0.2, "test": 0.2}, "split.train"),
])
def test_bad_fractions_are_refused(split, match):
    with pytest.raises(ValueError, match=match):
        split_fractions(100, split)


def test_fractions_sum_within_tolerance():
    assert split_fractions(10, (0.6, 0.3, 0.1 + 1e-10))[2] == pytest.approx(0.1)


@pytest.mark.parametrize("m", [4, 5, 7, 10, 13, 101, 999])
def test_sizes_sum_to_m_and_none_is_empty(m):
    sizes = split_sizes(m, (0.6, 0.2, 0.2))
    assert sum(sizes) == m and min(sizes) >= 1 and sizes[0] >= 2


def test_too_small_dataset_says_what_it_got_and_what_it_needs():
    with pytest.raises(DatasetError) as err:
        split_sizes(3, (0.6, 0.2, 0.2))
    text = str(err.value)
    assert "too small" in text and "3 examples give 1/1/1" in text and "at least 2" in text
    with pytest.raises(DatasetError, match="give 2/0/0"):
        split_sizes(2, (0.6, 0.2, 0.2))
    assert split_sizes(5, (0.6, 0.2, 0.2)) == (3, 1, 1)


def test_prepare_refuses_a_dataset_too_small_to_split():
    with pytest.raises(DatasetError, match="too small"):
        prepare(make_dataset(m=3), rng=rng())


# ---------------------------------------------------------------- normalization


def test_normalizer_fit_uses_mean_and_std_and_guards_constant_columns():
    X = np.array([[1.0, 7.0], [3.0, 7.0], [5.0, 7.0]])
    norm = Normalizer.fit(X)
    np.testing.assert_allclose(norm.mean, [3.0, 7.0])
    np.testing.assert_allclose(norm.std, [np.std([1, 3, 5]), 1.0])
    out = norm.transform(X)
    assert out.dtype == np.float64 and np.isfinite(out).all()
    np.testing.assert_allclose(out[:, 1], 0.0)
    assert norm.transform(X, "float32").dtype == np.float32
    tenths = np.full((7, 1), 0.1)  # their computed mean is 0.09999999999999999
    assert np.array_equal(Normalizer.fit(tenths).transform(tenths), np.zeros((7, 1)))


def test_identity_normalizer_changes_nothing():
    X = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(Normalizer.identity(2).transform(X), X)
    with pytest.raises(ValueError, match=r"\(m, 3\)"):
        Normalizer.identity(3).transform(X)


def test_train_split_is_standardized_after_prepare():
    data = prepare(make_dataset(m=200), rng=rng(), dtype="float64")
    np.testing.assert_allclose(data.X_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(data.X_train.std(axis=0), 1.0, atol=1e-12)
    # dev and test are not re-centred on their own statistics
    assert np.abs(data.X_dev.mean(axis=0)).max() > 1e-6


def test_dev_and_test_use_the_train_statistics_exactly():
    dataset = make_dataset(m=100)
    data = prepare(dataset, rng=rng(3), dtype="float64")
    raw = prepare(dataset, rng=rng(3), normalize=False, dtype="float64")
    mean, std = raw.X_train.mean(axis=0), raw.X_train.std(axis=0)
    np.testing.assert_allclose(data.normalizer.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(data.normalizer.std, std, rtol=1e-12)
    np.testing.assert_allclose(data.X_dev, (raw.X_dev - mean) / std, rtol=1e-12)
    np.testing.assert_allclose(data.X_test, (raw.X_test - mean) / std, rtol=1e-12)


def test_changing_dev_rows_does_not_change_the_normalizer():
    base = make_dataset(m=30, predefined=(20, 5, 5))
    X = base.X.copy()
    X[20:] = 1e6  # wildly different dev and test rows
    other = Dataset(X, base.y, base.classes, base.feature_names, "toy", (20, 5, 5))
    a, b = prepare(base), prepare(other)
    np.testing.assert_array_equal(a.normalizer.mean, b.normalizer.mean)
    np.testing.assert_array_equal(a.normalizer.std, b.normalizer.std)
    np.testing.assert_array_equal(a.X_train, b.X_train)


def test_without_normalize_the_normalizer_is_the_identity():
    data = prepare(make_dataset(), rng=rng(), normalize=False)
    np.testing.assert_array_equal(data.normalizer.mean, 0.0)
    np.testing.assert_array_equal(data.normalizer.std, 1.0)
    assert data.normalizer.mean.dtype == np.float64


# ---------------------------------------------------------------- prepared data


def test_prepare_shuffles_and_cuts_by_the_split():
    dataset = make_dataset(m=50)
    data = prepare(dataset, split={"train": 0.6, "dev": 0.2, "test": 0.2}, rng=rng(),
                   normalize=False, dtype="float64")
    assert (len(data.y_train), len(data.y_dev), len(data.y_test)) == (30, 10, 10)
    rows = np.vstack([data.X_train, data.X_dev, data.X_test])
    assert not np.array_equal(rows, dataset.X)  # shuffled
    order = np.lexsort(rows.T)
    np.testing.assert_array_equal(rows[order], dataset.X[np.lexsort(dataset.X.T)])
    assert data.X_train.dtype == np.float64 and data.y_train.dtype == np.int64
    assert data.n_features == 3 and data.n_classes == 2
    assert data.classes.tolist() == ["no", "yes"] and data.feature_names == ("f0", "f1", "f2")
    assert data.name == "toy"


def test_labels_follow_their_rows_through_the_shuffle():
    X = np.arange(40.0).reshape(20, 2)
    y = (np.arange(20) % 3 == 0).astype(int)
    data = prepare(Dataset(X, y, np.array([0, 1]), ("a", "b"), "t"), rng=rng(),
                   normalize=False, dtype="float64")
    for Xs, ys in ((data.X_train, data.y_train), (data.X_dev, data.y_dev)):
        np.testing.assert_array_equal(ys, ((Xs[:, 0] // 2) % 3 == 0).astype(int))


def test_predefined_blocks_are_used_in_order_without_shuffle():
    dataset = make_dataset(m=12, predefined=(6, 3, 3))
    data = prepare(dataset, normalize=False, dtype="float64")
    np.testing.assert_array_equal(data.X_train, dataset.X[:6])
    np.testing.assert_array_equal(data.X_dev, dataset.X[6:9])
    np.testing.assert_array_equal(data.X_test, dataset.X[9:])
    with pytest.warns(UserWarning, match="ignored"):
        prepare(dataset, split={"train": 0.5, "dev": 0.25, "test": 0.25})


def test_predefined_files_load_and_prepare(tmp_path):
    (tmp_path / "a.csv").write_text("x,l\n1,p\n2,q\n3,p\n")
    (tmp_path / "b.csv").write_text("x,l\n4,q\n")
    (tmp_path / "c.csv").write_text("x,l\n5,p\n")
    dataset = load_dataset({"train": "a.csv", "dev": "b.csv", "test": "c.csv", "target": "l"},
                           base_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = prepare(dataset, dtype="float64")
    np.testing.assert_allclose(data.normalizer.mean, [2.0])
    np.testing.assert_allclose(data.X_test, [[(5 - 2) / np.std([1, 2, 3])]])


def test_prepare_needs_an_rng_to_shuffle():
    with pytest.raises(ValueError, match="Generator"):
        prepare(make_dataset())


def test_prepare_refuses_non_float_dtypes():
    with pytest.raises(ValueError, match="floating-point"):
        prepare(make_dataset(), rng=rng(), dtype="int32")


def test_prepared_arrays_are_read_only():
    data = prepare(make_dataset(), rng=rng())
    for array in (data.X_train, data.y_train, data.X_dev, data.X_test, data.normalizer.mean):
        with pytest.raises(ValueError):
            array[0] = 0


def test_fingerprint_is_stable_for_the_same_data_and_seed():
    a = prepare(make_dataset(), rng=rng(1))
    b = prepare(make_dataset(), rng=rng(1))
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 64


def test_fingerprint_changes_with_the_seed_or_the_data():
    base = prepare(make_dataset(), rng=rng(1)).fingerprint
    assert prepare(make_dataset(), rng=rng(2)).fingerprint != base
    assert prepare(make_dataset(seed=9), rng=rng(1)).fingerprint != base
    relabelled = make_dataset()
    relabelled = Dataset(relabelled.X, relabelled.y, np.array(["a", "b"]),
                         relabelled.feature_names, "toy")
    assert prepare(relabelled, rng=rng(1)).fingerprint != base


def test_fingerprint_ignores_normalization_and_dtype():
    fingerprints = {prepare(make_dataset(), rng=rng(1), normalize=norm, dtype=dtype).fingerprint
                    for norm in (True, False) for dtype in ("float32", "float64")}
    assert len(fingerprints) == 1


def test_without_test_drops_the_test_set_only():
    data = prepare(make_dataset(m=50), rng=rng())
    blind = data.without_test()
    assert isinstance(blind, PreparedData)
    assert blind.X_test.shape == (0, 3) and blind.y_test.shape == (0,)
    assert blind.X_test.dtype == data.X_test.dtype and blind.y_test.dtype == np.int64
    assert data.X_test.shape == (10, 3)  # the original keeps its test set
    np.testing.assert_array_equal(blind.X_train, data.X_train)
    assert blind.fingerprint == data.fingerprint


def test_generated_data_prepares_end_to_end():
    data = prepare(load_dataset({"name": "circles"}, rng=rng(0)), rng=rng(1))
    assert data.X_train.shape == (240, 2) and data.X_train.dtype == np.float32
    assert len(data.y_dev) == len(data.y_test) == 80
