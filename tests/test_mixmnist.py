"""MixMNIST: the ambiguous-digit recipe on a tiny configuration; the full build is slow."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import activelearn as al
from activelearn.datasets import mixmnist
from activelearn.exceptions import DatasetNotFoundError

TINY = dict(vae_epochs=1, vae_train_size=1000, clf_epochs=1, clf_train_size=1000, latent=8, batch=512)


def _raw():
    try:
        return mixmnist._load_raw_mnist(None, False)[:2], al.datasets.notmnist()
    except DatasetNotFoundError:
        pytest.skip("MNIST / notMNIST files not found")


def test_recipe_on_a_tiny_configuration() -> None:
    (img, lab), _ = _raw()
    amb = mixmnist.ambiguous_digits(img[:2000], lab[:2000], 25, seed=3, **TINY)
    assert amb["images"].shape == (25, 28, 28) and amb["images"].dtype == torch.uint8
    assert (amb["major"] != amb["minor"]).all()
    assert ((amb["distinct"] >= 2) & (amb["distinct"] <= 3)).all()
    again = mixmnist.ambiguous_digits(img[:2000], lab[:2000], 10, seed=3, **TINY)
    torch.testing.assert_close(again["images"], amb["images"][:10])  # seeded, and a prefix-consistent stream


def _fake_recipe(images, labels, count, **kwargs):
    """Stand-in for the recipe (tested above): the first ``count`` digits, inverted."""
    return {"images": 255 - images[:count], "major": labels[:count], "minor": (labels[:count] + 1) % 10,
            "distinct": torch.full((count,), 2), "tried": torch.tensor(count)}


def test_bundle_counts_mask_and_cache(tmp_path, monkeypatch) -> None:
    _raw()
    monkeypatch.setattr(mixmnist, "ambiguous_digits", _fake_recipe)
    b = al.datasets.mix_mnist(n_in_task=80, n_ambiguous=20, n_ood=20, cache_dir=tmp_path, recipe=TINY, seed=1)
    assert b.train_x.shape == (120, 1, 28, 28)
    kind = b.meta["kind"]
    assert (np.bincount(kind, minlength=3) == [80, 20, 20]).all()
    np.testing.assert_array_equal(b.meta["in_task"], kind == 0)
    assert len(list(tmp_path.glob("ambiguous-*.pt"))) == 1
    # a second build (any n <= the cached one) reads the cache and never runs the recipe
    monkeypatch.setattr(mixmnist, "ambiguous_digits", lambda *a, **k: pytest.fail("recipe re-run despite the cache"))
    c = al.datasets.mix_mnist(n_in_task=80, n_ambiguous=15, n_ood=20, cache_dir=tmp_path, recipe=TINY, seed=1)
    assert (np.bincount(c.meta["kind"], minlength=3) == [80, 15, 20]).all()
    oracle = al.SimulatedOracle(b.train_y, num_classes=10, in_task=b.meta["in_task"])
    answers = oracle.answer(al.Query(np.arange(120)))
    assert sum(a.in_task for a in answers) == 80


@pytest.mark.slow
def test_full_default_build(tmp_path) -> None:
    _raw()
    b = al.datasets.mix_mnist(cache_dir=tmp_path)
    assert np.bincount(b.meta["kind"]).tolist() == [40_000, 10_000, 10_000]
