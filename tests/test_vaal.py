"""VAAL: selection = lowest discriminator scores; trains through the extension point on any input shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import activelearn as al
from activelearn.backbones import SmallCNN
from activelearn.exceptions import InvalidParameterError
from activelearn.extensions import VAALModule

from conftest import make_setup


def test_selection_is_the_lowest_discriminator_scores() -> None:
    s = make_setup("vaal", seed=1)
    unl = s.pools.unlabeled
    picks = s.strategy.select(s.model, s.pools, 11)
    ext = s.model.extensions["vaal"]
    with torch.no_grad():  # by hand: sigmoid(D(mu(x))) from the module's parts
        mu = ext.encode(s.pools.inputs(unl))[0]
        p = torch.sigmoid(ext.discriminator(mu)).squeeze(1).numpy()
    np.testing.assert_allclose(s.model.outputs(s.pools, unl, "vaal_labeled_prob")["vaal_labeled_prob"].numpy(), p, atol=1e-6)
    order = np.lexsort((unl, p))  # ascending probability of being labeled, ties to the lowest index
    np.testing.assert_array_equal(picks, unl[order[:11]])
    assert p[np.isin(unl, picks)].max() <= p[~np.isin(unl, picks)].min()


def test_vae_and_discriminator_train_but_never_touch_the_task_model() -> None:
    plain, with_vaal = make_setup("entropy", seed=2), make_setup("vaal", seed=2)
    ext = with_vaal.model.extensions["vaal"]
    init = with_vaal.model.engine_state()["extensions_initial"]["vaal"]  # the weights it was built with
    changed = [k for k, v in ext.state_dict().items() if not torch.equal(v, init[k])]
    assert any(k.startswith("encoder") for k in changed) and any(k.startswith("discriminator") for k in changed)
    for (k, a), b in zip(plain.model.backbone.state_dict().items(), with_vaal.model.backbone.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)


def test_discriminator_learns_to_separate_a_shifted_unlabeled_pool() -> None:
    """Labeled samples near 0, unlabeled ones shifted: D must score the unlabeled lower.

    beta = 0.01: with the official beta = 1 and the KL summed over the batch,
    this short run collapses the posterior (mu near 0 for every input) and the
    discriminator stays at 0.5 for all samples (0.509 vs 0.503 measured).
    """
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=g)
    x[40:] += 3.0
    y = np.zeros(200, dtype=np.int64)
    y[::2] = 1
    pools = al.Pools(x, num_classes=2)
    oracle = al.SimulatedOracle(y, num_classes=2)
    pools.record(oracle.answer(al.Query(np.arange(40))), cycle=0)
    pools.cycle = 1
    model = al.ALModel(al.backbones.MLP(6, 2, hidden=(8,)), num_classes=2, device="cpu")
    model.attach(VAALModule(hidden=32, disc_hidden=32, beta=0.01))
    al.Trainer(al.TrainConfig(epochs=60, batch_size=20)).fit(model, pools, cycle=1)
    p = model.outputs(pools, np.arange(200), "vaal_labeled_prob")["vaal_labeled_prob"]
    assert p[:40].mean() > p[40:].mean() + 0.05
    picks = al.strategies.get("vaal", seed=0).select(model, pools, 20)
    assert (picks >= 40).all()


def test_images_work() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 1, 8, 8, generator=g)
    pools = al.Pools(x, num_classes=3)
    oracle = al.SimulatedOracle(np.arange(60) % 3, num_classes=3)
    pools.record(oracle.answer(al.Query(np.arange(12))), cycle=0)
    pools.cycle = 1
    strategy = al.strategies.get("vaal", seed=0, hidden=16, latent_dim=4)
    model = al.ALModel(SmallCNN(1, 3, image_size=8, width=4, hidden=8), num_classes=3, device="cpu")
    for ext in strategy.model_extensions():
        model.attach(ext)
    al.Trainer(al.TrainConfig(epochs=2, batch_size=6)).fit(model, pools, cycle=1)
    picks = strategy.select(model, pools, 5)
    assert picks.size == 5 and pools.unlabeled_mask[picks].all()


def test_bad_parameters_raise() -> None:
    with pytest.raises(InvalidParameterError, match="latent_dim must be a positive int, got 0"):
        al.strategies.get("vaal", latent_dim=0)
    with pytest.raises(InvalidParameterError, match="lr"):
        VAALModule(lr=0.0)


@pytest.mark.parametrize("name, bad", [("lr", float("inf")), ("lr", 0.0), ("beta", float("nan")), ("adversary_weight", -1.0)])
def test_vaal_refuses_non_finite_or_out_of_range_weights(name: str, bad: float) -> None:
    with pytest.raises(al.exceptions.InvalidParameterError, match=f"{name} must be a finite number"):
        al.strategies.get("vaal", **{name: bad})
