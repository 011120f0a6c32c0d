"""BADGE's k-means++ seeding on last-layer gradient embeddings, without forming them.

The gradient embedding of sample ``i`` is the outer product
``g_i = a_i (x) z_i`` of a class vector ``a_i`` (``C``) and the penultimate
embedding ``z_i`` (``d``), so

``||g_i - g_j||^2 = ||a_i||^2 ||z_i||^2 + ||a_j||^2 ||z_j||^2 - 2 (a_i . a_j)(z_i . z_j)``.

The distances of every row to a new center therefore cost one ``U x C`` and
one ``U x d`` matrix-vector product, computed block by block: memory is
``O(U * C)`` plus one ``chunk_size x d`` block, never ``U x C x d``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._validation import as_feature_tensor, check_choice, check_positive_int
from ..exceptions import InvalidInputError, InvalidParameterError

__all__ = ["gradient_factors", "badge_kmeanspp", "d2_draw"]


def gradient_factors(probs: torch.Tensor) -> torch.Tensor:
    """``a = p - onehot(argmax p)`` in float64: the class factor of the cross-entropy gradient.

    ``d/dW CE(W z, yhat) = (p - onehot(yhat)) z^T`` for the last layer's weights
    ``W`` (``C x d``) and the hypothetical label ``yhat = argmax p`` (ties to
    the lowest class).
    """
    a = probs.to(torch.float64).clone()
    yhat = torch.argmax(a, dim=1)
    a[torch.arange(a.shape[0], device=a.device), yhat] -= 1.0
    return a


def d2_draw(weights: np.ndarray, rng: np.random.Generator, chosen: np.ndarray) -> int:
    """One index drawn with probability proportional to ``weights`` (the D^2 step).

    ``u = rng.random() * sum(weights)`` is located in the cumulative sum
    (``searchsorted``, side right), so a zero-weight row is never drawn.  When
    every weight is zero (all remaining rows coincide with a center) the draw
    is uniform over the rows not yet ``chosen``.
    """
    cdf = np.cumsum(weights, dtype=np.float64)
    total = float(cdf[-1]) if cdf.size else 0.0
    if not total > 0.0:
        return int(rng.choice(np.flatnonzero(~chosen)))
    j = int(np.searchsorted(cdf, rng.random() * total, side="right"))
    if j >= weights.size or weights[j] <= 0:  # u rounded up to the total: last positive row
        j = int(np.flatnonzero(weights > 0)[-1])
    return j


def _embeddings(embeddings: Any, dev: torch.device, chunk_size: int) -> torch.Tensor:
    """float32/float64 ``U x d`` on ``dev``, checked for NaN/Inf one block at a time.

    (A whole-array ``isfinite`` would allocate temporaries the size of the data.)
    """
    t = embeddings if isinstance(embeddings, torch.Tensor) else torch.as_tensor(np.asarray(embeddings))
    if t.ndim != 2 or t.shape[0] == 0:
        raise InvalidInputError(f"embeddings must be a non-empty 2-D (U x d) array, got shape {tuple(t.shape)}")
    t = t.detach().to(dev)
    if t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32)
    bad = sum(int((~torch.isfinite(t[s : s + chunk_size])).any(dim=1).sum()) for s in range(0, t.shape[0], chunk_size))
    if bad:
        raise InvalidInputError(f"embeddings hold NaN or Inf in {bad} row(s); clean or impute them first")
    return t


def badge_kmeanspp(
    probs: Any,
    embeddings: Any,
    budget: int,
    *,
    seed: int | np.random.Generator | None = None,
    first: str = "max_norm",
    chunk_size: int = 16384,
) -> np.ndarray:
    """k-means++ seeding on the gradient embeddings ``(p - onehot(argmax p)) (x) z``.

    Parameters
    ----------
    probs : array_like or torch.Tensor
        ``U x C`` class probabilities.
    embeddings : array_like or torch.Tensor
        ``U x d`` penultimate embeddings (the input of the last linear layer),
        on the same device as ``probs`` when tensors.  float32 input is
        multiplied in float32 and accumulated in float64; float64 stays float64.
    budget : int
        Number of rows to pick, ``1 <= budget <= U``.
    seed : int or numpy.random.Generator, optional
        Source of every random draw.
    first : {"max_norm", "random"}
        First center: the row of largest gradient norm (BADGE's official code;
        ties to the lowest row) or a uniform draw (Arthur & Vassilvitskii's
        k-means++).
    chunk_size : int
        Rows per block (memory ``chunk_size x d``).

    Returns
    -------
    numpy.ndarray
        ``budget`` distinct int64 row indices in pick order.
    """
    budget = check_positive_int("budget", budget)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    first = check_choice("first", first, ("max_norm", "random"))
    P = as_feature_tensor(probs, "probs")
    dev = P.device
    Z = _embeddings(embeddings, dev, chunk_size)
    n = int(P.shape[0])
    if Z.shape[0] != n:
        raise InvalidInputError(f"probs has {n} rows but embeddings has {Z.shape[0]}; pass one row per sample to both")
    if budget > n:
        raise InvalidParameterError(f"budget={budget} exceeds the {n} rows; pass budget <= {n}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    A = gradient_factors(P)
    a_sq = (A * A).sum(1)
    z_sq = torch.empty(n, dtype=torch.float64, device=dev)
    for s in range(0, n, chunk_size):
        zb = Z[s : s + chunk_size]
        z_sq[s : s + chunk_size] = (zb * zb).sum(1, dtype=torch.float64)
    g_sq = a_sq * z_sq  # ||g_i||^2

    chosen = np.zeros(n, dtype=bool)
    if first == "max_norm":
        c = int(torch.argmax(g_sq))
    else:
        c = int(rng.integers(n))
    picks = [c]
    chosen[c] = True
    mind = torch.full((n,), float("inf"), dtype=torch.float64, device=dev)
    while len(picks) < budget:
        a_c, z_c = A[c], Z[c]
        for s in range(0, n, chunk_size):
            e = min(s + chunk_size, n)
            cross = (A[s:e] @ a_c) * (Z[s:e] @ z_c).to(torch.float64)
            d = (g_sq[s:e] + g_sq[c] - 2.0 * cross).clamp_min_(0.0)
            torch.minimum(mind[s:e], d, out=mind[s:e])
        w = mind.cpu().numpy().copy()
        w[chosen] = 0.0
        c = d2_draw(w, rng, chosen)
        picks.append(c)
        chosen[c] = True
    return np.asarray(picks, dtype=np.int64)
