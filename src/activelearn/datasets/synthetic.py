"""Synthetic sets from papers, generated from a seed (no files)."""

from __future__ import annotations

import numbers
from typing import Sequence

import numpy as np
import torch

from ..exceptions import InvalidParameterError
from .base import DatasetBundle

__all__ = ["imbalanced_blobs"]

#: class centers of :func:`imbalanced_blobs` (unit-variance Gaussians around them overlap)
_CENTERS = np.array([[0.0, 0.0], [2.0, 0.5], [0.8, 2.0]])


def _draw(sizes: Sequence[int], spread: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = np.concatenate([np.full(int(s), c, dtype=np.int64) for c, s in enumerate(sizes)])
    x = _CENTERS[y] + rng.normal(scale=spread, size=(y.size, 2))
    order = rng.permutation(y.size)
    return x[order].astype(np.float32), y[order]


def imbalanced_blobs(
    *,
    sizes: Sequence[int] = (2000, 500, 50),
    test_sizes: Sequence[int] | None = None,
    spread: float = 1.0,
    seed: int = 0,
) -> DatasetBundle:
    """The imbalanced 2-D, 3-class set of IBAL's synthetic experiment (Pezeshkpour, Zhao & Singh).

    Three Gaussian classes with unit spread around the centers (0, 0), (2, 0.5)
    and (0.8, 2): neighbouring centers are about 2 standard deviations apart,
    so the classes overlap.  The paper gives the class sizes (2,000 / 500 / 50)
    and the two features; the centers and spread are ours.

    Parameters
    ----------
    sizes : sequence of 3 ints
        Training points per class (default the paper's 2,000 / 500 / 50).
    test_sizes : sequence of 3 ints, optional
        Test points per class, drawn independently (default ``sizes``: the
        same imbalance).
    spread : float
        Standard deviation of every class (larger = more overlap).
    seed : int
        The same seed gives the same points.

    Returns
    -------
    DatasetBundle
        ``name="imbalanced_blobs"``, ``input_shape=(2,)``, float32 inputs, int64 labels.
    """
    sizes = tuple(sizes)
    test_sizes = sizes if test_sizes is None else tuple(test_sizes)
    for name, s in (("sizes", sizes), ("test_sizes", test_sizes)):
        if len(s) != len(_CENTERS) or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in s):
            raise InvalidParameterError(f"{name} must be {len(_CENTERS)} positive ints (one per class), got {s!r}")
    if not (isinstance(spread, numbers.Real) and spread > 0):
        raise InvalidParameterError(f"spread must be a positive number, got {spread!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InvalidParameterError(f"seed must be a non-negative int, got {seed!r}")
    rng = np.random.default_rng([int(seed), 0x1BA1])
    xtr, ytr = _draw(sizes, float(spread), rng)
    xte, yte = _draw(test_sizes, float(spread), rng)
    return DatasetBundle(
        name="imbalanced_blobs",
        train_x=torch.from_numpy(xtr),
        train_y=torch.from_numpy(ytr),
        test_x=torch.from_numpy(xte),
        test_y=torch.from_numpy(yte),
        num_classes=len(_CENTERS),
        input_shape=(2,),
        meta={"sizes": sizes, "test_sizes": test_sizes, "spread": float(spread), "seed": int(seed), "centers": _CENTERS.tolist()},
    )
