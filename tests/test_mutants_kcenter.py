"""k-center kernels checked against float64 brute force where tests/test_kcenter.py leaves gaps (mutation testing, issue 13)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from activelearn.ops.kcenter import _Geometry


pytestmark = pytest.mark.usefixtures("single_thread")


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
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12, atol=1e-7)
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


def test_error_messages_name_the_argument() -> None:
    from activelearn.exceptions import InvalidInputError, InvalidParameterError
    from activelearn.ops.kcenter import kcenter_greedy, min_distances

    X = np.random.default_rng(23).normal(size=(10, 2))
    for kw, err, msg in (
        ({"budget": 0}, InvalidParameterError, "budget must be a positive int, got 0"),
        ({"budget": 2, "metric": "manhattan"}, InvalidParameterError, "metric must be one of ['euclidean', 'cosine'], got 'manhattan'"),
        ({"budget": 2, "method": "fast"}, InvalidParameterError, "method must be one of ['auto', 'plain', 'pruned'], got 'fast'"),
        ({"budget": 2, "chunk_size": 0}, InvalidParameterError, "chunk_size must be a positive int, got 0"),
        ({"budget": 2, "labeled": [0, 10]}, InvalidInputError, "labeled must lie in [0, 10)"),
        ({"budget": 2, "device": "tpu"}, InvalidParameterError, "device must be 'cpu', 'cuda' or 'cuda:N', got 'tpu'"),
        ({"budget": 9, "labeled": [0, 1]}, InvalidParameterError, "budget=9 exceeds the 8 non-labeled rows available (N=10, 2 labeled); pass budget <= 8"),
    ):
        with pytest.raises(err) as info:
            kcenter_greedy(X, **kw)
        assert str(info.value).startswith(msg), (kw, str(info.value))
    for kw, msg in (({"metric": "l1"}, "metric must be one of"), ({"chunk_size": -1}, "chunk_size must be a positive int"),
                    ({"device": "tpu"}, "device must be")):
        with pytest.raises(InvalidParameterError) as info:
            min_distances(X, [1], **kw)
        assert str(info.value).startswith(msg), (kw, str(info.value))
    # nested lists are accepted (computed on the CPU) and give the array's picks and distances
    assert kcenter_greedy(X.tolist(), 4, seed=1).tolist() == kcenter_greedy(X, 4, seed=1).tolist() == brute_greedy(X, 4, seed=1)
    np.testing.assert_array_equal(min_distances(X.tolist(), [1, 2]), min_distances(X, [1, 2]))
    with pytest.raises(InvalidInputError) as info:
        min_distances(X, [10])
    assert str(info.value).startswith("centers must lie in [0, 10)")
    with pytest.raises(InvalidInputError) as info:
        min_distances(X, np.zeros((2, 3)))
    assert str(info.value) == "centers must have 2 columns like features, got shape (2, 3)"


def test_small_blocks_nan_scan_and_center_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny ``_BLOCK_ELEMS``: inputs take the block-wise NaN scan, labeled rows and centers come in many blocks."""
    from activelearn.exceptions import InvalidInputError
    from activelearn.ops import kcenter as kc

    monkeypatch.setattr(kc, "_BLOCK_ELEMS", 30)
    rng = np.random.default_rng(24)
    X = rng.normal(size=(57, 4)) + 0.3
    lab = [56, 0, 9, 10, 11, 30, 31, 44]
    for metric in ("euclidean", "cosine"):
        for method in ("plain", "pruned"):
            for chunk in (7, 4, 100):
                got = kc.kcenter_greedy(X, 30, labeled=lab, metric=metric, method=method, chunk_size=chunk)
                assert got.tolist() == brute_greedy(X, 30, labeled=lab, metric=metric), (metric, method, chunk)
        ref = np.min([brute_distances(X, np.arange(57), X[c], metric) for c in lab], axis=0)
        for chunk in (7, 100):
            np.testing.assert_allclose(kc.min_distances(X, lab, metric=metric, chunk_size=chunk), ref, rtol=1e-12, atol=1e-7)
            np.testing.assert_allclose(kc.min_distances(X, X[lab] + 0.0, metric=metric, chunk_size=chunk), ref, rtol=1e-12, atol=1e-7)
    # NaN / Inf rows found block by block (7-row blocks: rows 2 and 3, 9, 40), counted once per row
    for dtype in (np.float64, np.float32):
        bad = X.astype(dtype)
        bad[2, 0] = bad[3, 1] = np.nan
        bad[9, 1] = bad[9, 3] = np.inf
        bad[40, 2] = -np.inf
        for arr in (bad, torch.from_numpy(bad)):
            with pytest.raises(InvalidInputError) as info:
                kc.kcenter_greedy(arr, 2)
            assert str(info.value) == "features holds NaN or Inf in 4 row(s); clean or impute them first"
    # finite rows whose block sum overflows are not refused; the block path keeps the data and dtype
    big = np.full((20, 4), 3e38, dtype=np.float32)
    t = kc._prepare(big, torch.device("cpu"))
    assert t.dtype == torch.float32 and t.is_contiguous() and torch.equal(t, torch.from_numpy(big))
    t = kc._prepare(X[:, ::2], torch.device("cpu"))  # a strided view comes back contiguous and equal
    assert t.dtype == torch.float64 and t.is_contiguous() and torch.equal(t, torch.from_numpy(np.ascontiguousarray(X[:, ::2])))
    half = X.astype(np.float16)  # a big float16 array is computed in float32 like a small one
    t = kc._prepare(half, torch.device("cpu"))
    assert t.dtype == torch.float32 and torch.equal(t, torch.from_numpy(half.astype(np.float32)))
    assert kc.kcenter_greedy(half, 20, seed=3).tolist() == kc.kcenter_greedy(half.astype(np.float32), 20, seed=3).tolist()
    for shape in ((40,), (2, 4, 5)):  # big but not 2-D: refused like a small one
        with pytest.raises(InvalidInputError) as info:
            kc.kcenter_greedy(np.ones(shape), 1)
        assert str(info.value).startswith("features must be 2-D"), str(info.value)
    t = kc._prepare(np.arange(80, dtype=np.int64).reshape(20, 4), torch.device("cpu"))  # int input: not the float block path
    assert t.dtype == torch.float32 and torch.equal(t, torch.arange(80.0).reshape(20, 4))


def test_low_precision_on_cpu_warns_and_computes_exactly() -> None:
    from activelearn.ops.kcenter import kcenter_greedy

    X = np.random.default_rng(25).normal(size=(40, 3))
    with pytest.warns(RuntimeWarning) as record:
        got = kcenter_greedy(X, 9, seed=2, low_precision=True, device="cpu")
    assert [str(w.message) for w in record] == ["low_precision=True is only used on CUDA; computing exactly on CPU"]
    assert got.tolist() == brute_greedy(X, 9, seed=2)
    # 1.001 and 1 differ below bfloat16's resolution: stored in bfloat16 they would tie and row 1 would win
    Y = np.array([[0.0], [1.0], [1.001]])
    with pytest.warns(RuntimeWarning):
        assert kcenter_greedy(Y, 1, labeled=[0], low_precision=True).tolist() == [2]


def test_min_distances_center_matrices() -> None:
    """Center rows given as a matrix: converted to the features' dtype, may be empty, refused with their own name."""
    from activelearn.exceptions import InvalidInputError
    from activelearn.ops.kcenter import min_distances

    X = np.random.default_rng(26).integers(-3, 4, size=(30, 3)).astype(np.float64)
    X[X.sum(axis=1) == 0, 0] = 5.0  # no zero rows (cosine)
    lab = [4, 11, 29]
    for metric in ("euclidean", "cosine"):
        ref = min_distances(X, lab, metric=metric)
        got = min_distances(X, X[lab].astype(np.int64), metric=metric, chunk_size=7)  # int centers -> float64
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
        empty = min_distances(X, np.zeros((0, 3)), metric=metric)
        assert empty.shape == (30,) and np.isinf(empty).all()
    bad = X[lab].copy()
    bad[1, 2] = np.nan
    with pytest.raises(InvalidInputError) as info:
        min_distances(X, bad)
    assert str(info.value) == "centers holds NaN or Inf in 1 row(s); clean or impute them first"


def test_min_distances_far_from_origin_several_centers() -> None:
    """Several centers at a 1e6 offset (float32): computed relative to the centers' mean, duplicates come out at 0."""
    from activelearn.ops.kcenter import min_distances

    x = np.full((6, 8), 5e5, dtype=np.float32)
    x[:, 0] += np.array([0.0, 1.0, 2.0, 0.0, 1.0, 2.0], dtype=np.float32)
    for chunk in (2, 100):
        d = np.asarray(min_distances(x, x[:3], chunk_size=chunk))
        np.testing.assert_allclose(d, np.zeros(6), atol=1e-3)
