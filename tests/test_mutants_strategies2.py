"""Selection functions of ``strategies/`` against hand-computed values, part 2 (TypiClust; see test_mutants_strategies.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import activelearn as al
from activelearn.strategies.typiclust import cluster_embeddings, cluster_order, typiclust_select

# 7 points: with k = 3 neighbours the most typical is point 6, with squared distances point 2, with k = 1 point 4
# (the first of the closest pair, 4 and 6); no ties otherwise (gaps >= 0.03 in typicality).
PTS = np.array([[2.8, 2.6], [0.3, 2.8], [1.3, 1.8], [3.9, 0.3], [0.7, 0.4], [3.4, 2.8], [1.0, 0.5]])


def _typiclust_rows() -> tuple[torch.Tensor, np.ndarray]:
    """Row 0 labeled in cluster 0; cluster 0 unlabeled rows 1-7 = PTS + (100, 0),
    cluster 1 rows 8-14 = PTS - (100, 0), cluster 2 the lone row 15."""
    x = np.concatenate([[[100.0, 50.0]], PTS + [100, 0], PTS - [100, 0], [[50.0, 50.0]]])
    clusters = np.array([0] * 8 + [1] * 7 + [2])
    return torch.tensor(x), clusters


def test_cluster_order_by_coverage_then_size_and_singletons_kept_in_the_fallback() -> None:
    _, clusters = _typiclust_rows()
    # cluster 1: no label, 7 members; cluster 2: no label, 1 member; cluster 0: one label
    assert cluster_order(clusters, 1, 5) == ([1, 0], [1, 2, 0])
    assert cluster_order(clusters, 1, 0) == ([1, 2, 0], [1, 2, 0])
    assert cluster_order(np.array([2, 2, 0]), 0, 0) == ([2, 0], [2, 0])  # an empty cluster id (1) is skipped


@pytest.mark.parametrize(
    ("kw", "want"),
    [
        ({}, [14, 15, 7]),  # k = 3: point 6 of each copy; the lone row 15 picked outright
        ({"squared": True}, [10, 15, 3]),  # point 2
        ({"n_neighbors": 1}, [12, 15, 5]),  # point 4
    ],
)
def test_typiclust_select_by_hand(kw: dict, want: list[int]) -> None:
    feats, clusters = _typiclust_rows()
    np.testing.assert_array_equal(typiclust_select(feats, clusters, 1, 3, min_cluster_size=0, **kw), want)


def test_typiclust_select_cycles_the_large_clusters_then_every_cluster() -> None:
    feats, clusters = _typiclust_rows()
    picks = typiclust_select(feats, clusters, 1, 15)
    assert picks[:2].tolist() == [14, 7] and picks[-1] == 15  # the lone cluster only once the large ones are empty
    assert sorted(picks.tolist()) == list(range(1, 16))
    assert set(picks[0:14:2]) == set(range(8, 15)) and set(picks[1:14:2]) == set(range(1, 8))


def test_cluster_embeddings_above_the_minibatch_limit_is_the_papers_minibatch_kmeans() -> None:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    x = np.random.default_rng(0).normal(size=(300, 4))
    want = MiniBatchKMeans(n_clusters=12, batch_size=5000, n_init=3, random_state=5).fit_predict(x)
    np.testing.assert_array_equal(cluster_embeddings(x, 12, seed=5, minibatch_above=11, n_init=1), want)
    want = KMeans(n_clusters=12, n_init=2, random_state=5).fit_predict(x)
    np.testing.assert_array_equal(cluster_embeddings(x, 12, seed=5, minibatch_above=12, n_init=2), want)


def test_typiclust_strategy_is_its_documented_composition() -> None:
    """select = k-means into min(|L| + b, max_clusters) clusters seeded from rng(pools), then typiclust_select."""
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(c, 0.3, size=(12, 2)) for c in ((0, 0), (5, 0), (0, 5), (5, 5))])
    lin = nn.Linear(2, 2)
    model = al.ALModel(nn.Sequential(lin), num_classes=2, device="cpu", stages=())
    pools = al.Pools(torch.tensor(x, dtype=torch.float32), num_classes=2)
    pools.record(al.SimulatedOracle(np.zeros(48, dtype=np.int64), num_classes=2).answer(al.Query(np.array([0, 13]))), cycle=0)
    pools.cycle = 1
    idx = np.concatenate([pools.labeled, pools.unlabeled])
    feats = model.outputs(pools, idx, "embeddings")["embeddings"]
    seen = set()
    for params in ({"max_clusters": 3}, {"n_neighbors": 2}, {"n_init": 1, "squared": True}):
        s = al.strategies.get("typiclust", seed=4, **params)
        seed = int(np.random.default_rng([4, 1, int(pools.n_interactions)]).integers(2**31 - 1))
        n_clusters = min(2 + 4, params.get("max_clusters", 500))
        clusters = cluster_embeddings(feats.numpy(), n_clusters, seed=seed, minibatch_above=50, n_init=params.get("n_init", 10))
        rows = typiclust_select(feats, clusters, 2, 4, n_neighbors=params.get("n_neighbors", 20), squared=params.get("squared", False))
        picks = s.select(model, pools, 4)
        np.testing.assert_array_equal(picks, idx[rows])
        seen.add(tuple(picks))
    assert len(seen) > 1  # the parameters reach the selection


# ------------------------------------------------------------------ contrastive distance on hand-set clusters
ASSIGN = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2])
DIST = np.array([0.9, 0.5, 0.2, 0.7, 0.4, 0.1, 0.3, 0.9, 0.5, 0.6, 0.3, 0.6, 0.8, 0.2])


class _HandClusters(al.strategies.get_class("contrastive_distance")):  # type: ignore[misc]
    """The clusters and distances to the centroids given by hand instead of learned."""

    def _ensure(self, model, pools):
        self._state = {"key": None, "assign": ASSIGN, "dist": DIST, "k": 2, "loss": 0.0}
        return self._state


def _hand_pools() -> al.Pools:
    """Answered: 0 and 5 in task, 1 (cluster 0), 10 and 11 (cluster 2) not in task; unlabeled 2-4, 6-9, 12-13."""
    pools = al.Pools(torch.zeros(14, 2), num_classes=2)
    in_task = np.ones(14, dtype=bool)
    in_task[[1, 10, 11]] = False
    oracle = al.SimulatedOracle(np.zeros(14, dtype=np.int64), num_classes=2, in_task=in_task)
    pools.record(oracle.answer(al.Query(np.array([0, 1, 5, 10, 11]))), cycle=0)
    pools.cycle = 1
    return pools


@pytest.mark.parametrize(
    ("params", "budget", "want"),
    [
        # cluster 2 (rejected share 1/2) dropped; quotas of (3, 4) for 4: (2, 2).  Cluster 0: radius 0.5 (its rejected
        # row 1): inside by decreasing distance 4 (0.4), 2 (0.2), then 3.  Cluster 1, nothing rejected: median radius 0.5:
        # 8 (0.5), 6 (0.3), then outside by increasing distance 9 (0.6), 7 (0.9)
        ({}, 4, [4, 2, 8, 6]),
        ({"no_reject_radius": "max"}, 4, [4, 2, 7, 9]),  # radius 0.9: all inside, by decreasing distance
        # 8 of 9: the kept clusters give all 7, the dropped one the last (radius 0.3 of rows 10, 11: 13 inside)
        ({}, 8, [4, 2, 3, 8, 6, 9, 7, 13]),
        # no cluster dropped: quotas of (3, 4, 2) for 4 are (1, 1, 0) plus the remainders .78, .89: (1, 2, 1)
        ({"drop_ood_cluster": False}, 4, [4, 8, 6, 13]),
    ],
)
def test_contrastive_distance_picks_on_hand_clusters(params: dict, budget: int, want: list[int]) -> None:
    model = al.ALModel(nn.Linear(1, 1), num_classes=2, device="cpu")
    picks = _HandClusters(seed=0, **params).select(model, _hand_pools(), budget)
    assert picks.tolist() == want
