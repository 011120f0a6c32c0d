"""End-to-end loop on digits, the loop's checks of selections, and the model wrapper."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import activelearn as al
from activelearn.exceptions import InvalidParameterError, SelectionError
from activelearn.experiment import make_loop


def test_three_cycle_loop_on_digits_learns_and_books_add_up(tmp_path) -> None:
    loop = make_loop("digits", "entropy", initial=30, budget=30, cycles=3, seed=0, progress=False, out_dir=tmp_path)
    history = loop.run()
    acc = history.metric("accuracy")
    assert len(history) == 3
    assert acc[-1] > acc[0]
    pools = loop.pools
    assert pools.n_labeled + pools.n_unlabeled + pools.n_rejected == pools.n
    assert len(pools.log) == pools.n_interactions == 30 + 30 * 2
    assert pools.total_cost == pytest.approx(sum(a.cost for a in pools.log))
    assert [r.n_labeled for r in history.records] == [30, 60, 90]
    assert [r.interactions for r in history.records] == [30, 60, 90]
    assert history.records[-1].selected == []
    assert len(history.records[0].selected) == 30
    assert loop.oracle.asked == [e.index for e in pools.log]  # each sample asked once
    saved = json.loads((tmp_path / "history.json").read_text())
    assert len(saved["records"]) == 3
    assert al.History.load_json(tmp_path / "history.json").metric("accuracy").tolist() == acc.tolist()
    assert (tmp_path / "history.csv").read_text().count("\n") == 4


class _Bad(al.strategies.Strategy):
    def __init__(self, mode: str) -> None:
        self.mode = mode

    def select(self, model, pools, budget):
        u = pools.unlabeled
        if self.mode == "dup":
            return np.array([u[0]] * budget)
        if self.mode == "short":
            return u[: budget - 1]
        return np.concatenate([pools.labeled[:1], u[: budget - 1]])


@pytest.mark.parametrize("mode, message", [("dup", "duplicate"), ("short", "expected exactly 5"), ("labeled", "not in the unlabeled pool")])
def test_loop_rejects_invalid_selections(mode: str, message: str) -> None:
    loop = make_loop("digits", _Bad(mode), initial=20, budget=5, cycles=2, progress=False, train=al.TrainConfig(epochs=1))
    with pytest.raises(SelectionError, match=message):
        loop.run()


def _digits_regression() -> al.datasets.DatasetBundle:
    """Digits with the class index as a regression target (MSE task)."""
    bundle = al.datasets.digits()
    return al.datasets.DatasetBundle(
        name="digits_reg", train_x=bundle.train_x, train_y=bundle.train_y.float(), test_x=bundle.test_x,
        test_y=bundle.test_y.float(), num_classes=1, task="regression", input_shape=bundle.input_shape,
    )


def test_loop_checks_the_strategy_needs_against_the_model() -> None:
    reg = _digits_regression()
    loop = make_loop(reg, "entropy", initial=20, budget=5, cycles=2, progress=False, train=al.TrainConfig(epochs=1, loss="mse"))
    with pytest.raises(InvalidParameterError, match=r"needs model outputs \['probs'\]"):
        loop.run()


def test_regression_loop_with_a_task_agnostic_strategy() -> None:
    reg = _digits_regression()
    history = make_loop(reg, "coreset", initial=40, budget=40, cycles=3, progress=False, train=al.TrainConfig(epochs=30, loss="mse")).run()
    mse = history.metric("mse")
    assert np.isfinite(mse).all() and mse[-1] < mse[0]


def test_outputs_are_cached_until_the_model_changes() -> None:
    loop = make_loop("digits", "entropy", initial=20, budget=5, cycles=1, progress=False, train=al.TrainConfig(epochs=1))
    loop.run()
    model, pools = loop.model, loop.pools
    calls = []
    handle = model.backbone.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    idx = pools.unlabeled[:50]
    a = model.outputs(pools, idx, ["probs", "embeddings"])
    b = model.outputs(pools, idx[::-1], ["probs"])
    assert sum(calls) == 50  # second call served from the cache
    torch.testing.assert_close(a["probs"].flip(0), b["probs"])
    model.mark_trained()
    model.outputs(pools, idx, "probs")
    assert sum(calls) == 100
    handle.remove()
    assert torch.allclose(a["probs"].sum(1), torch.ones(50))
    assert a["embeddings"].shape == (50, model.backbone.embedding_dim)


def test_stage_features_are_served_pooled() -> None:
    from activelearn.backbones import SmallCNN

    net = SmallCNN(in_channels=1, num_classes=10, image_size=28)
    model = al.ALModel(net, num_classes=10, device="cpu")
    pools = al.Pools(torch.randn(6, 1, 28, 28))
    out = model.outputs(pools, np.arange(6), [f"stage{i}" for i in range(len(net.stage_names))])
    assert all(v.ndim == 2 and v.shape[0] == 6 for v in out.values())


def test_history_records_the_run_environment() -> None:
    import platform

    import torch

    from activelearn.environment import run_environment

    env = run_environment("cpu")
    assert env["torch"] == torch.__version__ and env["python"] == platform.python_version()
    assert env["device"] == "cpu" and env["torch_threads"] == torch.get_num_threads()
    assert env["git_commit"] is None or len(env["git_commit"]) == 40
    loop = al.experiment.make_loop("digits", "random", cycles=1, initial=20, budget=10, device="cpu", progress=False)
    assert loop.history.meta["environment"] == env
