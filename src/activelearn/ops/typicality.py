"""Typicality: inverse mean distance to the k nearest neighbours, computed block by block."""

from __future__ import annotations

from typing import Any

import torch

from .._validation import as_feature_tensor, check_positive_int
from ..exceptions import InvalidParameterError

__all__ = ["knn_typicality"]


def knn_typicality(
    features: Any,
    k: int,
    *,
    squared: bool = False,
    eps: float = 1e-5,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """``1 / (mean distance to the k nearest other rows + eps)`` for every row.

    Parameters
    ----------
    features : array_like or torch.Tensor
        ``n x d`` rows (computed in float64 on the tensor's device).
    k : int
        Neighbours, ``1 <= k <= n - 1``; a row is never its own neighbour
        (an exact duplicate of it is).
    squared : bool
        Average squared Euclidean distances instead of distances (TypiClust's
        official code, through faiss ``IndexFlatL2``, averages squared ones).
    eps : float
        Added to the mean distance (TypiClust uses ``1e-5``).
    chunk_size : int
        Rows per block; memory is ``chunk_size x n``, never ``n x n``.

    Returns
    -------
    torch.Tensor
        ``n`` float64 typicalities.
    """
    X = as_feature_tensor(features, "features", dtype=torch.float64)
    n = int(X.shape[0])
    k = check_positive_int("k", k)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    if k > n - 1:
        raise InvalidParameterError(f"k={k} neighbours need at least {k + 1} rows, got {n}; pass k <= {n - 1}")
    sq = (X * X).sum(1)
    out = torch.empty(n, dtype=torch.float64, device=X.device)
    for s in range(0, n, chunk_size):
        e = min(s + chunk_size, n)
        d2 = (sq[s:e, None] + sq[None, :] - 2.0 * X[s:e] @ X.T).clamp_min_(0.0)
        rows = torch.arange(e - s, device=X.device)
        d2[rows, rows + s] = float("inf")  # not its own neighbour
        near = torch.topk(d2, k, dim=1, largest=False).values
        dist = near if squared else near.sqrt()
        out[s:e] = 1.0 / (dist.mean(1) + eps)
    return out
