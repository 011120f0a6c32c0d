"""Learning Loss: the ranking loss, the loss-prediction module, the strategy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import activelearn as al
from activelearn.backbones import MLP, ResNet18, SmallCNN
from activelearn.extensions import LossPredictionModule, ranking_loss

from conftest import make_setup


def test_ranking_loss_matches_hand_computation() -> None:
    pred = torch.tensor([1.0, 0.5, 0.2, 0.0])
    target = torch.tensor([3.0, 1.0, 2.0, 2.0])
    # pairs (0, 3): target 3 > 2 -> s=+1, 1 - (1.0 - 0.0) = 0 -> 0
    #       (1, 2): target 1 < 2 -> s=-1, 1 + (0.5 - 0.2) = 1.3
    assert float(ranking_loss(pred, target)) == pytest.approx((0.0 + 1.3) / 2)
    assert float(ranking_loss(pred, target, margin=0.5)) == pytest.approx((0.0 + 0.8) / 2)


def test_ranking_loss_ties_count_as_minus_one() -> None:
    pred = torch.tensor([0.3, 0.1, 0.4, 0.0])
    target = torch.tensor([2.0, 5.0, 5.0, 2.0])
    # (0, 3): tie -> s=-1, 1 + 0.3 = 1.3;  (1, 2): tie -> s=-1, 1 + (0.1 - 0.4) = 0.7
    assert float(ranking_loss(pred, target)) == pytest.approx(1.0)


def test_ranking_loss_odd_batch_drops_the_last_sample() -> None:
    pred = torch.tensor([1.0, 0.5, 0.2, 0.0, 9.0])
    target = torch.tensor([3.0, 1.0, 2.0, 2.0, -4.0])
    assert float(ranking_loss(pred, target)) == pytest.approx(0.65)
    # 3 samples: pair (0, 1) only: target 1 > 0 -> s=+1, 1 - (0.2 - 0.7) = 1.5
    assert float(ranking_loss(torch.tensor([0.2, 0.7, 5.0]), torch.tensor([1.0, 0.0, 3.0]))) == pytest.approx(1.5)


def test_ranking_loss_single_sample_is_zero_with_a_graph() -> None:
    pred = torch.tensor([0.4], requires_grad=True)
    loss = ranking_loss(pred, torch.tensor([1.0]))
    loss.backward()
    assert float(loss.detach()) == 0.0 and pred.grad is not None


def _model(net: torch.nn.Module, classes: int, **kw: object) -> al.ALModel:
    model = al.ALModel(net, num_classes=classes, device="cpu", **kw)  # type: ignore[arg-type]
    model.attach(LossPredictionModule())
    return model


@pytest.mark.parametrize(
    "net, shape, branches",
    [(MLP(16, 3, hidden=(32, 16)), (16,), 2), (SmallCNN(in_channels=1, num_classes=3), (1, 28, 28), 3)],
)
def test_module_output_shape_and_one_branch_per_stage(net: torch.nn.Module, shape: tuple[int, ...], branches: int) -> None:
    torch.manual_seed(0)
    model = _model(net, 3)
    x = torch.randn(5, *shape)
    model.build_extensions(x)
    ext = model.extensions["loss_prediction"]
    assert len(ext.branches) == branches
    assert all(b.out_features == 128 for b in ext.branches)
    out = model.predict(x, ("predicted_loss",))["predicted_loss"]
    assert out.shape == (5,)


def test_resnet18_taps_its_four_stages() -> None:
    torch.manual_seed(0)
    model = _model(ResNet18(num_classes=10), 10)
    x = torch.randn(2, 3, 32, 32)
    model.build_extensions(x)
    ext = model.extensions["loss_prediction"]
    assert [b.in_features for b in ext.branches] == [64, 128, 256, 512]
    assert model.predict(x, ("predicted_loss",))["predicted_loss"].shape == (2,)


def test_backbone_without_stages_taps_the_embedding() -> None:
    model = _model(MLP(16, 3, hidden=(32, 8)), 3, stages=())
    model.build_extensions(torch.randn(2, 16))
    ext = model.extensions["loss_prediction"]
    assert len(ext.branches) == 1 and ext.branches[0].in_features == 8


def test_gradient_stops_reaching_the_backbone_after_the_detach_epoch() -> None:
    torch.manual_seed(0)
    model = _model(MLP(16, 3, hidden=(32, 16)), 3)
    x, y = torch.randn(8, 16), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    model.build_extensions(x)
    ext = model.extensions["loss_prediction"]

    def grads(progress: float) -> tuple[float, float]:
        model.zero_grad(set_to_none=True)
        ext.training_loss(model(x), y, progress).backward()
        bb = sum(float(p.grad.abs().sum()) for p in model.backbone.parameters() if p.grad is not None)
        mod = sum(float(p.grad.abs().sum()) for p in ext.parameters() if p.grad is not None)
        return bb, mod

    before_bb, before_mod = grads(0.59)
    after_bb, after_mod = grads(0.6)
    assert before_bb > 0 and before_mod > 0
    assert after_bb == 0.0 and after_mod > 0


def test_trainer_detaches_at_sixty_percent_of_the_epochs() -> None:
    """With 10 epochs, epochs 0..5 train the backbone through the module, 6..9 do not."""
    seen: list[float] = []

    class Spy(LossPredictionModule):
        def training_loss(self, out, targets, progress):  # type: ignore[no-untyped-def]
            seen.append(progress)
            return super().training_loss(out, targets, progress)

    model = al.ALModel(MLP(16, 3, hidden=(8,)), num_classes=3, device="cpu")
    model.attach(Spy())
    pools = al.Pools(torch.randn(20, 16), num_classes=3)
    pools.record(al.SimulatedOracle(np.arange(20) % 3, num_classes=3).answer(al.Query(np.arange(20))), cycle=0)
    al.Trainer(al.TrainConfig(epochs=10, batch_size=20)).fit(model, pools)
    detached = [p >= 0.6 for p in seen]
    assert detached == [False] * 6 + [True] * 4


def test_strategy_picks_the_highest_predicted_losses_of_a_subset() -> None:
    s = make_setup("learning_loss", params={"subset": 50})
    picks = s.strategy.select(s.model, s.pools, 10)
    cand = s.strategy.candidates(s.pools, 10)
    assert cand.size == 50 and np.isin(picks, cand).all()
    pred = s.model.outputs(s.pools, cand, "predicted_loss")["predicted_loss"].numpy()
    assert set(picks.tolist()) == set(cand[np.argsort(-pred, kind="stable")[:10]].tolist())


def test_bad_parameters_raise() -> None:
    with pytest.raises(ValueError, match="detach_at must be a number"):
        al.strategies.get("learning_loss", detach_at=1.5)
    with pytest.raises(ValueError, match="hidden must be a positive int"):
        al.strategies.get("learning_loss", hidden=0)
