"""sweeper's training core: fully-connected networks in NumPy (CuPy on GPU workers).

Conventions, everywhere in this package: examples are rows, so ``X`` is ``m x n``;
weights are ``n_in x n_out`` and biases ``1 x n_out``; labels ``y`` are integer class
indices ``0..K-1`` of shape ``(m,)``. Two classes use one sigmoid output unit, more use
softmax. Every random draw comes from an ``np.random.Generator`` passed in explicitly.
The core never imports ray, mlflow or click.
"""

from .backend import cupy_available, get_array_module, to_numpy
from .config import DEFAULTS, TRAIN_KEYS, TrainConfig
from .datasets import DATASETS, Dataset, DatasetError, load_dataset
from .diagnosis import Diagnosis, diagnose
from .gradcheck import GradCheckResult, gradient_check
from .initializers import INITIALIZERS, init_params
from .activations import ACTIVATIONS, DERIVATIVES
from .network import backward, cost, forward, predict, predict_proba
from .optimizers import OPTIMIZERS
from .splits import Normalizer, PreparedData, prepare, split_fractions
from .train import TrainOutcome, train

__all__ = [
    "ACTIVATIONS",
    "DATASETS",
    "DEFAULTS",
    "DERIVATIVES",
    "Dataset",
    "DatasetError",
    "Diagnosis",
    "GradCheckResult",
    "INITIALIZERS",
    "Normalizer",
    "OPTIMIZERS",
    "PreparedData",
    "TRAIN_KEYS",
    "TrainConfig",
    "TrainOutcome",
    "backward",
    "cost",
    "cupy_available",
    "diagnose",
    "forward",
    "get_array_module",
    "gradient_check",
    "init_params",
    "load_dataset",
    "predict",
    "predict_proba",
    "prepare",
    "split_fractions",
    "to_numpy",
    "train",
]
