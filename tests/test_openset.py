"""Open-set pools: oracle cost books, quota mode, the K+1 device, the contrastive strategies."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import activelearn as al
from activelearn.backbones import MLP
from activelearn.contrastive import simclr_loss, supcon_loss
from activelearn.history import cost_per_accuracy
from activelearn.loop import open_set_books
from activelearn.strategies.contrastive import cluster_quotas, radius_order

from conftest import blobs


def open_setup(n: int = 150, seed: int = 0, open_set: bool = True, every: int = 4, dropout: float = 0.0):
    """3 in-task blob classes; every ``every``-th sample is 'not in task'; costs 1 + (i % 2)."""
    x, y = blobs(n, seed=0)
    in_task = np.arange(n) % every != 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = MLP(16, 4 if open_set else 3, hidden=(32, 16), dropout=dropout)
    model = al.ALModel(net, num_classes=3, device="cpu", seed=seed, open_set=open_set)
    pools = al.Pools(x, num_classes=3)
    cost = 1.0 + (np.arange(n) % 2)
    oracle = al.SimulatedOracle(y, num_classes=3, in_task=in_task, cost=cost)
    return model, pools, oracle, in_task, cost


def test_oracle_cost_books() -> None:
    _, pools, oracle, in_task, cost = open_setup()
    q = np.arange(0, 40)
    pools.record(oracle.answer(al.Query(q)), cycle=0)
    books = open_set_books(pools)
    assert books["in_task_labels"] + books["rejected"] == books["examined"] == 40
    assert books["in_task_labels"] == int(in_task[q].sum())
    assert pools.total_cost == pytest.approx(cost[q].sum())
    assert books["wasted_cost"] == pytest.approx(cost[q][~in_task[q]].sum())
    assert set(pools.rejected) == set(q[~in_task[q]])


def test_cost_per_accuracy_matches_paper_table() -> None:
    assert cost_per_accuracy(406, 0.9665) == pytest.approx(4.20, abs=0.005)
    assert cost_per_accuracy(6582, 0.968) == pytest.approx(68.00, abs=0.005)
    np.testing.assert_allclose(cost_per_accuracy(np.array([440.0]), np.array([0.9384])), [4.69], atol=0.005)


def _loop(strategy: al.strategies.Strategy, *, n: int = 150, budget: int = 7, cycles: int = 4, mode: str = "quota", every: int = 4, open_set: bool = True):
    drop = 0.5 if getattr(strategy, "needs_dropout", False) else 0.0  # MC-dropout strategies (BALD, BatchBALD)
    model, pools, oracle, in_task, _ = open_setup(n, open_set=open_set, every=every, dropout=drop)
    loop = al.ActiveLoop(model, strategy, oracle, pools, trainer=al.Trainer(al.TrainConfig(epochs=2, batch_size=16)),
                         budget=budget, cycles=cycles, initial=np.flatnonzero(in_task)[:20], progress=False, mode=mode)
    return loop, in_task


def test_quota_mode_stops_at_exactly_the_quota() -> None:
    loop, _in_task = _loop(al.strategies.get("random", seed=0), budget=7, cycles=4)
    hist = loop.run()
    assert hist.column("n_labeled").tolist() == [20, 27, 34, 41]
    assert hist.column("in_task_labels").tolist() == [20, 27, 34, 41]
    # every examined sample is in the log; the interactions exceed the quota when some were rejected
    examined = hist.column("examined")
    assert (examined[1:] - examined[:-1] >= 7).all()
    assert hist[0].extra["select_calls"] >= 1
    assert sum(len(r.selected) for r in hist.records) == loop.pools.n_labeled + loop.pools.n_rejected - 20


def test_ordinary_mode_counts_interactions() -> None:
    loop, _ = _loop(al.strategies.get("random", seed=0), budget=7, cycles=3, mode="interactions")
    hist = loop.run()
    assert hist.column("examined").tolist() == [20, 27, 34]
    assert all(r.extra.get("select_calls", 1) == 1 for r in hist.records)


def test_quota_mode_stops_at_pool_exhaustion() -> None:
    # 30 samples, 10 not in task, the 20 in-task ones labeled initially: quota 50 cannot be met
    loop, in_task = _loop(al.strategies.get("entropy"), n=30, budget=50, cycles=2, every=3)
    with pytest.warns(UserWarning, match="exceeds the 10 unlabeled"):
        hist = loop.run()
    assert loop.pools.n_unlabeled == 0
    assert loop.pools.n_labeled == int(in_task.sum())
    assert hist[0].extra["examined_this_cycle"] == 10


def test_rejected_never_reenter_the_unlabeled_pool() -> None:
    loop, in_task = _loop(al.strategies.get("least_confidence"), budget=10, cycles=4)
    loop.run()
    pools = loop.pools
    rej = pools.rejected
    assert rej.size > 0 and not in_task[rej].any()
    assert not pools.unlabeled_mask[rej].any()
    with pytest.raises(al.exceptions.InvalidInputError, match="already examined"):
        pools.record([al.Answer(int(rej[0]), None, in_task=False)])
    with pytest.raises(al.exceptions.SelectionError, match="not in the unlabeled pool"):
        al.loop.validate_selection(np.array([rej[0]]), pools, 1)


def test_open_set_model_trains_rejected_as_extra_class() -> None:
    model, pools, oracle, _in_task, _ = open_setup()
    pools.record(oracle.answer(al.Query(np.arange(150))), cycle=0)
    al.Trainer(al.TrainConfig(epochs=60, batch_size=32)).fit(model, pools)
    assert "open_probs" in model.provides()
    out = model.outputs(pools, np.arange(150), ["open_probs", "probs"])
    assert out["open_probs"].shape == (150, 4) and out["probs"].shape == (150, 3)
    # probs are the K+1 probabilities renormalised over the in-task classes
    op = out["open_probs"]
    torch.testing.assert_close(out["probs"], op[:, :3] / op[:, :3].sum(1, keepdim=True), atol=1e-5, rtol=1e-5)
    assert (op.argmax(1).cpu().numpy() == 3).sum() > 0


def test_skip_predicted_ood_prefers_predicted_in_task() -> None:
    model, pools, oracle, _in_task, _ = open_setup()
    pools.record(oracle.answer(al.Query(np.arange(0, 150, 2))), cycle=0)
    al.Trainer(al.TrainConfig(epochs=40, batch_size=32)).fit(model, pools)
    unl = pools.unlabeled
    pred_ood = model.outputs(pools, unl, "open_probs")["open_probs"].argmax(1).cpu().numpy() == 3
    n_keep = int((~pred_ood).sum())
    assert 0 < n_keep < unl.size
    for name in ("entropy", "least_confidence", "random"):
        picks = al.strategies.get(name, seed=0, skip_predicted_ood=True).select(model, pools, n_keep)
        assert set(picks) == set(unl[~pred_ood])
        more = al.strategies.get(name, seed=0, skip_predicted_ood=True).select(model, pools, n_keep + 2)
        assert set(unl[~pred_ood]) < set(more)
    plain_model, *_ = open_setup(open_set=False)
    with pytest.raises(al.exceptions.InvalidParameterError, match="open_set=True"):
        al.strategies.get("entropy", skip_predicted_ood=True).select(plain_model, pools, 3)


def test_radius_rule_on_a_hand_built_2d_cluster() -> None:
    centroid = np.array([1.0, 1.0])
    pts = centroid + np.array([[0.5, 0.0], [0.0, 1.5], [-1.0, 0.0], [3.0, 0.0], [0.0, -2.5], [2.0, 0.0]])
    dist = np.linalg.norm(pts - centroid, axis=1)  # 0.5 1.5 1.0 3.0 2.5 2.0
    # the closest rejected member sits at distance 2.0 (the last point): radius 2.0
    order = radius_order(dist, 2.0)
    # inside (<= 2): 2.0, 1.5, 1.0, 0.5 by decreasing distance; outside: 2.5 then 3.0
    assert order.tolist() == [5, 1, 2, 0, 4, 3]
    assert radius_order(dist, 0.1).tolist() == [0, 2, 1, 5, 4, 3]


def test_cluster_quotas_proportional_exact_and_capped() -> None:
    assert cluster_quotas(np.array([50, 30, 20]), 10).tolist() == [5, 3, 2]
    q = cluster_quotas(np.array([1, 60, 39]), 10)
    assert q.sum() == 10 and q[0] <= 1 and q.tolist() == [0, 6, 4]
    assert cluster_quotas(np.array([2, 100]), 50).tolist() == [1, 49]
    assert cluster_quotas(np.array([2, 3]), 10).tolist() == [2, 3]


def test_contrastive_distance_picks_follow_the_radius_rule() -> None:
    loop, _ = _loop(al.strategies.get("contrastive_distance", seed=0, first_epochs=3, later_epochs=1), budget=6, cycles=2)
    loop.run()
    s, pools = loop.strategy, loop.pools
    picks = s.select(loop.model, pools, 6)
    st = s._state
    members, quotas, clusters = s._plan(pools, 6)
    assert quotas.sum() == 6
    c, mem = clusters[0], members[0]
    rej_c = pools.rejected[st["assign"][pools.rejected] == c]
    radius = st["dist"][rej_c].min() if rej_c.size else np.median(st["dist"][st["assign"] == c])
    expected = mem[radius_order(st["dist"][mem], radius)[: quotas[0]]]
    np.testing.assert_array_equal(picks[: quotas[0]], expected)


def _supcon_by_hand(z: np.ndarray, y: list[int], t: float) -> float:
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    total, anchors = 0.0, 0
    for i in range(len(z)):
        pos = [p for p in range(len(z)) if p != i and y[p] == y[i]]
        if not pos:
            continue
        denom = sum(math.exp(z[i] @ z[a] / t) for a in range(len(z)) if a != i)
        total += -sum(math.log(math.exp(z[i] @ z[p] / t) / denom) for p in pos) / len(pos)
        anchors += 1
    return total / anchors


def test_supcon_and_simclr_equal_hand_computation() -> None:
    z = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8], [0.3, -0.9]])
    y = [0, 0, 1, 1, 2]
    got = float(supcon_loss(torch.tensor(z), torch.tensor(y), 0.5))
    assert got == pytest.approx(_supcon_by_hand(z, y, 0.5), rel=1e-6)
    z1, z2 = z[:2], np.array([[0.9, 0.1], [0.1, 0.9]])
    got = float(simclr_loss(torch.tensor(z1), torch.tensor(z2), 0.07))
    assert got == pytest.approx(_supcon_by_hand(np.vstack([z1, z2]), [0, 1, 0, 1], 0.07), rel=1e-6)


def test_contrastive_state_dict_round_trip() -> None:
    loop, _ = _loop(al.strategies.get("contrastive_random", seed=0, first_epochs=2, later_epochs=1), budget=5, cycles=2)
    loop.run()
    s = loop.strategy
    state = s.state_dict()
    other = al.strategies.get("contrastive_random", seed=0)
    other.load_state_dict(state)
    x = loop.pools.inputs(np.arange(20))
    torch.testing.assert_close(other.predict(x), s.predict(x))
    assert other._stages == s._stages == 1


@pytest.mark.parametrize("name", al.strategies.available())
def test_every_strategy_runs_in_quota_mode_on_an_open_set_pool(name: str) -> None:
    params = {"first_epochs": 2, "later_epochs": 1} if name.startswith("contrastive") else {}
    takes_seed = "seed" in al.strategies.get_class(name)._param_names()
    strategy = al.strategies.get(name, **({"seed": 0} if takes_seed else {}), **params)
    loop, in_task = _loop(strategy, n=120, budget=5, cycles=3)
    hist = loop.run()
    labeled = hist.column("n_labeled").tolist()
    if name == "cluster_annotation":  # an accepted cluster labels all its members at once: the quota is a floor
        assert labeled[0] == 20 and labeled[1] >= 25 and labeled[2] >= labeled[1] + 5
    else:
        assert labeled == [20, 25, 30]
    if name != "cluster_annotation":  # an accepted cluster labels every member, up to 20% wrongly (paper's rule)
        assert not in_task[loop.pools.labeled].__invert__().any()


def test_open_set_model_needs_k_plus_one_outputs() -> None:
    x, y = blobs(30, seed=0)
    model = al.ALModel(MLP(16, 3, hidden=(8,)), num_classes=3, device="cpu", open_set=True)
    pools = al.Pools(x, num_classes=3)
    pools.record(al.SimulatedOracle(y, num_classes=3).answer(al.Query(np.arange(10))))
    with pytest.raises(al.exceptions.InvalidParameterError, match="num_classes \\+ 1 = 4 outputs"):
        al.Trainer(al.TrainConfig(epochs=1)).fit(model, pools)
