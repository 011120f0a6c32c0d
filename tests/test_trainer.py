"""The trainer's pieces: the step loss module, batch streams, the stand-in step, and fit against a hand-written loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import activelearn as al
from activelearn import distributed as D
from activelearn.backbones import MLP, SmallCNN
from activelearn.batches import LabeledBatches, UnlabeledBatches, augment
from activelearn.steps import ParallelStep, StepBatch, StepLoss, rank_slice, sit_out_batch, trained_by_some_rank, zero_loss

from conftest import blobs


def _setup(n_labeled: int = 13) -> tuple[al.ALModel, al.Pools]:
    x, y = blobs(60, seed=3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        net = MLP(16, 3, hidden=(8,))
    model = al.ALModel(net, num_classes=3, device="cpu")
    pools = al.Pools(x, num_classes=3)
    pools.record(al.SimulatedOracle(y, num_classes=3).answer(al.Query(np.arange(0, 60, 4)[:n_labeled])), cycle=0)
    return model, pools


def test_fit_equals_a_hand_written_loop() -> None:
    """Seeds, permutation, batches, loss and update of ``fit`` (single process), bit for bit."""
    model, pools = _setup()
    cfg = al.TrainConfig(epochs=3, batch_size=4, optimizer="sgd", lr=0.1, momentum=0.9, seed=5, milestones=(2,), gamma=0.5)
    losses: list[float] = []
    al.Trainer(cfg).fit(model, pools, cycle=2, on_epoch_end=lambda e, m: losses.append(m["train_loss"]))

    ref, _ = _setup()
    idx = pools.labeled
    y = torch.as_tensor(pools.labels_of(idx))
    opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[2], gamma=0.5)
    gen = torch.Generator().manual_seed(int(np.random.SeedSequence([5, 2]).generate_state(1)[0]))
    ref_losses = []
    for _ in range(3):
        perm = torch.randperm(idx.size, generator=gen).numpy()
        total = 0.0
        for s in range(0, idx.size, 4):
            part = perm[s : s + 4]
            loss = F.cross_entropy(ref(pools.inputs(idx[part])).logits, y[torch.from_numpy(part)])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * part.size
        ref_losses.append(total / idx.size)
        sched.step()
    for a, b in zip(model.parameters(), ref.parameters()):
        assert torch.equal(a, b)
    assert losses == ref_losses


def test_step_loss_adds_head_and_extension_losses() -> None:
    model, pools = _setup()
    for ext in al.strategies.get("dacs", seed=0).model_extensions():
        model.attach(ext)
    x = pools.inputs(pools.labeled)
    model.build_extensions(x[:2])
    y = torch.as_tensor(pools.labels_of(pools.labeled))
    batch = StepBatch(x, y, pools.labeled, 0.5, 0, 1)
    got = StepLoss(model, "cross_entropy")(batch)
    out = model(x)
    ext = next(iter(model.extensions.values()))
    expected = F.cross_entropy(out.logits, y) + ext.training_loss(out, y, 0.5)  # type: ignore[operator]
    torch.testing.assert_close(got, expected)
    # the module registers the backbone and the extension (what DDP would average), not the model twice
    assert {id(p) for p in StepLoss(model, "mse").parameters()} == {id(p) for p in model.parameters()}


def test_vaal_parameters_are_not_registered_for_ddp() -> None:
    model, pools = _setup()
    for ext in al.strategies.get("vaal", seed=0).model_extensions():
        model.attach(ext)
    model.build_extensions(pools.inputs(pools.labeled[:2]))
    registered = {id(p) for p in StepLoss(model, "cross_entropy").parameters()}
    assert registered == {id(p) for p in model.backbone.parameters()}


def test_stand_in_step_has_zero_gradient_and_leaves_batchnorm_alone() -> None:
    x, y = blobs(8, seed=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = SmallCNN(1, 3, image_size=4, width=4, hidden=8)
    model = al.ALModel(net, num_classes=3, device="cpu")
    model.train()
    buffers = [b.clone() for b in model.buffers()]
    batch = StepBatch(x.view(8, 1, 4, 4), torch.as_tensor(y), np.arange(8), 0.0, 0, 0)
    stand_in = sit_out_batch(batch)
    assert stand_in.x.shape[0] == 1 and stand_in.unlabeled_inputs is None
    loss = zero_loss(ParallelStep(model, "cross_entropy"), stand_in)
    loss.backward()
    assert float(loss.detach()) == 0.0 and model.training
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and not g.any() for g in grads)  # every parameter used, none moved
    assert all(torch.equal(a, b) for a, b in zip(buffers, model.buffers()))  # eval mode: running stats untouched


def test_labeled_batches_drop_last_and_single_sample_rule() -> None:
    gen = torch.Generator().manual_seed(0)
    sizes = [p.size for p in LabeledBatches(np.arange(9), 4, False, True, gen).epoch()]
    assert sizes == [4, 4]  # the last batch of one is skipped with batch-norm
    sizes = [p.size for p in LabeledBatches(np.arange(9), 4, False, False, gen).epoch()]
    assert sizes == [4, 4, 1]
    sizes = [p.size for p in LabeledBatches(np.arange(10), 4, True, False, gen).epoch()]
    assert sizes == [4, 4]
    sizes = [p.size for p in LabeledBatches(np.arange(3), 4, True, False, gen).epoch()]
    assert sizes == [3]  # drop_last never drops the only batch
    first = np.concatenate(list(LabeledBatches(np.arange(9), 4, False, False, torch.Generator().manual_seed(7)).epoch()))
    assert sorted(first.tolist()) == list(range(9))
    assert first.tolist() == torch.randperm(9, generator=torch.Generator().manual_seed(7)).tolist()


def _noise(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return x + torch.randn(x.shape, generator=generator)


def test_sharded_streams_slice_the_single_process_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rank 1 of 2 gets exactly the second part of what one process draws and augments."""
    _, pools = _setup()
    single = UnlabeledBatches(pools, 5, seed=0, cycle=1)
    rows1, x1 = single.next(_noise, torch.device("cpu"))
    lab = LabeledBatches(pools.labeled, 5, False, False, torch.Generator().manual_seed(3))
    part = next(lab.epoch())
    cpu = torch.device("cpu")
    x_all = next(lab.reader(pools, [part], 0))
    xl1 = lab.rank_inputs(x_all, _noise, torch.Generator().manual_seed(9), slice(None), cpu)
    monkeypatch.setattr(D, "is_distributed", lambda: True)
    monkeypatch.setattr(D, "world_size", lambda: 2)
    monkeypatch.setattr(D, "rank", lambda: 1)
    sharded = UnlabeledBatches(pools, 5, seed=0, cycle=1)
    rows2, x2 = sharded.next(_noise, torch.device("cpu"))
    assert rows1 is not None and rows2 is not None and x1 is not None and x2 is not None
    assert rows2.tolist() == rows1[3:].tolist()
    assert torch.equal(x2, x1[3:])
    a, b, w = rank_slice(part.size, has_batchnorm=False)
    assert (a, b, w) == (3, 5, 2 / 5)
    assert not trained_by_some_rank(2, has_batchnorm=True) and trained_by_some_rank(2, has_batchnorm=False)
    assert trained_by_some_rank(3, has_batchnorm=True) and trained_by_some_rank(1, has_batchnorm=False)
    xl2 = lab.rank_inputs(x_all, _noise, torch.Generator().manual_seed(9), slice(a, b), cpu)
    assert torch.equal(xl2, xl1[3:])
    assert torch.equal(augment(lambda t: t * 2, xl1, torch.Generator(), cpu), xl1 * 2)
