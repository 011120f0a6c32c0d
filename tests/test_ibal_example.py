"""The IBAL example's Bayes accuracy and its D-only ablation strategy."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import torch

import activelearn as al

_PATH = Path(__file__).resolve().parents[1] / "examples" / "ibal_synthetic.py"
_spec = importlib.util.spec_from_file_location("ibal_synthetic", _PATH)
assert _spec is not None and _spec.loader is not None
ex = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ex)


def test_bayes_accuracy_matches_the_two_gaussian_closed_form() -> None:
    # two classes, equal priors, centers 2 apart, spread 1: Bayes accuracy Phi(1) = 0.8413
    got = ex.bayes_accuracy([[0.0, 0.0], [2.0, 0.0]], 1.0, [1, 1], n=200_000)
    phi1 = 0.5 * (1 + math.erf(1 / math.sqrt(2)))
    assert abs(got["accuracy"] - phi1) < 0.004
    assert abs(got["balanced_accuracy"] - phi1) < 0.004


def test_bayes_accuracy_uses_the_priors() -> None:
    # 9:1 priors, centers 1 apart: the prior-weighted rule is at least the always-majority 0.9; the
    # equal-prior rule's recall is Phi(0.5) = 0.6915 for each class, hence its balanced accuracy
    got = ex.bayes_accuracy([[0.0, 0.0], [1.0, 0.0]], 1.0, [9, 1], n=200_000)
    assert got["accuracy"] > 0.9
    assert abs(got["balanced_accuracy"] - 0.5 * (1 + math.erf(0.5 / math.sqrt(2)))) < 0.006


def test_d_only_picks_the_points_farthest_from_the_labeled_set() -> None:
    x = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [1.0, 1.0], [-4.0, 3.0]])
    y = torch.tensor([0, 0, 1, 1, 0])
    data = al.datasets.DatasetBundle(name="toy", train_x=x, train_y=y, test_x=x, test_y=y, num_classes=2, input_shape=(2,))
    loop = al.experiment.make_loop(data, ex.DistanceOnly(seed=0, latent_dim=2, ae_epochs=1), backbone="mlp",
                                   initial=[0], budget=2, cycles=2, seed=0, progress=False, device="cpu",
                                   train=al.TrainConfig(epochs=1, batch_size=2))
    h = loop.run()
    strat = loop.strategy
    z = strat.latents(loop.model, loop.pools)
    d = torch.cdist(z.double(), z[[0]].double()).squeeze(1).numpy()
    expected = sorted(np.argsort(-d[1:], kind="stable")[:2] + 1)
    assert sorted(h.records[0].selected) == [int(i) for i in expected]
