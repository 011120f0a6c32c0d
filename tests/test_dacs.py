"""DACS: auxiliary head, per-group budgets, dacs_select, the strategy and dacs+entropy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import activelearn as al
from activelearn.exceptions import InvalidParameterError
from activelearn.extensions import AuxiliaryHead
from activelearn.model import ForwardOutput
from activelearn.strategies.dacs import dacs_select, density_groups, group_budgets

from conftest import make_setup


# ------------------------------------------------------------ group budgets
@pytest.mark.parametrize(
    ("sizes", "budget", "expected"),
    [
        # equal sizes: r = 1/4 each, 2.5 -> floor 2, remainder 2 to the lowest indices (ties)
        ([100, 100, 100, 100], 10, [3, 3, 2, 2]),
        # logits (0.9, 0.7, 0.4) / 0.25 -> r = (.631, .284, .085), shares 12.6, 5.7, 1.7
        # -> floors 12, 5, 1 + remainder to groups 2 and 1 -> 12, 6, 2; group 0 has only 10:
        # its surplus of 2 goes to group 1
        ([10, 30, 60], 20, [10, 8, 2]),
        # shares 14.3, 4.7, 1.0 -> 14, 5, 1; group 0 caps at 2, surplus 12 to group 1
        ([2, 30, 68], 20, [2, 17, 1]),
        # shares 2.3, 2.3, 6.3 -> 2, 2, 7; the densest group caps at 2 and its surplus
        # of 5 wraps back to the sparsest groups with room: 3 to group 0, 2 to group 1
        ([5, 5, 2], 11, [5, 4, 2]),
        # an empty group gets nothing and takes no share
        ([0, 5, 5], 4, [0, 2, 2]),
    ],
)
def test_group_budgets_hand_computed(sizes: list[int], budget: int, expected: list[int]) -> None:
    assert group_budgets(sizes, budget).tolist() == expected


def test_group_budgets_always_exact_and_within_sizes() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        sizes = rng.integers(0, 50, size=rng.integers(1, 7))
        if sizes.sum() == 0:
            continue
        b = int(rng.integers(1, sizes.sum() + 1))
        tau = float(rng.choice([0.05, 0.25, 1.0, 10.0]))
        n = group_budgets(sizes, b, tau=tau)
        assert n.sum() == b
        assert (n >= 0).all() and (n <= sizes).all()


def test_group_budgets_lower_temperature_favours_small_groups_more() -> None:
    sizes = [50, 150, 300, 500]
    sharp, flat = group_budgets(sizes, 100, tau=0.1), group_budgets(sizes, 100, tau=10.0)
    assert sharp[0] > flat[0] and sharp[-1] < flat[-1]
    assert flat.tolist() == [26, 25, 25, 24]  # nearly uniform at high temperature


def test_group_budgets_errors() -> None:
    with pytest.raises(InvalidParameterError, match="exceeds the 3 samples"):
        group_budgets([1, 2], 4)
    with pytest.raises(InvalidParameterError, match="tau must be"):
        group_budgets([1, 2], 2, tau=0)


def test_density_groups_reduce_to_distinct_values() -> None:
    labels, breaks = density_groups(np.array([1.0, 1.0, 2.0, 2.0]), 4)
    assert len(breaks) == 3 and labels.tolist() == [0, 0, 1, 1]


# ------------------------------------------------------------- dacs_select
def clustered(n_dense: int = 3000, n_sparse: int = 600, d: int = 16, seed: int = 0) -> np.ndarray:
    """Tight clusters (most of the pool) plus a diffuse background."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(6, d))
    dense = centers[rng.integers(0, 6, n_dense)] + 0.05 * rng.normal(size=(n_dense, d))
    sparse = rng.normal(size=(n_sparse, d))
    return np.concatenate([dense, sparse]).astype(np.float32)


def graded(seed: int, d: int = 16) -> np.ndarray:
    """Clusters whose spread grows as their population shrinks (dense = crowded, sparse = rare)."""
    rng = np.random.default_rng(seed)
    parts = []
    for n, spread in [(2400, 0.05), (800, 0.2), (300, 0.5), (100, 2.0)]:
        c = rng.normal(size=(n // 100, d))
        parts.append(c[rng.integers(0, len(c), n)] + spread * rng.normal(size=(n, d)))
    return np.concatenate(parts).astype(np.float32)


@pytest.mark.parametrize("seed", range(4))
def test_sparsest_group_gets_most_picks_per_member(seed: int) -> None:
    z = graded(seed)
    picks, info = dacs_select(z, z[:0], 200, seed=seed, device="cpu", return_info=True)
    sizes, budgets, labels, dens = info["sizes"], info["budgets"], info["labels"], info["density"]
    assert len(sizes) == 4 and budgets.sum() == 200
    assert np.argmax(budgets / sizes) == 0
    # group 0 really is the sparsest: its densities are the lowest
    assert dens[labels == 0].max() <= dens[labels == 1].min()
    # and the rare, spread-out points (rows >= 3200) are over-represented in the picks
    assert np.mean(picks >= 3200) > 2 * 400 / 3600
    assert picks.size == 200 and np.unique(picks).size == 200


@pytest.mark.parametrize("density", ["lsh", "knn"])
@pytest.mark.parametrize("cross_group", [False, True])
def test_dacs_select_exact_budget_unique_and_seeded(density: str, cross_group: bool) -> None:
    z = clustered(800, 200)
    kw = dict(seed=5, density=density, cross_group=cross_group, device="cpu")
    a = dacs_select(z[:900], z[900:], 37, **kw)
    b = dacs_select(torch.from_numpy(z[:900]), torch.from_numpy(z[900:]), 37, **kw)
    assert a.size == 37 and np.unique(a).size == 37 and a.min() >= 0 and a.max() < 900
    np.testing.assert_array_equal(a, b)


def test_dacs_select_within_group_is_kcenter_from_labeled() -> None:
    """Each group's picks equal k-center greedy (cosine) on that group from the labeled set."""
    z = clustered(500, 150)
    zl = z[:20]
    zu = z[20:]
    picks, info = dacs_select(zu, zl, 30, seed=1, device="cpu", return_info=True)
    zn = zu / np.linalg.norm(zu, axis=1, keepdims=True)
    ln = zl / np.linalg.norm(zl, axis=1, keepdims=True)
    start = 0
    for g, n_g in enumerate(info["budgets"]):
        members = np.flatnonzero(info["labels"] == g)
        mind = (1 - zn[members] @ ln.T).min(axis=1)
        expected = []
        for _ in range(n_g):  # plain greedy, by hand
            j = int(np.argmax(mind))
            expected.append(members[j])
            mind = np.minimum(mind, 1 - zn[members] @ zn[members[j]])
            mind[j] = -np.inf
        assert picks[start : start + n_g].tolist() == expected
        start += n_g


def test_dacs_select_tiny_pools_and_degenerate_input() -> None:
    z = np.random.default_rng(0).normal(size=(7, 4))
    assert np.unique(dacs_select(z, np.zeros((0, 4)), 7, seed=0, device="cpu")).size == 7
    same = np.ones((10, 4))
    assert sorted(dacs_select(same, same[:2], 3, seed=0, device="cpu").tolist()) == sorted(set(dacs_select(same, same[:2], 3, seed=0, device="cpu").tolist()))


def test_dacs_select_errors() -> None:
    z = np.random.default_rng(0).normal(size=(20, 4))
    with pytest.raises(InvalidParameterError, match="exceeds the 20"):
        dacs_select(z, z[:0], 21)
    with pytest.raises(InvalidParameterError, match="n_buckets must be even"):
        dacs_select(z, z[:0], 2, n_buckets=3)
    with pytest.raises(InvalidParameterError, match="density must be one of"):
        dacs_select(z, z[:0], 2, density="kde")
    with pytest.raises(al.exceptions.InvalidInputError, match="columns"):
        dacs_select(z, np.ones((2, 3)), 2)


# --------------------------------------------------------- auxiliary head
def test_aux_head_outputs_unit_vectors_and_detaches_after_fraction() -> None:
    head = AuxiliaryHead(dim=4, detach_after=0.6)
    head.build(8, [], 3)
    emb = torch.randn(5, 8, requires_grad=True)
    out = ForwardOutput(logits=torch.zeros(5, 3), embeddings=emb)
    u = head.infer(out)["aux_embedding"]
    assert u.shape == (5, 4)
    torch.testing.assert_close(u.norm(dim=1), torch.ones(5))
    y = torch.tensor([0, 1, 2, 0, 1])
    head.training_loss(out, y, progress=0.5).backward()
    assert emb.grad is not None and emb.grad.abs().sum() > 0
    emb.grad = None
    loss = head.training_loss(out, y, progress=0.6)
    loss.backward()
    assert emb.grad is None  # features detached: no gradient to the backbone
    assert head.proj.weight.grad is not None


def test_aux_head_loss_is_weighted_scaled_cosine_cross_entropy() -> None:
    head = AuxiliaryHead(dim=3, weight=0.5, scale=4.0)
    head.build(3, [], 2)
    with torch.no_grad():
        head.proj.weight.copy_(torch.eye(3))
        head.proj.bias.zero_()
        head.classes.copy_(torch.tensor([[1.0, 0, 0], [0, 2.0, 0]]))
    out = ForwardOutput(logits=torch.zeros(1, 2), embeddings=torch.tensor([[3.0, 0, 0]]))
    # u = (1, 0, 0); cosines (1, 0); logits (4, 0); CE for class 0 = log(1 + e^-4)
    expected = 0.5 * np.log1p(np.exp(-4.0))
    assert float(head.training_loss(out, torch.tensor([0]), 0.0).detach()) == pytest.approx(expected, rel=1e-5)


def test_aux_head_parameter_checks() -> None:
    with pytest.raises(InvalidParameterError, match="detach_after"):
        AuxiliaryHead(detach_after=1.5)
    with pytest.raises(InvalidParameterError, match="scale must be > 0"):
        AuxiliaryHead(scale=0)
    with pytest.raises(InvalidParameterError, match="dim must be a positive int"):
        AuxiliaryHead(dim=0)


def test_aux_head_with_any_strategy_via_make_loop(digits_bundle: al.datasets.DatasetBundle) -> None:
    loop = al.experiment.make_loop(
        digits_bundle, "coreset", initial=20, budget=10, cycles=2, seed=0, aux_head=True, progress=False,
        strategy_params={"feature": "aux_embedding", "metric": "cosine"},
        train=al.TrainConfig(epochs=2, batch_size=16),
    )
    assert "aux_embedding" in loop.model.provides()
    h = loop.run()
    assert [r.n_labeled for r in h.records] == [20, 30]


# ------------------------------------------------------------ the strategy
def test_dacs_strategy_attaches_head_and_selects_from_aux_vectors() -> None:
    s = make_setup("dacs", seed=0)
    assert "aux_embedding" in s.model.provides()
    assert isinstance(s.model.extensions["auxiliary"], AuxiliaryHead)
    picks = s.strategy.select(s.model, s.pools, 20)
    # the same as dacs_select on the model's vectors with the strategy's derived seed
    unl, lab = s.pools.unlabeled, s.pools.labeled
    z = s.model.outputs(s.pools, np.concatenate([unl, lab]), "aux_embedding")["aux_embedding"]
    seed = int(s.strategy.rng(s.pools).integers(2**31 - 1))
    np.testing.assert_array_equal(picks, unl[dacs_select(z[: unl.size], z[unl.size :], 20, seed=seed)])


def test_dacs_strategy_params_checked() -> None:
    with pytest.raises(InvalidParameterError, match="n_buckets must be even"):
        al.strategies.get("dacs", n_buckets=7)
    with pytest.raises(InvalidParameterError, match="tau must be"):
        al.strategies.get("dacs", tau=-1.0)
    assert al.strategies.get("dacs").get_params()["n_groups"] == 4


# ------------------------------------------------------------- dacs+entropy
def test_dacs_plus_entropy_keeps_most_uncertain_of_dacs_candidates() -> None:
    s = make_setup("dacs+entropy", seed=2, params={"eta": 3})
    picks = s.strategy.select(s.model, s.pools, 10)
    dacs_only = make_setup("dacs", seed=2)
    cand = dacs_only.strategy.select(dacs_only.model, dacs_only.pools, 30)
    assert set(picks) <= set(cand)
    probs = s.model.outputs(s.pools, cand, "probs")["probs"].cpu().numpy()
    ent = -(probs * np.log(np.clip(probs, 1e-12, None))).sum(1)
    best = cand[np.argsort(-ent, kind="stable")[:10]]
    assert set(picks.tolist()) == set(best.tolist())
    assert s.strategy.model_extensions()[0].name == "auxiliary"


def test_dacs_plus_entropy_contract_basics() -> None:
    a = make_setup("dacs+entropy", seed=4)
    b = make_setup("dacs+entropy", seed=4)
    pa, pb = a.strategy.select(a.model, a.pools, 15), b.strategy.select(b.model, b.pools, 15)
    np.testing.assert_array_equal(pa, pb)
    assert np.unique(pa).size == 15 and a.pools.unlabeled_mask[pa].all()


def test_cli_aux_head_flag_parses() -> None:
    from activelearn.cli import build_parser

    assert build_parser().parse_args(["run", "--strategy", "random", "--aux-head"]).aux_head is True
    assert build_parser().parse_args(["compare", "--strategies", "random"]).aux_head is False


@pytest.mark.slow
def test_cli_runs_dacs_plus_entropy_with_aux_head(tmp_path) -> None:
    from activelearn.cli import main

    code = main(["run", "--dataset", "digits", "--strategy", "dacs+entropy", "--initial", "20", "--budget", "10",
                 "--cycles", "2", "--epochs", "1", "--no-progress", "--aux-head", "--out", str(tmp_path)])
    assert code == 0
    assert (tmp_path / "history.json").exists()


def test_max_chunk_adds_buckets_only_beyond_the_bound() -> None:
    z = np.random.default_rng(0).normal(size=(5000, 8)).astype(np.float32)
    _, small = dacs_select(z, z[:0], 10, seed=0, max_chunk=2000, device="cpu", return_info=True)
    _, capped = dacs_select(z, z[:0], 10, seed=0, max_chunk=20, device="cpu", return_info=True)
    _, paper = dacs_select(z, z[:0], 10, seed=0, max_chunk=None, device="cpu", return_info=True)
    assert small["n_buckets"] == 100 and paper["n_buckets"] == 100
    assert capped["n_buckets"] == 250  # 2 * ceil(5000 / 40): chunks of 20 rows
    np.testing.assert_array_equal(small["density"], paper["density"])
