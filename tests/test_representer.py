"""Representer values (Yeh et al. 2018) and the IBAL closed form, against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import activelearn as al
from activelearn.exceptions import InvalidParameterError
from activelearn.ops import cross_entropy_logit_grad, ibal_scores, representer_alpha, representer_values, with_bias

from conftest import make_setup


def _fit_regularised_layer(f: torch.Tensor, y: torch.Tensor, lam: float, classes: int) -> torch.Tensor:
    """Theta minimising mean CE + lam ||Theta||^2 (float64, to a tight optimum)."""
    theta = torch.zeros(classes, f.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([theta], lr=1.0, max_iter=500, tolerance_grad=1e-13, tolerance_change=1e-15, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(f @ theta.T, y) + lam * (theta**2).sum()
        loss.backward()
        return loss

    for _ in range(5):
        opt.step(closure)
    return theta.detach()


def test_representer_values_sum_to_the_regularised_layer_output() -> None:
    g = torch.Generator().manual_seed(0)
    n, d, c, lam = 40, 3, 3, 0.05
    f = with_bias(torch.randn(n, d, generator=g, dtype=torch.float64))
    y = torch.randint(c, (n,), generator=g)
    theta = _fit_regularised_layer(f, y, lam, c)
    alpha = representer_alpha(cross_entropy_logit_grad(f @ theta.T, y), lam)
    # Theta* = sum_i alpha_i f_i^T at the optimum
    torch.testing.assert_close(alpha.T @ f, theta, atol=1e-7, rtol=1e-6)
    targets = with_bias(torch.randn(7, d, generator=g, dtype=torch.float64))
    values = representer_values(alpha, f, targets)
    assert values.shape == (7, n, c)
    torch.testing.assert_close(values.sum(dim=1), targets @ theta.T, atol=1e-5, rtol=1e-5)
    # one class at a time gives the same numbers
    torch.testing.assert_close(representer_values(alpha, f, targets, cls=2), values[:, :, 2])


def test_alpha_of_a_hand_computed_gradient() -> None:
    grad = torch.tensor([[0.2, -0.2], [-0.5, 0.5]], dtype=torch.float64)
    alpha = representer_alpha(grad, lam=0.5)  # -grad / (2 * 0.5 * 2)
    torch.testing.assert_close(alpha, -grad / 2.0)
    with pytest.raises(InvalidParameterError, match="lam must be > 0, got 0"):
        representer_alpha(grad, lam=0)


def test_ibal_closed_form_equals_the_explicit_double_sum() -> None:
    g = torch.Generator().manual_seed(1)
    lam, n_unl, n_lab, d, c = 0.01, 6, 9, 4, 3
    p = torch.softmax(torch.randn(n_unl, c, generator=g, dtype=torch.float64), dim=1)
    fu = with_bias(torch.randn(n_unl, d, generator=g, dtype=torch.float64))
    fl = with_bias(torch.randn(n_lab, d, generator=g, dtype=torch.float64))
    explicit = torch.zeros(n_unl, dtype=torch.float64)
    for i in range(n_unl):
        for t in range(n_lab):
            for y in range(c):
                alpha_iy = (1 - p[i, y]) / (2 * lam * n_lab)
                explicit[i] += p[i, y] * alpha_iy * (fu[i] @ fl[t])
    torch.testing.assert_close(ibal_scores(p, fu, fl, lam), explicit)


def test_the_expectation_of_the_whole_alpha_vector_vanishes() -> None:
    """Why METHODS.md reads IBAL per class: E_y[onehot_y - p] = 0 exactly."""
    p = torch.softmax(torch.randn(5, 4, dtype=torch.float64), dim=1)
    expected = sum(p[:, y : y + 1] * (torch.nn.functional.one_hot(torch.tensor(y), 4).double() - p) for y in range(4))
    torch.testing.assert_close(expected, torch.zeros_like(p))


def test_ibal_strategy_picks_the_lowest_scores() -> None:
    s = make_setup("ibal", params={"lam": 0.1})
    unl, lab = s.pools.unlabeled, s.pools.labeled
    out = s.model.outputs(s.pools, unl, ["probs", "embeddings"])
    fl = with_bias(s.model.outputs(s.pools, lab, "embeddings")["embeddings"].double())
    scores = ibal_scores(out["probs"].double(), with_bias(out["embeddings"].double()), fl, 0.1).numpy()
    picks = s.strategy.select(s.model, s.pools, 5)
    assert set(picks.tolist()) == set(unl[np.argsort(scores, kind="stable")[:5]].tolist())


def test_ibal_scores_in_blocks_equal_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """IBAL is scored SCORE_ROWS rows at a time (memory bound): 7-row blocks give the one-pass scores."""
    import activelearn.strategies.ibal as ibal_mod

    s = make_setup("ibal", params={"lam": 0.1})
    unl = s.pools.unlabeled
    whole = s.strategy.score(s.model, s.pools, unl)
    monkeypatch.setattr(ibal_mod, "SCORE_ROWS", 7)
    np.testing.assert_allclose(s.strategy.score(s.model, s.pools, unl), whole, rtol=1e-12, atol=0)
    assert unl.size > 7


def test_ibal_d_distance_blocks_do_not_change_scores(monkeypatch: pytest.MonkeyPatch) -> None:
    """The distance block is capped at DIST_ELEMS // |L| rows (memory bound): a cap of 1 row gives the same scores."""
    import activelearn.strategies.ibal as ibal_mod

    s = make_setup("ibal_d", params={"ae_epochs": 2})
    unl = s.pools.unlabeled
    whole = s.strategy.score(s.model, s.pools, unl)
    monkeypatch.setattr(ibal_mod, "DIST_ELEMS", 1)
    np.testing.assert_allclose(s.strategy.score(s.model, s.pools, unl), whole, rtol=1e-12, atol=0)


def test_ibal_d_trains_its_autoencoder_once_per_pool() -> None:
    s = make_setup("ibal_d", params={"ae_epochs": 2})
    s.strategy.select(s.model, s.pools, 5)
    cache = s.strategy._latent_cache
    z = cache[(s.pools.uid, s.pools.n)]
    s.strategy.select(s.model, s.pools, 5)
    assert cache[(s.pools.uid, s.pools.n)] is z and z.shape == (s.pools.n, 16)


def test_ibal_d_with_a_large_gamma_picks_the_farthest_in_latent_space() -> None:
    s = make_setup("ibal_d", params={"gamma": 1e6, "ae_epochs": 2})
    s.strategy.select(s.model, s.pools, 1)
    unl = s.pools.unlabeled
    d = s.strategy.distance(s.model, s.pools, unl).numpy()
    assert d.max() == pytest.approx(1.0)
    assert s.strategy.select(s.model, s.pools, 3).tolist() == unl[np.argsort(-d, kind="stable")[:3]].tolist()


def test_entropy_d_bad_gamma_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="gamma must be a finite number >= 0, got -1"):
        al.strategies.get("entropy_d", gamma=-1)
