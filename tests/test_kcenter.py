"""Tests of activelearn.ops.kcenter against a brute-force float64 reference."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from activelearn.exceptions import InvalidInputError, InvalidParameterError
from activelearn.ops.kcenter import kcenter_greedy, min_distances

METHODS = ("plain", "pruned", "auto")


pytestmark = pytest.mark.usefixtures("single_thread")


# --------------------------------------------------------------------------- #
# reference
# --------------------------------------------------------------------------- #
def full_distances(X: np.ndarray, metric: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if metric == "cosine":
        X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        return np.maximum(1.0 - X @ X.T, 0.0)
    return np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))


def reference_greedy(X: np.ndarray, budget: int, labeled=None, metric: str = "euclidean", seed=None) -> np.ndarray:
    """Textbook k-center greedy on the full matrix (ties to the lowest index)."""
    D = full_distances(X, metric)
    n = len(X)
    lab = [] if labeled is None else list(np.flatnonzero(labeled) if np.asarray(labeled).dtype == bool else labeled)
    picks: list[int] = []
    if lab:
        mind = D[:, lab].min(axis=1)
    else:
        p = int(np.random.default_rng(seed).integers(n))
        picks.append(p)
        mind = D[:, p].copy()
    mind[lab] = -np.inf
    mind[picks] = -np.inf
    while len(picks) < budget:
        p = int(np.argmax(mind))
        picks.append(p)
        mind = np.minimum(mind, D[:, p])
        mind[p] = -np.inf
    return np.asarray(picks, dtype=np.int64)


def blobs(n: int, d: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * 4.0
    lab = rng.integers(k, size=n)
    return centers[lab] + rng.normal(size=(n, d)) * rng.uniform(0.1, 0.6, size=k)[lab, None]


def random_data(n: int, d: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


# --------------------------------------------------------------------------- #
# exact agreement with the reference
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("kind", ["random", "blobs"])
@pytest.mark.parametrize("chunk_size", [7, 65536])
def test_matches_reference_without_labeled(method, metric, kind, chunk_size):
    X = random_data(150, 6, 1) if kind == "random" else blobs(150, 6, 8, 2)
    got = kcenter_greedy(X, 40, metric=metric, method=method, chunk_size=chunk_size, seed=3)
    np.testing.assert_array_equal(got, reference_greedy(X, 40, metric=metric, seed=3))
    assert got.dtype == np.int64


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("kind", ["random", "blobs"])
@pytest.mark.parametrize("as_mask", [False, True])
def test_matches_reference_with_labeled(method, metric, kind, as_mask):
    X = random_data(160, 5, 4) if kind == "random" else blobs(160, 5, 10, 5)
    rng = np.random.default_rng(6)
    lab_idx = rng.choice(160, size=23, replace=False)
    labeled = np.zeros(160, dtype=bool) if as_mask else lab_idx
    if as_mask:
        labeled[lab_idx] = True
    for chunk_size in (7, 65536):
        got = kcenter_greedy(X, 50, labeled=labeled, metric=metric, method=method, chunk_size=chunk_size)
        np.testing.assert_array_equal(got, reference_greedy(X, 50, labeled=lab_idx, metric=metric))
        assert not set(got.tolist()) & set(lab_idx.tolist())


@pytest.mark.parametrize("seed", range(6))
def test_pruned_equals_plain_float32_many_shapes(seed):
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(30, 250)), int(rng.integers(2, 40))
    X = (blobs(n, d, int(rng.integers(2, 20)), seed) if seed % 2 else random_data(n, d, seed)).astype(np.float32)
    lab = rng.choice(n, size=int(rng.integers(0, n // 3)), replace=False) if seed % 3 else None
    n_cand = n - (0 if lab is None else lab.size)
    budget = n_cand if seed == 0 else int(rng.integers(1, min(n_cand, 80) + 1))
    for metric in ("euclidean", "cosine"):
        plain = kcenter_greedy(X, budget, labeled=lab, metric=metric, method="plain", chunk_size=29, seed=seed)
        pruned = kcenter_greedy(X, budget, labeled=lab, metric=metric, method="pruned", chunk_size=29, seed=seed)
        np.testing.assert_array_equal(plain, pruned)


def test_torch_tensor_input_and_float64_kept():
    X = blobs(120, 4, 5, 7)
    got = kcenter_greedy(torch.from_numpy(X), 30, method="pruned", seed=1)
    np.testing.assert_array_equal(got, reference_greedy(X, 30, seed=1))


# --------------------------------------------------------------------------- #
# duplicates, ties, seeds, edge budgets
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("method", METHODS)
def test_duplicates_and_exact_ties(method):
    # small integer coordinates: every distance is exact in float64, so ties are real ties
    rng = np.random.default_rng(8)
    base = rng.integers(-3, 4, size=(40, 3)).astype(np.float64)
    X = np.concatenate([base, base, base[:10]])  # many exact duplicates
    lab = np.arange(0, 90, 9)
    n_cand = len(X) - lab.size
    got = kcenter_greedy(X, n_cand, labeled=lab, method=method, chunk_size=7)
    assert len(set(got.tolist())) == n_cand  # unique
    assert not set(got.tolist()) & set(lab.tolist())  # never labeled
    np.testing.assert_array_equal(got, reference_greedy(X, n_cand, labeled=lab))
    got2 = kcenter_greedy(X, 60, method=method, seed=4)
    np.testing.assert_array_equal(got2, reference_greedy(X, 60, seed=4))


def test_all_identical_rows():
    X = np.ones((20, 3))
    got = kcenter_greedy(X, 20, method="pruned", seed=0)
    assert sorted(got.tolist()) == list(range(20))
    np.testing.assert_array_equal(got, kcenter_greedy(X, 20, method="plain", seed=0))


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_picks_and_seeded_first_pick(method):
    X = random_data(100, 4, 9)
    a = kcenter_greedy(X, 10, seed=123, method=method)
    b = kcenter_greedy(X, 10, seed=123, method=method)
    np.testing.assert_array_equal(a, b)
    assert a[0] == np.random.default_rng(123).integers(100)
    firsts = {int(kcenter_greedy(X, 1, seed=s, method=method)[0]) for s in range(20)}
    assert len(firsts) > 1  # not always index 0


@pytest.mark.parametrize("method", METHODS)
def test_budget_equal_to_candidates(method):
    X = random_data(30, 3, 10)
    lab = [0, 5, 7]
    got = kcenter_greedy(X, 27, labeled=lab, method=method)
    assert sorted(got.tolist()) == sorted(set(range(30)) - set(lab))
    np.testing.assert_array_equal(got, reference_greedy(X, 27, labeled=lab))
    got = kcenter_greedy(X, 30, method=method, seed=0)
    assert sorted(got.tolist()) == list(range(30))


def test_normalised_euclidean_equals_cosine():
    X = blobs(200, 8, 6, 11)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    a = kcenter_greedy(X, 40, metric="euclidean", seed=2)
    b = kcenter_greedy(X, 40, metric="cosine", seed=2)
    np.testing.assert_array_equal(a, b)


def test_auto_uses_pruned_on_large_pool_and_matches_plain():
    X = blobs(25_000, 200, 30, 12).astype(np.float32)
    auto = kcenter_greedy(X, 60, method="auto", seed=0)
    plain = kcenter_greedy(X, 60, method="plain", seed=0)
    np.testing.assert_array_equal(auto, plain)


def test_large_labeled_set_blockwise():
    X = random_data(1200, 5, 13).astype(np.float32)
    lab = np.arange(0, 1200, 2)
    a = kcenter_greedy(X, 20, labeled=lab, method="plain", chunk_size=64)
    b = kcenter_greedy(X, 20, labeled=lab, method="pruned", chunk_size=64)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, reference_greedy(X, 20, labeled=lab))


def test_low_precision_ignored_on_cpu_with_warning():
    X = random_data(50, 3, 14)
    with pytest.warns(RuntimeWarning, match="low_precision"):
        got = kcenter_greedy(X, 5, seed=0, low_precision=True, device="cpu")
    np.testing.assert_array_equal(got, kcenter_greedy(X, 5, seed=0))


# --------------------------------------------------------------------------- #
# min_distances
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_min_distances(metric):
    X = random_data(90, 4, 15)
    D = full_distances(X, metric)
    idx = np.array([3, 50, 71])
    expected = D[:, idx].min(axis=1)
    got = min_distances(X, idx, metric=metric, chunk_size=7)
    assert isinstance(got, np.ndarray) and got.shape == (90,)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    mask = np.zeros(90, dtype=bool)
    mask[idx] = True
    np.testing.assert_allclose(min_distances(X, mask, metric=metric), expected, atol=1e-6)
    got_t = min_distances(torch.from_numpy(X), torch.from_numpy(X[idx]), metric=metric, chunk_size=5)
    assert isinstance(got_t, torch.Tensor)
    np.testing.assert_allclose(got_t.numpy(), expected, atol=1e-6)
    assert np.isinf(min_distances(X, np.zeros(0, dtype=np.int64))).all()


def test_min_distances_bad_centers():
    X = random_data(10, 4, 16)
    with pytest.raises(InvalidInputError, match="columns"):
        min_distances(X, np.zeros((2, 3)))
    with pytest.raises(InvalidInputError):
        min_distances(X, [11])


# --------------------------------------------------------------------------- #
# input errors
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("budget", [0, -1, 2.5, "3", True, None])
def test_bad_budget(budget):
    with pytest.raises(InvalidParameterError, match=repr(budget).replace(".", r"\.")):
        kcenter_greedy(random_data(10, 2, 0), budget)


def test_budget_too_large():
    X = random_data(10, 2, 0)
    with pytest.raises(InvalidParameterError, match=r"budget=9 exceeds the 8 non-labeled rows"):
        kcenter_greedy(X, 9, labeled=[0, 1])
    with pytest.raises(InvalidParameterError, match="budget=11"):
        kcenter_greedy(X, 11)


def test_bad_features():
    X = random_data(10, 2, 0)
    X[3, 1] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        kcenter_greedy(X, 2)
    with pytest.raises(InvalidInputError, match=r"2-D.*\(10,\)"):
        kcenter_greedy(np.arange(10.0), 2)
    with pytest.raises(InvalidInputError, match="empty"):
        kcenter_greedy(np.zeros((0, 3)), 1)


def test_nan_in_large_input_checked_blockwise():
    X = np.zeros((33_000, 512), dtype=np.float32)  # above the block size: validated chunk by chunk
    X[5, 3] = np.nan
    X[32_999, 0] = np.inf
    with pytest.raises(InvalidInputError, match="NaN or Inf in 2 row"):
        kcenter_greedy(X, 2)
    with pytest.raises(InvalidInputError, match="NaN or Inf in 2 row"):
        kcenter_greedy(torch.from_numpy(X), 2)


def test_bad_options():
    X = random_data(10, 2, 0)
    with pytest.raises(InvalidParameterError, match="'manhattan'"):
        kcenter_greedy(X, 2, metric="manhattan")
    with pytest.raises(InvalidParameterError, match="'fast'"):
        kcenter_greedy(X, 2, method="fast")
    with pytest.raises(InvalidParameterError, match="chunk_size"):
        kcenter_greedy(X, 2, chunk_size=0)
    with pytest.raises(InvalidInputError, match="labeled"):
        kcenter_greedy(X, 2, labeled=[0, 10])
    with pytest.raises(InvalidInputError, match="labeled"):
        kcenter_greedy(X, 2, labeled=np.ones(5, dtype=bool))
    with pytest.raises(InvalidParameterError, match="device"):
        kcenter_greedy(X, 2, device="not-a-device")


def test_no_warning_in_normal_use():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kcenter_greedy(random_data(40, 3, 0), 5, seed=0)


@pytest.mark.slow
def test_pruned_equals_plain_medium_clustered():
    X = blobs(60_000, 32, 50, 17).astype(np.float32)
    lab = np.arange(0, 60_000, 997)
    for labeled in (None, lab):
        plain = kcenter_greedy(X, 300, labeled=labeled, method="plain", seed=0)
        pruned = kcenter_greedy(X, 300, labeled=labeled, method="pruned", seed=0)
        np.testing.assert_array_equal(plain, pruned)


# --------------------------------------------------------------------------- #
# the lazy 'pruned' method's internal paths, forced on small inputs
# --------------------------------------------------------------------------- #
@pytest.fixture(params=["small_pool", "no_cc_table", "dense_refresh"])
def lazy_paths(request, monkeypatch):
    """Small pools and refresh blocks (many rebuilds and block expansions), no center table, or dense refreshes."""
    from activelearn.ops import _kcenter_lazy as lazy

    if request.param == "small_pool":
        monkeypatch.setattr(lazy, "_POOL", 16)
        monkeypatch.setattr(lazy, "_POOL_MIN", 8)
        monkeypatch.setattr(lazy, "_FIRST", 2)
    elif request.param == "no_cc_table":
        monkeypatch.setattr(lazy, "_CC_ELEMS", 0)
        monkeypatch.setattr(lazy, "_FIRST", 4)
    else:
        monkeypatch.setattr(lazy, "_DENSE", 0.0)  # every refresh is a contiguous pass over the stale rows
    return request.param


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("kind", ["blobs", "random", "ties"])
def test_lazy_paths_equal_plain(lazy_paths, metric, kind):
    if kind == "ties":  # integer grid with duplicates: exact ties everywhere, lowest index must win
        base = np.random.default_rng(3).integers(-3, 4, size=(150, 3)).astype(np.float32)
        X = np.concatenate([base, base[::-1], base[:40]])
    elif kind == "blobs":
        X = blobs(600, 24, 12, 5).astype(np.float32)
    else:
        X = random_data(600, 24, 6).astype(np.float32)
    for lab in (None, np.arange(0, len(X), 23)):
        plain = kcenter_greedy(X, 80, labeled=lab, metric=metric, method="plain", chunk_size=100, seed=2)
        pruned = kcenter_greedy(X, 80, labeled=lab, metric=metric, method="pruned", chunk_size=100, seed=2)
        np.testing.assert_array_equal(plain, pruned)
        if kind == "ties" and metric == "euclidean":  # float64 textbook reference on exact integer distances
            np.testing.assert_array_equal(pruned, reference_greedy(X.astype(np.float64), 80, labeled=lab, seed=2))


def test_lazy_recheck_decides_near_ties(monkeypatch):
    """Rows whose distances differ by less than the rounding bound are decided on the plain kernel's values."""
    from activelearn.ops import _kcenter_lazy as lazy

    calls = []
    orig = lazy._LazyState.canonical

    def spy(self, rows):
        calls.append(int(rows.numel()))
        return orig(self, rows)

    monkeypatch.setattr(lazy._LazyState, "canonical", spy)
    rng = np.random.default_rng(0)
    base = rng.normal(size=(300, 16)).astype(np.float32)
    X = np.concatenate([base, base + rng.normal(size=base.shape).astype(np.float32) * 1e-6])  # near-duplicates
    plain = kcenter_greedy(X, 200, method="plain", seed=1)
    pruned = kcenter_greedy(X, 200, method="pruned", seed=1)
    np.testing.assert_array_equal(plain, pruned)
    assert calls, "near-ties should have gone through the exact recheck"


def test_min_distances_far_from_the_origin_float32() -> None:
    """Duplicates at a 1e6 offset are at distance 0 (hypothesis found 512 with the plain |x|^2 + |c|^2 - 2x.c)."""
    from activelearn.ops import min_distances

    x = np.full((4, 8), 5e5, dtype=np.float32)
    x[2:] += np.float32(3.0)  # two rows 3 * sqrt(8) away
    d = np.asarray(min_distances(x, x[:1]))
    np.testing.assert_allclose(d, [0.0, 0.0, 3 * np.sqrt(8), 3 * np.sqrt(8)], atol=1e-3)
