"""Lloyd's k-means in torch with k-means++ seeding and chunked distances.

Memory is ``O(N d + k d)`` plus one ``chunk x k`` distance block: no ``N x N``
matrix is ever built.
"""

from __future__ import annotations

import numpy as np
import torch

from .._validation import as_feature_tensor, check_positive_int, resolve_device
from ..exceptions import InvalidParameterError

__all__ = ["kmeans", "assign"]


def _sq_dists(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return ((x * x).sum(1, keepdim=True) + (c * c).sum(1)[None, :] - 2.0 * x @ c.T).clamp_min_(0.0)


def assign(x: torch.Tensor, centroids: torch.Tensor, *, chunk_size: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest centroid of every row: ``(labels, squared distances)``, chunked over rows."""
    labels = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    dist = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    for s in range(0, x.shape[0], chunk_size):
        d = _sq_dists(x[s : s + chunk_size], centroids)
        dist[s : s + chunk_size], labels[s : s + chunk_size] = d.min(1)
    return labels, dist


def kmeans(
    x: torch.Tensor | np.ndarray,
    k: int,
    *,
    n_iter: int = 50,
    seed: int = 0,
    chunk_size: int = 8192,
    device: str | torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster the rows of ``x`` into ``k`` groups (Euclidean k-means).

    Parameters
    ----------
    x : tensor or array, N x d
    k : int
        Number of clusters (``1 <= k <= N``).
    n_iter : int
        Maximum Lloyd iterations (stops early when assignments no longer change).
    seed : int
        Seeds the k-means++ initialisation (a ``torch.Generator``; global RNG untouched).
    chunk_size : int
        Rows per distance block.
    device : str or torch.device, optional
        Where to compute (default: CUDA when available).

    Returns
    -------
    centroids : torch.Tensor, k x d (float32, on ``device``)
    labels : torch.Tensor, N (int64, on ``device``)

    Notes
    -----
    An empty cluster is re-seeded with the row farthest from its centroid.
    """
    dev = resolve_device(device)
    xt = as_feature_tensor(x, "x").to(dev, torch.float32)
    n = xt.shape[0]
    k = check_positive_int("k", k)
    check_positive_int("n_iter", n_iter)
    check_positive_int("chunk_size", chunk_size)
    if k > n:
        raise InvalidParameterError(f"k={k} exceeds the {n} rows to cluster; use k <= {n}")
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    # k-means++ seeding
    first = int(torch.randint(n, (1,), generator=gen))
    cent = [xt[first]]
    closest = assign(xt, xt[first][None], chunk_size=chunk_size)[1]
    for _ in range(1, k):
        w = closest.double().cpu()
        if float(w.sum()) <= 0:
            nxt = int(torch.randint(n, (1,), generator=gen))
        else:
            nxt = int(torch.multinomial(w / w.sum(), 1, generator=gen))
        cent.append(xt[nxt])
        closest = torch.minimum(closest, assign(xt, xt[nxt][None], chunk_size=chunk_size)[1])
    centroids = torch.stack(cent).clone()
    labels = assign(xt, centroids, chunk_size=chunk_size)[0]
    for _ in range(n_iter):
        sums = torch.zeros_like(centroids).index_add_(0, labels, xt)
        counts = torch.bincount(labels, minlength=k).to(xt.dtype)
        empty = counts == 0
        centroids = torch.where(empty[:, None], centroids, sums / counts.clamp_min(1)[:, None])
        if bool(empty.any()):
            d = assign(xt, centroids, chunk_size=chunk_size)[1]
            for j in torch.flatnonzero(empty).tolist():
                far = int(d.argmax())
                centroids[j] = xt[far]
                d[far] = -1.0
        new = assign(xt, centroids, chunk_size=chunk_size)[0]
        if bool((new == labels).all()):
            labels = new
            break
        labels = new
    return centroids, labels
