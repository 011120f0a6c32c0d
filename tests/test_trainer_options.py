"""TrainConfig.label_smoothing and TrainConfig.undersample_rejected (the MixMNIST comparative-method schedule)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import activelearn as al
from activelearn.backbones import MLP
from activelearn.exceptions import InvalidParameterError
from activelearn.pools import Answer
from activelearn.steps import ParallelStep, StepBatch, StepLoss, main_loss
from activelearn.trainer import _training_set

from conftest import blobs


# ----------------------------------------------------------------------------- label smoothing
def test_main_loss_smoothing_equals_the_hand_computed_value() -> None:
    # p = softmax([ln 2, 0, 0]) = (1/2, 1/4, 1/4): -log p = (ln2, 2 ln2, 2 ln2), mean_k -log p_k = 5/3 ln2
    logits = torch.tensor([[math.log(2.0), 0.0, 0.0], [math.log(2.0), 0.0, 0.0]])
    y = torch.tensor([0, 1])
    # target 0: 0.9 ln2 + 0.1 * 5/3 ln2 = 32/30 ln2; target 1: 0.9 * 2 ln2 + 0.1 * 5/3 ln2 = 59/30 ln2; mean 91/60 ln2
    got = main_loss("cross_entropy", logits, y, 0.1)
    assert float(got) == pytest.approx(91 / 60 * math.log(2.0), rel=1e-6)
    assert float(main_loss("cross_entropy", logits, y)) == pytest.approx(1.5 * math.log(2.0), rel=1e-6)  # (ln2 + 2 ln2) / 2
    assert torch.equal(main_loss("cross_entropy", logits, y, 0.0), F.cross_entropy(logits, y))  # the default: exactly the old loss
    # MSE ignores it
    reg = torch.tensor([[0.5], [2.0]])
    assert torch.equal(main_loss("mse", reg, torch.tensor([1.0, 1.0]), 0.1), main_loss("mse", reg, torch.tensor([1.0, 1.0])))


def _setup() -> tuple[al.ALModel, al.Pools]:
    x, y = blobs(40, seed=3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        net = MLP(16, 3, hidden=(8,))
    model = al.ALModel(net, num_classes=3, device="cpu")
    pools = al.Pools(x, num_classes=3)
    pools.record(al.SimulatedOracle(y, num_classes=3).answer(al.Query(np.arange(0, 40, 4))), cycle=0)
    return model, pools


def test_step_modules_thread_the_smoothing() -> None:
    model, pools = _setup()
    x = pools.inputs(pools.labeled)
    y = torch.as_tensor(pools.labels_of(pools.labeled))
    batch = StepBatch(x, y, pools.labeled, 0.0, 0, 0)
    logits = model(x).logits
    smoothed = F.cross_entropy(logits, y, label_smoothing=0.1)
    torch.testing.assert_close(StepLoss(model, "cross_entropy", 0.1)(batch), smoothed)
    torch.testing.assert_close(ParallelStep(model, "cross_entropy", label_smoothing=0.1)(batch), smoothed)
    assert torch.equal(ParallelStep(model, "cross_entropy")(batch), F.cross_entropy(logits, y))
    assert float(smoothed.detach()) != pytest.approx(float(F.cross_entropy(logits, y).detach()))


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_fit_reports_the_smoothed_loss_of_its_one_batch(eps: float) -> None:
    """One epoch, one batch, no reset: the reported loss is the (smoothed) loss at the initial weights."""
    model, pools = _setup()
    ref = copy.deepcopy(model)
    y = torch.as_tensor(pools.labels_of(pools.labeled))
    with torch.no_grad():
        logits = ref(pools.inputs(pools.labeled)).logits
    expected = F.cross_entropy(logits, y, label_smoothing=eps) if eps else F.cross_entropy(logits, y)
    cfg = al.TrainConfig(epochs=1, batch_size=64, optimizer="sgd", lr=0.1, label_smoothing=eps, from_scratch=False)
    out = al.Trainer(cfg).fit(model, pools)
    assert out["train_loss"] == pytest.approx(float(expected), rel=1e-6)  # the batch's order differs: float rounding
    if eps:
        assert out["train_loss"] != pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-3)


@pytest.mark.parametrize("bad", [-0.1, 1.0, "x", True, float("nan")])
def test_bad_smoothing_is_refused(bad: object) -> None:
    with pytest.raises(InvalidParameterError, match=rf"label_smoothing must be a number in \[0, 1\), got {bad!r}"):
        al.TrainConfig(label_smoothing=bad)  # type: ignore[arg-type]


def test_smoothing_with_mse_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match=r"label_smoothing=0.1 applies to cross-entropy only, but loss='mse'"):
        al.TrainConfig(loss="mse", label_smoothing=0.1)
    al.TrainConfig(loss="mse", label_smoothing=0.0)  # the default is fine
    # loss="auto" on a regression task: refused at fit, before the weights change
    x = torch.randn(20, 4)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = al.ALModel(MLP(4, 1, hidden=(4,)), num_classes=1, device="cpu", task="regression")
    pools = al.Pools(x, num_classes=1, task="regression")
    pools.record([Answer(i, 0.5) for i in range(5)], cycle=0)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(InvalidParameterError, match=r"main loss is MSE \(loss='auto', task='regression'\)"):
        al.Trainer(al.TrainConfig(epochs=1, label_smoothing=0.1)).fit(model, pools)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


# ----------------------------------------------------------------------------- undersampling the rejected
def _open_pools(n_rejected: int, open_set: bool = True) -> tuple[al.ALModel, al.Pools]:
    """7 labeled samples of classes (0, 0, 0, 1, 1, 2, 2) -> cap ceil(7 / 3) = 3; ``n_rejected`` rejected."""
    x, _ = blobs(60, seed=0)
    net = MLP(16, 4 if open_set else 3, hidden=(4,))
    model = al.ALModel(net, num_classes=3, device="cpu", open_set=open_set)
    pools = al.Pools(x, num_classes=3)
    labels = [0, 0, 0, 1, 1, 2, 2]
    answers = [Answer(i, c) for i, c in enumerate(labels)]
    answers += [Answer(10 + 2 * j, None, in_task=False) for j in range(n_rejected)]
    pools.record(answers, cycle=0)
    return model, pools


def _rejected_part(model: al.ALModel, pools: al.Pools, cfg: al.TrainConfig, cycle: int) -> np.ndarray:
    idx, targets = _training_set(model, pools, cfg, cycle)
    assert idx[:7].tolist() == list(range(7)) and targets[:7].tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert bool((targets[7:] == 3).all())
    return idx[7:]


def test_rejected_are_capped_at_the_mean_class_count() -> None:
    model, pools = _open_pools(12)
    cfg = al.TrainConfig(undersample_rejected=True, seed=4)
    got = _rejected_part(model, pools, cfg, cycle=1)
    assert got.size == 3  # ceil(7 / 3)
    assert set(got.tolist()) <= set(pools.rejected.tolist()) and len(set(got.tolist())) == 3
    assert np.array_equal(got, _rejected_part(model, pools, cfg, cycle=1))  # same seed and cycle, same subset
    others = [tuple(_rejected_part(model, pools, cfg, cycle=c)) for c in range(2, 6)]
    assert any(o != tuple(got) for o in others)  # other cycles draw other subsets
    # the flag off: every rejected sample is trained
    assert np.array_equal(_rejected_part(model, pools, al.TrainConfig(seed=4), cycle=1), pools.rejected)


def test_rejected_subset_never_touches_the_global_rng() -> None:
    model, pools = _open_pools(12)
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    _rejected_part(model, pools, al.TrainConfig(undersample_rejected=True), cycle=0)
    assert torch.equal(before, torch.random.get_rng_state())


def test_fewer_rejected_than_the_cap_are_all_kept() -> None:
    model, pools = _open_pools(2)
    got = _rejected_part(model, pools, al.TrainConfig(undersample_rejected=True), cycle=0)
    assert got.tolist() == pools.rejected.tolist() == [10, 12]


def test_closed_set_model_trains_no_rejected_whatever_the_flag() -> None:
    model, pools = _open_pools(12, open_set=False)
    idx, targets = _training_set(model, pools, al.TrainConfig(undersample_rejected=True), 0)
    assert idx.tolist() == list(range(7)) and targets.tolist() == [0, 0, 0, 1, 1, 2, 2]


def test_undersample_flag_must_be_a_bool() -> None:
    with pytest.raises(InvalidParameterError, match="undersample_rejected must be True or False, got 1"):
        al.TrainConfig(undersample_rejected=1)  # type: ignore[arg-type]
