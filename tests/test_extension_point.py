"""The widened extension point: contexts, unlabeled batches, seeded consistent MC dropout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import activelearn as al
from activelearn.backbones import MLP, SmallCNN
from activelearn.exceptions import InvalidParameterError
from activelearn.model import BuildContext, ModelExtension, StepContext

from conftest import blobs


def _pools(n: int = 120, labeled: int = 20) -> tuple[al.Pools, al.SimulatedOracle]:
    x, y = blobs(n, seed=0)
    pools = al.Pools(x, num_classes=3)
    oracle = al.SimulatedOracle(y, num_classes=3)
    pools.record(oracle.answer(al.Query(np.arange(labeled))), cycle=0)
    pools.cycle = 1
    return pools, oracle


def _model(seed: int = 0, dropout: float = 0.0, ext: ModelExtension | None = None) -> al.ALModel:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = MLP(16, 3, hidden=(32, 16), dropout=dropout)
    model = al.ALModel(net, num_classes=3, device="cpu", seed=seed)
    if ext is not None:
        model.attach(ext)
    return model


class OldStyle(ModelExtension):
    """An extension written against the narrow signature only."""

    name = "old"

    def build(self, embedding_dim: int, stage_shapes: list, num_classes: int) -> None:
        self.lin = nn.Linear(embedding_dim, 1)
        self.calls = 0

    def training_loss(self, out, targets, progress):  # type: ignore[no-untyped-def]
        self.calls += 1
        return self.lin(out.embeddings).pow(2).mean()


class Recorder(ModelExtension):
    """Trains on unlabeled batches: records what it receives."""

    name = "recorder"
    uses_unlabeled = True
    provides = ("input_sum",)

    def build_from(self, ctx: BuildContext) -> None:
        self.built_with = (ctx.input_shape, ctx.num_classes, type(ctx.model).__name__)
        self.lin = nn.Linear(int(np.prod(ctx.input_shape)), 1)
        self.seen: list[tuple[np.ndarray, np.ndarray, int]] = []

    def step_loss(self, ctx: StepContext) -> torch.Tensor:
        assert ctx.unlabeled_inputs is not None and ctx.unlabeled_indices is not None
        assert ctx.inputs.shape[0] == ctx.targets.shape[0] == ctx.indices.size
        self.seen.append((ctx.indices.copy(), ctx.unlabeled_indices.copy(), ctx.step))
        return 0.01 * self.lin(ctx.unlabeled_inputs.flatten(1)).pow(2).mean()

    def infer_with(self, out, inputs):  # type: ignore[no-untyped-def]
        return {"input_sum": inputs.flatten(1).sum(1)}


def test_old_signature_extension_still_trains() -> None:
    pools, _ = _pools()
    ext = OldStyle()
    model = _model(ext=ext)
    al.Trainer(al.TrainConfig(epochs=2, batch_size=8)).fit(model, pools, cycle=1)
    assert ext.calls == 2 * 3  # 20 labeled, batch 8 -> 3 steps per epoch


def test_unlabeled_batches_are_unlabeled_seeded_and_do_not_change_labeled_batches() -> None:
    pools, _ = _pools()
    ext = Recorder()
    model = _model(ext=ext)
    al.Trainer(al.TrainConfig(epochs=3, batch_size=8, seed=4)).fit(model, pools, cycle=1)
    assert ext.built_with == ((16,), 3, "ALModel")
    assert [s for _, _, s in ext.seen] == list(range(9))
    unl = set(pools.unlabeled.tolist())
    for _, u, _ in ext.seen:
        assert u.size == 8 and set(u.tolist()) <= unl and np.unique(u).size == 8
    # a walk through permutations: the first 12 batches of 8 cover 96 of the 100 unlabeled without repeats
    first = np.concatenate([u for _, u, _ in ext.seen])
    assert np.unique(first).size == first.size
    # same seed: the same unlabeled batches; another seed: others
    again = Recorder()
    al.Trainer(al.TrainConfig(epochs=3, batch_size=8, seed=4)).fit(_model(ext=again), pools, cycle=1)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(ext.seen, again.seen))
    other = Recorder()
    al.Trainer(al.TrainConfig(epochs=3, batch_size=8, seed=5)).fit(_model(ext=other), pools, cycle=1)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(ext.seen, other.seen))
    # the labeled batches are the ones drawn without the extension (the unlabeled generator is separate)
    gen = torch.Generator().manual_seed(int(np.random.SeedSequence([4, 1]).generate_state(1)[0]))
    perm = torch.randperm(20, generator=gen).numpy()
    np.testing.assert_array_equal(ext.seen[0][0], pools.labeled[perm[:8]])
    np.testing.assert_array_equal(ext.seen[1][0], pools.labeled[perm[8:16]])


def test_infer_with_receives_inputs() -> None:
    pools, _ = _pools()
    model = _model(ext=Recorder())
    got = model.outputs(pools, np.array([30, 31]), "input_sum")["input_sum"]
    torch.testing.assert_close(got, pools.inputs(np.array([30, 31])).sum(1))


# ------------------------------------------------------------------ MC dropout
def _trained(dropout: float = 0.5) -> tuple[al.ALModel, al.Pools]:
    pools, _ = _pools()
    model = _model(dropout=dropout)
    al.Trainer(al.TrainConfig(epochs=2, batch_size=8)).fit(model, pools, cycle=1)
    return model, pools


def test_mc_outputs_shape_seeded_and_independent_of_batching() -> None:
    model, pools = _trained()
    idx = pools.unlabeled[:37]
    state = torch.get_rng_state()
    a = model.mc_outputs(pools, idx, 6, seed=11)["log_probs"]
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is untouched
    assert a.shape == (37, 6, 3)
    torch.testing.assert_close(a.exp().sum(-1), torch.ones(37, 6))
    b = model.mc_outputs(pools, idx, 6, seed=11, batch_size=5)["log_probs"]
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)  # masks are per sample, not per batch
    c = torch.cat([model.mc_outputs(pools, idx[:10], 6, seed=11)["log_probs"], model.mc_outputs(pools, idx[10:], 6, seed=11)["log_probs"]])
    torch.testing.assert_close(a, c, rtol=0, atol=1e-6)
    d = model.mc_outputs(pools, idx, 6, seed=12)["log_probs"]
    assert not torch.allclose(a, d)
    assert not torch.allclose(a[:, 0], a[:, 1])  # the passes differ
    # the deterministic pass is not one of them, and the model is left in evaluation mode
    det = model.outputs(pools, idx, "probs")["probs"].log()
    assert not torch.allclose(a[:, 0], det, atol=1e-4)
    assert not model.training


def test_mc_outputs_consistent_masks_and_batchnorm_in_eval() -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = SmallCNN(1, 3, image_size=8, width=4, hidden=8, dropout=0.5)
    model = al.ALModel(net, num_classes=3, device="cpu")
    x = torch.randn(12, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    pools = al.Pools(torch.cat([x, x]), num_classes=3)  # rows i and i + 12 are the same image
    out = model.mc_outputs(pools, np.arange(24), 4, seed=3, batch_size=7)["log_probs"]
    torch.testing.assert_close(out[:12], out[12:], rtol=0, atol=1e-6)  # same mask for every input of a pass


def test_mc_outputs_without_dropout_says_how_to_fix() -> None:
    model, pools = _trained(dropout=0.0)
    with pytest.raises(InvalidParameterError, match=r"dropout=0\.5"):
        model.mc_outputs(pools, pools.unlabeled[:4], 3, seed=0)


class NoisyHead(ModelExtension):
    """An extension that serves seeded MC samples: its own dropout layer before a linear score."""

    name = "noisy"
    provides = ("noisy_score",)

    def build(self, embedding_dim: int, stage_shapes: list, num_classes: int) -> None:
        self.drop = nn.Dropout(0.5)
        self.lin = nn.Linear(embedding_dim, 1)

    def infer(self, out):  # type: ignore[no-untyped-def]
        return {"noisy_score": self.lin(self.drop(out.embeddings)).squeeze(1)}


def test_extension_serves_seeded_mc_samples() -> None:
    pools, _ = _pools()
    runs = []
    for _ in range(2):
        model = _model(ext=NoisyHead())  # dropout only inside the extension
        al.Trainer(al.TrainConfig(epochs=1, batch_size=8)).fit(model, pools, cycle=1)
        runs.append(model.mc_outputs(pools, pools.unlabeled, 5, seed=2, names=["noisy_score", "log_probs"]))
    assert runs[0]["noisy_score"].shape == (100, 5)
    assert torch.equal(runs[0]["noisy_score"], runs[1]["noisy_score"])
    assert runs[0]["noisy_score"].std(dim=1).mean() > 0
    # the backbone has no dropout: its log-probs are the same in every pass
    lp = runs[0]["log_probs"]
    torch.testing.assert_close(lp, lp[:, :1].expand_as(lp))


@pytest.mark.parametrize("name", ["vaal", "bald", "batchbald"])
def test_two_identical_runs_give_identical_picks(name: str) -> None:
    """Acceptance: an extension training on unlabeled batches (VAAL), and seeded MC samples (BALD, BatchBALD)."""
    from conftest import make_setup

    a, b, c = (make_setup(name, seed=s, epochs=2) for s in (7, 7, 8))
    pa = a.strategy.select(a.model, a.pools, 10)
    np.testing.assert_array_equal(pa, b.strategy.select(b.model, b.pools, 10))
    assert not np.array_equal(pa, c.strategy.select(c.model, c.pools, 10))  # the seed matters


def test_docs_example_runs() -> None:
    """The worked example of docs/extensions.md runs and asserts same seeds -> same picks."""
    import pathlib
    import re

    from activelearn.strategies import registry

    text = (pathlib.Path(__file__).parents[1] / "docs" / "extensions.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    saved = dict(registry._REGISTRY)
    try:
        exec(compile(code, "docs/extensions.md", "exec"), {"__name__": "docs_example"})
    finally:
        registry._REGISTRY.clear()
        registry._REGISTRY.update(saved)


def test_unlabeled_batches_get_the_training_transform() -> None:
    pools, _ = _pools()
    seen: list[torch.Tensor] = []

    class Keep(Recorder):
        def step_loss(self, ctx: StepContext) -> torch.Tensor:
            seen.append(ctx.unlabeled_inputs - pools.inputs(ctx.unlabeled_indices))
            return super().step_loss(ctx)

    def shift(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return x + (torch.rand((), generator=generator) if generator is not None else 0.5)

    state = torch.get_rng_state()
    al.Trainer(al.TrainConfig(epochs=1, batch_size=8), transform=shift).fit(_model(ext=Keep()), pools, cycle=1)
    assert torch.equal(torch.get_rng_state(), state)
    diffs = torch.cat([d[:, 0] for d in seen])
    assert diffs.min() > 0 and diffs.max() < 1 and diffs.std() > 0
