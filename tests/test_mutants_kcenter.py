"""k-center kernels checked against float64 brute force where tests/test_kcenter.py leaves gaps (mutation testing, issue 13)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from activelearn.ops.kcenter import _Geometry


@pytest.fixture(autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def brute_distances(X: np.ndarray, rows: np.ndarray, c: np.ndarray, metric: str) -> np.ndarray:
    A = np.asarray(X, dtype=np.float64)[rows]
    c = np.asarray(c, dtype=np.float64)
    if metric == "cosine":
        na = np.linalg.norm(A, axis=1)
        cos = (A @ c) / np.where(na > 0, na, 1.0) / np.linalg.norm(c)
        return np.maximum(1.0 - np.where(na > 0, cos, 0.0), 0.0)
    return np.sqrt(((A - c) ** 2).sum(axis=1))


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_geometry_dist_rows_matches_brute_force(metric: str) -> None:
    """``_Geometry.dist_rows``: distances of gathered rows (unsorted, repeated, a zero row) to one vector.

    float64 features: computed in float64 (a float32 result would miss the 1e-12 tolerance).
    Chunks of 7 split the 23 requested rows unevenly; every chunk size gives the same values.
    """
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5)) + 1.0
    X[11] = 0.0
    rows = np.array([39, 3, 3, 0, 17, 11, 25, 38, 2, 9, 14, 30, 7, 21, 5, 33, 1, 26, 12, 6, 35, 19, 8])
    c = rng.normal(size=5)
    ref = brute_distances(X, rows, c, metric)
    if metric == "cosine":
        ref[rows == 11] = 1.0  # an all-zero row is at cosine distance 1 from everything
    outs = []
    for chunk in (7, 1, 23, 1000):
        geo = _Geometry(torch.from_numpy(X), metric, chunk)
        ct = torch.from_numpy(c)
        c_aux = geo.row_aux(ct[None, :])[0]
        got = geo.dist_rows(torch.from_numpy(rows), ct, c_aux)
        assert got.dtype == torch.float64 and got.shape == (rows.size,)
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12, atol=1e-12)
        outs.append(got)
    for o in outs[1:]:
        assert torch.equal(o, outs[0])
    geo = _Geometry(torch.from_numpy(X), metric, 7)
    assert geo.dist_rows(torch.zeros(0, dtype=torch.int64), torch.from_numpy(c), torch.tensor(1.0, dtype=torch.float64)).numel() == 0


# --------------------------------------------------------------------------- #
# every greedy path against a float64 brute force (a quick screen of many mutants)
# --------------------------------------------------------------------------- #
def brute_greedy(X: np.ndarray, budget: int, labeled=None, metric: str = "euclidean", seed=None) -> list[int]:
    """float64 k-center greedy: min-distance update, argmax with ties to the lowest index."""
    X = np.asarray(X, dtype=np.float64)
    n = len(X)
    rows = np.arange(n)
    mind = np.full(n, np.inf)
    lab = [] if labeled is None else list(labeled)
    picks: list[int] = []
    for c in lab:
        mind = np.minimum(mind, brute_distances(X, rows, X[c], metric))
    if not lab:
        picks.append(int(np.random.default_rng(seed).integers(n)))
        mind = np.minimum(mind, brute_distances(X, rows, X[picks[0]], metric))
    mind[lab + picks] = -np.inf
    while len(picks) < budget:
        p = int(np.argmax(mind))
        picks.append(p)
        mind = np.minimum(mind, brute_distances(X, rows, X[p], metric))
        mind[p] = -np.inf
    return picks


def _grid() -> np.ndarray:
    base = np.random.default_rng(21).integers(-3, 4, size=(40, 3)).astype(np.float64)
    return np.concatenate([base, base[::-1][:25]])  # exact duplicates: exact ties, lowest index wins


@pytest.mark.parametrize("method", ["plain", "pruned", "auto"])
def test_greedy_paths_match_brute_force(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from activelearn.ops import _kcenter_lazy as lazy
    from activelearn.ops.kcenter import kcenter_greedy

    monkeypatch.setattr(lazy, "_POOL", 8)  # many pool rebuilds and block expansions on a small pool
    monkeypatch.setattr(lazy, "_POOL_MIN", 4)
    monkeypatch.setattr(lazy, "_FIRST", 2)
    normal = np.random.default_rng(22).normal(size=(70, 5)) + 0.5
    cases = [(_grid(), "euclidean"), (normal, "euclidean"), (normal, "cosine")]
    for X, metric in cases:
        n = len(X)
        for lab in (None, [n - 1, 0, 17, 30]):
            for chunk in (7, 1 << 16):
                got = kcenter_greedy(X, 35, labeled=lab, metric=metric, method=method, chunk_size=chunk, seed=5)
                assert got.dtype == np.int64
                assert got.tolist() == brute_greedy(X, 35, labeled=lab, metric=metric, seed=5), (metric, lab, chunk)
