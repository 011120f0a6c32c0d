"""Cluster annotation: the expert's 80% rule, the interaction books, the loop, the strategy, k-means."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import activelearn as al
from activelearn.exceptions import InvalidInputError, SelectionError
from activelearn.loop import validate_selection
from activelearn.ops import kmeans
from activelearn.pools import DECLINED

from conftest import blobs, make_setup


def _cluster(n: int, modal: int) -> np.ndarray:
    """Targets of a hand-built cluster: ``modal`` members of class 1, the rest class 2."""
    return np.array([1] * modal + [2] * (n - modal))


@pytest.mark.parametrize("n,modal,accepted", [(10, 8, True), (10, 7, False), (5, 4, True), (15, 12, True), (15, 11, False), (20, 16, True), (20, 15, False)])
def test_expert_accepts_exactly_80_percent_and_declines_below(n: int, modal: int, accepted: bool) -> None:
    oracle = al.SimulatedOracle(_cluster(n, modal), num_classes=3)
    answers = oracle.answer(al.Query(np.zeros(0, np.int64), groups=(np.arange(n),)))
    if accepted:
        assert [a.index for a in answers] == list(range(n))
        assert {a.label for a in answers} == {1} and {a.source for a in answers} == {"cluster"}
        assert len({a.interaction for a in answers}) == 1
        assert sum(a.cost for a in answers) == 1.0
    else:
        assert len(answers) == 1 and answers[0].index == DECLINED and answers[0].label is None
        assert answers[0].cost == 1.0 and answers[0].source == "cluster"


def test_threshold_is_a_parameter() -> None:
    oracle = al.SimulatedOracle(_cluster(10, 6), num_classes=3, cluster_threshold=0.6)
    assert oracle.answer(al.Query(np.zeros(0, np.int64), groups=(np.arange(10),)))[0].label == 1
    oracle = al.SimulatedOracle(_cluster(10, 9), num_classes=3, cluster_threshold=0.95)
    assert oracle.answer(al.Query(np.zeros(0, np.int64), groups=(np.arange(10),)))[0].index == DECLINED


def test_cluster_labels_count_once_per_cluster_in_the_books() -> None:
    targets = np.array([0] * 10 + [1] * 9 + [2] + [0, 1] * 5 + [2, 2, 2])
    pools = al.Pools(torch.zeros(targets.size, 2), num_classes=3)
    oracle = al.SimulatedOracle(targets, num_classes=3)
    query = al.Query(np.array([30, 31, 32]), groups=(np.arange(10), np.arange(10, 20), np.arange(20, 30)))
    entries = pools.record(oracle.answer(query), cycle=1)
    # 3 samples + 2 accepted clusters + 1 declined cluster = 6 interactions
    assert pools.n_interactions == 6
    assert pools.n_labeled == 3 + 10 + 10 and pools.n_declined == 1
    assert pools.total_cost == 6.0
    assert pools.unlabeled.tolist() == list(range(20, 30))
    assert pools.labels_of(np.arange(10, 20)).tolist() == [1] * 10  # one wrong (index 19 is class 2)
    assert len({e.interaction for e in entries if e.source == "cluster"}) == 3
    assert oracle.audit(np.arange(10, 20), [1] * 10) == pytest.approx(0.9)
    fresh = al.Pools(torch.zeros(targets.size, 2), num_classes=3)
    fresh.load_state_dict(pools.state_dict())
    assert fresh.n_interactions == 6 and fresh.n_declined == 1 and fresh.labeled.tolist() == pools.labeled.tolist()


def test_pools_refuse_a_declined_answer_that_carries_a_label() -> None:
    pools = al.Pools(torch.zeros(4, 2), num_classes=3)
    with pytest.raises(InvalidInputError, match="declined interaction"):
        pools.record([al.Answer(DECLINED, 1, True, 1.0, "cluster", 0)])


def test_validate_selection_checks_queries() -> None:
    pools = al.Pools(torch.zeros(20, 2), num_classes=3)
    pools.record([al.Answer(0, 1)])
    ok = al.Query(np.array([1, 2]), groups=(np.array([3, 4, 5]),))
    assert isinstance(validate_selection(ok, pools, 3), al.Query)
    with pytest.raises(SelectionError, match=r"3 interactions .* expected exactly 4"):
        validate_selection(ok, pools, 4)
    with pytest.raises(SelectionError, match="duplicate"):
        validate_selection(al.Query(np.array([1]), groups=(np.array([1, 2]),)), pools, 2)
    with pytest.raises(SelectionError, match="not in the unlabeled pool"):
        validate_selection(al.Query(np.array([1]), groups=(np.array([0, 2]),)), pools, 2)
    with pytest.raises(SelectionError, match="empty"):
        validate_selection(al.Query(np.array([1]), groups=(np.array([], np.int64),)), pools, 2)


@pytest.mark.parametrize("scenario,switch_at,expected", [
    ("cluster", None, (0, 10)),
    ("sample+cluster", None, (3, 7)),
    ("cluster+sample", None, (7, 3)),
    ("sample+cluster", 34, (4, 6)),   # 30 interactions so far: 4 more samples, then clusters
    ("cluster+sample", 34, (6, 4)),
    ("cluster+sample", 10, (10, 0)),  # switch passed: samples only
])
def test_phase_budgets(scenario: str, switch_at: int | None, expected: tuple[int, int]) -> None:
    pools = al.Pools(torch.zeros(40, 2), num_classes=3)
    pools.record([al.Answer(i, 0) for i in range(30)])
    s = al.strategies.get("cluster_annotation", scenario=scenario, switch_at=switch_at, split=0.3)
    assert s.phase_budgets(pools, 10) == expected


def test_loop_books_cluster_labels_and_their_true_accuracy() -> None:
    x, y = blobs(240, seed=0)
    net = al.backbones.MLP(16, 3, hidden=(32, 16))
    model = al.ALModel(net, num_classes=3, device="cpu", seed=0)
    pools = al.Pools(x, num_classes=3)
    oracle = al.SimulatedOracle(y, num_classes=3)
    strategy = al.strategies.get("cluster_annotation", scenario="sample+cluster", cluster_size=20, rank="purity", seed=0)
    loop = al.ActiveLoop(model, strategy, oracle, pools, test=(x, torch.as_tensor(y)), budget=6, cycles=3, initial=12,
                         trainer=al.Trainer(al.TrainConfig(epochs=3, batch_size=16)), progress=False)
    h = loop.run()
    assert h.column("interactions").tolist() == [12, 18, 24]  # one per sample, one per cluster
    cluster_entries = [e for e in pools.log if e.source == "cluster" and e.index >= 0]
    first = [e for e in cluster_entries if e.cycle == 1]
    assert h[0].extra["cluster_labeled"] == len(first) > 0
    truth = np.mean([y[e.index] == e.label for e in first])
    assert h[0].extra["cluster_label_accuracy"] == pytest.approx(truth)
    assert h[0].extra["clusters_accepted"] + h[0].extra["clusters_declined"] == 3
    assert pools.n_labeled == 12 + 2 * 3 + len(cluster_entries)  # initial + 3 samples per query + cluster labels


def test_cluster_strategy_proposes_disjoint_clusters_of_the_asked_size() -> None:
    s = make_setup("cluster_annotation", params={"cluster_size": 30, "rank": "compact"})
    q = s.strategy.select(s.model, s.pools, 4)
    assert isinstance(q, al.Query) and len(q.indices) == 0 and len(q.groups) == 4
    members = np.concatenate(q.groups)
    assert np.unique(members).size == members.size and s.pools.unlabeled_mask[members].all()
    # 210 unlabeled / 30 per cluster = 7 clusters: about 30 members each
    assert 10 <= np.mean([g.size for g in q.groups]) <= 60


def test_kmeans_recovers_separated_blobs_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=np.float32)
    truth = np.repeat(np.arange(4), 50)
    x = torch.from_numpy(centers[truth] + rng.normal(scale=0.5, size=(200, 2)).astype(np.float32))
    for backend in ("sklearn", "torch"):
        labels, _c = kmeans(x, 4, seed=3, backend=backend)
        lab = labels.numpy()
        # each true blob maps to exactly one cluster
        assert all(np.unique(lab[truth == t]).size == 1 for t in range(4)) and np.unique(lab).size == 4
        labels2, _ = kmeans(x, 4, seed=3, chunk_size=7, backend=backend)
        np.testing.assert_array_equal(lab, labels2.numpy())
    with pytest.warns(DeprecationWarning, match="sklearn_below"):
        kmeans(x, 4, seed=3, sklearn_below=10_000)
    with pytest.raises(al.exceptions.InvalidParameterError, match="backend must be one of"):
        kmeans(x, 4, backend="faiss-gpu")
    with pytest.raises(al.exceptions.InvalidParameterError, match=r"k must be an int in 1\.\.200"):
        kmeans(x, 0)


def test_kmeans_inertia_no_worse_than_scikit_learn() -> None:
    """Issue 16: 20,000 x 32 blobs, k = 50: our default equals scikit-learn's KMeans(n_init=1) run with the
    same seed and iteration cap, and is no worse than scikit-learn's defaults (max_iter=300); the torch path
    (GPU default) with its greedy k-means++ stays within 10% (the old plain k-means++ was 1.2-2.3x worse)."""
    from sklearn.cluster import KMeans
    from sklearn.datasets import make_blobs

    from activelearn.ops.clustering import inertia

    x = make_blobs(20_000, 32, centers=80, random_state=0)[0].astype(np.float32)
    for seed in (0, 1):
        _, c = kmeans(x, 50, seed=seed)
        ours = inertia(x, c)
        same = KMeans(50, n_init=1, max_iter=50, tol=1e-6, random_state=seed).fit(x)
        assert ours == pytest.approx(inertia(x, same.cluster_centers_), rel=1e-9)
        assert ours <= KMeans(50, n_init=1, random_state=seed).fit(x).inertia_ * (1 + 1e-6)
        _, ct = kmeans(torch.from_numpy(x), 50, seed=seed, backend="torch")
        assert inertia(x, ct) <= 1.1 * ours


def test_imbalanced_blobs_has_the_paper_sizes_and_is_seeded() -> None:
    b = al.datasets.imbalanced_blobs(seed=2)
    assert b.train_x.shape == (2550, 2) and np.bincount(b.train_y.numpy()).tolist() == [2000, 500, 50]
    again = al.datasets.imbalanced_blobs(seed=2)
    assert torch.equal(b.train_x, again.train_x) and not torch.equal(b.train_x, al.datasets.imbalanced_blobs(seed=3).train_x)
    assert al.datasets.load("imbalanced_blobs", sizes=(10, 10, 5)).num_train == 25


def test_cluster_query_cannot_be_squeezed() -> None:
    s = make_setup("cluster_annotation+entropy", params={"first__cluster_size": 30, "first__rank": "compact"})
    with pytest.raises(al.exceptions.InvalidParameterError, match="cluster Query, which cannot be squeezed"):
        s.strategy.select(s.model, s.pools, 4)


# --------------------------------------------------------------- the paper's protocol (issue 14 item 3)
def _example():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "cluster_annotation.py"
    spec = importlib.util.spec_from_file_location("cluster_annotation_example", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_rank_all_shows_every_cluster_of_the_unlabeled_pool() -> None:
    """rank="all" (the default): k-means into the cycle's cluster share, and every cluster is proposed."""
    s = make_setup("cluster_annotation", params={"scenario": "sample+cluster", "split": 0.5})
    assert s.strategy.rank == "all"
    q = s.strategy.select(s.model, s.pools, 8)
    assert len(q.indices) == 4 and len(q.groups) == 4
    members = np.concatenate(q.groups)
    # the clusters partition exactly the unlabeled samples not asked as samples: none is screened out
    np.testing.assert_array_equal(np.sort(members), np.setdiff1d(s.pools.unlabeled, q.indices))
    validate_selection(q, s.pools, 8)
    # a pre-screening rank proposes only some of the pool's clusters
    screened = make_setup("cluster_annotation", params={"rank": "purity", "cluster_size": 30}).strategy
    qs = screened.select(s.model, s.pools, 4)
    assert np.concatenate(qs.groups).size < s.pools.n_unlabeled


def test_rank_all_with_fewer_unlabeled_samples_than_clusters_asked() -> None:
    s = make_setup("cluster_annotation", n=40, n_labeled=34)  # 6 unlabeled, 5 clusters asked
    q = s.strategy.select(s.model, s.pools, 5)
    assert len(q.groups) == 5 and sorted(g.size for g in q.groups) == [1, 1, 1, 1, 2]
    np.testing.assert_array_equal(np.sort(np.concatenate(q.groups)), s.pools.unlabeled)


@pytest.mark.parametrize("scenario", ["sample+cluster", "cluster+sample"])
def test_mixed_scenario_asks_samples_and_clusters_in_every_cycle(scenario: str) -> None:
    x, y = blobs(300, seed=1)
    net = al.backbones.MLP(16, 3, hidden=(32, 16))
    model = al.ALModel(net, num_classes=3, device="cpu", seed=0)
    queries: list[al.Query] = []

    class Spy(al.callbacks.Callback):
        def on_selection(self, loop, record, query) -> None:
            if record is not None:
                queries.append(query)

    # compact clusters of 20: rank="all" would cover the whole pool and could label all of it in one cycle
    strategy = al.strategies.get("cluster_annotation", scenario=scenario, rank="compact", cluster_size=20, seed=0)
    assert strategy.switch_at is None and strategy.split == 0.5  # the defaults: the paper's per-iteration split
    loop = al.ActiveLoop(model, strategy, al.SimulatedOracle(y, num_classes=3), al.Pools(x, num_classes=3),
                         test=(x, torch.as_tensor(y)), budget=4, cycles=5, initial=9, callbacks=[Spy()],
                         trainer=al.Trainer(al.TrainConfig(epochs=2, batch_size=16)), progress=False)
    loop.run()
    assert len(queries) == 4
    assert all(len(q.indices) == 2 and len(q.groups) == 2 for q in queries)


def test_example_mixed_scenarios_use_the_per_iteration_split() -> None:
    ex = _example()
    args = ex.parse([])
    for label in ("uncertain+cluster", "cluster+uncertain"):
        name, params = ex.strategy_params(label, args)
        s = al.strategies.get(name, **params)
        assert s.switch_at is None and s.split == 0.5 and s.rank == "all" and s.sample == "entropy"
    assert ex.strategy_params("cluster-only", args)[1]["scenario"] == "cluster"
    pool, pre = ex.split_indices(100, 30, 50, seed=0)
    assert pool.size == 30 and pre.size == 50 and np.intersect1d(pool, pre).size == 0


def test_pretrained_encoder_is_restored_at_every_cycle() -> None:
    """The example loads the autoencoder's weights into the MLP; every cycle's training starts from them."""
    ex = _example()
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(64, 1, 28, 28, generator=gen)
    encoder = ex.pretrain_encoder(images, epochs=1, seed=0, batch_size=32)
    assert sorted(encoder) == ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]
    fresh = ex.make_net(0)
    assert not torch.equal(fresh.fc1.weight, encoder["fc1.weight"])  # pretraining changed the weights
    net = ex.make_net(0, encoder)
    assert torch.equal(net.fc1.weight, encoder["fc1.weight"]) and torch.equal(net.head.weight, fresh.head.weight)
    x = torch.rand(120, 1, 28, 28, generator=gen)
    y = torch.arange(120) % 10
    bundle = al.datasets.DatasetBundle(name="tiny", train_x=x, train_y=y, test_x=x[:20], test_y=y[:20], num_classes=10)
    loop = al.experiment.make_loop(bundle, "random", backbone=net, train=al.TrainConfig(epochs=2, batch_size=16, lr=1e-2),
                                   initial=20, budget=10, cycles=3, seed=0, progress=False, device="cpu")
    starts: list[torch.Tensor] = []
    state = {"armed": False}

    def arm(loop_view, cycle) -> None:
        state["armed"] = True

    def first_training_forward(module, args) -> None:
        if state["armed"] and module.training:
            starts.append(module.weight.detach().clone())
            state["armed"] = False

    loop.callbacks.append(type("Arm", (al.callbacks.Callback,), {"on_cycle_start": lambda self, lv, c: arm(lv, c)})())
    loop.model.backbone.fc1.register_forward_pre_hook(first_training_forward)
    loop.run()
    assert len(starts) == 3
    assert all(torch.equal(w, encoder["fc1.weight"]) for w in starts)
    assert not torch.equal(loop.model.backbone.fc1.weight.detach(), encoder["fc1.weight"])  # fine-tuned in between


def test_cluster_then_sample_order_takes_samples_out_of_the_clusters(monkeypatch: pytest.MonkeyPatch) -> None:
    """cluster+sample, rank="all": the clusters cover the unlabeled pool, the samples leave their clusters."""
    s = make_setup("cluster_annotation", params={"scenario": "cluster+sample"})
    q = s.strategy.select(s.model, s.pools, 8)
    assert len(q.indices) == 4 and len(q.groups) == 4 and all(g.size for g in q.groups)
    members = np.concatenate([q.indices, *q.groups])
    np.testing.assert_array_equal(np.sort(members), s.pools.unlabeled)  # every unlabeled sample, once
    validate_selection(q, s.pools, 8)
    # every cluster predicted "declined": the samples are the top-entropy ones of the whole pool
    monkeypatch.setattr(type(s.strategy), "EXPERT_SHARE", 1.01)
    q2 = s.strategy.select(s.model, s.pools, 8)
    p = s.model.outputs(s.pools, s.pools.unlabeled, "probs")["probs"].double()
    ent = -(p * p.clamp_min(1e-12).log()).sum(1).numpy()
    top = np.sort(s.pools.unlabeled[np.argsort(-ent, kind="stable")[:4]])
    np.testing.assert_array_equal(q2.indices, top)


def test_cluster_then_sample_prefers_clusters_predicted_to_be_declined(monkeypatch: pytest.MonkeyPatch) -> None:
    s = make_setup("cluster_annotation", params={"scenario": "cluster+sample"})
    # the same seed and pool give cluster-only the same k-means clusters: the ones before the samples leave
    clusters = al.strategies.get("cluster_annotation", scenario="cluster", seed=0).select(s.model, s.pools, 4).groups
    pred = s.model.outputs(s.pools, s.pools.unlabeled, "probs")["probs"]
    row = {int(i): k for k, i in enumerate(s.pools.unlabeled)}
    p = pred.double()
    ent = -(p * p.clamp_min(1e-12).log()).sum(1).numpy()
    share = np.array([np.bincount(pred[[row[int(i)] for i in g]].argmax(1).numpy()).max() / g.size for g in clusters])
    cut = float(np.sort(share)[1]) + 1e-9  # the two least agreed-on clusters count as "declined"
    monkeypatch.setattr(type(s.strategy), "EXPERT_SHARE", cut)
    low = np.concatenate([g for g, sh in zip(clusters, share) if sh < cut])
    expected = np.sort(low[np.argsort(-ent[[row[int(i)] for i in low]], kind="stable")[:4]])
    q = s.strategy.select(s.model, s.pools, 8)
    np.testing.assert_array_equal(q.indices, expected)
    assert not np.array_equal(expected, np.sort(s.pools.unlabeled[np.argsort(-ent, kind="stable")[:4]]))
