"""Issue 17: cluster annotation's k-means holds no needless copy of the features (benchmarks/cluster_memory.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import activelearn as al
from activelearn.strategies.cluster import propose_clusters

from conftest import make_setup


def _record_fits(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Wrap scikit-learn's ``KMeans.fit`` to record what it is given."""
    from sklearn.cluster import KMeans

    seen: list[dict] = []
    fit = KMeans.fit

    def spy(self, X, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append({"copy_x": self.copy_x, "dtype": X.dtype, "c_contiguous": X.flags.c_contiguous, "rows": X.shape[0]})
        return fit(self, X, *args, **kwargs)

    monkeypatch.setattr(KMeans, "fit", spy)
    return seen


@pytest.mark.parametrize("feature", ["inputs", "embeddings"])
def test_rank_all_gives_kmeans_its_own_float32_rows_without_a_copy(monkeypatch: pytest.MonkeyPatch, feature: str) -> None:
    s = make_setup("cluster_annotation", params={"feature": feature})
    rest = s.pools.unlabeled
    inputs_before = s.pools.inputs(np.arange(s.pools.n)).clone()
    cached_before = s.model.outputs(s.pools, rest, "embeddings")["embeddings"].clone()
    seen = _record_fits(monkeypatch)
    q = s.strategy.select(s.model, s.pools, 5)
    # one fit on the unlabeled rows, C-contiguous float32, centred in place (copy_x=False): no second copy
    assert seen == [{"copy_x": False, "dtype": np.float32, "c_contiguous": True, "rows": rest.size}]
    # ... of the strategy's own gathered rows: the pool's inputs and the model's cached outputs are untouched
    assert torch.equal(s.pools.inputs(np.arange(s.pools.n)), inputs_before)
    assert torch.equal(s.model.outputs(s.pools, rest, "embeddings")["embeddings"], cached_before)
    # same picks as k-means on a copy (the seed the strategy derives: seed, cycle, interactions, salt 7)
    seed = int(np.random.default_rng([0, s.pools.cycle, s.pools.n_interactions, 7]).integers(2**31 - 1))
    feats = s.pools.inputs(rest).float() if feature == "inputs" else cached_before.clone()
    ref = propose_clusters(feats, rest, 5, cluster_size=rest.size, seed=seed, copy=True)
    assert [g.tolist() for g in q.groups] == [np.sort(g).tolist() for g in ref]


def test_kmeans_checks_finiteness_one_chunk_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole-matrix ``torch.isfinite`` allocated ~1.75x the features; now ``chunk_size`` rows per block."""
    rows: list[int] = []
    isfinite = torch.isfinite

    def spy(t: torch.Tensor) -> torch.Tensor:
        rows.append(t.shape[0])
        return isfinite(t)

    x = torch.from_numpy(np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32))
    monkeypatch.setattr(torch, "isfinite", spy)
    al.ops.kmeans(x, 3, chunk_size=16, seed=0, backend="sklearn")
    assert max(rows) <= 16 and sum(rows) == 100  # every row checked, one block at a time
    bad = x.clone()
    bad[-1, 2] = float("nan")  # in the last, partial block
    with pytest.raises(al.exceptions.InvalidInputError, match="NaN or Inf"):
        al.ops.kmeans(bad, 3, chunk_size=16)
    with pytest.raises(al.exceptions.InvalidParameterError, match="chunk_size and n_iter must be positive"):
        al.ops.kmeans(bad, 3, chunk_size=0)


@pytest.mark.parametrize("rank", ["all", "purity"])
@pytest.mark.parametrize("tol", [0.0, 1e-6, 0.5])
def test_the_strategy_passes_its_tolerance_to_kmeans(monkeypatch: pytest.MonkeyPatch, rank: str, tol: float) -> None:
    """``tol`` reaches scikit-learn's ``KMeans`` (``tol=0`` skips its features-sized ``np.var`` temporary)."""
    from sklearn.cluster import KMeans

    seen: list[float] = []
    fit = KMeans.fit

    def spy(self, X, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(self.tol)
        return fit(self, X, *args, **kwargs)

    monkeypatch.setattr(KMeans, "fit", spy)
    s = make_setup("cluster_annotation", params={"rank": rank, "tol": tol})
    s.strategy.select(s.model, s.pools, 5)
    assert seen == [tol]


def test_default_tolerance_is_the_one_the_committed_results_used() -> None:
    assert al.strategies.get("cluster_annotation").tol == 1e-6


@pytest.mark.parametrize("bad", [-1e-9, float("inf"), float("nan"), "0", True])
def test_bad_tolerance_is_refused(bad: object) -> None:
    with pytest.raises(al.exceptions.InvalidParameterError, match="tol must be a finite number >= 0, got"):
        al.strategies.get("cluster_annotation", tol=bad)
