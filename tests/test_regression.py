"""Regression end to end: the task decides the loss, labels are never rounded, multi-output targets,
DACS's auxiliary head trained with the task's loss, and the bundled diabetes data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import activelearn as al
from activelearn import datasets as D
from activelearn.datasets import base as dbase
from activelearn.exceptions import DatasetNotFoundError, InvalidInputError, InvalidParameterError
from activelearn.experiment import make_loop
from activelearn.extensions import AuxiliaryHead
from activelearn.model import ForwardOutput
from activelearn.oracle import Query
from activelearn.pools import Answer, Pools
from activelearn.trainer import TrainConfig, Trainer, evaluate, resolve_loss


def _linear_bundle(d_out: int = 1, n: int = 300, seed: int = 0, scale: float = 1.0) -> D.DatasetBundle:
    """y = x @ W (+ small noise), squashed into [0, 1) when ``scale`` < 1 is not asked: targets in [0, 1)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    w = rng.normal(size=(8, d_out)).astype(np.float32)
    y = 1.0 / (1.0 + np.exp(-(x @ w) * scale))  # in (0, 1): the case where cross-entropy was exactly 0
    y = y[:, 0] if d_out == 1 else y
    t = torch.from_numpy
    return D.DatasetBundle(
        name="linear_reg", train_x=t(x[:240]), train_y=t(y[:240].astype(np.float32)), test_x=t(x[240:]),
        test_y=t(y[240:].astype(np.float32)), num_classes=d_out, task="regression",
    )


# ----------------------------------------------------------------------------- the task decides the loss
def test_default_loss_is_auto_and_the_task_resolves_it() -> None:
    assert TrainConfig().loss == "auto"
    assert resolve_loss("auto", "classification") == "cross_entropy"
    assert resolve_loss("auto", "regression") == "mse"
    assert resolve_loss("mse", "regression") == "mse"
    with pytest.raises(InvalidParameterError, match="regression; use loss='mse' or 'auto'"):
        resolve_loss("cross_entropy", "regression")
    with pytest.raises(InvalidParameterError, match="'auto', 'cross_entropy' or 'mse'"):
        TrainConfig(loss="l1")  # type: ignore[arg-type]


def test_regression_in_unit_interval_learns_with_the_default_config() -> None:
    """The issue's case: targets in [0, 1), default TrainConfig. Cross-entropy gave a loss of exactly 0."""
    bundle = _linear_bundle()
    loop = make_loop(bundle, "random", initial=60, budget=60, cycles=2, progress=False, device="cpu", train=TrainConfig(epochs=30, lr=3e-3))
    history = loop.run()
    assert loop.trainer.config.loss == "auto"
    baseline = float(((bundle.test_y - bundle.train_y.mean()) ** 2).mean())  # predicting the mean
    mse = history.metric("mse")
    assert mse[-1] < 0.5 * baseline, (mse, baseline)


def test_cross_entropy_on_a_regression_model_is_refused() -> None:
    bundle = _linear_bundle()
    model = al.ALModel(torch.nn.Linear(8, 1), num_classes=1, task="regression", device="cpu")
    pools = Pools(bundle.train_x, task="regression")
    pools.record([Answer(i, float(bundle.train_y[i])) for i in range(10)])
    with pytest.raises(InvalidParameterError, match="loss='cross_entropy' needs class targets"):
        Trainer(TrainConfig(epochs=1, loss="cross_entropy")).fit(model, pools)


# ----------------------------------------------------------------------------- labels: never rounded
@pytest.mark.parametrize("label", [0.3, 1.7, np.float32(2.5), -0.5])
def test_classification_refuses_non_integral_float_labels(label: float) -> None:
    pools = Pools(torch.zeros(5, 2), num_classes=3)
    with pytest.raises(InvalidInputError, match=r"classification needs an integer class index.*task='regression'"):
        pools.record([Answer(1, 0), Answer(0, label)])
    assert pools.n_labeled == 0 and not pools.log  # refused before any state changed


@pytest.mark.parametrize("label", [True, False, np.bool_(True)])
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_bool_labels_are_refused(label: object, task: str) -> None:
    pools = Pools(torch.zeros(5, 2), task=task)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="is a bool"):
        pools.record([Answer(0, label)])  # type: ignore[arg-type]


def test_integral_float_class_labels_become_ints() -> None:
    pools = Pools(torch.zeros(5, 2), num_classes=3)
    entries = pools.record([Answer(0, 2.0), Answer(1, np.float64(1.0)), Answer(2, np.int64(0))])
    assert [e.label for e in entries] == [2, 1, 0] and all(type(e.label) is int for e in entries)
    assert pools.labels.tolist() == [2, 1, 0] and pools.labels.dtype == np.int64
    with pytest.raises(InvalidInputError, match=r"outside 0\.\.2"):
        pools.record([Answer(3, 3.0)])
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        pools.record([Answer(3, float("nan"))])


def test_regression_labels_scalar_and_multi_output() -> None:
    pools = Pools(torch.zeros(6, 2), task="regression")
    pools.record([Answer(0, 0.25), Answer(1, np.float32(-1.5))])
    assert pools.labels.tolist() == [0.25, -1.5]
    with pytest.raises(InvalidInputError, match="scalars, 2-vectors"):
        pools.record([Answer(2, [1.0, 2.0])])
    multi = Pools(torch.zeros(6, 2), task="regression")
    with pytest.raises(InvalidInputError, match="2-vectors, 3-vectors"):
        multi.record([Answer(0, [1.0, 2.0]), Answer(1, [1.0, 2.0, 3.0])])
    assert multi.n_labeled == 0
    multi.record([Answer(0, [0.5, 1.5]), Answer(3, (2, -1))])
    assert multi.labels.tolist() == [[0.5, 1.5], [2.0, -1.0]]
    assert multi.labels_of([3]).tolist() == [[2.0, -1.0]]
    assert multi.log[1].label == (2.0, -1.0)
    again = Pools(torch.zeros(6, 2), task="regression")
    again.load_state_dict(multi.state_dict())
    assert again.labels.tolist() == [[0.5, 1.5], [2.0, -1.0]]


def test_simulated_oracle_multi_output_and_bool_targets() -> None:
    y = np.arange(12, dtype=np.float64).reshape(6, 2) / 10
    oracle = al.SimulatedOracle(y)
    answers = oracle.answer(Query(np.array([4, 1])))
    assert [a.label for a in answers] == [(0.8, 0.9), (0.2, 0.3)]
    assert oracle.task_kind() == "regression" and oracle.in_task.shape == (6,) and oracle.cost.shape == (6,)
    with pytest.raises(InvalidInputError, match="bools"):
        al.SimulatedOracle(np.array([True, False, True]))
    with pytest.raises(InvalidInputError, match=r"\(N, d\) floats for a d-output regression"):
        al.SimulatedOracle(y, num_classes=3)
    with pytest.raises(InvalidInputError, match="class indices"):
        al.SimulatedOracle(np.array([0.0, 1.5]), num_classes=2)


def test_evaluate_multi_output_mse_is_the_mean_over_samples_and_outputs() -> None:
    net = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.eye(2))
    model = al.ALModel(net, num_classes=2, task="regression", device="cpu")
    x = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    y = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # errors: (0, 2), (-1, -2) -> squares 0, 4, 1, 4 -> mean 2.25
    assert evaluate(model, x, y)["mse"] == pytest.approx(2.25)


@pytest.mark.parametrize("strategy", ["coreset", "dacs", "learning_loss", "dacs+learning_loss"])
def test_multi_output_regression_runs_end_to_end(strategy: str) -> None:
    bundle = _linear_bundle(d_out=3)
    loop = make_loop(bundle, strategy, initial=30, budget=30, cycles=2, progress=False, device="cpu",
                     train=TrainConfig(epochs=3), strategy_params={"n_buckets": 10} if strategy == "dacs" else None)
    history = loop.run()
    assert loop.pools.labels.shape == (60, 3) and np.isfinite(history.metric("mse")).all()
    assert history.records[-1].n_labeled == 60


# ----------------------------------------------------------------------------- DACS's auxiliary head on regression
def test_aux_head_regression_loss_is_weighted_mse_of_a_linear_readout() -> None:
    head = AuxiliaryHead(dim=2, weight=0.5, task="regression")
    head.build(2, [], 1)
    assert head.classes is None and head.regressor is not None
    with torch.no_grad():
        head.proj.weight.copy_(torch.eye(2))
        head.proj.bias.zero_()
        head.regressor.weight.copy_(torch.tensor([[2.0, 0.0]]))
        head.regressor.bias.fill_(1.0)
    out = ForwardOutput(logits=torch.zeros(2, 1), embeddings=torch.tensor([[3.0, 0.0], [0.0, -2.0]]))
    # u = (1, 0), (0, -1); read-out 2*u0 + 1 = 3, 1; targets 1, 2 -> errors 2, -1 -> MSE 2.5; weighted 1.25
    loss = head.training_loss(out, torch.tensor([1.0, 2.0]), 0.0)
    assert float(loss.detach()) == pytest.approx(1.25)
    with pytest.raises(InvalidParameterError, match="task must be"):
        AuxiliaryHead(task="ranking")


def test_dacs_aux_projection_gets_nonzero_gradients_in_regression_training() -> None:
    bundle = _linear_bundle()
    loop = make_loop(bundle, "dacs", initial=40, budget=20, cycles=1, progress=False, device="cpu", train=TrainConfig(epochs=4))
    model = loop.model
    for ext in loop.strategy.model_extensions():  # DACS's own head, attached now so a hook can watch it (the loop reuses it)
        model.attach(ext)
    model.build_extensions(bundle.train_x[:2])
    head = model.extensions["auxiliary"]
    assert head.task == "regression" and head.regressor is not None  # built for the model's task
    norms: list[float] = []
    head.proj.weight.register_hook(lambda g: norms.append(float(g.norm())))
    before = head.proj.weight.detach().clone()
    loop.run()
    assert norms and min(norms) > 0, norms  # every training step reached the projection
    assert not torch.equal(before, head.proj.weight.detach())


def test_dacs_refuses_an_untrained_projection() -> None:
    with pytest.raises(InvalidParameterError, match="aux_weight must be a finite number > 0"):
        al.strategies.get("dacs", aux_weight=0)


@pytest.mark.parametrize("strategy", ["coreset", "dacs", "learning_loss"])
def test_diabetes_test_mse_falls_over_cycles(strategy: str) -> None:
    """Acceptance: on the real diabetes data the test MSE falls as the strategy adds labels (20 -> 100 -> 180)."""
    train = TrainConfig(epochs=30, batch_size=32, lr=1e-3, weight_decay=1e-4)
    history = make_loop("diabetes", strategy, seed=0, initial=20, budget=80, cycles=3, progress=False, device="cpu", train=train).run()
    mse = history.metric("mse")
    assert history.column("n_labeled").tolist() == [20, 100, 180]
    assert mse[1] < mse[0] and mse[2] < mse[0] - 0.1, mse


# ----------------------------------------------------------------------------- diabetes and data-path messages
def test_diabetes_loader() -> None:
    b = D.load("diabetes")
    assert (b.task, b.num_classes, b.input_shape, b.num_train, b.num_test) == ("regression", 1, (10,), 342, 100)
    assert torch.allclose(b.train_x.mean(0), torch.zeros(10), atol=1e-5)
    assert torch.allclose(b.train_x.std(0, unbiased=False), torch.ones(10), atol=1e-4)
    assert abs(float(b.train_y.mean())) < 1e-5 and float(b.train_y.std(unbiased=False)) == pytest.approx(1.0, abs=1e-4)
    raw = D.diabetes(standardize_target=False)
    # the standardised target is the raw one shifted and scaled by the training split's statistics
    assert torch.allclose(b.test_y, (raw.test_y - b.meta["target_mean"]) / b.meta["target_std"], atol=1e-4)
    assert set(b.meta["train_index"]).isdisjoint(b.meta["test_index"])
    assert not torch.equal(D.diabetes(seed=1).test_y, b.test_y) and torch.equal(D.diabetes(seed=0).test_y, b.test_y)
    with pytest.raises(InvalidParameterError, match="test_size"):
        D.diabetes(test_size=0.2)  # type: ignore[arg-type]


def test_installed_package_lists_only_folders_that_mean_something(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACTIVELEARN_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    fake_root = tmp_path / "lib" / "python3"  # what parents[3] is for a pip-installed package
    monkeypatch.setattr(dbase, "_REPO_ROOT", fake_root)
    assert dbase._source_checkout() is None
    with pytest.raises(DatasetNotFoundError) as ei:
        D.mnist()
    msg = str(ei.value)
    assert str(fake_root.parent / "shared") not in msg  # <site-packages>/../../shared/data: never a real place
    assert str(tmp_path / "data" / "mnist") in msg
    assert "--download" in msg and "download=True" in msg and "--data-root" in msg


def test_multi_output_labels_survive_a_checkpoint(tmp_path: Path) -> None:
    bundle = _linear_bundle(d_out=3)
    kwargs = dict(initial=30, budget=30, cycles=2, progress=False, device="cpu", train=TrainConfig(epochs=2))
    loop = make_loop(bundle, "coreset", out_dir=tmp_path, **kwargs)  # type: ignore[arg-type]
    loop.run()
    again = make_loop(bundle, "coreset", **kwargs)  # type: ignore[arg-type]
    again.restore(tmp_path)
    assert again.pools.labels.shape == (60, 3)
    assert np.array_equal(again.pools.labels, loop.pools.labels)
    assert np.allclose(again.pools.labels, bundle.train_y[loop.pools.labeled].numpy())
