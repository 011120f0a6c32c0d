"""Behaviour checks of activelearn.ops.density written against surviving mutants (issue 13).

Every value is compared with a float64 numpy reference written from the definition in the
module docstring and METHODS.md (DACS section), or with hand-computed numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from activelearn.exceptions import InvalidInputError, InvalidParameterError
from activelearn.ops import density as dens_mod
from activelearn.ops.density import knn_density, lsh_density


def _unit(z: np.ndarray) -> np.ndarray:
    """L2-normalised rows; all-zero rows stay zero (the documented convention)."""
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    return z / np.where(norms > 0, norms, 1.0)


def reference_lsh(z: np.ndarray, n_buckets: int, n_rounds: int, seed: int) -> np.ndarray:
    """LSH density from the definition, float64, with a full neighbour mask (small N only)."""
    zn = _unit(np.asarray(z, dtype=np.float64))
    n, d = zn.shape
    gen = torch.Generator().manual_seed(seed)
    sil = zn @ zn.T
    sil = sil / (1.0 + np.exp(-sil))
    m = math.ceil(n / n_buckets)
    out = np.zeros(n)
    for _ in range(n_rounds):
        r = torch.randn(d, n_buckets // 2, generator=gen, dtype=torch.float64).numpy()
        proj = zn @ r
        bucket = np.argmax(np.concatenate([proj, -proj], axis=1), axis=1)  # first index on ties
        order = np.lexsort((np.arange(n), bucket))  # by (bucket, index)
        chunk = np.empty(n, dtype=np.int64)
        chunk[order] = np.arange(n) // m
        n_chunks = int(chunk.max()) + 1
        prev = (chunk - 1) % n_chunks
        mask = (chunk[:, None] == chunk[None, :]) | ((prev[:, None] == chunk[None, :]) & (n_chunks > 1))
        np.fill_diagonal(mask, False)
        out += np.where(mask, sil, 0.0).sum(axis=1)
    return out / n_rounds


def reference_knn(z: np.ndarray, k: int, metric: str) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if metric == "cosine":
        zn = _unit(z)
        dist = 1.0 - zn @ zn.T
    else:
        dist = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(dist, np.inf)
    k = min(k, len(z) - 1)
    return -np.sort(dist, axis=1)[:, :k].mean(axis=1)


def _data(n: int, d: int, seed: int, zeros: int = 0, dups: int = 0) -> np.ndarray:
    """Gaussian rows, with some all-zero rows and exact duplicates mixed in."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, d))
    if zeros:
        z[rng.choice(n, zeros, replace=False)] = 0.0
    for _ in range(dups):
        i, j = rng.choice(n, 2, replace=False)
        z[j] = z[i]
    return z


# --------------------------------------------------------------------------- #
# lsh_density against the definition
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("n", "n_buckets", "n_rounds", "max_block"),
    [
        (37, 6, 2, None),  # m = 7, 6 chunks, short last chunk (2 rows)
        (101, 100, 1, None),  # m = 2, 51 chunks, last chunk of 1 row
        (23, 100, 3, None),  # N < n_buckets: m = 1, 23 chunks
        (3, 2, 1, None),  # m = 2, 2 chunks
        (95, 8, 2, 7 * 12 * 24),  # m = 12, 8 chunks, bmm groups of 7 chunks (uneven last group)
        (61, 10, 1, 10 * 3),  # hashing in row blocks of 3 rows (61 = 20 * 3 + 1)
        (530, 2, 1, None),  # m = 265 > 256: panel path, 2 chunks (short last one)
        (777, 2, 2, 2 * 389 * 100),  # panel path, panels of 100 rows (389 = 3 * 100 + 89)
    ],
)
def test_lsh_is_the_float64_definition(
    monkeypatch: pytest.MonkeyPatch, n: int, n_buckets: int, n_rounds: int, max_block: int | None
) -> None:
    """Zero rows (bucket 0: ties in argmax go to the first index), duplicates, uneven chunks and blocks."""
    z = _data(n, 4, seed=n, zeros=3, dups=3)
    if max_block is not None:
        monkeypatch.setattr(dens_mod, "_MAX_BLOCK", max_block)
    got = lsh_density(z, n_buckets, n_rounds, seed=11, device="cpu")
    assert got.dtype == torch.float64 and got.shape == (n,) and got.device.type == "cpu"
    np.testing.assert_allclose(got.numpy(), reference_lsh(z, n_buckets, n_rounds, 11), rtol=1e-12, atol=1e-12)


def test_lsh_zero_rows_hash_to_bucket_zero_hand_example() -> None:
    """A zero row ties on every projection, so it hashes to bucket 0 (first index of the argmax).

    N = 4, 2 buckets, m = 2.  Rows 0-2 are copies of a unit vector whose projection on R's single
    column is negative (bucket 1); row 3 is zero (bucket 0).  Sorted order 3, 0, 1, 2, chunks
    {3, 0}, {1, 2}: row 3 meets only itself-free zeros (density 0), rows 0-2 meet two copies each."""
    gen = torch.Generator().manual_seed(0)
    r = torch.randn(2, 1, generator=gen, dtype=torch.float64)[:, 0].numpy()
    u = -r / np.linalg.norm(r)  # u @ r < 0
    z = np.array([u, u, u, [0.0, 0.0]])
    got = lsh_density(z, 2, seed=0, device="cpu").numpy()
    s1 = 1.0 / (1.0 + math.exp(-1.0))  # sigmoid(1) * 1
    np.testing.assert_allclose(got, [2 * s1, 2 * s1, 2 * s1, 0.0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got, reference_lsh(z, 2, 1, 0), atol=1e-15)


def test_lsh_all_zero_input_is_zero() -> None:
    got = lsh_density(np.zeros((9, 3)), 4, seed=0, device="cpu")
    assert torch.equal(got, torch.zeros(9, dtype=torch.float64))


def test_lsh_single_row_and_dtypes() -> None:
    one = lsh_density(torch.ones(1, 3, dtype=torch.float64), seed=0, device="cpu")
    assert one.dtype == torch.float64 and one.tolist() == [0.0]
    assert lsh_density(np.ones((1, 3), dtype=np.float32), seed=0, device="cpu").dtype == torch.float32
    ints = np.random.default_rng(0).integers(-3, 4, size=(40, 5))
    got = lsh_density(ints, 6, seed=2, device="cpu")
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), reference_lsh(ints, 6, 1, 2), atol=1e-5)


def test_lsh_seed_none_draws_from_torch_global_generator() -> None:
    """seed=None: a seed drawn from torch's global generator, so torch.manual_seed reproduces it."""
    z = _data(60, 4, seed=1)
    torch.manual_seed(123)
    a = lsh_density(z, 10, seed=None, device="cpu")
    torch.manual_seed(123)
    drawn = int(torch.randint(0, 2**62, (1,)).item())
    np.testing.assert_allclose(a.numpy(), reference_lsh(z, 10, 1, drawn), atol=1e-12)
    torch.manual_seed(123)
    assert torch.equal(a, lsh_density(z, 10, seed=None, device="cpu"))


def test_lsh_numpy_integer_seed_is_the_int_seed() -> None:
    z = _data(50, 4, seed=2)
    assert torch.equal(lsh_density(z, 10, seed=np.int64(9), device="cpu"), lsh_density(z, 10, seed=9, device="cpu"))


def test_lsh_parameter_errors_say_what_was_received() -> None:
    z = np.ones((10, 2))
    with pytest.raises(InvalidParameterError, match=r"^n_buckets must be even \(R has n_buckets / 2 columns\), got 7$"):
        lsh_density(z, n_buckets=7, device="cpu")
    with pytest.raises(InvalidParameterError, match=r"^seed must be an int or None, got True$"):
        lsh_density(z, seed=True, device="cpu")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match=r"^seed must be an int or None, got '3'$"):
        lsh_density(z, seed="3", device="cpu")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match=r"^n_rounds must be a positive int, got 0$"):
        lsh_density(z, n_rounds=0, device="cpu")
    with pytest.raises(InvalidInputError, match=r"^z must be 2-D"):
        lsh_density(np.ones(3), device="cpu")


# --------------------------------------------------------------------------- #
# knn_density against the definition
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize(("n", "chunk_size"), [(29, 4), (29, 28), (29, 29), (30, 1), (12, 5)])
def test_knn_is_the_float64_definition(metric: str, n: int, chunk_size: int) -> None:
    """Zero rows (cosine distance 1), duplicates (euclidean distance 0), chunks that split unevenly."""
    z = _data(n, 3, seed=n + chunk_size, zeros=2, dups=3)
    for k in (1, 2, 3, n - 2, n - 1, n + 5):
        got = knn_density(z, k, metric=metric, chunk_size=chunk_size, device="cpu")
        assert got.dtype == torch.float64 and got.shape == (n,)
        np.testing.assert_allclose(got.numpy(), reference_knn(z, k, metric), rtol=1e-12, atol=1e-7)


def test_knn_zero_rows_and_duplicates_hand_example() -> None:
    z = np.array([[0.0, 0.0], [3.0, 4.0], [3.0, 4.0], [0.0, 2.0]])
    # cosine: the zero row is at distance 1 from everything; the two (3, 4) rows at distance 0.
    cos = knn_density(z, 1, metric="cosine", device="cpu").numpy()
    np.testing.assert_allclose(cos, [-1.0, 0.0, 0.0, -(1.0 - 0.8)], atol=1e-15)
    # euclidean, k = 2: row 0 -> (2 + 5) / 2, rows 1, 2 -> (0 + sqrt(9 + 4)) / 2, row 3 -> (2 + sqrt(13)) / 2.
    euc = knn_density(z, 2, metric="euclidean", chunk_size=3, device="cpu").numpy()
    r13 = math.sqrt(13.0)
    np.testing.assert_allclose(euc, [-3.5, -r13 / 2, -r13 / 2, -(2 + r13) / 2], rtol=1e-15)


def test_knn_duplicate_rows_are_exactly_zero_apart() -> None:
    """Squared distances are clamped at 0 before the sqrt: identical rows give 0, never NaN."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(40, 7)) * 1e3 + 0.1
    z = np.concatenate([base, base])
    got = knn_density(z, 1, metric="euclidean", chunk_size=13, device="cpu")
    assert torch.isfinite(got).all()
    np.testing.assert_allclose(got.numpy(), 0.0, atol=1e-4)


def test_knn_single_row_and_dtypes() -> None:
    one = knn_density(torch.ones(1, 3, dtype=torch.float64), device="cpu")
    assert one.dtype == torch.float64 and one.tolist() == [0.0]
    assert knn_density(np.ones((1, 3), dtype=np.float32), device="cpu").dtype == torch.float32
    got = knn_density(np.array([[0, 0], [1, 0], [5, 0]]), 1, metric="euclidean", device="cpu")
    assert got.dtype == torch.float32 and got.tolist() == [-1.0, -1.0, -4.0]


def test_knn_parameter_errors_say_what_was_received() -> None:
    z = np.ones((10, 2))
    with pytest.raises(InvalidParameterError, match=r"^k must be a positive int, got 0$"):
        knn_density(z, k=0, device="cpu")
    with pytest.raises(InvalidParameterError, match=r"^metric must be one of \['cosine', 'euclidean'\], got 'l1'$"):
        knn_density(z, metric="l1", device="cpu")
    with pytest.raises(InvalidParameterError, match=r"^chunk_size must be a positive int, got -1$"):
        knn_density(z, chunk_size=-1, device="cpu")
    with pytest.raises(InvalidInputError, match=r"^z must be 2-D"):
        knn_density(np.ones(3), device="cpu")


def test_defaults_are_the_documented_ones() -> None:
    """lsh_density: 100 buckets, 1 round; knn_density: k = 20, cosine (chunk_size only blocks the rows)."""
    z = _data(230, 4, seed=7, zeros=1)
    np.testing.assert_allclose(lsh_density(z, seed=3, device="cpu").numpy(), reference_lsh(z, 100, 1, 3), atol=1e-12)
    got = knn_density(z, device="cpu").numpy()
    np.testing.assert_allclose(got, reference_knn(z, 20, "cosine"), rtol=1e-12, atol=1e-12)
    assert not np.allclose(got, reference_knn(z, 21, "cosine"), rtol=1e-9, atol=0)
    np.testing.assert_array_equal(knn_density(z, 20, metric="cosine", chunk_size=4096, device="cpu").numpy(), got)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_panel_path_matches_definition() -> None:
    """Chunks of m = 301 > 256 rows on CUDA: the panel buffers and accumulators live on the device."""
    z = _data(602, 4, seed=3, zeros=2)
    got = lsh_density(z, 2, seed=5, device="cuda")
    assert got.device.type == "cuda"
    np.testing.assert_allclose(got.cpu().numpy(), reference_lsh(z, 2, 1, 5), rtol=1e-10, atol=1e-10)
