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
import warnings

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


@pytest.mark.parametrize("scale", [1e-3, 1e100])
def test_torch_backend_is_unchanged_by_the_scale_of_the_data(scale: float) -> None:
    """Potentials below 1 are still D^2 draws, the stopping rule is relative, huge values do not overflow the draw weights."""
    x = _blobs(7, n=40, spread=2.0)
    for k, tol in ((5, 1e-6), (5, 0.02), (3, 0.0)):
        want_labels, want_centers = _brute_torch_kmeans(x * scale, k, 3, 50, tol)
        labels, centers = kmeans(torch.as_tensor(x * scale), k, seed=3, tol=tol, chunk_size=1, backend="torch")
        np.testing.assert_array_equal(labels.numpy(), want_labels)
        np.testing.assert_allclose(centers.numpy(), want_centers, rtol=1e-9, atol=0)
        np.testing.assert_array_equal(kmeans(torch.as_tensor(x), k, seed=3, tol=tol, backend="torch")[0].numpy(), want_labels)


def test_torch_backend_breaks_equal_potentials_towards_the_first_candidate() -> None:
    x = np.array([[-1.0], [0.0], [1.0], [-1.0], [1.0], [0.0]])  # symmetric: -1 and 1 lower the potential alike
    for seed in range(12):
        want_labels, want_centers = _brute_torch_kmeans(x, 2, seed, 1, 1e-6)
        labels, centers = kmeans(torch.as_tensor(x), 2, seed=seed, n_iter=1, backend="torch")
        np.testing.assert_array_equal(labels.numpy(), want_labels, err_msg=f"seed {seed}")
        np.testing.assert_allclose(centers.numpy(), want_centers)


def test_torch_backend_reseeds_empty_and_keeps_singleton_clusters() -> None:
    r = np.random.default_rng(1)
    x = np.vstack([r.normal(size=(30, 2)), [[40.0, 40.0]], [[-40.0, 35.0]]])  # two outliers: clusters of one row
    x_dup = np.repeat(np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]]), [5, 2, 1], axis=0)
    x_dup = np.vstack([x_dup, [[1.0, 1.0]]])
    for data, k in ((x, 6), (x_dup, 6)):
        for seed in range(5):
            torch.manual_seed(seed + 100)  # the global generator must not matter
            want_labels, want_centers = _brute_torch_kmeans(data, k, seed, 50, 1e-6)
            labels, centers = kmeans(torch.as_tensor(data), k, seed=seed, backend="torch")
            np.testing.assert_array_equal(labels.numpy(), want_labels, err_msg=f"seed {seed}")
            np.testing.assert_allclose(centers.numpy(), want_centers, rtol=1e-9, atol=1e-12)


def test_kmeans_defaults_inputs_and_deprecation() -> None:
    x = _blobs(8, n=50, spread=2.0)
    ref = KMeans(n_clusters=4, n_init=1, max_iter=50, random_state=0, tol=1e-6).fit(x)
    np.testing.assert_array_equal(kmeans(x, 4)[0].numpy(), ref.labels_)  # default n_iter, tol, seed
    want = _brute_torch_kmeans(x, 4, 0, 50, 1e-6)[0]
    np.testing.assert_array_equal(kmeans(torch.as_tensor(x), 4, backend="torch")[0].numpy(), want)
    grad = torch.tensor(x, requires_grad=True)  # tensors that require grad are used as they are
    np.testing.assert_array_equal(kmeans(grad, 4)[0].numpy(), ref.labels_)
    with warnings.catch_warnings():  # torch warns about float() of a graph output
        warnings.simplefilter("ignore", UserWarning)
        assert inertia(grad, torch.tensor(x[:4], requires_grad=True)) == pytest.approx(_sq(x, x[:4]).min(1).sum(), rel=1e-12)
    # integers: float32 on both paths
    ints = np.round(x * 3).astype(np.int64)
    ref = KMeans(n_clusters=4, n_init=1, max_iter=50, random_state=2, tol=1e-6).fit(ints.astype(np.float32))
    centers = kmeans(ints, 4, seed=2)[1]
    np.testing.assert_array_equal(centers.numpy(), ref.cluster_centers_)
    labels_t, centers_t = kmeans(ints, 4, seed=2, backend="torch")
    f32 = kmeans(torch.as_tensor(ints, dtype=torch.float32), 4, seed=2, backend="torch")
    assert centers_t.dtype == torch.float32
    np.testing.assert_array_equal(labels_t.numpy(), f32[0].numpy())
    np.testing.assert_array_equal(kmeans(x, 4, chunk_size=1, backend="torch")[0].numpy(), want)  # chunk_size 1 is allowed
    msg = r"^kmeans\(sklearn_below=\.\.\.\) is deprecated and ignored; pass backend='sklearn' or 'torch'$"
    with pytest.warns(DeprecationWarning, match=msg) as rec:
        kmeans(x, 4, sklearn_below=10)
    # stacklevel: attributed to a caller, not to the library's own line (mutmut's trampoline adds a frame, so no exact file)
    assert [w.filename.endswith("clustering.py") for w in rec if w.category is DeprecationWarning] == [False]
    bad = x.copy()
    bad[0, 0] = np.nan  # the first row is checked too
    with pytest.raises(InvalidInputError, match="NaN or Inf"):
        kmeans(bad, 2, chunk_size=4)


def test_sklearn_backend_passes_its_settings_and_silences_only_convergence_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    import sklearn.cluster
    from sklearn.exceptions import ConvergenceWarning

    seen: dict[str, object] = {}

    class FakeKMeans:
        def __init__(self, **kwargs: object) -> None:
            seen.update(kwargs)

        def fit(self, arr: np.ndarray) -> FakeKMeans:
            seen["dtype"] = arr.dtype
            warnings.warn("fewer distinct points", ConvergenceWarning, stacklevel=1)
            warnings.warn("something else", UserWarning, stacklevel=1)
            self.labels_ = np.zeros(arr.shape[0], dtype=np.int32)
            self.cluster_centers_ = arr[:2].copy()
            return self

    monkeypatch.setattr(sklearn.cluster, "KMeans", FakeKMeans)
    x = _blobs(9, n=10).astype(np.float32)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        labels, centers = kmeans(x, 2, n_iter=7, seed=5, tol=0.25, copy=False)
    assert [type(w.message) for w in rec] == [UserWarning]
    assert seen == {"n_clusters": 2, "n_init": 1, "max_iter": 7, "random_state": 5, "tol": 0.25, "copy_x": False, "dtype": np.float32}
    assert labels.dtype == torch.int64 and centers.dtype == torch.float32


def test_torch_backend_leaves_the_global_generator_alone() -> None:
    """Only the seeded generator draws, also when every row already sits on a center (fewer distinct rows than k)."""
    x = torch.as_tensor(np.repeat(np.array([[0.0, 0.0], [3.0, 0.0]]), [4, 3], axis=0))
    torch.manual_seed(0)
    kmeans(x, 5, seed=1, backend="torch")
    after = torch.rand(3)
    torch.manual_seed(0)
    torch.testing.assert_close(after, torch.rand(3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_kmeans_devices() -> None:
    x = _blobs(2, n=40)
    labels, centers = kmeans(x, 4, device="cuda")  # auto on a CUDA device: the torch path, results there
    assert labels.device.type == "cuda" and centers.device.type == "cuda"
    np.testing.assert_array_equal(labels.cpu().numpy(), kmeans(torch.as_tensor(x), 4, backend="torch")[0].numpy())
    labels, centers = kmeans(torch.as_tensor(x, device="cuda"), 4, backend="sklearn")
    assert labels.device.type == "cuda" and centers.device.type == "cuda"
    assert inertia(torch.as_tensor(x, device="cuda"), x[:4]) == pytest.approx(_sq(x, x[:4]).min(1).sum(), rel=1e-9)
