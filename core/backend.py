"""The array module behind training: NumPy on CPU, CuPy on GPU.

Every hot path in the core is written against an array module ``xp`` so that CuPy can
stand in for NumPy unchanged. This module picks it and moves arrays across.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_GPU_HINT = "install a CuPy build matching the CUDA driver, e.g. `pip install cupy-cuda12x`"


def get_array_module(device: str = "cpu") -> Any:
    """The array module for a device.

    Args:
        device: ``"cpu"`` for NumPy, ``"gpu"`` for CuPy.

    Returns:
        The ``numpy`` or ``cupy`` module.

    Raises:
        RuntimeError: ``"gpu"`` was asked for but CuPy cannot import or sees no CUDA device.
        ValueError: ``device`` is neither ``"cpu"`` nor ``"gpu"``.
    """
    if device == "cpu":
        return np
    if device != "gpu":
        raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
    try:
        import cupy
    except ImportError as exc:
        raise RuntimeError(
            f"device 'gpu' needs CuPy, which could not be imported ({exc}); {_GPU_HINT}"
        ) from exc
    try:
        n_devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA raises its own error types when no driver is present
        raise RuntimeError(f"device 'gpu': CuPy imported but CUDA is unusable ({exc})") from exc
    if n_devices < 1:
        raise RuntimeError("device 'gpu': CuPy imported but no CUDA device is visible")
    return cupy


def cupy_available() -> bool:
    """Whether CuPy imports and sees at least one CUDA device."""
    try:
        get_array_module("gpu")
    except RuntimeError:
        return False
    return True


def to_numpy(a: Any) -> np.ndarray:
    """A NumPy copy of a CuPy array, or the NumPy array itself (no copy)."""
    get = getattr(a, "get", None)  # only CuPy arrays have .get(); it copies device -> host
    if get is not None and not isinstance(a, np.ndarray):
        return get()
    return np.asarray(a)


def asarray(xp: Any, a: Any, dtype: Any = None) -> Any:
    """``a`` as an ``xp`` array of ``dtype``; no copy when it already is one."""
    return xp.asarray(a, dtype=dtype)


def make_mask_rng(xp: Any, rng: np.random.Generator) -> Any:
    """A generator of dropout masks that lives next to the arrays.

    Args:
        xp: The array module of the training arrays.
        rng: The trial's NumPy generator; on GPU it seeds CuPy's generator, so masks stay
            reproducible from the one root seed.

    Returns:
        An object whose ``.random(shape, dtype)`` draws uniforms in [0, 1) as ``xp`` arrays.
    """
    if xp is np:
        return rng
    return xp.random.default_rng(int(rng.integers(0, 2**63 - 1)))


MASK_LEVELS = 1 << 16
"""On NumPy a dropout decision takes 16 random bits: keep probabilities are multiples of
``1 / MASK_LEVELS`` (see ``dropout_mask``)."""


def dropout_mask(mask_rng: Any, shape: tuple[int, ...], keep_prob: float, dtype: Any, xp: Any) -> Any:
    """An inverted-dropout mask: each entry ``1 / p`` with probability ``p``, else 0.

    Args:
        mask_rng: What ``make_mask_rng`` returns (a NumPy or CuPy generator).
        shape: The activations' shape.
        keep_prob: Keep probability, in (0, 1); at least 1/65,536 on NumPy.
        dtype: The mask's dtype (the activations').
        xp: Array module.

    On NumPy, where drawing the numbers is most of dropout's cost, each decision takes 16
    bits of the generator's raw 64-bit output (four decisions a draw) instead of a float
    uniform each: a quarter as many draws. ``p`` is then ``keep_prob`` rounded to a
    multiple of 1/65,536 (within 8e-6 of it; 1, keeping every unit, above
    1 - 1/131,072), and kept units are scaled by exactly
    ``1 / p``, so the expected activation is unchanged. Elsewhere (CuPy) each decision
    compares a float uniform with ``keep_prob``.
    """
    if isinstance(mask_rng, np.random.Generator):
        n = math.prod(shape)
        threshold = round(keep_prob * MASK_LEVELS)
        if not 0 < threshold <= MASK_LEVELS:
            raise ValueError(f"keep_prob {keep_prob}: below 1/{MASK_LEVELS}, the finest step of a mask")
        if threshold == MASK_LEVELS:  # nearer 1 than any other step: keep every unit
            return np.ones(shape, dtype)
        bits = mask_rng.bit_generator.random_raw(-(-n // 4)).view(np.uint16)[:n].reshape(shape)
        D = np.less(bits, threshold, out=np.empty(shape, dtype))
        D *= MASK_LEVELS / threshold
        return D
    D = mask_rng.random(shape, dtype=dtype)
    xp.less(D, keep_prob, out=D)  # the uniforms become the 0/1 mask in place
    D *= 1.0 / keep_prob
    return D


__all__ = ["asarray", "cupy_available", "dropout_mask", "get_array_module", "make_mask_rng", "to_numpy"]
