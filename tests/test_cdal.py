"""CDAL-CS: symmetric-KL k-center against hand values and a brute force."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import rel_entr

import activelearn as al
from activelearn.exceptions import InvalidInputError, InvalidParameterError
from activelearn.ops.symkl import symkl_kcenter, symmetric_kl

from conftest import make_setup


def brute_kcenter(p: np.ndarray, labeled: list[int], budget: int) -> list[int]:
    """Pairwise 0.5 KL(a||b) + 0.5 KL(b||a) from scipy, then plain greedy (ties to the lowest row)."""
    kl = rel_entr(p[:, None, :], p[None, :, :]).sum(-1)
    d = 0.5 * (kl + kl.T)
    mind = d[:, labeled].min(1) if labeled else np.full(len(p), np.inf)
    mind[labeled] = -np.inf
    picks: list[int] = []
    while len(picks) < budget:
        j = int(np.argmax(mind))  # numpy: first maximum
        picks.append(j)
        mind = np.minimum(mind, d[:, j])
        mind[picks] = -np.inf
    return picks


def test_symmetric_kl_by_hand() -> None:
    # KL(p||q) = .5 ln(.5/.9) + .5 ln(.5/.1) = 0.5108256; KL(q||p) = .9 ln 1.8 + .1 ln .2 = 0.3680642
    d = symmetric_kl([[0.5, 0.5]], [[0.9, 0.1], [0.5, 0.5]]).numpy()
    np.testing.assert_allclose(d, [[0.5 * (0.5108256 + 0.3680642), 0.0]], atol=1e-6)


def test_kcenter_by_hand() -> None:
    # labeled row 0 is confident in class 0; row 2 is confident in class 1 (farthest), row 1 is
    # uniform (between), row 3 copies row 0.  First pick 2, then 1 (0 and 3 are at distance 0).
    p = np.array([[0.9, 0.1], [0.5, 0.5], [0.1, 0.9], [0.9, 0.1]])
    assert symkl_kcenter(p, 2, labeled=[0]).tolist() == [2, 1]
    assert symkl_kcenter(p, 3, labeled=[0]).tolist() == [2, 1, 3]


@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force(seed: int) -> None:
    r = np.random.default_rng(seed)
    p = r.dirichlet(np.full(4, 0.5), size=50)
    labeled = sorted(r.choice(50, size=8, replace=False).tolist())
    got = symkl_kcenter(p, 15, labeled=labeled, chunk_size=7)
    assert got.tolist() == brute_kcenter(p, labeled, 15)


def test_no_labeled_first_pick_is_seeded() -> None:
    p = np.random.default_rng(0).dirichlet(np.ones(3), size=30)
    first = int(np.random.default_rng(7).integers(30))
    got = symkl_kcenter(p, 5, seed=7)
    assert got[0] == first
    assert got[1:].tolist() == brute_kcenter(p, [first], 4)


def test_ties_go_to_the_lowest_row() -> None:
    p = np.array([[0.8, 0.2], [0.3, 0.7], [0.3, 0.7], [0.8, 0.2]])
    assert symkl_kcenter(p, 1, labeled=[0]).tolist() == [1]


def test_bad_inputs_raise() -> None:
    with pytest.raises(InvalidInputError, match="negative"):
        symkl_kcenter(np.array([[1.2, -0.2], [0.5, 0.5]]), 1)
    with pytest.raises(InvalidParameterError, match="budget=2 exceeds the 1 non-labeled"):
        symkl_kcenter(np.array([[0.5, 0.5], [0.2, 0.8]]), 2, labeled=[0])


def test_strategy_starts_from_the_labeled_set() -> None:
    s = make_setup("cdal", seed=2)
    picks = s.strategy.select(s.model, s.pools, 10)
    unl, lab = s.pools.unlabeled, s.pools.labeled
    idx = np.concatenate([unl, lab])
    p = s.model.outputs(s.pools, idx, "probs")["probs"].double().clamp_min(1e-12).numpy()
    want = brute_kcenter(p, list(range(unl.size, idx.size)), 10)
    assert picks.tolist() == idx[want].tolist()
    assert al.strategies.get_class("cdal").requires == {"probs"}
