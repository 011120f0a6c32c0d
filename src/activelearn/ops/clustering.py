"""k-means: scikit-learn's ``KMeans`` by default, a chunked torch path for data on a GPU.

(The module is ``clustering`` rather than ``kmeans`` so that ``activelearn.ops.kmeans``
stays the function once the module is imported.)

Backends (``backend=``):

* ``"sklearn"`` (the default for data on the CPU): ``sklearn.cluster.KMeans``
  with ``n_init=1``, greedy k-means++ seeding, Lloyd iterations, seeded by
  ``random_state=seed``.  scikit-learn is a runtime dependency of the package
  (``pyproject.toml``), imported when the function runs.  Measured against the
  torch path below at 20,000 x 32, k = 50 (issue 16): the earlier torch code
  (plain k-means++) reached 1.2-2.3x worse inertia at similar speed, so
  scikit-learn is used wherever quality matters.
* ``"torch"`` (the default for tensors on a CUDA device, where copying to the
  host and running on the CPU would waste the accelerator; timed by
  ``benchmarks/gpu.py``): greedy k-means++ (``2 + floor(log k)`` candidates per
  new center, the center that lowers the potential most is kept, as in
  scikit-learn and Arthur & Vassilvitskii 2007) and Lloyd iterations, with
  distances computed ``chunk_size`` rows at a time (memory ``chunk_size x k``,
  never ``N x N``).  Same seed, same clusters on the same device; its
  draws differ from scikit-learn's, so the clusters differ too.

Memory on the CPU (``benchmarks/cluster_memory.py``, issue 17): ``x`` itself
(float32 or float64, C-contiguous: passed to scikit-learn without a copy;
``copy=False`` lets it centre ``x`` in place), the finiteness check
``chunk_size`` rows at a time, ``O(N)`` labels and norms, scikit-learn's
blocks of 256 rows x ``k``; and one transient ``N x d`` array that
scikit-learn allocates for its tolerance (``np.var(x, axis=0)``, before the
iterations, whenever ``tol != 0``; ``tol=0`` avoids it but then only strict
convergence or ``n_iter`` stops the iterations, so the clusters can differ).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from .._validation import resolve_device
from ..exceptions import InvalidInputError, InvalidParameterError

__all__ = ["kmeans", "inertia"]

_BACKENDS = ("auto", "sklearn", "torch")


def _sq_dists(x: torch.Tensor, c: torch.Tensor, c_sq: torch.Tensor) -> torch.Tensor:
    """``|x - c|^2`` of a block of rows against every center, one ``rows x k`` buffer."""
    d = torch.addmm(c_sq[None, :], x, c.T, alpha=-2.0)
    return d.add_((x * x).sum(1, keepdim=True)).clamp_min_(0.0)


def _assign(x: torch.Tensor, c: torch.Tensor, chunk_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest center and squared distance of every row, block by block."""
    c_sq = (c * c).sum(1)
    labels = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    dist = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    for s in range(0, x.shape[0], chunk_size):
        d = _sq_dists(x[s : s + chunk_size], c, c_sq)
        dist[s : s + chunk_size], labels[s : s + chunk_size] = d.min(1)
    return labels, dist


def inertia(x: Any, centers: Any, chunk_size: int = 16384) -> float:
    """Sum of squared distances of the rows of ``x`` to their nearest center (float64 sum)."""
    xt = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x
    ct = torch.as_tensor(np.asarray(centers)) if not isinstance(centers, torch.Tensor) else centers
    return float(_assign(xt.double(), ct.to(xt.device).double(), chunk_size)[1].sum())


def _plusplus(x: torch.Tensor, k: int, gen: torch.Generator, chunk_size: int) -> torch.Tensor:
    """Greedy k-means++: per new center, ``2 + floor(log k)`` D^2 draws; keep the one lowering the potential most."""
    n = x.shape[0]
    trials = 2 + int(math.log(k))
    first = int(torch.randint(n, (1,), generator=gen, device="cpu"))
    centers = [x[first]]
    closest = _assign(x, x[first : first + 1], chunk_size)[1]
    for _ in range(1, k):
        total = float(closest.sum())
        if total <= 0:  # fewer distinct points than k: take any point
            cand = torch.randint(n, (trials,), generator=gen, device="cpu")
        else:
            cand = torch.multinomial((closest / total).double().cpu(), trials, replacement=True, generator=gen)
        best, best_pot, best_d = 0, math.inf, closest
        for t, j in enumerate(cand.tolist()):
            d = torch.minimum(closest, _assign(x, x[j : j + 1], chunk_size)[1])
            pot = float(d.sum())
            if pot < best_pot:
                best, best_pot, best_d = t, pot, d
        centers.append(x[int(cand[best])])
        closest = best_d
    return torch.stack(centers)


def _lloyd(t: torch.Tensor, centers: torch.Tensor, n_iter: int, tol: float, chunk_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    k = centers.shape[0]
    prev = math.inf
    for _ in range(n_iter):
        labels, dist = _assign(t, centers, chunk_size)
        counts = torch.bincount(labels, minlength=k)
        sums = torch.zeros_like(centers).index_add_(0, labels, t)
        empty = torch.nonzero(counts == 0).flatten()
        centers = sums / counts.clamp_min(1).unsqueeze(1).to(t.dtype)
        if empty.numel():  # re-seed empty clusters at the points farthest from their centers
            centers[empty] = t[torch.argsort(dist, descending=True)[: empty.numel()]]
        total = float(dist.sum())
        if not empty.numel() and prev < math.inf and prev - total <= tol * max(prev, 1e-30):  # no stop before a decrease exists
            break
        prev = total
    return _assign(t, centers, chunk_size)[0], centers


def _all_finite(t: torch.Tensor, chunk_size: int) -> bool:
    """Whether every entry is finite, ``chunk_size`` rows at a time.

    ``torch.isfinite`` of the whole matrix allocates about 1.75x the features
    (an ``abs`` copy and three boolean masks; measured by
    ``benchmarks/cluster_memory.py``): one block bounds that to one chunk.
    """
    return all(bool(torch.isfinite(t[s : s + chunk_size]).all()) for s in range(0, t.shape[0], chunk_size))


def _check(t: torch.Tensor, k: Any, chunk_size: int, n_iter: int, backend: str) -> None:
    if t.ndim != 2 or t.shape[0] == 0:
        raise InvalidInputError(f"kmeans needs a non-empty N x d matrix, got shape {tuple(t.shape)}")
    if chunk_size < 1 or n_iter < 1:
        raise InvalidParameterError(f"chunk_size and n_iter must be positive, got {chunk_size}, {n_iter}")
    if not _all_finite(t, chunk_size):
        raise InvalidInputError("kmeans features hold NaN or Inf; clean them first")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= t.shape[0]:
        raise InvalidParameterError(f"k must be an int in 1..{t.shape[0]} (the number of rows), got {k!r}")
    if backend not in _BACKENDS:
        raise InvalidParameterError(f"backend must be one of {_BACKENDS}, got {backend!r}")


def kmeans(
    x: Any,
    k: int,
    *,
    n_iter: int = 50,
    seed: int = 0,
    chunk_size: int = 16384,
    device: str | torch.device | None = None,
    tol: float = 1e-6,
    backend: str = "auto",
    copy: bool = True,
    sklearn_below: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means (k-means++ start, Lloyd iterations); see the module notes for the backends.

    Parameters
    ----------
    x : array_like or torch.Tensor
        ``N x d`` features.
    k : int
        Number of clusters, ``1 <= k <= N``.
    n_iter : int
        Maximum Lloyd iterations (scikit-learn's ``max_iter``).
    seed : int
        Seeds the k-means++ draws (same seed, same clusters).
    chunk_size : int
        Torch path: rows per distance block (memory ``chunk_size x k``).
    device : str or torch.device, optional
        Where the results live (and the torch path computes); default the
        tensor's device, else CPU.
    tol : float
        scikit-learn: its ``tol`` (centre shift relative to the data's
        variance); torch: stop when the relative decrease of the inertia falls
        below ``tol``.
    backend : {"auto", "sklearn", "torch"}
        ``"auto"``: torch when the work happens on a CUDA device, else
        scikit-learn.
    copy : bool
        scikit-learn's ``copy_x``: ``False`` lets it centre a float32 / float64
        CPU ``x`` in place and restore it afterwards (rounding-level changes to
        ``x``; saves one copy of the features), for callers that own ``x``.
    sklearn_below : int, optional
        Deprecated and ignored (the backend is chosen by ``backend``).

    Returns
    -------
    (labels, centers) : (torch.Tensor, torch.Tensor)
        ``labels`` (N,) int64 cluster ids in ``0..k-1`` and ``centers``
        (k x d), on the working device.  Empty clusters (torch path) are
        re-seeded at the point farthest from its center; when ``x`` has fewer
        distinct rows than ``k`` some labels go unused (scikit-learn's
        ``ConvergenceWarning`` about it is silenced).
    """
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    _check(t, k, chunk_size, n_iter, backend)
    if sklearn_below:
        warnings.warn("kmeans(sklearn_below=...) is deprecated and ignored; pass backend='sklearn' or 'torch'", DeprecationWarning, stacklevel=2)
    dev = resolve_device(device) if device is not None else t.device
    dtype = torch.float64 if t.dtype == torch.float64 else torch.float32
    if backend == "sklearn" or (backend == "auto" and dev.type != "cuda"):
        from sklearn.cluster import KMeans
        from sklearn.exceptions import ConvergenceWarning

        arr = t.detach().cpu().to(dtype).numpy()
        with warnings.catch_warnings():  # fewer distinct rows than k: documented above, callers handle it
            warnings.simplefilter("ignore", ConvergenceWarning)
            km = KMeans(n_clusters=int(k), n_init=1, max_iter=n_iter, random_state=int(seed), tol=tol, copy_x=copy).fit(arr)
        return torch.as_tensor(km.labels_, dtype=torch.long, device=dev), torch.as_tensor(km.cluster_centers_, dtype=dtype, device=dev)
    t = t.to(dev, dtype=dtype)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    return _lloyd(t, _plusplus(t, int(k), gen, chunk_size), n_iter, tol, chunk_size)
