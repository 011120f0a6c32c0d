"""BADGE: the factorised k-means++ against a brute force that forms the gradient embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import activelearn as al
from activelearn.exceptions import InvalidInputError, InvalidParameterError
from activelearn.ops.badge import badge_kmeanspp, d2_draw, gradient_factors

from conftest import make_setup


def brute_badge(probs: np.ndarray, emb: np.ndarray, budget: int, rng: np.random.Generator, first: str = "max_norm") -> list[int]:
    """k-means++ on explicitly formed g = (p - onehot(argmax p)) outer z, U x (C*d)."""
    n, c = probs.shape
    onehot = np.eye(c)[probs.argmax(1)]
    g = ((probs - onehot)[:, :, None] * emb[:, None, :]).reshape(n, -1)
    picks = [int(np.argmax((g * g).sum(1)))] if first == "max_norm" else [int(rng.integers(n))]
    chosen = np.zeros(n, dtype=bool)
    chosen[picks[0]] = True
    mind = np.full(n, np.inf)
    while len(picks) < budget:
        mind = np.minimum(mind, ((g - g[picks[-1]]) ** 2).sum(1))
        w = np.where(chosen, 0.0, mind)
        j = d2_draw(w, rng, chosen)
        picks.append(j)
        chosen[j] = True
    return picks


def _data(seed: int, n: int = 40, c: int = 4, d: int = 6) -> tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(seed)
    logits = r.normal(size=(n, c)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return p, r.normal(size=(n, d))


def test_gradient_factor_by_hand() -> None:
    a = gradient_factors(torch.tensor([[0.7, 0.3], [0.2, 0.8]], dtype=torch.float64))
    np.testing.assert_allclose(a.numpy(), [[-0.3, 0.3], [0.2, -0.2]])


class _FixedRng:
    def __init__(self, u: float) -> None:
        self.u = u

    def random(self) -> float:
        return self.u


def test_d2_draw_by_hand() -> None:
    w = np.array([0.0, 1.0, 3.0])  # cdf 0, 1, 4
    none = np.zeros(3, dtype=bool)
    assert d2_draw(w, _FixedRng(0.2), none) == 1  # u = 0.8
    assert d2_draw(w, _FixedRng(0.3), none) == 2  # u = 1.2
    assert d2_draw(w, _FixedRng(0.0), none) == 1  # the zero-weight row is never drawn
    assert d2_draw(np.array([0.0, 0.0, 2.0]), _FixedRng(0.0), none) == 2


def test_d2_draw_all_zero_is_uniform_over_unchosen() -> None:
    chosen = np.array([True, False, True, False])
    got = {d2_draw(np.zeros(4), np.random.default_rng(s), chosen) for s in range(30)}
    assert got == {1, 3}


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("first", ["max_norm", "random"])
def test_matches_brute_force(seed: int, first: str) -> None:
    p, z = _data(seed)
    want = brute_badge(p, z, 12, np.random.default_rng(seed), first)
    got = badge_kmeanspp(p, z, 12, seed=np.random.default_rng(seed), first=first, chunk_size=7)
    assert got.tolist() == want


def test_float32_embeddings_agree_with_float64() -> None:
    p, z = _data(11, n=60)
    a = badge_kmeanspp(p, z, 10, seed=5)
    b = badge_kmeanspp(p.astype(np.float32), z.astype(np.float32), 10, seed=5, chunk_size=16)
    assert a.tolist() == b.tolist()


def test_first_pick_is_largest_gradient() -> None:
    p = np.array([[0.99, 0.01], [0.5, 0.5], [0.6, 0.4]])
    z = np.array([[10.0], [1.0], [1.0]])
    # ||g||^2 = ||a||^2 z^2: 2e-4 * 100 = 0.02, 0.5, 0.32
    assert badge_kmeanspp(p, z, 1, seed=0).tolist() == [1]


def test_duplicates_of_a_center_are_not_drawn_while_others_remain() -> None:
    # rows 0-3 coincide: once one of them is a center the others weigh zero, so exactly one is picked
    p = np.array([[0.6, 0.4]] * 4 + [[0.5, 0.5], [0.4, 0.6]])
    z = np.array([[1.0]] * 4 + [[3.0], [-2.0]])
    for s in range(10):
        picks = badge_kmeanspp(p, z, 3, seed=s)
        assert picks[0] == 4 and 5 in picks and np.sum(picks <= 3) == 1


def test_bad_inputs_raise() -> None:
    p, z = _data(0, n=5)
    with pytest.raises(InvalidInputError, match="5 rows but embeddings has 4"):
        badge_kmeanspp(p, z[:4], 2)
    z_nan = z.copy()
    z_nan[2, 1] = np.nan
    with pytest.raises(InvalidInputError, match="NaN or Inf in 1 row"):
        badge_kmeanspp(p, z_nan, 2, chunk_size=2)
    with pytest.raises(InvalidParameterError, match="budget=6 exceeds the 5 rows"):
        badge_kmeanspp(p, z, 6)
    with pytest.raises(InvalidParameterError, match="first must be one of"):
        badge_kmeanspp(p, z, 2, first="uniform")


def test_strategy_uses_unlabeled_outputs_and_its_seed() -> None:
    s = make_setup("badge", seed=4)
    picks = s.strategy.select(s.model, s.pools, 9)
    unl = s.pools.unlabeled
    out = s.model.outputs(s.pools, unl, ["probs", "embeddings"])
    want = brute_badge(out["probs"].double().numpy(), out["embeddings"].double().numpy(), 9, s.strategy.rng(s.pools))
    assert picks.tolist() == unl[want].tolist()
    assert al.strategies.get_class("badge").requires == {"probs", "embeddings"}
