"""The ensemble a user ships: one ``.npz`` file, an MLflow pyfunc model, no pickle anywhere.

An :class:`EnsembleModel` takes raw feature columns, standardizes them with the training
split's statistics, averages its members' class probabilities with their weights and
answers labels in the data's own values (strings stay strings). ``save`` writes every array
into one ``.npz`` that loads with ``allow_pickle=False``. The MLflow flavour uses pyfunc's
``loader_module`` form: MLflow copies that ``.npz`` into the model folder and calls this
module's ``_load_pyfunc`` on it, so nothing is ever pickled.

Serving (``mlflow models serve -m models:/<name>/<version> --env-manager local``) needs this
package importable where the server runs. A request's ``params: {"output": "proba"}``
asks for class probabilities instead of labels.

The model reads a DataFrame (or a mapping of columns) by the training file's column names,
integer or float, or a 2-D array whose columns are in training order. MLflow's own input
check cannot take both, so the signature declares no input schema and the model checks its
input itself; see :func:`_signature`.
"""

from __future__ import annotations

import contextlib
import logging
import numbers
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from core.network import predict_proba as _network_proba

if TYPE_CHECKING:  # mlflow is imported where it is used: the core path stays light
    from mlflow import MlflowClient

    from core.splits import PreparedData

OUTPUTS = ("label", "proba")
"""What a served model answers: ``params={"output": ...}``; ``label`` is the default."""
_FILE = "ensemble.npz"
_FORMAT = 1
_LABEL_TYPES = {"U": "string", "i": "long", "u": "long", "f": "double", "b": "boolean"}
_SHOWN = 5  # how many bad rows an input error quotes


class _BadInput(ValueError):
    """Input the model cannot read: missing columns, a wrong shape, values that are not
    finite numbers. The pyfunc wrapper answers it as MLflow's INVALID_PARAMETER_VALUE."""


class Member(NamedTuple):
    """One network of the ensemble; a plain ``(weight, params, activation)`` tuple works too."""

    weight: float
    params: dict[str, np.ndarray]
    activation: str


def _label_array(classes: Any) -> np.ndarray:
    """Class labels as a NumPy array that needs no pickle (never an object array)."""
    arr = np.asarray(classes)
    if arr.dtype.kind == "O":
        values = arr.tolist()
        if all(isinstance(v, str) for v in values):
            arr = np.array(values, dtype=str)
        else:
            arr = np.array(values)
    if arr.ndim != 1 or arr.dtype.kind not in _LABEL_TYPES or len(arr) < 2:
        raise ValueError(f"classes must be 2 or more numbers or strings, got {classes!r}")
    return arr


def _rows(bad: np.ndarray) -> str:
    """The row indices where the boolean mask ``bad`` (shaped like the input) holds, shortened."""
    rows = np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1)) if bad.ndim else np.zeros(1, int)
    more = f" and {len(rows) - _SHOWN} more" if len(rows) > _SHOWN else ""
    return f"row index {', '.join(str(int(i)) for i in rows[:_SHOWN])}{more}"


def _numbers(values: Any, what: str) -> np.ndarray:
    """``values`` as float64, or a :class:`_BadInput` that names ``what`` and the bad rows.

    Booleans, integers and floats are accepted, as training accepts them; an object array
    (pandas' nullable dtypes, JSON numbers mixed with nulls) only when every item is one.
    """
    arr = np.asarray(values)
    if arr.dtype.kind == "O":
        bad = np.frompyfunc(lambda v: not isinstance(v, (numbers.Real, np.bool_)), 1, 1)(arr)
        bad = np.asarray(bad, dtype=bool)
        if bad.any():
            raise _BadInput(f"{what} must hold numbers, not {arr[bad].ravel()[0]!r} "
                            f"(at {_rows(bad)})")
    elif arr.dtype.kind not in "biuf":
        example = f" (e.g. {arr.ravel()[0]!r})" if arr.size else ""
        raise _BadInput(f"{what} must hold numbers; got dtype {arr.dtype}{example}")
    arr = arr.astype(np.float64)
    finite = np.isfinite(arr)
    if not finite.all():
        raise _BadInput(f"{what} holds missing or infinite values at {_rows(~finite)}; "
                        "every feature value must be a finite number")
    return arr


def _columns(frame: Any, names: tuple[str, ...]) -> np.ndarray:
    """The ``names`` columns of a DataFrame or a mapping as an ``(m, n)`` float64 matrix."""
    present = list(frame.columns if hasattr(frame, "columns") else frame.keys())
    missing = [name for name in names if name not in present]
    if missing:
        raise _BadInput(f"missing feature columns {missing}: the model reads the columns "
                        f"{list(names)} by name (others are ignored); got {present}")
    columns = [_numbers(frame[name], f"column {name!r}") for name in names]
    repeated = [name for name, c in zip(names, columns) if c.ndim > 1]  # frame[name] gave a frame
    if repeated:
        raise _BadInput(f"feature columns {repeated} appear more than once; each must appear once")
    columns = [c.reshape(-1) for c in columns]  # a mapping may hold one scalar per column
    lengths = {name: len(c) for name, c in zip(names, columns)}
    if len(set(lengths.values())) > 1:
        raise _BadInput(f"feature columns differ in length: {lengths}")
    return np.column_stack(columns)


@dataclass(frozen=True, eq=False)  # eq=False: fields hold arrays
class EnsembleModel:
    """A weighted average of trained networks behind the training split's normalizer.

    Attributes:
        members: ``(weight, params, activation)`` per network; ``params`` holds
            ``W1, b1, ..., WL, bL`` as NumPy arrays. Weights are normalized when predicting.
        mean: ``(n,)`` float64 training-split feature means (zeros if not normalized).
        std: ``(n,)`` float64 training-split standard deviations (ones if not normalized).
        classes: ``(K,)`` the data's own label values; class index ``k`` is ``classes[k]``.
        feature_names: One name per input column, in the order the networks expect.
    """

    members: tuple[Member, ...]
    mean: np.ndarray
    std: np.ndarray
    classes: np.ndarray
    feature_names: tuple[str, ...]

    def __post_init__(self) -> None:
        members = tuple(Member(float(w), {k: np.asarray(v) for k, v in p.items()}, str(a))
                        for w, p, a in self.members)
        set_ = object.__setattr__
        set_(self, "members", members)
        set_(self, "mean", np.asarray(self.mean, dtype=np.float64).reshape(-1))
        set_(self, "std", np.asarray(self.std, dtype=np.float64).reshape(-1))
        set_(self, "classes", _label_array(self.classes))
        set_(self, "feature_names", tuple(str(f) for f in self.feature_names))
        self._validate()

    def _validate(self) -> None:
        n = len(self.feature_names)
        if not self.members or sum(m.weight for m in self.members) <= 0:
            raise ValueError("an ensemble needs at least one member and a positive total weight")
        if any(m.weight < 0 for m in self.members):
            raise ValueError("member weights must be non-negative")
        if self.mean.shape != (n,) or self.std.shape != (n,):
            raise ValueError(f"mean and std need one value per feature ({n}); "
                             f"got {self.mean.shape} and {self.std.shape}")
        n_out = 1 if len(self.classes) == 2 else len(self.classes)
        for i, m in enumerate(self.members):
            layers = len(m.params) // 2
            shapes = (m.params["W1"].shape[0], m.params[f"W{layers}"].shape[1])
            if shapes != (n, n_out):
                raise ValueError(f"member {i} maps {shapes[0]} inputs to {shapes[1]} outputs; "
                                 f"expected {n} to {n_out}")

    @classmethod
    def from_data(cls, members: Sequence[tuple[float, dict[str, np.ndarray], str]],
                  data: PreparedData) -> EnsembleModel:
        """An ensemble over ``members`` that reads raw inputs the way ``data`` was prepared."""
        return cls(tuple(members), data.normalizer.mean, data.normalizer.std,
                   data.classes, data.feature_names)

    def _matrix(self, X_raw: Any) -> np.ndarray:
        if hasattr(X_raw, "columns") or isinstance(X_raw, Mapping):
            X = _columns(X_raw, self.feature_names)
        else:
            X = _numbers(X_raw, "inputs")
            if X.ndim == 1:
                X = X.reshape(1, -1)
            if X.ndim != 2 or X.shape[1] != len(self.feature_names):
                raise _BadInput(f"expected an (m, {len(self.feature_names)}) array, columns in "
                                f"the order {list(self.feature_names)}; got shape {X.shape}")
        return (X - self.mean) / self.std

    def predict_proba(self, X_raw: Any) -> np.ndarray:
        """Class probabilities, ``(m, K)`` float64, columns in the order of ``classes``.

        Args:
            X_raw: Raw (not normalized) inputs: an ``(m, n)`` array with columns in the
                order of ``feature_names``, or a DataFrame (or a mapping of columns) holding
                those columns by name; integer, float or boolean values, all finite.

        Raises:
            ValueError: A feature column is missing, the array has the wrong number of
                columns, or a value is not a finite number; the message names which.
        """
        X = self._matrix(X_raw)
        total = sum(m.weight for m in self.members)
        proba = np.zeros((X.shape[0], len(self.classes)), dtype=np.float64)
        for m in self.members:
            if m.weight:
                proba += (m.weight / total) * _network_proba(m.params, X, m.activation)
        return proba

    def predict(self, X_raw: Any) -> np.ndarray:
        """The most probable class of each row, in the data's own label values."""
        return self.classes[self.predict_proba(X_raw).argmax(axis=1)]

    def save(self, path: str | Path) -> Path:
        """Writes every array into one ``.npz`` (no pickle, no object arrays).

        Keys: ``m{i}/W1, m{i}/b1, ...`` per member, ``weights``, ``activations``, ``mean``,
        ``std``, ``classes``, ``feature_names`` and ``format``.

        Returns:
            The path written.
        """
        arrays = {f"m{i}/{k}": v for i, m in enumerate(self.members) for k, v in m.params.items()}
        arrays.update(
            weights=np.array([m.weight for m in self.members], dtype=np.float64),
            activations=np.array([m.activation for m in self.members], dtype=str),
            mean=self.mean, std=self.std, classes=self.classes,
            feature_names=np.array(self.feature_names, dtype=str),
            format=np.array(_FORMAT),
        )
        path = Path(path)
        # Not compressed: trained float32 weights shrink by ~7% for 16x the time (~0.1 s
        # for a five-member model, paid twice per sweep, once per shipped model).
        with open(path, "wb") as f:  # a file object: numpy would append ".npz" to the name
            np.savez(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> EnsembleModel:
        """Reads a file ``save`` wrote, with ``allow_pickle=False``."""
        with np.load(path, allow_pickle=False) as z:
            if int(z["format"]) != _FORMAT:
                raise ValueError(f"{path}: unknown ensemble format {int(z['format'])}")
            params: list[dict[str, np.ndarray]] = [{} for _ in range(len(z["weights"]))]
            for key in z.files:
                if key.startswith("m") and "/" in key:
                    index, name = key[1:].split("/", 1)
                    params[int(index)][name] = z[key]
            members = tuple(Member(float(w), p, str(a))
                            for w, p, a in zip(z["weights"], params, z["activations"]))
            return cls(members, z["mean"], z["std"], z["classes"],
                       tuple(str(f) for f in z["feature_names"]))


class _PyfuncEnsemble:
    """What ``mlflow.pyfunc.load_model`` wraps: raw feature columns in, labels out."""

    def __init__(self, model: EnsembleModel):
        self.model = model

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """Labels (a NumPy array), or with ``params={"output": "proba"}`` a DataFrame of
        class probabilities whose columns are the class labels.

        Raises:
            MlflowException: INVALID_PARAMETER_VALUE for input the model cannot read or an
                unknown ``output``; a server answers it as 400 with the message, where a
                plain exception would read "unexpected error while evaluating the model".
        """
        import pandas as pd
        from mlflow.exceptions import MlflowException

        try:
            output = (params or {}).get("output", "label")
            if output not in OUTPUTS:
                raise _BadInput(f"params.output: {output!r} is not allowed; use one of {OUTPUTS}")
            if output == "label":
                return self.model.predict(model_input)
            proba = self.model.predict_proba(model_input)
        except _BadInput as err:
            raise MlflowException.invalid_parameter_value(str(err)) from err
        return pd.DataFrame(proba, columns=self.model.classes.tolist())


def _load_pyfunc(data_path: str, model_config: Any = None) -> _PyfuncEnsemble:
    """MLflow's entry point for the ``loader_module`` flavour; ``data_path`` is the ``.npz``."""
    return _PyfuncEnsemble(EnsembleModel.load(data_path))


def _signature(model: EnsembleModel) -> Any:
    """Outputs and the ``output`` parameter, but no input schema: the model checks its input.

    MLflow enforces a declared input schema before the model sees the data
    (``mlflow.pyfunc._validate_prediction_input`` -> ``mlflow.models.utils._enforce_schema``),
    and no schema lets both documented inputs through. ``_enforce_mlflow_datatype`` refuses
    int64 for a ``double`` column unless every value is 0 or 1 ("Can not safely convert
    int64 to float64"), and refuses floats for a ``long`` one, so a CSV read with pandas
    fails on its integer columns. A named schema turns a NumPy array into a DataFrame whose
    columns are 0..n-1 ("Model is missing inputs"); an unnamed one, or a tensor spec, reads
    columns by position, so a reordered DataFrame would be answered silently wrong. The
    feature names are kept in ``MLmodel``'s ``metadata.feature_names`` and in the input
    example, and ``EnsembleModel`` reports missing columns, wrong shapes and non-numbers.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    outputs = Schema([ColSpec(_LABEL_TYPES[model.classes.dtype.kind])])
    params = ParamSchema([ParamSpec("output", "string", OUTPUTS[0])])
    return ModelSignature(inputs=None, outputs=outputs, params=params)


@contextlib.contextmanager
def _quiet(name: str):
    """Holds logger ``name`` at WARNING: MLflow's INFO line about checking the input
    example would land in the middle of ``sweeper submit``'s report."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def save_pyfunc(model: EnsembleModel, path: str | Path, run_id: str | None = None,
                artifact_path: str | None = None) -> Path:
    """Saves ``model`` as an MLflow pyfunc model folder at ``path`` (which must not exist).

    Args:
        model: The ensemble.
        path: The model folder to create.
        run_id: The run the model will be logged to, recorded in ``MLmodel``.
        artifact_path: Where in that run, recorded in ``MLmodel``.

    Returns:
        ``path``; it holds ``MLmodel``, the environment files and ``data/ensemble.npz``.
    """
    import mlflow
    import pandas as pd
    from mlflow.models import Model

    path = Path(path)
    example = pd.DataFrame([model.mean], columns=list(model.feature_names))
    with tempfile.TemporaryDirectory() as tmp, _quiet("mlflow.pyfunc"):
        data = model.save(Path(tmp) / _FILE)
        mlflow.pyfunc.save_model(
            str(path), loader_module=__name__, data_path=str(data),
            mlflow_model=Model(artifact_path=artifact_path, run_id=run_id),
            signature=_signature(model), input_example=example,
            metadata={"feature_names": list(model.feature_names)},  # the signature has none
            # stated, not inferred: inference loads the model in a subprocess (seconds)
            pip_requirements=[f"mlflow=={mlflow.__version__}", f"numpy=={np.__version__}",
                              f"pandas=={pd.__version__}"],
        )
    return path


def log_model(client: MlflowClient, run_id: str, model: EnsembleModel,
              registered_name: str | None = None, artifact_path: str = "model") -> str:
    """Logs ``model`` as run artifacts and registers it.

    The pyfunc folder is written to a temporary directory and uploaded with
    ``client.log_artifacts``; registration creates the registered model when it is new
    and a version whose source is the run's artifact folder. Only ``client`` talks to the
    tracking store: no fluent run is started and the global tracking URI is not touched.

    Args:
        client: A client of the tracking store (and registry) the run lives in.
        run_id: The ensemble's run.
        model: The ensemble to ship.
        registered_name: Registered model name; ``None`` logs without registering.
        artifact_path: Folder inside the run's artifacts.

    Returns:
        A URI for ``mlflow models serve -m`` and ``mlflow.pyfunc.load_model``:
        ``models:/<name>/<version>`` when registered, else ``runs:/<run_id>/<artifact_path>``.
    """
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory() as tmp:
        local = save_pyfunc(model, Path(tmp) / "model", run_id, artifact_path)
        client.log_artifacts(run_id, str(local), artifact_path)
    if registered_name is None:
        return f"runs:/{run_id}/{artifact_path}"
    try:
        client.create_registered_model(registered_name)
    except MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    source = f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/{artifact_path}"
    version = client.create_model_version(registered_name, source, run_id=run_id)
    return f"models:/{registered_name}/{version.version}"


__all__ = ["OUTPUTS", "EnsembleModel", "Member", "log_model", "save_pyfunc"]
