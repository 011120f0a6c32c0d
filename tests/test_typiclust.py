"""TypiClust: typicality and cluster order on a hand-computed example."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import activelearn as al
from activelearn.exceptions import InvalidParameterError
from activelearn.ops.typicality import knn_typicality
from activelearn.strategies import typiclust as tc

from conftest import make_setup


@pytest.mark.parametrize("chunk", [1, 2, 64])
def test_typicality_by_hand(chunk: int) -> None:
    x = [[0.0], [1.0], [3.0]]
    # k=1: nearest distances 1, 1, 2; k=2: means (1+3)/2, (1+2)/2, (2+3)/2; squared k=2: 5, 2.5, 6.5
    np.testing.assert_allclose(knn_typicality(x, 1, chunk_size=chunk).numpy(), 1 / (np.array([1, 1, 2]) + 1e-5))
    np.testing.assert_allclose(knn_typicality(x, 2, chunk_size=chunk).numpy(), 1 / (np.array([2, 1.5, 2.5]) + 1e-5))
    np.testing.assert_allclose(knn_typicality(x, 2, squared=True, chunk_size=chunk).numpy(), 1 / (np.array([5, 2.5, 6.5]) + 1e-5))


def test_typicality_bad_k() -> None:
    with pytest.raises(InvalidParameterError, match="k=3 neighbours need at least 4 rows, got 3"):
        knn_typicality([[0.0], [1.0], [2.0]], 3)


def _example() -> tuple[torch.Tensor, np.ndarray, int]:
    """1-D features, labeled row first.  Clusters (id: members):

    A=0: 100 + [0, .1, .22, .4, 5, 10, 20]    7 members, none labeled
    B=1: labeled 300.55; 300 + [0, .5, .6, 2, 4, 6, 8, 10]   9 members, one labeled
    C=2: 200 + [0, 1, 1.5, 3, 7, 9]           6 members, none labeled
    D=3: 400 + [0, 1, 2]                      3 members (<= 5: skipped), none labeled
    """
    a = 100 + np.array([0, 0.1, 0.22, 0.4, 5, 10, 20])
    b = 300 + np.array([0, 0.5, 0.6, 2, 4, 6, 8, 10])
    c = 200 + np.array([0, 1, 1.5, 3, 7, 9])
    d = 400 + np.array([0.0, 1, 2])
    x = np.concatenate([[300.55], a, b, c, d])
    clusters = np.concatenate([[1], [0] * 7, [1] * 8, [2] * 6, [3] * 3])
    return torch.tensor(x[:, None]), clusters, 1


def test_order_uncovered_then_largest() -> None:
    _, clusters, n_lab = _example()
    large, every = tc.cluster_order(clusters, n_lab, 5)
    assert large == [0, 2, 1] and every == [0, 2, 3, 1]


def test_picks_by_hand() -> None:
    x, clusters, n_lab = _example()
    picks = tc.typiclust_select(x, clusters, n_lab, 4, n_neighbors=2)
    # A (k=2): 100.1 has neighbours at .1, .12 (mean .11), the smallest.  C (k=2): 201 has .5, 1 (mean .75).
    # B (8 unlabeled, k=2; the labeled 300.55 is no candidate and no neighbour): 300.5 has .1, .5 (mean .3).
    # Then A again without 100.1 (k=2): 100.22 has .18, .22 (mean .2).
    assert x[picks, 0].tolist() == pytest.approx([100.1, 201.0, 300.5, 100.22])


def test_small_clusters_are_used_once_large_ones_run_out() -> None:
    x, clusters, n_lab = _example()
    picks = tc.typiclust_select(x, clusters, n_lab, 7 + 8 + 6 + 2, n_neighbors=2)
    assert np.unique(picks).size == picks.size
    assert set(clusters[picks[-2:]]) == {3} and 0 not in picks


def test_kmeans_is_seeded_and_switches_to_minibatch(monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.random.default_rng(0).normal(size=(300, 4))
    a = tc.cluster_embeddings(x, 8, seed=3, minibatch_above=50, n_init=2)
    assert a.tolist() == tc.cluster_embeddings(x, 8, seed=3, minibatch_above=50, n_init=2).tolist()
    from sklearn import cluster

    used = []
    monkeypatch.setattr(cluster, "MiniBatchKMeans", lambda **kw: used.append(kw) or cluster.KMeans(n_clusters=kw["n_clusters"], n_init=1))
    tc.cluster_embeddings(x, 60, seed=3, minibatch_above=50, n_init=2)
    assert used and used[0]["batch_size"] == 5000 and used[0]["random_state"] == 3


def test_strategy_clusters_labeled_plus_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    s = make_setup("typiclust", seed=1)
    seen = []
    real = tc.cluster_embeddings
    monkeypatch.setattr(tc, "cluster_embeddings", lambda x, k, **kw: seen.append((x.shape[0], k)) or real(x, k, **kw))
    picks = s.strategy.select(s.model, s.pools, 6)
    assert seen == [(240, 30 + 6)]
    assert s.pools.unlabeled_mask[picks].all() and np.unique(picks).size == 6
    capped = al.strategies.get("typiclust", seed=1, max_clusters=10)
    seen.clear()
    capped.select(s.model, s.pools, 6)
    assert seen == [(240, 10)]


def test_bad_min_cluster_size() -> None:
    with pytest.raises(InvalidParameterError, match="min_cluster_size must be a non-negative int, got -1"):
        al.strategies.get("typiclust", min_cluster_size=-1)


@pytest.mark.parametrize("name", ["typiclust", "cdal", "badge"])
def test_cold_start_with_nothing_labeled(name: str) -> None:
    from activelearn.backbones import MLP
    from conftest import blobs

    x, _ = blobs(120, seed=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = al.ALModel(MLP(16, 3, hidden=(16,)), num_classes=3, device="cpu", seed=0)
    pools = al.Pools(x, num_classes=3)
    s = al.strategies.get(name, seed=0)
    a, b = s.select(model, pools, 10), s.select(model, pools, 10)
    assert a.tolist() == b.tolist() and np.unique(a).size == 10
