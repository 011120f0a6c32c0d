"""Selection and score functions of ``strategies/`` against hand-computed values (issue 13, mutation testing).

Written for the sampled mutants of ``strategies/*.py`` that survived the focused test selection
or that no focused test ran (docs/reliability.md, "Mutation testing").  The models are tiny and
their outputs are set by hand: the "logit" backbone is one identity ``nn.Linear``, so a pool row
``log p`` has class probabilities exactly ``p`` (up to float32 rounding) and the expected scores
and picks can be written down from the definitions.
"""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
import torch
from torch import nn

import activelearn as al
import activelearn.strategies.coreset as coreset_mod
from activelearn.backbones import MLP
from activelearn.exceptions import InvalidParameterError
from activelearn.ops.kcenter import kcenter_greedy
from activelearn.strategies.base import predicted_in_task
from activelearn.strategies.baselines import BEntropy, Entropy, LeastConfidence, Margin

from conftest import blobs


# ------------------------------------------------------------------ tiny hand-set models
def _logit_model(n_out: int, *, num_classes: int | None = None, open_set: bool = False) -> al.ALModel:
    """A backbone whose logits are its inputs (identity ``Linear``, zero bias)."""
    lin = nn.Linear(n_out, n_out)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(n_out))
        lin.bias.zero_()
    return al.ALModel(nn.Sequential(lin), num_classes=num_classes or n_out, device="cpu", stages=(), open_set=open_set)


def _pools(rows: np.ndarray, labeled: np.ndarray, num_classes: int) -> al.Pools:
    """Pools over ``rows`` (float32), ``labeled`` answered (label 0) in cycle 0, now at cycle 1."""
    pools = al.Pools(torch.tensor(rows, dtype=torch.float32), num_classes=num_classes)
    oracle = al.SimulatedOracle(np.zeros(len(rows), dtype=np.int64), num_classes=num_classes)
    if labeled.size:
        pools.record(oracle.answer(al.Query(labeled)), cycle=0)
    pools.cycle = 1
    return pools


# 3 classes; row i has probabilities P[i]; rows 0 and 6 are labeled
P = np.array([
    [0.2, 0.3, 0.5],     # 0 labeled
    [0.6, 0.3, 0.1],     # 1
    [0.4, 0.4, 0.2],     # 2  margin 0 (tie of the top two)
    [1 / 3, 1 / 3, 1 / 3],  # 3  maximum entropy, margin 0
    [0.9, 0.05, 0.05],   # 4
    [0.5, 0.1, 0.4],     # 5
    [0.1, 0.1, 0.8],     # 6 labeled
    [0.45, 0.45, 0.1],   # 7  margin 0, same as row 2 up to the third class
])
UNL = np.array([1, 2, 3, 4, 5, 7])


def _entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(p)).sum(axis=1)


def _setup_probs() -> tuple[al.ALModel, al.Pools]:
    return _logit_model(3), _pools(np.log(P), np.array([0, 6]), 3)


@pytest.mark.parametrize(
    ("cls", "want"),
    [
        (Entropy, lambda p: _entropy(p)),
        (LeastConfidence, lambda p: 1.0 - p.max(axis=1)),
        (Margin, lambda p: -(np.sort(p, axis=1)[:, -1] - np.sort(p, axis=1)[:, -2])),
        (BEntropy, lambda p: -(p * np.log(p) + (1 - p) * np.log(1 - p)).mean(axis=1)),
    ],
)
def test_probability_scores_are_their_definitions_and_select_takes_the_top(cls, want) -> None:
    model, pools = _setup_probs()
    strategy = cls()
    expected = want(P[UNL])
    got = strategy.score(model, pools, UNL)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # select: top 3 of the hand scores, ties (equal up to float32) to the lowest index
    order = sorted(range(UNL.size), key=lambda i: (-round(float(expected[i]), 5), UNL[i]))
    np.testing.assert_array_equal(strategy.select(model, pools, 3), UNL[order[:3]])


def test_margin_of_two_classes_and_of_one_class() -> None:
    """Two classes: ``-(p1 - p2)`` (not zero); one class: zeros of the input's dtype on the input's device."""
    p = torch.tensor([[0.7, 0.3], [0.2, 0.8], [0.5, 0.5]], dtype=torch.float64)
    torch.testing.assert_close(Margin().score_probs(p), torch.tensor([-0.4, -0.6, 0.0], dtype=torch.float64))
    torch.testing.assert_close(Margin().score_probs(p[:, :1]), torch.zeros(3, dtype=torch.float64))
    one = Margin().score_probs(torch.ones(4, 1, dtype=torch.float64, device="meta"))
    assert one.device.type == "meta" and one.shape == (4,) and one.dtype == torch.float64


def test_bentropy_clamps_only_at_0_and_1() -> None:
    """Scores at p in {0, 1} are 0 (clamped to 1e-12 / 1 - 1e-12), inside they are the exact binary entropy."""
    p = torch.tensor([[0.0, 1.0], [0.25, 0.5], [1e-3, 1 - 1e-3]], dtype=torch.float64)
    h = lambda q: -(q * math.log(q) + (1 - q) * math.log(1 - q))  # noqa: E731
    want = torch.tensor([0.0, (h(0.25) + h(0.5)) / 2, h(1e-3)], dtype=torch.float64)
    torch.testing.assert_close(BEntropy().score_probs(p), want, atol=1e-10, rtol=1e-12)


# ------------------------------------------------------------------ open-set skipping
# 2 classes + "not in task": logits over K + 1 = 3 outputs.  Predicted not in task: rows 1, 3, 5 (last logit max).
OPEN = np.array([
    [2.0, 0.0, -1.0],  # 0 labeled
    [0.0, 0.0, 3.0],   # 1 ood, in-task probs (0.5, 0.5): highest entropy
    [0.1, 0.0, -2.0],  # 2 in task, near-uniform
    [1.0, 0.0, 4.0],   # 3 ood
    [3.0, 0.0, 0.0],   # 4 in task, confident
    [0.05, 0.0, 9.0],  # 5 ood, near-uniform
    [0.0, 2.0, -1.0],  # 6 in task, fairly confident
])


def _open_setup() -> tuple[al.ALModel, al.Pools, np.ndarray]:
    model = _logit_model(3, num_classes=2, open_set=True)
    pools = _pools(OPEN, np.array([0]), 2)
    d = OPEN[:, 0] - OPEN[:, 1]
    p0 = 1 / (1 + np.exp(-d))
    ent = -(p0 * np.log(p0) + (1 - p0) * np.log(1 - p0))
    return model, pools, ent


def test_predicted_in_task_is_the_argmax_over_k_plus_1() -> None:
    model, pools, _ = _open_setup()
    idx = np.array([6, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(predicted_in_task(model, pools, idx), [True, False, True, False, True, False])


def test_skip_predicted_ood_ranks_in_task_first_then_fills_in_score_order() -> None:
    model, pools, ent = _open_setup()
    s = al.strategies.get("entropy", skip_predicted_ood=True)
    # in task: 2 (0.69...), 6, 4 by entropy; ood 1 (log 2), 5, 3
    assert ent[1] > ent[5] > ent[2] > ent[3] > ent[6] > ent[4]
    np.testing.assert_array_equal(s.select(model, pools, 2), [2, 6])
    np.testing.assert_array_equal(s.select(model, pools, 3), [2, 6, 4])
    np.testing.assert_array_equal(s.select(model, pools, 5), [2, 6, 4, 1, 5])
    # without skipping: plain entropy order
    np.testing.assert_array_equal(al.strategies.get("entropy").select(model, pools, 3), [1, 5, 2])


def test_random_skip_predicted_ood_draws_in_task_first() -> None:
    model, pools, _ = _open_setup()
    s = al.strategies.get("random", seed=4, skip_predicted_ood=True)
    got = s.select(model, pools, 4)
    rng = np.random.default_rng([4, 1, int(pools.n_interactions)])
    first = rng.permutation(np.array([2, 4, 6]))
    rest = rng.permutation(np.array([1, 3, 5]))[:1]
    np.testing.assert_array_equal(got, np.concatenate([first, rest]))


def test_skip_predicted_ood_without_the_open_set_model_says_how_to_fix() -> None:
    model, pools = _setup_probs()
    for name in ("entropy", "random"):
        with pytest.raises(InvalidParameterError, match=r"build the model with ALModel\(\.\.\., open_set=True\) and a backbone with num_classes \+ 1 outputs$"):
            al.strategies.get(name, skip_predicted_ood=True).select(model, pools, 2)


# ------------------------------------------------------------------ seeds and candidates
def test_random_sampling_is_the_documented_seeded_draw_without_repeats() -> None:
    model, pools = _setup_probs()
    s = al.strategies.RandomSampling(seed=11)
    assert s.skip_predicted_ood is False
    got = s.select(model, pools, 4)
    want = np.random.default_rng([11, 1, int(pools.n_interactions)]).choice(UNL, size=4, replace=False)
    np.testing.assert_array_equal(got, want)
    assert np.unique(got).size == 4 and np.isin(got, UNL).all()


def test_rng_is_seeded_by_seed_cycle_interactions_and_salt() -> None:
    _, pools = _setup_probs()
    s = al.strategies.get("entropy", seed=7)
    a = s.rng(pools, 5).integers(0, 2**62, size=3)
    np.testing.assert_array_equal(a, np.random.default_rng([7, 1, int(pools.n_interactions), 5]).integers(0, 2**62, size=3))
    # no seed: a fresh generator each time (two draws differ)
    u = al.strategies.get("entropy")
    assert not np.array_equal(u.rng(pools).integers(0, 2**62, size=4), u.rng(pools).integers(0, 2**62, size=4))


def test_subset_candidates_are_the_salted_seeded_draw() -> None:
    _, pools = _setup_probs()
    s = al.strategies.get("entropy", seed=3, subset=3)
    want = np.sort(np.random.default_rng([3, 1, int(pools.n_interactions), 1]).choice(UNL, size=3, replace=False))
    np.testing.assert_array_equal(s.candidates(pools, 2), want)
    np.testing.assert_array_equal(s.candidates(pools, 4), np.sort(np.random.default_rng([3, 1, int(pools.n_interactions), 1]).choice(UNL, size=4, replace=False)))


# ------------------------------------------------------------------ BALD / BatchBALD scores
def _bald_by_definition(lp: torch.Tensor) -> np.ndarray:
    """``H[mean_s p_s] - mean_s H[p_s]`` in float64 numpy."""
    p = lp.double().exp().numpy()
    mean = p.mean(axis=1)
    return -(mean * np.log(mean)).sum(axis=1) + (p * np.log(p)).sum(axis=2).mean(axis=1)


@pytest.mark.parametrize("name", ["bald", "batchbald"])
def test_bald_scores_of_both_strategies_are_the_mc_definition_over_uneven_chunks(name: str) -> None:
    x, _ = blobs(12, seed=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = MLP(16, 3, hidden=(8,), dropout=0.5)
    model = al.ALModel(net, num_classes=3, device="cpu")
    pools = _pools(x.numpy(), np.array([0, 5]), 3)
    s = al.strategies.get(name, seed=9, n_samples=5, chunk=3)
    idx = pools.unlabeled[:7]
    seed = int(np.random.default_rng([9, 1, int(pools.n_interactions), 2]).integers(0, 2**62))
    lp = model.mc_outputs(pools, idx, 5, seed=seed)["log_probs"]
    want = _bald_by_definition(lp)
    assert want.std() > 1e-3  # the points differ
    np.testing.assert_allclose(s.score(model, pools, idx), want, rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------ Core-Set's sharded branch
def test_coreset_sharded_branch_embeds_its_shard_locally_and_matches_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """A world of one rank that takes the distributed branch: same picks as one process, rows asked with ``local=True``."""
    x, _ = blobs(40, seed=2)
    torch.manual_seed(0)
    model = al.ALModel(MLP(16, 3, hidden=(8,)), num_classes=3, device="cpu")
    pools = _pools(x.numpy(), np.array([3, 17, 30]), 3)
    s = al.strategies.get("coreset", seed=1)
    plain = s.select(model, pools, 6)
    idx = np.concatenate([pools.unlabeled, pools.labeled])
    feats = model.outputs(pools, idx, "embeddings")["embeddings"]
    is_center = np.zeros(idx.size, dtype=bool)
    is_center[pools.n_unlabeled :] = True
    np.testing.assert_array_equal(plain, idx[kcenter_greedy(feats, 6, labeled=is_center)])
    calls: list[dict] = []
    real = model.outputs

    def spy(p, i, names, **kw):
        calls.append({"n": len(i), **kw})
        return real(p, i, names, **kw)

    monkeypatch.setattr(model, "outputs", spy)
    fake = types.SimpleNamespace(is_distributed=lambda: True, shard_range=lambda n: (0, n))
    monkeypatch.setattr(coreset_mod, "D", fake)
    np.testing.assert_array_equal(s.select(model, pools, 6), plain)
    assert calls == [{"n": idx.size, "local": True}]


# ------------------------------------------------------------------ Random(CL)
def test_contrastive_random_draws_per_cluster_without_repeats() -> None:
    x, y = blobs(60, seed=0)
    pools = al.Pools(x, num_classes=3)
    oracle = al.SimulatedOracle(y, num_classes=3, in_task=np.arange(60) % 5 != 0)
    pools.record(oracle.answer(al.Query(np.arange(12))), cycle=0)
    pools.cycle = 1
    model = al.ALModel(nn.Linear(1, 1), num_classes=3, device="cpu")
    params = dict(first_epochs=1, later_epochs=1, batch_size=32, rep_dim=8, proj_dim=8, kmeans_iter=5, classifier="probe", classifier_steps=2)
    a = al.strategies.get("contrastive_random", seed=2, **params)
    picks = a.select(model, pools, 9)
    assert picks.size == 9 and np.unique(picks).size == 9 and np.isin(picks, pools.unlabeled).all()
    b = al.strategies.get("contrastive_random", seed=2, **params)
    np.testing.assert_array_equal(b.select(model, pools, 9), picks)


@pytest.mark.parametrize("sharded", [False, True])
def test_coreset_without_labels_starts_from_its_seeded_first_center(monkeypatch: pytest.MonkeyPatch, sharded: bool) -> None:
    """Nothing labeled: the first center is drawn from ``int(rng(pools).integers(2**31 - 1))`` (the documented seed)."""
    x, _ = blobs(40, seed=3)
    torch.manual_seed(0)
    model = al.ALModel(MLP(16, 3, hidden=(8,)), num_classes=3, device="cpu")
    pools = _pools(x.numpy(), np.array([], dtype=np.int64), 3)
    feats = model.outputs(pools, pools.unlabeled, "embeddings")["embeddings"]
    if sharded:
        monkeypatch.setattr(coreset_mod, "D", types.SimpleNamespace(is_distributed=lambda: True, shard_range=lambda n: (0, n)))
    firsts = set()
    for seed in (0, 1, 2):
        first_seed = int(np.random.default_rng([seed, 1, 0]).integers(2**31 - 1))
        want = kcenter_greedy(feats, 5, seed=first_seed)
        np.testing.assert_array_equal(al.strategies.get("coreset", seed=seed).select(model, pools, 5), want)
        firsts.add(int(want[0]))
    assert len(firsts) > 1  # the seed matters


# ------------------------------------------------------------------ error messages name the strategy
def test_strategies_refuse_a_head_without_a_softmax_and_name_themselves() -> None:
    _, pools = _setup_probs()
    model = _logit_model(3)
    for ext in al.strategies.get("ncenet").model_extensions():
        model.attach(ext)
    assert not model.probs_sum_to_one
    for name in ("badge", "cdal", "entropy", "margin"):
        with pytest.raises(al.exceptions.InvalidInputError, match=rf"^'{name}' needs class probabilities that sum to one"):
            al.strategies.get(name).select(model, pools, 2)


def test_expand_squeeze_refuses_cluster_queries_and_says_what_to_use() -> None:
    model, pools = _setup_probs()
    s = al.strategies.get("cluster_annotation+entropy", seed=0)
    with pytest.raises(InvalidParameterError, match=r"^'cluster_annotation' returned a cluster Query.*use a candidate strategy that returns indices \(e\.g\. 'dacs', 'coreset', 'random'\)$"):
        s.select(model, pools, 2)


# ------------------------------------------------------------------ Random(CL) quotas
@pytest.mark.parametrize(
    ("sizes", "budget", "want"),
    [
        ([50, 30, 20], 10, [5, 3, 2]),  # exact shares
        ([3, 5], 1, [0, 1]),  # one pick: the largest remainder (5/8 > 3/8)
        ([2, 100], 50, [1, 49]),  # shares 0.98 and 49.02: the remainder goes to the small cluster
        ([1, 1, 1], 2, [1, 1, 0]),  # equal remainders: lowest cluster first
        ([1, 4, 20], 12, [0, 2, 10]),  # 0.48, 1.92, 9.6: floors 0, 1, 9, then .92 and .6 get the two left
        ([2, 3], 10, [2, 3]),  # budget above the total: every member
    ],
)
def test_cluster_quotas_are_largest_remainder_by_hand(sizes: list[int], budget: int, want: list[int]) -> None:
    from activelearn.strategies.contrastive import cluster_quotas

    assert cluster_quotas(np.array(sizes), budget).tolist() == want


# ------------------------------------------------------------------ DACS
def test_group_budgets_refuse_a_negative_size() -> None:
    from activelearn.strategies.dacs import group_budgets

    with pytest.raises(al.exceptions.InvalidInputError, match="counts >= 0"):
        group_budgets([3, -1, 5], 2)


@pytest.mark.parametrize("n_rounds", [1, 2])
def test_dacs_select_defaults_and_unlabeled_start_by_hand(n_rounds: int) -> None:
    """Nothing labeled, default groups (4) and buckets (100): each group's picks are its own cosine k-center from ``kc_seed + g``."""
    from activelearn.ops.density import lsh_density
    from activelearn.strategies.dacs import dacs_select

    z = torch.randn(300, 8, generator=torch.Generator().manual_seed(0)) * torch.linspace(0.2, 2.0, 300)[:, None]
    picks, info = dacs_select(z, np.zeros((0, 8)), 20, seed=6, n_rounds=n_rounds, return_info=True)
    assert len(info["breaks"]) - 1 == 4 and info["n_buckets"] == 100
    zn = torch.nn.functional.normalize(z, dim=1)
    lsh_seed, kc_seed = (int(s) for s in np.random.SeedSequence(6).generate_state(2) % (2**31 - 1))
    np.testing.assert_allclose(info["density"], lsh_density(zn, n_buckets=100, n_rounds=n_rounds, seed=lsh_seed).double().numpy())
    want = []
    for g in range(4):
        members = np.flatnonzero(info["labels"] == g)
        if info["budgets"][g]:
            want.append(members[kcenter_greedy(zn[members], int(info["budgets"][g]), metric="cosine", seed=kc_seed + g)])
    np.testing.assert_array_equal(picks, np.concatenate(want))


# ------------------------------------------------------------------ cluster+sample: the 80% expert threshold
def test_cluster_then_sample_treats_a_modal_share_of_exactly_80_percent_as_accepted() -> None:
    """Cluster A: 4 of 5 predicted class 0 (share 0.8, accepted: not *below* 80%); cluster B: share 0.6 (declined).

    The sample comes from the declined cluster first, although A holds the most uncertain point (logits 10 vs 9.9).
    """
    a = [[10, 9], [10, 9.9], [10, 9.5], [10, 9.2], [9, 10]]
    b = [[-10, -9], [-10, -9.5], [-9.4, -10], [-9, -10], [-10, -8]]
    model, pools = _logit_model(2), _pools(np.array(a + b, dtype=np.float64), np.array([], dtype=np.int64), 2)
    s = al.strategies.get("cluster_annotation", scenario="cluster+sample", split=0.67, seed=0)
    assert s.phase_budgets(pools, 3) == (1, 2)
    q = s.select(model, pools, 3)
    np.testing.assert_array_equal(q.indices, [6])  # B's most uncertain member (logits -10 vs -9.5)
    assert sorted(map(list, q.groups)) == [[0, 1, 2, 3, 4], [5, 7, 8, 9]]


def test_batchbald_draws_its_candidates_from_a_seeded_subset() -> None:
    from activelearn.strategies.bald import batchbald_select

    x, _ = blobs(30, seed=4)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        net = MLP(16, 3, hidden=(8,), dropout=0.5)
    model = al.ALModel(net, num_classes=3, device="cpu")
    pools = _pools(x.numpy(), np.array([2, 9]), 3)
    # 8 sampled configurations from the third pick on (3**2 <= 8 < 3**3): the picks depend on the configurations drawn
    s = al.strategies.get("batchbald", seed=3, n_samples=4, n_configs=8, subset=10)
    picks = s.select(model, pools, 6)
    n_int = int(pools.n_interactions)
    cand = np.sort(np.random.default_rng([3, 1, n_int, 1]).choice(pools.unlabeled, size=10, replace=False))
    lp = model.mc_outputs(pools, cand, 4, seed=int(np.random.default_rng([3, 1, n_int, 2]).integers(0, 2**62)))["log_probs"]
    gen = torch.Generator().manual_seed(int(np.random.default_rng([3, 1, n_int, 3]).integers(0, 2**62)))
    np.testing.assert_array_equal(picks, cand[batchbald_select(lp, 6, 8, generator=gen)])
    others = {tuple(batchbald_select(lp, 6, 8, generator=torch.Generator().manual_seed(g)).tolist()) for g in range(4)}
    assert len(others) > 1  # another generator gives other picks
