"""Training runs end to end: learning, early stopping, divergence, reproducibility."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

from core.config import TrainConfig
from core.network import error_rate
from core.train import TrainOutcome, train


def _blobs(seed: int, m: int, n_classes: int = 2, n: int = 2, sep: float = 3.0, flip: float = 0.0):
    """Unit Gaussian blobs with centres ``sep`` apart on a circle; train and dev share them."""
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * np.arange(n_classes) / n_classes
    radius = sep / (2 * np.sin(np.pi / n_classes))  # neighbouring centres sep apart
    centers = np.zeros((n_classes, n))
    centers[:, 0], centers[:, 1] = radius * np.cos(angles), radius * np.sin(angles)
    y = np.arange(2 * m) % n_classes
    X = centers[y] + rng.normal(size=(2 * m, n))
    y_noisy = np.where(rng.random(2 * m) < flip, rng.integers(0, n_classes, 2 * m), y)
    return X[:m], y_noisy[:m], X[m:], y[m:]


def _train(config: TrainConfig, data, n_classes: int, seed: int = 0, **kwargs) -> TrainOutcome:
    X, y, Xd, yd = data
    return train(config, X, y, Xd, yd, n_classes, np.random.default_rng(seed), **kwargs)


def test_learns_a_separable_problem():
    data = _blobs(0, 300, n_classes=3, sep=7.0)
    config = TrainConfig(
        architecture=(16,), optimizer="adam", learning_rate=0.01, epochs=30, batch_size=32
    )
    out = _train(config, data, 3)
    assert out.status == "finished" and out.reason is None
    assert out.dev_error < 0.03 and out.train_error < 0.03
    assert out.history["cost"][-1] < 0.3 * out.history["cost"][0]
    assert out.gradient_health == "ok" and out.warnings == ()
    assert out.dev_proba.shape == (300, 3) and out.dev_proba.dtype == np.float32
    np.testing.assert_allclose(out.dev_proba.sum(axis=1), 1.0, atol=1e-5)
    assert np.mean(out.dev_proba.argmax(axis=1) != data[3]) == pytest.approx(out.dev_error)
    assert out.n_params == 2 * 16 + 16 + 16 * 3 + 3 and out.n_classes == 3


def test_early_stopping_stops_and_restores_the_best_weights():
    # 40 noisy training points and a wide network: dev error bottoms out early, then rises.
    data = _blobs(0, 40, n=10, sep=1.0, flip=0.3)
    config = TrainConfig(
        architecture=(64, 64), learning_rate=0.01, epochs=300, batch_size=None, patience=15
    )
    out = _train(config, data, 2)
    dev = out.history["dev_error"]
    assert out.status == "finished" and out.reason.startswith("early stopping")
    assert out.epochs_run < 300 and out.best_epoch < out.epochs_run - 1
    assert out.epochs_run == out.best_epoch + 15 + 1
    assert dev[-1] > min(dev)  # the final weights were worse, so restoring matters
    assert out.dev_error == min(dev) == dev[out.best_epoch]
    assert error_rate(out.params, data[2].astype(np.float32), data[3], "relu") == out.dev_error
    assert out.train_cost == out.history["cost"][out.best_epoch]


def test_absurd_learning_rate_diverges_without_raising():
    data = _blobs(1, 200, n_classes=3)
    config = TrainConfig(
        architecture=(20,), optimizer="gd", learning_rate=10.0, epochs=200, batch_size=32
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and silently: no overflow warnings leak out
        out = _train(config, data, 3)
    assert out.status == "diverged"
    assert re.fullmatch(
        r"cost (exploded from \S+ to \S+|became (nan|inf)) at epoch \d+", out.reason
    )
    assert out.epochs_run < 200 and len(out.history["cost"]) == out.epochs_run
    assert all(np.isfinite(p).all() for p in out.params.values())
    assert math.isfinite(out.dev_error) and out.gradient_health == "exploding"


def test_nan_cost_is_reported_as_divergence():
    data = _blobs(1, 100)
    config = TrainConfig(
        architecture=(8,), optimizer="gd", learning_rate=1e6, epochs=20, batch_size=10
    )
    out = _train(config, data, 2)
    assert out.status == "diverged"
    assert re.search(r"(nan|inf|non-finite) at epoch 0$", out.reason)
    assert out.best_epoch == -1 and math.isnan(out.train_cost)
    assert all(np.isfinite(p).all() for p in out.params.values())  # the initial weights


def test_zeros_initialization_stays_at_ln2_and_warns_about_symmetry():
    data = _blobs(2, 200)
    config = TrainConfig(
        architecture=(10, 5),
        initializer="zeros",
        optimizer="gd",
        learning_rate=0.1,
        epochs=50,
        batch_size=None,
    )
    out = _train(config, data, 2)
    assert out.status == "finished"
    assert max(abs(c - math.log(2)) for c in out.history["cost"]) < 1e-4
    assert out.dev_error == pytest.approx(0.5)
    assert len(out.warnings) == 2
    assert out.warnings[0].startswith(
        "zeros initialization left the 10 units of hidden layer 1 identical"
    )
    assert "symmetry was never broken" in out.warnings[1]
    # No gradient ever reaches a weight (relu(0) = 0 all the way up): not "ok".
    assert all(v == 0 for k, v in out.history.items() if k.startswith("grad_norm") for v in v)
    assert out.gradient_health == "vanishing"


def test_huge_first_cost_of_a_wide_random_init_is_not_divergence():
    data = _blobs(3, 200)
    config = TrainConfig(
        architecture=(10, 5),
        initializer="random",
        init_scale=10.0,
        optimizer="gd",
        learning_rate=0.01,
        epochs=30,
        batch_size=None,
    )
    out = _train(config, data, 2)
    assert out.history["cost"][0] > 50
    assert out.status == "finished"


def test_same_seed_gives_an_identical_outcome():
    data = _blobs(4, 150, n_classes=3)
    config = TrainConfig(
        architecture=(12, 6),
        keep_prob=(0.8, 0.9),
        optimizer="adam",
        lr_decay=0.1,
        learning_rate=0.01,
        epochs=8,
        batch_size=16,
        lambd=0.1,
    )
    a, b, c = (_train(config, data, 3, seed=s) for s in (5, 5, 6))
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert a.history == b.history
    assert np.array_equal(a.dev_proba, b.dev_proba)
    assert not np.array_equal(a.params["W1"], c.params["W1"])


def test_history_has_one_entry_per_epoch_and_a_grad_norm_per_layer():
    data = _blobs(5, 100)
    seen = []
    config = TrainConfig(
        architecture=(7, 5, 3),
        optimizer="momentum",
        learning_rate=0.05,
        lr_decay=1.0,
        epochs=6,
        batch_size=25,
    )
    out = _train(config, data, 2, on_epoch=lambda epoch, metrics: seen.append((epoch, metrics)))
    assert set(out.history) == {
        "cost",
        "train_error",
        "dev_error",
        "learning_rate",
        "grad_norm_1",
        "grad_norm_2",
        "grad_norm_3",
        "grad_norm_4",
    }
    assert all(len(v) == 6 for v in out.history.values()) and out.epochs_run == 6
    assert out.history["learning_rate"] == pytest.approx([0.05 / (1 + t) for t in range(6)])
    assert all(v > 0 for k, v in out.history.items() if k.startswith("grad_norm") for v in v)
    assert [e for e, _ in seen] == list(range(6))
    assert [m["dev_error"] for _, m in seen] == out.history["dev_error"]


@pytest.mark.parametrize("n_classes, batch_size", [(3, 64), (2, 48), (4, None)])
def test_history_matches_a_plain_minibatch_loop(n_classes, batch_size):
    """The epoch's reductions (per block and per epoch, not per step) give what a plain loop
    over the public functions gives: several gather blocks and a short last batch here."""
    from core.initializers import init_params
    from core.network import backward, cost, forward, layer_sizes, predict
    from core.optimizers import Adam

    X, y, Xd, yd = _blobs(8, 2100, n_classes=n_classes, n=3, sep=2.0)
    config = TrainConfig(
        architecture=(9, 5), learning_rate=0.01, lambd=0.3, l1=0.01, epochs=3,
        batch_size=batch_size, dtype="float64",
    )
    out = _train(config, (X, y, Xd, yd), n_classes, seed=3)

    rng = np.random.default_rng(3)  # the same draws in the same order as train
    sizes = layer_sizes(3, config.architecture, n_classes)
    params = init_params(sizes, "he", rng, config.init_scale, "float64")
    optimizer = Adam(config.learning_rate)
    step = batch_size or len(X)
    for epoch in range(config.epochs):
        optimizer.set_epoch(epoch)
        perm = rng.permutation(len(X)) if batch_size else np.arange(len(X))
        costs, wrong, norms = [], 0, []
        for i in range(0, len(X), step):
            Xb, yb = X[perm[i : i + step]], y[perm[i : i + step]]
            logits, cache = forward(params, Xb, "relu")
            # A minibatch's share of J: the penalties divide by the training set's m.
            costs.append(cost(logits, yb, params, config.lambd, config.l1, n_classes, m_train=len(X)))
            wrong += int(np.count_nonzero(predict(params, Xb, "relu") != yb))
            grads = backward(params, cache, yb, config.lambd, config.l1, "relu", m_train=len(X))
            norms.append([np.linalg.norm(grads[f"dW{l}"]) for l in (1, 2, 3)])
            optimizer.step(params, grads)
        assert out.history["cost"][epoch] == pytest.approx(np.mean(costs), rel=1e-12)
        assert out.history["train_error"][epoch] == wrong / len(X)
        for l in (1, 2, 3):
            assert out.history[f"grad_norm_{l}"][epoch] == pytest.approx(
                np.mean([n[l - 1] for n in norms]), rel=1e-12
            )
    assert all(np.allclose(out.params[k], params[k], rtol=0, atol=1e-12) for k in params)


def test_a_lambda_decays_the_weights_alike_at_every_batch_size():
    """A step's weight decay is lambda / m_train * W, m_train the training set's size,
    whatever the batch (also the short last one); the cost's penalty likewise."""
    from core.initializers import init_params
    from core.network import backward, cost, forward, layer_sizes

    X, y, _, _ = _blobs(4, 200, n=3)
    params = init_params(layer_sizes(3, (6,), 2), "he", np.random.default_rng(0), 0.01, "float64")
    squares = sum(float(np.sum(params[k] ** 2)) for k in ("W1", "W2"))
    for rows in (200, 64, 8, 1):
        logits, cache = forward(params, X[:rows], "relu")
        plain = backward(params, cache, y[:rows], 0.0, 0.0, "relu")
        decayed = backward(params, cache, y[:rows], 0.7, 0.0, "relu", m_train=200)
        for k in ("W1", "W2"):
            np.testing.assert_allclose(decayed["d" + k] - plain["d" + k], 0.7 / 200 * params[k], atol=1e-15)
        penalty = cost(logits, y[:rows], params, 0.7, 0.0, 2, m_train=200) - cost(
            logits, y[:rows], params, 0.0, 0.0, 2
        )
        assert penalty == pytest.approx(0.7 / 400 * squares, rel=1e-9)


def test_l2_shrinks_the_weights():
    data = _blobs(6, 100, n=5, sep=1.5)
    norms = {}
    for lambd in (0.0, 5.0):
        config = TrainConfig(
            architecture=(20,), lambd=lambd, learning_rate=0.01, epochs=100, batch_size=None
        )
        out = _train(config, data, 2)
        norms[lambd] = sum(
            float(np.sum(out.params[k] ** 2)) for k in out.params if k.startswith("W")
        )
    assert norms[5.0] < 0.7 * norms[0.0]


def test_deep_sigmoid_stack_reports_vanishing_gradients():
    data = _blobs(7, 100, n_classes=3)
    config = TrainConfig(
        architecture=(20,) * 8,
        activation="sigmoid",
        initializer="random",
        init_scale=0.1,
        optimizer="gd",
        epochs=2,
        batch_size=None,
    )
    out = _train(config, data, 3)
    assert out.gradient_health == "vanishing"
    assert out.history["grad_norm_1"][0] < 1e-4 * out.history["grad_norm_9"][0]


def test_float64_training_and_untouched_inputs():
    X, y, Xd, yd = _blobs(8, 60)
    X_before = X.copy()
    config = TrainConfig(architecture=(4,), dtype="float64", keep_prob=0.5, epochs=3, batch_size=7)
    out = train(config, X, y, Xd, yd, 2, np.random.default_rng(0))
    assert all(p.dtype == np.float64 for p in out.params.values())
    assert np.array_equal(X, X_before)


def test_labels_that_are_not_class_indices_are_rejected():
    X, y, Xd, yd = _blobs(2, 20)
    with pytest.raises(ValueError, match="integers"):
        train(TrainConfig(architecture=(3,)), X, y.astype(float), Xd, yd, 2, np.random.default_rng(0))


def test_labels_outside_the_classes_are_rejected():
    X, y, Xd, yd = _blobs(9, 20, n_classes=3)
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        train(TrainConfig(architecture=(3,)), X, y, Xd, yd, 2, np.random.default_rng(0))


@pytest.mark.gpu
def test_gpu_training_matches_cpu_training():
    cupy = pytest.importorskip("cupy")
    data = _blobs(10, 200)
    config = TrainConfig(
        architecture=(16, 8),
        optimizer="adam",
        learning_rate=0.01,
        epochs=20,
        batch_size=None,
        dtype="float64",
    )
    cpu = _train(config, data, 2)
    gpu = _train(config, data, 2, xp=cupy)
    assert isinstance(gpu.params["W1"], np.ndarray)
    np.testing.assert_allclose(gpu.history["cost"], cpu.history["cost"], rtol=1e-6)
    assert gpu.dev_error == cpu.dev_error


@pytest.mark.parametrize("batch_size", [None, 32])
def test_an_epoch_never_copies_the_training_set(batch_size):
    """Minibatches are gathered a block at a time; one batch of the whole set is used as
    it is (no gather buffers at all)."""
    from core._epoch import EVAL_ROWS, Data, Net, run_epoch
    from core.initializers import init_params
    from core.network import targets
    from core.optimizers import Adam

    X, y, Xd, yd = _blobs(9, 3000, n_classes=3, n=4)
    X, Xd = X.astype(np.float32), Xd.astype(np.float32)
    params = init_params([4, 8, 3], "he", np.random.default_rng(0), 0.01, "float32")
    net = Net.pack(params, max(batch_size or len(X), EVAL_ROWS), np)  # as train sizes it
    data = Data(X, targets(y, 3, np.float32), y, Xd, yd)
    config = TrainConfig(architecture=(8,), batch_size=batch_size, dtype="float32")
    run_epoch(net, data, config, (1.0,), Adam(0.01), None, np.random.default_rng(1), np)
    gathered = (data.blocks.X, data.blocks.T, data.blocks.y)
    if batch_size is None:
        assert gathered == (None, None, None)
    else:
        assert all(a.shape[0] == EVAL_ROWS for a in gathered) and EVAL_ROWS < len(X)
