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

    x = np.random.default_rng(0).normal(size=(1100, 4))  # more rows than scikit-learn's default batch (1024)
    want = MiniBatchKMeans(n_clusters=12, batch_size=5000, n_init=3, random_state=5).fit_predict(x)
    np.testing.assert_array_equal(cluster_embeddings(x, 12, seed=5, minibatch_above=11, n_init=1), want)
    want = KMeans(n_clusters=12, n_init=2, random_state=5).fit_predict(x[:300])
    np.testing.assert_array_equal(cluster_embeddings(x[:300], 12, seed=5, minibatch_above=12, n_init=2), want)


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


# ------------------------------------------------------------------ cluster annotation: k-means seeds and iterations
def _random_rows(n: int = 60, d: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.tensor(np.random.default_rng(seed).normal(size=(n, d)), dtype=torch.float32)


def _groups_of(labels: torch.Tensor, indices: np.ndarray) -> list[list[int]]:
    lab = labels.cpu().numpy()
    return sorted(sorted(indices[lab == c].tolist()) for c in np.unique(lab))


@pytest.mark.parametrize(("seed", "n_iter"), [(0, 1), (3, 2), (3, 30)])
def test_propose_clusters_is_kmeans_with_its_seed_and_iterations(seed: int, n_iter: int) -> None:
    from activelearn.ops.clustering import kmeans
    from activelearn.strategies.cluster import propose_clusters

    x = _random_rows()
    idx = np.arange(100, 160)
    groups = propose_clusters(x.clone(), idx, 4, cluster_size=15, seed=seed, n_iter=n_iter, tol=0.0)
    labels, _ = kmeans(x.clone(), 4, n_iter=n_iter, seed=seed, tol=0.0)
    assert sorted(sorted(g.tolist()) for g in groups) == _groups_of(labels, idx)


def test_kmeans_seed_and_iterations_change_the_groups() -> None:
    """The data of the test above is not trivially clustered: seed and iteration count both matter."""
    from activelearn.ops.clustering import kmeans

    x, idx = _random_rows(), np.arange(60)
    runs = {(s, it): _groups_of(kmeans(x.clone(), 4, n_iter=it, seed=s, tol=0.0)[0], idx) for s in (0, 3) for it in (1, 2, 30, 50)}  # 30 and 50 both converged
    assert runs[(0, 1)] != runs[(3, 1)] and runs[(3, 2)] != runs[(3, 50)]
    assert runs[(3, 30)] != runs[(0, 30)]


def test_cluster_annotation_all_clusters_use_the_salted_seed() -> None:
    """rank="all": k-means of the unlabeled features into ``budget`` clusters, seeded from ``rng(pools, 7)``."""
    from activelearn.strategies.cluster import propose_clusters

    x = _random_rows(seed=1)
    model = al.ALModel(nn.Sequential(nn.Linear(3, 3)), num_classes=3, device="cpu", stages=())
    pools = al.Pools(x, num_classes=3)
    pools.record(al.SimulatedOracle(np.zeros(60, dtype=np.int64), num_classes=3).answer(al.Query(np.array([4, 7]))), cycle=0)
    pools.cycle = 1
    rest = pools.unlabeled
    feats = model.outputs(pools, rest, "embeddings")["embeddings"].float()
    seen = set()
    for seed in (0, 1, 2):
        q = al.strategies.get("cluster_annotation", seed=seed, n_iter=5).select(model, pools, 4)
        s = int(np.random.default_rng([seed, 1, int(pools.n_interactions), 7]).integers(2**31 - 1))
        want = propose_clusters(feats.clone(), rest, 4, cluster_size=rest.size, seed=s, n_iter=5)
        got = sorted(sorted(g.tolist()) for g in q.groups)
        assert q.indices.size == 0 and got == sorted(sorted(g.tolist()) for g in want)
        seen.add(str(got))
    assert len(seen) > 1


# ------------------------------------------------------------------ DACS strategy = dacs_select on the auxiliary vectors
def test_dacs_strategy_passes_its_parameters_to_dacs_select() -> None:
    from activelearn.backbones import MLP
    from activelearn.strategies.dacs import dacs_select

    from conftest import blobs

    params = {"n_groups": 3, "cross_group": True, "n_rounds": 2}
    strategy = al.strategies.get("dacs", seed=2, **params)
    torch.manual_seed(0)
    model = al.ALModel(MLP(16, 3, hidden=(16,)), num_classes=3, device="cpu")  # untrained: any vectors will do
    for ext in strategy.model_extensions():
        model.attach(ext)
    x, y = blobs(120)
    pools = al.Pools(x, num_classes=3)
    pools.record(al.SimulatedOracle(y, num_classes=3).answer(al.Query(np.arange(0, 120, 12))), cycle=0)
    pools.cycle = 1
    unl = pools.unlabeled
    z = model.outputs(pools, np.concatenate([unl, pools.labeled]), "aux_embedding")["aux_embedding"]
    seed = int(np.random.default_rng([2, 1, int(pools.n_interactions)]).integers(2**31 - 1))
    want = unl[dacs_select(z[: unl.size], z[unl.size :], 12, seed=seed, **params)]
    np.testing.assert_array_equal(strategy.select(model, pools, 12), want)
    for other in ({**params, "n_groups": 4}, {**params, "cross_group": False}):
        assert not np.array_equal(unl[dacs_select(z[: unl.size], z[unl.size :], 12, seed=seed, **other)], want)


# ------------------------------------------------------------------ Entropy-D: distance blocks, autoencoder seed and loading
def test_entropy_d_by_definition_with_many_labels_and_its_autoencoder_seed_and_state() -> None:
    """40 labeled rows: distance blocks of 2**21 // 40 rows (an int); seed None trains the autoencoder with seed 0;
    a loaded autoencoder gives the latents it was saved with (no retraining under the new seed)."""
    x = torch.tensor(np.random.default_rng(2).normal(size=(60, 3)), dtype=torch.float32)
    lin = nn.Linear(3, 3)
    model = al.ALModel(nn.Sequential(lin), num_classes=3, device="cpu", stages=())
    pools = al.Pools(x, num_classes=3)
    pools.record(al.SimulatedOracle(np.zeros(60, dtype=np.int64), num_classes=3).answer(al.Query(np.arange(40))), cycle=0)
    pools.cycle = 1
    unl, lab = pools.unlabeled, pools.labeled
    kw = {"gamma": 0.5, "ae_epochs": 1, "latent_dim": 2}
    a = al.strategies.get("entropy_d", seed=0, **kw)
    got = a.score(model, pools, unl)
    z = a.latents(model, pools).double().numpy()
    d = np.sqrt(((z[unl][:, None, :] - z[lab][None, :, :]) ** 2).sum(-1)).min(1)
    p = model.outputs(pools, unl, "probs")["probs"].double().numpy()
    np.testing.assert_allclose(got, -(p * np.log(p)).sum(1) + 0.5 * d / d.max(), rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(al.strategies.get("entropy_d", **kw).latents(model, pools), a.latents(model, pools))
    other = al.strategies.get("entropy_d", seed=5, **kw)
    assert not torch.allclose(other.latents(model, pools), a.latents(model, pools))
    loaded = al.strategies.get("entropy_d", seed=5, **kw)
    loaded.load_state_dict(a.state_dict())
    torch.testing.assert_close(loaded.latents(model, pools), a.latents(model, pools))
