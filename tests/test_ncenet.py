"""NCE-Net: the prototype head, rejection/confusion, bentropy, and softmax-only refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import activelearn as al
from activelearn.backbones import MLP
from activelearn.extensions import PrototypeHead
from activelearn.model import ForwardOutput
from activelearn.strategies.ncenet import confusion_score, rejection_score

from conftest import blobs, make_setup


def _head(distance: str = "euclidean", prototypes: int = 2) -> PrototypeHead:
    head = PrototypeHead(prototypes=prototypes, distance=distance)
    head.build(2, [], 2)
    with torch.no_grad():
        # class 0: prototypes (0, 0) and (4, 0); class 1: (0, 3) and (10, 10)
        head.prototypes.copy_(torch.tensor([[[0.0, 0.0], [4.0, 0.0]], [[0.0, 3.0], [10.0, 10.0]]]))
        head.radius.copy_(torch.tensor([1.0, 2.0]))
    return head


def _out(f: torch.Tensor) -> ForwardOutput:
    return ForwardOutput(logits=torch.zeros(len(f), 2), embeddings=f)


def test_euclidean_scores_equal_the_formula_with_the_nearest_prototype() -> None:
    head = _head()
    f = torch.tensor([[3.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
    p = head.head_probs(_out(f))
    # sample 0: nearest class-0 prototype (4, 0) at d^2 = 1, R0 = 1; class 1: (0, 3) at d^2 = 18, R1 = 2
    expected = torch.tensor([
        [math.exp(-1 / 2), math.exp(-18 / 8)],
        [1.0, math.exp(-9 / 8)],
        [math.exp(-4 / 2), math.exp(-1 / 8)],
    ])
    torch.testing.assert_close(p, expected)
    assert p.argmax(1).tolist() == [0, 0, 1]


def test_cosine_scores_equal_the_formula() -> None:
    head = _head("cosine")
    f = torch.tensor([[1.0, 1.0]])
    p = head.head_probs(_out(f))
    c = 1 / math.sqrt(2)
    # class 0: cos with (4, 0) = 1/sqrt(2) ((0, 0) gives cos 0); class 1: cos with (10, 10) = 1
    expected = torch.tensor([[1 / (1 + math.exp(-c * 1.0)), 1 / (1 + math.exp(-1.0 * 2.0))]])
    torch.testing.assert_close(p, expected)


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_scores_lie_in_zero_one_and_do_not_sum_to_one(distance: str) -> None:
    torch.manual_seed(0)
    head = PrototypeHead(prototypes=3, distance=distance)
    head.build(8, [], 4)
    f = torch.cat([torch.randn(50, 8) * 100, head.prototypes.detach()[0, :1]])
    with torch.no_grad():
        p = head.head_probs(_out(f))
    assert p.shape == (51, 4)
    assert (p > 0).all() and (p <= 1).all()
    assert not torch.allclose(p.sum(1), torch.ones(51))
    if distance == "euclidean":
        assert float(p[-1, 0]) == pytest.approx(1.0)


def test_bce_loss_on_one_hot_targets() -> None:
    head = _head()
    f = torch.tensor([[3.0, 0.0], [0.0, 2.0]])
    p = head.head_probs(_out(f))
    y = torch.tensor([0, 1])
    onehot = torch.nn.functional.one_hot(y, 2).float()
    expected = torch.nn.functional.binary_cross_entropy(p, onehot)
    torch.testing.assert_close(head.head_loss(_out(f), y, 0.0), expected)


def test_rejection_and_confusion_hand_values() -> None:
    p = torch.tensor([[0.9, 0.2, 0.1], [0.1, 0.1, 0.1]], dtype=torch.float64)
    # rejection: 0.1 + 0.8 + 0.9 = 1.8; 3 * 0.9 = 2.7
    torch.testing.assert_close(rejection_score(p), torch.tensor([1.8, 2.7], dtype=torch.float64))
    # confusion: (1 + 0.9 - 0.9) + (1 + 0.2 - 0.9) + (1 + 0.1 - 0.9) = 1.5; 3 * 1 = 3
    torch.testing.assert_close(confusion_score(p), torch.tensor([1.5, 3.0], dtype=torch.float64))


def test_bentropy_hand_value() -> None:
    s = al.strategies.get("bentropy")
    p = torch.tensor([[0.5, 0.9]], dtype=torch.float64)
    h = lambda q: -(q * math.log(q) + (1 - q) * math.log(1 - q))  # noqa: E731
    assert float(s.score_probs(p)[0]) == pytest.approx((h(0.5) + h(0.9)) / 2)


@pytest.mark.parametrize("criterion", ["rejection", "confusion"])
def test_strategy_ranks_by_its_criterion(criterion: str) -> None:
    s = make_setup("ncenet", params={"criterion": criterion})
    assert not s.model.probs_sum_to_one
    picks = s.strategy.select(s.model, s.pools, 10)
    unl = s.pools.unlabeled
    p = s.model.outputs(s.pools, unl, "probs")["probs"].double()
    score = (rejection_score if criterion == "rejection" else confusion_score)(p).numpy()
    assert set(picks.tolist()) == set(unl[np.lexsort((unl, -score))[:10]].tolist())


@pytest.mark.parametrize("name", ["entropy", "least_confidence", "margin", "badge", "cdal"])
def test_softmax_strategies_refuse_the_prototype_head(name: str) -> None:
    s = make_setup("ncenet")
    with pytest.raises(ValueError, match="bentropy"):
        al.strategies.get(name).select(s.model, s.pools, 5)
    assert al.strategies.get("bentropy").select(s.model, s.pools, 5).size == 5


def test_prototype_head_learns_blobs_and_predicts_by_argmax() -> None:
    x, y = blobs(240)
    torch.manual_seed(0)
    model = al.ALModel(MLP(16, 3, hidden=(32, 16)), num_classes=3, device="cpu")
    model.attach(PrototypeHead())
    pools = al.Pools(x[:180], num_classes=3)
    pools.record(al.SimulatedOracle(y[:180], num_classes=3).answer(al.Query(np.arange(180))), cycle=0)
    al.Trainer(al.TrainConfig(epochs=30, batch_size=32, optimizer="sgd", lr=0.1, momentum=0.4)).fit(model, pools)
    assert al.evaluate(model, x[180:], torch.as_tensor(y[180:]))["accuracy"] > 0.9


def test_bad_parameters_raise() -> None:
    with pytest.raises(ValueError, match="criterion must be one of"):
        al.strategies.get("ncenet", criterion="entropy")
    with pytest.raises(ValueError, match="distance must be"):
        PrototypeHead(distance="manhattan")


def _one_sgd_step(clip: float | None, head_clip: float | None) -> float:
    """Norm of the parameter change of one plain SGD step (lr 1, no momentum) on blobs."""
    x, y = blobs(64)
    model = al.ALModel(MLP(16, 3, hidden=(32, 16)), num_classes=3, device="cpu", seed=0)
    model.attach(PrototypeHead(max_grad_norm=head_clip))
    pools = al.Pools(x, num_classes=3)
    pools.record(al.SimulatedOracle(y, num_classes=3).answer(al.Query(np.arange(64))), cycle=0)
    model.build_extensions(x[:2])
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    config = al.TrainConfig(epochs=1, batch_size=64, optimizer="sgd", lr=1.0, momentum=0.0, grad_clip=clip, from_scratch=False)
    al.Trainer(config).fit(model, pools)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    return float((after - before).norm())


def test_gradient_clip_bounds_the_step_and_the_smallest_request_wins() -> None:
    free = _one_sgd_step(None, None)
    assert free > 0.5  # unclipped, this first step is large
    assert _one_sgd_step(None, 0.5) == pytest.approx(0.5, rel=1e-4)  # the head's request (lr 1: step = clipped gradient)
    assert _one_sgd_step(0.2, 0.5) == pytest.approx(0.2, rel=1e-4)  # config clip smaller: it wins
    assert _one_sgd_step(0.5, None) == pytest.approx(0.5, rel=1e-4)
    assert PrototypeHead().max_grad_norm == 5.0 and al.strategies.get("ncenet", max_grad_norm=None).model_extensions()[0].max_grad_norm is None
    with pytest.raises(ValueError, match="max_grad_norm must be a positive number or None"):
        PrototypeHead(max_grad_norm=0)
    with pytest.raises(ValueError, match=r"grad_clip must be a number in \(0, inf\) or None"):
        al.TrainConfig(grad_clip=-1.0)
