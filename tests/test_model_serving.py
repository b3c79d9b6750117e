"""The shipped ensemble: npz round trip, pyfunc without pickle, and a real `mlflow models serve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from servers import free_port, stop_group, wait_for_http

from core.config import TrainConfig
from core.datasets import Dataset, load_dataset
from core.splits import prepare
from core.train import train
from sweeper.model import EnsembleModel, _load_pyfunc, log_model, save_pyfunc

FEATURES = ("whiskers", "bark_volume")


def _members(data, specs):
    out = []
    for seed, (weight, activation) in enumerate(specs):
        config = TrainConfig(architecture=(6,), activation=activation, epochs=40,
                             learning_rate=0.05, batch_size=32)
        outcome = train(config, data.X_train, data.y_train, data.X_dev, data.y_dev,
                        len(data.classes), np.random.default_rng(seed))
        assert outcome.status == "finished"
        out.append((weight, outcome.params, activation))
    return out


@pytest.fixture(scope="module")
def pets() -> EnsembleModel:
    """Two networks on a 2-class problem whose labels are the strings 'cat' and 'dog'."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2)) * [4.0, 0.5] + [20.0, -3.0]  # far from standardized
    y = (X[:, 0] + 6 * (X[:, 1] + 3) > 20).astype(np.int64)
    dataset = Dataset(X, y, np.array(["cat", "dog"]), FEATURES, "pets")
    data = prepare(dataset, rng=np.random.default_rng(1))
    return EnsembleModel.from_data(_members(data, [(2.0, "relu"), (1.0, "tanh")]), data)


@pytest.fixture(scope="module")
def raw() -> np.ndarray:
    return np.random.default_rng(7).normal(size=(25, 2)) * [4.0, 0.5] + [20.0, -3.0]


def test_the_ensemble_answers_in_the_datas_own_labels(pets, raw):
    labels = pets.predict(raw)
    assert set(labels) == {"cat", "dog"}
    proba = pets.predict_proba(raw)
    assert proba.shape == (25, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    frame = pd.DataFrame(raw[:, ::-1], columns=FEATURES[::-1])  # columns are taken by name
    np.testing.assert_array_equal(pets.predict(frame), labels)


def test_save_and_load_round_trip_without_pickle(pets, raw, tmp_path):
    path = pets.save(tmp_path / "ensemble.npz")
    with np.load(path, allow_pickle=False) as z:
        assert all(z[k].dtype.kind != "O" for k in z.files)
        assert z["classes"].tolist() == ["cat", "dog"]
        assert {"m0/W1", "m1/b2", "weights", "activations", "mean", "std"} <= set(z.files)
    loaded = EnsembleModel.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(raw), pets.predict_proba(raw))
    np.testing.assert_array_equal(loaded.predict(raw), pets.predict(raw))
    assert loaded.feature_names == FEATURES


def test_pyfunc_gives_the_same_labels_and_probabilities_and_writes_no_pickle(pets, raw, tmp_path):
    import mlflow

    path = save_pyfunc(pets, tmp_path / "model")
    assert not [p for p in path.rglob("*") if p.suffix in (".pkl", ".pickle", ".cloudpickle")]
    loaded = mlflow.pyfunc.load_model(str(path))
    frame = pd.DataFrame(raw, columns=FEATURES)
    np.testing.assert_array_equal(np.asarray(loaded.predict(frame)), pets.predict(raw))
    proba = loaded.predict(frame, params={"output": "proba"})
    assert list(proba.columns) == ["cat", "dog"]
    np.testing.assert_allclose(proba.to_numpy(), pets.predict_proba(raw), rtol=0, atol=1e-12)
    with pytest.raises(Exception, match="output"):
        loaded.predict(frame, params={"output": "logits"})
    wrapper = _load_pyfunc(str(path / "data" / "ensemble.npz"))
    np.testing.assert_array_equal(wrapper.predict(raw), pets.predict(raw))


def test_the_mlmodel_names_the_features_and_declares_outputs_and_the_output_param(pets, tmp_path):
    from mlflow.models import Model

    meta = Model.load(str(save_pyfunc(pets, tmp_path / "model") / "MLmodel"))
    assert meta.metadata["feature_names"] == list(FEATURES)
    assert meta.signature.inputs is None  # MLflow's check would refuse int64 columns and arrays
    assert meta.signature.outputs.input_types()[0].name == "string"
    assert [(p.name, p.default) for p in meta.signature.params.params] == [("output", "label")]
    assert list(meta.load_input_example(str(tmp_path / "model")).columns) == list(FEATURES)


def _integer_csv(pets: EnsembleModel, raw: np.ndarray, path: Path) -> Path:
    """A CSV like the one a user trains on: integer feature columns and a text target."""
    ints = np.rint(raw).astype(np.int64)
    frame = pd.DataFrame(ints, columns=FEATURES).assign(species=pets.predict(ints))
    frame.to_csv(path, index=False)
    return path


def test_a_registered_model_predicts_on_the_csv_it_came_from_integer_columns_included(
        pets, raw, tmp_path, tracking_uri, monkeypatch):
    import mlflow

    uri = _log_registered(pets, tmp_path, tracking_uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    loaded = mlflow.pyfunc.load_model(uri)
    table = pd.read_csv(_integer_csv(pets, raw, tmp_path / "pets.csv"))
    features = table.drop(columns="species")
    assert set(features.dtypes.astype(str)) == {"int64"}  # what pandas makes of such a file
    expected = table["species"].to_numpy()
    np.testing.assert_array_equal(np.asarray(loaded.predict(features)), expected)
    np.testing.assert_array_equal(np.asarray(loaded.predict(table)), expected)  # target ignored
    reordered = features[list(FEATURES[::-1])]
    np.testing.assert_array_equal(np.asarray(loaded.predict(reordered)), expected)
    mixed = features.astype({FEATURES[1]: np.float64})
    np.testing.assert_array_equal(np.asarray(loaded.predict(mixed)), expected)
    proba = loaded.predict(features, params={"output": "proba"})
    np.testing.assert_allclose(proba.to_numpy(), pets.predict_proba(features.to_numpy(float)),
                               rtol=0, atol=1e-12)


def test_the_loaded_model_takes_a_numpy_array_in_training_column_order(pets, raw, tmp_path):
    import mlflow

    loaded = mlflow.pyfunc.load_model(str(save_pyfunc(pets, tmp_path / "model")))
    np.testing.assert_array_equal(np.asarray(loaded.predict(raw)), pets.predict(raw))
    ints = np.rint(raw).astype(np.int64)
    np.testing.assert_array_equal(np.asarray(loaded.predict(ints)), pets.predict(ints))
    proba = loaded.predict(raw, params={"output": "proba"})
    np.testing.assert_allclose(proba.to_numpy(), pets.predict_proba(raw), rtol=0, atol=1e-12)


@pytest.mark.parametrize("bad, message", [
    pytest.param(lambda f: f.rename(columns={"whiskers": "Whiskers"}),
                 r"missing feature columns \['whiskers'\]: the model reads the columns "
                 r"\['whiskers', 'bark_volume'\] by name", id="misspelled-column"),
    pytest.param(lambda f: f.to_numpy()[:, :1],
                 r"expected an \(m, 2\) array, columns in the order "
                 r"\['whiskers', 'bark_volume'\]; got shape \(25, 1\)", id="too-few-columns"),
    pytest.param(lambda f: f.astype({"whiskers": object}).assign(whiskers=["many"] + [1] * 24),
                 r"column 'whiskers' must hold numbers, not 'many' \(at row index 0\)",
                 id="text"),
    pytest.param(lambda f: f.assign(bark_volume=f["bark_volume"].where(f.index != 3)),
                 r"column 'bark_volume' holds missing or infinite values at row index 3;",
                 id="missing-value"),
    pytest.param(lambda f: np.full((2, 2), "7"), r"inputs must hold numbers; got dtype <U1",
                 id="text-array"),
])
def test_bad_input_is_refused_with_a_message_that_names_the_problem(pets, raw, tmp_path,
                                                                    bad, message):
    import mlflow
    from mlflow.exceptions import MlflowException

    loaded = mlflow.pyfunc.load_model(str(save_pyfunc(pets, tmp_path / "model")))
    with pytest.raises(MlflowException, match=message) as caught:
        loaded.predict(bad(pd.DataFrame(raw, columns=FEATURES)))
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"


def test_three_classes_give_one_probability_column_each(tmp_path):
    dataset = load_dataset({"name": "blobs", "n_samples": 150, "classes": 3},
                           rng=np.random.default_rng(3))
    data = prepare(dataset, rng=np.random.default_rng(4))
    model = EnsembleModel.from_data(_members(data, [(1.0, "relu"), (1.0, "relu")]), data)
    X = data.X_test * data.normalizer.std + data.normalizer.mean  # back to raw inputs
    proba = model.predict_proba(X)
    assert proba.shape == (X.shape[0], 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    loaded = EnsembleModel.load(model.save(tmp_path / "e.npz"))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.classes.dtype.kind in "iu"


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _log_registered(pets: EnsembleModel, tmp_path: Path, tracking_uri: str) -> str:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.create_experiment("serving", (tmp_path / "artifacts").as_uri())
    run = client.create_run(experiment)
    uri = log_model(client, run.info.run_id, pets, "pets-ensemble")
    client.set_terminated(run.info.run_id)
    assert uri == "models:/pets-ensemble/1"
    logged = list((tmp_path / "artifacts").rglob("*"))
    assert any(p.name == "ensemble.npz" for p in logged)
    assert not [p for p in logged if p.suffix in (".pkl", ".pickle", ".cloudpickle")]
    return uri


def test_a_real_server_answers_labels_and_probabilities(pets, raw, tmp_path, tracking_uri):
    uri = _log_registered(pets, tmp_path, tracking_uri)
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", uri, "--env-manager",
         "local", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the workers go down with it
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/ping", server)
        split = {"columns": list(FEATURES), "data": raw.tolist()}
        labels = _post(f"{base}/invocations", {"dataframe_split": split})["predictions"]
        assert labels == pets.predict(raw).tolist()
        answer = _post(f"{base}/invocations",
                       {"dataframe_split": split, "params": {"output": "proba"}})["predictions"]
        served = np.array([[row["cat"], row["dog"]] for row in answer])
        np.testing.assert_allclose(served, pets.predict_proba(raw), rtol=0, atol=1e-6)
        ints = np.rint(raw).astype(np.int64)
        for body in ({"dataframe_records": pd.DataFrame(ints, columns=FEATURES)
                      .to_dict(orient="records")},
                     {"inputs": ints.tolist()}):  # a bare 2-D array, columns in training order
            assert _post(f"{base}/invocations", body)["predictions"] == pets.predict(ints).tolist()
        wrong = {"dataframe_split": {"columns": ["whiskers", "bark"], "data": raw.tolist()}}
        with pytest.raises(urllib.error.HTTPError) as refused:
            _post(f"{base}/invocations", wrong)
        assert refused.value.code == 400
        assert "missing feature columns ['bark_volume']" in json.loads(refused.value.read())["message"]
    finally:
        stop_group(server)
