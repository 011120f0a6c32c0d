"""Tests of activelearn.ops.density: LSH density (DACS) and exact kNN density."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from activelearn.exceptions import InvalidInputError, InvalidParameterError
from activelearn.ops import density as dens_mod
from activelearn.ops.density import knn_density, lsh_density


def brute_lsh(z: np.ndarray, n_buckets: int, n_rounds: int, seed: int) -> np.ndarray:
    """Plain-python LSH density straight from the definition in METHODS.md."""
    zt = torch.as_tensor(z, dtype=torch.float64)
    n, d = zt.shape
    zn = zt / zt.norm(dim=1, keepdim=True)
    gen = torch.Generator().manual_seed(seed)
    out = np.zeros(n)
    for _ in range(n_rounds):
        r = torch.randn(d, n_buckets // 2, generator=gen, dtype=torch.float64)
        proj = zn @ r
        bucket = torch.argmax(torch.cat([proj, -proj], dim=1), dim=1).tolist()
        order = sorted(range(n), key=lambda i: (bucket[i], i))
        m = math.ceil(n / n_buckets)
        chunks = [order[s : s + m] for s in range(0, n, m)]
        for c, chunk in enumerate(chunks):
            previous = chunks[c - 1] if len(chunks) > 1 else []  # chunk 0 -> last chunk
            for i in chunk:
                total = 0.0
                for j in chunk + previous:
                    if j != i:
                        cos = float(zn[i] @ zn[j])
                        total += cos / (1.0 + math.exp(-cos))
                out[i] += total
    return out / n_rounds


@pytest.mark.parametrize(
    ("n", "n_buckets", "n_rounds"),
    [(53, 10, 1), (53, 10, 3), (7, 10, 2), (2, 4, 1), (100, 100, 1), (101, 100, 1), (120, 6, 2), (64, 8, 1)],
)
def test_lsh_matches_brute_force(n: int, n_buckets: int, n_rounds: int) -> None:
    z = np.random.default_rng(n + n_buckets).normal(size=(n, 5))
    got = lsh_density(z, n_buckets, n_rounds, seed=3, device="cpu")
    assert got.dtype == torch.float64 and got.shape == (n,)
    np.testing.assert_allclose(got.numpy(), brute_lsh(z, n_buckets, n_rounds, 3), rtol=0, atol=1e-12)


def test_lsh_float32_close_to_float64() -> None:
    z = np.random.default_rng(0).normal(size=(200, 8))
    a = lsh_density(z.astype(np.float32), 10, seed=1, device="cpu")
    b = lsh_density(z, 10, seed=1, device="cpu")
    assert a.dtype == torch.float32
    # R is drawn in float64 then cast, so the buckets agree here and values differ by rounding.
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)


def test_lsh_self_excluded_and_lookback_wraps() -> None:
    # Identical rows all hash to one bucket.  N = 6, 2 buckets: m = 3, chunks {0,1,2}, {3,4,5}.
    z = torch.ones(6, 3, dtype=torch.float64)
    s1 = 1.0 / (1.0 + math.exp(-1.0))  # sigmoid(1) * 1
    got = lsh_density(z, 2, seed=0, device="cpu")
    # Each row: 2 chunk mates (self excluded) + 3 rows of the previous chunk (chunk 0 wraps to chunk 1).
    np.testing.assert_allclose(got.numpy(), np.full(6, 5 * s1))
    # N = 7, 2 buckets: m = 4, chunks {0..3}, {4,5,6}; chunk 0 looks back to the short last chunk.
    got = lsh_density(torch.ones(7, 3, dtype=torch.float64), 2, seed=0, device="cpu")
    np.testing.assert_allclose(got.numpy(), [6 * s1] * 4 + [6 * s1] * 3)
    # N = 5, 2 buckets: m = 3, chunks {0,1,2}, {3,4}.
    got = lsh_density(torch.ones(5, 3, dtype=torch.float64), 2, seed=0, device="cpu")
    np.testing.assert_allclose(got.numpy(), [4 * s1] * 3 + [4 * s1] * 2)


def test_lsh_small_n() -> None:
    assert lsh_density(torch.ones(1, 4), seed=0, device="cpu").tolist() == [0.0]
    # N < n_buckets: m = 1, each row's only neighbour is the previous row in sorted order.
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    got = lsh_density(z, 100, seed=0, device="cpu").numpy()
    np.testing.assert_allclose(got, brute_lsh(z.numpy(), 100, 1, 0), atol=1e-12)
    two = lsh_density(torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=torch.float64), seed=0, device="cpu")
    c = 1 / math.sqrt(2)
    np.testing.assert_allclose(two.numpy(), [c / (1 + math.exp(-c))] * 2)


def test_lsh_seed_reproducible_and_rounds_average() -> None:
    z = np.random.default_rng(1).normal(size=(300, 6))
    a = lsh_density(z, 10, seed=5, device="cpu")
    assert torch.equal(a, lsh_density(z, 10, seed=5, device="cpu"))
    assert not torch.equal(a, lsh_density(z, 10, seed=6, device="cpu"))
    three = lsh_density(z, 10, n_rounds=3, seed=5, device="cpu")
    # Round r uses the r-th draw of one generator: round 0 equals the single-round result.
    np.testing.assert_allclose(three.numpy(), brute_lsh(z, 10, 3, 5), atol=1e-12)
    assert lsh_density(z, 10, seed=None, device="cpu").shape == (300,)


def test_lsh_blocked_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    z = np.random.default_rng(2).normal(size=(403, 6))
    full = lsh_density(z, 4, seed=0, device="cpu")  # m = 101
    monkeypatch.setattr(dens_mod, "_MAX_BLOCK", 5000)  # forces row blocks inside a chunk
    blocked = lsh_density(z, 4, seed=0, device="cpu")
    monkeypatch.setattr(dens_mod, "_MAX_BLOCK", 2 * 101 * 101 * 2)  # two chunks per batch
    grouped = lsh_density(z, 4, seed=0, device="cpu")
    np.testing.assert_allclose(blocked.numpy(), full.numpy(), atol=1e-12)
    np.testing.assert_allclose(grouped.numpy(), full.numpy(), atol=1e-12)


def test_lsh_hash_in_row_blocks_matches_brute_force(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory bound of the hashing: 4-row projection blocks give the definition's buckets."""
    z = np.random.default_rng(5).normal(size=(53, 5))
    monkeypatch.setattr(dens_mod, "_MAX_BLOCK", 40)  # 40 // 10 buckets = 4 rows per projection block
    got = lsh_density(z, 10, 2, seed=3, device="cpu")
    np.testing.assert_allclose(got.numpy(), brute_lsh(z, 10, 2, 3), rtol=0, atol=1e-12)


def _blobs(n_per: int = 400, d: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    spreads = [0.1, 0.2, 0.4, 0.8, 1.2, 1.6, 2.0, 3.0]
    centers = rng.normal(size=(len(spreads), d)) * 3
    return np.concatenate([c + rng.normal(size=(n_per, d)) * s for c, s in zip(centers, spreads)]).astype(
        np.float32
    )


def test_lsh_rank_correlates_with_knn() -> None:
    x = _blobs()
    ref = knn_density(x, k=20, device="cpu").numpy()
    for seed in range(3):
        est = lsh_density(x, 100, seed=seed, device="cpu").numpy()
        assert spearmanr(est, ref).statistic >= 0.6
    est = lsh_density(x, 100, n_rounds=3, seed=0, device="cpu").numpy()
    assert spearmanr(est, ref).statistic >= 0.6


def brute_knn(z: np.ndarray, k: int, metric: str) -> np.ndarray:
    if metric == "cosine":
        zn = z / np.linalg.norm(z, axis=1, keepdims=True)
        d = 1.0 - zn @ zn.T
    else:
        d = np.linalg.norm(z[:, None, :] - z[None, :, :], axis=2)
    np.fill_diagonal(d, np.inf)
    k = min(k, len(z) - 1)
    return -np.sort(d, axis=1)[:, :k].mean(axis=1)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("chunk_size", [1, 7, 4096])
def test_knn_matches_brute_force(metric: str, chunk_size: int) -> None:
    z = np.random.default_rng(4).normal(size=(60, 5))
    for k in (1, 5, 59, 100):  # 100 is clipped to N - 1
        got = knn_density(z, k, metric=metric, chunk_size=chunk_size, device="cpu")
        assert got.dtype == torch.float64
        np.testing.assert_allclose(got.numpy(), brute_knn(z, k, metric), atol=1e-10)


def test_knn_hand_example_and_sign() -> None:
    z = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])
    assert knn_density(z, k=1, metric="euclidean", device="cpu").tolist() == [-1.0, -1.0, -4.0]
    assert knn_density(z, k=5, metric="euclidean", device="cpu").tolist() == [-3.0, -2.5, -4.5]
    assert knn_density(torch.ones(1, 3), device="cpu").tolist() == [0.0]


@pytest.mark.parametrize("fn", [lsh_density, knn_density])
def test_errors(fn) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError):
        fn(np.array([[1.0, np.nan]]), device="cpu")
    with pytest.raises(InvalidInputError):
        fn(np.array([1.0, 2.0]), device="cpu")
    with pytest.raises(InvalidInputError):
        fn(np.zeros((0, 3)), device="cpu")
    with pytest.raises(InvalidParameterError):
        fn(np.ones((4, 2)), device="tpu:0")


def test_parameter_errors() -> None:
    z = np.ones((10, 2))
    for bad in (0, 3, -2, 2.0, True):
        with pytest.raises(InvalidParameterError):
            lsh_density(z, n_buckets=bad, device="cpu")
    with pytest.raises(InvalidParameterError):
        lsh_density(z, n_rounds=0, device="cpu")
    with pytest.raises(InvalidParameterError):
        lsh_density(z, seed=1.5, device="cpu")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError):
        knn_density(z, k=0, device="cpu")
    with pytest.raises(InvalidParameterError):
        knn_density(z, metric="manhattan", device="cpu")
    with pytest.raises(InvalidParameterError):
        knn_density(z, chunk_size=0, device="cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    z = _blobs(100)
    a = lsh_density(z, 10, seed=0, device="cpu")
    b = lsh_density(z, 10, seed=0, device="cuda").cpu()
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)
    a = knn_density(z, 10, device="cpu")
    b = knn_density(z, 10, device="cuda").cpu()
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)


# --------------------------------------------------------------------------- #
# large chunks: the row-panel path (each within-chunk pair evaluated once)
# --------------------------------------------------------------------------- #
def vectorised_lsh(z: np.ndarray, n_buckets: int, seed: int) -> np.ndarray:
    """The definition of METHODS.md ("LSH density"), one round, with a full float64 neighbour mask."""
    zt = torch.as_tensor(z, dtype=torch.float64)
    n, d = zt.shape
    zn = zt / zt.norm(dim=1, keepdim=True)
    gen = torch.Generator().manual_seed(seed)
    r = torch.randn(d, n_buckets // 2, generator=gen, dtype=torch.float64)
    proj = zn @ r
    bucket = torch.argmax(torch.cat([proj, -proj], dim=1), dim=1).numpy()
    order = np.lexsort((np.arange(n), bucket))
    m = math.ceil(n / n_buckets)
    chunk_of = np.empty(n, dtype=np.int64)
    chunk_of[order] = np.arange(n) // m
    n_chunks = int(chunk_of.max()) + 1
    prev = (chunk_of - 1) % n_chunks
    neighbour = (chunk_of[:, None] == chunk_of[None, :]) | ((prev[:, None] == chunk_of[None, :]) & (n_chunks > 1))
    np.fill_diagonal(neighbour, False)
    cos = (zn @ zn.T).numpy()
    return (np.where(neighbour, cos / (1.0 + np.exp(-cos)), 0.0)).sum(axis=1)


@pytest.mark.parametrize(("n", "n_buckets", "panel_rows"), [(1203, 2, 256), (1203, 2, 7), (900, 2, 1000), (1500, 4, 64), (600, 2, None)])
def test_lsh_panel_path_matches_definition(monkeypatch: pytest.MonkeyPatch, n: int, n_buckets: int, panel_rows: int | None) -> None:
    """Chunks of m > 256 rows (m = 602, 450, 375, 300) go through the panels; short last chunk, wrap-around look-back."""
    z = np.random.default_rng(n).normal(size=(n, 5))
    if panel_rows is not None:
        monkeypatch.setattr(dens_mod, "_PANEL_ROWS", panel_rows)
    got = lsh_density(z, n_buckets, seed=4, device="cpu")
    np.testing.assert_allclose(got.numpy(), vectorised_lsh(z, n_buckets, 4), rtol=1e-12, atol=1e-10)


def _reference_chunk_sums(zs: torch.Tensor, m: int) -> torch.Tensor:
    """The previous implementation's kernel: the full ``chunk x (chunk + previous chunk)`` block per chunk."""
    n_chunks = zs.shape[0] // m
    q = zs.view(n_chunks, m, -1)
    out = torch.zeros(n_chunks, m, dtype=zs.dtype)
    for c in range(n_chunks):
        keys = torch.cat([q[c], q[(c - 1) % n_chunks]]) if n_chunks > 1 else q[c]
        f = torch.nn.functional.silu(q[c] @ keys.T)
        f[torch.arange(m), torch.arange(m)] = 0
        out[c] = f.sum(dim=1)
    return out.reshape(-1)


def test_lsh_panel_path_float32_same_as_previous_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """float32, DACS-like 16-d unit vectors, 2,000-row chunks: the densities of the previous kernel to rounding,
    hence the same Jenks groups."""
    from activelearn.strategies.dacs import density_groups

    rng = np.random.default_rng(0)
    z = (rng.normal(size=(8, 16))[rng.integers(8, size=6000)] + 0.3 * rng.normal(size=(6000, 16))).astype(np.float32)
    got = lsh_density(z, 6, seed=0, device="cpu")  # m = 1000 > 256: panel path
    monkeypatch.setattr(dens_mod, "_chunk_sums", _reference_chunk_sums)
    ref = lsh_density(z, 6, seed=0, device="cpu")
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=2e-5, atol=2e-3)
    assert not np.array_equal(got.numpy(), -ref.numpy())
    np.testing.assert_array_equal(density_groups(got.double().numpy())[0], density_groups(ref.double().numpy())[0])
