"""Issue 13, mutation testing of ops/clustering.py: k-means against scikit-learn and a float64 brute force.

The scikit-learn backend must return exactly what ``sklearn.cluster.KMeans``
(``n_init=1``, same seed, iteration cap and tolerance) returns.  The torch
backend is checked against a float64 re-statement of its documented algorithm
(greedy k-means++ with ``2 + floor(log k)`` D^2 candidates per center drawn
from the same ``torch.Generator`` calls, then Lloyd iterations stopping on the
relative decrease of the inertia), with distances from pairwise differences.
See docs/reliability.md, "Mutation testing".
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans

from activelearn.exceptions import InvalidInputError, InvalidParameterError
from activelearn.ops.clustering import inertia, kmeans


def _sq(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    return ((x[:, None, :] - c[None, :, :]) ** 2).sum(-1)


def _brute_plusplus(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    gen = torch.Generator().manual_seed(seed)
    n, trials = x.shape[0], 2 + int(math.log(k))
    first = int(torch.randint(n, (1,), generator=gen))
    picks, closest = [first], _sq(x, x[first : first + 1])[:, 0]
    for _ in range(1, k):
        total = closest.sum()
        if total <= 0:
            cand = torch.randint(n, (trials,), generator=gen).tolist()
        else:
            cand = torch.multinomial(torch.as_tensor(closest / total), trials, replacement=True, generator=gen).tolist()
        best, best_pot, best_d = -1, math.inf, closest
        for j in cand:  # keep the candidate that lowers the potential most (the first of equals)
            d = np.minimum(closest, _sq(x, x[j : j + 1])[:, 0])
            if d.sum() < best_pot:
                best, best_pot, best_d = j, d.sum(), d
        picks.append(best)
        closest = best_d
    return x[picks].copy()


def _brute_torch_kmeans(x: np.ndarray, k: int, seed: int, n_iter: int, tol: float) -> tuple[np.ndarray, np.ndarray]:
    c = _brute_plusplus(x, k, seed)
    prev = math.inf
    for _ in range(n_iter):
        d = _sq(x, c)
        labels, dist = d.argmin(1), d.min(1)
        counts = np.bincount(labels, minlength=k)
        empty = np.flatnonzero(counts == 0)
        c = np.stack([x[labels == j].mean(0) if counts[j] else np.zeros(x.shape[1]) for j in range(k)])
        if empty.size:  # re-seeded at the rows farthest from their centers
            c[empty] = x[np.argsort(-dist, kind="stable")[: empty.size]]
        total = dist.sum()
        if not empty.size and prev < math.inf and (prev - total) / prev <= tol:  # relative decrease, from the 2nd on
            break
        prev = total
    return _sq(x, c).argmin(1), c


def _blobs(seed: int, n: int = 60, d: int = 3, spread: float = 1.0) -> np.ndarray:
    r = np.random.default_rng(seed)
    centers = r.normal(scale=4.0, size=(5, d))
    return centers[r.integers(5, size=n)] + r.normal(scale=spread, size=(n, d))


@pytest.mark.parametrize("seed", range(3))
def test_torch_backend_matches_the_float64_brute_force(seed: int) -> None:
    x = _blobs(seed, spread=2.0)
    for k, n_iter, tol, chunk in ((1, 50, 1e-6, 16384), (4, 1, 1e-6, 7), (4, 3, 0.0, 16384), (6, 50, 1e-6, 7), (7, 50, 0.05, 13)):
        want_labels, want_centers = _brute_torch_kmeans(x, k, seed, n_iter, tol)
        labels, centers = kmeans(torch.as_tensor(x), k, seed=seed, n_iter=n_iter, tol=tol, chunk_size=chunk, backend="torch")
        assert labels.dtype == torch.int64 and centers.dtype == torch.float64
        np.testing.assert_array_equal(labels.numpy(), want_labels, err_msg=f"k={k} n_iter={n_iter} tol={tol}")
        np.testing.assert_allclose(centers.numpy(), want_centers, rtol=1e-9, atol=1e-9)


def test_torch_backend_with_fewer_distinct_rows_than_clusters() -> None:
    x = np.repeat(np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 7.0]]), [4, 3, 2], axis=0)
    for seed in range(4):
        labels, centers = kmeans(torch.as_tensor(x), 5, seed=seed, backend="torch")
        # every row sits on a center; the three distinct rows are all centers
        np.testing.assert_allclose(centers.numpy()[labels.numpy()], x)
        assert {tuple(r) for r in centers.numpy()} >= {(0.0, 0.0), (5.0, 0.0), (0.0, 7.0)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sklearn_backend_is_scikit_learns_kmeans(dtype: type) -> None:
    x = _blobs(3, n=80, spread=2.5).astype(dtype)
    for k, n_iter, tol, seed in ((3, 50, 1e-6, 0), (5, 2, 1e-6, 1), (6, 50, 0.0, 2), (4, 50, 0.3, 3)):
        ref = KMeans(n_clusters=k, n_init=1, max_iter=n_iter, random_state=seed, tol=tol).fit(x.copy())
        for backend, arg in (("sklearn", x), ("auto", torch.as_tensor(x)), ("sklearn", x.tolist() if dtype == np.float64 else x)):
            labels, centers = kmeans(arg, k, n_iter=n_iter, tol=tol, seed=seed, backend=backend)
            assert labels.dtype == torch.int64 and centers.dtype == (torch.float64 if dtype == np.float64 else torch.float32)
            np.testing.assert_array_equal(labels.numpy(), ref.labels_)
            np.testing.assert_array_equal(centers.numpy(), ref.cluster_centers_)
    ints = np.round(_blobs(4, n=40)).astype(np.int64)  # integers are clustered as float32
    ref = KMeans(n_clusters=3, n_init=1, max_iter=50, random_state=0, tol=1e-6).fit(ints.astype(np.float32))
    labels, centers = kmeans(ints, 3, backend="sklearn", device="cpu")
    assert centers.dtype == torch.float32 and labels.device.type == "cpu"
    np.testing.assert_array_equal(labels.numpy(), ref.labels_)


def test_sklearn_backend_copy_false_leaves_the_rows_as_they_were() -> None:
    x = _blobs(5, n=50)
    keep = x.copy()
    a = kmeans(x, 4, seed=1, copy=False)
    b = kmeans(keep, 4, seed=1)
    np.testing.assert_allclose(x, keep, rtol=0, atol=1e-12)  # restored up to rounding
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())


def test_inertia_is_the_sum_of_squared_distances_to_the_nearest_center() -> None:
    x = _blobs(6, n=23)
    c = x[[0, 5, 9]] + 0.25
    want = _sq(x, c).min(1).sum()
    for chunk in (1, 4, 23, 16384):
        assert inertia(torch.as_tensor(x), c, chunk_size=chunk) == pytest.approx(want, rel=1e-12)
    assert inertia(x.tolist(), torch.as_tensor(c)) == pytest.approx(want, rel=1e-12)
    # float32 rows and centers are summed in float64
    x32, c32 = x.astype(np.float32), c.astype(np.float32)
    assert inertia(torch.as_tensor(x32), c32) == pytest.approx(_sq(x32.astype(np.float64), c32.astype(np.float64)).min(1).sum(), rel=1e-12)


def test_bad_kmeans_input_is_refused_with_what_was_received() -> None:
    x = _blobs(0, n=10)
    cases = [
        ((x[0], 2), {}, InvalidInputError, r"^kmeans needs a non-empty N x d matrix, got shape \(3,\)$"),
        ((x[:0], 2), {}, InvalidInputError, r"got shape \(0, 3\)"),
        ((x, 2), {"chunk_size": 0}, InvalidParameterError, r"^chunk_size and n_iter must be positive, got 0, 50$"),
        ((x, 2), {"n_iter": 0}, InvalidParameterError, r"got 16384, 0$"),
        ((x, True), {}, InvalidParameterError, r"^k must be an int in 1\.\.10 \(the number of rows\), got True$"),
        ((x, 2.0), {}, InvalidParameterError, r"got 2\.0$"),
        ((x, 11), {}, InvalidParameterError, r"got 11$"),
        ((x, 2), {"backend": "faiss"}, InvalidParameterError, r"^backend must be one of \('auto', 'sklearn', 'torch'\), got 'faiss'$"),
    ]
    for args, kwargs, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            kmeans(*args, **kwargs)
    bad = x.copy()
    bad[9, 2] = np.inf  # in the last block of 4 rows
    for backend in ("sklearn", "torch"):
        with pytest.raises(InvalidInputError, match=r"^kmeans features hold NaN or Inf; clean them first$"):
            kmeans(bad, 2, chunk_size=4, backend=backend)
    assert kmeans(x, 10, backend="torch")[0].unique().numel() == 10  # k = N is allowed
    assert kmeans(x, np.int64(2))[1].shape == (2, 3)


def test_torch_backend_iterates_past_the_first_step_with_the_default_tolerance() -> None:
    """Regression: ``prev`` started at inf and ``inf - total <= tol * inf`` stopped every tol > 0 run after one step."""
    x = torch.as_tensor(np.random.default_rng(0).normal(size=(300, 2)))
    one = inertia(x, kmeans(x, 8, n_iter=1, backend="torch")[1])
    default = inertia(x, kmeans(x, 8, backend="torch")[1])
    assert default < 0.97 * one
    assert default == pytest.approx(inertia(x, kmeans(x, 8, tol=0.0, backend="torch")[1]), rel=1e-3)
