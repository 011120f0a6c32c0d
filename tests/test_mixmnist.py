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


def test_ink_histogram_hand_values() -> None:
    img = torch.tensor([[0, 10, 63, 64], [191, 192, 255, 0]], dtype=torch.uint8)
    np.testing.assert_allclose(mixmnist.ink_histogram(img), [2 / 6, 2 / 6, 2 / 6])
    with pytest.raises(al.exceptions.InvalidInputError, match="no inked pixel"):
        mixmnist.ink_histogram(torch.zeros(3, 4, dtype=torch.uint8))


def test_intensity_map_is_monotone_and_matches_the_real_histogram() -> None:
    gen = torch.Generator().manual_seed(0)
    blurry = torch.rand(200, 784, generator=gen) ** 3  # decoder-like: mostly faint
    real = (torch.rand(200, 784, generator=gen) > 0.8).to(torch.uint8) * 255  # binary strokes
    table = mixmnist.intensity_map(blurry, real)
    assert table.dtype == torch.uint8 and (table[1:] >= table[:-1]).all()
    mapped = table[(blurry * (len(table) - 1)).round().long()]
    # real: 20% of the pixels at 255, the rest 0; the mapped generated pixels must have about the same share
    assert abs(float((mapped == 255).float().mean()) - float((real == 255).float().mean())) < 0.01
    assert set(mapped.unique().tolist()) <= {0, 255}


def test_match_ink_keeps_the_stroke_and_takes_the_real_profile() -> None:
    img = torch.tensor([[0, 5, 9, 0, 7, 200]], dtype=torch.uint8)
    real_inked = torch.arange(1, 256, dtype=torch.uint8)  # uniform quantile function over 1..255
    out = mixmnist.match_ink(img, real_inked)
    assert out.dtype == torch.uint8 and out.shape == img.shape
    np.testing.assert_array_equal(out[0] == 0, img[0] == 0)  # the same pixels are inked
    # 4 inked pixels ranked 5 < 7 < 9 < 200 get the quantiles at 1/8, 3/8, 5/8, 7/8 of 1..255 (positions 32, 95, 159, 222 of 254)
    q = real_inked[[round(f * 254) for f in (1 / 8, 3 / 8, 5 / 8, 7 / 8)]]
    assert out[0].tolist() == [0, int(q[0]), int(q[2]), 0, int(q[1]), int(q[3])]


def test_calibrated_recipe_has_mnist_stroke_statistics() -> None:
    (img, lab), _ = _raw()
    real = mixmnist.ink_histogram(img[:2000])
    ink = mixmnist.ambiguous_digits(img[:2000], lab[:2000], 40, seed=3, **TINY)
    none = mixmnist.ambiguous_digits(img[:2000], lab[:2000], 40, seed=3, calibrate="none", **TINY)
    # calibrated: every band within 3 points of MNIST's; uncalibrated: mid-gray far above it
    assert np.abs(mixmnist.ink_histogram(ink["images"]) - real).max() < 0.03
    assert mixmnist.ink_histogram(none["images"])[1] > real[1] + 0.2
    with pytest.raises(al.exceptions.InvalidParameterError, match="calibrate"):
        mixmnist.ambiguous_digits(img[:100], lab[:100], 1, calibrate="sharp", **TINY)


def test_cache_key_changes_with_the_recipe_version(tmp_path, monkeypatch) -> None:
    _raw()
    monkeypatch.setattr(mixmnist, "ambiguous_digits", _fake_recipe)
    al.datasets.mix_mnist(n_in_task=20, n_ambiguous=5, n_ood=5, cache_dir=tmp_path, seed=1)
    monkeypatch.setattr(mixmnist, "RECIPE_VERSION", mixmnist.RECIPE_VERSION + 1)
    al.datasets.mix_mnist(n_in_task=20, n_ambiguous=5, n_ood=5, cache_dir=tmp_path, seed=1)
    assert len(list(tmp_path.glob("ambiguous-*.pt"))) == 2  # an older recipe's cached images are never served
