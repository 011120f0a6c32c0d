"""BALD and BatchBALD: hand-computed scores, the batchbald-redux reference, the strategies."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import activelearn as al
from activelearn.exceptions import InvalidParameterError
from activelearn.mc_dropout import bald_scores
from activelearn.ops.batchbald import conditional_entropies
from activelearn.ops.batchbald import joint_entropies as _joint_entropies
from activelearn.strategies.bald import batchbald_select

from conftest import make_setup


def _lp(rows: list[list[list[float]]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64).log()


def _h(*p: float) -> float:
    return -sum(q * math.log(q) for q in p if q > 0)


def test_bald_hand_computed() -> None:
    # U=3 points, S=2 samples, C=2 classes
    lp = _lp([
        [[0.9, 0.1], [0.1, 0.9]],  # samples disagree: mean (0.5, 0.5)
        [[0.5, 0.5], [0.5, 0.5]],  # uncertain but agreeing: no information about w
        [[0.8, 0.2], [0.6, 0.4]],
    ])
    want = [
        math.log(2) - _h(0.9, 0.1),  # 0.3681
        0.0,
        _h(0.7, 0.3) - 0.5 * (_h(0.8, 0.2) + _h(0.6, 0.4)),  # 0.0227
    ]
    got = bald_scores(lp)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)
    assert got.argmax() == 0 and got[1] < got[2]  # entropy alone would rank point 1 first


def _duplicates() -> torch.Tensor:
    """Rows 0 and 1 identical (highest BALD), row 2 a bit lower and independent of them."""
    a = [[0.95, 0.05], [0.05, 0.95], [0.95, 0.05], [0.05, 0.95]]
    b = [[0.9, 0.1], [0.9, 0.1], [0.1, 0.9], [0.1, 0.9]]
    c = [[0.6, 0.4], [0.5, 0.5], [0.6, 0.4], [0.5, 0.5]]
    return _lp([a, a, b, c])


def _pair_mi(lp: torch.Tensor, i: int, j: int) -> float:
    """I[y_i, y_j; w] by hand: joint over the MC samples minus the two conditional entropies."""
    pi, pj = lp[i].exp(), lp[j].exp()
    k = pi.shape[0]
    joint = torch.einsum("ka,kb->ab", pi, pj) / k
    cond = -(pi * pi.log()).sum() / k - (pj * pj.log()).sum() / k
    return float(-(joint * joint.log()).sum() - cond)


def test_batchbald_avoids_the_duplicate_bald_takes() -> None:
    lp = _duplicates()
    bald = bald_scores(lp)
    assert bald[0] == bald[1] > bald[2]  # top-2 BALD = the two copies
    mis = {j: _pair_mi(lp, 0, j) for j in (1, 2, 3)}
    assert max(mis, key=mis.get) == 2 and mis[2] > mis[1] + 0.05
    assert batchbald_select(lp, 2, 10_000).tolist() == [0, 2]
    # the joint entropies behind it: one picked row enumerated exactly
    exact = _joint_entropies(lp[0].exp().t().contiguous(), lp.exp(), 2**20)
    for j in (1, 2, 3):
        cond = float(-(lp[j].exp() * lp[j]).sum() / 4 - (lp[0].exp() * lp[0]).sum() / 4)
        assert abs(float(exact[j]) - cond - mis[j]) < 1e-12


def test_joint_entropy_chunking_does_not_change_scores() -> None:
    g = torch.Generator().manual_seed(0)
    lp = torch.log_softmax(torch.randn(40, 6, 4, generator=g, dtype=torch.float64), -1)
    full = batchbald_select(lp, 6, 50, generator=torch.Generator().manual_seed(1), max_elements=2**24)
    tiny = batchbald_select(lp, 6, 50, generator=torch.Generator().manual_seed(1), max_elements=1)
    np.testing.assert_array_equal(full, tiny)
    assert batchbald_select(lp, 1, 50)[0] == int(bald_scores(lp).argmax())


@pytest.mark.parametrize("n_configs,batch,resample", [(10_000, 5, False), (30, 8, True), (200, 10, True)])
def test_batchbald_matches_batchbald_redux(n_configs: int, batch: int, resample: bool) -> None:
    """Same picks as batchbald_redux on fixed log-probabilities, exact (C**n <= M) and sampled regimes.

    In the sampled regime batchbald_redux redraws every configuration at each
    step (``resample=True`` does the same): both draw with torch.multinomial,
    batchbald_redux from the global RNG, ours from a generator, seeded alike.
    The lazy greedy (stale gains as bounds) must not change a pick.
    """
    bb = pytest.importorskip("batchbald_redux.batchbald")
    g = torch.Generator().manual_seed(0)
    lp = torch.log_softmax(torch.randn(60, 8, 3, generator=g, dtype=torch.float64) * 2, dim=-1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        ref = bb.get_batchbald_batch(lp.clone(), batch, n_configs, dtype=torch.double)
    for lazy in (True, False):
        ours = batchbald_select(lp, batch, n_configs, generator=torch.Generator().manual_seed(5), lazy=lazy, resample=resample)
        assert ours.tolist() == list(ref.indices)
    assert 3 ** (batch - 1) > n_configs or n_configs == 10_000


def _sampled_log_joint(probs: torch.Tensor, per: int, seed: int) -> torch.Tensor:
    """Configurations of the rows of ``probs`` (n x K x C) drawn ``per`` times under each MC sample, written out by hand."""
    n, k, c = probs.shape
    gen = np.random.default_rng(seed)
    rows = []
    for kd in range(k):
        labels = np.stack([gen.choice(c, size=per, p=probs[j, kd].numpy() / probs[j, kd].sum().item()) for j in range(n)])  # n x per
        rows.append(sum(probs[j][:, labels[j]].log() for j in range(n)).t())  # per x K: log P(config | w_k)
    return torch.cat(rows)


def test_sampled_conditional_entropy_estimates_the_exact_one() -> None:
    """Kirsch et al.'s importance-sampled estimate, in our chain-rule form, against exact enumeration (C**n = 243)."""
    g = torch.Generator().manual_seed(3)
    probs = torch.softmax(torch.randn(12, 8, 3, generator=g, dtype=torch.float64) * 2, dim=-1)
    picked, rest = probs[:5], probs[5:]
    joint = torch.ones((1, 8), dtype=torch.float64)
    for j in range(5):  # exact M x K table, configurations enumerated
        joint = (joint.t()[:, :, None] * picked[j][:, None, :]).reshape(8, -1).t()
    q = joint.mean(1)
    exact = _joint_entropies(joint, rest) - float(-(q * q.log()).sum())  # H[y_x | picked]
    est = conditional_entropies(_sampled_log_joint(picked, 2000, 0), rest)
    np.testing.assert_allclose(est.numpy(), exact.numpy(), atol=0.01)
    assert float(exact.max() - exact.min()) > 0.15  # the rows differ by far more than the tolerance
    # collapsed configurations (posterior on one MC sample) contribute H[p_k(x)] of that sample
    one_hot = torch.full((8, 8), -1e4, dtype=torch.float64).fill_diagonal_(0.0).repeat_interleave(torch.arange(1, 9), dim=0)
    want = (-(rest * rest.log()).sum(2) * torch.arange(1, 9) / 36).sum(1)
    np.testing.assert_allclose(conditional_entropies(one_hot, rest).numpy(), want.numpy(), rtol=1e-12)


def test_batchbald_large_budget_sampled_regime() -> None:
    """b = 40 from 120 rows, C = 4, M = 64: sampled from the 4th pick on, configurations extended one point a step.

    The lazy greedy gives the full greedy's picks; the first picks are the
    exact regime's; the batch avoids the duplicated rows that top-b BALD takes.
    """
    g = torch.Generator().manual_seed(7)
    lp = torch.log_softmax(torch.randn(120, 6, 4, generator=g, dtype=torch.float64) * 2, dim=-1)
    lp[60:] = lp[:60]  # every row twice: top-b BALD takes both copies of the best rows
    lazy = batchbald_select(lp, 40, 64, generator=torch.Generator().manual_seed(1))
    full = batchbald_select(lp, 40, 64, generator=torch.Generator().manual_seed(1), lazy=False)
    np.testing.assert_array_equal(lazy, full)
    assert np.unique(lazy).size == 40
    exact = batchbald_select(lp, 3, 64)
    np.testing.assert_array_equal(lazy[:3], exact)
    top = np.argsort(-bald_scores(lp).numpy(), kind="stable")[:5]
    assert np.unique(top % 60).size < 5  # BALD's top 5 hold a duplicate pair
    assert np.unique(lazy[:5] % 60).size == 5  # BatchBALD's first 5 hold none


def test_bald_strategy_scores_are_mc_bald() -> None:
    s = make_setup("bald", seed=2)
    cand = s.pools.unlabeled
    picks = s.strategy.select(s.model, s.pools, 9)
    seed = int(s.strategy.rng(s.pools, 2).integers(0, 2**62))
    lp = s.model.mc_outputs(s.pools, cand, s.strategy.n_samples, seed=seed)["log_probs"]
    scores = bald_scores(lp).numpy()
    np.testing.assert_array_equal(picks, al.strategies.top_k(cand, scores, 9))
    small = al.strategies.get("bald", seed=2, chunk=7)
    # chunk=7 runs the forward passes on other batch sizes: equal up to float32 rounding (BLAS threads)
    np.testing.assert_allclose(small.score(s.model, s.pools, cand), scores, rtol=1e-5, atol=1e-6)


def test_batchbald_strategy_runs_the_greedy_on_mc_samples() -> None:
    s = make_setup("batchbald", seed=2, params={"n_samples": 8, "n_configs": 100})
    cand = s.pools.unlabeled
    picks = s.strategy.select(s.model, s.pools, 6)
    seed = int(s.strategy.rng(s.pools, 2).integers(0, 2**62))
    lp = s.model.mc_outputs(s.pools, cand, 8, seed=seed)["log_probs"]
    gen = torch.Generator().manual_seed(int(s.strategy.rng(s.pools, 3).integers(0, 2**62)))
    np.testing.assert_array_equal(picks, cand[batchbald_select(lp, 6, 100, generator=gen)])


@pytest.mark.parametrize("name", ["bald", "batchbald"])
def test_without_dropout_raises_with_fix(name: str) -> None:
    s = make_setup("entropy")  # a model built without dropout
    strategy = al.strategies.get(name, seed=0)
    with pytest.raises(InvalidParameterError, match="build the backbone with dropout"):
        strategy.select(s.model, s.pools, 5)
