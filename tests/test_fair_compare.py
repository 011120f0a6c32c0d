"""Comparisons are fair by construction: every run of a seed starts from the same weights, each seed seeds everything."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import activelearn as al
from activelearn.exceptions import UnknownStrategyError
from activelearn.experiment import compare, make_loop
from activelearn.trainer import TrainConfig

KW: dict[str, Any] = dict(initial=20, budget=10, cycles=2, device="cpu", progress=False, train=TrainConfig(epochs=5, batch_size=32))


def _factory() -> torch.nn.Module:
    return al.backbones.MLP(64, 10, hidden=(32,))


def _first_accuracies(backbone: Any) -> dict[str, list[float]]:
    runs = compare("digits", ["random", "entropy"], seeds=(0, 1), backbone=backbone, **KW)
    return {name: [h.records[0].metrics["accuracy"] for h in hs] for name, hs in runs.items()}


@pytest.mark.parametrize("kind", ["module", "factory", "name"])
def test_cycle0_accuracy_equal_across_strategies_and_differs_across_seeds(kind: str) -> None:
    torch.manual_seed(123)
    module = _factory()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    backbone = {"module": module, "factory": _factory, "name": "mlp"}[kind]
    acc = _first_accuracies(backbone)
    assert acc["random"] == acc["entropy"]  # same seed: same initial set, same initial weights, same training
    assert acc["random"][0] != acc["random"][1]  # another seed: another run
    if kind == "module":  # the module passed in is never trained: every run starts from these weights
        assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())


def test_each_seed_seeds_the_training_config() -> None:
    a = make_loop("digits", "random", seed=0, **KW)
    b = make_loop("digits", "random", seed=1, **KW)
    assert a.history.meta["train_config"]["seed"] == 0 and b.history.meta["train_config"]["seed"] == 1


def test_a_typo_in_a_later_strategy_is_found_before_any_run(tmp_path: Any) -> None:
    with pytest.raises(UnknownStrategyError, match="entropyy"):
        compare("digits", ["random", "entropyy"], seeds=(0,), out_dir=tmp_path, **KW)
    assert not any(tmp_path.iterdir())


def test_mc_dropout_strategies_get_dropout_and_the_same_initial_weights() -> None:
    bald = make_loop("digits", "bald", seed=0, **KW)
    rand = make_loop("digits", "random", seed=0, **KW)
    assert bald.history.meta["backbone"] == "mlp:dropout=0.5" and rand.history.meta["backbone"] == "mlp"
    assert any(isinstance(m, torch.nn.Dropout) for m in bald.model.modules())
    wb = {k: v for k, v in bald.model.backbone.state_dict().items()}
    wr = rand.model.backbone.state_dict()
    assert wb.keys() == wr.keys() and all(torch.equal(wb[k], wr[k]) for k in wb)
