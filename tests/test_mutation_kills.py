"""Behaviour checks that kill mutants which used to pass the whole suite (docs/reliability.md, "Mutation testing").

Each test compares against hand-computed or reference values, so that flipping
a sign, replacing a target by noise, freezing a parameter, reversing a ranking
or dropping a bookkeeping update fails it.  The mutant each test was checked
against (applied by hand, test run, reverted) is named in its docstring.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import activelearn as al
import activelearn.extensions.loss_prediction as lp
from activelearn.backbones import MLP
from activelearn.extensions import LossPredictionModule, PrototypeHead
from activelearn.model import ForwardOutput, ModelExtension, StepContext

from conftest import blobs, make_setup


# ---------------------------------------------------------------- NCE-Net + Learning Loss
def _ncenet_ll_model() -> tuple[al.ALModel, PrototypeHead, LossPredictionModule]:
    """2-d embeddings, 2 classes; prototypes (0, 0) and (0, 3), radii 1 and 2; a 1-unit loss module."""
    strategy = al.strategies.get("ncenet+learning_loss", second__hidden=1)
    torch.manual_seed(0)
    model = al.ALModel(MLP(2, 2, hidden=(4, 2)), num_classes=2, device="cpu", stages=())
    for ext in strategy.model_extensions():
        model.attach(ext)
    model.build_extensions(torch.zeros(2, 2))
    head, ll = model.extensions["prototype_head"], model.extensions["loss_prediction"]
    assert isinstance(head, PrototypeHead) and isinstance(ll, LossPredictionModule)
    with torch.no_grad():
        head.prototypes.copy_(torch.tensor([[[0.0, 0.0]], [[0.0, 3.0]]]))
        head.radius.copy_(torch.tensor([1.0, 2.0]))
        # predicted loss = 0.1 * relu(f_x): 0.3 for f = (3, 0), 0 for f = (0, 2)
        ll.branches[0].weight.copy_(torch.tensor([[1.0, 0.0]]))
        ll.branches[0].bias.zero_()
        assert ll.out is not None
        ll.out.weight.fill_(0.1)
        ll.out.bias.zero_()
    return model, head, ll


def _hand_bce() -> torch.Tensor:
    """Per-sample BCE (mean over the 2 classes) of f0 = (3, 0) with label 0 and f1 = (0, 2) with label 1."""
    # f0: d^2 = 9 to class 0 (R 1), 18 to class 1 (R 2): p = exp(-4.5), exp(-2.25); label 0
    l0 = (4.5 - math.log(1 - math.exp(-2.25))) / 2
    # f1: d^2 = 4 to class 0, 1 to class 1: p = exp(-2), exp(-1/8); label 1
    l1 = (-math.log(1 - math.exp(-2.0)) + 0.125) / 2
    return torch.tensor([l0, l1])


def _ctx(model: al.ALModel) -> StepContext:
    f = torch.tensor([[3.0, 0.0], [0.0, 2.0]])
    # the backbone's own (unused) linear head: CE ranks sample 1 above sample 0, the prototype BCE the reverse
    logits = torch.tensor([[5.0, -5.0], [5.0, -5.0]])
    out = ForwardOutput(logits=logits, embeddings=f)
    return StepContext(out, torch.tensor([0, 1]), 0.0, f, model, np.arange(2))


def test_prototype_head_per_sample_loss_is_the_hand_bce_and_averages_to_head_loss() -> None:
    model, head, _ = _ncenet_ll_model()
    ctx = _ctx(model)
    torch.testing.assert_close(head.head_sample_loss(ctx.out, ctx.targets), _hand_bce())
    torch.testing.assert_close(head.head_loss(ctx.out, ctx.targets, 0.0), _hand_bce().mean())


def test_ncenet_learning_loss_regresses_on_the_prototype_heads_own_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutant killed: the target is ``per_sample_loss(out.logits, ...)`` (the unused linear head's CE)."""
    model, _, ll = _ncenet_ll_model()
    seen: list[torch.Tensor] = []
    real = lp.ranking_loss

    def spy(pred: torch.Tensor, target: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
        seen.append(target.detach().clone())
        return real(pred, target, margin)

    monkeypatch.setattr(lp, "ranking_loss", spy)
    loss = ll.step_loss(_ctx(model))
    torch.testing.assert_close(seen[0], _hand_bce())
    # the pair (0, 1): BCE 2.30 > 0.14 -> s = +1, pred 0.3 - 0 -> 1 - 0.3 = 0.7 (CE target would give 1.3)
    assert loss is not None and float(loss.detach()) == pytest.approx(0.7)


def test_ncenet_learning_loss_trains_on_the_head_loss_in_the_trainer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every training step's target is the prototype head's per-sample loss of that step's forward pass."""
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    real_rank, real_sample = lp.ranking_loss, PrototypeHead.head_sample_loss

    def sample_spy(self: PrototypeHead, out: ForwardOutput, targets: torch.Tensor) -> torch.Tensor:
        value = real_sample(self, out, targets)
        seen.append((value.detach().clone(), torch.zeros(0)))
        return value

    def rank_spy(pred: torch.Tensor, target: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
        seen[-1] = (seen[-1][0], target.detach().clone())
        return real_rank(pred, target, margin)

    monkeypatch.setattr(lp, "ranking_loss", rank_spy)
    monkeypatch.setattr(PrototypeHead, "head_sample_loss", sample_spy)
    make_setup("ncenet+learning_loss", epochs=1)
    # the head's loss is computed twice per step (main loss, then the target): each target equals the step's loss
    targets = [t for _, t in seen if t.numel()]
    assert len(targets) == 2  # 30 labels, batch 16: two steps
    for value, target in seen:
        if target.numel():
            torch.testing.assert_close(target, value)


def test_a_head_replacement_without_per_sample_loss_is_refused() -> None:
    class Head(ModelExtension):
        name = "my_head"
        replaces_head = True

    model = al.ALModel(MLP(2, 2, hidden=(4,)), num_classes=2, device="cpu")
    model.attach(Head())
    model.attach(LossPredictionModule())
    with pytest.raises(ValueError, match="head_sample_loss"):
        model.build_extensions(torch.zeros(2, 2))


# ---------------------------------------------------------------- Learning Loss target
def test_learning_loss_target_is_the_per_sample_cross_entropy() -> None:
    """Mutants killed: ``-F.cross_entropy`` (flipped target) and a random target in ``per_sample_loss``/``training_loss``."""
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0], [0.0, 3.0], [1.0, 0.0], [0.0, 0.5], [4.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([0, 1, 0, 1, 1, 0, 0, 1])
    ce = torch.tensor([-math.log(math.exp(r[int(t)]) / sum(math.exp(v) for v in r)) for r, t in zip(logits.tolist(), y.tolist())])
    torch.testing.assert_close(lp.per_sample_loss(logits, y), ce)
    ll = LossPredictionModule(hidden=1)
    ll.build(1, [], 2)
    with torch.no_grad():  # predicted loss = embedding value
        ll.branches[0].weight.fill_(1.0)
        ll.branches[0].bias.zero_()
        assert ll.out is not None
        ll.out.weight.fill_(1.0)
        ll.out.bias.zero_()
    pred = torch.tensor([0.2, 0.9, 0.7, 0.6, 0.3, 0.5, 0.8, 0.4])
    out = ForwardOutput(logits=logits, embeddings=pred[:, None])
    # pairs (i, 7 - i); hand: s = +1 where ce_i > ce_j
    hand = 0.0
    for i in range(4):
        s = 1.0 if ce[i] > ce[7 - i] else -1.0
        hand += max(0.0, 1.0 - s * float(pred[i] - pred[7 - i]))
    assert float(ll.training_loss(out, y, 0.0).detach()) == pytest.approx(hand / 4)
    flipped = sum(max(0.0, 1.0 + (1.0 if ce[i] > ce[7 - i] else -1.0) * float(pred[i] - pred[7 - i])) for i in range(4)) / 4
    assert hand / 4 != pytest.approx(flipped)


def test_ranking_loss_ties_and_pair_halving_on_asymmetric_predictions() -> None:
    """Mutants killed: ties counted as +1 (``dt >= 0``) and both halves of the flipped batch kept (``half = None``)."""
    pred = torch.tensor([0.5, 0.1, 0.4, 0.0])
    target = torch.tensor([2.0, 1.0, 3.0, 2.0])
    # (0, 3): tie -> s = -1, 1 + 0.5 = 1.5;  (1, 2): 1 < 3 -> s = -1, 1 + (0.1 - 0.4) = 0.7
    assert float(lp.ranking_loss(pred, target)) == pytest.approx((1.5 + 0.7) / 2)
    with pytest.raises(ValueError, match=r"same length, got \(3,\) and \(2,\)"):
        lp.ranking_loss(torch.zeros(3), torch.zeros(2))


def test_loss_module_applies_its_weight_and_margin() -> None:
    """Mutants killed: ``weight / ranking`` and the module's margin not passed on."""
    ll = LossPredictionModule(hidden=1, weight=0.5, margin=2.0)
    ll.build(1, [], 2)
    with torch.no_grad():
        ll.branches[0].weight.fill_(1.0)
        ll.branches[0].bias.zero_()
        assert ll.out is not None
        ll.out.weight.fill_(1.0)
        ll.out.bias.zero_()
    out = ForwardOutput(logits=torch.tensor([[0.0, 3.0], [0.0, 0.0]]), embeddings=torch.tensor([[0.3], [0.0]]))
    # CE 3.05 > 0.69 -> s = +1: 0.5 * max(0, 2 - 0.3) = 0.85
    assert float(ll.training_loss(out, torch.tensor([0, 0]), 0.0).detach()) == pytest.approx(0.85)


def test_learning_loss_regression_target_is_the_per_sample_squared_error() -> None:
    """Mutants killed in ``per_sample_loss``'s regression branch (reshape, sign, power, mean axis, branch condition)."""
    # one output per sample, float targets (B,) or int targets with a single output column: squared error
    out1 = torch.tensor([[1.0], [0.5], [-2.0]])
    torch.testing.assert_close(lp.per_sample_loss(out1, torch.tensor([0.0, 1.5, 1.0])), torch.tensor([1.0, 1.0, 9.0]))
    torch.testing.assert_close(lp.per_sample_loss(out1, torch.tensor([0, 2, -1])), torch.tensor([1.0, 2.25, 1.0]))
    # two outputs, float targets (B, 2): mean over the outputs
    out2 = torch.tensor([[1.0, 2.0], [0.0, -1.0], [3.0, 3.0]])
    y2 = torch.tensor([[0.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    torch.testing.assert_close(lp.per_sample_loss(out2, y2), torch.tensor([2.5, 4.0, 4.5]))


def test_trained_loss_module_ranks_the_true_losses() -> None:
    """Mutants killed: a flipped or noisy ranking target (the module then ranks losses backwards or at random)."""
    s = make_setup("learning_loss", n_labeled=120, epochs=12, params={"subset": None, "detach_at": 1.0})
    lab = s.pools.labeled
    pred = s.model.outputs(s.pools, lab, "predicted_loss")["predicted_loss"].double().numpy()
    logits = s.model.outputs(s.pools, lab, "logits")["logits"]
    true = F.cross_entropy(logits, torch.as_tensor(s.targets[lab]), reduction="none").double().numpy()
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    rho = float(np.corrcoef(rank(pred), rank(true))[0, 1])
    assert rho > 0.3, rho


# ---------------------------------------------------------------- NCE-Net radius and prototypes
def _train_ncenet(**params: object) -> tuple[PrototypeHead, torch.Tensor, torch.Tensor]:
    strategy = al.strategies.get("ncenet", **params)  # type: ignore[arg-type]
    x, y = blobs(60)
    model = al.ALModel(MLP(16, 3, hidden=(16,)), num_classes=3, device="cpu", seed=0)
    for ext in strategy.model_extensions():
        model.attach(ext)
    model.build_extensions(x[:2])
    head = model.extensions["prototype_head"]
    assert isinstance(head, PrototypeHead)
    r0, m0 = head.radius.detach().clone(), head.prototypes.detach().clone()
    pools = al.Pools(x, num_classes=3)
    pools.record(al.SimulatedOracle(y, num_classes=3).answer(al.Query(np.arange(60))), cycle=0)
    al.Trainer(al.TrainConfig(epochs=2, batch_size=30, optimizer="sgd", lr=0.1, from_scratch=False)).fit(model, pools)
    return head, r0, m0


def test_ncenet_learns_its_radius_and_prototypes() -> None:
    """Mutants killed: a frozen radius (``requires_grad=False`` / detached) and frozen prototypes."""
    head, r0, m0 = _train_ncenet()
    assert head.learn_radius
    assert (head.radius.detach() - r0).abs().max() > 1e-4
    assert (head.prototypes.detach() - m0).abs().max() > 1e-4


def test_fixed_radius_option_keeps_the_radius_and_still_learns_the_prototypes() -> None:
    head, r0, m0 = _train_ncenet(learn_radius=False, radius=0.5)
    torch.testing.assert_close(head.radius.detach(), torch.full((3,), 0.5))
    assert torch.equal(head.radius.detach(), r0)
    assert (head.prototypes.detach() - m0).abs().max() > 1e-4
    assert set(dict(head.named_parameters())) == {"prototypes", "radius"}  # same checkpoint keys either way


@pytest.mark.parametrize("distance, default", [("euclidean", 1.0), ("cosine", 10.0)])
def test_prototype_head_initial_radius_and_prototype_scale(distance: str, default: float) -> None:
    """Mutants killed: other default radii, the given radius ignored, prototypes drawn with std sqrt(d) instead of 1/sqrt(d)."""
    torch.manual_seed(0)
    head = PrototypeHead(distance=distance, prototypes=2)
    head.build(400, [], 5)
    torch.testing.assert_close(head.radius.detach(), torch.full((5,), default))
    assert head.prototypes.shape == (5, 2, 400)
    assert float(head.prototypes.detach().std()) == pytest.approx(1 / 20, rel=0.05)
    given = PrototypeHead(distance=distance, radius=0.5)
    given.build(4, [], 3)
    torch.testing.assert_close(given.radius.detach(), torch.full((3,), 0.5))


def test_prototype_head_loss_is_over_all_classes_even_when_the_batch_lacks_some() -> None:
    """Mutant killed: ``F.one_hot(targets)`` without the class count (width = largest label in the batch + 1)."""
    torch.manual_seed(0)
    head = PrototypeHead()
    head.build(4, [], 3)
    out = ForwardOutput(logits=torch.zeros(2, 3), embeddings=torch.randn(2, 4))
    y = torch.tensor([0, 1])  # class 2 absent
    p = head.head_probs(out).double()
    onehot = F.one_hot(y, 3).double()
    hand = -(onehot * p.log() + (1 - onehot) * (1 - p).log()).mean(1)
    torch.testing.assert_close(head.head_sample_loss(out, y).double(), hand, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(head.head_loss(out, y, 0.0).double(), hand.mean(), rtol=1e-5, atol=1e-6)


def test_fixed_radius_option_is_checked_and_reaches_the_cli_form() -> None:
    with pytest.raises(ValueError, match="learn_radius must be True or False"):
        al.strategies.get("ncenet", learn_radius="no")
    with pytest.raises(ValueError, match="learn_radius must be True or False"):
        PrototypeHead(learn_radius=0)  # type: ignore[arg-type]
    from activelearn.experiment import parse_label

    name, params = parse_label("ncenet:learn_radius=False:radius=0.5")
    assert name == "ncenet" and params == {"learn_radius": False, "radius": 0.5}


# ---------------------------------------------------------------- cluster agreement ranking
class _FixedPredictions:
    """A stand-in model whose ``probs`` are one-hot rows of fixed predicted classes."""

    device = torch.device("cpu")

    def __init__(self, pred: np.ndarray) -> None:
        self.pred = torch.as_tensor(pred)

    def outputs(self, pools: al.Pools, indices: np.ndarray, names: str) -> dict[str, torch.Tensor]:
        assert names == "probs"
        return {"probs": F.one_hot(self.pred[torch.as_tensor(indices)], 3).double()}


def test_purity_rank_proposes_the_clusters_the_model_agrees_on_most() -> None:
    """Mutant killed: the purity order reversed (``quality`` instead of ``-quality`` in the lexsort)."""
    # 4 far-apart groups of 10 (k-means finds them); the model's predictions agree on 10/10, 9/10, 7/10, 5/10
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0], [50, 0], [0, 50], [50, 50]], dtype=float)
    x = np.concatenate([c + rng.normal(scale=0.5, size=(10, 2)) for c in centers])
    pred = np.zeros(40, dtype=np.int64)
    for g, agree in enumerate([7, 10, 5, 9]):
        pred[g * 10 + agree : g * 10 + 10] = 1 + np.arange(10 - agree) % 2
    pools = al.Pools(torch.tensor(x, dtype=torch.float32), num_classes=3)
    strategy = al.strategies.get("cluster_annotation", scenario="cluster", cluster_size=10, feature="inputs", rank="purity", seed=0)
    q = strategy.select(_FixedPredictions(pred), pools, 2)  # type: ignore[arg-type]
    # purest first: group 1 (10/10), then group 3 (9/10)
    assert [g.tolist() for g in q.groups] == [list(range(10, 20)), list(range(30, 40))]


def _blob_pools(sizes: list[int], spreads: list[float], centers: list[list[float]] | None = None) -> tuple[al.Pools, np.ndarray]:
    """Far-apart 2-d blobs (k-means recovers them), blob j has ``sizes[j]`` points of spread ``spreads[j]``."""
    rng = np.random.default_rng(0)
    centers = np.array(centers if centers is not None else [[0, 0], [50, 0], [0, 50], [50, 50]], dtype=float)
    x = np.concatenate([c + rng.normal(scale=sd, size=(n, 2)) for c, n, sd in zip(centers, sizes, spreads)])
    starts = np.concatenate([[0], np.cumsum(sizes)])
    return al.Pools(torch.tensor(x, dtype=torch.float32), num_classes=3), starts


def test_purity_is_a_share_and_ties_go_to_the_larger_cluster() -> None:
    """Mutants killed: purity as a count (``max * size``) and the size tie-break reversed (``+sizes``)."""
    # blobs of 8 (all agree), 12 (all agree), 20 (18 agree), 10 (5 agree)
    pools, starts = _blob_pools([8, 12, 20, 10], [0.5, 0.5, 0.5, 0.5])
    pred = np.zeros(50, dtype=np.int64)
    pred[starts[2] : starts[2] + 2] = 1
    pred[starts[3] : starts[3] + 5] = 2
    strategy = al.strategies.get("cluster_annotation", scenario="cluster", cluster_size=12, feature="inputs", rank="purity", seed=0)
    q = strategy.select(_FixedPredictions(pred), pools, 3)  # type: ignore[arg-type]
    # shares 1, 1, 0.9, 0.5: the two pure blobs first, the larger (12) before the smaller (8), then the 0.9 one
    assert [g.tolist() for g in q.groups] == [list(range(8, 20)), list(range(0, 8)), list(range(20, 40))]


def test_compact_rank_proposes_the_tightest_clusters_first() -> None:
    """Mutants killed: the compact quality dropped, summed over all members (``sum(None)``) or not negated."""
    # mean squared distance to the centroid (this draw): blob 0 0.17 (40 points), blob 1 0.40 (5 points), blobs 2, 3 larger
    # the tightest blobs lie farthest from the origin: a spread measured around -centroid would rank them last
    pools, _ = _blob_pools([40, 5, 10, 10], [0.3, 0.5, 1.0, 2.0], [[50, 50], [0, 50], [50, 0], [0, 0]])
    strategy = al.strategies.get("cluster_annotation", scenario="cluster", cluster_size=16, feature="inputs", rank="compact", seed=0)
    q = strategy.select(_FixedPredictions(np.zeros(65, dtype=np.int64)), pools, 2)  # type: ignore[arg-type]
    # tightest first: blob 0, then blob 1 (by total squared distance, blob 1 (2.0) would come before blob 0 (6.7))
    assert [g.tolist() for g in q.groups] == [list(range(0, 40)), list(range(40, 45))]


def test_random_rank_draws_distinct_clusters_from_the_seeded_generator() -> None:
    """Mutants killed: the random rank replaced by purity/compact, drawn with replacement, or unseeded."""
    from activelearn.strategies.cluster import propose_clusters

    pools, _ = _blob_pools([10, 10, 10, 10], [0.5, 0.5, 0.5, 0.5])
    pred = np.repeat([0, 1, 2, 0], 10)
    pred[:5] = 1  # the purity order would put blob 0 last
    strategy = al.strategies.get("cluster_annotation", scenario="cluster", cluster_size=10, feature="inputs", rank="random", seed=3)
    q = strategy.select(_FixedPredictions(pred), pools, 3)  # type: ignore[arg-type]
    # reference: the same generator (seed, cycle, interactions, salt 7), first draw seeds k-means, second picks
    rng = strategy.rng(pools, 7)
    groups = propose_clusters(pools.inputs(pools.unlabeled).float(), pools.unlabeled, 3, cluster_size=10, seed=int(rng.integers(2**31 - 1)))
    pick = sorted(rng.choice(len(groups), size=3, replace=False).tolist())
    assert [g.tolist() for g in q.groups] == [np.sort(groups[i]).tolist() for i in pick]
    assert len({g.min() for g in q.groups}) == 3


# ---------------------------------------------------------------- Entropy-D
def test_entropy_d_is_entropy_plus_gamma_times_the_normalised_latent_distance() -> None:
    """Mutants killed: ``ent - gamma * D``, ``-(ent + gamma * D)`` and an unnormalised or negated ``D``."""
    from scipy.spatial.distance import cdist

    s = make_setup("entropy_d", params={"gamma": 0.5, "ae_epochs": 1})
    unl = s.pools.unlabeled[:40]
    score = s.strategy.score(s.model, s.pools, unl)
    p = s.model.outputs(s.pools, unl, "probs")["probs"].double().numpy()
    entropy = -(p * np.log(p)).sum(1)
    z = s.strategy.latents(s.model, s.pools).double().cpu().numpy()  # type: ignore[attr-defined]
    d = cdist(z[unl], z[s.pools.labeled]).min(1)
    np.testing.assert_allclose(score, entropy + 0.5 * d / d.max(), rtol=1e-6, atol=1e-9)
    assert entropy.max() > 0.05 and d.max() > 0  # both terms matter


# ---------------------------------------------------------------- record.extra books
def test_loop_books_select_calls_and_examined_samples_in_record_extra() -> None:
    """Mutant killed: every ``record.extra[...] = ...`` of the loop dropped (the open-set books are checked too)."""
    x, y = blobs(90)
    model = al.ALModel(MLP(16, 3, hidden=(8,)), num_classes=3, device="cpu", seed=0)
    pools = al.Pools(x, num_classes=3)
    in_task = np.arange(90) % 3 != 0
    oracle = al.SimulatedOracle(y, num_classes=3, in_task=in_task)
    loop = al.ActiveLoop(model, al.strategies.get("random", seed=0), oracle, pools, budget=4, cycles=3, initial=6,
                         trainer=al.Trainer(al.TrainConfig(epochs=1, batch_size=16)), progress=False, mode="quota")
    h = loop.run()
    for r in h.records[:-1]:  # the last cycle selects nothing
        assert r.extra["select_calls"] >= 1
        assert r.extra["examined_this_cycle"] == len(r.selected)
        assert int(in_task[r.selected].sum()) == 4  # quota mode: exactly the budget of in-task labels
        # quota of 4 in-task labels with 1/3 out of task: calls until met; each call asks for the missing ones
    assert [r.extra.get("select_calls") for r in h.records][-1] is None
    for r in h.records:
        books = r.extra
        assert books["in_task_labels"] == r.n_labeled
        assert books["examined"] == books["in_task_labels"] + books["rejected"]
    assert h.records[-1].extra["rejected"] == int((~in_task[[e.index for e in pools.log]]).sum()) > 0
