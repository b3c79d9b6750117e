"""Preallocated arrays for training and evaluation passes (see ``network._forward``).

Private to the core: a ``Workspace`` holds every array a forward and backward pass over at
most ``rows`` examples writes, and the gradients as views into one flat array.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np


class Workspace:
    """Preallocated arrays for passes over at most ``rows`` examples at a time.

    Training and evaluation then allocate almost nothing per minibatch: every product,
    activation and gradient is written into these, and the gradients land in one flat
    array (``flat_grads``), so an optimizer updates every parameter in one pass.
    """

    def __init__(self, params: dict[str, Any], rows: int, xp: Any) -> None:
        n_layers = len(params) // 2
        widths = [params[f"W{l}"].shape[1] for l in range(1, n_layers + 1)]
        dtype = params["W1"].dtype
        self.rows = rows
        # Index l holds layer l's arrays; index 0 is unused, as in the forward cache.
        self.H = [None] + [xp.empty((rows, n), dtype) for n in widths]  # last: the logits
        self.A = [None] + [xp.empty((rows, n), dtype) for n in widths[:-1]]  # after dropout
        self.dZ = [None] + [xp.empty((rows, n), dtype) for n in widths]
        self.ones = xp.ones((1, rows), dtype)  # db = ones @ dZ: a BLAS call beats sum(axis=0)
        # What ReLU compares against (see ``activations``): one zero array as large as the
        # widest hidden layer's, never written. NumPy's zeros come from calloc, so reading
        # them maps the kernel's shared zero page and costs no memory, whatever ``rows``
        # is. On a GPU the scalar 0 is as fast and allocates nothing.
        hidden = widths[:-1]
        self._zeros = xp.zeros(rows * max(hidden), dtype) if xp is np and hidden else None
        if self._zeros is not None:
            self._zeros.flags.writeable = False
        self.flat_grads, views = flat_views(
            {f"d{k}": v.shape for k, v in params.items()}, dtype, xp
        )
        self.grads: dict[str, Any] = views
        self._sliced: dict[int, Rows] = {}

    def at(self, m: int) -> "Rows":
        """Rows ``:m`` of every array, sliced once per ``m`` (views; contiguous)."""
        rows = self._sliced.get(m)
        if rows is None:
            rows = self._sliced[m] = Rows(
                H=[None if a is None else a[:m] for a in self.H],
                A=[None if a is None else a[:m] for a in self.A] + [None],
                dZ=[None if a is None else a[:m] for a in self.dZ],
                ones=self.ones[:, :m],
                zeros=[0] + [
                    0 if self._zeros is None else self._zeros[: m * a.shape[1]].reshape(m, -1)
                    for a in self.A[1:]
                ],
            )
        return rows


@dataclass(frozen=True)
class Rows:
    """The first ``m`` rows of a workspace's arrays, lists indexed by layer like the cache."""

    H: list[Any]
    A: list[Any]
    dZ: list[Any]
    ones: Any
    zeros: list[Any]  # by hidden layer: a zero array shaped like its H, or the scalar 0


def flat_views(shapes: dict[str, tuple[int, ...]], dtype: Any, xp: Any) -> tuple[Any, dict]:
    """One zeroed flat array and a view into it per name, each starting 64-byte aligned."""
    offsets, total = {}, 0
    for name, shape in shapes.items():
        offsets[name] = total
        total += -(-int(np.prod(shape)) // 16) * 16
    flat = xp.zeros(total, dtype)
    views = {
        name: flat[offsets[name] : offsets[name] + int(np.prod(shape))].reshape(shape)
        for name, shape in shapes.items()
    }
    return flat, views


@functools.lru_cache(maxsize=None)
def layer_names(n_layers: int) -> tuple[tuple[str, str, str, str], ...]:
    """``(W, b, dW, db)`` names by layer (index 0 unused), formatted once."""
    return tuple((f"W{l}", f"b{l}", f"dW{l}", f"db{l}") for l in range(n_layers + 1))


def rows_of(ws: Workspace | None, m: int, n_layers: int) -> "Rows":
    """``ws.at(m)``, or all-None outputs (``xp`` then allocates) without a workspace."""
    if ws is not None:
        return ws.at(m)
    nones = [None] * (n_layers + 1)
    return Rows(nones, nones, nones, None, [0] * (n_layers + 1))
