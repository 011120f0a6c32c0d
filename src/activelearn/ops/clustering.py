"""k-means with k-means++ seeding, in torch on any device, memory bounded by a chunk size.

(The module is ``clustering`` rather than ``kmeans`` so that ``activelearn.ops.kmeans``
stays the function once the module is imported.)

Below ``sklearn_below`` rows the data go to scikit-learn's ``KMeans`` (its own
seeding, faster on small CPU problems); above it the torch path runs on the
chosen device with chunked assignment (``chunk_size x k`` distances at a time,
never ``N x N``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._validation import resolve_device
from ..exceptions import InvalidInputError, InvalidParameterError

__all__ = ["kmeans"]


def _sq_dists(x: torch.Tensor, c: torch.Tensor, c_sq: torch.Tensor) -> torch.Tensor:
    return ((x * x).sum(1, keepdim=True) - 2.0 * x @ c.T + c_sq[None, :]).clamp_min_(0.0)


def _assign(x: torch.Tensor, c: torch.Tensor, chunk_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest center and squared distance of every row, block by block."""
    c_sq = (c * c).sum(1)
    labels = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    dist = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    for s in range(0, x.shape[0], chunk_size):
        d = _sq_dists(x[s : s + chunk_size], c, c_sq)
        dist[s : s + chunk_size], labels[s : s + chunk_size] = d.min(1)
    return labels, dist


def _plusplus(x: torch.Tensor, k: int, gen: torch.Generator, chunk_size: int) -> torch.Tensor:
    """k-means++ seeding: each new center drawn with probability proportional to D^2."""
    n = x.shape[0]
    first = int(torch.randint(n, (1,), generator=gen, device="cpu"))
    centers = [x[first]]
    closest = _assign(x, x[first : first + 1], chunk_size)[1]
    for _ in range(1, k):
        total = float(closest.sum())
        if total <= 0:  # fewer distinct points than k: take any point not yet a center
            j = int(torch.randint(n, (1,), generator=gen, device="cpu"))
        else:
            probs = (closest / total).double().cpu()
            j = int(torch.multinomial(probs, 1, generator=gen))
        centers.append(x[j])
        closest = torch.minimum(closest, _assign(x, x[j : j + 1], chunk_size)[1])
    return torch.stack(centers)


def kmeans(
    x: Any,
    k: int,
    *,
    n_iter: int = 50,
    seed: int = 0,
    chunk_size: int = 16384,
    device: str | torch.device | None = None,
    tol: float = 1e-6,
    sklearn_below: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means from a k-means++ start.

    Parameters
    ----------
    x : array_like or torch.Tensor
        ``N x d`` features.
    k : int
        Number of clusters, ``1 <= k <= N``.
    n_iter : int
        Maximum Lloyd iterations.
    seed : int
        Seeds the k-means++ draws (same seed, same clusters).
    chunk_size : int
        Rows per distance block (memory ``chunk_size x k``).
    device : str or torch.device, optional
        Where to compute; default the tensor's device, else CPU.
    tol : float
        Stop when the relative decrease of the inertia falls below ``tol``.
    sklearn_below : int
        Use scikit-learn's KMeans when ``N`` is below this (0: always torch).

    Returns
    -------
    (labels, centers) : (torch.Tensor, torch.Tensor)
        ``labels`` (N,) int64 cluster ids in ``0..k-1`` and ``centers``
        (k x d), on the working device.  Empty clusters are re-seeded at the
        point farthest from its center, so every cluster ends non-empty unless
        ``x`` has fewer than ``k`` distinct rows.
    """
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim != 2 or t.shape[0] == 0:
        raise InvalidInputError(f"kmeans needs a non-empty N x d matrix, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise InvalidInputError("kmeans features hold NaN or Inf; clean them first")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= t.shape[0]:
        raise InvalidParameterError(f"k must be an int in 1..{t.shape[0]} (the number of rows), got {k!r}")
    if chunk_size < 1 or n_iter < 1:
        raise InvalidParameterError(f"chunk_size and n_iter must be positive, got {chunk_size}, {n_iter}")
    dev = resolve_device(device) if device is not None else t.device
    t = t.to(dev, dtype=torch.float64 if t.dtype == torch.float64 else torch.float32)
    k = int(k)
    if t.shape[0] < sklearn_below:
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters=k, n_init=1, max_iter=n_iter, random_state=int(seed), tol=tol).fit(t.cpu().numpy())
        return torch.as_tensor(km.labels_, dtype=torch.long, device=dev), torch.as_tensor(km.cluster_centers_, dtype=t.dtype, device=dev)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    centers = _plusplus(t, k, gen, chunk_size)
    prev = float("inf")
    for _ in range(n_iter):
        labels, dist = _assign(t, centers, chunk_size)
        counts = torch.bincount(labels, minlength=k)
        sums = torch.zeros_like(centers).index_add_(0, labels, t)
        empty = torch.nonzero(counts == 0).flatten()
        centers = sums / counts.clamp_min(1).unsqueeze(1).to(t.dtype)
        if empty.numel():
            far = torch.argsort(dist, descending=True)[: empty.numel()]
            centers[empty] = t[far]
        inertia = float(dist.sum())
        if not empty.numel() and prev - inertia <= tol * max(prev, 1e-30):
            break
        prev = inertia
    labels, _ = _assign(t, centers, chunk_size)
    return labels, centers
