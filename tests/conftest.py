"""Shared fixtures: a small synthetic pool and a quickly trained model for any strategy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

import activelearn as al
from activelearn.backbones import MLP


@pytest.fixture
def single_thread():  # type: ignore[no-untyped-def]
    """One torch thread for the test (tiny tensors: OpenMP threading only adds overhead, a lot on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@dataclass
class Setup:
    model: al.ALModel
    pools: al.Pools
    oracle: al.SimulatedOracle
    strategy: al.strategies.Strategy
    targets: np.ndarray


def blobs(n: int = 240, d: int = 16, classes: int = 3, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Gaussian blobs: n points in d dims, ``classes`` clusters of different spreads."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centers = rng.normal(0, 3, size=(classes, d))
    spread = np.linspace(0.5, 1.5, classes)[y][:, None]
    x = centers[y] + rng.normal(size=(n, d)) * spread
    return torch.tensor(x, dtype=torch.float32), y.astype(np.int64)


def features_of_kind(rng: np.random.Generator, n: int, d: int, kind: str) -> np.ndarray:
    """Adversarial feature rows (unscaled): ``normal``, ``duplicates`` (a few distinct points,
    each repeated), ``constant`` or ``zeros``."""
    if kind == "constant":
        return np.full((n, d), 0.5)
    if kind == "zeros":
        return np.zeros((n, d))
    x = rng.normal(size=(n, d))
    return x[rng.integers(0, max(1, n // 4), size=n)] if kind == "duplicates" else x


def make_setup(
    name: str,
    *,
    seed: int = 0,
    n: int = 240,
    n_labeled: int = 30,
    targets: np.ndarray | None = None,
    params: dict | None = None,
    epochs: int = 3,
) -> Setup:
    """Pools with ``n_labeled`` labeled samples, a model trained on them with the
    strategy's extensions attached, and the strategy built with ``seed``."""
    x, y = blobs(n, seed=0)
    if targets is not None:
        y = targets
    takes_seed = "+" in name or "seed" in al.strategies.get_class(name)._param_names()
    strategy = al.strategies.get(name, **({"seed": seed} if takes_seed else {}), **(params or {}))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # MC-dropout strategies (BALD, BatchBALD) declare needs_dropout: give them a backbone with dropout
        drop = any(getattr(al.strategies.get_class(part), "needs_dropout", False) for part in name.split("+"))
        net = MLP(16, 3, hidden=(32, 16), dropout=0.5 if drop else 0.0)
    model = al.ALModel(net, num_classes=3, device="cpu", seed=seed)
    for ext in strategy.model_extensions():
        model.attach(ext)
    pools = al.Pools(x, num_classes=3)
    oracle = al.SimulatedOracle(y, num_classes=3)
    initial = np.random.default_rng(123).choice(n, size=n_labeled, replace=False)
    pools.record(oracle.answer(al.Query(initial)), cycle=0)
    pools.cycle = 1
    trainer = al.Trainer(al.TrainConfig(epochs=epochs, batch_size=16, seed=seed))
    trainer.fit(model, pools, cycle=1)
    return Setup(model, pools, oracle, strategy, y)


@pytest.fixture
def digits_bundle() -> al.datasets.DatasetBundle:
    return al.datasets.digits()
